//! The green model's side of a proxied exchange: the driver's `UpConnect`,
//! `UpSend`, `UpRecv` and `UpRelease` as blocking-style calls on the worker's
//! reactor (`IORING_OP_CONNECT`, `SEND`, `RECV`, each with the action's
//! deadline; a missed deadline cancels the op), with the client's `Send` and
//! `Recv` in between. It runs in its own function so that an idle connection's
//! green stack holds none of it. The keep-alive pool is the worker thread's own
//! ([`UpstreamPool`](crate::http::proxy::UpstreamPool) in a thread-local: no lock; a green thread that migrates
//! (`--green-sched steal`) gives its connection back to the pool of the worker
//! it ends on).

use std::cell::RefCell;
use std::io;
use std::time::Instant;

use super::support::core;
use super::{here, Worker};
use crate::config::Upstreams;
use crate::green::net::GvtStream;
use crate::http::proxy::{self, LocalPool};
use crate::http::{Action, Driver, Env, Handler};

thread_local! {
    /// This worker's idle upstream connections (built at its first exchange).
    static POOL: LocalPool<GvtStream> = const { RefCell::new(None) };
}

fn checkout(
    up: &Upstreams,
    fresh: bool,
) -> Option<(usize, std::net::SocketAddr, Option<GvtStream>)> {
    proxy::checkout(&POOL, &up.addrs, up.pool, fresh)
}

fn checkin(i: usize, s: GvtStream) {
    // One the full pool pushes out is closed here.
    drop(proxy::checkin(&POOL, i, s));
}

/// Run the exchange that `act` begins until the driver asks for something
/// else than its I/O; returns that action (an upstream connection still held
/// then, for `Close`, is closed).
#[inline(never)]
pub(super) fn exchange(
    stream: &mut GvtStream,
    d: &mut Driver,
    mut act: Action,
    w: &Worker,
) -> Action {
    let app = &*w.ctx.app;
    let env = |now| Env::new(app, w.ctx.registry.worker(here(w)), &w.ctx.shutdown, now);
    let mut up: Option<(usize, GvtStream)> = None;
    // A failed call: a missed deadline, an interrupt (shutdown), or an error
    // (then the upstream socket, if that was it, is closed first).
    macro_rules! failed {
        ($err:expr, $upstream:expr) => {{
            let e = env(Instant::now());
            match $err.kind() {
                io::ErrorKind::TimedOut => core(|| d.timed_out(&e)),
                io::ErrorKind::Interrupted => core(|| d.interrupted(&e)),
                _ if $upstream => {
                    up = None;
                    core(|| d.up_failed(&e))
                }
                _ => d.failed(),
            }
        }};
    }
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
        act = match act {
            Action::UpConnect { deadline, fresh } => {
                let Some(cfg) = app.upstream() else {
                    return d.failed();
                };
                match checkout(cfg, fresh) {
                    None => core(|| d.up_failed(&env(Instant::now()))),
                    Some((i, _, Some(s))) => {
                        up = Some((i, s));
                        core(|| d.up_connected(&env(Instant::now()), true))
                    }
                    Some((i, addr, None)) => match GvtStream::connect_until(addr, Some(deadline)) {
                        Ok(s) => {
                            let _ = socket2::SockRef::from(&s).set_tcp_nodelay(true);
                            up = Some((i, s));
                            core(|| d.up_connected(&env(Instant::now()), false))
                        }
                        Err(err) => failed!(err, true),
                    },
                }
            }
            Action::UpSend { deadline } => {
                let Some((_, s)) = up.as_mut() else {
                    return d.failed();
                };
                s.set_write_deadline(Some(deadline));
                match s.write(d.up_pending()) {
                    Ok(n) if n > 0 => core(|| d.up_sent(&env(Instant::now()), n)),
                    Ok(_) => {
                        up = None;
                        core(|| d.up_failed(&env(Instant::now())))
                    }
                    Err(err) => failed!(err, true),
                }
            }
            Action::UpRecv { deadline } => {
                let Some((_, s)) = up.as_mut() else {
                    return d.failed();
                };
                s.set_read_deadline(Some(deadline));
                match s.read(d.up_recv_buf()) {
                    Ok(0) => {
                        up = None;
                        core(|| d.up_eof(&env(Instant::now())))
                    }
                    Ok(n) => core(|| d.up_received(&env(Instant::now()), n)),
                    Err(err) => failed!(err, true),
                }
            }
            Action::UpRelease { keep } => {
                if let Some((i, s)) = up.take() {
                    if keep {
                        checkin(i, s);
                    }
                }
                core(|| d.up_released(&env(Instant::now())))
            }
            Action::Send { deadline, .. } => {
                stream.set_write_deadline(Some(deadline));
                match stream.write(d.pending()) {
                    Ok(n) if n > 0 => core(|| d.sent(&env(Instant::now()), n)),
                    Ok(_) => d.failed(),
                    Err(err) => failed!(err, false),
                }
            }
            Action::Recv { deadline, .. } => {
                stream.set_read_deadline(Some(deadline));
                match stream.read(d.recv_buf()) {
                    Ok(0) => core(|| d.eof(&env(Instant::now()))),
                    Ok(n) => core(|| d.received(&env(Instant::now()), n)),
                    Err(err) => failed!(err, false),
                }
            }
            other => return other,
        };
    }
}
