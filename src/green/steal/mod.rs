//! Work stealing between the workers of one server (`--green-sched steal`), and
//! the migration contract that makes moving a green thread to another OS thread
//! sound.
//!
//! # Mechanism
//! The workers of a [`StealGroup`] keep their own task table, run queue, ring and
//! loop. Each also has a **stealable queue** in the group (a `Mutex<VecDeque>`
//! plus its published length): the part of its run queue it is willing to give
//! away. Private run queues with a shared overflow, filled by the owner only while
//! someone is idle: the sender-initiated variant of work stealing, so a busy worker
//! pays nothing while nobody could take anything.
//!
//! - **Offer** (owner, [`offer`]): before each resume, when more than one thread
//!   is ready *and* the group's idle count is non-zero (one relaxed load of a line
//!   written only on idle transitions), the owner moves every migratable ready
//!   thread but the one it runs next into its stealable queue and wakes one idle
//!   worker (its ring's eventfd, [`crate::uring::RingWaker`]). One connection, or
//!   a server with no idle worker, never gets past those two checks (plus one
//!   load of its own queue's length, below): no shared write, no syscall per
//!   request.
//! - **Take back** ([`reclaim`]): an owner whose run queue is down to its last
//!   thread takes back what it offered and nobody took (those threads were
//!   queued behind everything it had), so they never wait behind a worker whose
//!   queue never empties.
//! - **Steal** (thief, [`refill`]): a worker whose run queue is empty first takes
//!   back what it offered itself, then tries up to [`STEAL_TRIES`] other workers
//!   from a random start (the seed's `try_steal_work`) and takes half of the first
//!   non-empty stealable queue (rounded up). If it left two or more behind it wakes
//!   one more idle worker.
//! - **Idle** ([`drive`]): before blocking in `io_uring_enter`, a worker marks
//!   itself idle (its flag and the group count, `SeqCst`), looks at the queues
//!   once more, arms its ring's wake read and blocks. An owner publishes a queue
//!   before it looks for an idle flag to claim, so of the two `SeqCst` sequences
//!   one sees the other: an offered thread is never left with every worker asleep.
//!   (An owner that read the idle count just before a worker went idle offers at
//!   its next resume: the delay is bounded by one thread's run.)
//!
//! A stolen thread's next I/O goes to the thief's ring: every blocking call finds
//! its ring through the thread-locals of the OS thread it runs on ([`super::tls`]).
//!
//! # The migration contract
//! What moves is a [`Migrant`]: the whole task record (coroutine and stack, op
//! slot, interrupt state). It is sound to resume that coroutine on another OS thread
//! because of what is true of it at the moment it moves, and of everything it
//! may hold while parked. corosensei's condition for moving a coroutine between
//! threads is "all the code it executes is under your control and every type on its
//! stack when it is suspended is `Send`"; this is how each part is met:
//!
//! 1. **Who may move.** Only threads started by [`spawn_migratable`], whose body is
//!    `FnOnce() -> T + Send + 'static` with `T: Send`: everything it starts with is
//!    `Send` and borrows nothing. The function is `pub(crate)` on purpose: the
//!    rest of the contract is about the code the body runs, so its callers form a
//!    closed, audited set (the server's connection threads in
//!    `models/green.rs`, and the tests in `green/steal_tests.rs`).
//! 2. **What a migratable thread may hold across a blocking call.** Only `Send`
//!    values it owns; never a reference into a thread-local, a clone of an `Rc`
//!    (or any `!Send` handle) shared with something that stays on the worker, nor
//!    a guard tied to its OS thread (`MutexGuard`, `StdoutLock`). The runtime rules
//!    out what it can: its own thread-locals hand out copies and clones, never
//!    references, and code on a green stack never keeps the worker's `Rc<Ctx>` or
//!    its `SlotKey` across a park (`sched` re-fetches both after every wake-up);
//!    the one `!Send` handle the green API gives out, [`super::JoinHandle`], comes
//!    from `spawn`, which **pins** its caller for good (`sched::pin_current`); a
//!    thread that suspends while unwinding is pinned too (the panic count it
//!    raised is its OS thread's). For the connection thread the rest is by
//!    construction: its closure is `Send` (the stream, the `Driver`, the
//!    `Admission`, an `Arc` of the shared worker state with atomic counters, all
//!    checked by the compiler), its loop holds nothing else across a call (the
//!    `Env` and stats block it passes the driver are looked up per call, for the
//!    worker it runs on, since the per-worker counters have a single writer), driver calls that parse and answer run
//!    on the worker's stack and return before any park, and the driver's buffers
//!    are plain `Vec<u8>`s taken from and given back to the pool of whichever
//!    worker runs it (the per-thread pools only ever hold owned buffers; their
//!    accessors are non-inlined, below).
//! 3. **Thread-locals and the compiler.** See [`super::tls`]: every thread-local
//!    access from code that can run on a green stack is a non-inlined call, so no
//!    address computed on one OS thread is reused on another.
//! 4. **When it moves.** Only while it is `Ready` (suspended, not running), has
//!    no op in flight (the kernel holds no pointer into its stack and no CQE of
//!    it is pending on the old ring), is not waiting in `wait_wake` / a cross-worker
//!    join (registered with the old ring's wake), and is movable (1, 2).
//! 5. **Task table, timers, generations.** The owner removes it from its table
//!    (the slot's generation moves on, so a late wake-up or timer entry for the old
//!    key is recognised as stale and dropped) and the thief inserts it under a new
//!    key; the thread reads its key again after the park ([`super::sched::current`]).
//!    Its timer entry stays behind, stale; it has no deadline armed (no op in
//!    flight), and its next op arms one on the thief.
//! 6. **Interrupts.** The task carries its pending interrupt and the highest level
//!    already delivered to it; the thief delivers its own level only when it is
//!    higher, so a soft interrupt (shutdown) reaches each thread once, whichever
//!    workers it passes through.
//! 7. **Stacks.** All pools of a group belong to the group ([`StealGroup`]); a
//!    task remembers its pool, and a thread that ends on another worker gives its
//!    stack back to the pool it came from (under that pool's lock). Pools are
//!    unmapped only when the group is dropped, after every runtime of it, and then
//!    only those with no stack outstanding.
//! 8. **Joins.** [`SendJoinHandle`] keeps its result and waiter under a mutex; the
//!    waiter names its runtime and key and that ring's waker. A thread finishing on
//!    the joiner's worker wakes it directly; from anywhere else it wakes that ring
//!    (the joiner is registered as a ring-wake waiter, so the wake reaches it).

