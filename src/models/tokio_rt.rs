//! `--model tokio`: tokio on epoll, one future per connection.
//!
//! Shape: one OS thread per worker, each running its own `current_thread` runtime
//! with its own `SO_REUSEPORT` listener — the same thread-per-core shape as the two
//! io_uring models, so the comparison isolates the I/O mechanism. Nothing is shared
//! between workers on the hot path, and every per-worker [`WorkerStats`] block keeps
//! its single writer (a multi-thread runtime would migrate tasks between threads).
//!
//! Measured (2026-11-21, 2-core KVM guest, kernel 6.18, rustc 1.95, tokio 1.x):
//! server `taskset -c 0 gvhttpd serve --model tokio --workers 1`, load
//! `taskset -c 1 wrk -t1 -c64 -d8s http://127.0.0.1:PORT/`, interleaved A B A B A B,
//! server CPU from utime+stime in `/proc/PID/stat`. The machine was busy (load
//! average ~4.5 from parallel builds), so req/s are low and spread widely; medians:
//!
//! | runtime | req/s (median, [min–max]) | server CPU µs/request |
//! |---|---|---|
//! | per-worker `current_thread` (this) | 28,717 [23,279–32,559] | 14.05 [12.09–14.19] |
//! | one `multi_thread`, 1 worker thread | 24,010 [20,993–25,410] | 14.36 [13.94–16.31] |
//!
//! Per-worker `current_thread` is no worse on CPU per request and faster; most of
//! the CPU is the kernel's loopback TCP path (perf: `tcp_*`, `sock_def_readable`,
//! skb allocation), which every model pays alike.
//!
//! Timeouts: one `Sleep` per connection, re-armed lazily — each request only moves
//! the `deadline` value; when the timer fires early it is reset to the current
//! deadline — so the hot path does not touch the timer wheel per request. Writes
//! try a non-blocking `try_write` first and only arm the write timeout when the
//! socket buffer is full.

use std::io;
use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, Instant};

use super::{Admitted, ServeError, WorkerCtx};
use crate::app::{App, FileError};
use crate::config::Config;
use crate::http::{Conn, Phase, Step};
use crate::net;
use crate::shutdown::Shutdown;
use crate::stats::WorkerStats;

/// What every connection task of one worker needs.
#[derive(Clone)]
struct Worker {
    ctx: WorkerCtx,
    shutdown: watch::Receiver<bool>,
}

impl std::ops::Deref for Worker {
    type Target = WorkerCtx;
    fn deref(&self) -> &WorkerCtx {
        &self.ctx
    }
}

/// Run the tokio model until shutdown.
pub fn run(
    cfg: &Config,
    listeners: Vec<StdListener>,
    app: Arc<App>,
    shutdown: Arc<Shutdown>,
) -> Result<(), ServeError> {
    let (tx, rx) = watch::channel(false);
    shutdown.on_trigger(move || {
        tx.send_replace(true);
    });
    let sd = shutdown.clone();
    super::run_workers(cfg, app, listeners, &shutdown, move |ctx, listener| {
        let w = Worker {
            ctx,
            shutdown: rx.clone(),
        };
        worker_thread(w, listener, sd.clone())
    })
}

fn worker_thread(
    w: Worker,
    listener: StdListener,
    shutdown: Arc<Shutdown>,
) -> Result<(), ServeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::Io("cannot build tokio runtime".into(), e))?;
    rt.block_on(async move {
        let listener = TcpListener::from_std(listener)
            .map_err(|e| ServeError::Io("cannot register listener".into(), e))?;
        accept_loop(&w, listener).await;
        // Stop accepting (listener dropped above), then wait for open connections,
        // which close themselves when idle, up to the grace deadline.
        let deadline = shutdown.deadline().unwrap_or_else(std::time::Instant::now);
        let stats = w.stats();
        while stats.accepted.get() > stats.closed.get() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    })
    // Dropping the runtime cancels whatever is left after the grace period.
}

async fn accept_loop(w: &Worker, listener: TcpListener) {
    let mut shutdown = w.shutdown.clone();
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        let accepted = tokio::select! {
            biased;
            _ = shutdown.changed() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _)) => {
                let stats = w.stats();
                if !w.gate.try_open() {
                    stats.refused.inc();
                    net::send_refusal(&stream);
                    continue;
                }
                stats.accepted.inc();
                net::tune_stream(&stream);
                tokio::spawn(connection(stream, w.clone()));
            }
            Err(e) if net::is_fd_exhaustion(&e) => {
                // Back off instead of spinning on a full descriptor table (case 41).
                tokio::time::sleep(net::ACCEPT_BACKOFF).await;
            }
            Err(_) => {} // ECONNABORTED and friends: the next accept is fine.
        }
    }
}

enum Event {
    Read(io::Result<usize>),
    Timer,
    Shutdown,
}

