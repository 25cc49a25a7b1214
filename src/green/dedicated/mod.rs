//! `--green-reactor dedicated`: the seed's own design. One reactor OS thread owns
//! the only io_uring; the workers run green threads only and never enter the kernel
//! for I/O.
//!
//! ```text
//!  worker 0..N (green threads)                        reactor thread ("gvhttpd-reactor")
//!  ───────────────────────────                        ──────────────────────────────────
//!  op = SQE tagged (worker, slot, gen)                pop every request ──► ring SQ
//!   │ push ─► bounded lock-free MPSC queue ─────────►   (or the blocking pool, Tier 2)
//!   │ full? park until the reactor posts "space"      ONE io_uring_enter: submit + wait
//!   │ park                                            reap CQEs ─► per-worker batches
//!   ▼                                                     │
//!  mailbox: Vec<Done> + flags ◄──────────────────────────┘ one lock per worker per batch;
//!  worker sleeps on a futex with the timeout of its      FUTEX_WAKE only if that worker
//!  next deadline; wakes → completions by slot + gen      published "sleeping"
//! ```
//!
//! # Who owns what
//! - **The ring** belongs to the reactor thread alone: it is built on that thread
//!   (so `IORING_SETUP_SINGLE_ISSUER` / `DEFER_TASKRUN` hold, where the kernel has
//!   them; see [`crate::uring::probe`]) and no other thread touches it.
//! - **An op's memory** (the buffer of a recv, the `timespec` of a sleep, the path of
//!   an open) lives on the submitting green thread's stack or in what it borrows. The
//!   green thread stays parked inside `reactor::submit` until the op's completion is
//!   delivered to its worker, also after a cancel, so from the push into the queue
//!   until that delivery the memory belongs to the reactor thread, the kernel, or a
//!   blocking-pool thread, and the worker does not touch it. Delivery goes through
//!   the mailbox's mutex, which orders the kernel's / pool's writes before the
//!   worker's reads.
//! - **Tasks and their generations** belong to the worker. The reactor never looks
//!   at a task: it routes a completion by the worker byte of its tag, and the worker
//!   checks slot + generation against its task table, dropping stale ones
//!   ([`tag`]; counted as stale completions).
//!
//! # Backpressure, cancellation, deadlines
//! - The queue is bounded ([`queue`]). A green thread that finds it full sets its
//!   worker's `wants_space`, parks, and is woken when the reactor has popped
//!   requests and posted "space": it never spins. A cancel (from a deadline or an
//!   interrupt, decided by the worker loop, which cannot park) that finds the queue
//!   full waits in the worker's small `deferred` list, flushed every loop turn.
//! - Deadlines stay in the worker's timer heap (as per-worker): the worker sleeps
//!   with the timeout of its next timer, and on expiry sends a cancel for the op.
//!   The task resumes with `TimedOut` / `Interrupted` only when the cancelled op's
//!   own completion arrives, so its buffer outlives the kernel's use. An op that is
//!   still waiting for queue space when it is cancelled never reached the reactor
//!   and ends at once.
//!
//! # Tier 2: the blocking pool
//! An op whose opcode the kernel's io_uring lacks (per `IORING_REGISTER_PROBE`), or
//! that `GVHTTPD_GREEN_FALLBACK` forces (`all`, or names such as `read,statx`), runs
//! on a small pool of threads as the plain syscall ([`blocking`]) and completes the
//! same way (a tagged result in the worker's mailbox); `/stats` counts them. An op
//! that waits (a recv) holds a pool thread while it waits, so the pool grows up to
//! 256 threads: fine for the file ops old kernels lack, not a way to serve 10,000
//! idle connections (forcing `recv` onto the pool is for testing).

pub(crate) mod blocking;
pub(crate) mod client;
pub(crate) mod mailbox;
pub mod queue;
mod reactor_thread;

#[cfg(test)]
mod tests;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use io_uring::squeue;