mod drive;
mod join;

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::sched::{Ctx, Pools, Sched, State, Task};
use super::stack::{PooledStack, StackPool};
use crate::green::Waker;

pub(crate) use drive::drive;
pub(crate) use join::spawn_migratable;
pub use join::SendJoinHandle;

/// Other workers a thief looks at before it gives up (the seed's four).
pub const STEAL_TRIES: usize = 4;

/// Most threads one offer moves (bounds the time an owner spends offering).
const OFFER_MAX: usize = 256;

/// The workers of one server that steal from each other. Create it once
/// ([`StealGroup::new`]) and give each worker's runtime its index
/// ([`super::Runtime::with_steal`]).
pub struct StealGroup {
    slots: Box<[Slot]>,
    /// Workers blocked (or about to block) with nothing to run.
    idle: AtomicUsize,
    stack_size: usize,
}

impl std::fmt::Debug for StealGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StealGroup")
            .field("workers", &self.slots.len())
            .finish()
    }
}

/// One worker's shared part. Aligned so two workers' slots never share a line.
#[repr(align(128))]
struct Slot {
    queue: Mutex<VecDeque<Migrant>>,
    /// `queue.len()`, published for thieves that look without locking.
    queued: AtomicUsize,
    idle: AtomicBool,
    waker: OnceLock<Arc<Waker>>,
    /// Set when a runtime joined as this worker.
    taken: AtomicBool,
    pool: Mutex<StackPool>,
    /// Threads other workers took from this one.
    stolen_from: AtomicU64,
}

/// A runnable green thread on its way between two workers: its whole task record.
pub(crate) struct Migrant(Box<Task>);

