//! The callback model's keep-alive pool of upstream connections: the worker
//! thread's own ([`UpstreamPool`](crate::http::proxy::UpstreamPool) in a thread-local: one event loop per thread,
//! no lock). The exchange's ops (`IORING_OP_CONNECT`, `SEND`, `RECV` on the
//! upstream socket) are in `conn.rs` and `events.rs` with the connection's
//! other ops.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use crate::config::Upstreams;
use crate::http::proxy::{self, LocalPool};

thread_local! {
    /// This worker's idle upstream connections (built at its first exchange).
    static POOL: LocalPool<OwnedFd> = const { RefCell::new(None) };
}

/// The upstream for a new exchange (round robin), and a pooled connection to
/// it unless `fresh`.
pub(super) fn checkout(
    up: &Upstreams,
    fresh: bool,
) -> Option<(usize, SocketAddr, Option<OwnedFd>)> {
    proxy::checkout(&POOL, &up.addrs, up.pool, fresh)
}

/// Keep `fd` for another exchange; a connection the full pool pushes out comes
/// back, to be closed.
pub(super) fn checkin(i: usize, fd: OwnedFd) -> Option<OwnedFd> {
    proxy::checkin(&POOL, i, fd)
}

/// A new TCP socket for `addr` (blocking, as the accepted ones: io_uring polls
/// it internally), with `TCP_NODELAY`.
pub(super) fn socket_for(addr: SocketAddr) -> io::Result<OwnedFd> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM.cloexec(),
        None,
    )?;
    s.set_tcp_nodelay(true)?;
    Ok(OwnedFd::from(s))
}
