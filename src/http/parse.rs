//! Request-head parsing: our own strict request line, `httparse` for header fields,
//! and the validation httparse leaves to us (Host, framing headers, Connection,
//! Expect). Every rejection carries the status `http-behaviour.md` asks for.
//!
//! Line-ending policy: CRLF only. A bare LF or a bare CR anywhere in the head is a
//! 400, and the same holds inside chunked framing (see `body.rs`).
//!
//! The parser is incremental: [`HeadScanner`] remembers how far it looked for the
//! end of the head, so a head trickled in byte by byte costs O(n) in total.

use std::ops::Range;

use crate::config::Limits;

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
/// request's own bytes (offset 0 = first byte of the request line), so they stay
/// valid when the connection buffer is compacted.
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
    /// Bytes from the first byte of the request line to the end of the blank line.
    pub len: usize,
}

/// Is `b` a `tchar` (RFC 9110 §5.6.2)?
#[inline]
pub fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' |
        b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// Finds the end of a request head across reads.
#[derive(Debug, Default, Clone)]
pub struct HeadScanner {
    /// INVARIANT: every LF before `scanned` was checked to follow a CR, and no
    /// `CRLFCRLF` ends before it.
    scanned: usize,
    /// Bytes of leading empty lines (CRLF) before the request line.
    skipped: usize,
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
/// Request line overhead beyond the target: method, two spaces, version, CRLF.
const REQUEST_LINE_SLACK: usize = 64;

impl HeadScanner {
    pub fn reset(&mut self) {
        *self = HeadScanner::default();
    }

    /// Look at `buf` (the request's bytes so far, from its first byte) and either
    /// ask for more, reject, or return the parsed head.
    pub fn scan(&mut self, buf: &[u8], limits: &Limits) -> Result<Scan, Reject> {
        // Leading empty lines are skipped, a bounded number of them.
        while self.scanned == self.skipped && buf.len() > self.skipped {
            match &buf[self.skipped..] {
                [b'\r', b'\n', ..] => {
                    self.skipped += 2;
                    self.scanned = self.skipped;
                    if self.skipped > 2 * MAX_LEADING_EMPTY_LINES {
                        return Err(reject(400, "too many empty lines before the request"));
                    }
                }
                [b'\r'] => return Ok(Scan::Partial),
                [b'\r', ..] | [b'\n', ..] => return Err(reject(400, "bare CR or LF")),
                _ => break,
            }
        }
        let start = self.skipped;
        let line = &buf[start..];
        // Reject junk (TLS, HTTP/2 frames, binary) as soon as the method shows it.
        let method_len = line.iter().take_while(|&&b| is_tchar(b)).count();
        if method_len < line.len() && line[method_len] != b' ' || method_len > 32 {
            return Err(reject(400, "malformed method"));
        }
        // Look for LFs in the new bytes: each must follow a CR; CRLFCRLF ends the head.
        let from = self.scanned.max(start);
        let mut end = None;
        for i in memchr::memchr_iter(b'\n', &buf[from..]).map(|i| i + from) {
            if i == 0 || buf[i - 1] != b'\r' {
                return Err(reject(400, "bare LF in request head"));
            }
            if i >= start + 3 && &buf[i - 3..i - 1] == b"\r\n" {
                end = Some(i + 1);
                break;
            }
        }
        let Some(end) = end else {
            // Keep the last 3 bytes for a CRLFCRLF split across reads.
            self.scanned = buf.len().saturating_sub(3).max(start);
            let first_line_done = memchr::memchr(b'\n', line).is_some();
            if !first_line_done && line.len() > limits.max_target + REQUEST_LINE_SLACK {
                return Err(reject(414, "request target too long"));
            }
            if buf.len() - start > limits.max_head {
                return Err(reject(431, "request header section too large"));
            }
            return Ok(Scan::Partial);
        };
        if end - start > limits.max_head + 2 {
            return Err(reject(431, "request header section too large"));
        }
        let mut head = parse_head(&buf[start..end], limits)?;
        head.target = head.target.start + start..head.target.end + start;
        head.content_type = head.content_type.map(|r| r.start + start..r.end + start);
        head.len = end;
        Ok(Scan::Complete(head))
    }
}

/// Parse a complete head: `head` runs from the request line through the blank line.
fn parse_head(head: &[u8], limits: &Limits) -> Result<Head, Reject> {
    // The scanner only hands over heads ending in CRLFCRLF whose every LF follows a CR.
    let line_end = match memchr::memchr(b'\n', head) {
        Some(lf) if lf > 0 => lf - 1,
        _ => return Err(reject(400, "malformed request head")),
    };
    let (method, target, version) = request_line(&head[..line_end], limits)?;
    let fields = &head[line_end + 2..];
    // Every LF in a complete head follows a CR (checked by the scanner), so the
    // field count is the LF count minus the blank line.
    let n_fields = memchr::memchr_iter(b'\n', fields).count().saturating_sub(1);
    if n_fields > limits.max_headers {
        return Err(reject(431, "too many header fields"));
    }
    let mut small = [httparse::EMPTY_HEADER; 32];
    let mut large;
    let slots: &mut [httparse::Header<'_>] = if n_fields <= small.len() {
        &mut small[..]
    } else {
        large = vec![httparse::EMPTY_HEADER; n_fields];
        &mut large[..]
    };
    let headers = match httparse::parse_headers(fields, slots) {
        Ok(httparse::Status::Complete((_, h))) => h,
        Ok(httparse::Status::Partial) => return Err(reject(400, "malformed header section")),
        Err(httparse::Error::TooManyHeaders) => return Err(reject(431, "too many header fields")),
        Err(httparse::Error::HeaderName) => return Err(reject(400, "malformed header name")),
        Err(httparse::Error::HeaderValue) => return Err(reject(400, "invalid header value")),
        Err(_) => return Err(reject(400, "malformed header section")),
    };
    let base = line_end + 2;
    let offset_of = |s: &[u8]| s.as_ptr() as usize - fields.as_ptr() as usize + base;
    let mut f = Fields::default();
    for h in headers.iter() {
        let value = trim(h.value);
        if value.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return Err(reject(400, "control character in header value"));
        }
        f.take(h.name, value, offset_of(value))?;
    }
    let (framing, keep_alive, expect_continue) = f.semantics(version)?;
    Ok(Head {
        method,
        target,
        version,
        framing,
        keep_alive,
        expect_continue,
        content_type: f.content_type,
        len: head.len(),
    })
}

