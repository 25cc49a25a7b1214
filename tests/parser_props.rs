//! The request parser against a reference, by property tests: gvhttpd's
//! [`HeadScanner`] and [`Chunked`] decoder against `httparse`
//! (`Request::parse`, `parse_chunk_size`, `parse_headers`).
//!
//! Inputs are valid and near-valid request heads and chunked bodies (method and
//! name case, whitespace, separators, limits, chunk framing, obs-fold, bare CR and
//! LF, duplicate and conflicting framing headers) plus byte-level mutations of
//! them, fed whole and in random splits. Properties:
//!
//! 1. gvhttpd's verdict agrees with httparse's: where httparse accepts, gvhttpd
//!    accepts with the same method, target, version and head length, unless the
//!    oracle finds one of the intentional differences listed in
//!    `docs/http-behaviour.md` ("Where gvhttpd and httparse differ"), and then
//!    gvhttpd rejects with a status one of them names; where httparse rejects,
//!    gvhttpd rejects too.
//! 2. The header fields gvhttpd interprets (framing, keep-alive, `Expect`,
//!    `Content-Type`) are what the reference model below computes from httparse's
//!    parsed field list.
//! 3. The verdict is the same however the input is split into reads.
//!
//! Every difference the oracle allows carries a key, and
//! [`every_difference_is_documented`] checks that each key is in the document.
//!
//! The suite runs 1000 cases of each property (`PROPTEST_CASES` sets another
//! number; a few seconds in a debug build); `scripts/fuzz-parser.sh` runs tens of
//! millions in release.

use std::collections::BTreeSet;

use gvhttpd::config::Limits;
use gvhttpd::http::body::Chunked;
use gvhttpd::http::parse::{Framing, Head, HeadScanner, Method, Reject, Scan, Version};
use proptest::prelude::*;
use proptest::sample::Index;

const DOC: &str = include_str!("../docs/http-behaviour.md");

/// Every key the oracle can name, with its status (0: a leniency, not a rejection).
const DIFFERENCES: &[(&str, u16)] = &[
    ("bare-lf", 400),
    ("leading-empty-lines", 400),
    ("version-1x", 0),
    ("version-major", 505),
    ("method-unknown", 501),
    ("method-long", 400),
    ("target-non-ascii", 400),
    ("target-limit", 414),
    ("head-limit", 431),
    ("fields-limit", 431),
    ("host-missing", 400),
    ("host-repeated", 400),
    ("host-invalid", 400),
    ("content-length-invalid", 400),
    ("content-length-repeated", 400),
    ("te-and-cl", 400),
    ("te-http10", 400),
    ("te-not-chunked-last", 400),
    ("te-unknown", 501),
    ("expect-unknown", 417),
    ("chunk-size-empty", 400),
    ("chunk-size-ws", 400),
    ("chunk-ext-grammar", 400),
    ("chunk-body-limit", 413),
    ("chunk-meta-limit", 431),
    ("trailer-bare-lf", 400),
    ("trailer-not-field-line", 0),
    ("line-at-lf", 0),
    ("split-limit-first", 0),
];

fn status_of(key: &str) -> u16 {
    DIFFERENCES
        .iter()
        .find(|d| d.0 == key)
        .unwrap_or_else(|| panic!("oracle key {key} is not in DIFFERENCES"))
        .1
}

#[test]
fn every_difference_is_documented() {
    let section = &DOC[DOC
        .find("## Where gvhttpd and httparse differ")
        .expect("a section listing the differences from httparse")..];
    for (key, _) in DIFFERENCES {
        assert!(
            section.contains(&format!("`{key}`")),
            "difference `{key}` is not listed in docs/http-behaviour.md"
        );
    }
}

// ---------------------------------------------------------------------------
// The system under test, fed whole or in pieces.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Partial,
    Complete(Head),
    Reject(Reject),
}

fn scan_whole(input: &[u8], limits: &Limits) -> Verdict {
    match HeadScanner::default().scan(input, limits) {
        Ok(Scan::Partial) => Verdict::Partial,
        Ok(Scan::Complete(h)) => Verdict::Complete(h),
        Err(r) => Verdict::Reject(r),
    }
}

/// As the connection does: one scanner, called on the growing buffer after each
/// read, until it completes or rejects.
fn scan_split(input: &[u8], cuts: &[usize], limits: &Limits) -> Verdict {
    let mut s = HeadScanner::default();
    for end in read_ends(input, cuts) {
        if end == 0 {
            continue;
        }
        match s.scan(&input[..end], limits) {
            Ok(Scan::Partial) => {}
            Ok(Scan::Complete(h)) => return Verdict::Complete(h),
            Err(r) => return Verdict::Reject(r),
        }
    }
    Verdict::Partial
}

// ---------------------------------------------------------------------------
// The oracle: httparse, plus the reference model of what gvhttpd adds to it.

/// What gvhttpd must answer for an input.
#[derive(Debug)]
enum Expect {
    /// httparse accepted and nothing stricter applies: gvhttpd accepts with these.
    Accept(Expected),
    /// gvhttpd rejects with one of these statuses (`keys` say why).
    Reject {
        statuses: BTreeSet<u16>,
        keys: Vec<&'static str>,
    },
    /// httparse needs more bytes: gvhttpd waits, or rejects for one of these.
    Partial {
        statuses: BTreeSet<u16>,
        keys: Vec<&'static str>,
    },
}

#[derive(Debug)]
struct Expected {
    method: Method,
    target: Vec<u8>,
    version: Version,
    /// Head length, leading empty lines included (where the body starts).
    len: usize,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
    content_type: Option<Vec<u8>>,
}

