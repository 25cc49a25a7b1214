//! Blocking-style TCP for green threads: every call is one io_uring op submitted by
//! the worker that owns the calling green thread, which parks until it completes.
//!
//! Deadlines are per call: [`GvtStream::set_read_deadline`] sets an absolute
//! instant that every later read must finish by (the HTTP model moves it when the
//! connection's phase changes), [`GvtStream::set_write_timeout`] gives each write
//! call its own budget ("a write that makes no progress for this long"). A call that
//! misses its deadline fails with `TimedOut`; its op was cancelled and its CQE reaped
//! before the call returned.
//!
//! Streams are switched to blocking mode: io_uring then waits for readiness itself
//! (an `O_NONBLOCK` socket would make some kernels complete the op with `EAGAIN`).
//! Listeners are the exception: they accept in bursts (see [`GvtListener`]). So are
//! streams that send files with [`GvtStream::send_file`] (`sendfile(2)` on this
//! thread must not block it): a listener hands them out in `O_NONBLOCK` mode when
//! [`GvtListener::set_nonblocking_streams`] says so, for rings that poll-arm socket
//! ops regardless (`IORING_FEAT_FAST_POLL`, see
//! [`crate::uring::probe::zero_copy_sends`]).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::time::{Duration, Instant};

use io_uring::{opcode, types};

use super::reactor::{check_interrupt, prepare, submit, GivesWay};
use super::task::ParkReason;

/// When a call must be done by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Deadline {
    #[default]
    None,
    /// Every call must finish by this instant.
    At(Instant),
    /// Each call gets this long from when it starts.
    Each(Duration),
}

impl Deadline {
    fn resolve(self) -> Option<Instant> {
        match self {
            Deadline::None => None,
            Deadline::At(t) => Some(t),
            Deadline::Each(d) => Instant::now().checked_add(d),
        }
    }
}

fn set_blocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    socket2::SockRef::from(&fd).set_nonblocking(false)
}

/// Connections one accept takes off the kernel's queue at most (see [`GvtListener`]).
pub const ACCEPT_BURST: usize = 64;

/// A listening socket whose `accept` parks the green thread.
///
/// # Accepting in bursts
/// An accept takes every waiting connection off the kernel's queue at once (up to
/// [`ACCEPT_BURST`], with non-blocking `accept4`) and hands them out one per call;
/// only when the queue is empty does it park, on an `IORING_OP_POLL_ADD` for
/// readability. One io_uring accept op per call would take one connection per loop
/// turn, and a turn lasts as long as the worker's other connections keep the kernel
/// busy (a turn in which hundreds of connections each send 64 KiB takes tens of
/// milliseconds): under a wave of clients that read slowly, a new connection then
/// waited seconds in the queue behind them (issue 14, item 1). The callback model's
/// multishot accept drains the queue the same way.
///
/// INVARIANT: `fd` is `O_NONBLOCK` (set by [`GvtListener::from_std`]), so `accept4`
/// never blocks the worker; no io_uring op but the readiness poll ever uses it.
#[derive(Debug)]
pub struct GvtListener {
    fd: OwnedFd,
    /// Accepted connections not handed out yet, oldest first.
    ready: RefCell<VecDeque<OwnedFd>>,
    /// `accept4` flags: `SOCK_CLOEXEC`, and `SOCK_NONBLOCK` for streams that
    /// send files (see the module docs).
    stream_flags: i32,
}

impl GvtListener {
    /// Bind a listener on `addr` (plain `bind` + `listen`; for `SO_REUSEPORT`
    /// listeners use [`crate::net::bind_listeners`] and [`GvtListener::from_std`]).
    pub fn bind(addr: SocketAddr) -> io::Result<GvtListener> {
        GvtListener::from_std(TcpListener::bind(addr)?)
    }

