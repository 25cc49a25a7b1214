//! A bounded, lock-free multi-producer single-consumer queue: the submission queue
//! from the workers (and their green threads) to the reactor thread.
//!
//! A ring of `capacity` cells (a power of two), each with a sequence number that
//! says whose turn the cell is (the bounded-queue design with per-cell sequence
//! numbers). For the cell at position `pos`:
//!
//! - `seq == pos`: empty, a producer may claim `pos` (by advancing `tail` from `pos`
//!   with a compare-and-swap) and then write it;
//! - `seq == pos + 1`: written, the consumer may read it;
//! - `seq == pos + capacity`: read, empty again for the next lap.
//!
//! Producers race only on `tail`; the consumer alone moves `head` (no atomic
//! read-modify-write on the consumer side at all). A full queue makes
//! [`Producer::push`] hand the value back at once: the caller decides how to wait
//! (a green thread parks until the reactor reports free space; see `super` docs).
//!
//! [`channel`] returns one [`Consumer`] (not `Clone`: single consumer by
//! construction) and a [`Producer`] that may be cloned onto any thread.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Keeps the producers' `tail` and the consumer's `head` on separate cache lines
/// (128 bytes: adjacent-line prefetch pairs lines).
#[repr(align(128))]
struct Padded<T>(T);

struct Slot<T> {
    seq: AtomicUsize,
    val: UnsafeCell<MaybeUninit<T>>,
}

struct Inner<T> {
    slots: Box<[Slot<T>]>,
    mask: usize,
    tail: Padded<AtomicUsize>,
    head: Padded<AtomicUsize>,
}

// SAFETY: values move from the producing thread to the consuming thread (so `T:
// Send`); a slot's value is accessed by exactly one thread at a time, handed over by
// the slot's `seq` (release store by the writer, acquire load by the next user), so
// sharing `Inner` between threads never gives two threads the same `T` at once.
unsafe impl<T: Send> Sync for Inner<T> {}
// SAFETY: as above; `Inner` owns its `T`s, which are `Send`.
unsafe impl<T: Send> Send for Inner<T> {}

/// The sending side; clone it for every producer thread.
pub struct Producer<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Producer<T> {
    fn clone(&self) -> Self {
        Producer {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// The receiving side: exactly one per queue.
pub struct Consumer<T> {
    inner: Arc<Inner<T>>,
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Producer(capacity {})", self.inner.mask + 1)
    }
}

impl<T> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Consumer(capacity {})", self.inner.mask + 1)
    }
}

/// A queue of at least `capacity` entries (rounded up to a power of two, at least 2).
pub fn channel<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let cap = capacity.max(2).next_power_of_two();
    let slots = (0..cap)
        .map(|i| Slot {
            seq: AtomicUsize::new(i),
            val: UnsafeCell::new(MaybeUninit::uninit()),
        })
        .collect();
    let inner = Arc::new(Inner {
        slots,
        mask: cap - 1,
        tail: Padded(AtomicUsize::new(0)),
        head: Padded(AtomicUsize::new(0)),
    });
    (
        Producer {
            inner: Arc::clone(&inner),
        },
        Consumer { inner },
    )
}

impl<T: Send> Producer<T> {
    /// Append `val`, or hand it back when the queue is full. Lock-free: a failed
    /// compare-and-swap means another producer made progress.
    pub fn push(&self, val: T) -> Result<(), T> {
        let q = &*self.inner;
        let mut pos = q.tail.0.load(Ordering::Relaxed);
        loop {
            let slot = &q.slots[pos & q.mask];
            let seq = slot.seq.load(Ordering::Acquire);
            let diff = seq.wrapping_sub(pos) as isize;
            if diff == 0 {
                match q.tail.0.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // `seq == pos` says the consumer is done with the previous value,
                        // and nobody reads the slot until the release store below.
                        // SAFETY: winning the CAS from `pos` made this thread the only
                        // one that may write the slot for this lap.
                        unsafe { (*slot.val.get()).write(val) };
                        slot.seq.store(pos.wrapping_add(1), Ordering::Release);
                        return Ok(());
                    }
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                // The slot still holds last lap's value: the queue is full.
                return Err(val);
            } else {
                pos = q.tail.0.load(Ordering::Relaxed);
            }
        }
    }

    /// Slots the queue has in all.
    pub fn capacity(&self) -> usize {
        self.inner.mask + 1
    }
}

impl<T: Send> Consumer<T> {
    /// Take the oldest value, or `None` when the queue is empty (or its oldest
    /// slot is claimed but not yet written: its producer is mid-push).
    pub fn pop(&mut self) -> Option<T> {
        let q = &*self.inner;
        let pos = q.head.0.load(Ordering::Relaxed);
        let slot = &q.slots[pos & q.mask];
        if slot.seq.load(Ordering::Acquire) != pos.wrapping_add(1) {
            return None;
        }
        // The release store below hands the slot back to producers only after the read.
        // SAFETY: `seq == pos + 1` (acquire): a producer finished writing this slot, and
        // only the single consumer (`&mut self`) reads it, once.
        let val = unsafe { (*slot.val.get()).assume_init_read() };
        slot.seq
            .store(pos.wrapping_add(q.mask + 1), Ordering::Release);
        q.head.0.store(pos.wrapping_add(1), Ordering::Relaxed);
        Some(val)
    }

