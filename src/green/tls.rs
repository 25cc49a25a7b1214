//! The thread-locals that tie a running coroutine to the worker thread it runs on,
//! and the only functions that read or write them.
//!
//! A worker's [`Ctx`] is installed in `TLS.ctx` while `Runtime::block_on` runs. While
//! a coroutine runs, `TLS.current` names its task and `TLS.yielder` points at its
//! corosensei `Yielder` (which lives at the base of the coroutine's own stack). A
//! coroutine stores its `Yielder` when it starts and again every time it is resumed, since other
//! coroutines overwrite it meanwhile.
//!
//! # Every access is a call (`#[inline(never)]`), on purpose
//! SAFETY (thread-locals on a stack that may change threads): with
//! `--green-sched steal` a green thread suspended on worker A may be resumed on
//! worker B ([`super::steal`]). The compiler assumes that a thread-local's address
//! is the same everywhere within one function (LLVM treats it as a constant of the
//! function, even across calls), so code that read `TLS.current` before a suspension
//! point and again after it, in one function after inlining, may reuse the address
//! computed on A and read or write A's slot from B: a data race on A's state. So no
//! code that can run on a green stack touches these thread-locals directly: it
//! calls the functions below, which are never inlined, so each call computes the
//! address afresh on the OS thread that executes it. The same rule holds for the
//! thread-locals of code the connection thread calls on its own stack (the
//! driver's buffer pools in `http::pool`, the `Date` cache in `http::date`): their
//! accessors are `#[inline(never)]` too. The scheduler side (`run_ready`, the
//! loop) never changes threads, but uses the same functions for simplicity.
//!
//! The cost is one direct call per access; the combined accessors ([`current`],
//! [`current_blocking`], [`resumed`], [`yielder_and_on_worker`]) keep it to a few
//! calls per blocking op.

use std::cell::Cell;
use std::io;
use std::rc::Rc;

use corosensei::Yielder;

use super::ctx::Ctx;
use super::task::Suspend;
use crate::uring::SlotKey;

pub(crate) type Y = Yielder<(), Suspend>;

/// Every green thread-local of one OS thread, in one block of `Cell`s with
/// constant initialisers (no `RefCell` flag), so the combined accessors below read
/// several fields for the price of one call.
struct Tls {
    /// The installed runtime (between `install` and `uninstall`).
    ctx: Cell<Option<Rc<Ctx>>>,
    /// The task running on this thread.
    current: Cell<Option<SlotKey>>,
    /// The running coroutine's `Yielder` (null while none runs).
    yielder: Cell<*const Y>,
    /// Set while the runtime force-unwinds leftover coroutines (their unwind
    /// payload must pass through the task's `catch_unwind`).
    unwinding: Cell<bool>,
    /// Set while `on_worker_stack` runs a closure on the worker's stack.
    on_worker_stack: Cell<bool>,
}

thread_local! {
    static TLS: Tls = const {
        Tls {
            ctx: Cell::new(None),
            current: Cell::new(None),
            yielder: Cell::new(std::ptr::null()),
            unwinding: Cell::new(false),
            on_worker_stack: Cell::new(false),
        }
    };
}

/// `f` of the installed runtime (`None` when none is): the `Rc` is taken out of
/// its `Cell` for the call and put back.
fn with_ctx<R>(t: &Tls, f: impl FnOnce(Option<&Rc<Ctx>>) -> R) -> R {
    let c = t.ctx.take();
    let r = f(c.as_ref());
    t.ctx.set(c);
    r
}

/// A new strong reference to the installed runtime (`None` when none is).
fn ctx_of(t: &Tls) -> Option<Rc<Ctx>> {
    with_ctx(t, |c| c.cloned())
}

/// Install `ctx` as this thread's runtime; `Err` if one is installed already.
#[inline(never)]
pub(crate) fn install(ctx: &Rc<Ctx>) -> io::Result<()> {
    TLS.with(|t| {
        if with_ctx(t, |c| c.is_some()) {
            return Err(io::Error::other(
                "a green runtime is already running on this thread (nested block_on)",
            ));
        }
        t.ctx.set(Some(Rc::clone(ctx)));
        Ok(())
    })
}