use super::counters::ReactorCounters;
use crate::uring::token::GEN_MASK;
use crate::uring::{Features, RingWaker, SlotKey, UringOptions};

pub use blocking::OpSet;
use mailbox::Mailbox;
pub(crate) use mailbox::EPOCHS;

/// Most workers one reactor serves (the worker is one byte of a tag).
pub const MAX_WORKERS: usize = 256;

/// Most green threads one worker may have while using the dedicated reactor (the
/// slot index is 24 bits of a tag).
pub const MAX_SLOTS: u32 = 1 << 24;

/// Pack a worker op's `user_data`: `[epoch 8 | worker 8 | generation 24 | slot 24]`.
/// The generation is the full 24 bits the task table keeps, so a completion for an
/// earlier occupant of the slot is recognised as stale. The epoch names the
/// runtime attached to the worker slot when the op was pushed ([`client`]): a
/// runtime attached later starts its task table afresh, with the same slots and
/// generations, and must not take an earlier runtime's completions for its own.
pub(crate) fn tag(worker: u8, epoch: u8, key: SlotKey) -> u64 {
    debug_assert!(key.index < MAX_SLOTS);
    debug_assert!(usize::from(epoch) < EPOCHS);
    (u64::from(epoch) << 56)
        | (u64::from(worker) << 48)
        | (u64::from(key.gen & GEN_MASK) << 24)
        | u64::from(key.index & (MAX_SLOTS - 1))
}

/// What a worker op's tag names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tag {
    pub worker: usize,
    pub epoch: u8,
    pub key: SlotKey,
}

/// The worker, epoch and slot key a tag names (`None`: not a worker op's tag).
pub(crate) fn untag(raw: u64) -> Option<Tag> {
    let epoch = (raw >> 56) as u8;
    if usize::from(epoch) >= EPOCHS {
        return None;
    }
    let key = SlotKey {
        index: (raw & u64::from(MAX_SLOTS - 1)) as u32,
        gen: ((raw >> 24) as u32) & GEN_MASK,
    };
    Some(Tag {
        worker: ((raw >> 48) & 0xFF) as usize,
        epoch,
        key,
    })
}

/// What a worker sends the reactor.
pub(crate) enum Request {
    /// Submit `sqe` (its `user_data` is set to `tag` by the reactor).
    Op { tag: u64, sqe: squeue::Entry },
    /// Cancel the op carrying `tag` (its own completion still ends it).
    Cancel { tag: u64 },
}

/// How to build the reactor thread.
#[derive(Clone, Debug)]
pub struct ReactorOptions {
    pub uring: UringOptions,
    /// Workers (runtimes) that will attach, each with its own index.
    pub workers: usize,
    /// Submission queue slots (rounded up to a power of two).
    pub queue_capacity: usize,
    /// Threads the Tier 2 blocking pool starts with (only once some op needs it;
    /// it grows while all are busy, up to `blocking::MAX_POOL_THREADS`).
    pub pool_threads: usize,
    /// Opcodes to run on the blocking pool even where the ring has them (testing
    /// the fallback; `GVHTTPD_GREEN_FALLBACK`).
    pub force_fallback: OpSet,
    /// Called on the reactor thread when its loop ends because io_uring failed
    /// (the workers' ops then fail): where the failure is reported. The server
    /// sends it to its error log; the default writes one line to stderr.
    pub on_failure: fn(&io::Error),
}

/// [`ReactorOptions::on_failure`] unless set: one line on stderr.
fn report_failure(e: &io::Error) {
    use io::Write as _;
    let _ = writeln!(
        io::stderr(),
        "gvhttpd: green reactor thread: io_uring failed: {e}"
    );
}

