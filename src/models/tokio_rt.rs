//! `--model tokio`: tokio on epoll, one future per connection, executing the
//! driver's actions.
//!
//! Shape: one OS thread per worker, each running its own `current_thread` runtime
//! with its own `SO_REUSEPORT` listener — the same thread-per-core shape as the two
//! io_uring models, so the comparison isolates the I/O mechanism. Measurements of
//! this choice against one `multi_thread` runtime are in `results/`.
//!
//! How each action is performed:
//! - `Recv` / `Drain`: wait for readability, then one non-blocking `try_read` into
//!   the driver's buffer (an idle connection takes its buffer from the pool only
//!   once data is there, so it holds none while it waits).
//! - `Send`: `try_write` first (the socket buffer usually takes the whole
//!   response); only when it is full, wait for writability.
//! - `Sleep` and every deadline: one `tokio::time::Sleep` per connection, re-armed
//!   lazily — it is moved only when a deadline comes earlier; when it fires early
//!   the driver hands back the same action and it is reset to the real deadline.
//! - `Open` / `ReadFile` / `CloseFile`: tokio's blocking pool (`spawn_blocking`,
//!   `tokio::fs::File`).
//! - Shutdown: a `watch` channel per worker; each connection's wait also selects on
//!   it and reports it to the driver once.

use std::io;
use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::{sleep_until, Instant as TokioInstant};

use super::{ServeError, WorkerCtx};
use crate::accept::{Admission, Retry};
use crate::files;
use crate::http::{Action, Driver, Env, FileError};

/// What every connection task of one worker shares.
struct Worker {
    ctx: WorkerCtx,
    shutdown: watch::Receiver<bool>,
    /// Connection tasks still running; the last one to end during shutdown
    /// notifies `done`.
    live: AtomicUsize,
    done: Notify,
}

/// Counts one running connection task (also when it is cancelled or panics).
struct Live(Arc<Worker>);

impl Drop for Live {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.done.notify_one();
        }
    }
}

/// One worker thread of this model, until shutdown (see [`super::run_workers`]).
pub(super) fn worker_thread(ctx: WorkerCtx, listener: StdListener) -> Result<(), ServeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::io("cannot build tokio runtime", e))?;
    let (tx, rx) = watch::channel(false);
    ctx.shutdown.on_trigger(move || {
        tx.send_replace(true);
    });
    let w = Arc::new(Worker {
        ctx,
        shutdown: rx,
        live: AtomicUsize::new(0),
        done: Notify::new(),
    });
    rt.block_on(async move {
        let listener = TcpListener::from_std(listener)
            .map_err(|e| ServeError::io("cannot register listener", e))?;
        accept_loop(&w, listener).await;
        // The listener is closed. Every connection's driver cuts it at the grace
        // deadline at the latest; wait for the last one to end.
        while w.live.load(Ordering::Acquire) > 0 {
            w.done.notified().await;
        }
        Ok(())
    })
}

async fn accept_loop(w: &Arc<Worker>, listener: TcpListener) {
    let acceptor = w.ctx.acceptor();
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
                let Some((admission, driver)) = acceptor.admit(&stream) else {
                    continue; // refused (503 sent) or shutting down: dropped = closed
                };
                w.live.fetch_add(1, Ordering::AcqRel);
                let live = Live(w.clone());
                // Boxed: an argument of an async fn is kept beside its locals in the
                // future, so a Driver passed by value would be stored twice.
                tokio::spawn(connection(stream, admission, Box::new(driver), live));
            }
            Err(e) => match acceptor.failed(&e) {
                Retry::Now => {}
                Retry::After(d) => tokio::time::sleep(d).await,
            },
        }
    }
}

/// What woke a connection's wait.
enum Wake {
    Ready,
    Timer,
    Shutdown,
}