#[inline(never)]
pub(crate) fn uninstall() {
    // Dropped outside the thread-local's borrow.
    drop(TLS.with(|t| t.ctx.take()));
}

/// The worker index of the runtime installed on the calling OS thread, without
/// taking a reference to it (the connection loop asks once per action).
#[inline(never)]
pub(crate) fn worker_index() -> Option<usize> {
    TLS.with(|t| with_ctx(t, |c| c.map(|c| c.worker.get())))
}

/// The runtime and task of the calling OS thread, in one call (`None` outside a
/// green thread).
#[inline(never)]
pub(crate) fn current() -> Option<(Rc<Ctx>, SlotKey)> {
    let (c, key) = TLS.with(|t| (ctx_of(t), t.current.get()));
    Some((c?, key?))
}

/// Where a blocking call stands: the runtime and task, `Err(true)` inside
/// `on_worker_stack`, `Err(false)` outside a green thread.
#[inline(never)]
pub(crate) fn current_blocking() -> Result<(Rc<Ctx>, SlotKey), bool> {
    let (c, key, on_worker) = TLS.with(|t| (ctx_of(t), t.current.get(), t.on_worker_stack.get()));
    if on_worker {
        return Err(true);
    }
    match (c, key) {
        (Some(c), Some(k)) => Ok((c, k)),
        _ => Err(false),
    }
}

/// Back from a suspension: store the running coroutine's `Yielder` `y` (other
/// coroutines overwrote it meanwhile) and return the runtime and task of the OS
/// thread running us *now*, in one call.
#[inline(never)]
pub(crate) fn resumed(y: *const Y) -> Option<(Rc<Ctx>, SlotKey)> {
    let (c, key) = TLS.with(|t| {
        t.yielder.set(y);
        (ctx_of(t), t.current.get())
    });
    Some((c?, key?))
}

/// The running coroutine's `Yielder` and whether `on_worker_stack` runs, in one call.
#[inline(never)]
pub(crate) fn yielder_and_on_worker() -> (*const Y, bool) {
    TLS.with(|t| (t.yielder.get(), t.on_worker_stack.get()))
}

/// The task running on the calling OS thread.
#[inline(never)]
pub(crate) fn current_key() -> Option<SlotKey> {
    TLS.with(|t| t.current.get())
}

/// `key` is about to run on this thread. The key travels in one register (an
/// `Option<SlotKey>` argument went through memory, written in two halves and read
/// back whole: a store-forwarding stall per resume).
#[inline(never)]
pub(crate) fn set_current_key(key: SlotKey) {
    TLS.with(|t| t.current.set(Some(key)));
}

#[inline(never)]
pub(crate) fn set_yielder(y: *const Y) {
    TLS.with(|t| t.yielder.set(y));
}

/// No green thread runs on this thread any more (the scheduler is back on its
/// own stack): clear the running task and its `Yielder` in one call.
#[inline(never)]
pub(crate) fn clear_running() {
    TLS.with(|t| {
        t.current.set(None);
        t.yielder.set(std::ptr::null());
    });
}

#[inline(never)]
pub(crate) fn unwinding() -> bool {
    TLS.with(|t| t.unwinding.get())
}

#[inline(never)]
pub(crate) fn set_unwinding(on: bool) {
    TLS.with(|t| t.unwinding.set(on));
}

/// For `on_worker_stack`, in one call: the running coroutine's `Yielder`, with the
/// on-worker-stack flag now set; null (flag untouched) outside a green thread or
/// when the flag was set already (the caller then simply runs its closure).
#[inline(never)]
pub(crate) fn enter_worker_stack() -> *const Y {
    TLS.with(|t| {
        let y = t.yielder.get();
        if y.is_null() || t.on_worker_stack.get() {
            return std::ptr::null();
        }
        t.on_worker_stack.set(true);
        y
    })
}

#[inline(never)]
pub(crate) fn on_worker_stack() -> bool {
    TLS.with(|t| t.on_worker_stack.get())
}

#[inline(never)]
pub(crate) fn set_on_worker_stack(on: bool) {
    TLS.with(|t| t.on_worker_stack.set(on));
}