const KNOWN_METHODS: &[(&str, Method)] = &[
    ("GET", Method::Get),
    ("HEAD", Method::Head),
    ("POST", Method::Post),
    ("PUT", Method::Put),
    ("DELETE", Method::Delete),
    ("OPTIONS", Method::Options),
    ("PATCH", Method::Patch),
    ("TRACE", Method::Trace),
    ("CONNECT", Method::Connect),
];

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim(v: &[u8]) -> &[u8] {
    let s = v.iter().position(|&b| b != b' ' && b != b'\t');
    let Some(s) = s else { return &[] };
    let e = v.iter().rposition(|&b| b != b' ' && b != b'\t').unwrap();
    &v[s..=e]
}

/// Host = uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2), written out
/// independently of gvhttpd's: reg-name / IPv4 chars, or an IP-literal of hex
/// digits, `.`, `:` and `v`.
fn reference_valid_host(v: &[u8]) -> bool {
    let reg = |b: u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b);
    let rest = if let Some(lit) = v.strip_prefix(b"[") {
        let Some(close) = lit.iter().position(|&b| b == b']') else {
            return false;
        };
        let inner = &lit[..close];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b".:vV".contains(&b))
        {
            return false;
        }
        &lit[close + 1..]
    } else {
        let n = v.iter().take_while(|&&b| reg(b)).count();
        &v[n..]
    };
    match rest {
        [] => true,
        [b':', port @ ..] => port.len() <= 5 && port.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// The request line's parts, split at single spaces: (method, target, version).
fn split_request_line(line: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// Keys for the bytes gvhttpd judges line by line, over the complete lines
/// present (all of them, or up to the blank line): line endings, leading empty
/// lines, the request line, limits. `head_end`: the offset just past the blank line,
/// if any.
fn line_level(input: &[u8], limits: &Limits, keys: &mut Vec<&'static str>) -> Option<usize> {
    // Leading empty lines.
    let mut at = 0;
    let mut empties = 0;
    loop {
        match &input[at..] {
            [b'\r', b'\n', ..] => {
                at += 2;
                empties += 1;
            }
            [b'\n', ..] => {
                keys.push("bare-lf");
                at += 1;
                empties += 1;
            }
            _ => break,
        }
    }
    if empties > 8 {
        keys.push("leading-empty-lines");
    }
    let start = at;
    let mut line_no = 0;
    let mut head_end = None;
    let mut fields = 0;
    while let Some(lf) = input[at..].iter().position(|&b| b == b'\n') {
        let end = at + lf;
        let crlf = end > at && input[end - 1] == b'\r';
        if !crlf {
            keys.push("bare-lf");
        }
        let line = &input[at..if crlf { end - 1 } else { end }];
        if line_no == 0 {
            request_line_level(line, limits, keys);
        } else if line.is_empty() {
            head_end = Some(end + 1);
        } else {
            fields += 1;
        }
        if end + 1 - start > limits.max_head + 2 {
            keys.push("head-limit");
        }
        at = end + 1;
        line_no += 1;
        if head_end.is_some() {
            break;
        }
    }
    if fields > limits.max_headers {
        keys.push("fields-limit");
    }
    if head_end.is_none() {
        if input.len() - start > limits.max_head {
            keys.push("head-limit");
        }
        if line_no == 0 {
            // The request line is not complete: what its start shows.
            let line = &input[start..];
            let m = line.iter().take_while(|&&b| is_tchar(b)).count();
            if m > 32 {
                keys.push("method-long");
            }
            if let Some(sp) = line.iter().position(|&b| b == b' ') {
                let t = &line[sp + 1..];
                let tl = t.iter().position(|&b| b == b' ').unwrap_or(t.len());
                if tl > limits.max_target {
                    keys.push("target-limit");
                }
                if t[..tl].iter().any(|&b| b >= 0x80) {
                    keys.push("target-non-ascii");
                }
            }
        }
    }
    head_end
}

fn request_line_level(line: &[u8], limits: &Limits, keys: &mut Vec<&'static str>) {
    let m = line.iter().take_while(|&&b| is_tchar(b)).count();
    if m > 32 {
        keys.push("method-long");
    }
    // The target runs from the first SP over visible ASCII, whatever follows it.
    if let Some(sp) = line.iter().position(|&b| b == b' ') {
        let t = line[sp + 1..]
            .iter()
            .take_while(|&&b| (0x21..0x7f).contains(&b))
            .count();
        if t > limits.max_target {
            keys.push("target-limit");
        }
    }
    let Some((method, target, version)) = split_request_line(line) else {
        return;
    };
    if target.iter().any(|&b| b >= 0x80) {
        keys.push("target-non-ascii");
    }
    if let [b'H', b'T', b'T', b'P', b'/', major @ b'0'..=b'9', b'.', b'0'..=b'9'] = version {
        if *major != b'1' {
            keys.push("version-major");
        }
    }
    if !method.is_empty()
        && method.iter().all(|&b| is_tchar(b))
        && !KNOWN_METHODS.iter().any(|k| k.0.as_bytes() == method)
    {
        keys.push("method-unknown");
    }
}

/// gvhttpd serves `HTTP/1.x` for any digit x as 1.1 (RFC 9110 §2.5); httparse
/// knows only 1.0 and 1.1. Give httparse `HTTP/1.1` in its place (same length).
fn rewrite_version(input: &[u8]) -> (Vec<u8>, bool) {
    let mut out = input.to_vec();
    let start = input
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(input.len());
    let Some(lf) = input[start..].iter().position(|&b| b == b'\n') else {
        return (out, false);
    };
    let line_end = start + lf - usize::from(lf > 0 && input[start + lf - 1] == b'\r');
    let line = &input[start..line_end];
    // (The version is the line's last eight bytes: its minor digit is the last.)
    if let Some((_, _, [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'2'..=b'9'])) =
        split_request_line(line)
    {
        out[line_end - 1] = b'1';
        return (out, true);
    }
    (out, false)
}

/// The fields gvhttpd interprets, from httparse's field list (RFC 9110/9112 as
/// `http-behaviour.md` cases 9-10, 20-25, 31 decide them).
fn semantics(
    headers: &[httparse::Header<'_>],
    version: Version,
    keys: &mut Vec<&'static str>,
) -> (Framing, bool, bool, Option<Vec<u8>>) {
    let mut hosts = 0;
    let mut cl: Option<u64> = None;
    let mut te: Vec<Vec<u8>> = Vec::new();
    let mut te_seen = false;
    let (mut close, mut ka, mut cont, mut ct) = (false, false, false, None);
    for h in headers {
        let v = h.value;
        let name = h.name.to_ascii_lowercase();
        match name.as_str() {
            "host" => {
                hosts += 1;
                if hosts > 1 {
                    keys.push("host-repeated");
                }
                if !reference_valid_host(v) {
                    keys.push("host-invalid");
                }
            }
            "content-length" => {
                if cl.is_some() {
                    keys.push("content-length-repeated");
                }
                let parsed = if !v.is_empty() && v.iter().all(u8::is_ascii_digit) {
                    std::str::from_utf8(v).unwrap().parse::<u64>().ok()
                } else {
                    None
                };
                match parsed {
                    Some(n) => cl = Some(n),
                    None => {
                        keys.push("content-length-invalid");
                        cl = Some(0);
                    }
                }
            }
            "transfer-encoding" => {
                te_seen = true;
                for c in v.split(|&b| b == b',').map(trim).filter(|c| !c.is_empty()) {
                    if !c.iter().all(|&b| is_tchar(b)) {
                        keys.push("te-not-chunked-last");
                    }
                    te.push(c.to_ascii_lowercase());
                }
            }
            "connection" => {
                for t in v.split(|&b| b == b',').map(trim) {
                    close |= t.eq_ignore_ascii_case(b"close");
                    ka |= t.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            "expect" => {
                if v.eq_ignore_ascii_case(b"100-continue") {
                    cont = true;
                } else {
                    keys.push("expect-unknown");
                }
            }
            "content-type" => ct = Some(v.to_vec()),
            _ => {}
        }
    }
    if version == Version::Http11 && hosts == 0 {
        keys.push("host-missing");
    }
    let framing = if te_seen {
        if version == Version::Http10 {
            keys.push("te-http10");
        }
        if cl.is_some() {
            keys.push("te-and-cl");
        }
        let chunked: Vec<usize> = (0..te.len()).filter(|&i| te[i] == b"chunked").collect();
        if te.last().map(Vec::as_slice) != Some(b"chunked") || chunked.len() > 1 {
            keys.push("te-not-chunked-last");
        }
        if te.iter().any(|c| c != b"chunked") {
            keys.push("te-unknown");
        }
        Framing::Chunked
    } else {
        match cl {
            None | Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
        }
    };
    let keep_alive = match version {
        Version::Http11 => !close,
        Version::Http10 => ka && !close,
    };
    (framing, keep_alive, cont && version == Version::Http11, ct)
}

fn statuses(keys: &[&'static str]) -> BTreeSet<u16> {
    keys.iter()
        .map(|k| status_of(k))
        .filter(|&s| s != 0)
        .collect()
}

fn oracle(input: &[u8], limits: &Limits) -> Expect {
    oracle_at(input, limits, true)
}

/// `close`: when httparse needs more, also judge the complete lines so far as if
/// the head ended after them (once: not again for that closed head).
fn oracle_at(input: &[u8], limits: &Limits, close: bool) -> Expect {
    let mut keys = Vec::new();
    line_level(input, limits, &mut keys);
    let (rewritten, lenient_version) = rewrite_version(input);
    let mut headers = vec![httparse::EMPTY_HEADER; 256];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&rewritten) {
        Ok(httparse::Status::Complete(n)) => {
            let version = if req.version == Some(0) {
                Version::Http10
            } else {
                Version::Http11
            };
            let (framing, keep_alive, expect_continue, content_type) =
                semantics(req.headers, version, &mut keys);
            if lenient_version {
                keys.push("version-1x");
            }
            let method = KNOWN_METHODS
                .iter()
                .find(|k| k.0 == req.method.unwrap())
                .map(|k| k.1);
            let st = statuses(&keys);
            if !st.is_empty() {
                return Expect::Reject { statuses: st, keys };
            }
            Expect::Accept(Expected {
                method: method.expect("an unknown method is a key"),
                target: req.path.unwrap().as_bytes().to_vec(),
                version,
                len: n,
                framing,
                keep_alive,
                expect_continue,
                content_type,
            })
        }
        Ok(httparse::Status::Partial) => {
            // gvhttpd judges each field line as it arrives: what the complete
            // lines so far would be rejected for, were the head to end here.
            let mut st = statuses(&keys);
            if let Some(lf) = input.iter().rposition(|&b| b == b'\n').filter(|_| close) {
                let mut closed = input[..=lf].to_vec();
                closed.extend_from_slice(b"\r\n");
                if let Expect::Reject { statuses, keys: k } = oracle_at(&closed, limits, false) {
                    st.extend(statuses);
                    keys.extend(k);
                }
            }
            Expect::Partial { statuses: st, keys }
        }
        Err(e) => {
            let mut st = statuses(&keys);
            st.insert(400);
            keys.push(match e {
                httparse::Error::Version => "(httparse: version)",
                httparse::Error::NewLine => "(httparse: new line)",
                httparse::Error::HeaderName => "(httparse: header name)",
                httparse::Error::HeaderValue => "(httparse: header value)",
                httparse::Error::Token => "(httparse: token)",
                _ => "(httparse: other)",
            });
            Expect::Reject { statuses: st, keys }
        }
    }
}

fn check_head(input: &[u8], cuts: &[usize], limits: &Limits) -> Result<(), TestCaseError> {
    let whole = scan_whole(input, limits);
    let split = scan_split(input, cuts, limits);
    match (&whole, &split) {
        // `split-limit-first`: a head both over a size limit and malformed may be
        // refused for either, depending on where the reads end.
        (Verdict::Reject(a), Verdict::Reject(b))
            if a != b && [a.status, b.status].iter().any(|s| [414, 431].contains(s)) => {}
        _ => prop_assert_eq!(
            &split,
            &whole,
            "the verdict depends on the split {:?}",
            cuts
        ),
    }
    match (oracle(input, limits), &whole) {
        (Expect::Accept(e), Verdict::Complete(h)) => {
            prop_assert_eq!(h.method, e.method);
            prop_assert_eq!(&input[h.target.clone()], &e.target[..]);
            prop_assert_eq!(h.version, e.version);
            prop_assert_eq!(h.len, e.len, "head length");
            prop_assert_eq!(h.framing, e.framing);
            prop_assert_eq!(h.keep_alive, e.keep_alive);
            prop_assert_eq!(h.expect_continue, e.expect_continue);
            let ct = h.content_type.clone().map(|r| input[r].to_vec());
            prop_assert_eq!(ct, e.content_type);
        }
        (Expect::Reject { statuses, keys }, Verdict::Reject(r)) => {
            prop_assert!(
                statuses.contains(&r.status),
                "gvhttpd rejected with {:?}, the oracle allows {:?} ({:?})",
                r,
                statuses,
                keys
            );
        }
        (Expect::Partial { .. }, Verdict::Partial) => {}
        (Expect::Reject { .. }, Verdict::Partial) => {
            // `line-at-lf`: gvhttpd judges a line when its LF arrives, where
            // httparse rejects at the first bad byte. It must reject once the
            // line ends.
            let mut more = input.to_vec();
            more.extend_from_slice(b"\r\n\r\n");
            let got = scan_whole(&more, limits);
            let Expect::Reject { statuses, keys } = oracle(&more, limits) else {
                return Err(TestCaseError::fail(
                    "httparse accepted more of what it rejected",
                ));
            };
            match got {
                Verdict::Reject(r) => prop_assert!(
                    statuses.contains(&r.status),
                    "once the line ended, gvhttpd rejected with {:?}; the oracle allows {:?} ({:?})",
                    r,
                    statuses,
                    keys
                ),
                v => {
                    return Err(TestCaseError::fail(format!(
                        "httparse rejects; gvhttpd waited, and then, with the line ended, said {v:?}"
                    )))
                }
            }
        }
        (Expect::Partial { statuses, keys }, Verdict::Reject(r)) => {
            prop_assert!(
                statuses.contains(&r.status),
                "gvhttpd rejected an incomplete head with {:?}; the oracle allows waiting or {:?} ({:?})",
                r,
                statuses,
                keys
            );
        }
        (e, v) => {
            return Err(TestCaseError::fail(format!(
                "oracle: {e:?}\ngvhttpd: {v:?}"
            )))
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Generators.

fn pick(choices: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(choices).prop_map(<[u8]>::to_vec)
}

/// Mostly CRLF; now and then a bare LF, a bare CR, or CR CR LF.
fn eol() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        40 => Just(b"\r\n".to_vec()),
        1 => Just(b"\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b"\r\r\n".to_vec()),
    ]
}

fn ows() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => Just(b"".to_vec()),
        6 => Just(b" ".to_vec()),
        1 => Just(b"\t".to_vec()),
        1 => Just(b"  \t ".to_vec()),
    ]
}

fn token(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(b"ABCXYZabcxyz0189!#$%&'*+-.^_`|~".to_vec()),
        1..=max,
    )
}

/// Any byte, weighted towards the interesting ones.
fn odd_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(b' '),
        Just(b'\t'),
        Just(b'\r'),
        Just(b'\n'),
        Just(0u8),
        Just(0x0b),
        Just(0x7f),
        Just(0x80),
        Just(0xff),
        Just(b':'),
        Just(b','),
        Just(b';'),
        Just(b'"'),
        Just(b'('),
        Just(b'@'),
        Just(b'/'),
        any::<u8>(),
    ]
}

fn method() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        20 => pick(&[b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE", b"CONNECT"]),
        2 => pick(&[b"get", b"Get", b"FOO", b"G(T", b"PRI", b""]),
        2 => token(40),
    ]
}

fn target(limits: Limits) -> impl Strategy<Value = Vec<u8>> {
    let near = (limits.max_target.saturating_sub(2)..=limits.max_target + 2).prop_map(|n| {
        let mut t = vec![b'a'; n];
        t[0] = b'/';
        t
    });
    prop_oneof![
        10 => pick(&[b"/", b"/index.html", b"*", b"http://h/p", b"/a?b=c&d=%20", b"/x/../y"]),
        4 => "/[a-zA-Z0-9._~%/?=&:@!$'()*+,;-]{0,30}".prop_map(String::into_bytes),
        1 => near,
        2 => ("/[a-z]{0,5}", odd_byte(), "[a-z]{0,5}").prop_map(|(a, b, c)| {
            let mut t = a.into_bytes();
            t.push(b);
            t.extend(c.into_bytes());
            t
        }),
        1 => Just(b"/caf\xc3\xa9".to_vec()),
    ]
}

fn version() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        20 => Just(b"HTTP/1.1".to_vec()),
        6 => Just(b"HTTP/1.0".to_vec()),
        3 => pick(&[b"HTTP/1.2", b"HTTP/1.9", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/3.0"]),
        2 => pick(&[b"http/1.1", b"HTTP/1", b"HTTP/1.10", b"HTTP/1.1 ", b"HTTP/11", b"HTTP/1,1", b""]),
    ]
}

fn field_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => pick(&[b"Host", b"host", b"HOST"]),
        4 => pick(&[b"Content-Length", b"content-length", b"CONTENT-LENGTH"]),
        4 => pick(&[b"Transfer-Encoding", b"transfer-encoding"]),
        3 => pick(&[b"Connection", b"connection"]),
        2 => pick(&[b"Expect", b"Content-Type", b"content-type"]),
        4 => pick(&[b"X-Foo", b"Accept", b"User-Agent", b"Cookie"]),
        2 => token(16),
        1 => pick(&[b"", b"Bad(Name", b"A B", b"X\x00", b"Host\x0b", b"\xc3\xa9"]),
    ]
}

