//! Request-head parsing in one pass: the request line, the header fields and their
//! validation (Host, framing headers, Connection, Expect) as each line arrives.
//! Every rejection carries the status `http-behaviour.md` asks for.
//!
//! Line-ending policy: CRLF only. A bare LF or a bare CR anywhere in the head is a
//! 400, and the same holds inside chunked framing (see `body.rs`).
//!
//! The parser is incremental: [`HeadScanner`] remembers how far it looked for the
//! end of the head, so a head trickled in byte by byte costs O(n) in total.

use std::ops::Range;

use crate::config::Limits;

mod fast;
mod fields;
mod swar;
#[cfg(test)]
use fields::valid_host;
use fields::Fields;
use swar::{find_lf, valid_value};

/// A request the core refuses, with the status and a short reason for the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reject {
    pub status: u16,
    pub reason: &'static str,
}

const fn reject(status: u16, reason: &'static str) -> Reject {
    Reject { status, reason }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Trace,
    Connect,
}

impl Method {
    fn from_token(m: &[u8]) -> Option<Method> {
        Some(match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"TRACE" => Method::Trace,
            b"CONNECT" => Method::Connect,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    /// HTTP/1.1, and any later HTTP/1.x (served as 1.1).
    Http11,
}

/// How the request body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// Everything the core keeps about a parsed request head. Ranges index the
/// request's own bytes (offset 0 = the first byte given to the scan, which is the
/// request line's unless empty lines came first), so they stay valid when the
/// connection buffer is compacted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub method: Method,
    pub target: Range<usize>,
    pub version: Version,
    pub framing: Framing,
    /// The client wants the connection kept open after this response.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    pub expect_continue: bool,
    pub content_type: Option<Range<usize>>,
    /// Bytes from the first byte given to [`HeadScanner::scan`] to the end of the
    /// blank line: empty lines before the request line included, so the body
    /// starts at `len` like every range here counts from that byte.
    pub len: usize,
}

/// Byte classes, one table lookup each: bit 0 `tchar` (RFC 9110 §5.6.2), bit 1 a
/// byte of `reg-name` / IPv4 in a `Host` value (unreserved, pct-encoded, sub-delims).
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let alnum = c.is_ascii_alphanumeric();
        let tchar = alnum
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        let host = alnum
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        t[b] = (tchar as u8) | ((host as u8) << 1);
        b += 1;
    }
    t
};

/// Is `b` a `tchar` (RFC 9110 §5.6.2)?
#[inline]
pub fn is_tchar(b: u8) -> bool {
    CLASS[usize::from(b)] & 1 != 0
}

#[inline]
fn is_host_char(b: u8) -> bool {
    CLASS[usize::from(b)] & 2 != 0
}

/// Parses a request head in one pass, across reads. The two lines nearly every
/// request has, `GET <target> HTTP/1.1` and `Host: <host>`, and the blank line are
/// each walked once, validating as they go ([`fast`]). Any other line is looked at
/// once to find its end (eight bytes at a time) and once more, while still in
/// cache, to validate it (request line, field name, field value). Complete lines
/// are parsed as soon as they arrive and never looked at again, so a head trickled
/// in byte by byte costs O(n) in total.
#[derive(Debug, Default, Clone)]
pub struct HeadScanner {
    /// INVARIANT: every line ending before `line_start` is parsed and valid, and
    /// `buf[line_start..seen]` holds no LF.
    line_start: usize,
    seen: usize,
    /// Bytes of leading empty lines (CRLF) before the request line.
    skipped: usize,
    request: Option<(Method, Range<usize>, Version)>,
    n_fields: usize,
    fields: Fields,
}

/// Outcome of looking at the buffered start of a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// Need more bytes.
    Partial,
    /// A complete head; offsets are relative to the buffer given.
    Complete(Head),
}

/// Longest run of empty lines tolerated before a request line (RFC 9112 §2.2).
const MAX_LEADING_EMPTY_LINES: usize = 8;

impl HeadScanner {
    pub fn reset(&mut self) {
        *self = HeadScanner::default();
    }

