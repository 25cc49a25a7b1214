//! One connection task: the executor of its driver's actions on tokio, shared by
//! both runtimes (`per-worker` and `multi-thread`). Every `Env` is built for the
//! event at hand with [`Shared::stats`], so under the multi-thread runtime a task
//! that moved to another thread counts on that thread's block.

use std::future::poll_fn;
use std::io;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, Instant as TokioInstant};

use super::{Live, Shared, Watch};
use crate::accept::Admission;
use crate::app::App;
use crate::files;
use crate::http::{Action, Driver, Env, FileError};
use crate::models::Peer;

/// Releases the `--max-conns` slot and counts the close on the counters of the
/// thread the task ends on (it may have moved since it was admitted).
struct Homed<'a> {
    admission: Admission,
    w: &'a Shared,
}

impl Drop for Homed<'_> {
    fn drop(&mut self) {
        self.admission.count_on(self.w.stats_index());
    }
}

/// What woke a connection's wait.
enum Wake {
    Ready,
    Timer,
    Shutdown,
}

/// Serve one connection, start to close. `live` is dropped last (after the
/// admission), so the runtime's last wait ends only when the close is counted.
pub(super) async fn connection(
    mut stream: TcpStream,
    admission: Admission,
    mut d: Box<Driver>,
    live: Live,
) {
    let w = &*live.0;
    let _homed = Homed { admission, w };
    let app = &*w.ctx.app;
    let mut shutdown = Watch::new(&w.stop);
    // Each event's environment, counted on the thread the task runs on now.
    let env = |now| Env::new(app, w.stats(), &w.ctx.shutdown, now);
    // Boxed: most connections never open a file, and every idle one carries this
    // slot. With the file's position (reads go through it, not at an offset).
    let mut file: Option<Box<(tokio::fs::File, u64)>> = None;
    let mut now = Instant::now();
    let mut act = d.start(&env(now));
    let timer = sleep_until(TokioInstant::from_std(act.deadline().unwrap_or(now)));
    tokio::pin!(timer);
    loop {
        arm(&mut timer, act.deadline());
        // Wait for what the action needs, its deadline, or the shutdown trigger.
        let wake = match act {
            Action::Recv { .. } | Action::Drain { .. } => tokio::select! {
                biased;
                _ = poll_fn(|cx| stream.poll_read_ready(cx)) => Wake::Ready,
                _ = &mut timer => Wake::Timer,
                _ = shutdown.triggered(), if !d.shutting_down() => Wake::Shutdown,
            },
            Action::Send { .. } | Action::SendFile { .. } => Wake::Ready, // try the write first
            Action::Sleep { .. } => tokio::select! {
                _ = &mut timer => Wake::Timer,
                _ = shutdown.triggered(), if !d.shutting_down() => Wake::Shutdown,
            },
            _ => Wake::Ready,
        };
        if !matches!(act, Action::Send { .. } | Action::SendFile { .. }) {
            now = Instant::now();
        }
        let e = env(now);
        act = match wake {
            // Waiting for buffer memory, the connection reads nothing: look for a
            // peer that went away meanwhile.
            Wake::Timer if d.backing_off() && super::super::peer_state(&stream) != Peer::Here => {
                d.failed()
            }
            Wake::Timer => d.timed_out(&e),
            Wake::Shutdown => d.shutdown(&e),
            Wake::Ready => match act {
                Action::Recv { idle, .. } => match try_read(&stream, d.recv_buf()) {
                    Ok(0) => d.eof(&e),
                    Ok(n) => d.received(&e, n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if idle {
                            d.release_idle_buffers();
                        }
                        act
                    }
                    Err(_) => d.failed(),
                },
                Action::Drain { .. } => match try_read(&stream, d.recv_buf()) {
                    Ok(0) => d.eof(&e),
                    Ok(n) => d.drained(&e, n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => act,
                    Err(_) => d.failed(),
                },
                Action::Send { more, .. } => match try_write(&stream, d.pending(), more) {
                    Ok(n) if n > 0 => d.sent(&e, n),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        let waiting = !d.shutting_down();
                        match wait_writable(&stream, &mut timer, &mut shutdown, waiting).await {
                            Wake::Ready => act,
                            Wake::Timer => d.timed_out(&env(Instant::now())),
                            Wake::Shutdown => d.shutdown(&env(Instant::now())),
                        }
                    }
                    _ => d.failed(),
                },
                Action::Open => {
                    // A path in the kernel's lookup cache opens here, on the
                    // runtime's thread; any other on the blocking pool.
                    // (A let, not the match's scrutinee: a temporary there would
                    // live across the await below, in every connection's future.)
                    let cached = files::open_cached(app.static_root(), d.file_path());
                    let opened = match cached {
                        Some(r) => r,
                        None => {
                            let (app2, path) = (w.ctx.app.clone(), d.file_path().to_owned());
                            let open = tokio::task::spawn_blocking(move || {
                                files::open_blocking(app2.static_root(), &path)
                            });
                            // An open the pool cannot finish (a hung file system)
                            // is abandoned when the driver cuts connections, so it
                            // cannot hold shutdown. Boxed, as the read below: this
                            // wait's state (a timer among it) would otherwise size
                            // every connection's task, idle ones too.
                            Box::pin(async {
                                tokio::select! {
                                    r = open => r.unwrap_or(Err(FileError::Internal)),
                                    () = cut(&env, &mut shutdown) => Err(FileError::Internal),
                                }
                            })
                            .await
                        }
                    };
                    let e = env(Instant::now());
                    match opened {
                        Ok((f, meta)) => {
                            file = Some(Box::new((tokio::fs::File::from_std(f), 0)));
                            d.file_opened(&e, Ok(meta))
                        }
                        Err(err) => d.file_opened(&e, Err(err)),
                    }
                }
                Action::ReadFile { offset, len } => {
                    // Chunks are read in order, so the file position is the
                    // requested offset but for the first chunk of a range, which
                    // seeks there first.
                    let n = match file.as_mut() {
                        // (A read the pool cannot finish is abandoned like an open.)
                        Some(f) => {
                            let (f, pos) = &mut **f;
                            let buf = &mut d.file_buf()[..len];
                            let n = Box::pin(async {
                                tokio::select! {
                                    r = read_at(f, *pos, buf, offset) => r.unwrap_or(0),
                                    () = cut(&env, &mut shutdown) => 0,
                                }
                            })
                            .await;
                            *pos = offset + n as u64;
                            n
                        }
                        None => 0,
                    };
                    d.file_read(&env(Instant::now()), n)
                }
                Action::SendFile { .. } => match send_file(&stream, file.as_deref(), &d) {
                    // 0: the file ended before the promised length.
                    Moved::Bytes(n) => d.file_sent(&e, n),
                    Moved::WouldBlock => {
                        let waiting = !d.shutting_down();
                        match wait_writable(&stream, &mut timer, &mut shutdown, waiting).await {
                            Wake::Ready => act,
                            Wake::Timer => d.timed_out(&env(Instant::now())),
                            Wake::Shutdown => d.shutdown(&env(Instant::now())),
                        }
                    }
                    Moved::Failed => d.failed(),
                },
                Action::CloseFile => {
                    file = None;
                    d.file_closed(&e)
                }
                Action::ShutdownWrite => match stream.shutdown().await {
                    Ok(()) => d.write_shut(&e),
                    Err(_) => d.failed(),
                },
                Action::Sleep { .. } => act, // only the timer or shutdown end a sleep
                Action::Yield => {
                    // Between two slices of work: let the runtime run the others
                    // (and poll for I/O), then notice a reset (the driver notices
                    // a shutdown by itself).
                    tokio::task::yield_now().await;
                    match super::super::peer_state(&stream) {
                        Peer::Reset => d.failed(),
                        Peer::HalfClosed => {
                            d.peer_half_closed();
                            d.resumed(&env(Instant::now()))
                        }
                        Peer::Here => d.resumed(&env(Instant::now())),
                    }
                }
                Action::UpConnect { .. }
                | Action::UpSend { .. }
                | Action::UpRecv { .. }
                | Action::UpRelease { .. } => {
                    // A proxied exchange, in its own (boxed) future: an idle
                    // connection's task carries none of its state.
                    Box::pin(super::proxy::exchange(
                        &stream,
                        &mut d,
                        act,
                        w,
                        &mut shutdown,
                        &mut timer,
                    ))
                    .await
                }
                Action::Close => break,
            },
        };
        if act == Action::Close {
            break;
        }
    }
    if d.resets() {
        super::super::reset_on_close(&stream);
    }
}