// SAFETY: the only `!Send` part of a Task is its coroutine, and a Migrant is made only
// by `offer` from a task that meets the migration contract (module docs, points
// 1-4): spawned with a `Send + 'static` body, not pinned, suspended (`Ready`), no op
// in flight, not registered with its ring's wake. Everything on its stack is then
// `Send` data it owns (point 2), it reads every thread-local afresh once resumed
// (point 3), and its stack memory belongs to the group's pools, which outlive every
// worker (point 7). That is corosensei's condition for resuming a coroutine on
// another thread.
unsafe impl Send for Migrant {}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StealGroup {
    /// A group of `workers` workers whose green threads get `stack_size` usable
    /// bytes of stack (`--green-stack-size`).
    pub fn new(workers: usize, stack_size: usize) -> Arc<StealGroup> {
        let slots = (0..workers.max(1))
            .map(|_| Slot {
                queue: Mutex::new(VecDeque::new()),
                queued: AtomicUsize::new(0),
                idle: AtomicBool::new(false),
                waker: OnceLock::new(),
                taken: AtomicBool::new(false),
                pool: Mutex::new(StackPool::new(stack_size)),
                stolen_from: AtomicU64::new(0),
            })
            .collect();
        let stack_size = StackPool::new(stack_size).stack_size();
        Arc::new(StealGroup {
            slots,
            idle: AtomicUsize::new(0),
            stack_size,
        })
    }

    pub fn workers(&self) -> usize {
        self.slots.len()
    }

    /// Threads other workers took from worker `index` so far.
    pub fn stolen_from(&self, index: usize) -> u64 {
        self.slots
            .get(index)
            .map_or(0, |s| s.stolen_from.load(Ordering::Relaxed))
    }

    /// Stacks handed out by the group's pools and not given back.
    pub fn stacks_outstanding(&self) -> usize {
        self.slots.iter().map(|s| lock(&s.pool).outstanding()).sum()
    }

    pub(crate) fn pool_get(&self, index: usize) -> io::Result<PooledStack> {
        lock(&self.slots[index].pool).get()
    }

    pub(crate) fn pool_put(&self, index: usize, stack: PooledStack) {
        lock(&self.slots[index].pool).put(stack);
    }

    /// Claim one idle worker other than `me` and wake it.
    fn wake_one_idle(&self, me: usize) {
        if self.idle.load(Ordering::SeqCst) == 0 {
            return;
        }
        for (i, slot) in self.slots.iter().enumerate() {
            if i == me {
                continue;
            }
            if slot
                .idle
                .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                self.idle.fetch_sub(1, Ordering::SeqCst);
                if let Some(w) = slot.waker.get() {
                    w.wake();
                }
                return;
            }
        }
    }

    /// Take up to `limit(len)` threads from worker `victim`'s stealable queue.
    fn take(&self, victim: usize, limit: impl Fn(usize) -> usize) -> (Vec<Migrant>, usize) {
        let slot = &self.slots[victim];
        if slot.queued.load(Ordering::SeqCst) == 0 {
            return (Vec::new(), 0);
        }
        let mut q = lock(&slot.queue);
        let n = limit(q.len()).min(q.len());
        let got: Vec<Migrant> = q.drain(..n).collect();
        let left = q.len();
        slot.queued.store(left, Ordering::SeqCst);
        (got, left)
    }
}

impl Drop for StealGroup {
    fn drop(&mut self) {
        for slot in self.slots.iter_mut() {
            let q = std::mem::take(slot.queue.get_mut().unwrap_or_else(|e| e.into_inner()));
            // Every runtime reclaims its own queue before it drops and a thief only
            // takes into a live runtime, so this is empty; should it not be, the
            // threads are leaked rather than unwound on a thread that is no worker.
            for m in q {
                std::mem::forget(m);
            }
        }
    }
}

/// A runtime's place in its group.
pub(crate) struct Member {
    group: Arc<StealGroup>,
    index: usize,
    /// xorshift state for picking victims.
    rng: std::cell::Cell<u64>,
}

impl Member {
    fn slot(&self) -> &Slot {
        &self.group.slots[self.index]
    }

    /// Threads other workers took from this one so far.
    pub(crate) fn stolen_from(&self) -> u64 {
        self.slot().stolen_from.load(Ordering::Relaxed)
    }

    fn next_rand(&self) -> usize {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x as usize
    }

    /// Announce that this worker is about to block with nothing to run.
    fn go_idle(&self) {
        self.slot().idle.store(true, Ordering::SeqCst);
        self.group.idle.fetch_add(1, Ordering::SeqCst);
    }