/// `method SP request-target SP HTTP-version`, exactly one SP each.
fn request_line(line: &[u8], limits: &Limits) -> Result<(Method, Range<usize>, Version), Reject> {
    let sp1 = memchr::memchr(b' ', line).ok_or(reject(400, "malformed request line"))?;
    let method = &line[..sp1];
    let rest = &line[sp1 + 1..];
    let sp2 = memchr::memrchr(b' ', rest).ok_or(reject(400, "missing HTTP version"))?;
    let target = &rest[..sp2];
    let version = &rest[sp2 + 1..];
    if target.len() > limits.max_target {
        return Err(reject(414, "request target too long"));
    }
    if target.is_empty() || target.iter().any(|&b| !(0x21..0x7f).contains(&b)) {
        return Err(reject(400, "invalid request target"));
    }
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
        _ => return Err(reject(400, "malformed HTTP version")),
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(reject(400, "malformed method"));
    }
    let method = Method::from_token(method).ok_or(reject(501, "method not implemented"))?;
    let t0 = sp1 + 1;
    Ok((method, t0..t0 + target.len(), version))
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

/// The header fields the core interprets.
#[derive(Default)]
struct Fields {
    hosts: u8,
    content_length: Option<u64>,
    te_seen: bool,
    /// `chunked` was the last coding seen so far.
    te_chunked_last: bool,
    te_other: bool,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    expect_other: bool,
    content_type: Option<Range<usize>>,
}

