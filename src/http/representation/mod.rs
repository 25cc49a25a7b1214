//! What a static file's response depends on besides its bytes (RFC 9110): its
//! validators (§8.8: `Last-Modified`, a strong `ETag`), the request's conditions
//! (§13: `If-None-Match`, `If-Modified-Since`, `If-Range`), a byte range (§14:
//! `Range`) and a precompressed content coding (§8.4, §12.5.3: `Accept-Encoding`).
//!
//! Nothing here runs for a request that is not a file: the handler parses the
//! fields of a `/static/` request into a small owned [`Conditions`] and a
//! [`Codings`] list ([`crate::http::FileReply`]); once the model has opened and
//! stat-ed the file, the protocol engine asks [`Conditions::evaluate`] which
//! response it owes (200, 206, 304 or 416) and writes the fields of this module.
//! Everything is total: malformed input is ignored as the RFC asks, never a panic.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use super::date::DATE_LEN;
use super::handler::{FileMeta, Request};
use super::parse::trim;

/// A precompressed variant's content coding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Br,
    Gzip,
}

impl Coding {
    /// The `Content-Encoding` value.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// The suffix of the variant's file beside the file itself.
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Br => ".br",
            Coding::Gzip => ".gz",
        }
    }
}

/// The precompressed variants a request accepts, most preferred first (at most
/// one of each coding).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Codings([Option<Coding>; 2]);

impl Codings {
    /// From the `Accept-Encoding` field values: a coding is accepted when it is
    /// listed (or `*` is) with a weight above 0; `gzip;q=0` refuses it, and so does
    /// a list that names neither it nor `*`. No field at all: none (the file
    /// itself, as `gzip_static` does). Higher weights come first, `br` before
    /// `gzip` on a tie. `x-gzip` is `gzip` (§8.4.1.3). An element with an invalid
    /// weight is ignored.
    pub fn from_accept_encoding<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Codings {
        let (mut br, mut gzip, mut star) = (None, None, None);
        for value in values {
            for element in value.split(|&b| b == b',') {
                let mut parts = element.split(|&b| b == b';');
                let name = trim(parts.next().unwrap_or_default());
                if name.is_empty() {
                    continue;
                }
                let mut weight = Some(1000);
                for p in parts.map(trim) {
                    if p.len() >= 2 && p[..2].eq_ignore_ascii_case(b"q=") {
                        weight = qvalue(&p[2..]);
                    }
                }
                let Some(w) = weight else { continue };
                if name.eq_ignore_ascii_case(b"br") {
                    br = Some(w);
                } else if name.eq_ignore_ascii_case(b"gzip") || name.eq_ignore_ascii_case(b"x-gzip")
                {
                    gzip = Some(w);
                } else if name == b"*" {
                    star = Some(w);
                }
            }
        }
        let br = br.or(star).unwrap_or(0);
        let gzip = gzip.or(star).unwrap_or(0);
        let ok = |w: u16, c| (w > 0).then_some(c);
        Codings(if gzip > br {
            [ok(gzip, Coding::Gzip), ok(br, Coding::Br)]
        } else {
            [ok(br, Coding::Br), ok(gzip, Coding::Gzip)]
        })
        .packed()
    }

    /// The variants in order of preference.
    pub fn new(list: [Option<Coding>; 2]) -> Codings {
        Codings(list).packed()
    }

    /// The preferred variant not yet tried.
    pub fn first(&self) -> Option<Coding> {
        self.0[0]
    }

    /// Drop the preferred variant (it was not there).
    pub fn pop_first(&mut self) {
        self.0 = [self.0[1], None];
    }

    fn packed(self) -> Codings {
        match self.0 {
            [None, b] => Codings([b, None]),
            list => Codings(list),
        }
    }
}

/// A `qvalue` (§12.4.2) in thousandths: `0`, `0.5`, `1`, `1.000`, ...
fn qvalue(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// One `Range` request (§14.1.1), as sent; whether it can be satisfied depends on
/// the file's length ([`RangeSpec::satisfy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=first-last`.
    FromTo(u64, u64),
    /// `bytes=first-`.
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
    /// Two or more ranges: gvhttpd sends the whole file (200) instead of a
    /// `multipart/byteranges` response (`http-behaviour.md`, "Choices made").
    Several,
}