/// What one `sendfile` came to. `Copy` and small on purpose: it is the only
/// value alive across the wait for writability, so it adds nothing to the size
/// of every connection's future (an `io::Result` and the span did: +145 B of
/// idle RSS per connection).
#[derive(Clone, Copy)]
enum Moved {
    Bytes(usize),
    WouldBlock,
    Failed,
}

/// `Action::SendFile`: one non-blocking `sendfile(2)` of the span the driver
/// names, from the open file to the socket.
fn send_file(stream: &TcpStream, file: Option<&(tokio::fs::File, u64)>, d: &Driver) -> Moved {
    let Some((f, _)) = file else {
        return Moved::Bytes(0);
    };
    let (offset, len) = d.file_span();
    let r = stream.try_io(Interest::WRITABLE, || {
        let mut at = offset;
        rustix::fs::sendfile(stream, f, Some(&mut at), len).map_err(io::Error::from)
    });
    match r {
        Ok(n) => Moved::Bytes(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Moved::WouldBlock,
        Err(_) => Moved::Failed,
    }
}

/// Ends when the driver cuts connections during shutdown
/// ([`Driver::cut_deadline`]; never, before a shutdown). Waits on the connection's
/// own `shutdown` registration (a new one would lock the table).
async fn cut<'a>(env: &impl Fn(Instant) -> Env<'a, App>, shutdown: &mut Watch) {
    shutdown.triggered().await;
    let at = Driver::cut_deadline(&env(Instant::now())).unwrap_or_else(Instant::now);
    sleep_until(TokioInstant::from_std(at)).await;
}