    /// Adopt a bound, listening std listener (switched to non-blocking mode).
    pub fn from_std(l: TcpListener) -> io::Result<GvtListener> {
        let fd = OwnedFd::from(l);
        socket2::SockRef::from(&fd).set_nonblocking(true)?;
        Ok(GvtListener {
            fd,
            ready: RefCell::new(VecDeque::new()),
            stream_flags: libc::SOCK_CLOEXEC,
        })
    }

    /// Hand out streams in `O_NONBLOCK` mode (`on`), as [`GvtStream::send_file`]
    /// needs; only where the ring poll-arms socket ops on such streams
    /// ([`crate::uring::probe::zero_copy_sends`]). Off by default.
    pub fn set_nonblocking_streams(&mut self, on: bool) {
        self.stream_flags = match on {
            true => libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            false => libc::SOCK_CLOEXEC,
        };
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket2::SockRef::from(&self.fd)
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("listener is not an IP socket"))
    }

    /// Wait for the next connection. A soft interrupt ends the wait
    /// (`Interrupted`); descriptor exhaustion comes back as `EMFILE` / `ENFILE`.
    pub fn accept(&self) -> io::Result<GvtStream> {
        check_interrupt(GivesWay::OnSoft)?;
        loop {
            if let Some(fd) = self.ready.borrow_mut().pop_front() {
                return Ok(GvtStream::from_fd(fd));
            }
            match self.accept_burst() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait_readable()?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Move up to [`ACCEPT_BURST`] waiting connections into `ready`. `Ok` when at
    /// least one was taken; otherwise the first error (`WouldBlock`: none waiting).
    fn accept_burst(&self) -> io::Result<()> {
        let mut ready = self.ready.borrow_mut();
        for _ in 0..ACCEPT_BURST {
            // `accept4` with null address pointers writes no memory, and the listener
            // fd is open (owned by `self`). `fd` is O_NONBLOCK (INVARIANT), so this
            // never blocks; the new socket is blocking unless `stream_flags` say.
            // SAFETY: a plain syscall on an open fd that touches no memory of ours.
            let fd = unsafe {
                libc::accept4(
                    self.fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    self.stream_flags,
                )
            };
            if fd < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    _ if !ready.is_empty() => Ok(()),
                    // A connection that was reset while queued: try the next.
                    io::ErrorKind::ConnectionAborted => continue,
                    _ => Err(e),
                };
            }
            // SAFETY: a successful accept4 returns a new descriptor nothing else owns.
            ready.push_back(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        Ok(())
    }

    /// Park until the listener is readable (a connection is waiting).
    fn wait_readable(&self) -> io::Result<()> {
        let sqe = opcode::PollAdd::new(types::Fd(self.fd.as_raw_fd()), libc::POLLIN as u32).build();
        // SAFETY: a poll references no memory; the listener fd outlives the call
        // (borrowed through &self).
        unsafe { submit(sqe, None, GivesWay::OnSoft, ParkReason::Io) }.map(|_| ())
    }
}

/// A connected TCP stream whose reads and writes park the green thread.
#[derive(Debug)]
pub struct GvtStream {
    fd: OwnedFd,
    read_deadline: Deadline,
    write_deadline: Deadline,
}

impl GvtStream {
    fn from_fd(fd: OwnedFd) -> GvtStream {
        GvtStream {
            fd,
            read_deadline: Deadline::None,
            write_deadline: Deadline::None,
        }
    }

    /// Adopt a connected std stream (switched to blocking mode, see module docs).
    pub fn from_std(s: TcpStream) -> io::Result<GvtStream> {
        let fd = OwnedFd::from(s);
        set_blocking(fd.as_fd())?;
        Ok(GvtStream::from_fd(fd))
    }

    /// Connect to `addr` through `IORING_OP_CONNECT`.
    pub fn connect(addr: SocketAddr) -> io::Result<GvtStream> {
        GvtStream::connect_until(addr, None)
    }

    /// [`GvtStream::connect`] that gives up at `deadline` (`TimedOut`).
    pub fn connect_until(addr: SocketAddr, deadline: Option<Instant>) -> io::Result<GvtStream> {
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM.cloexec(),
            None,
        )?;
        let sa = socket2::SockAddr::from(addr);
        let fd = OwnedFd::from(sock);
        let sqe =
            opcode::Connect::new(types::Fd(fd.as_raw_fd()), sa.as_ptr().cast(), sa.len()).build();
        // SAFETY: `sa` lives in this frame until `submit` returns after the CQE.
        unsafe { submit(sqe, deadline, GivesWay::OnHard, ParkReason::Io) }?;
        Ok(GvtStream::from_fd(fd))
    }

    /// Every later read must finish by `at` (`None`: no deadline).
    pub fn set_read_deadline(&mut self, at: Option<Instant>) {
        self.read_deadline = at.map_or(Deadline::None, Deadline::At);
    }

    /// Each later read gets `d` from when it starts (`None`: no limit).
    pub fn set_read_timeout(&mut self, d: Option<Duration>) {
        self.read_deadline = d.map_or(Deadline::None, Deadline::Each);
    }

    /// Every later write must finish by `at`.
    pub fn set_write_deadline(&mut self, at: Option<Instant>) {
        self.write_deadline = at.map_or(Deadline::None, Deadline::At);
    }

    /// Each later write call gets `d` from when it starts.
    pub fn set_write_timeout(&mut self, d: Option<Duration>) {
        self.write_deadline = d.map_or(Deadline::None, Deadline::Each);
    }

    /// Read into `buf`; `Ok(0)` means the peer closed its side. A soft interrupt
    /// ends a read that is waiting (`Interrupted`).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let sqe = opcode::Recv::new(types::Fd(self.fd.as_raw_fd()), buf.as_mut_ptr(), len)
            .ioprio(super::reactor::recv_ioprio())
            .build();
        loop {
            let deadline = self.read_deadline.resolve();
            // SAFETY: `buf` is borrowed for this call and `submit` returns only after
            // the recv's CQE, so the kernel writes only while the borrow is live.
            match unsafe { submit(sqe.clone(), deadline, GivesWay::OnSoft, ParkReason::Io) } {
                Err(e) if nothing_moved(&e) => continue,
                r => return r.map(|n| n as usize),
            }
        }
    }

    /// Write some of `buf` (at least one byte unless `buf` is empty).
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_more(buf, false)
    }

    /// [`GvtStream::write`]; with `more`, as `MSG_MORE`: more follows at once, so
    /// the kernel may hold these bytes to send them with the next ones.
    pub fn write_more(&mut self, buf: &[u8], more: bool) -> io::Result<usize> {
        let len = crate::uring::fault::send_len(buf.len());
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        let more = if more { libc::MSG_MORE } else { 0 };
        let sqe = opcode::Send::new(types::Fd(self.fd.as_raw_fd()), buf.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL | more)
            .build();
        loop {
            let deadline = self.write_deadline.resolve();
            // SAFETY: `buf` is borrowed for this call and `submit` returns only after
            // the send's CQE, so the kernel reads only while the borrow is live.
            match unsafe { submit(sqe.clone(), deadline, GivesWay::OnHard, ParkReason::Io) } {
                Err(e) if nothing_moved(&e) => continue,
                r => return r.map(|n| n as usize),
            }
        }
    }

    /// Send up to `len` bytes of `file` from `offset` with `sendfile(2)` (the
    /// kernel moves the page-cache pages into the socket: no copy through this
    /// process); at least one byte unless the file ends at `offset` (`Ok(0)`).
    /// The stream must be `O_NONBLOCK` ([`GvtListener::set_nonblocking_streams`]):
    /// while its buffer is full the green thread parks on an `IORING_OP_POLL_ADD`
    /// for writability, under the write deadline (`TimedOut`) and giving way to a
    /// hard interrupt only, as [`GvtStream::write`] does. (On a blocking stream the
    /// call would hold the whole worker until the peer read enough.)
    pub fn send_file(
        &mut self,
        file: BorrowedFd<'_>,
        offset: u64,
        len: usize,
    ) -> io::Result<usize> {
        loop {
            check_interrupt(GivesWay::OnHard)?;
            let mut at = offset;
            match rustix::fs::sendfile(&self.fd, file, Some(&mut at), len) {
                Ok(n) => return Ok(n),
                Err(e) if e == rustix::io::Errno::AGAIN => {}
                Err(e) if e == rustix::io::Errno::INTR => continue,
                Err(e) => return Err(e.into()),
            }
            let sqe =
                opcode::PollAdd::new(types::Fd(self.fd.as_raw_fd()), libc::POLLOUT as u32).build();
            let deadline = self.write_deadline.resolve();
            // SAFETY: a poll references no memory; the fd outlives the call (borrowed
            // through &mut self).
            match unsafe { submit(sqe, deadline, GivesWay::OnHard, ParkReason::Io) } {
                // Ready, an error or a hang-up: the next sendfile tells which.
                Ok(_) => {}
                Err(e) if nothing_moved(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Write all of `buf` (one op per partial send).
    pub fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf)? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// Shut down one or both directions (`IORING_OP_SHUTDOWN`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => libc::SHUT_RD,
            Shutdown::Write => libc::SHUT_WR,
            Shutdown::Both => libc::SHUT_RDWR,
        };
        let sqe = opcode::Shutdown::new(types::Fd(self.fd.as_raw_fd()), how).build();
        // SAFETY: a shutdown references no memory; the fd is borrowed through &self.
        unsafe { submit(sqe, None, GivesWay::Never, ParkReason::Io) }.map(|_| ())
    }

    /// Close the socket through `IORING_OP_CLOSE`. (Dropping a stream closes it
    /// with `close(2)` instead, which never blocks for a socket without linger.)
    pub fn close(self) -> io::Result<()> {
        close_fd(self.fd)
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        socket2::SockRef::from(&self.fd)
            .peer_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("stream is not an IP socket"))
    }
}

