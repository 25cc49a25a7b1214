//! The worker's connection deadlines: one min-heap, bounded.
//!
//! A connection queues its deadline only when it is earlier than the one it has
//! queued already (`Conn::queued`); a later deadline waits until the earlier entry
//! pops, and is queued then. So entries go stale (the connection moved on or
//! closed), and left alone they would pile up until their instant: at 50,000
//! connections/s with a 60 s idle timeout, millions of them. [`Deadlines::bound`]
//! drops the stale ones whenever the heap holds more than twice the live
//! connections plus [`SLACK`], so it never holds more than that (plus the entries
//! of one loop turn), and the work is amortised over the pushes that grew it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::uring::SlotKey;

/// Stale entries tolerated beyond twice the live connections.
pub(super) const SLACK: usize = 1024;

#[derive(Debug, Default)]
pub(super) struct Deadlines {
    /// (deadline, slot, generation), earliest first; entries may be stale.
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
}

impl Deadlines {
    pub fn push(&mut self, at: Instant, key: SlotKey) {
        self.heap.push(Reverse((at, key.index, key.gen)));
    }

    /// The earliest queued instant.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Pop the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, SlotKey)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                let Reverse((at, index, gen)) = self.heap.pop()?;
                Some((at, SlotKey { index, gen }))
            }
            _ => None,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }

    /// When the heap holds more than `2 * live + SLACK` entries, keep only those
    /// `current(at, key)` says are a live connection's queued deadline.
    pub fn bound(&mut self, live: usize, mut current: impl FnMut(Instant, SlotKey) -> bool) {
        if self.heap.len() <= 2 * live + SLACK {
            return;
        }
        self.heap.retain(|Reverse((at, index, gen))| {
            current(
                *at,
                SlotKey {
                    index: *index,
                    gen: *gen,
                },
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uring::Slots;
    use std::time::Duration;

    /// A connection as the worker sees it: its current deadline and what it queued.
    struct Fake {
        deadline: Instant,
        queued: Option<Instant>,
    }

    fn queue(d: &mut Deadlines, conns: &mut Slots<Fake>, key: SlotKey) {
        let c = conns.get_mut(key).unwrap();
        if c.queued.is_none_or(|q| c.deadline < q) {
            c.queued = Some(c.deadline);
            d.push(c.deadline, key);
        }
    }

    #[test]
    fn churn_of_short_lived_connections_keeps_the_heap_bounded() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        let mut conns: Slots<Fake> = Slots::new();
        let mut live = Vec::new();
        let mut max_len = 0;
        // 200,000 connections, ~500 open at a time, each queueing an idle
        // deadline 60 s out and then a write deadline 30 s out, then closing long
        // before either: without `bound` every entry would stay.
        for i in 0..200_000u64 {
            let now = t0 + Duration::from_micros(20 * i);
            let key = conns.insert(Fake {
                deadline: now + Duration::from_secs(60),
                queued: None,
            });
            queue(&mut d, &mut conns, key);
            conns.get_mut(key).unwrap().deadline = now + Duration::from_secs(30);
            queue(&mut d, &mut conns, key);
            live.push(key);
            if live.len() > 500 {
                conns.remove(live.remove(i as usize % 400));
            }
            assert!(d.pop_due(now).is_none(), "nothing is due yet");
            d.bound(conns.len(), |at, k| {
                conns.get(k).is_some_and(|c| c.queued == Some(at))
            });
            max_len = max_len.max(d.len());
            assert!(d.len() <= 2 * conns.len() + SLACK + 2, "heap {}", d.len());
        }
        assert!(max_len <= 2 * 501 + SLACK + 2, "max {max_len}");
        // Every live connection still has its queued deadline in the heap.
        let mut due = Vec::new();
        while let Some((at, key)) = d.pop_due(t0 + Duration::from_secs(3600)) {
            if conns.get(key).is_some_and(|c| c.queued == Some(at)) {
                due.push(key);
            }
        }
        due.sort_by_key(|k| k.index);
        live.sort_by_key(|k| k.index);
        assert_eq!(due, live);
    }

    #[test]
    fn pops_in_deadline_order_only_when_due() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        let k = |index| SlotKey { index, gen: 0 };
        d.push(t0 + Duration::from_millis(30), k(3));
        d.push(t0 + Duration::from_millis(10), k(1));
        d.push(t0 + Duration::from_millis(20), k(2));
        assert_eq!(d.next(), Some(t0 + Duration::from_millis(10)));
        assert!(d.pop_due(t0).is_none());
        let now = t0 + Duration::from_millis(25);
        assert_eq!(d.pop_due(now).map(|(_, k)| k.index), Some(1));
        assert_eq!(d.pop_due(now).map(|(_, k)| k.index), Some(2));
        assert!(d.pop_due(now).is_none());
        assert_eq!(d.len(), 1);
    }
}
