//! The contract every reactor backend meets, and the worker's [`Reactor`] around it.
//!
//! A worker's green threads reach the kernel through one [`Backend`]:
//! - `--green-reactor per-worker` (the default): the worker's own ring
//!   ([`super::ring_backend::RingBackend`]); nothing shared on the hot path, and the
//!   worker's one `io_uring_enter` per turn submits and waits.
//! - `--green-reactor dedicated`: a client of the one reactor thread
//!   ([`super::dedicated::client::Client`]): ops go through a bounded queue,
//!   completions come back through the worker's mailbox, the worker sleeps on a futex.
//!
//! The worker loop (`Runtime::block_on`), the op path (`super::reactor`), the
//! timers and interrupts are written once, against this trait. What a backend
//! promises:
//! - **Ops.** [`Backend::push`] tags the op with its task's key so that its
//!   completion, dispatched by [`Backend::dispatch`], reaches exactly that task
//!   (`task::finish_op`); a completion for a finished or reused slot is dropped and
//!   counted stale. Every op pushed gets exactly one final completion, also after
//!   [`Backend::cancel`]. A backend may have no room for an op right now (the
//!   dedicated queue is full): `push` then hands the SQE back and wakes the task
//!   once there is room (the task's op is `unsent` meanwhile).
//! - **Waiting.** [`Backend::enter`] with `want > 0` returns once a completion, a
//!   cross-thread wake ([`Waker`], after [`Backend::listen_for_wake`]) or the
//!   deadline given to [`Backend::wake_by`] has come.
//! - **Names.** It can name tasks whose slot index is below
//!   [`Backend::slot_limit`]; `spawn` refuses others, so no op is ever refused.

use std::cmp::Reverse;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use io_uring::squeue;

use super::counters::WorkerCounters;
use super::task::{Cause, Sched, Task};
use crate::uring::{Features, SlotKey};

/// Where a worker's ops go (see the module docs for the contract).
pub(crate) trait Backend {
    /// Hand `sqe`, the op of task `key`, to the kernel. `Err(sqe)` when there is no
    /// room for it now: `key` is then woken once there is, and pushes again.
    ///
    /// # Safety
    /// Every pointer in `sqe` stays valid until the op's final completion has been
    /// dispatched.
    unsafe fn push(&mut self, key: SlotKey, sqe: squeue::Entry) -> Result<(), squeue::Entry>;

    /// Ask the kernel to cancel `key`'s pushed op; its own completion still ends it.
    fn cancel(&mut self, key: SlotKey);

    /// The worker's next wait must end by `at` (the earliest deadline). Returns
    /// whether it pushed something to submit.
    fn wake_by(&mut self, at: Instant, now: Instant) -> bool;

    /// Let the next cross-thread wake ([`Waker::wake`]) end the worker's wait and be
    /// reported by [`Backend::dispatch`]. Returns whether it pushed something.
    fn listen_for_wake(&mut self) -> bool;

    /// Submit what was pushed; with `want > 0` also wait (see the module docs).
    fn enter(&mut self, want: usize) -> io::Result<()>;

    /// Like `enter(0)`, but also let the kernel finish work it defers to a waiting
    /// enter (`DEFER_TASKRUN`), without blocking.
    fn poll(&mut self) -> io::Result<()>;

    /// Finish the ops whose completions arrived, wake tasks that waited for room,
    /// and report the rest.
    fn dispatch(&mut self, s: &mut Sched) -> Dispatched;

    /// What the ring behind this backend supports.
    fn features(&self) -> Features;

    /// Wakes this worker's [`super::wait_wake`] callers from any thread.
    fn waker(&self) -> Arc<Waker>;

    /// Add this backend's counters to the worker's blocks.
    fn publish(&mut self, st: WorkerCounters<'_>);

    /// Task slot indices this backend can name: `spawn` refuses a task at or beyond it.
    fn slot_limit(&self) -> u32;

    /// The concrete backend, for tests that reach into it.
    #[cfg(test)]
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}

/// What a [`Backend::dispatch`] found besides the ops it finished.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Dispatched {
    /// A cross-thread wake arrived: [`super::wait_wake`] callers resume.
    pub woken: bool,
    /// Completions dropped because their task had moved on (stale generation,
    /// or an earlier runtime's).
    pub stale: u64,
}

/// Wakes one worker's [`super::wait_wake`] callers from any thread
/// ([`crate::green::Runtime::waker`]).
#[derive(Debug)]
pub struct Waker(Box<dyn Wake>);

/// How a backend is woken from another thread.
pub(crate) trait Wake: Send + Sync + fmt::Debug {
    fn wake(&self);
}

impl Waker {
    pub(crate) fn new(w: impl Wake + 'static) -> Waker {
        Waker(Box::new(w))
    }

    pub fn wake(&self) {
        self.0.wake();
    }
}

