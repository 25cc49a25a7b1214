//! One connection's state machine: what to submit next after each completion.
//!
//! Handlers return [`Flow::Close`] when the connection must go; the worker then
//! cancels whatever is still in flight and frees the connection only after the
//! last CQE (see the module docs of `callback`).

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use io_uring::{opcode, types};

use super::file::FileOp;
use super::worker::{Ctx, K_READ, K_RECV, K_SEND, K_SHUT, K_SLEEP};
use crate::http::{self, Phase, Step};
use crate::uring::{Ring, SlotKey};

/// Largest chunk of a static file read into `out` and sent at once.
pub(super) const FILE_CHUNK: usize = 64 * 1024;
/// Scratch read size while draining input during a lingering close.
const LINGER_READ: usize = 4096;

/// What happens once `out` has been sent whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Then {
    Read,
    Linger,
    Sleep(Duration),
    File,
    /// More of the open static file follows (or it is done).
    FileBody,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// A recv into the core's input buffer is in flight.
    Reading,
    /// A send of `out[sent..]` is in flight.
    Writing(Then),
    /// An `IORING_OP_TIMEOUT` for `/sleep` is in flight.
    Sleeping,
    /// Opening / stat-ing / reading a static file.
    File,
    /// Write side shut down; draining input until EOF, a cap, or the deadline.
    Lingering,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flow {
    Continue,
    Close,
}

pub(super) fn bit(kind: crate::uring::OpKind) -> u8 {
    1 << kind.get()
}

pub(super) struct Conn {
    /// INVARIANT: open until the connection is finalized (then closed by
    /// `IORING_OP_CLOSE`); no op references it after `ops` is empty.
    pub fd: Option<OwnedFd>,
    /// INVARIANT: while `ops` has `K_RECV` in state `Reading`, the core's input buffer
    /// is lent to the kernel: no method that may grow or read it is called.
    pub http: http::Conn,
    /// Response bytes (or a file chunk) to send.
    /// INVARIANT: not resized or reallocated while `K_SEND` or `K_READ` is in `ops`.
    pub out: Vec<u8>,
    pub sent: usize,
    pub state: State,
    /// In-flight ops of this connection, one bit per op kind (`bit(kind)`).
    pub ops: u8,
    /// Cancelled ops are awaited; the connection is freed when `ops` is empty.
    pub closing: bool,
    /// The current deadline was reached; the cancelled op's CQE finishes the job.
    pub timed_out: bool,
    pub deadline: Option<Instant>,
    /// The earliest deadline of this connection in the worker's heap.
    pub queued: Option<Instant>,
    pub phase: Phase,
    pub file: Option<Box<FileOp>>,
    pub lingered: usize,
    /// Input arrives through one multishot recv into the worker's provided-buffer
    /// ring (copied in with `feed`), instead of one recv per read into `http`.
    pub multishot: bool,
    /// Multishot: input (or EOF) arrived since the core last processed.
    pub fresh: bool,
    /// Multishot: bytes fed since the core last processed (backpressure).
    pub unprocessed: usize,
    /// Multishot: the recv was cancelled because too much input piled up.
    pub paused: bool,
    /// The peer's EOF has been seen.
    pub eof: bool,
    /// `deadline` is a write deadline the worker queues only if the send is still
    /// in flight a turn later (most sends complete at once; this keeps the deadline
    /// heap from growing by one entry per response).
    pub write_deadline: bool,
}

impl Conn {
    pub fn new(fd: OwnedFd, cx: &Ctx<'_>, multishot: bool) -> Conn {
        Conn {
            fd: Some(fd),
            http: http::Conn::new(cx.cfg.limits),
            out: Vec::new(),
            sent: 0,
            state: State::Reading,
            ops: 0,
            closing: false,
            timed_out: false,
            deadline: None,
            queued: None,
            phase: Phase::Busy,
            file: None,
            lingered: 0,
            multishot,
            fresh: false,
            unprocessed: 0,
            paused: false,
            eof: false,
            write_deadline: false,
        }
    }

    pub(super) fn raw(&self) -> i32 {
        self.fd.as_ref().map_or(-1, |f| f.as_raw_fd())
    }

