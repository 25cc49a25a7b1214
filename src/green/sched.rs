//! The per-worker scheduler: the task table, the run queue, park / wake, spawn,
//! join, interrupts, and the thread-locals that tie a running coroutine to its worker.
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
//!
//! The thread-locals that tie a running coroutine to its worker live in [`super::tls`]
//! (read there why every access is a non-inlined call). Code on a green stack never
//! keeps the worker's `Rc<Ctx>` or its own `SlotKey` across a suspension point: it
//! fetches both again with [`current`] after every `park` / `yield`, because with
//! `--green-sched steal` the task may have moved to another worker meanwhile (see
//! [`super::steal`] for the migration contract).

use std::cell::{Cell, OnceCell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use corosensei::{Coroutine, CoroutineResult};

use super::reactor::Reactor;
use super::stack::{self, PooledStack, StackPool};
use super::steal::{self, Member, StealGroup};
use super::tls;
use crate::stats::ParkReason;
use crate::uring::{SlotKey, Slots};

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
    /// queue (`dedicated::client::submit`). A cancel then wakes the task, which
    /// ends the op itself, instead of asking the backend.
    pub unsent: bool,
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
    Group(Arc<StealGroup>, usize),
}

impl Pools {
    /// A stack and the index of the pool it belongs to.
    pub(crate) fn get(&mut self) -> io::Result<(PooledStack, usize)> {
        match self {
            Pools::Own(p) => Ok((p.get()?, 0)),
            Pools::Group(g, i) => Ok((g.pool_get(*i)?, *i)),
        }
    }

    /// Give `stack` back to pool `home`.
    pub(crate) fn put(&mut self, home: usize, stack: PooledStack) {
        match self {
            Pools::Own(p) => p.put(stack),
            Pools::Group(g, _) => g.pool_put(home, stack),
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

/// Everything one worker's green threads share.
pub(crate) struct Ctx {
    pub sched: RefCell<Sched>,
    pub reactor: RefCell<Reactor>,
    /// This worker's place in its steal group (`Runtime::with_steal`), if any.
    pub steal: OnceCell<Member>,
    /// Unique per runtime in the process (a join wake-up names the joiner's runtime).
    pub id: u64,
    /// The worker index this runtime reports as (`Runtime::with_stats` / `with_steal`).
    pub worker: Cell<usize>,
}

pub use super::spawn::JoinHandle;
pub(crate) use super::spawn::{pin_current, run_caught, spawn_on, spawn_raw};
pub(crate) use tls::{install, uninstall};

/// The running worker's context and the running task, or an error naming the
/// misuse. Both are of the worker the caller runs on *now*: never keep them across
/// a suspension point (module docs).
pub(crate) fn current() -> io::Result<(Rc<Ctx>, SlotKey)> {
    tls::current().ok_or_else(not_green)
}

/// [`current`] for a call that is about to park: also refuses to run inside
/// [`on_worker_stack`] (see [`can_block`]), all in one thread-local access.
pub(crate) fn current_blocking() -> io::Result<(Rc<Ctx>, SlotKey)> {
    tls::current_blocking().map_err(|on_worker| match on_worker {
        true => on_worker_stack_error(),
        false => not_green(),
    })
}

/// Blocking green calls (those that park) must not run inside
/// [`on_worker_stack`]: parking there is impossible, and finding that out only at
/// the park would leave an op in flight whose buffer the unwinding then frees.
/// Every op that parks checks this before it pushes anything.
pub(crate) fn can_block() -> io::Result<()> {
    if tls::on_worker_stack() {
        return Err(on_worker_stack_error());
    }
    Ok(())
}

#[cold]
fn on_worker_stack_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "blocking green call inside green::on_worker_stack",
    )
}

#[cold]
fn not_green() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "green-thread call made outside a green thread (use Runtime::block_on / spawn)",
    )
}

/// Is the caller a green thread?
pub fn in_green_thread() -> bool {
    tls::current_key().is_some()
}

/// Switch back to the scheduler. Must run on a green thread.
///
/// `#[inline]` matters: when the switch sits inside a called function, the return
/// from that function after being resumed is mispredicted (the CPU's return-stack
/// buffer still holds the scheduler's frame), which doubled the cost of a yield.
#[inline]
fn suspend(s: Suspend) {
    let y = suspend_only(s);
    // Resumed, maybe by another worker's OS thread (steal): `y` still points into
    // this coroutine's own stack, which moved with it; the store goes to the
    // yielder slot of the thread running us now (a fresh, non-inlined access).
    tls::set_yielder(y);
}

