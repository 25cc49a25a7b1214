//! The shutdown trigger as tokio sees it: one flag and one table of task wakers per
//! runtime. A connection registers its task's waker once; after that, waiting on
//! the trigger is one atomic load and one waker comparison per wait, with no lock
//! and nothing to deregister when the wait ends (a `watch` channel, used before,
//! locked its waiter list twice on every wait of every connection: ~1 % of server
//! CPU pipelined, by `perf`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::shutdown::Shutdown;

/// One runtime's view of the shutdown trigger.
#[derive(Debug, Default)]
pub(super) struct Stop {
    /// INVARIANT: set once, before the wakers are woken, and never cleared.
    triggered: AtomicBool,
    /// Registered wakers by slot; a free slot is `None` and listed in `free`.
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Stop {
    /// A table woken when `shutdown` triggers (at once if it already has).
    pub(super) fn new(shutdown: &Shutdown) -> Arc<Stop> {
        let stop = Arc::new(Stop::default());
        let s = stop.clone();
        shutdown.on_trigger(move || s.trigger());
        stop
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn trigger(&self) {
        self.triggered.store(true, Ordering::Release);
        for w in self.lock().slots.iter().flatten() {
            w.wake_by_ref();
        }
    }

    pub(super) fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::Acquire)
    }
}

/// One task's registration; its slot is freed when it is dropped.
pub(super) struct Watch {
    stop: Arc<Stop>,
    /// The slot and the waker stored in it (kept here to compare without the lock).
    slot: Option<(usize, Waker)>,
}

impl Watch {
    pub(super) fn new(stop: &Arc<Stop>) -> Watch {
        Watch {
            stop: stop.clone(),
            slot: None,
        }
    }

    /// Resolves once the trigger is set.
    pub(super) fn triggered(&mut self) -> Triggered<'_> {
        Triggered(self)
    }

    fn poll_triggered(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.stop.is_triggered() {
            return Poll::Ready(());
        }
        if matches!(&self.slot, Some((_, w)) if w.will_wake(cx.waker())) {
            return Poll::Pending; // registered: the trigger wakes this task
        }
        let mut t = self.stop.lock();
        let waker = cx.waker().clone();
        let i = match self.slot {
            Some((i, _)) => i,
            None => t.free.pop().unwrap_or_else(|| {
                t.slots.push(None);
                t.slots.len() - 1
            }),
        };
        t.slots[i] = Some(waker.clone());
        self.slot = Some((i, waker));
        // Checked again under the lock: a trigger that set the flag after the first
        // check wakes only the wakers it finds once it has the lock, which is now
        // after this one is in.
        if self.stop.is_triggered() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some((i, _)) = self.slot.take() {
            let mut t = self.stop.lock();
            t.slots[i] = None;
            t.free.push(i);
        }
    }
}

/// The future of [`Watch::triggered`].
pub(super) struct Triggered<'a>(&'a mut Watch);

impl Future for Triggered<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_triggered(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn registered_tasks_wake_on_trigger_and_slots_are_reused() {
        let shutdown = Shutdown::new(Duration::from_secs(1));
        let stop = Stop::new(&shutdown);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // A task that came and went leaves its slot free for the next one.
            {
                let mut w = Watch::new(&stop);
                let r = tokio::time::timeout(Duration::from_millis(20), w.triggered()).await;
                assert!(r.is_err(), "not triggered yet");
            }
            assert_eq!(stop.lock().free, vec![0]);
            let tasks: Vec<_> = (0..3)
                .map(|_| {
                    let stop = stop.clone();
                    tokio::spawn(async move { Watch::new(&stop).triggered().await })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(stop.lock().slots.iter().flatten().count(), 3);
            shutdown.trigger();
            for t in tasks {
                tokio::time::timeout(Duration::from_secs(5), t)
                    .await
                    .expect("woken by the trigger")
                    .unwrap();
            }
            assert_eq!(stop.lock().slots.iter().flatten().count(), 0);
            // Once triggered, a new wait ends at once.
            Watch::new(&stop).triggered().await;
        });
    }
}
