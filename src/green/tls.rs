//! The thread-locals that tie a running coroutine to the worker thread it runs on,
//! and the only functions that read or write them.
//!
//! A worker's [`Ctx`] is installed in `CTX` while `Runtime::block_on` runs. While a
//! coroutine runs, `CURRENT` names its task and `YIELDER` points at its corosensei
//! `Yielder` (which lives at the base of the coroutine's own stack). A coroutine
//! stores `YIELDER` when it starts and again every time it is resumed, since other
//! coroutines overwrite it meanwhile.
//!
//! # Every access is a call (`#[inline(never)]`), on purpose
//! SAFETY (thread-locals on a stack that may change threads): with
//! `--green-sched steal` a green thread suspended on worker A may be resumed on
//! worker B ([`super::steal`]). The compiler assumes that a thread-local's address
//! is the same everywhere within one function (LLVM treats it as a constant of the
//! function, even across calls), so code that read `CURRENT` before a suspension
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
//! The cost is one direct call per access, a few per park.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;

use corosensei::Yielder;

use super::sched::{Ctx, Suspend};
use crate::uring::SlotKey;

pub(crate) type Y = Yielder<(), Suspend>;

thread_local! {
    static CTX: RefCell<Option<Rc<Ctx>>> = const { RefCell::new(None) };
    static CURRENT: Cell<Option<SlotKey>> = const { Cell::new(None) };
    static YIELDER: Cell<*const Y> = const { Cell::new(std::ptr::null()) };
    /// Set while the runtime force-unwinds leftover coroutines (their unwind
    /// payload must pass through the task's `catch_unwind`).
    static UNWINDING: Cell<bool> = const { Cell::new(false) };
    /// Set while `on_worker_stack` runs a closure on the worker's stack.
    static ON_WORKER_STACK: Cell<bool> = const { Cell::new(false) };
}

/// Install `ctx` as this thread's runtime; `Err` if one is installed already.
#[inline(never)]
pub(crate) fn install(ctx: &Rc<Ctx>) -> io::Result<()> {
    CTX.with_borrow_mut(|c| {
        if c.is_some() {
            return Err(io::Error::other(
                "a green runtime is already running on this thread (nested block_on)",
            ));
        }
        *c = Some(Rc::clone(ctx));
        Ok(())
    })
}

#[inline(never)]
pub(crate) fn uninstall() {
    CTX.with_borrow_mut(|c| *c = None);
}

/// The runtime installed on the calling OS thread.
#[inline(never)]
pub(crate) fn ctx() -> Option<Rc<Ctx>> {
    CTX.with_borrow(|c| c.clone())
}

/// The task running on the calling OS thread.
#[inline(never)]
pub(crate) fn current_key() -> Option<SlotKey> {
    CURRENT.get()
}

#[inline(never)]
pub(crate) fn set_current_key(k: Option<SlotKey>) {
    CURRENT.set(k);
}

#[inline(never)]
pub(crate) fn yielder() -> *const Y {
    YIELDER.get()
}

#[inline(never)]
pub(crate) fn set_yielder(y: *const Y) {
    YIELDER.set(y);
}

#[inline(never)]
pub(crate) fn unwinding() -> bool {
    UNWINDING.get()
}

#[inline(never)]
pub(crate) fn set_unwinding(on: bool) {
    UNWINDING.set(on);
}

#[inline(never)]
pub(crate) fn on_worker_stack() -> bool {
    ON_WORKER_STACK.get()
}

#[inline(never)]
pub(crate) fn set_on_worker_stack(on: bool) {
    ON_WORKER_STACK.set(on);
}