fn field_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => pick(&[b"a", b"example.com:80", b"[::1]:8080", b"a b", b"a/b", b"user@h", b"", b"h:123456", b"h:8x", b"[v1.x]"]),
        4 => pick(&[b"0", b"5", b"10", b"abc", b"+5", b"-1", b"0x5", b"5 5", b"5, 5", b"5,", b"99999999999999999999999", b"18446744073709551615", b"007"]),
        4 => pick(&[b"chunked", b"Chunked", b"gzip, chunked", b"chunked, gzip", b"chunked, chunked", b"\x0bchunked", b"identity", b",", b"chunked,", b" , chunked", b"chu nked"]),
        3 => pick(&[b"close", b"keep-alive", b"Keep-Alive, Upgrade", b"upgrade", b"close, keep-alive"]),
        2 => pick(&[b"100-continue", b"100-Continue", b"foo", b"text/plain; charset=utf-8"]),
        3 => "[ -~]{0,20}".prop_map(String::into_bytes),
        2 => ("[a-z]{0,4}", odd_byte(), "[a-z]{0,4}").prop_map(|(a, b, c)| {
            let mut v = a.into_bytes();
            v.push(b);
            v.extend(c.into_bytes());
            v
        }),
    ]
}

#[derive(Debug, Clone)]
struct FieldSpec {
    /// Before the name: empty, or SP / HTAB (obs-fold, or whitespace before the
    /// first field line).
    lead: Vec<u8>,
    name: Vec<u8>,
    /// Between the name and the colon (a MUST-reject when not empty).
    before_colon: Vec<u8>,
    colon: bool,
    ows1: Vec<u8>,
    value: Vec<u8>,
    ows2: Vec<u8>,
    eol: Vec<u8>,
}

