//! Completions and timers, reported to the driver; its answer is performed next.

use super::conn::{Conn, Cx, Input, State};
use super::op::Op;
use crate::app::App;
use crate::http::{Action, Env};
use crate::uring::{Completion, OpKind, Ring, SlotKey, Token};

/// What became of bytes a multishot recv delivered (decided while the provided
/// buffer is still borrowed from the ring; acted on after it is recycled).
#[derive(Debug)]
pub(super) enum Fed {
    /// The driver was reading: this is its next action.
    Act(Action),
    /// Kept for when the driver reads again.
    Buffered,
    /// Kept, but the driver holds enough: stop receiving (backpressure).
    Full,
}

pub(super) fn errno(res: i32) -> i32 {
    -res
}

impl Conn {
    /// Bytes from a multishot recv.
    pub fn on_bytes(&mut self, bytes: &[u8], env: &Env<'_, App>) -> Fed {
        if self.state == State::Closing {
            Fed::Buffered
        } else if self.wants_input() {
            Fed::Act(self.driver.feed(env, bytes))
        } else if self.driver.buffer(env.stats, bytes) {
            Fed::Buffered
        } else {
            Fed::Full
        }
    }

    /// The completion `c` of this connection's op `op`; `fed` is what its bytes
    /// did, for a multishot recv that carried some.
    pub fn complete(
        &mut self,
        key: SlotKey,
        op: Op,
        c: &mut Completion,
        fed: Option<Fed>,
        cx: &mut Cx<'_>,
    ) {
        if !c.more() {
            self.ops.remove(op);
        }
        if self.state == State::Closing {
            return; // what the op owned goes with `c`
        }
        let next = match op {
            Op::Recv if self.input == Input::Single => self.recv_done(c, cx),
            Op::Recv => self.multi_done(key, c, fed, cx),
            Op::Send => self.send_done(c, cx),
            Op::Sleep => Some(self.driver.slept(&cx.env)),
            Op::Open => self.open_done(c, cx),
            Op::Writable => self.writable(key, cx),
            Op::Read => {
                self.driver
                    .restore_file_buf(c.take_buf().unwrap_or_default());
                match usize::try_from(c.result) {
                    Ok(n) => Some(self.driver.file_read(&cx.env, n)),
                    Err(_) => Some(self.driver.failed()),
                }
            }
            Op::Shut => None, // the drain that follows decides
            Op::UpConnect => Some(match c.result {
                0 => self.driver.up_connected(&cx.env, false),
                _ if self.state == State::Expired => self.driver.timed_out(&cx.env),
                _ => {
                    self.drop_up(cx.ring);
                    self.driver.up_failed(&cx.env)
                }
            }),
            Op::UpSend => {
                self.driver
                    .restore_up_pending(c.take_buf().unwrap_or_default());
                Some(match c.result {
                    n if n > 0 => self.driver.up_sent(&cx.env, n as usize),
                    _ if self.state == State::Expired => self.driver.timed_out(&cx.env),
                    r if retry(r) => self.driver.action(),
                    _ => {
                        self.drop_up(cx.ring);
                        self.driver.up_failed(&cx.env)
                    }
                })
            }
            Op::UpRecv => {
                self.driver
                    .restore_up_recv_buf(c.take_buf().unwrap_or_default());
                Some(match c.result {
                    n if n > 0 => self.driver.up_received(&cx.env, n as usize),
                    0 => {
                        self.drop_up(cx.ring);
                        self.driver.up_eof(&cx.env)
                    }
                    _ if self.state == State::Expired => self.driver.timed_out(&cx.env),
                    r if retry(r) => self.driver.action(),
                    _ => {
                        self.drop_up(cx.ring);
                        self.driver.up_failed(&cx.env)
                    }
                })
            }
            Op::Poll => self.poll_done(key, c.result, cx),
        };
        if let Some(a) = next {
            self.perform(key, a, cx);
        }
        if op == Op::Recv && !c.more() {
            // Keep receiving while busy, so a reset is seen at once.
            if let Some(a) = self.arm_multi(key, cx.ring) {
                self.perform(key, a, cx);
            }
        }
    }

    /// A single-shot recv: the driver's buffer comes back first.
    fn recv_done(&mut self, c: &mut Completion, cx: &mut Cx<'_>) -> Option<Action> {
        if let Some(buf) = c.take_buf() {
            self.driver.restore_recv_buf(buf);
        }
        let expired = self.state == State::Expired;
        Some(match c.result {
            n if n > 0 => self.driver.received(&cx.env, n as usize),
            0 => {
                self.input = Input::Ended;
                self.driver.eof(&cx.env)
            }
            _ if expired => self.driver.timed_out(&cx.env),
            // Nothing moved and nobody asked us to stop: receive again.
            r if retry(r) => self.driver.action(),
            _ => self.driver.failed(), // ECONNRESET and friends
        })
    }

    /// A multishot recv completion.
    fn multi_done(
        &mut self,
        key: SlotKey,
        c: &Completion,
        fed: Option<Fed>,
        cx: &mut Cx<'_>,
    ) -> Option<Action> {
        match fed {
            Some(Fed::Act(a)) => return Some(a),
            Some(Fed::Buffered) => return None,
            Some(Fed::Full) => {
                // Pause: stop the recv, and watch for a reset meanwhile.
                self.input = Input::Paused;
                if c.more() {
                    self.cancel(key, Op::Recv, cx.ring);
                }
                self.watch(key, cx.ring);
                return None;
            }
            None => {}
        }
        match c.result {
            0 => {
                self.input = Input::Ended;
                if self.wants_input() {
                    return Some(self.driver.eof(&cx.env));
                }
                self.driver.buffer_eof();
                None
            }
            // The pool ran dry, or a pause: re-armed by `complete` if still wanted.
            r if r == -libc::ENOBUFS || retry(r) => None,
            r if r < 0 => {
                self.input = Input::Ended;
                Some(self.driver.failed()) // a reset: closed at once
            }
            _ => None,
        }
    }

