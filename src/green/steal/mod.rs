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
//! - **Offer** (owner, [`offer`](group::offer)): before each resume, when more than one thread
//!   is ready *and* the group's idle count is non-zero (one relaxed load of a line
//!   written only on idle transitions), the owner moves every migratable ready
//!   thread but the one it runs next into its stealable queue and wakes one idle
//!   worker (its ring's eventfd, [`crate::uring::RingWaker`]). One connection, or
//!   a server with no idle worker, never gets past those two checks (plus one
//!   load of its own queue's length, below): no shared write, no syscall per
//!   request.
//! - **Take back** ([`reclaim`](group::reclaim)): an owner whose run queue is down to its last
//!   thread takes back what it offered and nobody took (those threads were
//!   queued behind everything it had), so they never wait behind a worker whose
//!   queue never empties.
//! - **Steal** (thief, [`refill`](group::refill)): a worker whose run queue is empty first takes
//!   back what it offered itself, then tries up to [`STEAL_TRIES`] other workers
//!   from a random start (the seed's `try_steal_work`) and takes half of the first
//!   non-empty stealable queue (rounded up). If it left two or more behind it wakes
//!   one more idle worker.
//! - **Idle** (the worker loop, `Runtime::block_on`): before blocking in `io_uring_enter`, a worker marks
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
//! What moves is a [`Migrant`](group::Migrant): the whole task record (coroutine and stack, op
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
//!    `models/green/`, and the tests in `green/tests/steal.rs`).
//! 2. **What a migratable thread may hold across a blocking call.** Only `Send`
//!    values it owns; never a reference into a thread-local, a clone of an `Rc`
//!    (or any `!Send` handle) shared with something that stays on the worker, nor
//!    a guard tied to its OS thread (`MutexGuard`, `StdoutLock`). The runtime rules
//!    out what it can: its own thread-locals hand out copies and clones, never
//!    references, and code on a green stack never keeps the worker's `Rc<Ctx>` or
//!    its `SlotKey` across a park (`sched` re-fetches both after every wake-up);
//!    the one `!Send` handle the green API gives out, [`super::JoinHandle`], comes
//!    from `spawn`, which **pins** its caller for good (`spawn::pin_current`); a
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

pub(crate) mod group;
mod join;

pub use group::{StealGroup, STEAL_TRIES};
pub(crate) use join::spawn_migratable;
pub use join::SendJoinHandle;