fn field() -> impl Strategy<Value = FieldSpec> {
    (
        prop_oneof![40 => Just(b"".to_vec()), 1 => Just(b" ".to_vec()), 1 => Just(b"\t".to_vec())],
        field_name(),
        prop_oneof![40 => Just(b"".to_vec()), 1 => Just(b" ".to_vec()), 1 => Just(b"\t".to_vec())],
        prop::bool::weighted(0.97),
        ows(),
        field_value(),
        ows(),
        eol(),
    )
        .prop_map(
            |(lead, name, before_colon, colon, ows1, value, ows2, eol)| FieldSpec {
                lead,
                name,
                before_colon,
                colon,
                ows1,
                value,
                ows2,
                eol,
            },
        )
}

#[derive(Debug, Clone)]
struct HeadSpec {
    leading: Vec<Vec<u8>>,
    method: Vec<u8>,
    sp1: Vec<u8>,
    target: Vec<u8>,
    sp2: Vec<u8>,
    version: Vec<u8>,
    eol: Vec<u8>,
    /// A `Host: a` first (most requests have one).
    host: bool,
    fields: Vec<FieldSpec>,
    /// Pad the head to `max_head + pad` octets with a filler field, if it fits.
    pad: Option<i64>,
    end: Vec<u8>,
    /// Bytes after the head (a body, or the next request).
    tail: Vec<u8>,
}

