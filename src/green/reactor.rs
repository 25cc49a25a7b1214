//! The worker's reactor. `--green-reactor per-worker` (the default): one [`Ring`]
//! per worker thread, owned by that worker's scheduler (never shared, no queue
//! between threads). `--green-reactor dedicated`: the worker owns no ring; its ops
//! go to the one reactor thread through a bounded MPSC queue and come back through
//! its mailbox ([`super::dedicated`]). Everything below holds for both; the two
//! differ only where an op is pushed, cancelled, reaped and where the worker waits
//! ([`Io`]).
//!
//! # One op per blocking call
//! [`submit`] is how every blocking-style call (read, write, accept, sleep, open ...)
//! reaches the kernel: it pushes one SQE tagged with the running task's token
//! (`slot + generation + OP`), parks the task, and returns when that op's CQE has
//! been reaped. The worker loop (`Runtime::block_on`) runs all ready tasks, then
//! submits everything they pushed in ONE `io_uring_enter` and dispatches the CQEs.
//!
//! # Buffers and cancellation (the ring's contract, met here)
//! A buffer passed to [`submit`] is borrowed by the caller for the whole call, and
//! `submit` returns only after the op's CQE has arrived — also when the op was
//! cancelled. The task is parked meanwhile; a parked task's coroutine (its stack,
//! where such borrows live) is never dropped while `op.in_flight` is set
//! (`sched::drop_leftovers` leaks it instead). So the kernel is done with the memory
//! before the borrow ends: that is why `submit` may be called with stack buffers.
//!
//! A deadline (per call) or an interrupt cancels the op with
//! `IORING_OP_ASYNC_CANCEL`; the task is resumed by the cancelled op's own CQE and
//! gets `TimedOut` / `Interrupted` (or the op's real result when it won the race).
//!
//! # Deadlines without a timer per op
//! A deadline costs no SQE. Each task keeps at most one live entry in a per-worker
//! heap (`timer_at`): a new deadline pushes an entry only when it is earlier than
//! the task's live one; when an entry comes due and the task's current deadline is
//! later (the phase moved on), it is re-pushed for that deadline. Stale entries
//! (finished tasks, superseded deadlines) are compacted away once they outnumber
//! the live ones, which bounds the heap by the number of green threads. The loop keeps one
//! internal `IORING_OP_TIMEOUT` armed for the earliest entry.

use std::cmp::Reverse;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use io_uring::squeue;

use super::dedicated::client::{self, Client, Io};
use super::sched::{self, Cause, Ctx, Interrupt, OpSlot, Sched};
use crate::config::UringOptions;
use crate::stats::ParkReason;
use crate::uring::{Completion, Features, OpKind, Ring, SlotKey, Token};

/// The op kind of a task's op (the only model-defined kind the green runtime uses).
pub(crate) const OP: OpKind = OpKind::new(1);

/// Which interrupts cancel an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GivesWay {
    /// Accept, read, wait: a soft interrupt ("stop waiting for new work") cancels it.
    OnSoft,
    /// Write, sleep, file I/O: only a hard interrupt ("abandon everything").
    OnHard,
    /// Close: never cancelled (the descriptor must be released either way).
    Never,
}

impl GivesWay {
    pub(crate) fn to(self, i: Interrupt) -> bool {
        match self {
            GivesWay::OnSoft => i >= Interrupt::Soft,
            GivesWay::OnHard => i >= Interrupt::Hard,
            GivesWay::Never => false,
        }
    }
}

/// `IORING_RECVSEND_POLL_FIRST` (Linux 5.19+): arm readiness polling before trying
/// the recv. A green read usually starts right after a response went out, when the
/// next request cannot have arrived yet, so the first non-blocking attempt would
/// only fail with `EAGAIN`.
const RECVSEND_POLL_FIRST: u16 = 1;

thread_local! {
    /// The `ioprio` a recv gets on this worker's ring (set by `Runtime::block_on`).
    static RECV_IOPRIO: std::cell::Cell<u16> = const { std::cell::Cell::new(0) };
}

/// Configure per-ring op flags for the thread about to submit to a ring with `f`.
pub(crate) fn configure(f: &Features) {
    let poll_first = f.kernel >= (5, 19);
    RECV_IOPRIO.set(if poll_first { RECVSEND_POLL_FIRST } else { 0 });
}