    /// Is the oldest value written and ready to pop?
    pub fn is_ready(&self) -> bool {
        let q = &*self.inner;
        let pos = q.head.0.load(Ordering::Relaxed);
        q.slots[pos & q.mask].seq.load(Ordering::Acquire) == pos.wrapping_add(1)
    }

    /// Values claimed by producers and not yet popped (a snapshot: it may include
    /// a value still being written).
    pub fn len(&self) -> usize {
        let q = &*self.inner;
        let tail = q.tail.0.load(Ordering::Acquire);
        tail.wrapping_sub(q.head.0.load(Ordering::Relaxed))
            .min(q.mask + 1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        // Last handle gone: no producer is mid-push, so every claimed slot is written.
        let head = *self.head.0.get_mut();
        let tail = *self.tail.0.get_mut();
        let mut pos = head;
        while pos != tail {
            let slot = &mut self.slots[pos & self.mask];
            if *slot.seq.get_mut() == pos.wrapping_add(1) {
                // SAFETY: written and never read (seq == pos + 1), and we are the only
                // owner left (`&mut self`).
                unsafe { slot.val.get_mut().assume_init_drop() };
            }
            pos = pos.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn bounded_fifo_hands_back_when_full() {
        let (p, mut c) = channel::<u32>(3);
        assert_eq!(p.capacity(), 4);
        for i in 0..4 {
            p.push(i).unwrap();
        }
        assert_eq!(
            p.push(99),
            Err(99),
            "a full queue refuses and returns the value"
        );
        assert_eq!(c.len(), 4);
        assert_eq!(c.pop(), Some(0));
        p.push(4).unwrap();
        assert_eq!(p.push(5), Err(5));
        let got: Vec<u32> = std::iter::from_fn(|| c.pop()).collect();
        assert_eq!(got, vec![1, 2, 3, 4]);
        assert!(c.pop().is_none() && c.is_empty() && !c.is_ready());
    }

    #[test]
    fn many_producers_one_consumer_lose_and_duplicate_nothing() {
        const PRODUCERS: u64 = 4;
        const EACH: u64 = 20_000;
        let (p, mut c) = channel::<u64>(64);
        let mut threads = Vec::new();
        for t in 0..PRODUCERS {
            let p = p.clone();
            threads.push(std::thread::spawn(move || {
                for i in 0..EACH {
                    let mut v = (t << 32) | i;
                    while let Err(back) = p.push(v) {
                        v = back;
                        std::thread::yield_now();
                    }
                }
            }));
        }
        // Per producer, values must arrive in order (FIFO per producer) and all of them.
        let mut next = [0u64; PRODUCERS as usize];
        let mut got = 0;
        while got < PRODUCERS * EACH {
            match c.pop() {
                Some(v) => {
                    let (t, i) = ((v >> 32) as usize, v & 0xFFFF_FFFF);
                    assert_eq!(i, next[t], "producer {t}: out of order or duplicated");
                    next[t] += 1;
                    got += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        for t in threads {
            t.join().unwrap();
        }
        assert!(c.pop().is_none());
        assert!(next.iter().all(|&n| n == EACH));
    }

    #[test]
    fn full_queue_never_grows_past_capacity() {
        let (p, mut c) = channel::<usize>(8);
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for _ in 0..3 {
            let (p, stop) = (p.clone(), Arc::clone(&stop));
            threads.push(std::thread::spawn(move || {
                let mut refused = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    if p.push(1).is_err() {
                        refused += 1;
                    }
                }
                refused
            }));
        }
        // Let producers fill it while nobody consumes.
        let t0 = std::time::Instant::now();
        while c.len() < 8 && t0.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::yield_now();
        }
        assert_eq!(c.len(), 8, "producers fill the queue");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(c.len(), 8, "and never beyond its capacity");
        stop.store(true, Ordering::Relaxed);
        let refused: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(refused > 0, "pushes into the full queue were refused");
        let mut n = 0;
        while c.pop().is_some() {
            n += 1;
        }
        assert_eq!(n, 8);
    }

    #[test]
    fn unread_values_are_dropped_with_the_queue() {
        let marker = Arc::new(());
        let (p, c) = channel::<Arc<()>>(4);
        p.push(Arc::clone(&marker)).unwrap();
        p.push(Arc::clone(&marker)).unwrap();
        assert_eq!(Arc::strong_count(&marker), 3);
        drop((p, c));
        assert_eq!(Arc::strong_count(&marker), 1);
    }
}