/// The switch of [`suspend`], without storing the `Yielder` again afterwards:
/// returns it, and the caller must store it (`tls::set_yielder` or
/// `tls::resumed`) before anything else may suspend or read it.
#[inline]
fn suspend_only(s: Suspend) -> *const tls::Y {
    let (y, on_worker) = tls::yielder_and_on_worker();
    switch_out(y, on_worker, s);
    y
}

/// Suspend through `y`, the yielder slot's value read just before (with the
/// `on_worker_stack` flag, in the same thread-local access).
#[inline]
fn switch_out(y: *const tls::Y, on_worker: bool, s: Suspend) {
    assert!(!y.is_null(), "suspend outside a green thread");
    assert!(
        !on_worker,
        "blocking green call inside green::on_worker_stack"
    );
    // The yielder slot is non-null only while a coroutine runs on this thread, and
    // the running coroutine stored it from the `&Yielder` handed to its body (at
    // start, and after every resume). That Yielder lives on this coroutine's stack
    // for the whole body, and we are executing on that stack now.
    // SAFETY: so `y` points to a live Yielder of the running coroutine.
    unsafe { (*y).suspend(s) };
}

/// Park the running task until someone wakes it, and return the runtime and task
/// of the worker that resumed it (maybe another one: steal), in one thread-local
/// access. Unlike [`park`] it does not look for a pending wake-up first: for a
/// caller that just handed an op to the kernel, a wake-up arriving while it ran is
/// rare (nothing else runs on its worker meanwhile), and `run_ready` requeues a
/// task that parks with one pending, so it is only a spurious wake-up, which every
/// waiter allows.
#[inline]
pub(crate) fn park_fresh(reason: ParkReason) -> io::Result<(Rc<Ctx>, SlotKey)> {
    let y = suspend_only(Suspend::Park(reason));
    tls::resumed(y).ok_or_else(not_green)
}

/// Run `f` on the worker thread's own stack instead of the calling green thread's,
/// and return its result. Stack-hungry work that does not block (parsing, building
/// a response) then never grows a green stack, so an idle green thread keeps only
/// the few pages its blocking loop needs. `f` must not make blocking green calls
/// (it would panic); a panic in `f` propagates to the caller. Outside a green
/// thread `f` simply runs.
pub fn on_worker_stack<R>(f: impl FnOnce() -> R + Send) -> R {
    let y = tls::enter_worker_stack();
    if y.is_null() {
        return f();
    }
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            tls::set_on_worker_stack(false);
        }
    }
    let _reset = Reset;
    // SAFETY: as in `switch_out`: `y` is the running coroutine's own Yielder, valid
    // while we execute on its stack, which we do until `on_parent_stack` returns.
    unsafe { (*y).on_parent_stack(f) }
}

/// Give other ready green threads a turn, then continue.
#[inline]
pub fn yield_now() {
    let (y, on_worker) = tls::yielder_and_on_worker();
    if y.is_null() {
        return;
    }
    switch_out(y, on_worker, Suspend::Yield);
    // Resumed, maybe on another OS thread: store it again (a fresh access).
    tls::set_yielder(y);
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

/// Park the running task until someone wakes it (returns at once if a wake-up is
/// already pending). Callers re-check their condition afterwards, with a fresh
/// [`current`]: the task may run on another worker when this returns.
#[inline]
pub(crate) fn park(reason: ParkReason) {
    if take_notified() {
        return;
    }
    suspend(Suspend::Park(reason));
}

/// Consume a pending wake-up of the running task. The worker's `Rc` is dropped
/// before the caller suspends.
fn take_notified() -> bool {
    let Ok((ctx, key)) = current() else {
        return false;
    };
    let mut s = ctx.sched.borrow_mut();
    match s.tasks.get_mut(key) {
        Some(t) if t.notified => {
            t.notified = false;
            true
        }
        _ => false,
    }
}

/// Clears the running-task thread-locals when `run_ready` ends, also when a panic
/// escapes a coroutine (a bug, e.g. a panic payload whose `Drop` panics, dropped
/// outside the task's `catch_unwind`): no later `yield_now` may then find a
/// `Yielder` of a coroutine that is gone. On such a panic the task whose coroutine
/// died is removed too, so the runtime does not wait for it forever.
struct Running<'a> {
    ctx: &'a Ctx,
    /// The task being resumed right now.
    key: Option<SlotKey>,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        stack::set_active((0, 0), 0);
        tls::clear_running();
        if let (Some(key), true) = (self.key, std::thread::panicking()) {
            if let Ok(mut s) = self.ctx.sched.try_borrow_mut() {
                s.tasks.remove(key);
            }
        }
    }
}