impl Fields {
    fn take(&mut self, name: &str, value: &[u8], at: usize) -> Result<(), Reject> {
        let n = name.as_bytes();
        if n.eq_ignore_ascii_case(b"host") {
            self.hosts = self.hosts.saturating_add(1);
            if self.hosts > 1 {
                return Err(reject(400, "more than one Host header"));
            }
            if !valid_host(value) {
                return Err(reject(400, "invalid Host header"));
            }
        } else if n.eq_ignore_ascii_case(b"content-length") {
            // One field with one value. A list (`1000,1000`) or a repeated field, even
            // of equal values, is rejected rather than merged (RFC 9110 §8.6 permits
            // either): a peer that merges differently is how requests get smuggled.
            if self.content_length.is_some() {
                return Err(reject(400, "more than one Content-Length"));
            }
            if value.contains(&b',') {
                return Err(reject(400, "Content-Length is a list"));
            }
            self.content_length = Some(parse_content_length(value)?);
        } else if n.eq_ignore_ascii_case(b"transfer-encoding") {
            self.te_seen = true;
            for coding in value
                .split(|&b| b == b',')
                .map(trim)
                .filter(|c| !c.is_empty())
            {
                if !coding.iter().all(|&b| is_tchar(b)) {
                    return Err(reject(400, "malformed Transfer-Encoding"));
                }
                if coding.eq_ignore_ascii_case(b"chunked") {
                    if self.te_chunked_last {
                        return Err(reject(400, "chunked applied more than once"));
                    }
                    self.te_chunked_last = true;
                } else if self.te_chunked_last {
                    return Err(reject(400, "chunked is not the final transfer coding"));
                } else {
                    self.te_other = true;
                }
            }
        } else if n.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    self.keep_alive = true;
                }
            }
        } else if n.eq_ignore_ascii_case(b"expect") {
            if value.eq_ignore_ascii_case(b"100-continue") {
                self.expect_continue = true;
            } else {
                self.expect_other = true;
            }
        } else if n.eq_ignore_ascii_case(b"content-type") {
            self.content_type = Some(at..at + value.len());
        }
        Ok(())
    }

    /// (framing, keep-alive, expect-continue) once all fields are seen.
    fn semantics(&self, version: Version) -> Result<(Framing, bool, bool), Reject> {
        if version == Version::Http11 && self.hosts == 0 {
            return Err(reject(400, "HTTP/1.1 request without Host"));
        }
        let framing = if self.te_seen {
            if version == Version::Http10 {
                return Err(reject(400, "Transfer-Encoding in an HTTP/1.0 request"));
            }
            if self.content_length.is_some() {
                return Err(reject(400, "both Transfer-Encoding and Content-Length"));
            }
            if self.te_other {
                return Err(reject(501, "transfer coding not implemented"));
            }
            if !self.te_chunked_last {
                return Err(reject(400, "empty Transfer-Encoding"));
            }
            Framing::Chunked
        } else {
            match self.content_length {
                None | Some(0) => Framing::None,
                Some(n) => Framing::Length(n),
            }
        };
        if self.expect_other {
            return Err(reject(417, "unsupported expectation"));
        }
        let keep_alive = match version {
            Version::Http11 => !self.close,
            Version::Http10 => self.keep_alive && !self.close,
        };
        let expect = self.expect_continue && version == Version::Http11;
        Ok((framing, keep_alive, expect))
    }
}

/// `Content-Length = 1*DIGIT`, without overflow.
fn parse_content_length(v: &[u8]) -> Result<u64, Reject> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(reject(400, "invalid Content-Length"));
    }
    v.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(d - b'0')))
            .ok_or(reject(400, "Content-Length overflows"))
    })
}

/// `uri-host [ ":" port ]`: a reg-name or IPv4 (unreserved / pct-encoded /
/// sub-delims), or an IP-literal in brackets. Empty is allowed (RFC 9112 §3.2).
fn valid_host(v: &[u8]) -> bool {
    let (host, port) = if v.first() == Some(&b'[') {
        let Some(close) = memchr::memchr(b']', v) else {
            return false;
        };
        let lit = &v[1..close];
        if lit.is_empty()
            || !lit
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b".:vV".contains(&b))
        {
            return false;
        }
        (&v[..0], &v[close + 1..])
    } else {
        match memchr::memchr(b':', v) {
            Some(c) => (&v[..c], &v[c..]),
            None => (v, &v[..0]),
        }
    };
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => digits.iter().all(u8::is_ascii_digit) && digits.len() <= 5,
        _ => false,
    };
    let reg_name_ok = host
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b));
    port_ok && reg_name_ok
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