/// The `ioprio` field for a recv SQE on the current worker. Never inlined: it
/// runs on green stacks, which may change threads (see `super::tls`).
#[inline(never)]
pub(crate) fn recv_ioprio() -> u16 {
    RECV_IOPRIO.get()
}

/// One worker's ring (or its client of the reactor thread) plus what the loop
/// needs around it.
pub(crate) struct Reactor {
    pub io: Io,
    /// Reap buffer, reused every turn.
    done: Vec<Completion>,
    /// SQEs pushed since the last `io_uring_enter`.
    pub pushed: usize,
    /// Loop timers in flight: `(sequence, expiry)`.
    armed: Vec<(u32, Instant)>,
    timer_seq: u32,
    /// Ring wake-ups seen (see `wait_wake`).
    pub wake_seq: u64,
    /// Completions dropped because their slot had moved on (stale generation).
    pub stale: u64,
}

impl Reactor {
    pub fn new(opts: &UringOptions) -> io::Result<Reactor> {
        Ok(Reactor::with_io(Io::Ring(Ring::new(opts)?)))
    }

    /// A worker without a ring: its ops go to the dedicated reactor thread.
    pub fn remote(client: Client) -> Reactor {
        Reactor::with_io(Io::Remote(client))
    }

    fn with_io(io: Io) -> Reactor {
        Reactor {
            io,
            done: Vec::with_capacity(256),
            pushed: 0,
            armed: Vec::new(),
            timer_seq: 0,
            wake_seq: 0,
            stale: 0,
        }
    }

    /// The worker's own ring (tests that forge SQEs; panics under a dedicated reactor).
    #[cfg(test)]
    pub fn ring_mut(&mut self) -> &mut Ring {
        match &mut self.io {
            Io::Ring(r) => r,
            Io::Remote(_) => panic!("no per-worker ring under a dedicated reactor"),
        }
    }

    /// Ask the kernel to cancel `key`'s op; its CQE still ends the op.
    pub fn cancel(&mut self, key: SlotKey) {
        self.pushed += 1;
        match &mut self.io {
            Io::Ring(ring) => ring.push_cancel(key.token(OP), Token::internal(OpKind::CANCEL)),
            Io::Remote(c) => c.cancel(key),
        }
    }

    /// Keep an internal timeout armed for `next` (the earliest deadline entry).
    fn arm(&mut self, next: Instant, now: Instant) {
        let ring = match &mut self.io {
            Io::Ring(ring) => ring,
            // No ring: the worker's sleep is bounded by `next` instead.
            Io::Remote(c) => return c.wake_at(next),
        };
        if self.armed.iter().any(|&(_, at)| at <= next) {
            return;
        }
        self.timer_seq = self.timer_seq.wrapping_add(1);
        let token = Token::new(self.timer_seq, 0, OpKind::TIMER);
        // Round up to a whole millisecond so the timer never fires just before `next`.
        let after = next.saturating_duration_since(now) + Duration::from_millis(1);
        ring.push_timeout(after, token);
        self.pushed += 1;
        self.armed.push((self.timer_seq, next));
    }

    /// One `io_uring_enter`: submit what was pushed, wait for `want` completions.
    /// Dedicated: flush to the reactor thread, and with `want > 0` sleep until
    /// news arrives or the next timer is due.
    pub fn enter(&mut self, want: usize) -> io::Result<()> {
        self.pushed = 0;
        match &mut self.io {
            Io::Ring(ring) => ring.submit_and_wait(want),
            Io::Remote(c) => c.enter(want),
        }
    }

    /// An enter that cannot block: a NOP makes `want = 1` return at once, after the
    /// kernel ran any deferred completion work (`DEFER_TASKRUN` only does that for
    /// an enter that waits).
    /// Dedicated: completions arrive without entering anything; only flush.
    pub fn poll(&mut self) -> io::Result<()> {
        let Io::Ring(ring) = &mut self.io else {
            return self.enter(0);
        };
        ring.push_nop(Token::internal(OpKind::NOP));
        self.enter(1)
    }
}

