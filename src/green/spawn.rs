//! Spawning green threads, their [`JoinHandle`], and what happens at their root:
//! the panic is caught and reported there.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use super::ctx::Ctx;
use super::sched::{current, park};
use super::task::{Co, OpSlot, ParkReason, State, Task};
use super::tls::{self, Y};
use crate::uring::SlotKey;

/// Shared between a task and its [`JoinHandle`].
struct JoinInner<T> {
    result: RefCell<Option<std::thread::Result<T>>>,
    done: Cell<bool>,
    waiter: Cell<Option<SlotKey>>,
}

/// Owned permission to wait for a green thread's result. Dropping it detaches the
/// thread (it keeps running). Not `Send`: the thread it names and every thread that
/// holds one stay on their worker (`spawn` pins its caller, see [`super::steal`]);
/// `steal::SendJoinHandle` is the one that may cross workers.
pub struct JoinHandle<T> {
    inner: Rc<JoinInner<T>>,
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.inner.done.get())
            .finish()
    }
}

impl<T> JoinHandle<T> {
    /// Has the thread returned (or panicked)?
    pub fn is_finished(&self) -> bool {
        self.inner.done.get()
    }

    /// Wait for the thread and return its result (`Err` holds its panic payload).
    /// On a green thread this parks; elsewhere the thread must already be finished
    /// (e.g. after `Runtime::block_on` returned), otherwise this panics.
    pub fn join(self) -> std::thread::Result<T> {
        loop {
            if let Some(r) = self.inner.result.borrow_mut().take() {
                return r;
            }
            let key = tls::current_key().unwrap_or_else(|| {
                panic!("JoinHandle::join outside a green thread on an unfinished thread")
            });
            self.inner.waiter.set(Some(key));
            park(ParkReason::Join);
        }
    }
}

/// Spawn `f` as a green thread on the current worker; it never moves.
pub(crate) fn spawn_on<T: 'static>(
    ctx: &Ctx,
    f: impl FnOnce() -> T + 'static,
) -> io::Result<JoinHandle<T>> {
    let inner = Rc::new(JoinInner {
        result: RefCell::new(None),
        done: Cell::new(false),
        waiter: Cell::new(None),
    });
    let theirs = Rc::clone(&inner);
    spawn_raw(ctx, false, move || {
        let r = run_caught(f);
        *theirs.result.borrow_mut() = Some(r);
        theirs.done.set(true);
        if let Some(w) = theirs.waiter.take() {
            if let Ok((ctx, _)) = current() {
                ctx.sched.borrow_mut().wake(w);
            }
        }
    })?;
    Ok(JoinHandle { inner })
}

/// Start `body` as a green thread on `ctx`'s worker. `movable` threads may be
/// stolen by other workers: only `steal::spawn_migratable` passes `true`, with a
/// `Send` body (the contract in [`super::steal`]).
pub(crate) fn spawn_raw(ctx: &Ctx, movable: bool, body: impl FnOnce() + 'static) -> io::Result<()> {
    let mut s = ctx.sched.borrow_mut();
    if s.tasks.next_index() >= s.slot_limit {
        return Err(io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!(
                "this worker's reactor names at most {} green threads",
                s.slot_limit
            ),
        ));
    }
    let (stack, home) = s.pool.get()?;
    let guard = stack.guard();
    let co = Co::with_stack(stack, move |y: &Y, ()| {
        tls::set_yielder(y as *const Y);
        body();
    });
    let interrupt = s.interrupt;
    let key = s.tasks.insert(Box::new(Task {
        co: Some(Box::new(co)),
        state: State::Ready,
        notified: false,
        guard,
        op: OpSlot::default(),
        interrupt,
        delivered: interrupt,
        timer_at: None,
        movable,
        home,
    }));
    s.runq.push_back(key);
    s.counts.spawned += 1;
    Ok(())
}

/// Run a green thread's function, catching (and reporting) its panic.
pub(crate) fn run_caught<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    let r = match panic::catch_unwind(AssertUnwindSafe(f)) {
        // The runtime is dropping this coroutine: let its forced unwind finish.
        Err(p) if tls::unwinding() => panic::resume_unwind(p),
        r => r,
    };
    if let Err(payload) = &r {
        report_panic(payload.as_ref());
    }
    r
}

/// Never let the running task move to another worker again (it now shares
/// something with its worker, see [`super::steal`]).
pub(crate) fn pin_current() {
    if let Ok((ctx, key)) = current() {
        if let Some(t) = ctx.sched.borrow_mut().tasks.get_mut(key) {
            t.movable = false;
        }
    }
}

/// Log a green thread's panic (Rust's panic hook has already printed where) and
/// count it; the task ends, which closes only what it owned (its connection).
fn report_panic(payload: &(dyn Any + Send)) {
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(|s| s.as_str()))
        .unwrap_or("non-string panic payload");
    // Never a panicking write: this runs outside the task's `catch_unwind`, and
    // `eprintln!` panics when stderr is a pipe nobody reads any more.
    let _ = writeln!(
        io::stderr(),
        "gvhttpd: a green thread panicked ({msg}); it was ended, other threads run on"
    );
    if let Ok((ctx, _)) = current() {
        ctx.sched.borrow_mut().counts.panics += 1;
    }
}
