//! The worker's side of the dedicated reactor: [`Io`] (what a worker's `Reactor`
//! submits through: its own ring, or a [`Client`] of the reactor thread), the
//! submission with backpressure, completion dispatch, and the worker's sleep.
//!
//! Everything here runs on the worker thread that owns the runtime; the only
//! cross-thread state it touches is the queue (lock-free), its mailbox (see
//! [`super::mailbox`]) and the reactor's doorbell.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::squeue;

use super::mailbox::{Done, Mailbox};
use super::{tag, untag, Request, Shared, EPOCHS, MAX_SLOTS};
use crate::green::reactor::{finish_op, Reactor};
use crate::green::sched::{self, Ctx};
use crate::stats::{ParkReason, WorkerStats};
use crate::uring::{Features, Ring, RingWaker, SlotKey};

/// Where a worker's ops go.
// One per worker, built once and never moved: boxing the ring would only add an
// indirection to every op of the per-worker path.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Io {
    /// `--green-reactor per-worker`: the worker's own ring.
    Ring(Ring),
    /// `--green-reactor dedicated`: the reactor thread, through the queue.
    Remote(Client),
}

/// Wakes one worker's `green::wait_wake` callers from any thread
/// ([`crate::green::Runtime::waker`]).
#[derive(Debug)]
pub struct Waker(WakerKind);

#[derive(Debug)]
enum WakerKind {
    Ring(Arc<RingWaker>),
    Mailbox(MailboxRef),
}

/// A worker's mailbox, kept alive by the reactor's shared state.
struct MailboxRef {
    shared: Arc<Shared>,
    worker: usize,
}

impl std::fmt::Debug for MailboxRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MailboxRef(worker {})", self.worker)
    }
}

impl Waker {
    pub fn wake(&self) {
        match &self.0 {
            WakerKind::Ring(w) => w.wake(),
            WakerKind::Mailbox(m) => {
                m.shared.mailboxes[m.worker].post_external();
            }
        }
    }
}

/// Worker-local counters, published once per loop turn.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    sleeps: u64,
    woken: u64,
    /// Submitters parked because the queue was full.
    full_parks: u64,
}

/// One worker's handle on the reactor thread. Not `Send` in practice: it lives in
/// the worker's `Reactor` (inside an `Rc`).
pub(crate) struct Client {
    shared: Arc<Shared>,
    worker: u8,
    /// This runtime's attach epoch, carried in every tag it pushes (see [`attach`]).
    ///
    /// [`attach`]: Client::attach
    epoch: u8,
    /// Ops pushed to the reactor whose completion this client has not taken yet;
    /// at drop they become the epoch's orphans (`Mailbox::orphans`).
    remote: u32,
    /// Cancels that found the queue full, oldest first (always for ops in flight:
    /// one whose completion arrives is removed, so a deferred cancel can never hit a
    /// later op of the same task, which carries the same tag).
    deferred: VecDeque<u64>,
    /// Tasks parked on a full queue, oldest first, woken when the reactor posts
    /// "space". A task is queued once per wait (its op's `unsent` flag says whether
    /// it still waits; entries of tasks that got in meanwhile are skipped).
    space_waiters: VecDeque<SlotKey>,
    /// The next timer: the longest the worker may sleep.
    wake_at: Option<Instant>,
    /// Requests pushed since the reactor's doorbell was last considered.
    unsignalled: bool,
    inbox: Vec<Done>,
    counts: Counts,
    published: Counts,
}