async fn connection(mut stream: TcpStream, w: Worker) {
    let _open = Admitted(&w);
    let stats = w.stats();
    let t = w.cfg.timeouts;
    let mut conn = Conn::new(w.cfg.limits);
    let mut out = Vec::with_capacity(1024);
    let mut shutdown = w.shutdown.clone();
    let mut shutdown_seen = false;
    let mut phase = Phase::Idle;
    let mut deadline = Instant::now() + t.idle;
    let timer = sleep_until(deadline);
    tokio::pin!(timer);
    let linger = 'conn: loop {
        let event = tokio::select! {
            biased;
            r = stream.read(conn.read_buf()) => Event::Read(r),
            _ = &mut timer => Event::Timer,
            _ = shutdown.changed(), if !shutdown_seen => Event::Shutdown,
        };
        match event {
            Event::Read(Ok(0)) => conn.peer_closed(),
            Event::Read(Ok(n)) => {
                conn.filled(n);
                stats.bytes_in.add(n as u64);
            }
            Event::Read(Err(_)) => break false,
            Event::Timer if Instant::now() < deadline => {
                timer.as_mut().reset(deadline);
                continue;
            }
            Event::Timer => {
                conn.read_timed_out(stats, &mut out);
                let sent = send(&mut stream, &out, t.write, stats).await.is_ok();
                break sent && !out.is_empty();
            }
            Event::Shutdown => {
                shutdown_seen = true;
                if conn.shutdown() {
                    break false;
                }
                continue;
            }
        }
        loop {
            let step = conn.process(&w.app, stats, &mut out);
            if !out.is_empty() {
                if send(&mut stream, &out, t.write, stats).await.is_err() {
                    break 'conn false;
                }
                out.clear();
            }
            match step {
                Step::Read => break,
                Step::Close => break 'conn true,
                Step::Sleep(d) => {
                    tokio::time::sleep(d).await;
                    if *shutdown.borrow() {
                        shutdown_seen = true;
                        conn.shutdown();
                    }
                    conn.sleep_done(stats, &mut out);
                }
                Step::File => {
                    if send_file(&mut stream, &mut conn, &w, &mut out)
                        .await
                        .is_err()
                    {
                        break 'conn false;
                    }
                }
            }
        }
        if *shutdown.borrow() && !shutdown_seen {
            shutdown_seen = true;
            if conn.shutdown() {
                break false;
            }
        }
        let p = conn.phase();
        if p == Phase::Idle || p != phase {
            deadline = Instant::now() + p.timeout(&t);
            phase = p;
            // The timer is re-armed lazily when the deadline moves later, at once
            // when it moves earlier (e.g. idle 60 s -> header 10 s).
            if deadline < timer.deadline() {
                timer.as_mut().reset(deadline);
            }
        }
    };
    if linger {
        linger_close(&mut stream).await;
    }
}

/// Write `buf` whole; each write that makes no progress within `limit` fails.
async fn send(
    stream: &mut TcpStream,
    buf: &[u8],
    limit: Duration,
    stats: &WorkerStats,
) -> io::Result<()> {
    let mut off = 0;
    while off < buf.len() {
        // Fast path: the socket buffer usually takes the whole response.
        let n = match stream.try_write(&buf[off..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                match timeout(limit, stream.write(&buf[off..])).await {
                    Ok(r) => r?,
                    Err(_) => return Err(io::ErrorKind::TimedOut.into()),
                }
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        off += n;
        stats.bytes_out.add(n as u64);
    }
    Ok(())
}

/// Serve the pending static file: open on the blocking pool, stream in chunks.
async fn send_file(
    stream: &mut TcpStream,
    conn: &mut Conn,
    w: &Worker,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let stats = w.stats();
    let app = w.app.clone();
    let path = conn.file_path().to_owned();
    let opened = tokio::task::spawn_blocking(move || app.open_static_blocking(&path))
        .await
        .unwrap_or(Err(FileError::Internal));
    let (file, result) = match opened {
        Ok((f, size)) => (Some(f), Ok(size)),
        Err(e) => (None, Err(e)),
    };
    let mut left = conn.file_opened(result, stats, out);
    send(stream, out, w.cfg.timeouts.write, stats).await?;
    out.clear();
    let Some(file) = file.filter(|_| left > 0) else {
        return Ok(());
    };
    let mut file = tokio::fs::File::from_std(file);
    out.resize(64 * 1024, 0);
    while left > 0 {
        let want = out.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut out[..want]).await?;
        if n == 0 {
            // The file shrank under us: the response cannot be completed.
            out.clear();
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        send(stream, &out[..n], w.cfg.timeouts.write, stats).await?;
        left -= n as u64;
    }
    out.clear();
    Ok(())
}

/// Lingering close (see [`net::LINGER`]).
async fn linger_close(stream: &mut TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut scratch = [0u8; 4096];
    let mut drained = 0;
    let _ = timeout(net::LINGER, async {
        while drained < net::LINGER_BYTES {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}
