//! The header fields the core interprets (Host, Content-Length,
//! Transfer-Encoding, Connection, Expect, Content-Type), taken as each field line
//! is parsed, and the framing and persistence they decide once the head is complete.

use std::ops::Range;

use super::{is_host_char, is_tchar, reject, trim, Framing, Reject, Version};

/// The header fields the core interprets.
#[derive(Default, Debug, Clone)]
pub(super) struct Fields {
    pub(super) hosts: u8,
    content_length: Option<u64>,
    te_seen: bool,
    /// `chunked` was the last coding seen so far.
    te_chunked_last: bool,
    te_other: bool,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    expect_other: bool,
    pub(super) content_type: Option<Range<usize>>,
}

impl Fields {
    pub(super) fn take(&mut self, n: &[u8], value: &[u8], at: usize) -> Result<(), Reject> {
        // Most fields are none of these: the length rules them out with one compare.
        if !matches!(n.len(), 4 | 6 | 10 | 12 | 14 | 17) {
            return Ok(());
        }
        if n.eq_ignore_ascii_case(b"host") {
            self.add_host()?;
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

    /// A `Host` field: at most one.
    #[inline]
    pub(super) fn add_host(&mut self) -> Result<(), Reject> {
        self.hosts = self.hosts.saturating_add(1);
        if self.hosts > 1 {
            return Err(reject(400, "more than one Host header"));
        }
        Ok(())
    }

    /// (framing, keep-alive, expect-continue) once all fields are seen.
    pub(super) fn semantics(&self, version: Version) -> Result<(Framing, bool, bool), Reject> {
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
pub(super) fn valid_host(v: &[u8]) -> bool {
    let port = if v.first() == Some(&b'[') {
        let Some(close) = v.iter().position(|&b| b == b']') else {
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
        &v[close + 1..]
    } else {
        // One pass: the reg-name runs up to the first byte that is not a host
        // character, which must be the port's ':' or the end.
        let c = v.iter().position(|&b| !is_host_char(b)).unwrap_or(v.len());
        &v[c..]
    };
    match port {
        [] => true,
        [b':', digits @ ..] => digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}