    /// No longer idle (unless an owner already claimed us, which counted it).
    fn end_idle(&self) {
        if self
            .slot()
            .idle
            .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.group.idle.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Make `ctx`'s runtime worker `index` of `group` (`Runtime::with_steal`).
pub(crate) fn join_group(ctx: &Ctx, group: Arc<StealGroup>, index: usize) -> io::Result<()> {
    let slot = group.slots.get(index).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "worker {index} does not exist in a steal group of {}",
                group.slots.len()
            ),
        )
    })?;
    let mut s = ctx.sched.borrow_mut();
    if !s.tasks.is_empty() || ctx.steal.get().is_some() {
        return Err(io::Error::other(
            "Runtime::with_steal must come before the runtime runs anything",
        ));
    }
    if group.stack_size != s.stack_size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the steal group's stack size differs from the runtime's",
        ));
    }
    if slot.taken.swap(true, Ordering::SeqCst) {
        return Err(io::Error::other(format!(
            "worker {index} of the steal group already has a runtime"
        )));
    }
    let _ = slot.waker.set(ctx.reactor.borrow().io.waker());
    s.pool = Pools::Group(Arc::clone(&group), index);
    let member = Member {
        group,
        index,
        rng: std::cell::Cell::new(0x9E37_79B9_7F4A_7C15 ^ ((index as u64 + 1) << 32) ^ ctx.id),
    };
    let _ = ctx.steal.set(member);
    Ok(())
}

/// May this task move now? (Contract points 1, 2 and 4.)
fn movable(t: &Task) -> bool {
    t.movable && t.state == State::Ready && t.co.is_some() && !t.op.in_flight
}

/// Owner side: while some worker is idle, move the migratable ready threads
/// behind the next one into this worker's stealable queue and wake an idle worker.
pub(crate) fn offer(m: &Member, s: &mut Sched) {
    if m.group.idle.load(Ordering::Relaxed) == 0 {
        return;
    }
    let Sched {
        runq,
        tasks,
        wake_waiters,
        ..
    } = s;
    let mut out = Vec::new();
    let mut first = true;
    runq.retain(|&key| {
        if std::mem::take(&mut first) || out.len() >= OFFER_MAX {
            return true;
        }
        let ok = tasks.get(key).is_some_and(|t| movable(t)) && !wake_waiters.contains(&key);
        if !ok {
            return true;
        }
        match tasks.remove(key) {
            Some(t) => {
                out.push(Migrant(t));
                false
            }
            None => true,
        }
    });
    if out.is_empty() {
        return;
    }
    {
        let slot = m.slot();
        let mut q = lock(&slot.queue);
        q.extend(out);
        slot.queued.store(q.len(), Ordering::SeqCst);
    }
    m.group.wake_one_idle(m.index);
}

/// Thief side (the run queue is empty): take back this worker's own offered
/// threads, else steal half of another worker's. Returns how many arrived.
pub(crate) fn refill(m: &Member, s: &mut Sched) -> usize {
    let (own, _) = m.group.take(m.index, |n| n);
    if !own.is_empty() {
        return adopt(s, own);
    }
    let n = m.group.slots.len();
    if n < 2 {
        return 0;
    }
    let start = m.next_rand() % n;
    let mut tried = 0;
    for k in 0..n {
        let victim = (start + k) % n;
        if victim == m.index {
            continue;
        }
        if tried == STEAL_TRIES {
            break;
        }
        tried += 1;
        let (got, left) = m.group.take(victim, |len| len.div_ceil(2));
        if got.is_empty() {
            continue;
        }
        let taken = got.len();
        m.group.slots[victim]
            .stolen_from
            .fetch_add(taken as u64, Ordering::Relaxed);
        s.counts.stolen += taken as u64;
        if left >= 2 {
            m.group.wake_one_idle(m.index);
        }
        return adopt(s, got);
    }
    0
}

/// Take back every thread this worker offered and nobody took: when its own run
/// queue is down to one thread (so they do not wait behind a worker that never
/// empties its queue), and at runtime drop. One load of this worker's own
/// `queued` when there is nothing to take back.
pub(crate) fn reclaim(m: &Member, s: &mut Sched) {
    let (own, _) = m.group.take(m.index, |n| n);
    adopt(s, own);
}

/// Insert arriving threads into this worker's table and run queue (contract
/// points 5 and 6).
fn adopt(s: &mut Sched, got: Vec<Migrant>) -> usize {
    let n = got.len();
    let level = s.interrupt;
    for Migrant(mut t) in got {
        t.timer_at = None;
        if level > t.delivered {
            t.delivered = level;
            t.interrupt = t.interrupt.max(level);
        }
        let key = s.tasks.insert(t);
        s.runq.push_back(key);
    }
    n
}

/// CPU time the calling OS thread has used, in nanoseconds (0 if unreadable).
pub(crate) fn thread_cpu_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}