    /// Run the core over buffered input and act on its step.
    pub fn drive(&mut self, key: SlotKey, ring: &mut Ring, cx: &Ctx<'_>) -> Flow {
        self.fresh = false;
        self.unprocessed = 0;
        let step = self.http.process(cx.app, cx.stats, &mut self.out);
        let then = match step {
            Step::Read => Then::Read,
            Step::Close => Then::Linger,
            Step::Sleep(d) => Then::Sleep(d),
            Step::File => Then::File,
        };
        if self.out.is_empty() {
            self.after_write(then, key, ring, cx)
        } else {
            self.sent = 0;
            self.send(then, key, ring, cx)
        }
    }

    /// `out` is sent whole (or was empty): take the next step.
    fn after_write(&mut self, then: Then, key: SlotKey, ring: &mut Ring, cx: &Ctx<'_>) -> Flow {
        self.out.clear();
        self.sent = 0;
        match then {
            Then::Read => self.recv(key, ring, cx),
            Then::Linger => self.linger(key, ring, cx),
            Then::Sleep(d) => {
                self.state = State::Sleeping;
                self.deadline = None;
                self.ops |= bit(K_SLEEP);
                ring.push_timeout(d, key.token(K_SLEEP));
                Flow::Continue
            }
            Then::File => {
                self.state = State::File;
                self.deadline = None;
                self.start_file(key, ring, cx)
            }
            Then::FileBody => self.next_file_chunk(key, ring, cx),
        }
    }

    /// Arm a recv into the core's input buffer, with the phase's read deadline.
    fn recv(&mut self, key: SlotKey, ring: &mut Ring, cx: &Ctx<'_>) -> Flow {
        if cx.shutting_down && self.http.shutdown() {
            return Flow::Close; // idle during shutdown: close now
        }
        let p = self.http.phase();
        if p == Phase::Idle || p != self.phase || self.deadline.is_none() {
            self.deadline = Some(cx.now + p.timeout(&cx.cfg.timeouts));
            self.phase = p;
        }
        self.state = State::Reading;
        self.timed_out = false;
        if self.multishot {
            return self.reading_multi(key, ring, cx);
        }
        if self.eof {
            return Flow::Close; // the core answered what it could after the EOF
        }
        let buf = self.http.read_buf();
        let (ptr, len) = (buf.as_mut_ptr(), buf.len().min(u32::MAX as usize) as u32);
        let sqe = opcode::Recv::new(types::Fd(self.raw()), ptr, len)
            .build()
            .user_data(key.token(K_RECV).raw());
        self.ops |= bit(K_RECV);
        // The buffer is the core's input buffer inside this Conn, which the worker
        // frees only after this recv's CQE (`ops` INVARIANT) and which is not grown or
        // read while the recv is in flight (field INVARIANT on `http`).
        // SAFETY: so the buffer outlives the op, as `Ring::push` requires.
        unsafe { ring.push(sqe) };
        Flow::Continue
    }

    pub fn on_recv(&mut self, res: i32, key: SlotKey, ring: &mut Ring, cx: &Ctx<'_>) -> Flow {
        if self.state == State::Lingering {
            return self.on_linger_recv(res, key, ring, cx);
        }
        match res {
            n if n > 0 => {
                self.http.filled(n as usize);
                cx.stats.bytes_in.add(n as u64);
                self.drive(key, ring, cx)
            }
            0 => {
                self.eof = true;
                self.http.peer_closed();
                self.drive(key, ring, cx)
            }
            _ if self.timed_out => {
                self.http.read_timed_out(cx.stats, &mut self.out);
                if self.out.is_empty() {
                    return Flow::Close;
                }
                self.sent = 0;
                self.send(Then::Linger, key, ring, cx)
            }
            _ => Flow::Close, // ECONNRESET and friends
        }
    }

