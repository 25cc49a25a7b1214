//! The callback model's keep-alive pool of upstream connections: the worker
//! thread's own ([`UpstreamPool`] in a thread-local: one event loop per thread,
//! no lock). The exchange's ops (`IORING_OP_CONNECT`, `SEND`, `RECV` on the
//! upstream socket) are in `conn.rs` and `events.rs` with the connection's
//! other ops.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use crate::config::Upstreams;
use crate::http::proxy::UpstreamPool;

thread_local! {
    /// This worker's idle upstream connections (built at its first exchange).
    static POOL: RefCell<Option<UpstreamPool<OwnedFd>>> = const { RefCell::new(None) };
}

/// The upstream for a new exchange (round robin), and a pooled connection to
/// it unless `fresh`.
pub(super) fn checkout(
    up: &Upstreams,
    fresh: bool,
) -> Option<(usize, SocketAddr, Option<OwnedFd>)> {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let pool = p.get_or_insert_with(|| UpstreamPool::new(&up.addrs, up.pool));
        let (i, addr) = pool.pick()?;
        let fd = if fresh { None } else { pool.take(i) };
        Some((i, addr, fd))
    })
}

/// Keep `fd` for another exchange; a connection the full pool pushes out comes
/// back, to be closed.
pub(super) fn checkin(i: usize, fd: OwnedFd) -> Option<OwnedFd> {
    POOL.with(|p| match p.borrow_mut().as_mut() {
        Some(pool) => pool.put(i, fd),
        None => Some(fd),
    })
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