    /// Look at `buf` (the request's bytes so far, from its first byte) and either
    /// ask for more, reject, or return the parsed head.
    pub fn scan(&mut self, buf: &[u8], limits: &Limits) -> Result<Scan, Reject> {
        if self.request.is_none() {
            // Nothing but (the start of) empty lines so far: wait for more.
            if !self.skip_empty_lines(buf)? || buf.len() == self.skipped {
                return Ok(Scan::Partial);
            }
            // Reject junk (TLS, HTTP/2 frames, binary) as soon as the method shows it.
            let line = &buf[self.skipped..];
            // (`GET ` is the common method, plainly not junk.)
            if !line.starts_with(b"GET ") {
                let m = line.iter().take(33).take_while(|&&b| is_tchar(b)).count();
                if m < line.len() && line[m] != b' ' || m > 32 {
                    return Err(reject(400, "malformed method"));
                }
            }
            if !self.scan_request_line(buf, limits)? {
                return Ok(Scan::Partial);
            }
        }
        // (Always set by now; no panic on the request path even so.)
        let Some(request) = self.request.clone() else {
            return Ok(Scan::Partial);
        };
        // The field lines, up to the blank line. A line nothing of which was looked
        // at yet takes the fast paths first; they run the general walk's checks, in
        // its order, on the lines they take.
        let start = self.skipped;
        loop {
            if self.seen == self.line_start {
                let at = self.line_start;
                let rest = &buf[at..];
                if rest.starts_with(b"\r\n") {
                    self.next_line(at + 2);
                    return self.complete(request, at + 2 - start, limits);
                }
                // (After the first Host, the one field with a fast path is not
                // looked for: a second one is an error anyway.)
                if self.fields.hosts == 0 {
                    if let Some(n) = fast::host_line(rest) {
                        check_head_len(at + n - start, limits)?;
                        self.count_field(limits)?;
                        self.fields.add_host()?;
                        self.next_line(at + n);
                        continue;
                    }
                }
            }
            let Some((at, line)) = self.next_complete_line(buf)? else {
                check_partial_head_len(buf.len() - start, limits)?;
                return Ok(Scan::Partial);
            };
            let len = self.line_start - start;
            if line.is_empty() {
                return self.complete(request, len, limits);
            }
            check_head_len(len, limits)?;
            self.count_field(limits)?;
            field_line(&mut self.fields, line, at)?;
        }
    }

    /// The request line, at `self.skipped`: `false` if it is not all here yet.
    fn scan_request_line(&mut self, buf: &[u8], limits: &Limits) -> Result<bool, Reject> {
        let start = self.skipped;
        if self.seen == start {
            if let Some((t, n)) = fast::get_line(&buf[start..], limits) {
                check_head_len(n, limits)?;
                self.request = Some((Method::Get, t.start + start..t.end + start, Version::Http11));
                self.next_line(start + n);
                return Ok(true);
            }
        }
        // The limits are checked in the same order, and with the same answer,
        // whether the line is all here or not (case 35): the target's length
        // first, then the head's.
        let Some((at, line)) = self.next_complete_line(buf)? else {
            if target_too_long(&buf[start..], limits) {
                return Err(reject(414, "request target too long"));
            }
            check_partial_head_len(buf.len() - start, limits)?;
            return Ok(false);
        };
        if target_too_long(line, limits) {
            return Err(reject(414, "request target too long"));
        }
        check_head_len(self.line_start - start, limits)?;
        let (m, t, v) = request_line(line, limits)?;
        self.request = Some((m, t.start + at..t.end + at, v));
        Ok(true)
    }

