//! `user_data` tokens and the generation-checked slot table they point into.
//!
//! Every SQE carries a [`Token`] in its `user_data`; its CQE hands the same 64 bits
//! back. A token packs:
//!
//! ```text
//!  63       56 55                    32 31                              0
//! +-----------+------------------------+--------------------------------+
//! |  op kind  |  generation (24 bits)  |          slot index            |
//! +-----------+------------------------+--------------------------------+
//! ```
//!
//! The slot index says which connection / coroutine / timer the op belongs to, the
//! op kind says what finished (accept, recv, send, timeout ...), and the generation
//! says *which occupant* of the slot submitted it: [`Slots`] bumps a slot's
//! generation every time it is freed, so a completion that arrives for an earlier
//! occupant is recognised as stale by [`Slots::get_mut`] and dropped instead of being
//! applied to the new one. Generations are 24 bits, so a stale CQE could only be
//! confused after one slot was reused 16 million times while that CQE was in flight.
//!
//! Op kinds at or above [`OpKind::FIRST_INTERNAL`] are reserved for ops the ring
//! layer and the worker loops submit for themselves (the shutdown eventfd read,
//! cancellations whose own CQE carries no news, internal timeouts); they never name a
//! slot.

use std::fmt;

/// What kind of operation a token belongs to. Models pick their own kinds below
/// [`OpKind::FIRST_INTERNAL`] with [`OpKind::new`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpKind(u8);

impl OpKind {
    /// First value reserved for internal ops.
    pub const FIRST_INTERNAL: u8 = 0xF0;
    /// The read on a worker's wake eventfd (shutdown and other cross-thread nudges).
    pub const WAKE: OpKind = OpKind(0xF0);
    /// An `IORING_OP_ASYNC_CANCEL` whose own completion is only counted.
    pub const CANCEL: OpKind = OpKind(0xF1);
    /// A worker-level timer (e.g. the accept back-off, the shutdown deadline).
    pub const TIMER: OpKind = OpKind(0xF2);
    /// A no-op (used by tests and to nudge a ring).
    pub const NOP: OpKind = OpKind(0xF3);
    /// An `IORING_OP_CLOSE` whose result only needs counting.
    pub const CLOSE: OpKind = OpKind(0xF4);

    /// A model-defined kind. Panics (at compile time when used in a `const`) if
    /// `kind` is in the reserved range.
    pub const fn new(kind: u8) -> OpKind {
        assert!(kind < Self::FIRST_INTERNAL, "op kind in reserved range");
        OpKind(kind)
    }

    pub const fn get(self) -> u8 {
        self.0
    }

    pub const fn is_internal(self) -> bool {
        self.0 >= Self::FIRST_INTERNAL
    }
}

impl fmt::Debug for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OpKind::WAKE => f.write_str("WAKE"),
            OpKind::CANCEL => f.write_str("CANCEL"),
            OpKind::TIMER => f.write_str("TIMER"),
            OpKind::NOP => f.write_str("NOP"),
            OpKind::CLOSE => f.write_str("CLOSE"),
            OpKind(k) => write!(f, "OpKind({k})"),
        }
    }
}

/// Mask of the generation bits (24).
pub const GEN_MASK: u32 = (1 << 24) - 1;

/// The `user_data` of one SQE: slot index, generation and op kind (see module docs).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(u64);

impl Token {
    /// Pack a token. `gen` is truncated to 24 bits.
    #[inline]
    pub const fn new(slot: u32, gen: u32, kind: OpKind) -> Token {
        Token(((kind.0 as u64) << 56) | (((gen & GEN_MASK) as u64) << 32) | slot as u64)
    }

    /// A token for an internal op that names no slot (`kind` must be internal).
    #[inline]
    pub const fn internal(kind: OpKind) -> Token {
        assert!(kind.is_internal(), "internal token with a model op kind");
        Token::new(0, 0, kind)
    }

    #[inline]
    pub const fn from_raw(raw: u64) -> Token {
        Token(raw)
    }
    #[inline]
    pub const fn raw(self) -> u64 {
        self.0
    }
    #[inline]
    pub const fn slot(self) -> u32 {
        self.0 as u32
    }
    #[inline]
    pub const fn gen(self) -> u32 {
        ((self.0 >> 32) as u32) & GEN_MASK
    }
    #[inline]
    pub const fn kind(self) -> OpKind {
        OpKind((self.0 >> 56) as u8)
    }
    /// The same slot and generation with another op kind.
    #[inline]
    pub const fn with_kind(self, kind: OpKind) -> Token {
        Token::new(self.slot(), self.gen(), kind)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Token(slot {}, gen {}, {:?})",
            self.slot(),
            self.gen(),
            self.kind()
        )
    }
}

