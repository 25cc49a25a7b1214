//! The tokio model's side of a proxied exchange: the driver's `UpConnect`,
//! `UpSend`, `UpRecv` and `UpRelease` on tokio `TcpStream`s (non-blocking
//! `try_read` / `try_write`, waiting for readiness on epoll), with the client's
//! `Send` and `Recv` in between. One future per exchange, boxed by the caller,
//! so an idle connection's task carries none of it. The keep-alive pool is the
//! running thread's own ([`UpstreamPool`](crate::http::proxy::UpstreamPool) in a thread-local: no lock; under the
//! multi-thread runtime a task may take a connection on one thread and give it
//! back on another, which tokio's shared reactor allows).

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::time::Instant;

use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::conn::{arm, try_read};
use super::{Shared, Watch};
use crate::config::Upstreams;
use crate::http::proxy::{self, LocalPool};
use crate::http::{Action, Driver, Env, Handler};

thread_local! {
    /// This thread's idle upstream connections (built at its first exchange).
    static POOL: LocalPool<TcpStream> = const { RefCell::new(None) };
}

/// The upstream for a new exchange (round robin), and a pooled connection to
/// it unless `fresh`.
fn checkout(
    up: &Upstreams,
    fresh: bool,
) -> Option<(usize, std::net::SocketAddr, Option<TcpStream>)> {
    proxy::checkout(&POOL, &up.addrs, up.pool, fresh)
}

/// Keep `s` for another exchange (closing the oldest if the pool is full).
fn checkin(i: usize, s: TcpStream) {
    // One the full pool pushes out is closed here.
    drop(proxy::checkin(&POOL, i, s));
}

/// What ended a wait.
enum Waited<T> {
    Done(T),
    Timer,
    Shutdown,
}

/// Wait for `f`, the deadline, or (until the driver has applied it) shutdown.
/// The timer is the connection's own ([`arm`]): an exchange registers no timer
/// of its own per wait.
async fn wait<F: Future>(
    f: F,
    deadline: Option<Instant>,
    timer: &mut Pin<&mut Sleep>,
    shutdown: &mut Watch,
    watch: bool,
) -> Waited<F::Output> {
    arm(timer, deadline);
    tokio::select! {
        biased;
        r = f => Waited::Done(r),
        _ = timer.as_mut(), if deadline.is_some() => Waited::Timer,
        _ = shutdown.triggered(), if watch => Waited::Shutdown,
    }
}

/// Run the exchange that `act` (an `UpConnect`) begins, until the driver asks
/// for something else than the exchange's I/O; returns that action. An
/// upstream connection still held then (the action is `Close`) is closed.
pub(super) async fn exchange(
    stream: &TcpStream,
    d: &mut Driver,
    mut act: Action,
    w: &Shared,
    shutdown: &mut Watch,
    timer: &mut Pin<&mut Sleep>,
) -> Action {
    let app = &*w.ctx.app;
    let env = |now| Env::new(app, w.stats(), &w.ctx.shutdown, now);
    let mut up: Option<(usize, TcpStream)> = None;
    // The clock, read again after every wait: the steps between two waits are
    // non-blocking calls, microseconds apart (as the connection loop does).
    let mut now = Instant::now();
    loop {
        let upstream_io = matches!(
            act,
            Action::UpConnect { .. }
                | Action::UpSend { .. }
                | Action::UpRecv { .. }
                | Action::UpRelease { .. }
        );
        let client_io = matches!(act, Action::Send { .. } | Action::Recv { idle: false, .. });
        if !(upstream_io || client_io && d.proxying()) {
            return act;
        }
        let watch = !d.shutting_down();
        let deadline = act.deadline();
        macro_rules! waited {
            ($w:expr, $ok:pat => $then:expr) => {{
                let r = $w;
                now = Instant::now();
                match r {
                    Waited::Done($ok) => $then,
                    Waited::Timer => d.timed_out(&env(now)),
                    Waited::Shutdown => d.shutdown(&env(now)),
                }
            }};
        }
        act = match act {
            Action::UpConnect { fresh, .. } => {
                let Some(cfg) = app.upstream() else {
                    return d.failed();
                };
                match checkout(cfg, fresh) {
                    None => d.up_failed(&env(now)),
                    Some((i, _, Some(s))) => {
                        up = Some((i, s));
                        d.up_connected(&env(now), true)
                    }
                    Some((i, addr, None)) => {
                        let r =
                            wait(TcpStream::connect(addr), deadline, timer, shutdown, watch).await;
                        now = Instant::now();
                        let e = env(now);
                        match r {
                            Waited::Done(Ok(s)) => {
                                let _ = s.set_nodelay(true);
                                up = Some((i, s));
                                d.up_connected(&e, false)
                            }
                            Waited::Done(Err(_)) => d.up_failed(&e),
                            Waited::Timer => d.timed_out(&e),
                            Waited::Shutdown => d.shutdown(&e),
                        }
                    }
                }
            }
            Action::UpSend { .. } => {
                let Some((_, s)) = up.as_ref() else {
                    return d.failed();
                };
                match s.try_write(d.up_pending()) {
                    Ok(n) if n > 0 => d.up_sent(&env(now), n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        let r = wait(s.writable(), deadline, timer, shutdown, watch).await;
                        waited!(r, _ => act)
                    }
                    _ => {
                        up = None;
                        d.up_failed(&env(now))
                    }
                }
            }
            Action::UpRecv { .. } => {
                let Some((_, s)) = up.as_ref() else {
                    return d.failed();
                };
                match try_read(s, d.up_recv_buf()) {
                    Ok(0) => {
                        up = None;
                        d.up_eof(&env(now))
                    }
                    Ok(n) => d.up_received(&env(now), n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        let r = wait(s.readable(), deadline, timer, shutdown, watch).await;
                        waited!(r, _ => act)
                    }
                    Err(_) => {
                        up = None;
                        d.up_failed(&env(now))
                    }
                }
            }
            Action::UpRelease { keep } => {
                if let Some((i, s)) = up.take() {
                    if keep {
                        checkin(i, s);
                    }
                }
                d.up_released(&env(now))
            }
            Action::Send { .. } => match stream.try_write(d.pending()) {
                Ok(n) if n > 0 => d.sent(&env(now), n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let r = wait(
                        poll_fn(|cx| stream.poll_write_ready(cx)),
                        deadline,
                        timer,
                        shutdown,
                        watch,
                    )
                    .await;
                    waited!(r, _ => act)
                }
                _ => d.failed(),
            },
            Action::Recv { .. } => match try_read(stream, d.recv_buf()) {
                Ok(0) => d.eof(&env(now)),
                Ok(n) => d.received(&env(now), n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let r = wait(
                        poll_fn(|cx| stream.poll_read_ready(cx)),
                        deadline,
                        timer,
                        shutdown,
                        watch,
                    )
                    .await;
                    waited!(r, _ => act)
                }
                Err(_) => d.failed(),
            },
            other => return other,
        };
    }
}
