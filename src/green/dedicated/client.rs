//! The worker's side of the dedicated reactor: a [`Client`] of the reactor thread
//! is the worker's [`Backend`]: submission into the bounded queue (with
//! backpressure), completion dispatch from the mailbox, and the worker's sleep.
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
use crate::green::backend::{Backend, Dispatched, Wake, Waker};
use crate::green::counters::WorkerCounters;
use crate::green::task::{finish_op, Sched};
use crate::uring::{Features, SlotKey};

/// A worker's mailbox, kept alive by the reactor's shared state: what its
/// [`Waker`] wakes.
struct MailboxRef {
    shared: Arc<Shared>,
    worker: usize,
}

impl std::fmt::Debug for MailboxRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MailboxRef(worker {})", self.worker)
    }
}

impl Wake for MailboxRef {
    fn wake(&self) {
        self.shared.mailboxes[self.worker].post_external();
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
    /// "space": each refused push queues its task once (no search), and the
    /// whole list is drained on "space", waking only tasks whose op is still
    /// `unsent` (entries of tasks that got in meanwhile are skipped).
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

    fn try_push(&mut self, r: Request) -> Result<(), Request> {
        self.shared.producer.push(r)?;
        self.unsignalled = true;
        Ok(())
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

/// One orphaned op of `epoch` came back (saturating: a forged or duplicate
/// completion finds nothing to release).
fn release_orphan(mb: &Mailbox, epoch: u8) {
    if let Some(n) = mb.orphans.get(usize::from(epoch)) {
        let _ = n.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

impl Backend for Client {
    /// Into the queue; when it is full, ask the reactor to post "space" and retry
    /// once (the handshake in `want_space` makes a lost notification impossible),
    /// else hand the SQE back with `key` queued to be woken on "space".
    unsafe fn push(&mut self, key: SlotKey, sqe: squeue::Entry) -> Result<(), squeue::Entry> {
        debug_assert!(key.index < MAX_SLOTS, "spawn keeps slots below MAX_SLOTS");
        let req = Request::Op {
            tag: tag(self.worker, self.epoch, key),
            sqe,
        };
        let back = match self.try_push(req) {
            Ok(()) => None,
            Err(req) => {
                self.want_space();
                self.try_push(req).err()
            }
        };
        match back {
            None => {
                self.remote += 1;
                Ok(())
            }
            Some(Request::Op { sqe, .. }) => {
                self.space_waiters.push_back(key);
                self.counts.full_parks += 1;
                // The reactor may sleep unaware of a full queue of others' requests
                // only until their workers' turns end; ours, too: ring it for what
                // we pushed before.
                self.flush();
                Err(sqe)
            }
            Some(Request::Cancel { .. }) => unreachable!("pushed an op"),
        }
    }

    /// Ask the reactor to cancel `key`'s op (one that reached the queue: an op
    /// still waiting for room is ended by its own task, see `OpSlot::unsent`).
    fn cancel(&mut self, key: SlotKey) {
        let tag = tag(self.worker, self.epoch, key);
        if !self.deferred.is_empty() || self.try_push(Request::Cancel { tag }).is_err() {
            self.deferred.push_back(tag);
        }
    }

    /// No ring here: the worker's sleep is bounded by `at` instead.
    fn wake_by(&mut self, at: Instant, _now: Instant) -> bool {
        self.wake_at = Some(at);
        false
    }

    /// A cross-thread wake always reaches the mailbox: nothing to arm.
    fn listen_for_wake(&mut self) -> bool {
        false
    }

    /// `want == 0` only flushes; `want > 0` (nothing runnable) also sleeps until
    /// news arrives or the next timer is due.
    fn enter(&mut self, want: usize) -> io::Result<()> {
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

    /// Completions arrive without entering anything: only flush.
    fn poll(&mut self) -> io::Result<()> {
        self.enter(0)
    }

    /// Deliver what the reactor (or the blocking pool) sent this worker:
    /// completions by epoch, slot and generation (stale ones dropped and counted),
    /// cross-thread wake-ups, "space" for parked submitters (oldest first).
    fn dispatch(&mut self, s: &mut Sched) -> Dispatched {
        let mut d = Dispatched::default();
        let mut inbox = std::mem::take(&mut self.inbox);
        let Some(news) = self.mailbox().take(&mut inbox) else {
            self.inbox = inbox;
            return d;
        };
        let mb = &self.shared.mailboxes[usize::from(self.worker)];
        for done in inbox.drain(..) {
            let finished = match untag(done.tag) {
                Some(t) if t.worker == usize::from(self.worker) && t.epoch == self.epoch => {
                    self.remote = self.remote.saturating_sub(1);
                    finish_op(s, t.key, done.result)
                }
                // An op of a runtime attached here before this one (see `attach`).
                Some(t) if t.epoch != self.epoch => {
                    release_orphan(mb, t.epoch);
                    false
                }
                _ => false,
            };
            if finished {
                if !self.deferred.is_empty() {
                    self.deferred.retain(|&t| t != done.tag);
                }
            } else {
                d.stale += 1;
            }
        }
        self.inbox = inbox;
        if news.space {
            for k in self.space_waiters.drain(..) {
                if let Some(t) = s.tasks.get_mut(k) {
                    if t.op.unsent && t.wake() {
                        s.runq.push_back(k);
                    }
                }
            }
        }
        d.woken = news.external;
        d
    }

    fn features(&self) -> Features {
        self.shared.features
    }

    fn waker(&self) -> Arc<Waker> {
        Arc::new(Waker::new(MailboxRef {
            shared: Arc::clone(&self.shared),
            worker: usize::from(self.worker),
        }))
    }

    /// The worker's sleep counters.
    fn publish(&mut self, st: WorkerCounters<'_>) {
        let (c, p) = (self.counts, self.published);
        st.green.sleeps.add(c.sleeps - p.sleeps);
        st.green.woken.add(c.woken - p.woken);
        st.green.queue_full_parks.add(c.full_parks - p.full_parks);
        self.published = c;
    }

    /// A tag has 24 bits for the slot.
    fn slot_limit(&self) -> u32 {
        MAX_SLOTS
    }

    #[cfg(test)]
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
