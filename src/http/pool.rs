//! Per-thread pools of idle connection buffers (input and output), so that a
//! connection can give its buffers back every time it goes idle (the idle policy
//! of the driver) without an allocation per request.
//!
//! Each pool keeps its most recently returned buffer in a one-slot cache (a `Cell`,
//! no borrow flag: a keep-alive connection that gives a buffer back and takes one
//! again per request touches only that), and older ones in a bounded stack.
//!
//! The pools are the whole of the idle-buffer policy's memory: the four
//! functions at the bottom are the only way in and out ([`take_input`],
//! [`give_input`] for the protocol engine's input, [`take_output`],
//! [`give_output`] for the driver's output).

use std::cell::{Cell, RefCell};

use super::driver::FILE_CHUNK;

/// At most this many idle buffers are kept per pool and thread besides the slot
/// (64 × 4 KiB × 2 pools = 512 KiB); beyond it they are freed. The pool only
/// saves the allocator a round trip per request for the connections in flight at
/// once, and every buffer it keeps after a burst of thousands of connections is
/// resident memory that nothing uses (a 1024 bound kept 8 MiB per worker: 1.6 KiB
/// per connection of a 5,000-connection burst). The allocator's own cache serves
/// the rare turn with more than 64 buffers out.
const MAX_POOLED: usize = 64;

/// Bytes of a pooled input buffer (the protocol engine's initial buffer).
pub(crate) const INPUT_BUF: usize = 4096;
/// Capacity of a pooled output buffer; larger ones (after a big response) are
/// freed instead of pooled.
pub(crate) const OUT_CAP: usize = 4096;

/// Idle file chunk buffers kept per thread besides the slot (9 × 64 KiB = 576
/// KiB at most): they serve the read-and-send path of static files (zero-copy
/// off or unavailable), whose every request would otherwise allocate and zero a
/// 64 KiB buffer; a zero-copy send needs none.
const MAX_POOLED_CHUNKS: usize = 8;

pub(crate) struct Pool {
    /// An empty `Vec` (capacity 0) means the slot is free.
    slot: Cell<Vec<u8>>,
    rest: RefCell<Vec<Vec<u8>>>,
    /// At most this many in `rest`.
    max: usize,
}

impl Pool {
    pub(crate) const fn new() -> Pool {
        Pool::with_max(MAX_POOLED)
    }

    const fn with_max(max: usize) -> Pool {
        Pool {
            slot: Cell::new(Vec::new()),
            rest: RefCell::new(Vec::new()),
            max,
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
            if rest.len() < self.max {
                rest.push(old);
            }
        }
    }
}

thread_local! {
    /// INVARIANT: every buffer here has length `INPUT_BUF` (zero-filled or
    /// holding stale input, never read before being written).
    static INPUT: Pool = const { Pool::new() };
    /// INVARIANT: every buffer here is empty, with capacity in `OUT_CAP..=4*OUT_CAP`.
    static OUTPUT: Pool = const { Pool::new() };
    /// INVARIANT: every buffer here has length `FILE_CHUNK` (stale file bytes:
    /// the driver sends only what a read wrote).
    static CHUNK: Pool = const { Pool::with_max(MAX_POOLED_CHUNKS) };
}

// The four accessors are never inlined: a green thread may call them on its own
// stack and then move to another OS thread, and an inlined thread-local address
// could be reused there (see `green::tls`).

/// An input buffer of `INPUT_BUF` bytes: a pooled one, or a new one.
#[inline(never)]
pub(crate) fn take_input() -> Vec<u8> {
    INPUT
        .with(|p| p.take())
        .unwrap_or_else(|| vec![0; INPUT_BUF])
}

/// Give an idle connection's input buffer back (kept if it has the pooled size).
#[inline(never)]
pub(crate) fn give_input(buf: Vec<u8>) {
    if buf.len() == INPUT_BUF {
        INPUT.with(|p| p.give(buf));
    }
}

/// An empty output buffer: a pooled one, or a new one of `OUT_CAP`.
#[inline(never)]
pub(crate) fn take_output() -> Vec<u8> {
    OUTPUT
        .with(|p| p.take())
        .unwrap_or_else(|| Vec::with_capacity(OUT_CAP))
}

/// Give an idle connection's output buffer back (kept unless it grew large).
#[inline(never)]
pub(crate) fn give_output(mut buf: Vec<u8>) {
    if (OUT_CAP..=4 * OUT_CAP).contains(&buf.capacity()) {
        buf.clear();
        OUTPUT.with(|p| p.give(buf));
    }
}

/// A file chunk buffer of `FILE_CHUNK` bytes: a pooled one, or a new one.
#[inline(never)]
pub(crate) fn take_chunk() -> Vec<u8> {
    CHUNK
        .with(|p| p.take())
        .unwrap_or_else(|| vec![0; FILE_CHUNK])
}

/// Give a file chunk buffer back (kept if it has the pooled size).
#[inline(never)]
pub(crate) fn give_chunk(buf: Vec<u8>) {
    if buf.len() == FILE_CHUNK {
        CHUNK.with(|p| p.give(buf));
    }
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

    #[test]
    fn keeps_at_most_the_bound_after_a_burst() {
        let p = Pool::new();
        for _ in 0..10 * MAX_POOLED {
            p.give(vec![0; 8]);
        }
        let mut kept = 0;
        while p.take().is_some() {
            kept += 1;
        }
        assert_eq!(kept, MAX_POOLED + 1, "the bound plus the one-slot cache");
        let chunks = Pool::with_max(MAX_POOLED_CHUNKS);
        for _ in 0..100 {
            chunks.give(vec![0; 8]);
        }
        let mut kept = 0;
        while chunks.take().is_some() {
            kept += 1;
        }
        assert_eq!(kept, MAX_POOLED_CHUNKS + 1);
    }

    #[test]
    fn chunks_of_the_pooled_size_come_back() {
        let a = take_chunk();
        assert_eq!(a.len(), FILE_CHUNK);
        let ptr = a.as_ptr();
        give_chunk(a);
        give_chunk(vec![0; 100]); // not the pooled size: freed
        let b = take_chunk();
        assert_eq!((b.as_ptr(), b.len()), (ptr, FILE_CHUNK));
        give_chunk(b);
    }
}