fn sep() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        40 => Just(b" ".to_vec()),
        1 => Just(b"  ".to_vec()),
        1 => Just(b"\t".to_vec()),
        1 => Just(b"".to_vec()),
    ]
}

fn head(limits: Limits) -> impl Strategy<Value = HeadSpec> {
    (
        prop_oneof![
            20 => Just(vec![]),
            2 => prop::collection::vec(Just(b"\r\n".to_vec()), 1..=10),
            1 => prop::collection::vec(pick(&[b"\r\n", b"\n"]), 1..=3),
        ],
        (method(), sep(), target(limits), sep(), version(), eol()),
        prop::bool::weighted(0.9),
        prop::collection::vec(field(), 0..=(limits.max_headers + 2).min(12)),
        prop_oneof![6 => Just(None), 1 => (-3i64..=3).prop_map(Some)],
        eol(),
        pick(&[b"", b"hello", b"GET / HTTP/1.1\r\n", b"0\r\n\r\n"]),
    )
        .prop_map(
            move |(
                leading,
                (method, sp1, target, sp2, version, eol),
                host,
                fields,
                pad,
                end,
                tail,
            )| {
                HeadSpec {
                    leading,
                    method,
                    sp1,
                    target,
                    sp2,
                    version,
                    eol,
                    host,
                    fields,
                    pad,
                    end,
                    tail,
                }
            },
        )
}

