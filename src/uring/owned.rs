//! The ring's table of memory owned by in-flight ops ([`InFlight`]), and what an
//! op hands back with the CQE that ends it ([`Returned`]).
//!
//! The owned-buffer ops of [`super::ops`] record here what the kernel reads or
//! writes; [`super::Ring::reap`] takes it out again with the op's final
//! completion. The table is owned by the [`super::Ring`] and dropped only after
//! its `Drop` has drained every op (leaked if that fails). Both the ring and the
//! ops import this module; it imports neither.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::ffi::CString;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr::NonNull;

use io_uring::types;

use super::token::Token;

/// A file's type, size, modification time and inode, from `IORING_OP_STATX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// `st_mode` (type and permission bits).
    pub mode: u32,
    /// Nanoseconds of `mtime_sec`.
    pub mtime_nsec: u32,
    pub size: u64,
    /// Last modification, seconds since the epoch.
    pub mtime_sec: i64,
    pub ino: u64,
}

impl From<&libc::statx> for Stat {
    fn from(st: &libc::statx) -> Stat {
        Stat {
            mode: u32::from(st.stx_mode),
            mtime_nsec: st.stx_mtime.tv_nsec,
            size: st.stx_size,
            mtime_sec: st.stx_mtime.tv_sec,
            ino: st.stx_ino,
        }
    }
}

/// What an op hands back with its final completion.
#[derive(Debug)]
pub enum Returned {
    /// The buffer of a send, recv or read.
    Buf(Vec<u8>),
    /// The descriptor an open or accept created.
    Fd(OwnedFd),
    /// The result of a statx: the kernel's buffer itself, boxed as it was lent
    /// (inline, its [`Stat`] would grow every completion by half).
    Statx(Box<libc::statx>),
}

/// A heap value whose address the kernel holds: allocated by `Box::into_raw`, so no
/// `Box` (with its uniqueness) exists while the kernel accesses it.
///
/// INVARIANT: `0` came from `Box::into_raw`; it is freed exactly once, by `Drop`
/// or `into_box`, and only once the op that was given its address has ended (the
/// table drops entries only after their final CQE, or never: see the module docs).
pub(super) struct Lent<T>(NonNull<T>);

impl<T> Lent<T> {
    pub(super) fn new(v: T) -> Lent<T> {
        Lent(NonNull::from(Box::leak(Box::new(v))))
    }

    pub(super) fn ptr(&self) -> *mut T {
        self.0.as_ptr()
    }

    fn into_box(self) -> Box<T> {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        // SAFETY: INVARIANT: from `Box::into_raw`, not freed yet (forget skips Drop),
        // and the op using it has ended.
        unsafe { Box::from_raw(p) }
    }
}

impl<T> Drop for Lent<T> {
    fn drop(&mut self) {
        // SAFETY: INVARIANT: from `Box::into_raw`, freed once, after the op ended.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

impl<T> std::fmt::Debug for Lent<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lent")
    }
}

/// Memory held for one in-flight op.
#[derive(Debug)]
pub(super) enum Held {
    Buf(Vec<u8>),
    /// openat2: the path and the `open_how` the kernel reads.
    Open {
        _path: Lent<CString>,
        _how: Lent<types::OpenHow>,
    },
    /// statx: the buffer the kernel writes.
    Statx(Lent<libc::statx>),
    /// accept (possibly multishot): no memory, but a result `>= 0` is a new fd.
    Accept,
    /// connect: the address the kernel reads.
    Connect {
        _addr: Lent<socket2::SockAddr>,
    },
}

/// Mixes a token's bits (kind high, slot low) so buckets spread.
#[derive(Default)]
pub(super) struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(self.0 ^ u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        let m = u128::from(n) * 0x9E37_79B9_7F4A_7C15;
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

/// The ring's table of memory owned by in-flight ops (see the module docs).
#[derive(Debug, Default)]
pub(super) struct InFlight {
    ops: HashMap<u64, Held, BuildHasherDefault<TokenHasher>>,
}

impl InFlight {
    /// How many ops own memory (or an accept) right now.
    pub(super) fn len(&self) -> usize {
        self.ops.len()
    }

    /// Record `held` for the op `token` names; `Err(held)` when another op with
    /// that token still owns memory (nothing is recorded).
    pub(super) fn insert(&mut self, token: Token, held: Held) -> Result<(), Held> {
        match self.ops.entry(token.raw()) {
            Entry::Occupied(_) => Err(held),
            Entry::Vacant(v) => {
                v.insert(held);
                Ok(())
            }
        }
    }

    /// The hook [`super::Ring::reap`] calls for every completion (`token`,
    /// `result`, and whether more CQEs follow for its SQE): when it ends an op of
    /// the table, what that op held (or the fd it created) for the completion.
    pub(super) fn complete(&mut self, token: Token, result: i32, more: bool) -> Option<Returned> {
        if self.ops.is_empty() {
            return None;
        }
        let key = token.raw();
        if more {
            // Only a multishot accept stays in the table across CQEs.
            return match self.ops.get(&key) {
                Some(Held::Accept) => new_fd(result).map(Returned::Fd),
                _ => None,
            };
        }
        match self.ops.remove(&key) {
            None => None,
            Some(Held::Buf(b)) => Some(Returned::Buf(b)),
            Some(Held::Open { .. } | Held::Accept) => new_fd(result).map(Returned::Fd),
            Some(Held::Statx(st)) => (result >= 0).then(|| Returned::Statx(st.into_box())),
            Some(Held::Connect { .. }) => None,
        }
    }
}

/// A successful open/accept result as the descriptor it is.
fn new_fd(result: i32) -> Option<OwnedFd> {
    // SAFETY: a non-negative result of an open or accept CQE is a descriptor the
    // kernel just installed for this process; nothing else owns it.
    (result >= 0).then(|| unsafe { OwnedFd::from_raw_fd(result) })
}
