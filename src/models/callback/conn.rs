//! One connection: the driver, and the io_uring ops that perform its actions.
//!
//! [`Conn::perform`] turns each [`Action`] into an op (or, for an action that needs
//! no waiting, straight into the driver's next action); the completions come back
//! through `events.rs`. Buffers are lent by the driver and owned by the ring while
//! an op runs ([`crate::uring::ops`]), so closing a connection never has to protect
//! memory: it cancels what is in flight and is freed once the last completion is in
//! (no op then refers to its descriptor number).

use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use super::op::{Op, Ops};
use crate::accept::Admission;
use crate::app::App;
use crate::http::{Action, Driver, Env};
use crate::uring::{Busy, OpKind, Ring, SlotKey, Token};

/// What an event handler needs besides the connection: the ring to submit to and
/// the driver's environment (handler, counters, the time of this loop turn).
pub(super) struct Cx<'a> {
    pub ring: &'a mut Ring,
    pub env: Env<'a, App>,
    /// Connections whose work yielded: resumed after this turn's completions.
    pub ready: &'a mut Vec<SlotKey>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// Performing the driver's current action (its op, if it has one, in flight).
    Active,
    /// `Action::Sleep`: its timeout is armed (for the action's `until`).
    Sleeping,
    /// The action's deadline passed while its op held a lent buffer: the op is
    /// cancelled, and its completion reports the timeout to the driver.
    Expired,
    /// Everything in flight is cancelled; freed once the last completion is in.
    Closing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Input {
    /// No multishot recv on this kernel: one recv per `Recv`/`Drain` into the
    /// driver's buffer, after a readiness poll when idle (so an idle connection
    /// lends no buffer).
    Single,
    /// One multishot recv into the worker's provided buffers, kept armed. While a
    /// request is under way (`Recv` not idle, `Drain`) or input is paused, a poll
    /// watches for a reset too: a multishot recv can miss a RST that follows the
    /// last bytes it read (seen on 6.18), holding the connection until its deadline.
    Multi,
    /// Multishot stopped because the driver holds too much unprocessed input (the
    /// reset watch stays armed).
    Paused,
    /// The peer's EOF or an error ended input.
    Ended,
}

pub(super) struct Conn {
    /// INVARIANT: open until the connection is freed; no op refers to it then
    /// (`ops` is empty).
    pub(super) fd: OwnedFd,
    pub(super) driver: Driver,
    pub(super) state: State,
    /// Ops in flight.
    pub(super) ops: Ops,
    pub(super) input: Input,
    /// The static file being sent (after `Open` until `CloseFile`).
    pub(super) file: Option<OwnedFd>,
    /// Proxying: the upstream connection held (from `UpConnect` until
    /// `UpRelease`, an upstream error or EOF, or the close), and its upstream.
    /// Boxed: most connections never proxy.
    pub(super) up: Option<Box<(OwnedFd, usize)>>,
    /// The earliest deadline this connection has queued in the worker's heap.
    pub queued: Option<Instant>,
    /// Releases the `--max-conns` slot and counts the close when dropped.
    _admission: Admission,
}

impl Conn {
    pub fn new(fd: OwnedFd, driver: Driver, admission: Admission, multishot: bool) -> Conn {
        Conn {
            fd,
            driver,
            state: State::Active,
            ops: Ops::default(),
            input: if multishot {
                Input::Multi
            } else {
                Input::Single
            },
            file: None,
            up: None,
            queued: None,
            _admission: admission,
        }
    }

    /// When the worker must expire the current action (`Sleep` has its own timer;
    /// an expired or closing connection waits for a completion instead).
    pub fn deadline(&self) -> Option<Instant> {
        match (self.state, self.driver.action()) {
            (State::Active, Action::Sleep { .. }) => None,
            (State::Active, a) => a.deadline(),
            _ => None,
        }
    }

    /// Nothing refers to the connection any more: free it.
    pub fn done(&self) -> bool {
        self.state == State::Closing && self.ops.is_empty()
    }

    /// Whether the driver waits for input (multishot bytes go to `feed`).
    pub(super) fn wants_input(&self) -> bool {
        matches!(
            self.driver.action(),
            Action::Recv { .. } | Action::Drain { .. }
        )
    }