/// Submit one op for the running green thread and park it until the op's CQE.
///
/// Returns the CQE result (`>= 0`), `TimedOut` when `deadline` passed first,
/// `Interrupted` when an interrupt that `gives_way` to arrived, or the op's errno.
/// A pending interrupt returns `Interrupted` before anything is submitted; a
/// deadline already in the past is not checked here (that would cost a clock read
/// per op): the op is submitted and the next loop turn cancels it.
///
/// # Safety
/// Every pointer in `sqe` must stay valid until this function returns. Memory
/// borrowed by the caller for the duration of the call meets this: the function
/// returns only after the kernel posted the op's final CQE (see the module docs).
pub(crate) unsafe fn submit(
    sqe: squeue::Entry,
    deadline: Option<Instant>,
    gives_way: GivesWay,
    reason: ParkReason,
) -> io::Result<i32> {
    let op = prepare(deadline, gives_way)?;
    // SAFETY: forwarded from our caller (see above).
    unsafe { op.push_and_wait(sqe, reason) }
}

/// An op that passed every check `submit` makes before pushing: from here on
/// nothing fails before the SQE is in the ring. Its task's op slot is armed, so it
/// must be pushed ([`Prepared::push_and_wait`]) right away. Callers that hand something to the
/// kernel with the op (a descriptor to close) give it up only after [`prepare`]
/// succeeded, so a refusal never loses it.
#[must_use]
pub(crate) struct Prepared {
    ctx: Rc<Ctx>,
    key: SlotKey,
}

/// The fallible half of [`submit`]: the op may block here, the task is green and
/// has no interrupt pending that the op gives way to; the op slot is armed.
pub(crate) fn prepare(deadline: Option<Instant>, gives_way: GivesWay) -> io::Result<Prepared> {
    let (ctx, key) = sched::current_blocking()?;
    {
        let mut guard = ctx.sched.borrow_mut();
        let s = &mut *guard;
        let t = s
            .tasks
            .get_mut(key)
            .ok_or_else(|| io::Error::other("task vanished"))?;
        if gives_way.to(t.interrupt) {
            if t.interrupt == Interrupt::Soft {
                t.interrupt = Interrupt::None;
            }
            return Err(interrupted());
        }
        t.op = OpSlot {
            in_flight: true,
            result: 0,
            level: match gives_way {
                GivesWay::OnSoft => Interrupt::Soft,
                GivesWay::OnHard => Interrupt::Hard,
                GivesWay::Never => Interrupt::None,
            },
            deadline,
            cancel: None,
            unsent: false,
        };
        if let Some(d) = deadline {
            if t.timer_at.map_or(true, |at| d < at) {
                t.timer_at = Some(d);
                s.timers.push(Reverse((d, key.index, key.gen)));
                compact_timers(s);
            }
        }
        s.ops_in_flight += 1;
    }
    Ok(Prepared { ctx, key })
}

impl Prepared {
    /// Push `sqe` for the prepared op and park until its CQE (see [`submit`]).
    ///
    /// # Safety
    /// As [`submit`]: every pointer in `sqe` stays valid until this returns.
    pub(crate) unsafe fn push_and_wait(
        self,
        sqe: squeue::Entry,
        reason: ParkReason,
    ) -> io::Result<i32> {
        let Prepared { ctx, key } = self;
        // From the push on, leaving this function in any other way than with the
        // op's final CQE (an error below, an unwind) would free the op's memory under
        // the kernel: the guard aborts the process instead.
        let in_flight = InFlight;
        // SAFETY: our caller guarantees the SQE's memory outlives this call, and we do
        // not return before the op's CQE (loop below; `in_flight` for every other way out).
        unsafe { push_op(&ctx, key, sqe, reason) };
        // Nothing of this worker is kept across the park: a task whose op is done may
        // be resumed by another worker (`super::steal`), so `ctx` and `key` are
        // fetched again after every wake-up. (While the op is in flight the task never
        // moves, so its CQE always reaches the ring it was pushed on.)
        drop(ctx);
        loop {
            let (ctx, key) = sched::park_fresh(reason)?;
            let mut s = ctx.sched.borrow_mut();
            let t = s
                .tasks
                .get_mut(key)
                .ok_or_else(|| io::Error::other("task vanished"))?;
            if t.op.in_flight {
                continue; // a wake-up for something else; the op is still the kernel's
            }
            std::mem::forget(in_flight);
            t.op.deadline = None;
            let (res, cause) = (t.op.result, t.op.cancel.take());
            return match cause {
                _ if res >= 0 => Ok(res),
                Some(Cause::TimedOut) if res == -libc::ECANCELED => Err(timed_out()),
                Some(Cause::Interrupted) if res == -libc::ECANCELED => {
                    if t.interrupt == Interrupt::Soft {
                        t.interrupt = Interrupt::None;
                    }
                    Err(interrupted())
                }
                _ => Err(io::Error::from_raw_os_error(-res)),
            };
        }
    }
}

