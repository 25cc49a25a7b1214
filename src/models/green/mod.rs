//! `--model green`: one green thread per connection over an io_uring reactor
//! ([`crate::green`]), executing the driver's actions in blocking style —
//! `let n = stream.read(buf)?` is one io_uring op that parks only the green thread.
//!
//! Per worker thread: one [`Runtime`] (ring or `--green-reactor dedicated` client,
//! scheduler, stacks), one `SO_REUSEPORT` listener, an accept-loop green thread
//! that spawns one per connection, and a shutdown watcher green thread.
//!
//! How each action is performed:
//! - `Recv`: an idle connection reads into a 1 KiB buffer on its own stack (whose
//!   top page is resident anyway), so it holds no heap buffer while it waits;
//!   otherwise it reads into the driver's buffer. The action's deadline becomes the
//!   read's deadline (a missed deadline cancels the op: `TimedOut`).
//! - `Send`: one send op per action, with the action's deadline.
//! - `Sleep`: a green sleep that a soft interrupt also ends.
//! - `Yield` (between `/work` slices): a [`green::nop`], so the ring is reaped first
//!   (a `yield_now` reruns in the same pass, before any I/O), then a reset check.
//! - `Open`: `openat2(RESOLVE_CACHED)` + `fstat` on this thread when the path is in
//!   the lookup cache, else an `OPENAT2` op and the `fstat`.
//! - `SendFile` (zero-copy, [`crate::config::Config::zero_copy_files`]):
//!   `sendfile(2)` on the stream, accepted `O_NONBLOCK`; while its buffer is full,
//!   a park on a `POLL_ADD` for writability with the action's deadline
//!   ([`GvtStream::send_file`]).
//! - `ReadFile` (zero-copy off) / `CloseFile`: `READ`, `CLOSE` ops.
//! - Driver calls run on the worker's own stack ([`green::on_worker_stack`]), so a
//!   green stack stays at the depth of the connection loop.
//! - Shutdown: the watcher soft-interrupts every green thread (the accept loop
//!   returns and its listener closes; waiting reads and sleeps end and report the
//!   shutdown to their driver), then waits for a cross-thread wake-up until the
//!   grace deadline ([`green::wait_wake_until`]: one timer op), when it interrupts
//!   hard whatever is still blocked (a send to a client that reads nothing). The
//!   last connection to end wakes it early ([`green::wake_workers`]); nothing polls.
//! - `--green-sched steal`: connection threads are spawned migratable in one
//!   [`crate::green::StealGroup`] (why this thread meets the contract: [`crate::green::steal`]);
//!   the live count is then the server's, and the last connection to end, on
//!   whichever worker, wakes every worker's watcher.

use std::io;
use std::net::{Shutdown as Direction, TcpListener};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::{Peer, ServeError, WorkerCtx};

mod proxy;
mod support;
use crate::accept::{Admission, Retry};
use crate::green::fs::GvtFile;
use crate::green::net::{GvtListener, GvtStream};
use crate::green::{self, Interrupt, Runtime, RuntimeOptions, StatsSource};
use crate::http::{Action, Driver, Env};
use support::{core, on_error, open_static};
pub(super) use support::{reactor_for_server, Shared};

/// What every green thread of one worker shares (`Arc` + atomics: with stealing
/// its connection threads run on other workers too).
struct Worker {
    ctx: WorkerCtx,
    /// Connection green threads still running: this worker's, or (stealing) the
    /// server's.
    live: Arc<AtomicUsize>,
    steal: bool,
}