async fn connection(mut stream: TcpStream, admission: Admission, mut d: Box<Driver>, live: Live) {
    let _admission = admission;
    let w = &*live.0;
    let (app, stats) = (&*w.ctx.app, w.ctx.stats());
    let mut shutdown = w.shutdown.clone();
    let mut shutdown_seen = false;
    // Boxed: most connections never open a file, and every idle one carries this slot.
    let mut file: Option<Box<tokio::fs::File>> = None;
    let mut now = Instant::now();
    let mut act = d.start(&Env::new(app, stats, now));
    let timer = sleep_until(TokioInstant::from_std(act.deadline().unwrap_or(now)));
    tokio::pin!(timer);
    loop {
        if let Some(at) = act.deadline() {
            let at = TokioInstant::from_std(at);
            if at < timer.deadline() || timer.is_elapsed() {
                timer.as_mut().reset(at);
            }
        }
        // Wait for what the action needs, its deadline, or the shutdown trigger.
        let wake = match act {
            Action::Recv { .. } | Action::Drain { .. } => tokio::select! {
                biased;
                _ = stream.readable() => Wake::Ready,
                _ = &mut timer => Wake::Timer,
                _ = shutdown.changed(), if !shutdown_seen => Wake::Shutdown,
            },
            Action::Send { .. } => Wake::Ready, // try the write first
            Action::Sleep { .. } => tokio::select! {
                _ = &mut timer => Wake::Timer,
                _ = shutdown.changed(), if !shutdown_seen => Wake::Shutdown,
            },
            _ => Wake::Ready,
        };
        if !matches!(act, Action::Send { .. }) {
            now = Instant::now();
        }
        let env = Env::new(app, stats, now);
        act = match wake {
            Wake::Timer => d.timed_out(&env),
            Wake::Shutdown => {
                shutdown_seen = true;
                let grace = w.ctx.shutdown.deadline().unwrap_or(now);
                d.shutdown(&env, grace)
            }
            Wake::Ready => match act {
                Action::Recv { idle, .. } => match try_read(&stream, d.recv_buf()) {
                    Ok(0) => d.eof(&env),
                    Ok(n) => d.received(&env, n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if idle {
                            d.release_idle_buffers();
                        }
                        act
                    }
                    Err(_) => d.failed(),
                },
                Action::Drain { .. } => match try_read(&stream, d.recv_buf()) {
                    Ok(0) => d.eof(&env),
                    Ok(n) => d.drained(&env, n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => act,
                    Err(_) => d.failed(),
                },
                Action::Send { .. } => match stream.try_write(d.pending()) {
                    Ok(n) if n > 0 => d.sent(&env, n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        match wait_writable(&stream, &mut timer, &mut shutdown, shutdown_seen).await
                        {
                            Wake::Ready => act,
                            Wake::Timer => d.timed_out(&Env::new(app, stats, Instant::now())),
                            Wake::Shutdown => {
                                shutdown_seen = true;
                                let grace = w.ctx.shutdown.deadline().unwrap_or(now);
                                d.shutdown(&Env::new(app, stats, Instant::now()), grace)
                            }
                        }
                    }
                    _ => d.failed(),
                },
                Action::Open => {
                    let (app2, path) = (w.ctx.app.clone(), d.file_path().to_owned());
                    let opened = tokio::task::spawn_blocking(move || {
                        files::open_blocking(app2.static_root(), &path)
                    })
                    .await
                    .unwrap_or(Err(FileError::Internal));
                    let env = Env::new(app, stats, Instant::now());
                    match opened {
                        Ok((f, size)) => {
                            file = Some(Box::new(tokio::fs::File::from_std(f)));
                            d.file_opened(&env, Ok(size))
                        }
                        Err(e) => d.file_opened(&env, Err(e)),
                    }
                }
                Action::ReadFile { len, .. } => {
                    // Chunks are read in order from offset 0, so the file position
                    // is always the requested offset.
                    let n = match file.as_mut() {
                        Some(f) => f.read(&mut d.file_buf()[..len]).await.unwrap_or(0),
                        None => 0,
                    };
                    d.file_read(&Env::new(app, stats, Instant::now()), n)
                }
                Action::CloseFile => {
                    file = None;
                    d.file_closed(&env)
                }
                Action::ShutdownWrite => match stream.shutdown().await {
                    Ok(()) => d.write_shut(&env),
                    Err(_) => d.failed(),
                },
                Action::Sleep { .. } => act, // only the timer or shutdown end a sleep
                Action::Close => break,
            },
        };
        if act == Action::Close {
            break;
        }
    }
}

/// One non-blocking read. A short read means the socket is drained: tokio's
/// readiness for it is cleared at once (no syscall; tokio keeps a newer event), so
/// the next wait sleeps until the kernel reports new data instead of first trying a
/// read that can only fail with `EAGAIN` (as `AsyncRead` does on a short read too).
fn try_read(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let n = stream.try_read(buf)?;
    if n > 0 && n < buf.len() {
        let _ = stream.try_io(Interest::READABLE, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
    }
    Ok(n)
}

/// The socket buffer is full: wait until it drains, the deadline, or shutdown.
async fn wait_writable(
    stream: &TcpStream,
    timer: &mut std::pin::Pin<&mut tokio::time::Sleep>,
    shutdown: &mut watch::Receiver<bool>,
    shutdown_seen: bool,
) -> Wake {
    tokio::select! {
        biased;
        _ = stream.writable() => Wake::Ready,
        _ = timer.as_mut() => Wake::Timer,
        _ = shutdown.changed(), if !shutdown_seen => Wake::Shutdown,
    }
}