/// Names one occupant of a [`Slots`] table: index plus generation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SlotKey {
    pub index: u32,
    pub gen: u32,
}

impl SlotKey {
    /// The token for an op of `kind` submitted on behalf of this occupant.
    #[inline]
    pub const fn token(self, kind: OpKind) -> Token {
        Token::new(self.index, self.gen, kind)
    }
}

impl From<Token> for SlotKey {
    fn from(t: Token) -> SlotKey {
        SlotKey {
            index: t.slot(),
            gen: t.gen(),
        }
    }
}

struct Entry<T> {
    /// Generation of the current (or, when vacant, the next) occupant.
    gen: u32,
    val: Option<T>,
}

/// A slab whose keys carry a generation, so stale completions are detectable.
///
/// INVARIANT: `free` lists exactly the indices of `entries` whose `val` is `None`,
/// and `len` counts those whose `val` is `Some`.
pub struct Slots<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> fmt::Debug for Slots<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slots")
            .field("len", &self.len)
            .field("capacity", &self.entries.len())
            .finish()
    }
}

impl<T> Slots<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Store `val`, returning the key of its slot (a freed slot is reused with a
    /// new generation).
    pub fn insert(&mut self, val: T) -> SlotKey {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let e = &mut self.entries[index as usize];
            e.val = Some(val);
            return SlotKey { index, gen: e.gen };
        }
        let index = u32::try_from(self.entries.len()).expect("more than 2^32 slots");
        self.entries.push(Entry {
            gen: 0,
            val: Some(val),
        });
        SlotKey { index, gen: 0 }
    }

    /// The index the next [`Slots::insert`] will use.
    pub fn next_index(&self) -> u32 {
        match self.free.last() {
            Some(&index) => index,
            None => u32::try_from(self.entries.len()).unwrap_or(u32::MAX),
        }
    }

    /// The occupant named by `key`, or `None` when the slot is empty or now holds a
    /// later occupant (a stale key).
    #[inline]
    pub fn get(&self, key: SlotKey) -> Option<&T> {
        let e = self.entries.get(key.index as usize)?;
        if e.gen != key.gen & GEN_MASK {
            return None;
        }
        e.val.as_ref()
    }

    /// Mutable access; `None` for a stale or empty key.
    #[inline]
    pub fn get_mut(&mut self, key: SlotKey) -> Option<&mut T> {
        let e = self.entries.get_mut(key.index as usize)?;
        if e.gen != key.gen & GEN_MASK {
            return None;
        }
        e.val.as_mut()
    }

    /// Remove the occupant named by `key`; its slot's generation moves on so any
    /// completion still carrying `key` is stale from now on.
    pub fn remove(&mut self, key: SlotKey) -> Option<T> {
        let e = self.entries.get_mut(key.index as usize)?;
        if e.gen != key.gen & GEN_MASK {
            return None;
        }
        let val = e.val.take()?;
        e.gen = (e.gen + 1) & GEN_MASK;
        self.free.push(key.index);
        self.len -= 1;
        Some(val)
    }

    /// Keys of every occupant (allocates; for shutdown sweeps, not hot paths).
    pub fn keys(&self) -> Vec<SlotKey> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.val.is_some())
            .map(|(i, e)| SlotKey {
                index: i as u32,
                gen: e.gen,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECV: OpKind = OpKind::new(3);

    #[test]
    fn token_round_trips_its_fields() {
        let t = Token::new(0xDEAD_BEEF, 0x00AB_CDEF, RECV);
        assert_eq!(t.slot(), 0xDEAD_BEEF);
        assert_eq!(t.gen(), 0x00AB_CDEF);
        assert_eq!(t.kind(), RECV);
        assert_eq!(Token::from_raw(t.raw()), t);
        assert_eq!(Token::new(1, GEN_MASK + 2, RECV).gen(), 1);
        let w = Token::internal(OpKind::WAKE);
        assert!(w.kind().is_internal() && !RECV.is_internal());
        assert_eq!(t.with_kind(OpKind::new(7)).slot(), 0xDEAD_BEEF);
    }

    #[test]
    fn stale_generation_is_rejected_after_reuse() {
        let mut s = Slots::new();
        let a = s.insert("a");
        let old = a.token(RECV);
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert("b");
        assert_eq!(b.index, a.index, "slot reused");
        assert_ne!(b.gen, a.gen);
        assert!(
            s.get_mut(SlotKey::from(old)).is_none(),
            "stale token accepted"
        );
        assert_eq!(s.get(SlotKey::from(b.token(RECV))), Some(&"b"));
        assert!(s.remove(a).is_none(), "double remove through stale key");
        assert_eq!(s.len(), 1);
        assert_eq!(s.keys(), vec![b]);
    }
}