/// One worker's backend plus the bookkeeping the loop keeps around it.
pub(crate) struct Reactor {
    backend: Box<dyn Backend>,
    /// SQEs pushed since the last `io_uring_enter`.
    pub pushed: usize,
    /// Cross-thread wake-ups seen (see `wait_wake`).
    pub wake_seq: u64,
    /// Completions dropped because their slot had moved on (stale generation).
    pub stale: u64,
}

impl Reactor {
    pub fn new(backend: Box<dyn Backend>) -> Reactor {
        Reactor {
            backend,
            pushed: 0,
            wake_seq: 0,
            stale: 0,
        }
    }

    /// See [`Backend::push`].
    ///
    /// # Safety
    /// As [`Backend::push`].
    #[inline]
    pub unsafe fn push(&mut self, key: SlotKey, sqe: squeue::Entry) -> Result<(), squeue::Entry> {
        self.pushed += 1;
        // SAFETY: forwarded from our caller.
        unsafe { self.backend.push(key, sqe) }
    }

    /// Ask the kernel to cancel `key`'s op; its CQE still ends the op.
    pub fn cancel(&mut self, key: SlotKey) {
        self.pushed += 1;
        self.backend.cancel(key);
    }

    /// See [`Backend::listen_for_wake`].
    pub fn listen_for_wake(&mut self) {
        if self.backend.listen_for_wake() {
            self.pushed += 1;
        }
    }

    /// One `io_uring_enter` (or the dedicated equivalent): submit what was pushed,
    /// wait for `want` completions.
    pub fn enter(&mut self, want: usize) -> io::Result<()> {
        self.pushed = 0;
        self.backend.enter(want)
    }

    /// An enter that cannot block (see [`Backend::poll`]).
    pub fn poll(&mut self) -> io::Result<()> {
        self.pushed = 0;
        self.backend.poll()
    }

    /// End task `t`'s (key `key`) op early for `cause`: the backend cancels it, or,
    /// when the op is still `unsent`, its task (woken here) ends it itself. The
    /// task resumes once the op's own completion arrived.
    pub fn cancel_op(
        &mut self,
        t: &mut Task,
        key: SlotKey,
        cause: Cause,
        runq: &mut VecDeque<SlotKey>,
    ) {
        t.op.cancel = Some(cause);
        if t.op.unsent {
            if t.wake() {
                runq.push_back(key);
            }
        } else {
            self.cancel(key);
        }
    }

    /// Dispatch what arrived: finished ops wake their tasks, a cross-thread wake
    /// wakes the `wait_wake` callers (ending a timed wait's timeout).
    pub fn dispatch(&mut self, s: &mut Sched) {
        let d = self.backend.dispatch(s);
        self.stale += d.stale;
        if d.woken {
            self.wake_seq += 1;
            for k in std::mem::take(&mut s.wake_waiters) {
                let Some(t) = s.tasks.get_mut(k) else {
                    continue;
                };
                if !(t.op.in_flight && t.op.ends_on_wake) {
                    if t.wake() {
                        s.runq.push_back(k);
                    }
                } else if t.op.cancel.is_none() {
                    self.cancel_op(t, k, Cause::Woken, &mut s.runq);
                }
            }
        }
    }

    pub fn features(&self) -> Features {
        self.backend.features()
    }

    pub fn waker(&self) -> Arc<Waker> {
        self.backend.waker()
    }

    pub fn publish(&mut self, st: WorkerCounters<'_>) {
        self.backend.publish(st);
    }

    /// The concrete backend (tests).
    #[cfg(test)]
    pub fn backend_mut<B: 'static>(&mut self) -> Option<&mut B> {
        self.backend.as_any_mut().downcast_mut()
    }

    /// Cancel the ops whose deadline has passed, re-push entries whose deadline
    /// moved on, and make the worker's wait end by the earliest entry.
    pub(crate) fn fire_timers(&mut self, s: &mut Sched, now: Instant) {
        while let Some(&Reverse((at, index, gen))) = s.timers.peek() {
            if at > now {
                if self.backend.wake_by(at, now) {
                    self.pushed += 1;
                }
                return;
            }
            s.timers.pop();
            let key = SlotKey { index, gen };
            let Some(t) = s.tasks.get_mut(key) else {
                continue; // the task finished
            };
            if t.timer_at != Some(at) {
                continue; // superseded by an earlier entry
            }
            t.timer_at = None;
            if !t.op.in_flight || t.op.cancel.is_some() {
                continue;
            }
            let Some(d) = t.op.deadline else {
                continue;
            };
            if d <= now {
                self.cancel_op(t, key, Cause::TimedOut, &mut s.runq);
            } else {
                t.timer_at = Some(d);
                s.timers.push(Reverse((d, index, gen)));
            }
        }
    }
}
