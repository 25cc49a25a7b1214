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
use super::{tag, untag, Request, Shared, MAX_SLOTS};
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
    /// Cancels that found the queue full, oldest first (always for ops in flight:
    /// one whose completion arrives is removed, so a deferred cancel can never hit a
    /// later op of the same task, which carries the same tag).
    deferred: VecDeque<u64>,
    /// Tasks parked on a full queue, woken when the reactor posts "space".
    space_waiters: Vec<SlotKey>,
    /// Tasks to wake on this turn without news from the reactor (a cancel that
    /// reached an op still waiting for queue space).
    local_wakes: Vec<SlotKey>,
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
        shared.attached.fetch_add(1, Ordering::SeqCst);
        Ok(Client {
            shared: Arc::clone(shared),
            worker: worker as u8,
            deferred: VecDeque::new(),
            space_waiters: Vec::new(),
            local_wakes: Vec::new(),
            wake_at: None,
            unsignalled: false,
            inbox: Vec::with_capacity(256),
            counts: Counts::default(),
            published: Counts::default(),
        })
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

    /// Ask the reactor to cancel `key`'s op. An op still waiting for queue space is
    /// ended by its own task instead (it never reached the reactor).
    pub fn cancel(&mut self, key: SlotKey) {
        if self.space_waiters.contains(&key) {
            self.local_wakes.push(key);
            return;
        }
        let tag = tag(self.worker, key);
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
        if want == 0 || !self.local_wakes.is_empty() {
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
        self.mailbox().claimed.store(false, Ordering::Release);
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
/// once it was ended here: cancelled while it waited for space (`-ECANCELED`; it
/// never reached the reactor), or refused (`-EOVERFLOW`: slot index beyond a tag's
/// 24 bits). In both of those cases the task is marked notified, so the caller's
/// next park returns at once and finds the op done.
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
            let refused = key.index >= MAX_SLOTS;
            if t.op.cancel.is_some() || refused {
                c.space_waiters.retain(|k| *k != key);
                let res = if refused {
                    -libc::EOVERFLOW
                } else {
                    -libc::ECANCELED
                };
                finish_op(&mut s, key, res);
                return;
            }
            let Some(e) = sqe.take() else {
                unreachable!("the SQE is put back after every refused push");
            };
            let req = Request::Op {
                tag: tag(c.worker, key),
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
                    c.space_waiters.retain(|k| *k != key);
                    return;
                }
                Some(Request::Op { sqe: e, .. }) => {
                    sqe = Some(e);
                    if !c.space_waiters.contains(&key) {
                        c.space_waiters.push(key);
                    }
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
    for k in c.local_wakes.drain(..) {
        s.wake(k);
    }
    let mut inbox = std::mem::take(&mut c.inbox);
    let Some(news) = c.mailbox().take(&mut inbox) else {
        c.inbox = inbox;
        return;
    };
    for d in inbox.drain(..) {
        let done = match untag(d.tag) {
            Some((w, key)) if w == usize::from(c.worker) => finish_op(&mut s, key, d.result),
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
            s.wake(k);
        }
    }
    if news.external {
        r.wake_seq += 1;
        for k in std::mem::take(&mut s.wake_waiters) {
            s.wake(k);
        }
    }
}
