//! Fast paths for the lines nearly every request is made of: `GET <target>
//! HTTP/1.1` and `Host: <host>[:<port>]`. Each walks its line once, start to CRLF,
//! validating as it goes, where the general walk finds the line end first and then
//! splits, trims and validates the line's parts (a second and third look at the
//! same bytes). Each accepts only lines the general walk accepts with the same
//! result, and returns `None` for anything else (including a line not wholly
//! here yet), which the general walk then handles, rejections included
//! (`parse/tests.rs` checks that both agree).

use std::ops::Range;

use super::is_host_char;
use crate::config::Limits;

/// `GET <visible ASCII> HTTP/1.1` CRLF at the start of `l`: the target's range in
/// `l` and the length of the line with its CRLF.
#[inline]
pub(super) fn get_line(l: &[u8], limits: &Limits) -> Option<(Range<usize>, usize)> {
    let rest = l.strip_prefix(b"GET ")?;
    let t = rest.iter().position(|b| !(0x21..0x7f).contains(b))?;
    if t == 0 || t > limits.max_target {
        return None;
    }
    (rest.get(t..t + 11)? == b" HTTP/1.1\r\n").then_some((4..4 + t, 4 + t + 11))
}

/// `Host:` SP* `<reg-name or IPv4>` [`:` up to five digits] SP* CRLF at the start
/// of `l`, the name in any case: the length of the line with its CRLF.
#[inline]
pub(super) fn host_line(l: &[u8]) -> Option<usize> {
    let &[h, o, s, t, b':', ..] = l else {
        return None;
    };
    // ASCII letters differ from their capitals by the 0x20 bit alone, and no other
    // byte sets it into one of these four letters: one compare, any case.
    if u32::from_le_bytes([h, o, s, t]) | 0x2020_2020 != u32::from_le_bytes(*b"host") {
        return None;
    }
    let mut i = 5;
    while l.get(i) == Some(&b' ') {
        i += 1;
    }
    let host = i;
    while l.get(i).is_some_and(|&b| is_host_char(b)) {
        i += 1;
    }
    if i == host {
        return None; // empty, or an IP literal: the general walk
    }
    if l.get(i) == Some(&b':') {
        i += 1;
        let port = i;
        while l.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i - port > 5 {
            return None;
        }
    }
    while l.get(i) == Some(&b' ') {
        i += 1;
    }
    (l.get(i..i + 2)? == b"\r\n").then_some(i + 2)
}
