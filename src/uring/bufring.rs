//! A provided-buffer ring (`IORING_REGISTER_PBUF_RING`, kernel 5.19+).
//!
//! With multishot recv the kernel picks a buffer from this ring for every chunk it
//! receives, so a connection waiting for input holds no buffer of its own: 10,000
//! idle connections cost one shared pool instead of 10,000 read buffers. When the
//! pool is empty the recv completes with `ENOBUFS` (counted in `/stats`) and the
//! model re-arms it after handing buffers back.
//!
//! Ownership of each buffer moves between the kernel and us:
//! - *kernel-owned*: published in the ring (initially all of them, then every
//!   [`BufRing::recycle`]d one). We never read or write it.
//! - *held*: a CQE carried `IORING_CQE_F_BUFFER` with its id ([`super::Ring::reap`]
//!   marks it). The kernel will not touch it again until it is recycled, so
//!   [`BufRing::get`] may read it.
//!
//! INVARIANT (whole module): `held[bid]` is true exactly when buffer `bid` is not
//! published in the ring; the memory behind `ring` and `bufs` stays allocated until
//! the group is unregistered (see `Ring`'s `Drop`, which also drains in-flight ops).

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// One ring entry, laid out as the kernel's `struct io_uring_buf`. Entry 0's `resv`
/// is the ring's tail, which the kernel reads at any time: the entries are only
/// ever written field by field through raw pointers, never through a `&mut` over a
/// whole entry (which would claim the tail too). io-uring's `BufRingEntry` only
/// offers `&mut self` setters, hence this mirror.
#[repr(C)]
struct Entry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

const _: () = assert!(
    std::mem::size_of::<Entry>() == std::mem::size_of::<BufRingEntry>()
        && std::mem::align_of::<Entry>() <= std::mem::align_of::<BufRingEntry>()
        && std::mem::size_of::<Entry>() == 16
);

/// A registered group of equal-size receive buffers.
pub struct BufRing {
    bgid: u16,
    /// Entries (a power of two, <= 32768).
    entries: u16,
    buf_size: u32,
    /// Page-aligned array of `entries` [`Entry`]s shared with the kernel.
    ring: NonNull<Entry>,
    ring_layout: Layout,
    /// `entries * buf_size` bytes of buffer memory.
    bufs: NonNull<u8>,
    bufs_layout: Layout,
    /// Our copy of the tail we last published.
    tail: u16,
    /// INVARIANT: see module docs.
    held: Vec<bool>,
}

impl std::fmt::Debug for BufRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufRing")
            .field("bgid", &self.bgid)
            .field("entries", &self.entries)
            .field("buf_size", &self.buf_size)
            .field("held", &self.held.iter().filter(|h| **h).count())
            .finish()
    }
}

fn page_size() -> usize {
    rustix::param::page_size()
}

