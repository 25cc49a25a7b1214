//! A worker's mailbox: where the reactor thread and the blocking pool deliver the
//! worker's completions and nudges, and the futex the worker sleeps on.
//!
//! # Roles
//! - **Producers** (the reactor thread, blocking-pool threads, any thread holding the
//!   worker's [`super::Waker`]) append completions under `done`'s mutex, set a flag,
//!   then call [`Mailbox::notify`].
//! - **The worker** (the one thread that runs this mailbox's green threads) takes
//!   everything in one swap per loop turn ([`Mailbox::take`]) and, when it has
//!   nothing to run, sleeps on `sleeping` ([`Mailbox::sleep`]).
//!
//! # No syscall per completion while the worker is busy
//! The worker publishes `sleeping = 1` before it sleeps and re-checks `pending`
//! afterwards; a producer stores `pending = true` and then swaps `sleeping` to 0,
//! issuing `FUTEX_WAKE` only when it found 1. Both sides use sequentially consistent
//! operations, so at least one of them sees the other's store: either the worker
//! sees `pending` and does not sleep, or the producer sees `sleeping` and wakes it.
//! A worker that is running green threads has `sleeping == 0`, so delivering to it
//! costs a mutex and two atomics, no syscall.
//!
//! The mutex is taken once per reactor batch per worker (not per completion) and
//! once per worker turn that has news; completions per worker are unbounded (one
//! per op in flight), which is why this is a swapped `Vec` rather than a bounded ring.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::uring::OpKind;

/// Attach epochs a worker slot cycles through: every value of a tag's top byte
/// below the ring's internal op kinds ([`OpKind::FIRST_INTERNAL`]), so a worker
/// op's tag never looks like the reactor's own wake, cancel or NOP (see
/// `super::tag`, and `client::Client::attach` for what an epoch is).
pub(crate) const EPOCHS: usize = OpKind::FIRST_INTERNAL as usize;

/// One finished op: its tag (worker, slot, generation; see [`super::tag`]) and the
/// result (`>= 0`, or `-errno`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Done {
    pub tag: u64,
    pub result: i32,
}

/// What [`Mailbox::take`] found besides completions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct News {
    /// A [`super::Waker`] was woken (`green::wait_wake` callers resume).
    pub external: bool,
    /// The submission queue has room again (parked submitters retry).
    pub space: bool,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Mailbox {
    done: Mutex<Vec<Done>>,
    /// Something was delivered since the worker last looked.
    pending: AtomicBool,
    external: AtomicBool,
    space: AtomicBool,
    /// The worker has a submitter parked on a full queue (set by the worker, cleared
    /// by the reactor when it frees space and posts `space`).
    pub wants_space: AtomicBool,
    /// The futex word: 1 while the worker sleeps (or is about to).
    sleeping: AtomicU32,
    /// A runtime is attached to this mailbox (one at a time).
    pub claimed: AtomicBool,
    /// The attach epoch of the runtime attached now, or of the last one (written
    /// only by the holder of `claimed`; see `client::Client::attach`).
    pub epoch: AtomicU32,
    /// Per attach epoch: ops that a runtime of that epoch pushed and whose
    /// completion no runtime has taken yet (the runtime was dropped with them in
    /// flight). An epoch is reused only once its count is back to zero, so a
    /// completion's epoch always names the runtime it belongs to. Written under
    /// `claimed` (its release/acquire orders them for the next attacher).
    pub orphans: [AtomicU32; EPOCHS],
}

impl Default for Mailbox {
    fn default() -> Self {
        Mailbox {
            done: Mutex::default(),
            pending: AtomicBool::new(false),
            external: AtomicBool::new(false),
            space: AtomicBool::new(false),
            wants_space: AtomicBool::new(false),
            sleeping: AtomicU32::new(0),
            claimed: AtomicBool::new(false),
            epoch: AtomicU32::new(0),
            orphans: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }
}

impl Mailbox {
    /// Append a batch of completions (emptying `batch`) and wake the worker if it
    /// sleeps. Returns whether a `FUTEX_WAKE` was needed.
    pub fn deliver(&self, batch: &mut Vec<Done>) -> bool {
        if batch.is_empty() {
            return false;
        }
        {
            let mut g = self.done.lock().unwrap_or_else(|e| e.into_inner());
            g.append(batch);
        }
        self.notify()
    }