impl ReactorOptions {
    /// Defaults for `workers` workers: a queue as deep as the ring, two pool threads,
    /// forced fallbacks from `GVHTTPD_GREEN_FALLBACK` (an unknown name is an error),
    /// a failure reported on stderr.
    pub fn new(uring: UringOptions, workers: usize) -> io::Result<ReactorOptions> {
        let force_fallback = match std::env::var("GVHTTPD_GREEN_FALLBACK") {
            Ok(v) => OpSet::parse(&v).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("GVHTTPD_GREEN_FALLBACK: {e}"),
                )
            })?,
            Err(_) => OpSet::default(),
        };
        Ok(ReactorOptions {
            uring,
            workers,
            queue_capacity: (uring.entries as usize).max(64),
            pool_threads: 2,
            force_fallback,
            on_failure: report_failure,
        })
    }
}

/// What the reactor thread and every worker attached to it share.
pub(crate) struct Shared {
    producer: queue::Producer<Request>,
    pub mailboxes: Box<[Mailbox]>,
    /// The reactor is about to wait in (or is in) `io_uring_enter`: a producer that
    /// pushed must write `reactor_waker` (see `client::Client::flush`).
    reactor_sleeping: AtomicBool,
    reactor_waker: Arc<RingWaker>,
    /// Set by [`ReactorThread`]'s drop: finish what is in flight, then exit.
    stop: AtomicBool,
    /// The reactor thread has exited: pushes would never be served.
    closed: AtomicBool,
    /// Runtimes attached right now.
    attached: AtomicUsize,
    features: Features,
    /// Where the reactor thread publishes its counters (`/stats` reads them).
    stats: Option<Arc<ReactorCounters>>,
}

impl Shared {
    /// Wake the reactor if it sleeps (after pushing; see `reactor_thread` docs).
    fn ring_doorbell(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.reactor_sleeping.load(Ordering::Relaxed)
            && self.reactor_sleeping.swap(false, Ordering::SeqCst)
        {
            self.reactor_waker.wake();
        }
    }
}

/// The dedicated reactor thread. Attach worker runtimes with
/// [`crate::green::Runtime::on_reactor`]; dropping it stops the thread once nothing
/// is in flight (drop it after the runtimes finished).
pub struct ReactorThread {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for ReactorThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReactorThread")
            .field("workers", &self.shared.mailboxes.len())
            .field("features", &self.shared.features)
            .finish()
    }
}

impl ReactorThread {
    /// Start the thread and build its ring there. `stats`: where the thread
    /// publishes its counters (it is their only writer). Fails when io_uring cannot
    /// be set up (the error says why).
    pub fn start(
        opts: &ReactorOptions,
        stats: Option<Arc<ReactorCounters>>,
    ) -> io::Result<ReactorThread> {
        if opts.workers == 0 || opts.workers > MAX_WORKERS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "--green-reactor dedicated serves 1 to {MAX_WORKERS} workers, not {}",
                    opts.workers
                ),
            ));
        }
        reactor_thread::spawn(opts, stats)
    }

    /// What the reactor's ring supports.
    pub fn features(&self) -> Features {
        self.shared.features
    }

    /// The CPUs the reactor thread may run on (its affinity, inherited from the
    /// process: `taskset` applies), as a list like `0-1` or `0,2`.
    pub fn cpus(&self) -> String {
        reactor_thread::affinity_of_current_process()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for ReactorThread {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.reactor_waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
impl ReactorThread {
    /// A reactor without its thread, for tests that play the reactor themselves:
    /// they pop the returned consumer and deliver completions to the mailboxes.
    pub(crate) fn stalled(
        workers: usize,
        capacity: usize,
    ) -> io::Result<(ReactorThread, queue::Consumer<Request>)> {
        let ring = crate::uring::Ring::new(&UringOptions::default())?;
        let (producer, consumer) = queue::channel(capacity);
        let shared = Arc::new(Shared {
            producer,
            mailboxes: (0..workers).map(|_| Mailbox::default()).collect(),
            reactor_sleeping: AtomicBool::new(false),
            reactor_waker: ring.waker(),
            stop: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            attached: AtomicUsize::new(0),
            features: *ring.features(),
            stats: None,
        });
        let r = ReactorThread {
            shared,
            thread: None,
        };
        Ok((r, consumer))
    }
}