impl BufRing {
    /// Allocate `entries` buffers of `buf_size` bytes, publish them all and register
    /// the ring with `uring` as group `bgid`.
    pub(crate) fn register(
        uring: &IoUring,
        bgid: u16,
        entries: u16,
        buf_size: u32,
    ) -> io::Result<BufRing> {
        if !entries.is_power_of_two() || entries > 32768 || buf_size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer ring needs a power-of-two entry count <= 32768 and a non-zero size",
            ));
        }
        let ring_layout = Layout::from_size_align(
            usize::from(entries) * std::mem::size_of::<Entry>(),
            page_size(),
        )
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let bufs_layout = Layout::from_size_align(usize::from(entries) * buf_size as usize, 64)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: both layouts have non-zero size (entries >= 1, buf_size >= 1).
        let ring = NonNull::new(unsafe { alloc_zeroed(ring_layout) }.cast::<Entry>());
        // SAFETY: as above.
        let bufs = NonNull::new(unsafe { alloc_zeroed(bufs_layout) });
        let (Some(ring), Some(bufs)) = (ring, bufs) else {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        };
        let mut me = BufRing {
            bgid,
            entries,
            buf_size,
            ring,
            ring_layout,
            bufs,
            bufs_layout,
            tail: 0,
            held: vec![true; usize::from(entries)],
        };
        for bid in 0..entries {
            me.publish(bid);
        }
        me.store_tail();
        // `ring` points to `entries` page-aligned entries that stay allocated until
        // `Ring`'s Drop unregisters the group (module INVARIANT); on error here `me`
        // is dropped and the kernel holds nothing.
        // SAFETY: so the registered memory outlives the registration.
        unsafe {
            uring.submitter().register_buf_ring_with_flags(
                me.ring.as_ptr() as u64,
                entries,
                bgid,
                0,
            )?;
        }
        Ok(me)
    }

    pub fn bgid(&self) -> u16 {
        self.bgid
    }

    pub fn buf_size(&self) -> u32 {
        self.buf_size
    }

    pub fn entries(&self) -> u16 {
        self.entries
    }

    /// How many buffers are held by us (not available to the kernel).
    pub fn held(&self) -> usize {
        self.held.iter().filter(|h| **h).count()
    }

    /// Write buffer `bid` into the next ring entry (not yet visible: see `store_tail`).
    fn publish(&mut self, bid: u16) {
        let idx = usize::from(self.tail & (self.entries - 1));
        // SAFETY: bid < entries, so the offset stays inside `bufs`.
        let addr = unsafe {
            self.bufs
                .as_ptr()
                .add(usize::from(bid) * self.buf_size as usize)
        };
        // idx < entries, so `e` is inside the ring allocation and aligned. The kernel
        // only reads entries between its head and the published tail, and this one
        // is past it; only `addr`, `len` and `bid` are written (not `resv`, which is
        // the tail in entry 0), through raw pointers, so no reference claims memory
        // the kernel may be reading.
        // SAFETY: so these writes race with nothing and stay in bounds.
        unsafe {
            let e = self.ring.as_ptr().add(idx);
            std::ptr::addr_of_mut!((*e).addr).write(addr as u64);
            std::ptr::addr_of_mut!((*e).len).write(self.buf_size);
            std::ptr::addr_of_mut!((*e).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        self.held[usize::from(bid)] = false;
    }

    /// Make published entries visible to the kernel (release store of the tail).
    fn store_tail(&self) {
        let base = self.ring.as_ptr();
        // The tail overlays entry 0's `resv`, inside the ring allocation, 2-aligned,
        // and only ever accessed atomically (here) or by the kernel, which only reads.
        // SAFETY: so a shared atomic view of it is sound.
        let tail = unsafe { AtomicU16::from_ptr(std::ptr::addr_of_mut!((*base).resv)) };
        tail.store(self.tail, Ordering::Release);
    }

    /// Record that a CQE handed buffer `bid` to us. Returns false for an id that is
    /// out of range or already held (a kernel/ring bug; the caller drops the CQE).
    pub(crate) fn mark_held(&mut self, bid: u16) -> bool {
        match self.held.get_mut(usize::from(bid)) {
            Some(h) if !*h => {
                *h = true;
                true
            }
            _ => false,
        }
    }

    /// The first `len` bytes of held buffer `bid` (what the kernel wrote), or `None`
    /// when `bid` is not held by us.
    pub fn get(&self, bid: u16, len: usize) -> Option<&[u8]> {
        if !*self.held.get(usize::from(bid))? {
            return None;
        }
        let len = len.min(self.buf_size as usize);
        // The buffer is held (INVARIANT), so the kernel does not write it while this
        // shared borrow of `self` lives; it is in bounds and initialised (zeroed at
        // allocation, then written by the kernel).
        // SAFETY: so a shared slice over it is valid for the borrow.
        Some(unsafe {
            std::slice::from_raw_parts(
                self.bufs
                    .as_ptr()
                    .add(usize::from(bid) * self.buf_size as usize),
                len,
            )
        })
    }

    /// Give held buffer `bid` back to the kernel. Ignored when not held.
    pub fn recycle(&mut self, bid: u16) {
        if self.held.get(usize::from(bid)) == Some(&true) {
            self.publish(bid);
            self.store_tail();
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with these layouts; `Ring` unregisters the
        // group (and drains every op that could select a buffer) before dropping us.
        unsafe {
            dealloc(self.ring.as_ptr().cast(), self.ring_layout);
            dealloc(self.bufs.as_ptr(), self.bufs_layout);
        }
    }
}
