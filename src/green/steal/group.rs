//! The steal group: every worker's stealable queue, the idle protocol, offering,
//! stealing and taking back (the mechanism of [`super`]'s docs), and the
//! [`Migrant`] that carries a task between workers (the migration contract).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::green::backend::Waker;
use crate::green::stack::{SharedPools, StackPool};
use crate::green::task::{Pools, Sched, State, Task};

/// Other workers a thief looks at before it gives up (the seed's four).
pub const STEAL_TRIES: usize = 4;

/// Most threads one offer moves (bounds the time an owner spends offering).
const OFFER_MAX: usize = 256;

/// The workers of one server that steal from each other. Create it once
/// ([`StealGroup::new`]) and give each worker's runtime its index
/// ([`crate::green::Runtime::with_steal`]).
pub struct StealGroup {
    slots: Box<[Slot]>,
    /// Workers blocked (or about to block) with nothing to run.
    idle: AtomicUsize,
    /// Every worker's stack pool (contract point 7).
    pools: Arc<SharedPools>,
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

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
                stolen_from: AtomicU64::new(0),
            })
            .collect();
        let pools = Arc::new(SharedPools::new(workers.max(1), stack_size));
        let stack_size = StackPool::new(stack_size).stack_size();
        Arc::new(StealGroup {
            slots,
            idle: AtomicUsize::new(0),
            pools,
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
        self.pools.outstanding()
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

    /// Wake every worker's ring (its `wait_wake` callers), this one's included.
    pub(crate) fn wake_all(&self) {
        for slot in self.group.slots.iter() {
            if let Some(w) = slot.waker.get() {
                w.wake();
            }
        }
    }

    /// Announce that this worker is about to block with nothing to run.
    pub(crate) fn go_idle(&self) {
        self.slot().idle.store(true, Ordering::SeqCst);
        self.group.idle.fetch_add(1, Ordering::SeqCst);
    }

    /// No longer idle (unless an owner already claimed us, which counted it).
    pub(crate) fn end_idle(&self) {
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

/// Make a runtime worker `index` of `group` (`Runtime::with_steal`): its
/// scheduler `s` (nothing spawned yet) takes its stacks from the group's pools,
/// `waker` wakes it when an owner offers threads, `id` seeds its victim choice.
pub(crate) fn join_group(
    s: &mut Sched,
    waker: Arc<Waker>,
    id: u64,
    group: Arc<StealGroup>,
    index: usize,
) -> io::Result<Member> {
    let slot = group.slots.get(index).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "worker {index} does not exist in a steal group of {}",
                group.slots.len()
            ),
        )
    })?;
    if !s.tasks.is_empty() {
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
    let _ = slot.waker.set(waker);
    s.pool = Pools::Group(Arc::clone(&group.pools), index);
    let member = Member {
        group,
        index,
        rng: std::cell::Cell::new(0x9E37_79B9_7F4A_7C15 ^ ((index as u64 + 1) << 32) ^ id),
    };
    Ok(member)
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