    /// The next line if its end is here: its offset and its bytes without the
    /// CRLF, the scan moved past it. `None`: no LF yet (all of `buf` was looked at).
    #[inline]
    fn next_complete_line<'b>(
        &mut self,
        buf: &'b [u8],
    ) -> Result<Option<(usize, &'b [u8])>, Reject> {
        let Some(lf) = find_lf(&buf[self.seen..]).map(|i| i + self.seen) else {
            self.seen = buf.len();
            return Ok(None);
        };
        if lf == self.line_start || buf[lf - 1] != b'\r' {
            return Err(reject(400, "bare LF in request head"));
        }
        let at = self.line_start;
        self.next_line(lf + 1);
        Ok(Some((at, &buf[at..lf - 1])))
    }

    /// The next line starts at `at`.
    #[inline]
    fn next_line(&mut self, at: usize) {
        self.line_start = at;
        self.seen = at;
    }

    #[inline]
    fn count_field(&mut self, limits: &Limits) -> Result<(), Reject> {
        self.n_fields += 1;
        if self.n_fields > limits.max_headers {
            return Err(reject(431, "too many header fields"));
        }
        Ok(())
    }

    /// The blank line ended the head of `request`, `len` bytes long from its
    /// request line.
    #[inline]
    fn complete(
        &mut self,
        (method, target, version): (Method, Range<usize>, Version),
        len: usize,
        limits: &Limits,
    ) -> Result<Scan, Reject> {
        check_head_len(len, limits)?;
        // (The empty lines before the request line are not counted against the
        // limit, but they are bytes of this request: the body follows them all.)
        let len = self.skipped + len;
        let (framing, keep_alive, expect_continue) = self.fields.semantics(version)?;
        Ok(Scan::Complete(Head {
            method,
            target,
            version,
            framing,
            keep_alive,
            expect_continue,
            content_type: self.fields.content_type.clone(),
            len,
        }))
    }

    /// Skip a bounded number of empty lines before the request line. `false`:
    /// the buffer ends inside one (a lone CR), so wait for more.
    fn skip_empty_lines(&mut self, buf: &[u8]) -> Result<bool, Reject> {
        while self.line_start == self.skipped && buf.len() > self.skipped {
            match &buf[self.skipped..] {
                [b'\r', b'\n', ..] => {
                    self.skipped += 2;
                    self.line_start = self.skipped;
                    self.seen = self.skipped;
                    if self.skipped > 2 * MAX_LEADING_EMPTY_LINES {
                        return Err(reject(400, "too many empty lines before the request"));
                    }
                }
                [b'\r'] => return Ok(false),
                [b'\r', ..] | [b'\n', ..] => return Err(reject(400, "bare CR or LF")),
                _ => break,
            }
        }
        Ok(true)
    }
}

/// The head so far, `len` bytes with the CRLF of its last line, within the limit
/// (which counts the head without its final blank line).
#[inline]
fn check_head_len(len: usize, limits: &Limits) -> Result<(), Reject> {
    if len > limits.max_head + 2 {
        return Err(reject(431, "request header section too large"));
    }
    Ok(())
}

/// `len` bytes of a head with no end yet: over the limit only if no end could
/// bring it within (the shortest end is one more byte, an LF), so that a head of
/// the largest size is not refused when its last byte comes in a read of its own.
#[inline]
fn check_partial_head_len(len: usize, limits: &Limits) -> Result<(), Reject> {
    check_head_len(len + 1, limits)
}

/// Does (the start of) a request line hold a target over the limit: after the
/// method's SP, more than `max_target` visible ASCII octets? Known as soon as
/// they are here, whatever follows them.
fn target_too_long(line: &[u8], limits: &Limits) -> bool {
    if line.len() <= limits.max_target {
        return false;
    }
    let Some(sp) = line.iter().take(33).position(|&b| b == b' ') else {
        return false;
    };
    line[sp + 1..]
        .iter()
        .take(limits.max_target + 1)
        .take_while(|b| (0x21..0x7f).contains(*b))
        .count()
        > limits.max_target
}