/// A recv or send that ended with nothing moved for no reason of ours: cancelled
/// from elsewhere (ours, at a deadline or an interrupt, come back as `TimedOut` or
/// `Interrupted`) or not poll-armed by the kernel. It is issued again.
fn nothing_moved(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ECANCELED | libc::EAGAIN))
}

/// Close `fd` through `IORING_OP_CLOSE`; where no op can be submitted (outside a
/// green thread, inside [`super::on_worker_stack`]) with `close(2)` instead, which
/// never blocks for a socket without linger. The descriptor is released in every
/// case: it is given up to the kernel only once the op is sure to be pushed.
pub(crate) fn close_fd(fd: OwnedFd) -> io::Result<()> {
    let Ok(op) = prepare(None, GivesWay::Never) else {
        drop(fd);
        return Ok(());
    };
    let raw = fd.into_raw_fd();
    let sqe = opcode::Close::new(types::Fd(raw)).build();
    // A close references no memory. `prepare` succeeded, so the SQE is pushed and
    // the kernel takes the descriptor: no backend refuses a task's op (`spawn` keeps
    // every task's slot within what its backend can name, `Sched::slot_limit`), and a
    // close is never cancelled (no deadline, `GivesWay::Never`).
    // SAFETY: so nothing the kernel could touch is freed, and the fd is not leaked.
    unsafe { op.push_and_wait(sqe, ParkReason::Io) }.map(|_| ())
}

impl AsFd for GvtStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsFd for GvtListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl io::Read for GvtStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        GvtStream::read(self, buf)
    }
}

impl io::Write for GvtStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        GvtStream::write(self, buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        GvtStream::write_all(self, buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