impl HeadSpec {
    fn bytes(&self, limits: &Limits) -> Vec<u8> {
        let mut out: Vec<u8> = self.leading.concat();
        let skipped = out.len();
        for part in [
            &self.method,
            &self.sp1,
            &self.target,
            &self.sp2,
            &self.version,
            &self.eol,
        ] {
            out.extend_from_slice(part);
        }
        if self.host {
            out.extend_from_slice(b"Host: a\r\n");
        }
        for f in &self.fields {
            for part in [&f.lead, &f.name, &f.before_colon] {
                out.extend_from_slice(part);
            }
            if f.colon {
                out.push(b':');
            }
            for part in [&f.ows1, &f.value, &f.ows2, &f.eol] {
                out.extend_from_slice(part);
            }
        }
        if let Some(pad) = self.pad {
            // `X: <filler>\r\n` so that the head without its blank line is
            // `max_head + pad` octets.
            let want = limits.max_head as i64 + pad;
            let have = (out.len() - skipped) as i64 + 5;
            if want > have {
                out.extend_from_slice(b"X: ");
                out.extend(std::iter::repeat_n(b'f', (want - have) as usize));
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(&self.end);
        out.extend_from_slice(&self.tail);
        out
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(Index, u8),
    Delete(Index),
    Replace(Index, u8),
    Duplicate(Index, Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), odd_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Delete),
        (any::<Index>(), odd_byte()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Duplicate(a, b)),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut v: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        if v.is_empty() {
            break;
        }
        match m {
            Mutation::Insert(i, b) => {
                let at = i.index(v.len() + 1);
                v.insert(at, *b);
            }
            Mutation::Delete(i) => {
                v.remove(i.index(v.len()));
            }
            Mutation::Replace(i, b) => {
                let at = i.index(v.len());
                v[at] = *b;
            }
            Mutation::Duplicate(a, b) => {
                // Repeat a line (a second Host, Content-Length, ...).
                let lines: Vec<usize> = std::iter::once(0)
                    .chain(
                        v.iter()
                            .enumerate()
                            .filter(|c| *c.1 == b'\n')
                            .map(|c| c.0 + 1),
                    )
                    .filter(|&s| s < v.len())
                    .collect();
                let from = lines[a.index(lines.len())];
                let to = v[from..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(v.len(), |p| from + p + 1);
                let line = v[from..to].to_vec();
                let at = lines[b.index(lines.len())];
                v.splice(at..at, line);
            }
            Mutation::Truncate(i) => v.truncate(i.index(v.len())),
        }
    }
    v
}

/// Generated bytes, shown escaped when a case fails.
#[derive(Clone)]
struct Bytes(Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

fn limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        Just(Limits::default()),
        Just(Limits {
            max_target: 24,
            max_headers: 5,
            max_head: 160,
            max_body: 64,
        }),
    ]
}

fn heads() -> impl Strategy<Value = (Limits, Bytes)> {
    limits().prop_flat_map(|l| (Just(l), head(l).prop_map(move |h| Bytes(h.bytes(&l)))))
}

/// A cut at or above this counts from the input's end: `FROM_END + k` is `k`
/// bytes before it (where a head of the largest size ends).
const FROM_END: usize = 1 << 20;

/// Where reads end: offsets into the input (or from its end, see [`FROM_END`]).
fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        Just(vec![]),
        prop::collection::vec(0usize..400, 1..6),
        // Byte by byte over the first bytes.
        Just((1..80).collect()),
        // The last bytes in reads of their own.
        prop::collection::vec(FROM_END..FROM_END + 4, 1..3),
    ]
}

/// `cuts` as offsets into `input`, ascending, with its end.
fn read_ends(input: &[u8], cuts: &[usize]) -> Vec<usize> {
    let mut ends: Vec<usize> = cuts
        .iter()
        .map(|&c| {
            if c >= FROM_END {
                input.len().saturating_sub(c - FROM_END)
            } else {
                c.min(input.len())
            }
        })
        .collect();
    ends.push(input.len());
    ends.sort_unstable();
    ends.dedup();
    ends
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(1000),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn heads_agree_with_httparse((l, input) in heads(), cuts in cuts()) {
        check_head(&input.0, &cuts, &l)?;
    }

    #[test]
    fn mutated_heads_agree_with_httparse(
        (l, input) in heads().prop_flat_map(|(l, b)| {
            (Just(l), prop::collection::vec(mutation(), 1..=3).prop_map(move |m| Bytes(mutate(b.0.clone(), &m))))
        }),
        cuts in cuts(),
    ) {
        check_head(&input.0, &cuts, &l)?;
    }
}

// ---------------------------------------------------------------------------
// Chunked bodies: gvhttpd's decoder against `httparse::parse_chunk_size` (and
// `parse_headers` for the trailer section), plus the stricter rules above.

#[derive(Debug, Clone, PartialEq, Eq)]
enum BodyVerdict {
    Partial,
    /// The decoded body and the bytes the framing took.
    Done(Vec<u8>, usize),
    Reject(u16),
}

/// gvhttpd's decoder over `input` arriving in pieces ending at `cuts`.
fn decode_split(input: &[u8], cuts: &[usize], limits: &Limits) -> BodyVerdict {
    let mut buf = Vec::new();
    let (mut read, mut write) = (0, 0);
    let mut dec = Chunked::default();
    for end in read_ends(input, cuts) {
        buf.extend_from_slice(&input[buf.len()..end]);
        match dec.decode(&mut buf, &mut read, &mut write, limits) {
            Ok(true) => return BodyVerdict::Done(buf[..write].to_vec(), read),
            Ok(false) => {}
            Err(r) => return BodyVerdict::Reject(r.status),
        }
    }
    BodyVerdict::Partial
}

/// `*( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )`, BWS = *( SP / HTAB ).
fn reference_ext(mut e: &[u8]) -> bool {
    fn ws(e: &mut &[u8]) {
        while let [b' ' | b'\t', rest @ ..] = e {
            *e = rest;
        }
    }
    fn token(e: &mut &[u8]) -> bool {
        let n = e.iter().take_while(|&&b| is_tchar(b)).count();
        *e = &e[n..];
        n > 0
    }
    loop {
        ws(&mut e);
        if e.is_empty() {
            return true;
        }
        let [b';', rest @ ..] = e else { return false };
        e = rest;
        ws(&mut e);
        if !token(&mut e) {
            return false;
        }
        let save = e;
        ws(&mut e);
        if let [b'=', rest @ ..] = e {
            e = rest;
            ws(&mut e);
            if let [b'"', rest @ ..] = e {
                e = rest;
                loop {
                    match e {
                        [b'"', rest @ ..] => {
                            e = rest;
                            break;
                        }
                        [b'\\', c, rest @ ..]
                            if *c == b'\t' || (0x20..=0x7e).contains(c) || *c >= 0x80 =>
                        {
                            e = rest
                        }
                        [c, rest @ ..]
                            if *c == b'\t'
                                || (*c >= 0x20 && *c != 0x7f && *c != b'"' && *c != b'\\') =>
                        {
                            e = rest
                        }
                        _ => return false,
                    }
                }
            } else if !token(&mut e) {
                return false;
            }
        } else {
            e = save;
        }
    }
}