/// One header field line (without its CRLF), starting at offset `at` of the
/// request: `field-name ":" OWS field-value OWS` (RFC 9112 §5).
fn field_line(f: &mut Fields, line: &[u8], at: usize) -> Result<(), Reject> {
    let colon = line
        .iter()
        .position(|&b| !is_tchar(b))
        .unwrap_or(line.len());
    if colon == 0 || line.get(colon) != Some(&b':') {
        // Includes obs-fold (a line starting with SP / HTAB) and SP before the colon.
        return Err(reject(400, "malformed header name"));
    }
    let raw = &line[colon + 1..];
    let value = trim(raw);
    // No CTL but HTAB (a CR here is a bare CR); obs-text is allowed.
    if !valid_value(value) {
        return Err(reject(400, "control character in header value"));
    }
    let value_at = at + colon + 1 + (value.as_ptr() as usize - raw.as_ptr() as usize);
    f.take(&line[..colon], value, value_at)
}

/// `method SP request-target SP HTTP-version`, exactly one SP each, in one
/// forward pass: the method's bytes are tokens up to the first SP, the target's
/// are visible ASCII up to the next SP, and the rest is the version.
fn request_line(line: &[u8], limits: &Limits) -> Result<(Method, Range<usize>, Version), Reject> {
    // `GET <visible ASCII> HTTP/1.1`, most requests: the general walk below would
    // reach the same answer.
    if let Some(t) = line
        .strip_prefix(b"GET ")
        .and_then(|r| r.strip_suffix(b" HTTP/1.1"))
    {
        if !t.is_empty()
            && t.len() <= limits.max_target
            && t.iter().all(|b| (0x21..0x7f).contains(b))
        {
            return Ok((Method::Get, 4..4 + t.len(), Version::Http11));
        }
    }
    request_line_general(line, limits)
}

/// [`request_line`] without its fast path.
fn request_line_general(
    line: &[u8],
    limits: &Limits,
) -> Result<(Method, Range<usize>, Version), Reject> {
    let sp1 = line
        .iter()
        .position(|&b| !is_tchar(b))
        .unwrap_or(line.len());
    if sp1 == 0 || line.get(sp1) != Some(&b' ') {
        return Err(reject(400, "malformed method"));
    }
    let t0 = sp1 + 1;
    let t_len = line[t0..]
        .iter()
        .position(|&b| !(0x21..0x7f).contains(&b))
        .unwrap_or(line.len() - t0);
    let t1 = t0 + t_len;
    if t_len > limits.max_target {
        return Err(reject(414, "request target too long"));
    }
    match line.get(t1) {
        _ if t_len == 0 => return Err(reject(400, "invalid request target")),
        None => return Err(reject(400, "missing HTTP version")),
        Some(b' ') => {}
        Some(_) => return Err(reject(400, "invalid request target")),
    }
    let version = &line[t1 + 1..];
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', major @ b'0'..=b'9', b'.', b'0'..=b'9'] => {
            if *major == b'1' {
                Version::Http11
            } else if line == b"PRI * HTTP/2.0" {
                return Err(reject(400, "HTTP/2 connection preface on an HTTP/1.1 port"));
            } else {
                return Err(reject(505, "HTTP version not supported"));
            }
        }
        // A second space: the target had a space in it (case 6).
        v if v.contains(&b' ') => return Err(reject(400, "invalid request target")),
        _ => return Err(reject(400, "malformed HTTP version")),
    };
    let method = Method::from_token(&line[..sp1]).ok_or(reject(501, "method not implemented"))?;
    Ok((method, t0..t1, version))
}

/// Trim leading and trailing SP / HTAB.
pub fn trim(v: &[u8]) -> &[u8] {
    let s = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let e = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(s, |e| e + 1);
    &v[s..e]
}

/// The values (trimmed) of every field line named `name` (ASCII case-insensitive),
/// in order, in `head`: a request head the parser accepted, from anywhere in its
/// request line (the first line is skipped) to the end of its field lines. A scan
/// of the whole head, for cold paths only (a file reply's conditions, the access
/// log); the parser itself keeps only what every request needs ([`Head`]).
pub fn field_values<'a>(head: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    head.split(|&b| b == b'\n').skip(1).filter_map(move |line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(name)
            .then(|| trim(&line[colon + 1..]))
    })
}

#[cfg(test)]
mod tests;