    /// Perform `a`, and whatever follows at once, until an op is in flight.
    pub fn perform(&mut self, key: SlotKey, mut a: Action, cx: &mut Cx<'_>) {
        loop {
            if self.state == State::Closing {
                return;
            }
            self.state = State::Active;
            let next = match a {
                Action::Recv { idle, .. } => self.recv(key, idle, cx),
                Action::Drain { .. } => self.recv(key, false, cx),
                Action::Send { more, .. } => self.send(key, more, cx),
                Action::Sleep { until } => self.sleep(key, until, cx),
                Action::Open => self.open(key, cx),
                Action::ReadFile { offset, len } => self.read(key, offset, len, cx),
                Action::SendFile { .. } => self.send_file(key, cx),
                Action::CloseFile => {
                    if let Some(f) = self.file.take() {
                        cx.ring.push_close(f, Token::internal(OpKind::CLOSE));
                    }
                    Some(self.driver.file_closed(&cx.env))
                }
                Action::ShutdownWrite => {
                    if !self.ops.has(Op::Shut) {
                        self.ops.add(Op::Shut);
                        cx.ring
                            .shutdown(self.fd.as_fd(), libc::SHUT_WR, Op::Shut.token(key));
                    }
                    Some(self.driver.write_shut(&cx.env))
                }
                Action::Yield => {
                    // Resumed on the worker's ready list, after the completions of
                    // this turn. The multishot recv stays armed, and the reset
                    // watch too (a recv can miss a RST after its last bytes).
                    if matches!(self.input, Input::Multi | Input::Paused) {
                        self.watch(key, cx.ring);
                    }
                    cx.ready.push(key);
                    None
                }
                Action::UpConnect { fresh, .. } => self.up_connect(key, fresh, cx),
                Action::UpSend { .. } => match self.up.as_deref() {
                    Some((fd, _)) => {
                        let (buf, range) = self.driver.lend_up_pending();
                        let r = cx.ring.send(fd.as_fd(), buf, range, Op::UpSend.token(key));
                        self.lent(Op::UpSend, r, Driver::restore_up_pending)
                    }
                    None => Some(self.driver.failed()),
                },
                Action::UpRecv { .. } => match self.up.as_deref() {
                    Some((fd, _)) => {
                        let (buf, offset) = self.driver.lend_up_recv_buf();
                        let r = cx.ring.recv(fd.as_fd(), buf, offset, Op::UpRecv.token(key));
                        self.lent(Op::UpRecv, r, Driver::restore_up_recv_buf)
                    }
                    None => Some(self.driver.failed()),
                },
                Action::UpRelease { keep } => {
                    if let Some(up) = self.up.take() {
                        let (fd, i) = *up;
                        let evicted = match keep {
                            true => super::proxy::checkin(i, fd),
                            false => Some(fd),
                        };
                        if let Some(fd) = evicted {
                            cx.ring.push_close(fd, Token::internal(OpKind::CLOSE));
                        }
                    }
                    Some(self.driver.up_released(&cx.env))
                }
                Action::Close => {
                    self.close(key, cx.ring);
                    None
                }
            };
            match next {
                Some(n) => a = n,
                None => return,
            }
        }
    }

    /// `UpConnect`: a pooled connection (unless `fresh`), else a new socket and
    /// an `IORING_OP_CONNECT`.
    fn up_connect(&mut self, key: SlotKey, fresh: bool, cx: &mut Cx<'_>) -> Option<Action> {
        use crate::http::Handler;
        let Some(cfg) = cx.env.handler.upstream() else {
            return Some(self.driver.failed());
        };
        match super::proxy::checkout(cfg, fresh) {
            None => Some(self.driver.up_failed(&cx.env)),
            Some((i, _, Some(fd))) => {
                self.up = Some(Box::new((fd, i)));
                Some(self.driver.up_connected(&cx.env, true))
            }
            Some((i, addr, None)) => {
                let sock = match super::proxy::socket_for(addr) {
                    Ok(s) => s,
                    Err(_) => return Some(self.driver.up_failed(&cx.env)),
                };
                match cx
                    .ring
                    .connect(sock.as_fd(), addr, Op::UpConnect.token(key))
                {
                    Ok(()) => {
                        self.ops.add(Op::UpConnect);
                        self.up = Some(Box::new((sock, i)));
                        None
                    }
                    Err(_) => Some(self.driver.up_failed(&cx.env)),
                }
            }
        }
    }

    /// The upstream connection broke (or closed): close it.
    pub(super) fn drop_up(&mut self, ring: &mut Ring) {
        if let Some(up) = self.up.take() {
            ring.push_close(up.0, Token::internal(OpKind::CLOSE));
        }
    }