impl Client {
    /// Attach to worker slot `worker` of `shared` (one runtime per slot at a time).
    ///
    /// A runtime dropped with ops in flight (after its loop failed) leaves their
    /// completions to come: they carry its attach epoch, and a runtime attached
    /// later to the same slot, whose task table starts afresh with the same slots
    /// and generations, takes a new epoch and drops them as stale. Without that a
    /// late completion resumed a new task while its own op was still in the
    /// kernel. An epoch is reused only once every op of its last user has come back
    /// (`Mailbox::orphans`); when all are still owed the attach is refused.
    pub fn attach(shared: &Arc<Shared>, worker: usize) -> io::Result<Client> {
        let mb = shared.mailboxes.get(worker).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "worker {worker} is not one of the reactor's {} workers",
                    shared.mailboxes.len()
                ),
            )
        })?;
        if mb.claimed.swap(true, Ordering::AcqRel) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("a runtime is already attached as worker {worker}"),
            ));
        }
        // What arrived since the last runtime left is all its orphans.
        let mut late = Vec::new();
        mb.take(&mut late);
        for d in &late {
            if let Some(t) = untag(d.tag) {
                release_orphan(mb, t.epoch);
            }
        }
        let last = mb.epoch.load(Ordering::Relaxed) as usize;
        let Some(epoch) = (1..=EPOCHS)
            .map(|i| (last + i) % EPOCHS)
            .find(|&e| mb.orphans[e].load(Ordering::Acquire) == 0)
        else {
            mb.claimed.store(false, Ordering::Release);
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("worker {worker}: ops of {EPOCHS} dropped runtimes are still in flight"),
            ));
        };
        mb.epoch.store(epoch as u32, Ordering::Relaxed);
        shared.attached.fetch_add(1, Ordering::SeqCst);
        Ok(Client {
            shared: Arc::clone(shared),
            worker: worker as u8,
            epoch: epoch as u8,
            remote: 0,
            deferred: VecDeque::new(),
            space_waiters: VecDeque::new(),
            wake_at: None,
            unsignalled: false,
            inbox: Vec::with_capacity(256),
            counts: Counts::default(),
            published: Counts::default(),
        })
    }

    /// This runtime's attach epoch (tests forge its tags).
    #[cfg(test)]
    pub fn epoch(&self) -> u8 {
        self.epoch
    }

    fn mailbox(&self) -> &Mailbox {
        &self.shared.mailboxes[usize::from(self.worker)]
    }

    pub fn features(&self) -> Features {
        self.shared.features
    }

    pub fn waker(&self) -> Waker {
        Waker(WakerKind::Mailbox(MailboxRef {
            shared: Arc::clone(&self.shared),
            worker: usize::from(self.worker),
        }))
    }

    /// Ask the reactor to cancel `key`'s op (one that reached the queue: an op
    /// still waiting for room is ended by its own task, see `OpSlot::unsent`).
    pub fn cancel(&mut self, key: SlotKey) {
        let tag = tag(self.worker, self.epoch, key);
        if !self.deferred.is_empty() || self.try_push(Request::Cancel { tag }).is_err() {
            self.deferred.push_back(tag);
        }
    }

    fn try_push(&mut self, r: Request) -> Result<(), Request> {
        self.shared.producer.push(r)?;
        self.unsignalled = true;
        Ok(())
    }

    /// The loop timer: sleep no later than `at`.
    pub fn wake_at(&mut self, at: Instant) {
        self.wake_at = Some(at);
    }

    /// Push deferred cancels; ring the reactor's doorbell for what this worker
    /// pushed (once per loop turn, not per op).
    fn flush(&mut self) {
        while let Some(&tag) = self.deferred.front() {
            if self.try_push(Request::Cancel { tag }).is_err() {
                self.want_space();
                break;
            }
            self.deferred.pop_front();
        }
        if std::mem::take(&mut self.unsignalled) {
            self.shared.ring_doorbell();
        }
    }

    /// Ask the reactor to post "space" once it pops something.
    fn want_space(&self) {
        self.mailbox().wants_space.store(true, Ordering::SeqCst);
        // Pairs with the reactor's fence between popping and reading `wants_space`:
        // either our retry sees the freed slot or the reactor sees the flag.
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    /// The worker loop's wait: `want == 0` only flushes; `want > 0` (nothing
    /// runnable) also sleeps until news arrives or the next timer is due.
    pub fn enter(&mut self, want: usize) -> io::Result<()> {
        self.flush();
        if self.shared.closed.load(Ordering::Acquire) && !self.mailbox().has_news() {
            return Err(io::Error::other("the green reactor thread has stopped"));
        }
        let wake_at = self.wake_at.take();
        if want == 0 {
            self.wake_at = wake_at;
            return Ok(());
        }
        let timeout = wake_at.map(|at| at.saturating_duration_since(Instant::now()));
        if timeout == Some(Duration::ZERO) {
            return Ok(());
        }
        if self.mailbox().sleep(timeout) {
            self.counts.sleeps += 1;
            if self.mailbox().has_news() {
                self.counts.woken += 1;
            }
        }
        Ok(())
    }

    /// Add this worker's sleep counters to its `/stats` block.
    pub fn publish(&mut self, st: &WorkerStats) {
        let (c, p) = (self.counts, self.published);
        st.green.sleeps.add(c.sleeps - p.sleeps);
        st.green.woken.add(c.woken - p.woken);
        st.green.queue_full_parks.add(c.full_parks - p.full_parks);
        self.published = c;
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.flush();
        let mb = self.mailbox();
        if self.remote > 0 {
            // Published before `claimed` is released (the next attacher's acquire).
            mb.orphans[usize::from(self.epoch)].fetch_add(self.remote, Ordering::Relaxed);
        }
        mb.claimed.store(false, Ordering::Release);
        self.shared.attached.fetch_sub(1, Ordering::SeqCst);
        self.shared.reactor_waker.wake();
    }
}

impl Io {
    /// The worker's own ring; `None` for a dedicated reactor's client. Work
    /// stealing runs on rings only (`models::check_scheduling` refuses stealing
    /// with a dedicated reactor).
    pub fn ring_mut(&mut self) -> Option<&mut Ring> {
        match self {
            Io::Ring(r) => Some(r),
            Io::Remote(_) => None,
        }
    }

    pub fn features(&self) -> Features {
        match self {
            Io::Ring(r) => *r.features(),
            Io::Remote(c) => c.features(),
        }
    }

    pub fn waker(&self) -> Arc<Waker> {
        Arc::new(match self {
            Io::Ring(r) => Waker(WakerKind::Ring(r.waker())),
            Io::Remote(c) => c.waker(),
        })
    }