    /// Send `out[sent..]`; each send that makes no progress within the write
    /// timeout fails the connection.
    pub fn send(&mut self, then: Then, key: SlotKey, ring: &mut Ring, cx: &Ctx<'_>) -> Flow {
        self.state = State::Writing(then);
        self.timed_out = false;
        self.deadline = Some(cx.now + cx.cfg.timeouts.write);
        self.write_deadline = true;
        let rest = &self.out[self.sent..];
        let len = rest.len().min(u32::MAX as usize) as u32;
        let sqe = opcode::Send::new(types::Fd(self.raw()), rest.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(key.token(K_SEND).raw());
        self.ops |= bit(K_SEND);
        // SAFETY: `out` belongs to this Conn, is not touched until the send's CQE
        // (field INVARIANT), and the Conn outlives the op (`ops` INVARIANT).
        unsafe { ring.push(sqe) };
        Flow::Continue
    }

    pub fn on_send(&mut self, res: i32, key: SlotKey, ring: &mut Ring, cx: &Ctx<'_>) -> Flow {
        let State::Writing(then) = self.state else {
            return Flow::Close;
        };
        if res <= 0 {
            return Flow::Close; // EPIPE, ECONNRESET, cancelled by the write timeout
        }
        cx.stats.bytes_out.add(res as u64);
        self.sent += res as usize;
        if self.sent < self.out.len() {
            return self.send(then, key, ring, cx); // partial send: the rest
        }
        self.after_write(then, key, ring, cx)
    }

    pub fn on_sleep(&mut self, key: SlotKey, ring: &mut Ring, cx: &Ctx<'_>) -> Flow {
        self.http.sleep_done(cx.stats, &mut self.out);
        self.drive(key, ring, cx)
    }

    /// Shut the write side and drain what the client still sends (bounded), so our
    /// last response is not destroyed by a RST for unread input.
    pub(super) fn linger(&mut self, key: SlotKey, ring: &mut Ring, cx: &Ctx<'_>) -> Flow {
        self.state = State::Lingering;
        self.deadline = Some(cx.now + crate::net::LINGER);
        self.lingered = 0;
        let sqe = opcode::Shutdown::new(types::Fd(self.raw()), libc::SHUT_WR)
            .build()
            .user_data(key.token(K_SHUT).raw());
        self.ops |= bit(K_SHUT);
        // SAFETY: a shutdown references no memory.
        unsafe { ring.push(sqe) };
        if self.multishot {
            return self.linger_multi(key, ring);
        }
        self.linger_recv(key, ring)
    }

    fn linger_recv(&mut self, key: SlotKey, ring: &mut Ring) -> Flow {
        self.out.clear();
        self.out.resize(LINGER_READ, 0);
        let sqe = opcode::Recv::new(
            types::Fd(self.raw()),
            self.out.as_mut_ptr(),
            LINGER_READ as u32,
        )
        .build()
        .user_data(key.token(K_RECV).raw());
        self.ops |= bit(K_RECV);
        // SAFETY: `out` belongs to this Conn and is not touched until this recv's
        // CQE (field INVARIANT); the Conn outlives the op (`ops` INVARIANT).
        unsafe { ring.push(sqe) };
        Flow::Continue
    }

    pub(super) fn on_linger_recv(
        &mut self,
        res: i32,
        key: SlotKey,
        ring: &mut Ring,
        _cx: &Ctx<'_>,
    ) -> Flow {
        if res > 0 && self.lingered < crate::net::LINGER_BYTES && !self.timed_out {
            self.lingered += res as usize;
            return self.linger_recv(key, ring);
        }
        Flow::Close
    }

    /// The connection's deadline passed: cancel what it waits on. Returns Close when
    /// nothing needs to finish first.
    pub fn expire(&mut self, key: SlotKey, ring: &mut Ring) -> Flow {
        self.deadline = None;
        let kind = match self.state {
            State::Reading if self.ops & bit(K_RECV) != 0 => K_RECV,
            State::Writing(_) if self.ops & bit(K_SEND) != 0 => K_SEND,
            State::Lingering => return Flow::Close,
            _ => return Flow::Continue,
        };
        self.timed_out = true;
        ring.push_cancel(
            key.token(kind),
            crate::uring::Token::internal(crate::uring::OpKind::CANCEL),
        );
        Flow::Continue
    }

    pub(super) fn ops_for_cancel(&self) -> impl Iterator<Item = crate::uring::OpKind> + '_ {
        [
            K_RECV,
            K_SEND,
            K_SLEEP,
            K_SHUT,
            K_READ,
            super::worker::K_OPEN,
            super::worker::K_STATX,
        ]
        .into_iter()
        .filter(move |k| self.ops & bit(*k) != 0)
    }
}
