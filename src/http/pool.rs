//! Per-thread pools of idle connection buffers (input and output), so that a
//! connection can give its buffers back every time it goes idle (the idle policy
//! of the driver) without an allocation per request.
//!
//! Each pool keeps its most recently returned buffer in a one-slot cache (a `Cell`,
//! no borrow flag: a keep-alive connection that gives a buffer back and takes one
//! again per request touches only that), and older ones in a bounded stack.

use std::cell::{Cell, RefCell};

/// At most this many idle buffers are kept per pool and thread (a few MiB);
/// beyond it they are freed, so a burst of connections does not pin memory.
const MAX_POOLED: usize = 1024;

pub(crate) struct Pool {
    /// An empty `Vec` (capacity 0) means the slot is free.
    slot: Cell<Vec<u8>>,
    rest: RefCell<Vec<Vec<u8>>>,
}

impl Pool {
    pub(crate) const fn new() -> Pool {
        Pool {
            slot: Cell::new(Vec::new()),
            rest: RefCell::new(Vec::new()),
        }
    }

    /// A pooled buffer, if there is one.
    #[inline]
    pub(crate) fn take(&self) -> Option<Vec<u8>> {
        let v = self.slot.take();
        if v.capacity() != 0 {
            return Some(v);
        }
        self.rest.borrow_mut().pop()
    }

    /// Keep `buf` for the next `take` (the caller checked it is a poolable one).
    #[inline]
    pub(crate) fn give(&self, buf: Vec<u8>) {
        let old = self.slot.replace(buf);
        if old.capacity() != 0 {
            let mut rest = self.rest.borrow_mut();
            if rest.len() < MAX_POOLED {
                rest.push(old);
            }
        }
    }
}

thread_local! {
    /// INVARIANT: every buffer here has length `conn::INITIAL_BUF` (zero-filled
    /// or holding stale input, never read before being written).
    pub(crate) static INPUT: Pool = const { Pool::new() };
    /// INVARIANT: every buffer here is empty, with capacity in `OUT_CAP..=4*OUT_CAP`.
    pub(crate) static OUTPUT: Pool = const { Pool::new() };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_what_was_given_most_recent_first() {
        let p = Pool::new();
        assert!(p.take().is_none());
        p.give(vec![1; 8]);
        p.give(vec![2; 8]);
        assert_eq!(p.take().unwrap()[0], 2);
        assert_eq!(p.take().unwrap()[0], 1);
        assert!(p.take().is_none());
    }
}
