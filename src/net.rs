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
///
/// Unless `share_port` (`--reuse-port`), the port must be free: the workers'
/// listeners set `SO_REUSEPORT` so that the kernel spreads connections across them,
/// and that option would just as well let this server join a port another server
/// (a forgotten gvhttpd, say) already listens on, silently splitting its traffic.
/// So first a probe socket without `SO_REUSEPORT` is bound to `addr`: it fails
/// with `EADDRINUSE` whenever anything holds the port, whatever its options. The
/// probe is closed before the listeners bind, and in that gap a second gvhttpd
/// starting at the same moment could probe too; an abstract Unix socket named
/// after the port, held from before the probe until the listeners are bound,
/// serialises such starts, so the later one's probe sees the earlier one's
/// listeners. Port 0 needs no probe: the kernel never hands out a port that is
/// in use, `SO_REUSEPORT` or not.
///
/// `notsent_lowat` (`--notsent-lowat`) is set on the listeners, and every socket
/// they accept inherits it, at no cost per connection.
pub fn bind_listeners(
    addr: SocketAddr,
    count: usize,
    share_port: bool,
    notsent_lowat: Option<u32>,
) -> io::Result<Vec<TcpListener>> {
    let _startup_lock = if share_port || addr.port() == 0 {
        None
    } else {
        let lock = startup_lock(addr.port())?;
        probe_exclusive(addr)?;
        Some(lock)
    };
    let mut out = Vec::with_capacity(count.max(1));
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        sock.set_reuse_address(true)?;
        sock.set_reuse_port(true)?;
        sock.set_nonblocking(true)?;
        if let Some(bytes) = notsent_lowat {
            // Accepted sockets inherit it: no syscall per connection.
            sock.set_tcp_notsent_lowat(bytes)?;
        }
        if let Err(e) = sock.bind(&addr.into()) {
            return Err(if e.kind() == io::ErrorKind::AddrInUse && share_port {
                io::Error::new(
                    e.kind(),
                    format!(
                        "port {} is already in use{}, by a socket without SO_REUSEPORT: \
                         --reuse-port can only join listeners that allow sharing",
                        addr.port(),
                        holder_hint(addr.port())
                    ),
                )
            } else {
                e
            });
        }
        sock.listen(BACKLOG)?;
        let l: TcpListener = sock.into();
        addr = l.local_addr()?;
        out.push(l);
    }
    Ok(out)
}

/// Fail with a clear `AddrInUse` error if anything at all is bound to `addr`.
fn probe_exclusive(addr: SocketAddr) -> io::Result<()> {
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // SO_REUSEADDR only lets the probe past connections in TIME_WAIT; it never
    // lets it bind beside a listener.
    probe.set_reuse_address(true)?;
    match probe.bind(&addr.into()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(io::Error::new(
            e.kind(),
            format!(
                "port {} is already in use{}; stop that server or pick another --addr \
                 (--reuse-port shares the port with another gvhttpd on purpose)",
                addr.port(),
                holder_hint(addr.port())
            ),
        )),
        Err(e) => Err(e),
    }
}

/// ` by pid N (name)` for the processes listening on `port`, when /proc says.
fn holder_hint(port: u16) -> String {
    let pids = loadgen::sys::listening_pids(port);
    if pids.is_empty() {
        return String::new();
    }
    let who: Vec<String> = pids
        .iter()
        .map(|&p| match loadgen::sys::process_name(p) {
            Some(name) => format!("pid {p} ({name})"),
            None => format!("pid {p}"),
        })
        .collect();
    format!(" by {}", who.join(", "))
}

/// Held while one server probes and binds `port`; see [`bind_listeners`].
/// An abstract Unix socket: released by the kernel when the process exits,
/// however it exits, and no file is left behind.
fn startup_lock(port: u16) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::linux::net::SocketAddrExt as _;
    let name = format!("gvhttpd-binding-port-{port}");
    let at = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match std::os::unix::net::UnixListener::bind_addr(&at) {
            Ok(l) => return Ok(l),
            // Another server is between its probe and its bind: wait for it,
            // then its listeners make this one's probe fail.
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && std::time::Instant::now() < until => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot take the startup lock for port {port}: {e}"),
                ))
            }
        }
    }
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

/// The peer address of a connected socket (`getpeername`), if it has one.
pub fn peer_addr(fd: &impl std::os::fd::AsFd) -> Option<SocketAddr> {
    socket2::SockRef::from(fd).peer_addr().ok()?.as_socket()
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
        let ls = bind_listeners("127.0.0.1:0".parse().unwrap(), 3, false, None).unwrap();
        let port = ls[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        assert!(ls.iter().all(|l| l.local_addr().unwrap().port() == port));
    }

    #[test]
    fn a_port_with_listeners_is_refused_unless_shared_on_purpose() {
        let first = bind_listeners("127.0.0.1:0".parse().unwrap(), 2, false, None).unwrap();
        let addr = first[0].local_addr().unwrap();
        let e = bind_listeners(addr, 2, false, None).expect_err("the port is taken");
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("port {} is already in use", addr.port())),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("--reuse-port"), "{msg}");
        assert!(!msg.contains("  "), "{msg}");
        let joined = bind_listeners(addr, 2, true, None).expect("--reuse-port joins");
        assert_eq!(joined[1].local_addr().unwrap(), addr);
    }

    #[test]
    fn a_plain_socket_on_the_port_refuses_even_with_reuse_port() {
        let plain = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = plain.local_addr().unwrap();
        let e = bind_listeners(addr, 1, false, None).unwrap_err();
        assert!(e.to_string().contains("already in use"), "{e}");
        let e = bind_listeners(addr, 1, true, None).unwrap_err();
        assert!(e.to_string().contains("without SO_REUSEPORT"), "{e}");
    }

    #[test]
    fn a_freed_port_can_be_bound_again() {
        let addr = {
            let ls = bind_listeners("127.0.0.1:0".parse().unwrap(), 1, false, None).unwrap();
            ls[0].local_addr().unwrap()
        };
        bind_listeners(addr, 2, false, None).expect("the port is free again");
    }

    #[test]
    fn accepted_sockets_inherit_the_listeners_notsent_lowat() {
        for lowat in [None, Some(512 << 10)] {
            let ls = bind_listeners("127.0.0.1:0".parse().unwrap(), 1, false, lowat).unwrap();
            let _client = std::net::TcpStream::connect(ls[0].local_addr().unwrap()).unwrap();
            ls[0].set_nonblocking(false).unwrap();
            let (accepted, _) = ls[0].accept().unwrap();
            let got = socket2::SockRef::from(&accepted)
                .tcp_notsent_lowat()
                .unwrap();
            // Unset reads as 0 (then the sysctl net.ipv4.tcp_notsent_lowat applies).
            assert_eq!(got, lowat.unwrap_or(0), "{lowat:?}");
        }
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
