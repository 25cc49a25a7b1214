//! Input through one multishot recv per connection (kernel 6.0+ with a
//! provided-buffer ring), the mechanism the probe prefers.
//!
//! One SQE keeps receiving for the connection's lifetime: each chunk posts a CQE
//! carrying a ring buffer, which the worker copies into the core
//! ([`crate::http::Conn::feed`]) and recycles at once, so an idle connection holds
//! no read buffer in the kernel and a request costs no recv SQE and no poll re-arm.
//! Input that arrives while the connection is busy (writing, sleeping, sending a
//! file) is buffered in the core and processed when it returns to reading; past
//! [`PAUSE_AT`] unprocessed bytes the recv is cancelled (backpressure) and re-armed
//! on return to reading. `ENOBUFS` (ring exhausted) ends the recv; it is re-armed at
//! once, after the worker recycled this turn's buffers.

use super::conn::{bit, Conn, Flow, State, Then};
use super::worker::{Ctx, K_RECV};
use crate::uring::{OpKind, Ring, SlotKey, Token};

/// Unprocessed input beyond which a busy connection stops receiving.
const PAUSE_AT: usize = 256 * 1024;

impl Conn {
    /// Make sure the multishot recv is armed (unless EOF was seen or it is paused).
    pub(super) fn ensure_recv(&mut self, key: SlotKey, ring: &mut Ring) {
        if self.ops & bit(K_RECV) != 0 || self.eof || self.paused {
            return;
        }
        if ring.push_recv_multi(self.raw(), key.token(K_RECV)).is_ok() {
            self.ops |= bit(K_RECV);
        }
    }

    /// The connection went back to reading: process what arrived meanwhile, or wait.
    pub(super) fn reading_multi(&mut self, key: SlotKey, ring: &mut Ring, cx: &Ctx<'_>) -> Flow {
        self.paused = false;
        if self.fresh {
            return self.drive(key, ring, cx);
        }
        if self.eof {
            // The core saw the EOF and answered everything it could.
            return Flow::Close;
        }
        self.ensure_recv(key, ring);
        Flow::Continue
    }

    /// Lingering close: keep (or re-arm) the recv to drain input; EOF ends it.
    pub(super) fn linger_multi(&mut self, key: SlotKey, ring: &mut Ring) -> Flow {
        if self.eof {
            return Flow::Close;
        }
        self.paused = false;
        self.ensure_recv(key, ring);
        Flow::Continue
    }

    /// A multishot recv CQE. `res > 0` bytes were already fed to the core by the
    /// worker (or discarded while lingering); `more` says the recv stays armed.
    pub(super) fn on_recv_multi(
        &mut self,
        res: i32,
        more: bool,
        key: SlotKey,
        ring: &mut Ring,
        cx: &Ctx<'_>,
    ) -> Flow {
        if self.state == State::Lingering {
            if res > 0 && self.lingered < crate::net::LINGER_BYTES {
                self.lingered += res as usize;
                if !more {
                    self.ensure_recv(key, ring);
                }
                return Flow::Continue;
            }
            if res == -libc::ENOBUFS {
                self.ensure_recv(key, ring);
                return Flow::Continue;
            }
            return Flow::Close;
        }
        match res {
            n if n > 0 => {
                cx.stats.bytes_in.add(n as u64);
                self.fresh = true;
                self.unprocessed += n as usize;
                if self.state == State::Reading {
                    let flow = self.drive(key, ring, cx);
                    if flow == Flow::Continue && !more {
                        self.ensure_recv(key, ring);
                    }
                    return flow;
                }
                if self.unprocessed > PAUSE_AT {
                    // Backpressure: stop receiving until the connection reads again
                    // (`reading_multi` clears `paused`), whether or not the recv ended.
                    self.paused = true;
                    if more {
                        ring.push_cancel(key.token(K_RECV), Token::internal(OpKind::CANCEL));
                    }
                } else if !more {
                    self.ensure_recv(key, ring);
                }
                Flow::Continue
            }
            0 => {
                self.eof = true;
                self.fresh = true;
                self.http.peer_closed();
                if self.state == State::Reading {
                    return self.drive(key, ring, cx);
                }
                Flow::Continue
            }
            e if e == -libc::ENOBUFS => {
                if self.state != State::Reading && self.unprocessed > PAUSE_AT {
                    self.paused = true;
                } else {
                    self.ensure_recv(key, ring);
                }
                Flow::Continue
            }
            e if e == -libc::ECANCELED && self.timed_out && self.state == State::Reading => {
                self.http.read_timed_out(cx.stats, &mut self.out);
                if self.out.is_empty() {
                    return Flow::Close;
                }
                self.sent = 0;
                self.send(Then::Linger, key, ring, cx)
            }
            e if e == -libc::ECANCELED => {
                // Cancelled to pause; if already reading again, re-arm.
                if self.state == State::Reading {
                    self.paused = false;
                    self.ensure_recv(key, ring);
                }
                Flow::Continue
            }
            _ => Flow::Close, // ECONNRESET and friends
        }
    }
}
