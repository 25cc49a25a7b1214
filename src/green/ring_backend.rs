//! `--green-reactor per-worker` (the default): the worker's own [`Ring`], owned by
//! its loop and never shared, implementing [`Backend`]. An op's `user_data` is its
//! task's token (`slot + generation + OP`); the loop's deadlines are internal
//! `IORING_OP_TIMEOUT`s, its cross-thread wake the ring's eventfd read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::squeue;

use super::backend::{Backend, Dispatched, Wake, Waker};
use super::counters::WorkerCounters;
use super::task::{finish_op, Sched};
use crate::uring::{Completion, Features, OpKind, Ring, RingWaker, SlotKey, Token, UringOptions};

/// The op kind of a task's op (the only model-defined kind the green runtime uses).
pub(crate) const OP: OpKind = OpKind::new(1);

/// One worker's ring and what its loop keeps around it.
pub(crate) struct RingBackend {
    ring: Ring,
    /// Reap buffer, reused every turn.
    done: Vec<Completion>,
    /// Loop timers in flight: `(sequence, expiry)`.
    armed: Vec<(u32, Instant)>,
    timer_seq: u32,
}

impl RingBackend {
    pub fn new(opts: &UringOptions) -> std::io::Result<RingBackend> {
        Ok(RingBackend {
            ring: Ring::new(opts)?,
            done: Vec::with_capacity(256),
            armed: Vec::new(),
            timer_seq: 0,
        })
    }

    /// The ring itself (tests that forge SQEs).
    #[cfg(test)]
    pub fn ring_mut(&mut self) -> &mut Ring {
        &mut self.ring
    }
}

#[derive(Debug)]
struct RingWake(Arc<RingWaker>);

impl Wake for RingWake {
    fn wake(&self) {
        self.0.wake();
    }
}

impl Backend for RingBackend {
    #[inline]
    unsafe fn push(&mut self, key: SlotKey, sqe: squeue::Entry) -> Result<(), squeue::Entry> {
        let sqe = sqe.user_data(key.token(OP).raw());
        // A full SQ spills into the ring's backlog, so the op is always taken.
        // SAFETY: forwarded from our caller (`Backend::push`): the SQE's memory
        // stays valid until its completion is dispatched.
        unsafe { self.ring.push(sqe) };
        Ok(())
    }

    fn cancel(&mut self, key: SlotKey) {
        self.ring
            .push_cancel(key.token(OP), Token::internal(OpKind::CANCEL));
    }

    fn wake_by(&mut self, at: Instant, now: Instant) -> bool {
        if self.armed.iter().any(|&(_, t)| t <= at) {
            return false;
        }
        self.timer_seq = self.timer_seq.wrapping_add(1);
        let token = Token::new(self.timer_seq, 0, OpKind::TIMER);
        // Round up to a whole millisecond so the timer never fires just before `at`.
        let after = at.saturating_duration_since(now) + Duration::from_millis(1);
        self.ring.push_timeout(after, token);
        self.armed.push((self.timer_seq, at));
        true
    }

    fn listen_for_wake(&mut self) -> bool {
        self.ring.arm_wake();
        true
    }

    fn enter(&mut self, want: usize) -> std::io::Result<()> {
        self.ring.submit_and_wait(want)
    }

    /// A NOP makes `want = 1` return at once, after the kernel ran any deferred
    /// completion work (`DEFER_TASKRUN` only does that for an enter that waits).
    fn poll(&mut self) -> std::io::Result<()> {
        self.ring.push_nop(Token::internal(OpKind::NOP));
        self.ring.submit_and_wait(1)
    }

    fn dispatch(&mut self, s: &mut Sched) -> Dispatched {
        let mut d = Dispatched::default();
        self.done.clear();
        self.ring.reap(&mut self.done);
        for c in &self.done {
            let kind = c.token.kind();
            if kind == OP {
                // A finished task, or a slot reused by a later task: drop it.
                if !finish_op(s, SlotKey::from(c.token), c.result) {
                    d.stale += 1;
                }
            } else if kind == OpKind::TIMER {
                let seq = c.token.slot();
                self.armed.retain(|&(q, _)| q != seq);
            } else if kind == OpKind::WAKE {
                d.woken = true;
            }
            // CANCEL and NOP completions carry no news.
        }
        d
    }

    fn features(&self) -> Features {
        *self.ring.features()
    }

    fn waker(&self) -> Arc<Waker> {
        Arc::new(Waker::new(RingWake(self.ring.waker())))
    }

    fn publish(&mut self, st: WorkerCounters<'_>) {
        self.ring.publish(st.uring);
    }

    fn slot_limit(&self) -> u32 {
        // A token's slot is 32 bits.
        u32::MAX
    }

    #[cfg(test)]
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