/// Parse a `Range` field value. `None` when it is to be ignored (§14.2): another
/// range unit, or an invalid `bytes` ranges-specifier (`5-2`, `abc`, `-`, none).
/// Positions too large for 64 bits saturate (such a first position is
/// unsatisfiable; such a last position means the end).
pub fn parse_range(v: &[u8]) -> Option<RangeSpec> {
    let eq = v.iter().position(|&b| b == b'=')?;
    if !v[..eq].eq_ignore_ascii_case(b"bytes") {
        return None;
    }
    let mut one = None;
    let mut count = 0usize;
    for element in v[eq + 1..].split(|&b| b == b',').map(trim) {
        if element.is_empty() {
            continue; // empty list elements are allowed (§5.6.1.2)
        }
        let dash = element.iter().position(|&b| b == b'-')?;
        let (first, last) = (&element[..dash], &element[dash + 1..]);
        let spec = match (first.is_empty(), last.is_empty()) {
            (true, true) => return None,
            (true, false) => RangeSpec::Suffix(digits(last)?),
            (false, true) => RangeSpec::From(digits(first)?),
            (false, false) => {
                let (a, b) = (digits(first)?, digits(last)?);
                if b < a {
                    return None;
                }
                RangeSpec::FromTo(a, b)
            }
        };
        count += 1;
        one = Some(spec);
    }
    match count {
        0 => None,
        1 => one,
        _ => Some(RangeSpec::Several),
    }
}

/// `1*DIGIT`, saturating.
fn digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

impl RangeSpec {
    /// What this range asks of a representation of `len` bytes (§14.1.1: an
    /// int-range is satisfiable when its first position is below the length, a
    /// suffix-range when its length is not 0). A suffix of an empty file has no
    /// bytes to name in a `Content-Range`: the whole (empty) file is sent.
    pub fn satisfy(self, len: u64) -> Outcome {
        match self {
            RangeSpec::FromTo(a, b) if a < len => Outcome::Partial {
                start: a,
                len: b.min(len - 1) - a + 1,
            },
            RangeSpec::From(a) if a < len => Outcome::Partial {
                start: a,
                len: len - a,
            },
            RangeSpec::Suffix(n) if n > 0 && len > 0 => {
                let n = n.min(len);
                Outcome::Partial {
                    start: len - n,
                    len: n,
                }
            }
            RangeSpec::Suffix(n) if n > 0 => Outcome::Whole,
            RangeSpec::Several => Outcome::Whole,
            _ => Outcome::Unsatisfiable,
        }
    }
}

/// The validator of an `If-Range` field (§13.1.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfRange {
    /// A strong entity-tag, with its quotes.
    Tag(Box<[u8]>),
    /// An HTTP-date, in seconds since the epoch.
    Date(u64),
    /// A weak entity-tag or anything unparsable: never current.
    Stale,
}

/// What a file request's conditional and range fields ask, parsed by the handler
/// (owned: the request's bytes are gone when the file has been opened).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conditions {
    /// The `If-Match` field values joined with commas.
    if_match: Option<Box<[u8]>>,
    /// A valid `If-Unmodified-Since` date (seconds since the epoch); an invalid
    /// or repeated field is ignored (§13.1.4).
    if_unmodified_since: Option<u64>,
    /// The `If-None-Match` field values joined with commas.
    if_none_match: Option<Box<[u8]>>,
    /// A valid `If-Modified-Since` date (seconds since the epoch); an invalid or
    /// repeated field is ignored (§13.1.3).
    if_modified_since: Option<u64>,
    /// A `Range` field not to be ignored.
    range: Option<RangeSpec>,
    if_range: Option<IfRange>,
}

/// The response a file request gets once the file's metadata is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 200: the whole representation.
    Whole,
    /// 206: `len` bytes from `start`.
    Partial { start: u64, len: u64 },
    /// 304: the client's copy is current; no body.
    NotModified,
    /// 416: the range cannot be satisfied; `Content-Range: bytes */LEN`.
    Unsatisfiable,
    /// 412: an `If-Match` or `If-Unmodified-Since` precondition is false.
    PreconditionFailed,
}

impl Conditions {
    /// The conditions of a GET or HEAD for a file, from its fields; `None` when it
    /// has none (most requests). Single-valued fields sent more than once are
    /// ignored as invalid.
    pub fn from_request(req: &Request<'_>) -> Option<Box<Conditions>> {
        let joined = |name| {
            let values: Vec<&[u8]> = req.headers(name).collect();
            (!values.is_empty()).then(|| values.join(&b',').into_boxed_slice())
        };
        let if_match = joined("if-match");
        let if_unmodified_since = single(req, "if-unmodified-since").and_then(http_date_secs);
        let if_none_match = joined("if-none-match");
        let if_modified_since = single(req, "if-modified-since").and_then(http_date_secs);
        let range = single(req, "range").and_then(parse_range);
        let if_range = match req.headers("if-range").count() {
            0 => None,
            1 => single(req, "if-range").map(parse_if_range),
            _ => Some(IfRange::Stale),
        };
        let c = Conditions {
            if_match,
            if_unmodified_since,
            if_none_match,
            if_modified_since,
            range,
            if_range,
        };
        (c != Conditions::default()).then(|| Box::new(c))
    }