/// Resume every ready task once (tasks made ready meanwhile run too, in FIFO
/// order). Returns when the run queue is empty or `budget` resumes were made.
pub(crate) fn run_ready(ctx: &Ctx, budget: usize) {
    let size = ctx.sched.borrow().stack_size;
    let member = ctx.steal.get();
    // Back on the scheduler's own stack at the end (or on a panic): no green thread
    // is running, and the last one's Yielder must not be used from here.
    let mut running = Running { ctx, key: None };
    for _ in 0..budget {
        let (key, mut co, guard) = {
            let mut s = ctx.sched.borrow_mut();
            if let Some(m) = member {
                // Others wait behind the one about to run: offer them to idle workers.
                // Down to the last one: take back what was offered and not taken
                // (it was queued behind everything here).
                if s.runq.len() > 1 {
                    steal::offer(m, &mut s);
                } else {
                    steal::reclaim(m, &mut s);
                }
            }
            let Some(key) = s.runq.pop_front() else {
                break;
            };
            let Some(t) = s.tasks.get_mut(key) else {
                continue;
            };
            let Some(co) = t.co.take() else {
                continue;
            };
            t.state = State::Running;
            (key, co, t.guard)
        };
        tls::set_current_key(key);
        stack::set_active(guard, size);
        running.key = Some(key);
        let r = co.resume(());
        running.key = None;
        let mut s = ctx.sched.borrow_mut();
        s.counts.switches += 1;
        match r {
            CoroutineResult::Yield(sus) => {
                let Some(t) = s.tasks.get_mut(key) else {
                    unreachable!("a suspended task's slot is never freed");
                };
                t.co = Some(co);
                if std::thread::panicking() {
                    // It suspended while unwinding: the panic count it raised is this
                    // OS thread's, so its unwinding must end here.
                    t.movable = false;
                }
                let (ready, reason) = match sus {
                    Suspend::Yield => (true, ParkReason::Yield),
                    Suspend::Park(r) => (std::mem::take(&mut t.notified), r),
                };
                t.state = if ready { State::Ready } else { State::Parked };
                if ready {
                    s.runq.push_back(key);
                }
                s.counts.parks[reason as usize] += 1;
            }
            CoroutineResult::Return(()) => {
                let home = s.tasks.remove(key).map_or(0, |t| t.home);
                s.pool.put(home, (*co).into_stack());
                s.counts.finished += 1;
            }
        }
    }
    drop(running);
}

/// Deliver `level` to every task but the caller; tasks spawned later start with it.
/// Parked tasks whose op gives way to it get that op cancelled (they resume with
/// `Interrupted` once the kernel is done with their buffers).
pub(crate) fn interrupt_all(ctx: &Ctx, level: Interrupt) {
    let me = tls::current_key();
    let mut s = ctx.sched.borrow_mut();
    s.interrupt = s.interrupt.max(level);
    let mut r = ctx.reactor.borrow_mut();
    let mut wake = Vec::new();
    for key in s.tasks.keys() {
        if Some(key) == me {
            continue;
        }
        let Some(t) = s.tasks.get_mut(key) else {
            continue;
        };
        if t.delivered >= level {
            continue; // it had this one already (maybe from the worker it came from)
        }
        t.delivered = level;
        t.interrupt = t.interrupt.max(level);
        // `Interrupt::None` marks ops that never give way (close, shutdown).
        if t.op.in_flight
            && t.op.cancel.is_none()
            && t.op.level != Interrupt::None
            && t.op.level <= t.interrupt
        {
            t.op.cancel = Some(Cause::Interrupted);
            if t.op.unsent {
                wake.push(key); // its task ends it (see `OpSlot::unsent`)
            } else {
                r.cancel(key);
            }
        }
        if s.wake_waiters.contains(&key) {
            wake.push(key);
        }
    }
    s.wake_waiters.retain(|k| !wake.contains(k));
    for k in wake {
        s.wake(k);
    }
}

/// Drop every task left (only after `block_on` failed). Tasks with an op in flight
/// are leaked, stack and all, since the kernel may still write into their buffers.
pub(crate) fn drop_leftovers(s: &mut Sched) -> usize {
    let mut leaked = 0;
    struct Unwinding;
    impl Drop for Unwinding {
        fn drop(&mut self) {
            tls::set_unwinding(false);
        }
    }
    tls::set_unwinding(true);
    let _reset = Unwinding;
    for key in s.tasks.keys() {
        let Some(mut t) = s.tasks.remove(key) else {
            continue;
        };
        let Some(mut co) = t.co.take() else {
            continue;
        };
        if t.op.in_flight {
            std::mem::forget(co);
            leaked += 1;
            continue;
        }
        co.force_unwind();
        s.pool.put(t.home, (*co).into_stack());
    }
    leaked
}
