//! Eight bytes at a time: finding line ends and checking field values with
//! per-byte-exact SWAR arithmetic on `u64`s (no `unsafe`, no SIMD intrinsics).

/// The first LF in `b`, eight bytes at a time (head lines are short: tens of
/// bytes, where a vectorized search's setup costs more than the search).
#[inline]
pub(super) fn find_lf(b: &[u8]) -> Option<usize> {
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let x = load8(c) ^ (LO * 0x0a);
        // A zero byte in `x` is an LF in `c`; the lowest flagged byte is the first.
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == b'\n')
        .map(|i| at + i)
}

/// The first eight bytes of `c`, little-endian: byte 0 is the lowest. Every caller
/// passes at least eight; a shorter `c` would read as eight NULs, which no caller
/// could take for an LF or a clean value.
#[inline]
fn load8(c: &[u8]) -> u64 {
    // One length check and one load (eight indexings were eight bounds checks
    // where the compiler could not see the length).
    match c.first_chunk::<8>() {
        Some(b) => u64::from_le_bytes(*b),
        None => 0,
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of every byte of `x` that is a CTL (below 0x20, HTAB included) or
/// DEL, exactly: per byte, `(b & 0x7f) + 0x60` and `(b & 0x7f) + 1` cannot carry
/// into the next byte, so no byte's answer depends on another's.
#[inline]
fn ctl_or_del(x: u64) -> u64 {
    let m = x & !HI;
    let ctl = !((m + LO * 0x60) | x) & HI;
    let del = (m + LO) & !x & HI;
    ctl | del
}

/// A field value holds no CTL but HTAB and no DEL (obs-text is allowed). Short
/// values (most: hosts, lengths, tokens) eight bytes at a time, the last eight
/// overlapping the previous chunk rather than falling back to a byte loop, and a
/// byte loop only where a chunk holds a CTL (an HTAB, most likely); long ones (user
/// agents, cookies) by a branch-free fold the compiler vectorizes 16 bytes at a
/// time, which wins once the vector loop's setup is paid for (measured with
/// `scripts/core-instructions.sh`: browser-get).
pub(super) fn valid_value(v: &[u8]) -> bool {
    let byte_ok = |&b: &u8| (b >= 0x20 || b == b'\t') && b != 0x7f;
    if v.len() < 8 {
        return v.iter().all(byte_ok);
    }
    if v.len() > 32 {
        return !v.iter().fold(false, |bad, b| bad | !byte_ok(b));
    }
    let mut flagged = 0;
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        flagged |= ctl_or_del(load8(c));
    }
    if !chunks.remainder().is_empty() {
        flagged |= ctl_or_del(load8(&v[v.len() - 8..]));
    }
    flagged == 0 || v.iter().all(byte_ok)
}