/// One worker thread of this model, until shutdown (see [`super::run_workers`]).
pub(super) fn worker_thread(
    ctx: WorkerCtx,
    listener: TcpListener,
    shared: &Shared,
) -> Result<(), ServeError> {
    let opts = RuntimeOptions {
        stack_size: ctx.cfg.green_stack_size,
        uring: ctx.cfg.uring,
    };
    let rt = Runtime::for_worker(&opts, shared.reactor.as_deref(), ctx.index)
        .map_err(|e| ServeError::Unavailable(crate::uring::probe::explain_setup_error(&e)))?;
    let mut rt = rt.with_stats(ctx.app.clone() as Arc<dyn StatsSource>, ctx.index);
    if let Some(g) = &shared.group {
        rt = rt
            .with_steal(g.clone(), ctx.index)
            .map_err(|e| ServeError::io("cannot join the steal group", e))?;
    }
    let waker = rt.waker();
    ctx.shutdown.on_trigger(move || waker.wake());
    let mut listener =
        GvtListener::from_std(listener).map_err(|e| ServeError::io("cannot adopt listener", e))?;
    // Files go out by sendfile(2) on this thread: streams must not block it.
    listener.set_nonblocking_streams(ctx.cfg.zero_copy_files());
    let w = Arc::new(Worker {
        ctx,
        live: match shared.group {
            Some(_) => shared.live.clone(),
            None => Arc::new(AtomicUsize::new(0)),
        },
        steal: shared.group.is_some(),
    });
    match rt.block_on(move || {
        let watcher = Arc::clone(&w);
        green::try_spawn(move || watch_shutdown(&watcher))?;
        accept_loop(&w, listener);
        Ok::<(), io::Error>(())
    }) {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(ServeError::io("cannot start the shutdown watcher", e)),
        Ok(Err(_)) => Err(ServeError::Panic("the green accept loop".into())),
        Err(e) => Err(ServeError::io("green runtime failed", e)),
    }
}

/// Wait for the trigger, stop the worker's green threads gently, and at the grace
/// deadline firmly (unless the last connection ended first and woke us).
fn watch_shutdown(w: &Worker) {
    while !w.ctx.shutdown.is_triggered() {
        if green::wait_wake().is_err() {
            break;
        }
    }
    let _ = green::interrupt_all(Interrupt::Soft);
    let grace = Driver::cut_at(&w.ctx.shutdown).unwrap_or_else(Instant::now);
    // The last connection to end (on whichever worker, when stealing) wakes us.
    while w.live.load(Ordering::SeqCst) > 0 {
        match green::wait_wake_until(grace) {
            Ok(true) => {} // woken: look again
            // The grace deadline (or, which nothing here sends, an interrupt).
            Ok(false) | Err(_) => {
                let _ = green::interrupt_all(Interrupt::Hard);
                return;
            }
        }
    }
}

fn accept_loop(w: &Arc<Worker>, listener: GvtListener) {
    let acceptor = w.ctx.acceptor();
    while !acceptor.shutting_down() {
        match listener.accept() {
            Ok(stream) => {
                let Some((admission, driver)) = acceptor.admit(&stream) else {
                    continue; // refused (503 sent): dropped = closed
                };
                let cw = Arc::clone(w);
                w.live.fetch_add(1, Ordering::AcqRel);
                // Boxed: the spawn path moves the body closure several times, and
                // every copy of an inline `Driver` stayed on the green stack, which
                // an idle connection keeps resident (one page instead of two).
                let driver = Box::new(driver);
                let body = move || connection(stream, admission, driver, &cw);
                let spawned = match w.steal {
                    true => green::steal::spawn_migratable(body).map(drop),
                    false => green::try_spawn(body).map(drop),
                };
                if let Err(e) = spawned {
                    w.live.fetch_sub(1, Ordering::AcqRel);
                    let _ = io::Write::write_fmt(
                        &mut io::stderr(),
                        format_args!("gvhttpd: cannot start a green thread: {e}\n"),
                    );
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(e) => match acceptor.failed(&e) {
                Retry::Now => {}
                Retry::After(d) => {
                    if green::sleep_or_interrupted(d).is_err() {
                        return;
                    }
                }
            },
        }
    }
    // The listener closes here: new clients are refused at once.
}

/// Bytes an idle connection's read takes into its stack buffer (a bigger request
/// just continues into the driver's buffer).
const IDLE_READ: usize = 1024;

/// Counts a running connection and holds its admission; the last to end during
/// shutdown wakes the watcher (when stealing: every worker's watcher, since the
/// count is the server's and this may not be the worker it started on).
struct Live<'a>(&'a Worker, Admission);

impl Drop for Live<'_> {
    fn drop(&mut self) {
        // The close is counted by the worker this runs on (single-writer counters).
        self.1.count_on(here(self.0));
        let left = self.0.live.fetch_sub(1, Ordering::SeqCst) - 1;
        if left == 0 && self.0.ctx.shutdown.is_triggered() {
            green::wake_workers();
        }
    }
}

/// The worker the calling green thread runs on now (with stealing it changes).
fn here(w: &Worker) -> usize {
    green::current_worker().unwrap_or(w.ctx.index)
}

