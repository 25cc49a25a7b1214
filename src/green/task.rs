//! A worker's task table and what a task is: its states, its one op slot, its
//! interrupt level, the run queue and timer heap of its worker ([`Sched`]). The
//! bottom layer of the runtime: plain data and the transitions that need nothing
//! but this data (no thread-local, no backend, no coroutine switch).
//!
//! # Task states
//! ```text
//!   spawn ──► Ready ──resume──► Running ──suspend(Yield)──► Ready
//!                ▲                 │
//!                │ wake            ├──suspend(Park)──► Parked ──wake──► Ready
//!                │                 │
//!                └─────────────────┴──returns──► (removed; stack back to the pool,
//!                                                 slot generation bumped)
//! ```
//! `wake` on a task that is `Running` (it has not parked yet) sets `notified`, and
//! `park` returns at once when `notified` is set: a wake-up that arrives before its
//! task has parked is never lost. Every waiter re-checks its own condition (op done,
//! join result present) after `park` returns, so a spurious wake is harmless.
//!
//! Tasks live in a generation-checked [`Slots`] table; a [`SlotKey`] (index +
//! generation) names one occupant, so a completion or wake for a finished task whose
//! slot was reused is recognised as stale and dropped.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::sync::Arc;
use std::time::Instant;

use corosensei::Coroutine;

use super::stack::{PooledStack, SharedPools, StackPool};
use crate::uring::{SlotKey, Slots};

/// Why a green thread parked (counted per reason in `/stats`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParkReason {
    Io = 0,
    Sleep = 1,
    Yield = 2,
    Join = 3,
}

impl ParkReason {
    pub const ALL: [ParkReason; 4] = [
        ParkReason::Io,
        ParkReason::Sleep,
        ParkReason::Yield,
        ParkReason::Join,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ParkReason::Io => "io",
            ParkReason::Sleep => "sleep",
            ParkReason::Yield => "yield",
            ParkReason::Join => "join",
        }
    }
}

/// What a coroutine tells the scheduler when it suspends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Suspend {
    /// Still runnable: put it at the back of the run queue.
    Yield,
    /// Waiting for a wake-up.
    Park(ParkReason),
}

pub(crate) type Co = Coroutine<(), Suspend, (), PooledStack>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Ready,
    Running,
    Parked,
}

/// A pending interrupt, or the least interrupt an op gives way to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Interrupt {
    #[default]
    None,
    /// Delivered once, to the next (or current) *interruptible* blocking call
    /// (accept, read, wait): "stop waiting for new work".
    Soft,
    /// Delivered to every blocking call from now on (write, sleep, file I/O too):
    /// "abandon everything".
    Hard,
}

/// Why an in-flight op was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    TimedOut,
    Interrupted,
    /// A cross-thread wake ended a timed wait (`reactor::wait_wake_until`).
    Woken,
}

/// The one op a task may have in flight (a task is parked inside it).
#[derive(Debug, Default)]
pub(crate) struct OpSlot {
    pub in_flight: bool,
    pub result: i32,
    /// The least interrupt that cancels this op.
    pub level: Interrupt,
    pub deadline: Option<Instant>,
    /// Set once a cancel has been pushed for this op.
    pub cancel: Option<Cause>,
    /// Not handed over yet: the task waits for room in the dedicated reactor's
    /// queue (`reactor::wait_for_room`). A cancel then wakes the task, which
    /// ends the op itself, instead of asking the backend.
    pub unsent: bool,
    /// A timed wait's timeout: a cross-thread wake of the worker cancels it
    /// (`reactor::wait_wake_until`).
    pub ends_on_wake: bool,
}

/// One green thread.
///
/// INVARIANT: `co` is `Some` except while the task is `Running` (the scheduler holds
/// the coroutine then). A task whose `op.in_flight` is true is `Parked` or `Ready`
/// inside `reactor::submit`, and its coroutine is never dropped or reset.
pub(crate) struct Task {
    /// Boxed: the scheduler moves a pointer per resume, never the coroutine itself
    /// (moving the struct out and back in made every yield measurably slower in
    /// `cargo bench --bench green`).
    pub(crate) co: Option<Box<Co>>,
    pub(crate) state: State,
    pub(crate) notified: bool,
    pub(crate) guard: (usize, usize),
    pub op: OpSlot,
    pub interrupt: Interrupt,
    /// The highest interrupt level delivered to this task so far: each level
    /// reaches a task at most once, also when it moves to a worker that delivers
    /// the same level again.
    pub delivered: Interrupt,
    /// Time of this task's live entry in the timer heap, if any (see `Sched::timers`).
    pub timer_at: Option<Instant>,
    /// May move to another worker: spawned by `steal::spawn_migratable` and not
    /// pinned since (see the contract in [`super::steal`]).
    pub(crate) movable: bool,
    /// The pool its stack came from (`Pools::put` returns it there).
    pub(crate) home: usize,
}

