//! The per-worker scheduler: resuming ready tasks, park / wake, yield, interrupts,
//! and the running coroutine's view of its worker ([`current`]).
//!
//! Task states and the lost-wake-up rule: [`super::task`]. The thread-locals that
//! tie a running coroutine to its worker live in [`super::tls`] (read there why
//! every access is a non-inlined call). Code on a green stack never keeps the
//! worker's `Rc<Ctx>` or its own `SlotKey` across a suspension point: it fetches
//! both again with [`current`] after every `park` / `yield`, because with
//! `--green-sched steal` the task may have moved to another worker meanwhile (see
//! [`super::steal`] for the migration contract).

use std::io;
use std::rc::Rc;

use corosensei::CoroutineResult;

use super::ctx::Ctx;
use super::stack;
use super::steal::group as steal;
use super::task::{Cause, Interrupt, ParkReason, Sched, State, Suspend};
use super::tls;
use crate::uring::SlotKey;

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
    let mut guard = ctx.sched.borrow_mut();
    let s = &mut *guard;
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
            r.cancel_op(t, key, Cause::Interrupted, &mut s.runq);
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