/// One connection, start to close, in blocking style.
fn connection(mut stream: GvtStream, admission: Admission, mut d: Box<Driver>, w: &Worker) {
    let _live = Live(w, admission);
    let app = &*w.ctx.app;
    // Each driver call counts into the stats of the worker it runs on.
    let env = |now| Env::new(app, w.ctx.registry.worker(here(w)), &w.ctx.shutdown, now);
    let mut file: Option<GvtFile> = None;
    let mut idle_buf = [0u8; IDLE_READ];
    let mut act = d.start(&env(Instant::now()));
    loop {
        act = match act {
            Action::Recv { deadline, .. } | Action::Drain { deadline } => {
                // An idle connection reads into its stack buffer, holding no heap one.
                let idle = matches!(act, Action::Recv { idle: true, .. });
                stream.set_read_deadline(Some(deadline));
                let r = match idle {
                    true => stream.read(&mut idle_buf),
                    false => stream.read(d.recv_buf()),
                };
                let e = env(Instant::now());
                match r {
                    Ok(0) => core(|| d.eof(&e)),
                    Ok(n) if idle => core(|| d.feed(&e, &idle_buf[..n])),
                    Ok(n) => core(|| d.received(&e, n)),
                    Err(err) => on_error(&mut d, e, &err),
                }
            }
            Action::Send { deadline, more } => {
                stream.set_write_deadline(Some(deadline));
                let r = stream.write_more(d.pending(), more);
                let e = env(Instant::now());
                match r {
                    Ok(n) if n > 0 => core(|| d.sent(&e, n)),
                    Ok(_) => d.failed(),
                    Err(err) => on_error(&mut d, e, &err),
                }
            }
            Action::SendFile { deadline } => {
                stream.set_write_deadline(Some(deadline));
                let (offset, len) = d.file_span();
                let r = match &file {
                    Some(f) => stream.send_file(f.as_fd(), offset, len),
                    None => Ok(0),
                };
                let e = env(Instant::now());
                match r {
                    // 0: the file ended before the promised length (the driver cuts).
                    Ok(n) => core(|| d.file_sent(&e, n)),
                    Err(err) => on_error(&mut d, e, &err),
                }
            }
            Action::Sleep { until } => {
                let r =
                    green::sleep_or_interrupted(until.saturating_duration_since(Instant::now()));
                let e = env(Instant::now());
                match r {
                    // Waiting for buffer memory, the connection reads nothing:
                    // look for a peer that went away meanwhile.
                    Ok(()) if d.backing_off() && super::peer_state(&stream) != Peer::Here => {
                        d.failed()
                    }
                    Ok(()) => core(|| d.slept(&e)),
                    Err(err) => on_error(&mut d, e, &err),
                }
            }
            Action::Open => {
                let opened = open_static(app, d.file_path());
                let e = env(Instant::now());
                match opened {
                    Ok((f, meta)) => {
                        file = Some(f);
                        core(|| d.file_opened(&e, Ok(meta)))
                    }
                    Err(err) => core(|| d.file_opened(&e, Err(err))),
                }
            }
            Action::ReadFile { offset, .. } => {
                let n = match &file {
                    Some(f) => f.read_at(d.file_buf(), offset).unwrap_or(0),
                    None => 0,
                };
                d.file_read(&env(Instant::now()), n)
            }
            Action::CloseFile => {
                if let Some(f) = file.take() {
                    let _ = f.close();
                }
                core(|| d.file_closed(&env(Instant::now())))
            }
            Action::Yield => {
                let _ = green::nop(); // the ring is reaped; an interrupt changes nothing here
                match super::peer_state(&stream) {
                    Peer::Reset => d.failed(),
                    Peer::HalfClosed => {
                        d.peer_half_closed();
                        core(|| d.resumed(&env(Instant::now())))
                    }
                    Peer::Here => core(|| d.resumed(&env(Instant::now()))),
                }
            }
            Action::ShutdownWrite => match stream.shutdown(Direction::Write) {
                Ok(()) => d.write_shut(&env(Instant::now())),
                Err(_) => d.failed(),
            },
            Action::UpConnect { .. }
            | Action::UpSend { .. }
            | Action::UpRecv { .. }
            | Action::UpRelease { .. } => proxy::exchange(&mut stream, &mut d, act, w),
            Action::Close => break,
        };
    }
    if let Some(f) = file.take() {
        let _ = f.close();
    }
    if d.resets() {
        super::reset_on_close(&stream);
    }
    let _ = stream.close();
}
