//! Migratable green threads: [`spawn_migratable`] and the [`SendJoinHandle`] that
//! may be joined from any worker (contract points 1 and 8 of the module docs).

use std::io;
use std::sync::{Arc, Mutex};

use super::group::lock;
use crate::green::backend::Waker;
use crate::green::ctx::Ctx;
use crate::green::sched::{self, current};
use crate::green::spawn::{run_caught, spawn_raw};
use crate::green::task::ParkReason;
use crate::uring::SlotKey;

/// Who waits for a migratable thread: the joiner's runtime, its key there, and that
/// runtime's ring waker (for a wake-up from another worker).
struct Waiter {
    rt: u64,
    key: SlotKey,
    waker: Arc<Waker>,
}

struct JoinState<T> {
    result: Option<std::thread::Result<T>>,
    waiter: Option<Waiter>,
}

/// Owned permission to wait for a migratable green thread's result, from a green
/// thread on any worker (or, once it has finished, from anywhere). Dropping it
/// detaches the thread.
pub struct SendJoinHandle<T> {
    inner: Arc<Mutex<JoinState<T>>>,
}

impl<T> std::fmt::Debug for SendJoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendJoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> SendJoinHandle<T> {
    /// Has the thread returned (or panicked)?
    pub fn is_finished(&self) -> bool {
        lock(&self.inner).result.is_some()
    }

    /// Wait for the thread and return its result (`Err` holds its panic payload).
    /// On a green thread this parks; elsewhere the thread must already be finished,
    /// otherwise this panics.
    pub fn join(self) -> std::thread::Result<T> {
        loop {
            {
                let mut st = lock(&self.inner);
                if let Some(r) = st.result.take() {
                    return r;
                }
                let (ctx, key) = current().unwrap_or_else(|_| {
                    panic!("SendJoinHandle::join outside a green thread on an unfinished thread")
                });
                st.waiter = Some(Waiter {
                    rt: ctx.id,
                    key,
                    waker: ctx.reactor.borrow().waker(),
                });
                listen_for_ring_wake(&ctx, key);
                // `ctx` and the lock are released here, before the park.
            }
            sched::park(ParkReason::Join);
            if let Ok((ctx, key)) = current() {
                ctx.sched.borrow_mut().wake_waiters.retain(|&k| k != key);
            }
        }
    }
}

/// Register `key` to be woken by the next wake of its ring, and arm that wake
/// (a finisher on another worker wakes the ring; `Reactor::dispatch` wakes us).
/// It also keeps the joiner on this worker until then (contract point 4).
fn listen_for_ring_wake(ctx: &Ctx, key: SlotKey) {
    let mut s = ctx.sched.borrow_mut();
    if !s.wake_waiters.contains(&key) {
        s.wake_waiters.push(key);
    }
    ctx.reactor.borrow_mut().listen_for_wake();
}

/// Wake the joiner: directly when it is on the caller's runtime, else through its ring.
fn wake(w: Waiter) {
    match current() {
        Ok((ctx, _)) if ctx.id == w.rt => ctx.sched.borrow_mut().wake(w.key),
        _ => w.waker.wake(),
    }
}

/// Spawn `f` as a green thread that idle workers of this worker's steal group may
/// take over while it is runnable (see the migration contract in the module docs;
/// without a group it behaves like `green::spawn`). Must be called on a green
/// thread.
///
/// `pub(crate)`: the bounds make everything the thread starts with `Send`; what
/// its body then holds across blocking calls is the caller's part of the
/// contract (point 2), so the callers are a closed, audited set.
pub(crate) fn spawn_migratable<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<SendJoinHandle<T>> {
    let (ctx, _) = current()?;
    let inner = Arc::new(Mutex::new(JoinState {
        result: None,
        waiter: None,
    }));
    let theirs = Arc::clone(&inner);
    spawn_raw(&ctx, true, move || {
        let r = run_caught(f);
        let waiter = {
            let mut st = lock(&theirs);
            st.result = Some(r);
            st.waiter.take()
        };
        if let Some(w) = waiter {
            wake(w);
        }
    })?;
    Ok(SendJoinHandle { inner })
}