/// Armed by [`Prepared::push_and_wait`] while its op is in flight; dropping it
/// (an early return or an unwind out of the wait) aborts the process, since the
/// op's memory (often on this green thread's stack) is still the kernel's.
struct InFlight;

impl Drop for InFlight {
    #[cold]
    fn drop(&mut self) {
        // Not `eprintln!`: a panic here, maybe already unwinding, would abort anyway.
        let _ = std::io::Write::write_all(
            &mut io::stderr(),
            b"gvhttpd: a green thread left a blocking call with its io_uring op still \
              in flight (its buffer would be freed under the kernel); aborting\n",
        );
        std::process::abort();
    }
}

/// Hand the running task's op to the kernel: into this worker's SQ, or (dedicated)
/// into the reactor's queue, parking while it is full (see `client::submit`).
///
/// # Safety
/// As [`submit`]: every pointer in `sqe` stays valid until the op's CQE ends it.
unsafe fn push_op(ctx: &Ctx, key: SlotKey, sqe: squeue::Entry, reason: ParkReason) {
    let mut guard = ctx.reactor.borrow_mut();
    let r = &mut *guard;
    r.pushed += 1;
    if let Io::Ring(ring) = &mut r.io {
        let sqe = sqe.user_data(key.token(OP).raw());
        // SAFETY: forwarded from our caller (see above).
        return unsafe { ring.push(sqe) };
    }
    drop(guard);
    // SAFETY: forwarded from our caller (see above).
    unsafe { push_remote(ctx, key, sqe, reason) }
}

/// The dedicated reactor's half of [`push_op`], out of line: its frame (the queue
/// retry loop) then stays off the stack of every per-worker park, which an idle
/// connection keeps resident.
///
/// # Safety
/// As [`submit`]: every pointer in `sqe` stays valid until the op's CQE ends it.
#[inline(never)]
unsafe fn push_remote(ctx: &Ctx, key: SlotKey, sqe: squeue::Entry, reason: ParkReason) {
    // SAFETY: forwarded from our caller (see above).
    unsafe { client::submit(ctx, key, sqe, reason) }
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

#[cold]
#[inline(never)]
fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "green I/O deadline passed")
}

#[cold]
#[inline(never)]
fn interrupted() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "green thread interrupted")
}

/// `Interrupted` when the running task has an interrupt pending that an op which
/// `gives_way` would yield to (a soft one is consumed, as `submit` does). For calls
/// that may finish without submitting anything (an accept served from a burst).
pub(crate) fn check_interrupt(gives_way: GivesWay) -> io::Result<()> {
    let (ctx, key) = sched::current()?;
    let mut s = ctx.sched.borrow_mut();
    let t = s
        .tasks
        .get_mut(key)
        .ok_or_else(|| io::Error::other("task vanished"))?;
    if gives_way.to(t.interrupt) {
        if t.interrupt == Interrupt::Soft {
            t.interrupt = Interrupt::None;
        }
        return Err(interrupted());
    }
    Ok(())
}

/// Heap size below which stale timer entries are left to expire.
pub(crate) const COMPACT_MIN: usize = 1024;