    fn send_done(&mut self, c: &mut Completion, cx: &mut Cx<'_>) -> Option<Action> {
        self.driver
            .restore_pending(c.take_buf().unwrap_or_default());
        Some(match c.result {
            n if n > 0 => self.driver.sent(&cx.env, n as usize),
            _ if self.state == State::Expired => self.driver.timed_out(&cx.env),
            r if retry(r) => self.driver.action(), // nothing sent: send again
            _ => self.driver.failed(),             // EPIPE, ECONNRESET
        })
    }

    /// Readiness before an idle single-shot recv, or the reset watch.
    fn poll_done(&mut self, key: SlotKey, res: i32, cx: &mut Cx<'_>) -> Option<Action> {
        if res < 0 {
            return None; // cancelled
        }
        match self.input {
            Input::Single if self.wants_input() && !self.ops.has(Op::Recv) => {
                self.recv_once(key, cx)
            }
            // Hung up while lingering: our write side is shut and the peer's FIN
            // is in, which tokio and green see as a read of 0 (EOF), not an error.
            Input::Multi | Input::Paused
                if res as u32 & libc::POLLERR as u32 == 0
                    && res as u32 & libc::POLLHUP as u32 != 0
                    && matches!(self.driver.action(), Action::Drain { .. }) =>
            {
                self.input = Input::Ended;
                Some(self.driver.eof(&cx.env))
            }
            Input::Multi | Input::Paused
                if res as u32 & (libc::POLLERR | libc::POLLHUP) as u32 != 0 =>
            {
                self.input = Input::Ended;
                Some(self.driver.failed())
            }
            _ => None,
        }
    }

    /// The connection's deadline passed. An op holding a lent buffer is cancelled
    /// first (its completion reports the timeout); otherwise the driver hears now.
    pub fn expire(&mut self, key: SlotKey, cx: &mut Cx<'_>) {
        if matches!(self.state, State::Closing | State::Expired) {
            return;
        }
        let lent = match self.driver.action() {
            Action::Send { .. } => Some(Op::Send),
            Action::Recv { .. } | Action::Drain { .. } if self.input == Input::Single => {
                Some(Op::Recv)
            }
            Action::UpConnect { .. } => Some(Op::UpConnect),
            Action::UpSend { .. } => Some(Op::UpSend),
            Action::UpRecv { .. } => Some(Op::UpRecv),
            _ => None,
        };
        if let Some(op) = lent.filter(|op| self.ops.has(*op)) {
            self.state = State::Expired;
            self.cancel(key, op, cx.ring);
            return;
        }
        let a = self.driver.timed_out(&cx.env);
        self.perform(key, a, cx);
    }

    /// Shutdown began: the driver closes an idle connection (lingering) and caps
    /// every other deadline at the grace deadline; an op in flight just has its
    /// timer moved.
    pub fn shutdown(&mut self, key: SlotKey, cx: &mut Cx<'_>) {
        if self.state == State::Closing {
            return;
        }
        let prev = self.driver.action();
        let a = self.driver.shutdown(&cx.env);
        if a == prev {
            return;
        }
        match a {
            Action::Sleep { until } => {
                if matches!(prev, Action::Sleep { until: armed } if until < armed) {
                    self.cancel(key, Op::Sleep, cx.ring); // its completion re-arms
                }
            }
            // Same action, deadline capped: the worker queues the new one.
            _ if std::mem::discriminant(&a) == std::mem::discriminant(&prev) => {}
            _ => self.perform(key, a, cx),
        }
    }
}

impl Conn {
    /// Ask the kernel to end op `op` (its completion still comes).
    pub(super) fn cancel(&self, key: SlotKey, op: Op, ring: &mut Ring) {
        if self.ops.has(op) {
            ring.push_cancel(op.token(key), Token::internal(OpKind::CANCEL));
        }
    }

    /// Start closing: cancel everything in flight. The worker frees the connection
    /// (closing its descriptors) once [`Conn::done`].
    pub fn close(&mut self, key: SlotKey, ring: &mut Ring) {
        if self.state == State::Closing {
            return;
        }
        self.state = State::Closing;
        for op in self.ops.iter() {
            self.cancel(key, op, ring);
        }
    }
}

/// Free a connection nothing refers to any more: close its descriptors.
pub(super) fn free(conn: Conn, ring: &mut Ring) {
    if conn.driver.resets() {
        crate::models::reset_on_close(&conn.fd);
    }
    let Conn { fd, file, up, .. } = conn;
    if let Some(f) = file {
        ring.push_close(f, Token::internal(OpKind::CLOSE));
    }
    if let Some(up) = up {
        ring.push_close(up.0, Token::internal(OpKind::CLOSE));
    }
    ring.push_close(fd, Token::internal(OpKind::CLOSE));
}

/// A socket op that ended with nothing moved, for no reason of ours: cancelled from
/// elsewhere (`ECANCELED`; ours are cancelled only when closing, paused or expired,
/// which are handled first) or not poll-armed by the kernel (`EAGAIN`). It is
/// issued again.
fn retry(result: i32) -> bool {
    result == -libc::ECANCELED || result == -libc::EAGAIN
}