    /// RFC 9110 §13.2.2, for GET and HEAD (the only methods a file answers):
    /// `If-Match` first (no tag equal by strong comparison: 412); only without
    /// it, `If-Unmodified-Since` (modified since: 412); then `If-None-Match` (a
    /// match, by weak comparison, is a 304); only without it,
    /// `If-Modified-Since` (not modified since: 304); then `Range`, unless an
    /// `If-Range` validator is not current (then the whole file).
    pub fn evaluate(&self, meta: &FileMeta, etag: &ETag) -> Outcome {
        match (&self.if_match, self.if_unmodified_since) {
            (Some(list), _) if !match_hits(list, etag.as_bytes()) => {
                return Outcome::PreconditionFailed
            }
            // Without a Last-Modified the file cannot be shown unmodified.
            (None, Some(since)) if last_modified_secs(meta).is_none_or(|m| m > since) => {
                return Outcome::PreconditionFailed
            }
            _ => {}
        }
        match (&self.if_none_match, self.if_modified_since) {
            (Some(list), _) if none_match_hits(list, etag.as_bytes()) => {
                return Outcome::NotModified
            }
            (None, Some(since)) if last_modified_secs(meta).is_some_and(|m| m <= since) => {
                return Outcome::NotModified
            }
            _ => {}
        }
        let Some(range) = self.range else {
            return Outcome::Whole;
        };
        let current = match &self.if_range {
            None => true,
            Some(IfRange::Tag(t)) => **t == *etag.as_bytes(),
            Some(IfRange::Date(d)) => last_modified_secs(meta) == Some(*d),
            Some(IfRange::Stale) => false,
        };
        if current {
            range.satisfy(meta.size)
        } else {
            Outcome::Whole
        }
    }
}

/// The value of a field that must appear once (`None`: absent, or repeated).
fn single<'a>(req: &Request<'a>, name: &'a str) -> Option<&'a [u8]> {
    let mut values = req.headers(name);
    let v = values.next()?;
    values.next().is_none().then_some(v)
}

