//! How a green thread's blocking call becomes one op, written once over the
//! worker's [`Backend`](super::backend::Backend) (its own ring, or the dedicated reactor thread: see
//! [`super::backend`]). Everything below holds for both backends.
//!
//! # One op per blocking call
//! [`submit`] is how every blocking-style call (read, write, accept, sleep, open ...)
//! reaches the kernel: it pushes one SQE tagged with the running task's token
//! (by its slot and generation), parks the task, and returns when that op's CQE has
//! been dispatched. The worker loop (`Runtime::block_on`) runs all ready tasks, then
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
use std::time::Instant;

use io_uring::{opcode, squeue, types};

use super::ctx::Ctx;
use super::sched;
use super::task::{finish_op, Cause, Interrupt, OpSlot, ParkReason, Sched};
use crate::uring::{Features, SlotKey};

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
            ends_on_wake: false,
        };
        if let Some(d) = deadline {
            if t.timer_at.is_none_or(|at| d < at) {
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
        let pushed = unsafe { ctx.reactor.borrow_mut().push(key, sqe) };
        if let Err(sqe) = pushed {
            // SAFETY: as above.
            unsafe { wait_for_room(&ctx, key, sqe, reason) };
        }
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

/// The backend had no room for the op (the dedicated reactor's queue is full):
/// park until it reports room, then push again. A cancel (deadline, interrupt)
/// that comes meanwhile ends the op here, since it never reached the kernel
/// (`-ECANCELED`; the task is then notified, so its next park returns at once).
/// Out of line: its frame stays off the stack of every per-worker park, which an
/// idle connection keeps resident. While the op is unsent the task cannot move
/// (its op is in flight), so `ctx` and `key` stay its own.
///
/// # Safety
/// As [`submit`]: every pointer in `sqe` stays valid until the op's CQE ends it.
#[cold]
#[inline(never)]
unsafe fn wait_for_room(ctx: &Ctx, key: SlotKey, mut sqe: squeue::Entry, reason: ParkReason) {
    loop {
        if let Some(t) = ctx.sched.borrow_mut().tasks.get_mut(key) {
            t.op.unsent = true;
        }
        sched::park(reason);
        let mut s = ctx.sched.borrow_mut();
        let Some(t) = s.tasks.get_mut(key) else {
            return;
        };
        if t.op.cancel.is_some() {
            t.op.unsent = false;
            finish_op(&mut s, key, -libc::ECANCELED);
            return;
        }
        // SAFETY: forwarded from our caller (see above).
        match unsafe { ctx.reactor.borrow_mut().push(key, sqe) } {
            Ok(()) => {
                t.op.unsent = false;
                return;
            }
            Err(back) => sqe = back,
        }
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
            r.listen_for_wake();
            if !s.wake_waiters.contains(&key) {
                s.wake_waiters.push(key);
            }
        }
        sched::park(ParkReason::Io);
    }
}

/// [`wait_wake`] with a deadline: park until the worker is woken from another
/// thread (`Ok(true)`; maybe spuriously) or until `deadline` (`Ok(false)`). The
/// wait is an `IORING_OP_TIMEOUT` that the wake cancels (`OpSlot::ends_on_wake`),
/// so it costs one op, not a poll. A soft interrupt ends it with `Interrupted`.
/// Check your condition before calling: a wake that happened earlier is not
/// remembered here.
pub(crate) fn wait_wake_until(deadline: Instant) -> io::Result<bool> {
    let op = prepare(None, GivesWay::OnSoft)?;
    {
        let mut s = op.ctx.sched.borrow_mut();
        if let Some(t) = s.tasks.get_mut(op.key) {
            t.op.ends_on_wake = true;
        }
        if !s.wake_waiters.contains(&op.key) {
            s.wake_waiters.push(op.key);
        }
        op.ctx.reactor.borrow_mut().listen_for_wake();
    }
    let ts = types::Timespec::from(deadline.saturating_duration_since(Instant::now()));
    let sqe = opcode::Timeout::new(&ts).build();
    // SAFETY: `ts` lives in this frame, and `push_and_wait` returns only after the
    // timeout's CQE (the kernel copies it at submission anyway).
    let r = unsafe { op.push_and_wait(sqe, ParkReason::Sleep) };
    // Ended by its deadline or an interrupt: no longer a waiter (re-fetched: the
    // task may run on another worker now).
    if let Ok((ctx, key)) = sched::current() {
        ctx.sched.borrow_mut().wake_waiters.retain(|&k| k != key);
    }
    match r {
        Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(false),
        Ok(_) => Ok(false),
        Err(e) => Err(e),
    }
}