    pub fn publish(&mut self, st: &WorkerStats) {
        match self {
            Io::Ring(r) => r.publish(&st.uring),
            Io::Remote(c) => c.publish(st),
        }
    }
}

/// Push a task's op to the reactor; while the queue is full, park the task (it is
/// woken when the reactor posts "space"). Returns once the op is in the queue, or
/// once it was cancelled while it waited for space (`-ECANCELED`; it never reached
/// the reactor; the task is then marked notified, so the caller's next park
/// returns at once and finds the op done). Every task's slot fits a tag: `spawn`
/// refuses tasks beyond [`MAX_SLOTS`] (`Sched::slot_limit`).
///
/// # Safety
/// As `reactor::submit`: every pointer in `sqe` stays valid until the op's
/// completion has been delivered (the caller parks until then).
pub(crate) unsafe fn submit(ctx: &Ctx, key: SlotKey, sqe: squeue::Entry, reason: ParkReason) {
    let mut sqe = Some(sqe);
    loop {
        {
            let mut s = ctx.sched.borrow_mut();
            let mut r = ctx.reactor.borrow_mut();
            let Io::Remote(c) = &mut r.io else {
                unreachable!("dedicated submit on a per-worker ring");
            };
            let Some(t) = s.tasks.get_mut(key) else {
                return;
            };
            debug_assert!(key.index < MAX_SLOTS, "spawn keeps slots below MAX_SLOTS");
            if t.op.cancel.is_some() {
                t.op.unsent = false;
                finish_op(&mut s, key, -libc::ECANCELED);
                return;
            }
            let Some(e) = sqe.take() else {
                unreachable!("the SQE is put back after every refused push");
            };
            let req = Request::Op {
                tag: tag(c.worker, c.epoch, key),
                sqe: e,
            };
            let back = match c.try_push(req) {
                Ok(()) => None,
                Err(req) => {
                    // Full: ask for "space", then retry once (the handshake in
                    // `want_space` makes a lost notification impossible).
                    c.want_space();
                    c.try_push(req).err()
                }
            };
            match back {
                None => {
                    c.remote += 1;
                    t.op.unsent = false;
                    return;
                }
                Some(Request::Op { sqe: e, .. }) => {
                    sqe = Some(e);
                    // Queued once per refused push: "space" drains the list.
                    t.op.unsent = true;
                    c.space_waiters.push_back(key);
                    c.counts.full_parks += 1;
                    // The reactor may sleep unaware of a full queue of others'
                    // requests only until their workers' turns end; ours, too:
                    // ring it for what we pushed before.
                    c.flush();
                }
                Some(Request::Cancel { .. }) => unreachable!("pushed an op"),
            }
        }
        // The task cannot move meanwhile: stealing is never combined with a
        // dedicated reactor (`models::check_scheduling`), so `ctx` and `key` stay its own.
        sched::park(reason);
    }
}

/// One orphaned op of `epoch` came back (saturating: a forged or duplicate
/// completion finds nothing to release).
fn release_orphan(mb: &Mailbox, epoch: u8) {
    if let Some(n) = mb.orphans.get(usize::from(epoch)) {
        let _ = n.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// Deliver what the reactor (or the blocking pool) sent this worker: completions
/// by slot and generation (stale ones dropped and counted), cross-thread wake-ups,
/// "space" for parked submitters.
pub(crate) fn dispatch(ctx: &Ctx) {
    let mut guard = ctx.reactor.borrow_mut();
    let r: &mut Reactor = &mut guard;
    let Io::Remote(c) = &mut r.io else {
        unreachable!("dedicated dispatch on a per-worker ring");
    };
    let mut s = ctx.sched.borrow_mut();
    let mut inbox = std::mem::take(&mut c.inbox);
    let Some(news) = c.mailbox().take(&mut inbox) else {
        c.inbox = inbox;
        return;
    };
    for d in inbox.drain(..) {
        let done = match untag(d.tag) {
            Some(t) if t.worker == usize::from(c.worker) && t.epoch == c.epoch => {
                c.remote = c.remote.saturating_sub(1);
                finish_op(&mut s, t.key, d.result)
            }
            // An op of a runtime attached here before this one (see `Client::attach`).
            Some(t) if t.epoch != c.epoch => {
                release_orphan(&c.shared.mailboxes[usize::from(c.worker)], t.epoch);
                false
            }
            _ => false,
        };
        if done {
            if !c.deferred.is_empty() {
                c.deferred.retain(|&t| t != d.tag);
            }
        } else {
            r.stale += 1;
        }
    }
    c.inbox = inbox;
    if news.space {
        for k in c.space_waiters.drain(..) {
            if let Some(t) = s.tasks.get_mut(k) {
                if t.op.unsent && t.wake() {
                    s.runq.push_back(k);
                }
            }
        }
    }
    if news.external {
        r.wake_seq += 1;
        for k in std::mem::take(&mut s.wake_waiters) {
            s.wake(k);
        }
    }
}