    /// Deliver one completion (the blocking pool, one op at a time).
    pub fn deliver_one(&self, d: Done) -> bool {
        {
            let mut g = self.done.lock().unwrap_or_else(|e| e.into_inner());
            g.push(d);
        }
        self.notify()
    }

    /// A cross-thread wake-up for `wait_wake` callers.
    pub fn post_external(&self) -> bool {
        self.external.store(true, Ordering::SeqCst);
        self.notify()
    }

    /// The submission queue has room again.
    pub fn post_space(&self) -> bool {
        self.space.store(true, Ordering::SeqCst);
        self.notify()
    }

    /// Publish "there is news", then wake the worker only if it said it sleeps.
    fn notify(&self) -> bool {
        self.pending.store(true, Ordering::SeqCst);
        if self.sleeping.swap(0, Ordering::SeqCst) == 1 {
            futex_wake(&self.sleeping);
            return true;
        }
        false
    }

    /// Worker only: move every delivered completion into `out` (appending) and
    /// report the flags. `None` (one atomic load) when nothing was delivered.
    pub fn take(&self, out: &mut Vec<Done>) -> Option<News> {
        if !self.pending.load(Ordering::Acquire) {
            return None;
        }
        // Cleared before reading: news delivered from here on sets it again.
        self.pending.store(false, Ordering::SeqCst);
        {
            let mut g = self.done.lock().unwrap_or_else(|e| e.into_inner());
            if out.is_empty() {
                std::mem::swap(out, &mut *g);
            } else {
                out.append(&mut g);
            }
        }
        Some(News {
            external: self.external.swap(false, Ordering::AcqRel),
            space: self.space.swap(false, Ordering::AcqRel),
        })
    }

    /// Worker only: sleep until something is delivered or `timeout` passes
    /// (`None`: no limit). Returns whether it really slept (false: news was already
    /// there, no syscall made).
    pub fn sleep(&self, timeout: Option<Duration>) -> bool {
        self.sleeping.store(1, Ordering::SeqCst);
        if self.pending.load(Ordering::SeqCst) {
            self.sleeping.store(0, Ordering::Relaxed);
            return false;
        }
        futex_wait(&self.sleeping, 1, timeout);
        self.sleeping.store(0, Ordering::SeqCst);
        true
    }

    /// Has anything been delivered that the worker has not taken yet?
    pub fn has_news(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }
}

/// Block while `*word == expected`, at most `timeout`. Returns on a wake, a timeout,
/// a signal, or at once when the word already differs (all handled by re-checking).
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // PRIVATE: the word is never shared with another process. FUTEX_WAIT only reads
    // the 4-byte word and the optional relative timespec; it writes no memory of ours.
    // SAFETY: the word is a live `AtomicU32` borrowed for the call (valid, aligned),
    // and the timespec is a local that outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wake the one thread waiting on `word`.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the word's address as a key (the `AtomicU32` is
    // borrowed, so alive); it reads and writes no memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1u32,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn delivery_to_a_busy_worker_needs_no_wake_and_a_sleeper_is_woken() {
        let m = Arc::new(Mailbox::default());
        // Busy (not sleeping): no futex wake.
        assert!(!m.deliver_one(Done { tag: 1, result: 5 }));
        let mut out = Vec::new();
        assert_eq!(m.take(&mut out), Some(News::default()));
        assert_eq!(out, vec![Done { tag: 1, result: 5 }]);
        assert_eq!(m.take(&mut out), None, "nothing new");
        // News already there: sleep returns at once without sleeping.
        m.post_external();
        assert!(!m.sleep(None));
        out.clear();
        assert_eq!(m.take(&mut out).map(|n| n.external), Some(true));
        // A sleeper is woken by a delivery from another thread.
        let m2 = Arc::clone(&m);
        let t = std::thread::spawn(move || {
            // Deliver only once the worker has said it sleeps.
            while m2.sleeping.load(Ordering::SeqCst) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            m2.deliver_one(Done { tag: 2, result: 0 })
        });
        let t0 = Instant::now();
        assert!(m.sleep(Some(Duration::from_secs(10))));
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "woken, not timed out"
        );
        assert!(
            t.join().unwrap(),
            "the producer saw the sleeper and woke it"
        );
        out.clear();
        m.take(&mut out);
        assert_eq!(out, vec![Done { tag: 2, result: 0 }]);
        // And a timeout ends a sleep nobody wakes.
        assert!(m.sleep(Some(Duration::from_millis(10))));
        assert!(m.take(&mut out).is_none());
    }
}
