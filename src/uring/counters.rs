//! The counter primitive of the runtime's `/stats` blocks, and the ring's own block.
//!
//! The runtime (this module and `crate::green`) owns the counter blocks it writes;
//! the application's `stats` module embeds them in its per-worker blocks and
//! renders them. Nothing here knows about `/stats`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A monotonically increasing counter with one writing thread.
///
/// INVARIANT: only the thread that owns the enclosing counter block (a worker for
/// its per-worker block, the dedicated reactor thread for its own) calls
/// [`Counter::add`] (and [`Counter::inc`], [`Counter::raise_to`]); any thread may
/// [`Counter::get`].
#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        // Single writer (see INVARIANT): load + store cannot lose an update.
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
    /// Keep the largest value seen (a high-water mark; same single writer).
    #[inline]
    pub fn raise_to(&self, v: u64) {
        if v > self.0.load(Relaxed) {
            self.0.store(v, Relaxed);
        }
    }
}

/// io_uring counters (callback and green models), written by the ring's owner
/// through [`super::Ring::publish`].
#[derive(Default, Debug)]
pub struct UringCounters {
    pub sqes_submitted: Counter,
    pub cqes_reaped: Counter,
    pub enter_calls: Counter,
    pub sq_full: Counter,
    pub enobufs: Counter,
}
