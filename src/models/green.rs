//! `--model green`: one green thread per connection over a per-worker io_uring
//! reactor ([`crate::green`]). The connection function is the plain blocking-style
//! loop over the shared HTTP core — `let n = stream.read(conn.read_buf())?; …
//! stream.write_all(&out)?;` — and every such call is one io_uring op that parks
//! only the green thread.
//!
//! Per worker thread: one [`Runtime`] (its own ring, scheduler and stacks), one
//! `SO_REUSEPORT` listener, an accept-loop green thread that spawns a green thread
//! per connection, and a shutdown watcher green thread.
//!
//! - Timeouts: the read deadline moves when `Conn::phase()` changes (idle / header /
//!   body), each write gets `--write-timeout`; a missed deadline cancels the op.
//! - `--max-conns` through [`ConnGate`]; EMFILE/ENFILE on accept backs off with a
//!   green `sleep` (other connections keep being served).
//! - Shutdown: the trigger wakes every worker's ring; the watcher soft-interrupts
//!   the worker's green threads — the accept loop stops (its listener closes),
//!   idle connections close, busy ones finish their response with
//!   `Connection: close`. At the grace deadline a hard interrupt abandons whatever
//!   is left, and the worker returns as soon as its last green thread is done.

use std::io;
use std::net::{Shutdown as Direction, TcpListener};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Admitted, ServeError, WorkerCtx};
use crate::app::{App, FileError, OPEN_FLAGS, OPEN_RESOLVE};
use crate::config::Config;
use crate::green::fs::{self, GvtFile};
use crate::green::net::{GvtListener, GvtStream};
use crate::green::{self, Interrupt, Runtime, RuntimeOptions, StatsSource};
use crate::http::{Conn, Phase, Step};
use crate::net;
use crate::shutdown::Shutdown;
use crate::stats::WorkerStats;

impl StatsSource for App {
    fn worker_stats(&self, worker: usize) -> &WorkerStats {
        self.registry().worker(worker)
    }
}

/// What every green thread of one worker shares.
struct Worker {
    ctx: WorkerCtx,
    shutdown: Arc<Shutdown>,
}

impl std::ops::Deref for Worker {
    type Target = WorkerCtx;
    fn deref(&self) -> &WorkerCtx {
        &self.ctx
    }
}

/// Run the green model until shutdown.
pub fn run(
    cfg: &Config,
    listeners: Vec<TcpListener>,
    app: Arc<App>,
    shutdown: Arc<Shutdown>,
) -> Result<(), ServeError> {
    let sd = shutdown.clone();
    super::run_workers(cfg, app, listeners, &shutdown, move |ctx, listener| {
        let w = Worker {
            ctx,
            shutdown: sd.clone(),
        };
        worker_thread(w, listener)
    })
}

fn worker_thread(w: Worker, listener: TcpListener) -> Result<(), ServeError> {
    let opts = RuntimeOptions {
        stack_size: w.cfg.green_stack_size,
        uring: w.cfg.uring,
    };
    let rt = Runtime::new(&opts)
        .map_err(|e| ServeError::Unavailable(crate::uring::probe::explain_setup_error(&e)))?;
    let mut rt = rt.with_stats(w.app.clone() as Arc<dyn StatsSource>, w.index);
    let waker = rt.waker();
    w.shutdown.on_trigger(move || waker.wake());
    let listener = GvtListener::from_std(listener)
        .map_err(|e| ServeError::Io("cannot adopt listener".into(), e))?;
    let w = Rc::new(w);
    match rt.block_on(move || {
        let watcher = Rc::clone(&w);
        green::try_spawn(move || watch_shutdown(&watcher))?;
        accept_loop(&w, listener);
        Ok::<(), io::Error>(())
    }) {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(ServeError::Io(
            "cannot start the shutdown watcher".into(),
            e,
        )),
        Ok(Err(_)) => Err(ServeError::Io(
            "accept loop panicked".into(),
            io::Error::other("panic"),
        )),
        Err(e) => Err(ServeError::Io("green runtime failed".into(), e)),
    }
}

/// Wait for the shutdown trigger, then stop the worker's green threads gently and,
/// at the grace deadline, firmly.
fn watch_shutdown(w: &Worker) {
    while !w.shutdown.is_triggered() {
        if green::wait_wake().is_err() {
            break;
        }
    }
    let _ = green::interrupt_all(Interrupt::Soft);
    let deadline = w.shutdown.deadline().unwrap_or_else(Instant::now);
    let stats = w.stats();
    while stats.accepted.get() > stats.closed.get() {
        let now = Instant::now();
        if now >= deadline {
            let _ = green::interrupt_all(Interrupt::Hard);
            return;
        }
        let _ = green::sleep((deadline - now).min(Duration::from_millis(10)));
    }
}