/// Drop stale entries (of finished tasks, or superseded by an earlier deadline)
/// once they outnumber the live ones. Every task has at most one live entry, so
/// right after any push the heap holds at most `max(COMPACT_MIN, 2 × tasks) + 1`
/// entries; without it a finished connection's idle deadline stayed until it came due
/// (60 s × 50k connections/s is 3M entries). Each compaction is O(n) and follows
/// at least n/2 pushes, so the cost per push stays O(1) amortised.
fn compact_timers(s: &mut Sched) {
    if s.timers.len() <= COMPACT_MIN.max(2 * s.tasks.len()) {
        return;
    }
    let tasks = &s.tasks;
    s.timers.retain(|&Reverse((at, index, gen))| {
        tasks
            .get(SlotKey { index, gen })
            .is_some_and(|t| t.timer_at == Some(at))
    });
    // After a burst, give the heap's memory back too (it holds a few live entries).
    if s.timers.capacity() > 4 * s.timers.len().max(COMPACT_MIN) {
        s.timers.shrink_to(2 * s.timers.len().max(COMPACT_MIN));
    }
}

/// Cancel the ops whose deadline has passed, re-push entries whose deadline moved
/// on, and keep a loop timer armed for the earliest entry.
pub(crate) fn fire_timers(s: &mut Sched, r: &mut Reactor, now: Instant) {
    while let Some(&Reverse((at, index, gen))) = s.timers.peek() {
        if at > now {
            r.arm(at, now);
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
            t.op.cancel = Some(Cause::TimedOut);
            if t.op.unsent {
                // Its task ends it (see `OpSlot::unsent`).
                if t.wake() {
                    s.runq.push_back(key);
                }
            } else {
                r.cancel(key);
            }
        } else {
            t.timer_at = Some(d);
            s.timers.push(Reverse((d, index, gen)));
        }
    }
}

/// Reap every available CQE and wake the tasks they finish.
pub(crate) fn dispatch(ctx: &Ctx) {
    let mut guard = ctx.reactor.borrow_mut();
    let r = &mut *guard;
    let Io::Ring(ring) = &mut r.io else {
        drop(guard);
        return client::dispatch(ctx);
    };
    let mut done = std::mem::take(&mut r.done);
    done.clear();
    ring.reap(&mut done);
    if done.is_empty() {
        r.done = done;
        return;
    }
    let mut s = ctx.sched.borrow_mut();
    for c in &done {
        let kind = c.token.kind();
        if kind == OP {
            // A finished task, or a slot reused by a later task: drop it.
            if !finish_op(&mut s, SlotKey::from(c.token), c.result) {
                r.stale += 1;
            }
        } else if kind == OpKind::TIMER {
            let seq = c.token.slot();
            r.armed.retain(|&(q, _)| q != seq);
        } else if kind == OpKind::WAKE {
            r.wake_seq += 1;
            for k in std::mem::take(&mut s.wake_waiters) {
                s.wake(k);
            }
        }
        // CANCEL and NOP completions carry no news.
    }
    r.done = done;
}

/// Park the running green thread until the worker's ring is woken from another
/// thread (`RingWaker::wake`). Check your condition (e.g. "shutdown triggered")
/// before calling: a wake that happened earlier is not remembered here.
/// A soft interrupt ends the wait with `Interrupted`.
pub(crate) fn wait_wake() -> io::Result<()> {
    sched::can_block()?;
    let seen = sched::current()?.0.reactor.borrow().wake_seq;
    loop {
        {
            // Fresh each time round: a woken waiter may have moved to another worker
            // (whose `wake_seq` then differs: a spurious return, which callers allow).
            let (ctx, key) = sched::current()?;
            let mut s = ctx.sched.borrow_mut();
            let t = s
                .tasks
                .get_mut(key)
                .ok_or_else(|| io::Error::other("task vanished"))?;
            if GivesWay::OnSoft.to(t.interrupt) {
                if t.interrupt == Interrupt::Soft {
                    t.interrupt = Interrupt::None;
                }
                return Err(interrupted());
            }
            let mut guard = ctx.reactor.borrow_mut();
            let r = &mut *guard;
            if r.wake_seq != seen {
                return Ok(());
            }
            if let Io::Ring(ring) = &mut r.io {
                ring.arm_wake();
                r.pushed += 1;
            }
            if !s.wake_waiters.contains(&key) {
                s.wake_waiters.push(key);
            }
        }
        sched::park(ParkReason::Io);
    }
}