/// What gvhttpd may already have rejected a size line for, from its first bytes
/// (`line`, up to its LF at most): it judges the size when the first byte after
/// the digits arrives, and extensions byte by byte.
fn size_line_prefix(
    line: &[u8],
    total: u64,
    meta: usize,
    limits: &Limits,
    keys: &mut Vec<&'static str>,
) {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits > 0 && digits < line.len() && digits <= 16 {
        let size = u64::from_str_radix(std::str::from_utf8(&line[..digits]).unwrap(), 16).unwrap();
        if total.saturating_add(size) > limits.max_body as u64 {
            keys.push("chunk-body-limit");
        }
    }
    let semi = line.iter().position(|&b| b == b';');
    if let Some(s) = semi {
        if line.len() - s - 1 + meta > limits.max_head {
            keys.push("chunk-meta-limit");
        }
        if !reference_ext(&line[s..]) {
            // (As far as it goes: an unfinished extension may be fine.)
            keys.push("chunk-ext-grammar");
        }
    }
    if digits == 0 && !line.is_empty() {
        keys.push("chunk-size-empty");
    }
    if line[digits..].iter().any(|&b| b == b' ' || b == b'\t') && semi.is_none() {
        keys.push("chunk-size-ws");
    }
}

fn chunk_oracle(input: &[u8], limits: &Limits) -> (BodyVerdict, BTreeSet<u16>, Vec<&'static str>) {
    let mut keys: Vec<&'static str> = Vec::new();
    let mut body = Vec::new();
    let mut at = 0;
    let mut total: u64 = 0;
    let mut meta = 0usize;
    let reject = |mut keys: Vec<&'static str>, syntax: bool| {
        let mut st = statuses(&keys);
        if syntax {
            st.insert(400);
            keys.push("(httparse rejects)");
        }
        (BodyVerdict::Reject(0), st, keys)
    };
    loop {
        let (n, size) = match httparse::parse_chunk_size(&input[at..]) {
            Err(_) => {
                let rest = &input[at..];
                let end = rest
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(rest.len(), |i| i + 1);
                size_line_prefix(&rest[..end], total, meta, limits, &mut keys);
                return reject(keys, true);
            }
            Ok(httparse::Status::Partial) => {
                size_line_prefix(&input[at..], total, meta, limits, &mut keys);
                let st = statuses(&keys);
                return (BodyVerdict::Partial, st, keys);
            }
            Ok(httparse::Status::Complete(c)) => c,
        };
        let line = &input[at..at + n - 2];
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 {
            keys.push("chunk-size-empty");
        }
        total = total.saturating_add(size);
        if total > limits.max_body as u64 {
            keys.push("chunk-body-limit");
        }
        let rest = &line[digits..];
        match rest.iter().position(|&b| b == b';') {
            None if !rest.is_empty() => keys.push("chunk-size-ws"),
            None => {}
            Some(s) => {
                if !rest[..s].iter().all(|&b| b == b' ' || b == b'\t') {
                    keys.push("chunk-size-ws");
                }
                if !reference_ext(&rest[s..]) {
                    keys.push("chunk-ext-grammar");
                }
                // Counted: the bytes after the first `;`, and its CR.
                meta += rest.len() - s;
            }
        }
        if meta > limits.max_head {
            keys.push("chunk-meta-limit");
        }
        if !statuses(&keys).is_empty() {
            return reject(keys, false);
        }
        at += n;
        if size == 0 {
            break;
        }
        let size = size as usize;
        if input.len() < at + size + 2 {
            // The data, or its CRLF, is not all here: the bytes that are must fit.
            let have = &input[at.min(input.len())..];
            let tail = have.get(size..).unwrap_or(&[]);
            if !b"\r\n".starts_with(tail) {
                return reject(keys, true);
            }
            return (BodyVerdict::Partial, BTreeSet::new(), keys);
        }
        body.extend_from_slice(&input[at..at + size]);
        if &input[at + size..at + size + 2] != b"\r\n" {
            return reject(keys, true);
        }
        at += size + 2;
    }
    // The trailer section: lines up to an empty one.
    let mut headers = vec![httparse::EMPTY_HEADER; 256];
    let hp = httparse::parse_headers(&input[at..], &mut headers);
    let mut t = at;
    loop {
        let Some(lf) = input[t..].iter().position(|&b| b == b'\n') else {
            let line = &input[t..];
            let bad = line.iter().enumerate().any(|(i, &b)| {
                (b < 0x20 && b != b'\t' && !(b == b'\r' && i + 1 == line.len())) || b == 0x7f
            });
            meta += line.iter().filter(|&&b| b != b'\r').count();
            if meta > limits.max_head {
                keys.push("chunk-meta-limit");
            }
            if bad {
                return reject(keys, true);
            }
            let st = statuses(&keys);
            return (BodyVerdict::Partial, st, keys);
        };
        let end = t + lf;
        let bare = end == t || input[end - 1] != b'\r';
        let line = &input[t..if bare { end } else { end - 1 }];
        meta += line.iter().filter(|&&b| b != b'\r').count();
        if meta > limits.max_head {
            keys.push("chunk-meta-limit");
        }
        if bare {
            keys.push("trailer-bare-lf");
        }
        let syntax = line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f);
        if syntax || !statuses(&keys).is_empty() {
            return reject(keys, syntax);
        }
        t = end + 1;
        if line.is_empty() {
            break;
        }
    }
    match hp {
        Ok(httparse::Status::Complete((n, _))) => assert_eq!(at + n, t, "httparse's trailer end"),
        _ => keys.push("trailer-not-field-line"),
    }
    (BodyVerdict::Done(body, t), BTreeSet::new(), keys)
}