    /// Its turn on the ready list came: the next slice of work.
    pub fn resume(&mut self, key: SlotKey, cx: &mut Cx<'_>) {
        if self.state != State::Active || self.driver.action() != Action::Yield {
            return; // closed (a reset) meanwhile
        }
        let a = self.driver.resumed(&cx.env);
        self.perform(key, a, cx);
    }

    /// `Recv` or `Drain`: make sure input is coming.
    fn recv(&mut self, key: SlotKey, idle: bool, cx: &mut Cx<'_>) -> Option<Action> {
        match self.input {
            // EOF already seen: a read would return 0 again, and tokio and green
            // report that as EOF; so does this (the driver never asks to read
            // after an EOF, and a lingering drain ends on it).
            Input::Ended => Some(self.driver.eof(&cx.env)),
            Input::Paused | Input::Multi => {
                self.input = Input::Multi;
                if idle {
                    self.cancel(key, Op::Poll, cx.ring);
                } else {
                    self.watch(key, cx.ring);
                }
                self.arm_multi(key, cx.ring)
            }
            Input::Single if self.ops.has(Op::Recv) || self.ops.has(Op::Poll) => None,
            Input::Single if idle => {
                self.ops.add(Op::Poll);
                cx.ring
                    .poll(self.fd.as_fd(), libc::POLLIN as u32, Op::Poll.token(key));
                None
            }
            Input::Single => self.recv_once(key, cx),
        }
    }

    /// Keep the multishot recv armed (a no-op while it is).
    pub(super) fn arm_multi(&mut self, key: SlotKey, ring: &mut Ring) -> Option<Action> {
        if self.input != Input::Multi || self.ops.has(Op::Recv) || self.state == State::Closing {
            return None;
        }
        use std::os::fd::AsRawFd;
        match ring.push_recv_multi(self.fd.as_raw_fd(), Op::Recv.token(key)) {
            Ok(()) => {
                self.ops.add(Op::Recv);
                None
            }
            Err(_) => Some(self.driver.failed()),
        }
    }

    /// Watch for a reset or hang-up (a poll for no event but those).
    pub(super) fn watch(&mut self, key: SlotKey, ring: &mut Ring) {
        if !self.ops.has(Op::Poll) {
            self.ops.add(Op::Poll);
            ring.poll(self.fd.as_fd(), 0, Op::Poll.token(key));
        }
    }

    /// One recv into the driver's input buffer, lent to the ring until its CQE.
    pub(super) fn recv_once(&mut self, key: SlotKey, cx: &mut Cx<'_>) -> Option<Action> {
        let (buf, offset) = self.driver.lend_recv_buf();
        let r = cx
            .ring
            .recv(self.fd.as_fd(), buf, offset, Op::Recv.token(key));
        self.lent(Op::Recv, r, Driver::restore_recv_buf)
    }

    /// Note `op` in flight, or, when the ring refused it, give the lent buffer
    /// back with `restore` and fail the connection.
    pub(super) fn lent(
        &mut self,
        op: Op,
        r: Result<(), Busy>,
        restore: fn(&mut Driver, Vec<u8>),
    ) -> Option<Action> {
        match r {
            Ok(()) => {
                self.ops.add(op);
                None
            }
            Err(Busy(buf)) => {
                restore(&mut self.driver, buf.unwrap_or_default());
                Some(self.driver.failed())
            }
        }
    }

    fn send(&mut self, key: SlotKey, more: bool, cx: &mut Cx<'_>) -> Option<Action> {
        let (buf, range) = self.driver.lend_pending();
        if range.is_empty() {
            // Nothing to send is no progress (the driver's contract: `sent` takes
            // n > 0); tokio and green fail such a send the same way.
            self.driver.restore_pending(buf);
            return Some(self.driver.failed());
        }
        let r = cx
            .ring
            .send_more(self.fd.as_fd(), buf, range, Op::Send.token(key), more);
        self.lent(Op::Send, r, Driver::restore_pending)
    }

    /// Arm the `/sleep` timeout for `until`; one already armed (for a later
    /// instant, before shutdown capped it) is cancelled, and its completion re-arms.
    fn sleep(&mut self, key: SlotKey, until: Instant, cx: &mut Cx<'_>) -> Option<Action> {
        self.state = State::Sleeping;
        if self.ops.has(Op::Sleep) {
            self.cancel(key, Op::Sleep, cx.ring);
            return None;
        }
        self.ops.add(Op::Sleep);
        let after = until.saturating_duration_since(cx.env.now);
        cx.ring.push_timeout(after, Op::Sleep.token(key));
        None
    }
}