/// An HTTP-date in any of the three formats a recipient accepts (§5.6.7), as
/// seconds since the epoch.
fn http_date_secs(v: &[u8]) -> Option<u64> {
    let t = httpdate::parse_http_date(std::str::from_utf8(v).ok()?).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

fn parse_if_range(v: &[u8]) -> IfRange {
    if v.first() == Some(&b'"') {
        return match entity_tag(v) {
            Some((tag, [])) => IfRange::Tag(tag.into()),
            _ => IfRange::Stale,
        };
    }
    http_date_secs(v).map_or(IfRange::Stale, IfRange::Date)
}

/// One `opaque-tag` (`"..."`, quotes included) at the start of `v`, and what
/// follows it.
fn entity_tag(v: &[u8]) -> Option<(&[u8], &[u8])> {
    if v.first() != Some(&b'"') {
        return None;
    }
    let end = v[1..].iter().position(|&b| b == b'"')? + 2;
    Some(v.split_at(end))
}

/// Whether an `If-None-Match` list names `etag` (weak comparison, §13.1.2: a
/// `W/` prefix does not matter), or is `*`. A malformed list matches nothing
/// past the point where it goes wrong.
pub fn none_match_hits(list: &[u8], etag: &[u8]) -> bool {
    list_hits(list, etag, true)
}

/// Whether an `If-Match` list names `etag` by strong comparison (§13.1.1: a weak
/// tag in the list never matches; `etag` is always strong), or is `*` (the file
/// exists). A malformed list matches nothing past the point where it goes wrong.
pub fn match_hits(list: &[u8], etag: &[u8]) -> bool {
    list_hits(list, etag, false)
}

fn list_hits(list: &[u8], etag: &[u8], weak: bool) -> bool {
    if trim(list) == b"*" {
        return true;
    }
    let mut rest = list;
    loop {
        let skip = rest
            .iter()
            .position(|&b| !matches!(b, b' ' | b'\t' | b','))
            .unwrap_or(rest.len());
        rest = &rest[skip..];
        if rest.is_empty() {
            return false;
        }
        let is_weak = rest.starts_with(b"W/");
        if is_weak {
            rest = &rest[2..];
        }
        let Some((tag, after)) = entity_tag(rest) else {
            return false;
        };
        if tag == etag && (weak || !is_weak) {
            return true;
        }
        rest = after;
    }
}

/// The last second an IMF-fixdate can name (31 Dec 9999 23:59:59).
const LAST_HTTP_DATE: i64 = 253_402_300_799;

/// The file's modification time in whole seconds, if an HTTP-date can carry it
/// (1970 to 9999; otherwise no `Last-Modified` is sent and no date matches it).
pub fn last_modified_secs(meta: &FileMeta) -> Option<u64> {
    (0..=LAST_HTTP_DATE)
        .contains(&meta.mtime_sec)
        .then_some(meta.mtime_sec as u64)
}

/// The `Last-Modified` value: the IMF-fixdate of the file's modification time.
pub fn last_modified(meta: &FileMeta) -> Option<[u8; DATE_LEN]> {
    let secs = last_modified_secs(meta)?;
    let mut text = [0u8; DATE_LEN];
    let date = httpdate::HttpDate::from(UNIX_EPOCH + Duration::from_secs(secs));
    write!(&mut text[..], "{date}").ok()?;
    Some(text)
}

/// A strong entity-tag for one file (or variant): inode, size and modification
/// time to the nanosecond, in hex, and the coding of a variant, so that no two
/// representations share one. Any write to the file changes its mtime, so a
/// client never sees an old tag on new bytes.
#[derive(Clone, Copy, Debug)]
pub struct ETag {
    buf: [u8; ETAG_MAX],
    len: u8,
}

/// The longest tag: quotes, four hex numbers (16 digits at most, the nanoseconds
/// 8), three separators and a coding's `-br`.
const ETAG_MAX: usize = 2 + 16 * 3 + 8 + 3 + 3;

impl ETag {
    pub fn of(meta: &FileMeta, coding: Option<Coding>) -> ETag {
        let mut buf = [0u8; ETAG_MAX];
        let mut w = &mut buf[..];
        let suffix = match coding {
            None => "",
            Some(Coding::Br) => "-br",
            Some(Coding::Gzip) => "-gz",
        };
        // Fits by construction (ETAG_MAX); a failure would only shorten the tag.
        let _ = write!(
            w,
            "\"{:x}-{:x}-{:x}.{:x}{suffix}\"",
            meta.ino, meta.size, meta.mtime_sec as u64, meta.mtime_nsec
        );
        let len = ETAG_MAX - w.len();
        ETag {
            buf,
            len: len as u8,
        }
    }

    /// The tag with its quotes, as sent.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

/// Append the fields every response from a file carries (200, 206, 304, 416 alike
/// carry `Vary`; the validators go on all but 416), each after a CRLF, for
/// [`crate::http::response::write_head_with`].
pub fn write_fields(
    out: &mut Vec<u8>,
    outcome: Outcome,
    meta: &FileMeta,
    etag: &ETag,
    coding: Option<Coding>,
) {
    let mut num = itoa::Buffer::new();
    if !matches!(
        outcome,
        Outcome::Unsatisfiable | Outcome::PreconditionFailed
    ) {
        if let Some(lm) = last_modified(meta) {
            out.extend_from_slice(b"\r\nLast-Modified: ");
            out.extend_from_slice(&lm);
        }
        out.extend_from_slice(b"\r\nETag: ");
        out.extend_from_slice(etag.as_bytes());
    }
    if matches!(outcome, Outcome::Whole | Outcome::Partial { .. }) {
        out.extend_from_slice(b"\r\nAccept-Ranges: bytes");
        if let Some(c) = coding {
            out.extend_from_slice(b"\r\nContent-Encoding: ");
            out.extend_from_slice(c.token().as_bytes());
        }
    }
    out.extend_from_slice(b"\r\nVary: Accept-Encoding");
    match outcome {
        Outcome::Partial { start, len } => {
            out.extend_from_slice(b"\r\nContent-Range: bytes ");
            out.extend_from_slice(num.format(start).as_bytes());
            out.push(b'-');
            out.extend_from_slice(num.format(start + len - 1).as_bytes());
            out.push(b'/');
            out.extend_from_slice(num.format(meta.size).as_bytes());
        }
        Outcome::Unsatisfiable => {
            out.extend_from_slice(b"\r\nContent-Range: bytes */");
            out.extend_from_slice(num.format(meta.size).as_bytes());
        }
        Outcome::Whole | Outcome::NotModified | Outcome::PreconditionFailed => {}
    }
}

#[cfg(test)]
mod tests;