impl Task {
    /// Make this task runnable: a parked task becomes ready, and `true` says the
    /// caller must queue it; a running one is noted, to run again once it parks.
    #[inline]
    pub(crate) fn wake(&mut self) -> bool {
        match self.state {
            State::Parked => {
                self.state = State::Ready;
                true
            }
            State::Running => {
                self.notified = true;
                false
            }
            State::Ready => false,
        }
    }
}

/// Where a worker's stacks come from and go back to.
pub(crate) enum Pools {
    /// Local scheduling: the worker's own pool.
    Own(StackPool),
    /// Work stealing: the steal group holds every worker's pool, so a thread that
    /// ends on another worker gives its stack back to the pool it came from.
    Group(Arc<SharedPools>, usize),
}

impl Pools {
    /// A stack and the index of the pool it belongs to.
    pub(crate) fn get(&mut self) -> io::Result<(PooledStack, usize)> {
        match self {
            Pools::Own(p) => Ok((p.get()?, 0)),
            Pools::Group(g, i) => Ok((g.get(*i)?, *i)),
        }
    }

    /// Give `stack` back to pool `home`.
    pub(crate) fn put(&mut self, home: usize, stack: PooledStack) {
        match self {
            Pools::Own(p) => p.put(stack),
            Pools::Group(g, _) => g.put(home, stack),
        }
    }
}

/// Green counters kept locally (plain integers) and published once per loop turn.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub spawned: u64,
    pub finished: u64,
    pub switches: u64,
    pub panics: u64,
    pub parks: [u64; 4],
    /// Threads this worker took from other workers' queues.
    pub stolen: u64,
}

/// One worker's scheduler state.
pub(crate) struct Sched {
    /// Boxed: the table keeps 16 bytes per slot, so after a burst of connections
    /// ends, their tasks' memory goes back to the allocator (the table itself never
    /// shrinks: its keys are indices); a stolen task also moves as one pointer.
    pub tasks: Slots<Box<Task>>,
    pub runq: VecDeque<SlotKey>,
    pub pool: Pools,
    /// Usable bytes per stack.
    pub stack_size: usize,
    /// Task slots the backend can name in its tags: `spawn` refuses a task whose
    /// slot index would reach it, so an op is never refused after its task
    /// handed something (a descriptor to close) to it.
    pub slot_limit: u32,
    /// Interrupt level given to tasks spawned from now on (set by `interrupt_all`).
    pub interrupt: Interrupt,
    /// Deadline timers: `(when, slot index, generation)`. An entry is live only
    /// while it equals its task's `timer_at`; others are stale and skipped.
    pub timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    /// Ops pushed by tasks whose CQE has not arrived.
    pub ops_in_flight: usize,
    /// Tasks parked in `wait_wake`.
    pub wake_waiters: Vec<SlotKey>,
    pub counts: Counts,
    pub published: Counts,
}

impl Sched {
    pub fn new(stack_size: usize) -> Self {
        let pool = StackPool::new(stack_size);
        Sched {
            tasks: Slots::new(),
            runq: VecDeque::new(),
            stack_size: pool.stack_size(),
            slot_limit: u32::MAX,
            pool: Pools::Own(pool),
            interrupt: Interrupt::None,
            timers: BinaryHeap::new(),
            ops_in_flight: 0,
            wake_waiters: Vec::new(),
            counts: Counts::default(),
            published: Counts::default(),
        }
    }

    /// Make `key` runnable (see the module docs for the lost-wake-up rule). A stale
    /// key is ignored.
    pub fn wake(&mut self, key: SlotKey) {
        if self.tasks.get_mut(key).is_some_and(|t| t.wake()) {
            self.runq.push_back(key);
        }
    }
}

/// The op of `key` ended with `result`: wake its task. `false` when the key is
/// stale (the task finished, or its slot was reused) or has no op in flight.
pub(crate) fn finish_op(s: &mut Sched, key: SlotKey, result: i32) -> bool {
    match s.tasks.get_mut(key) {
        Some(t) if t.op.in_flight => {
            t.op.in_flight = false;
            t.op.result = result;
            // `Task::wake` on the task already at hand (one table lookup, not two).
            if t.wake() {
                s.runq.push_back(key);
            }
            s.ops_in_flight -= 1;
            true
        }
        _ => false,
    }
}