fn check_chunked(input: &[u8], cuts: &[usize], limits: &Limits) -> Result<(), TestCaseError> {
    let whole = decode_split(input, &[], limits);
    let split = decode_split(input, cuts, limits);
    prop_assert_eq!(
        &split,
        &whole,
        "the verdict depends on the split {:?}",
        cuts
    );
    let (want, statuses, keys) = chunk_oracle(input, limits);
    match (&want, &whole) {
        (BodyVerdict::Reject(_), BodyVerdict::Reject(s)) => {
            prop_assert!(
                statuses.contains(s),
                "gvhttpd: {}, oracle allows {:?} ({:?})",
                s,
                statuses,
                keys
            );
        }
        (BodyVerdict::Partial, BodyVerdict::Reject(s)) => {
            prop_assert!(
                statuses.contains(s),
                "gvhttpd rejected an incomplete body with {}; oracle allows waiting or {:?} ({:?})",
                s,
                statuses,
                keys
            );
        }
        (w, g) => prop_assert_eq!(w, g, "oracle keys {:?}", keys),
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct ChunkSpec {
    size: Vec<u8>,
    ext: Vec<u8>,
    eol: Vec<u8>,
    data: Vec<u8>,
    data_eol: Vec<u8>,
}

fn chunk_ext() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        20 => Just(b"".to_vec()),
        6 => pick(&[b";a", b";a=b", b"; a = b", b";a=\"q \\\" x\"", b";a;b=c", b" ;a", b"\t;a=b\t", b";a=\"\""]),
        3 => pick(&[b";", b"; ", b";=v", b";a=", b";a b", b";a(b)", b";a=\"x", b";a=\"x\"y", b" ", b"\t", b";a;", b";\x00", b";a=\"\x01\""]),
        1 => prop::collection::vec(odd_byte(), 1..4).prop_map(|mut v| { v.insert(0, b';'); v }),
    ]
}

fn chunk() -> impl Strategy<Value = ChunkSpec> {
    (
        prop_oneof![20 => 1usize..20, 1 => 20usize..300],
        prop_oneof![
            10 => Just(0u8),  // lowercase hex
            2 => Just(1u8),   // uppercase hex
            2 => Just(2u8),   // leading zeros
            1 => Just(3u8),   // 17 digits
            1 => Just(4u8),   // no digits
            1 => Just(5u8),   // 0x prefix
            1 => Just(6u8),   // sign
        ],
        chunk_ext(),
        eol(),
        prop_oneof![20 => Just(0i8), 1 => Just(-1i8), 1 => Just(1i8)],
        eol(),
    )
        .prop_map(|(n, repr, ext, eol, delta, data_eol)| {
            let size = match repr {
                0 => format!("{n:x}"),
                1 => format!("{n:X}"),
                2 => format!("000{n:x}"),
                3 => format!("{n:017x}"),
                4 => String::new(),
                5 => format!("0x{n:x}"),
                _ => format!("+{n:x}"),
            }
            .into_bytes();
            let len = (n as i64 + i64::from(delta)).max(0) as usize;
            ChunkSpec {
                size,
                ext,
                eol,
                data: (0..len).map(|i| b"abcdefgh\r\n"[i % 10]).collect(),
                data_eol,
            }
        })
}

fn trailer_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => pick(&[b"X: y", b"Trailer: yes", b"A:", b"X: caf\xc3\xa9"]),
        2 => pick(&[b" folded", b"NoColon", b"Bad(Name: x", b"X: a\x01b", b"X: a\x7f", b"X : y"]),
    ]
}

fn chunked_body() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(chunk(), 0..5),
        pick(&[b"0", b"000", b"0;a=b", b"0;", b"0 ", b""]),
        eol(),
        prop::collection::vec((trailer_line(), eol()), 0..3),
        eol(),
        pick(&[b"", b"GET / HTTP/1.1\r\n", b"\r\n"]),
    )
        .prop_map(|(chunks, last, last_eol, trailers, end, tail)| {
            let mut out = Vec::new();
            for c in chunks {
                for part in [&c.size, &c.ext, &c.eol, &c.data, &c.data_eol] {
                    out.extend_from_slice(part);
                }
            }
            out.extend_from_slice(&last);
            out.extend_from_slice(&last_eol);
            for (line, eol) in trailers {
                out.extend_from_slice(&line);
                out.extend_from_slice(&eol);
            }
            out.extend_from_slice(&end);
            out.extend_from_slice(&tail);
            out
        })
}

fn body_limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        Just(Limits::default()),
        Just(Limits {
            max_target: 24,
            max_headers: 5,
            max_head: 12,
            max_body: 40,
        }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn chunked_bodies_agree_with_httparse(
        l in body_limits(),
        body in chunked_body().prop_map(Bytes),
        cuts in cuts(),
    ) {
        check_chunked(&body.0, &cuts, &l)?;
    }

    #[test]
    fn mutated_chunked_bodies_agree_with_httparse(
        l in body_limits(),
        body in chunked_body().prop_flat_map(|b| {
            prop::collection::vec(mutation(), 1..=3).prop_map(move |m| Bytes(mutate(b.clone(), &m)))
        }),
        cuts in cuts(),
    ) {
        check_chunked(&body.0, &cuts, &l)?;
    }
}
