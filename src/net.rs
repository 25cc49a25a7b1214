//! Listening sockets shared by every model: one `SO_REUSEPORT` listener per worker,
//! all on the same port, so the kernel spreads new connections across workers and no
//! worker shares an accept queue (thread-per-core, nothing shared on the hot path).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};

use socket2::{Domain, Protocol, Socket, Type};

/// Listen backlog per listener.
pub const BACKLOG: i32 = 4096;

/// Bind `count` non-blocking listeners on `addr`. When `addr` has port 0 the first
/// listener picks the port and the others join it.
pub fn bind_listeners(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    let mut out = Vec::with_capacity(count.max(1));
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        sock.set_reuse_address(true)?;
        sock.set_reuse_port(true)?;
        sock.set_nonblocking(true)?;
        sock.bind(&addr.into())?;
        sock.listen(BACKLOG)?;
        let l: TcpListener = sock.into();
        addr = l.local_addr()?;
        out.push(l);
    }
    Ok(out)
}

/// Set the socket options every accepted connection gets.
pub fn tune_stream(fd: &impl std::os::fd::AsFd) {
    // Responses are written whole; Nagle would only add latency to pipelined replies.
    let _ = set_nodelay(fd);
}

fn set_nodelay(fd: &impl std::os::fd::AsFd) -> io::Result<()> {
    let sock = socket2::SockRef::from(fd);
    sock.set_tcp_nodelay(true)
}

/// The `--max-conns` gate, shared by all workers of one server.
///
/// INVARIANT: `open` counts the connections for which `try_open` returned true and
/// `close` has not yet been called.
#[derive(Debug)]
pub struct ConnGate {
    open: AtomicUsize,
    max: usize,
}

impl ConnGate {
    pub fn new(max: usize) -> Self {
        ConnGate {
            open: AtomicUsize::new(0),
            max: max.max(1),
        }
    }

    /// Admit one more connection, or refuse it when the limit is reached.
    pub fn try_open(&self) -> bool {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Release a connection admitted by `try_open`.
    pub fn close(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// Refuse a connection beyond `--max-conns` (case 42): one non-blocking send of a
/// fresh 503, never waited for; the caller closes the socket right after. A plain
/// syscall rather than a linked io_uring send + close: a link split across submits
/// could let the close run first and the send reach whatever connection reused the
/// descriptor number.
pub fn send_refusal(fd: &impl std::os::fd::AsFd) {
    let mut msg = Vec::with_capacity(192);
    crate::http::response::write_refused(&mut msg);
    let _ =
        socket2::SockRef::from(fd).send_with_flags(&msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
}

/// Is this `accept` error the process or system running out of descriptors
/// (`http-behaviour.md` case 41: back off rather than spin)?
pub fn is_fd_exhaustion(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

/// After the server decides to close a connection that may still have unread input
/// (an error response, `Connection: close` with pipelined requests behind it), it
/// shuts down its write side and discards input for at most this long, so the
/// kernel does not answer the unread bytes with a RST that destroys the response
/// before the client has read it ("lingering close").
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(2);
/// At most this many bytes are discarded during a lingering close.
pub const LINGER_BYTES: usize = 2 * 1024 * 1024;

/// How long an accept loop sleeps after descriptor exhaustion before trying again.
pub const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_share_the_port_picked_by_the_first() {
        let ls = bind_listeners("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let port = ls[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        assert!(ls.iter().all(|l| l.local_addr().unwrap().port() == port));
    }

    #[test]
    fn gate_refuses_beyond_max_and_recovers() {
        let g = ConnGate::new(2);
        assert!(g.try_open() && g.try_open());
        assert!(!g.try_open());
        g.close();
        assert!(g.try_open());
        assert_eq!(g.open(), 2);
    }
}