/// Read into `buf` at `offset` of a file whose position is `pos`.
async fn read_at(
    f: &mut tokio::fs::File,
    pos: u64,
    buf: &mut [u8],
    offset: u64,
) -> io::Result<usize> {
    if pos != offset {
        f.seek(io::SeekFrom::Start(offset)).await?;
    }
    f.read(buf).await
}

/// Arm the connection's one timer for `deadline`: moved only earlier, or when
/// it has fired (a timer that fires before the action's deadline is answered by
/// the driver with the same action), so most waits re-register nothing.
pub(super) fn arm(timer: &mut std::pin::Pin<&mut tokio::time::Sleep>, deadline: Option<Instant>) {
    if let Some(at) = deadline {
        let at = TokioInstant::from_std(at);
        if at < timer.deadline() || timer.is_elapsed() {
            timer.as_mut().reset(at);
        }
    }
}

/// One non-blocking read. A short read means the socket is drained: tokio's
/// readiness for it is cleared at once (no syscall; tokio keeps a newer event), so
/// the next wait sleeps until the kernel reports new data instead of first trying a
/// read that can only fail with `EAGAIN` (as `AsyncRead` does on a short read too).
pub(super) fn try_read(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let n = stream.try_read(buf)?;
    if n > 0 && n < buf.len() {
        let _ = stream.try_io(Interest::READABLE, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
    }
    Ok(n)
}

/// Write some of `buf`; with `more`, as `MSG_MORE` (a zero-copy file body follows
/// at once: the kernel may hold these bytes to send them with its first pages).
fn try_write(stream: &TcpStream, buf: &[u8], more: bool) -> io::Result<usize> {
    if !more {
        return stream.try_write(buf);
    }
    stream.try_io(Interest::WRITABLE, || {
        socket2::SockRef::from(stream).send_with_flags(buf, libc::MSG_MORE | libc::MSG_NOSIGNAL)
    })
}

/// The socket buffer is full: wait until it drains, the deadline, or (while
/// `watch_shutdown`: the driver has not applied it yet) the shutdown trigger.
async fn wait_writable(
    stream: &TcpStream,
    timer: &mut std::pin::Pin<&mut tokio::time::Sleep>,
    shutdown: &mut Watch,
    watch_shutdown: bool,
) -> Wake {
    tokio::select! {
        biased;
        _ = poll_fn(|cx| stream.poll_write_ready(cx)) => Wake::Ready,
        _ = timer.as_mut() => Wake::Timer,
        _ = shutdown.triggered(), if watch_shutdown => Wake::Shutdown,
    }
}