fn accept_loop(w: &Rc<Worker>, listener: GvtListener) {
    let stats = w.stats();
    loop {
        match listener.accept() {
            Ok(stream) => {
                if !w.gate.try_open() {
                    stats.refused.inc();
                    net::send_refusal(&stream);
                    continue;
                }
                stats.accepted.inc();
                net::tune_stream(&stream);
                let cw = Rc::clone(w);
                if let Err(e) = green::try_spawn(move || connection(stream, &cw)) {
                    eprintln!("gvhttpd: cannot start a green thread for a connection: {e}");
                    w.gate.close();
                    stats.closed.inc();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(e) if net::is_fd_exhaustion(&e) => {
                // Back off instead of spinning on a full descriptor table (case 41).
                if green::sleep(net::ACCEPT_BACKOFF).is_err() {
                    return;
                }
            }
            Err(_) => {} // ECONNABORTED and friends: the next accept is fine.
        }
        if w.shutdown.is_triggered() {
            return; // the listener closes here: stop accepting
        }
    }
}

/// Bytes an idle connection's read takes into its stack buffer (a first read of a
/// bigger request just continues into the connection's own buffer).
const IDLE_READ: usize = 1024;

/// One connection, start to close, in blocking style.
fn connection(mut stream: GvtStream, w: &Worker) {
    let _open = Admitted(w);
    let stats = w.stats();
    let t = w.cfg.timeouts;
    let mut conn = Conn::new(w.cfg.limits);
    let mut out = Vec::new();
    let mut phase = Phase::Idle;
    let mut shutting_down = false;
    stream.set_write_timeout(Some(t.write));
    stream.set_read_deadline(Some(Instant::now() + t.idle));
    // An idle connection reads into this buffer on its own stack (whose top page is
    // resident anyway) and holds no heap input buffer while it waits.
    let mut idle = [0u8; IDLE_READ];
    let linger = 'conn: loop {
        let read = if conn.phase() == Phase::Idle {
            conn.release_idle_buffer();
            stream.read(&mut idle).inspect(|&n| conn.feed(&idle[..n]))
        } else {
            stream.read(conn.read_buf()).inspect(|&n| conn.filled(n))
        };
        match read {
            Ok(0) => conn.peer_closed(),
            Ok(n) => stats.bytes_in.add(n as u64),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                conn.read_timed_out(stats, &mut out);
                break send(&mut stream, &out, stats).is_ok() && !out.is_empty();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                // Shutdown: close when idle (or when interrupted again, at the deadline).
                if shutting_down || conn.shutdown() {
                    break false;
                }
                shutting_down = true;
                let end = w.shutdown.deadline().unwrap_or_else(Instant::now);
                stream.set_read_deadline(Some(end.min(Instant::now() + phase.timeout(&t))));
                continue;
            }
            Err(_) => break false,
        }
        loop {
            // Parsing and answering run on the worker's stack: the green stack stays
            // at the depth of this loop (see `green::on_worker_stack`).
            let step = green::on_worker_stack(|| conn.process(&w.app, stats, &mut out));
            if !out.is_empty() {
                if send(&mut stream, &out, stats).is_err() {
                    break 'conn false;
                }
                out.clear();
            }
            match step {
                Step::Read => break,
                Step::Close => break 'conn true,
                Step::Sleep(d) => {
                    if green::sleep(d).is_err() {
                        break 'conn false;
                    }
                    if w.shutdown.is_triggered() {
                        conn.shutdown(); // the deferred reply becomes the last one
                    }
                    conn.sleep_done(stats, &mut out);
                }
                Step::File => {
                    if w.shutdown.is_triggered() {
                        conn.shutdown();
                    }
                    if send_file(&mut stream, &mut conn, w, &mut out).is_err() {
                        break 'conn false;
                    }
                }
            }
        }
        let p = conn.phase();
        if p == Phase::Idle || p != phase {
            phase = p;
            let mut at = Instant::now() + p.timeout(&t);
            if shutting_down {
                at = at.min(w.shutdown.deadline().unwrap_or(at));
            }
            stream.set_read_deadline(Some(at));
        }
    };
    if linger {
        linger_close(&mut stream);
    }
    let _ = stream.close();
}

/// Write `buf` whole and count it.
fn send(stream: &mut GvtStream, buf: &[u8], stats: &WorkerStats) -> io::Result<()> {
    stream.write_all(buf)?;
    stats.bytes_out.add(buf.len() as u64);
    Ok(())
}

/// Bytes of a static file read per op.
const FILE_CHUNK: usize = 64 * 1024;

/// Serve the pending static file with green file I/O: openat2 beneath the root,
/// statx, then read / send in bounded chunks.
fn send_file(
    stream: &mut GvtStream,
    conn: &mut Conn,
    w: &Worker,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let stats = w.stats();
    let (file, result) = match open_static(w, conn.file_path()) {
        Ok((f, size)) => (Some(f), Ok(size)),
        Err(e) => (None, Err(e)),
    };
    let mut left = conn.file_opened(result, stats, out);
    send(stream, out, stats)?;
    out.clear();
    let Some(file) = file else {
        return Ok(());
    };
    let mut chunk = vec![0u8; FILE_CHUNK.min(usize::try_from(left).unwrap_or(FILE_CHUNK))];
    let mut offset = 0u64;
    while left > 0 {
        let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read_at(&mut chunk[..want], offset)?;
        if n == 0 {
            // The file shrank under us: the response cannot be completed.
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        send(stream, &chunk[..n], stats)?;
        offset += n as u64;
        left -= n as u64;
    }
    file.close()
}

fn open_static(w: &Worker, rel: &str) -> Result<(GvtFile, u64), FileError> {
    let root = w.app.static_root().ok_or(FileError::NotFound)?;
    let errno = |e: io::Error| {
        e.raw_os_error()
            .map_or(FileError::Internal, FileError::from_errno)
    };
    let file =
        fs::open_beneath(root, Path::new(rel), OPEN_FLAGS as u64, OPEN_RESOLVE).map_err(errno)?;
    let st = file.stat().map_err(|_| FileError::Internal)?;
    if !st.is_regular() {
        let _ = file.close();
        return Err(FileError::NotFound);
    }
    Ok((file, st.size))
}

/// Lingering close (see [`net::LINGER`]): shut down our side, discard what the
/// client still sends for a bounded time, so unread input does not turn into a RST
/// that destroys the response.
fn linger_close(stream: &mut GvtStream) {
    if stream.shutdown(Direction::Write).is_err() {
        return;
    }
    stream.set_read_deadline(Some(Instant::now() + net::LINGER));
    let mut scratch = [0u8; 1024];
    let mut drained = 0;
    while drained < net::LINGER_BYTES {
        match stream.read(&mut scratch) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}
