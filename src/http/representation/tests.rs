//! The parsing and the decisions of a static file's representation, table-driven.

use super::*;
use crate::http::{Method, Version};

/// Conditions of a GET whose field lines are `fields` (each ending in CRLF).
fn conditions(fields: &str) -> Option<Box<Conditions>> {
    let head = format!(" HTTP/1.1\r\nHost: a\r\n{fields}\r\n");
    let req = Request {
        method: Method::Get,
        target: "/static/x",
        version: Version::Http11,
        content_type: None,
        fields: head.as_bytes(),
    };
    Conditions::from_request(&req)
}

/// A file of 1000 bytes modified at 1994-11-06 08:49:37 UTC (+ 0.5 s).
const META: FileMeta = FileMeta {
    size: 1000,
    mtime_sec: 784_111_777,
    mtime_nsec: 500_000_000,
    ino: 42,
};
const LM: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

fn outcome(fields: &str) -> Outcome {
    let etag = ETag::of(&META, None);
    conditions(fields).map_or(Outcome::Whole, |c| c.evaluate(&META, &etag))
}

fn partial(start: u64, len: u64) -> Outcome {
    Outcome::Partial { start, len }
}

#[test]
fn range_syntax() {
    use RangeSpec::*;
    let cases: &[(&str, Option<RangeSpec>)] = &[
        ("bytes=0-499", Some(FromTo(0, 499))),
        ("bytes=500-", Some(From(500))),
        ("bytes=-500", Some(Suffix(500))),
        ("BYTES=1-2", Some(FromTo(1, 2))),
        ("bytes= 1-2 ,", Some(FromTo(1, 2))),
        ("bytes=,,1-2", Some(FromTo(1, 2))),
        ("bytes=0-0,-1", Some(Several)),
        ("bytes=0-1, 5-6, 9-", Some(Several)),
        ("bytes=0-99999999999999999999999", Some(FromTo(0, u64::MAX))),
        ("bytes=99999999999999999999999-", Some(From(u64::MAX))),
        ("bytes=-0", Some(Suffix(0))),
        // Ignored (RFC 9110 §14.2): invalid, or another unit.
        ("bytes=5-2", None),
        ("bytes=abc", None),
        ("bytes=-", None),
        ("bytes=", None),
        ("bytes=,", None),
        ("bytes=1-2-3", None),
        ("bytes=-1-2", None),
        ("bytes=+1-2", None),
        ("bytes=0x1-2", None),
        ("bytes=1 -2", None),
        ("bytes=0-1,5-2", None),
        ("bytes 0-1", None),
        ("items=0-1", None),
        ("", None),
    ];
    for (v, want) in cases {
        assert_eq!(parse_range(v.as_bytes()), *want, "{v}");
    }
}

#[test]
fn range_satisfiability() {
    use RangeSpec::*;
    let cases: &[(RangeSpec, u64, Outcome)] = &[
        (FromTo(0, 499), 1000, partial(0, 500)),
        (FromTo(990, 5000), 1000, partial(990, 10)),
        (FromTo(999, 999), 1000, partial(999, 1)),
        (FromTo(1000, 1001), 1000, Outcome::Unsatisfiable),
        (FromTo(0, u64::MAX), 1000, partial(0, 1000)),
        (From(0), 1000, partial(0, 1000)),
        (From(999), 1000, partial(999, 1)),
        (From(1000), 1000, Outcome::Unsatisfiable),
        (From(u64::MAX), 1000, Outcome::Unsatisfiable),
        (Suffix(1), 1000, partial(999, 1)),
        (Suffix(5000), 1000, partial(0, 1000)),
        (Suffix(0), 1000, Outcome::Unsatisfiable),
        (Several, 1000, Outcome::Whole),
        // An empty file: no byte to start at; a suffix names the whole of it.
        (From(0), 0, Outcome::Unsatisfiable),
        (Suffix(5), 0, Outcome::Whole),
        (Suffix(0), 0, Outcome::Unsatisfiable),
    ];
    for (spec, len, want) in cases {
        assert_eq!(spec.satisfy(*len), *want, "{spec:?} of {len}");
    }
}

#[test]
fn conditional_requests() {
    let etag = ETag::of(&META, None);
    let tag = std::str::from_utf8(etag.as_bytes()).unwrap().to_owned();
    let cases: Vec<(String, Outcome)> = vec![
        (String::new(), Outcome::Whole),
        // If-None-Match: weak comparison, lists, `*`.
        (format!("If-None-Match: {tag}\r\n"), Outcome::NotModified),
        (format!("If-None-Match: W/{tag}\r\n"), Outcome::NotModified),
        (
            format!("If-None-Match: \"a\", W/\"b,c\" ,{tag}\r\n"),
            Outcome::NotModified,
        ),
        (
            format!("If-None-Match: \"a\"\r\nIf-None-Match: {tag}\r\n"),
            Outcome::NotModified,
        ),
        ("If-None-Match: *\r\n".into(), Outcome::NotModified),
        ("If-None-Match: \"other\"\r\n".into(), Outcome::Whole),
        ("If-None-Match: garbage\r\n".into(), Outcome::Whole),
        // If-Modified-Since: not modified since → 304; any HTTP-date format.
        (format!("If-Modified-Since: {LM}\r\n"), Outcome::NotModified),
        (
            "If-Modified-Since: Sunday, 06-Nov-94 08:49:37 GMT\r\n".into(),
            Outcome::NotModified,
        ),
        (
            "If-Modified-Since: Sun Nov  6 08:49:37 1994\r\n".into(),
            Outcome::NotModified,
        ),
        (
            "If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n".into(),
            Outcome::NotModified,
        ),
        (
            "If-Modified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n".into(),
            Outcome::Whole,
        ),
        // An invalid or repeated date is ignored.
        ("If-Modified-Since: yesterday\r\n".into(), Outcome::Whole),
        (
            format!("If-Modified-Since: {LM}\r\nIf-Modified-Since: {LM}\r\n"),
            Outcome::Whole,
        ),
        // If-None-Match wins over If-Modified-Since, both ways.
        (
            format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {LM}\r\n"),
            Outcome::Whole,
        ),
        (
            format!("If-None-Match: {tag}\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n"),
            Outcome::NotModified,
        ),
        // A 304 comes before any range.
        (
            format!("If-None-Match: {tag}\r\nRange: bytes=0-1\r\n"),
            Outcome::NotModified,
        ),
        // Ranges.
        ("Range: bytes=0-9\r\n".into(), partial(0, 10)),
        ("range: bytes=-10\r\n".into(), partial(990, 10)),
        ("Range: bytes=1000-\r\n".into(), Outcome::Unsatisfiable),
        ("Range: bytes=-0\r\n".into(), Outcome::Unsatisfiable),
        ("Range: bytes=0-1,4-5\r\n".into(), Outcome::Whole),
        ("Range: bytes=5-1\r\n".into(), Outcome::Whole),
        (
            "Range: bytes=0-1\r\nRange: bytes=2-3\r\n".into(),
            Outcome::Whole,
        ),
        // If-Range: a strong tag that matches, or the exact Last-Modified.
        (
            format!("Range: bytes=0-9\r\nIf-Range: {tag}\r\n"),
            partial(0, 10),
        ),
        (
            "Range: bytes=0-9\r\nIf-Range: \"stale\"\r\n".into(),
            Outcome::Whole,
        ),
        (
            format!("Range: bytes=0-9\r\nIf-Range: W/{tag}\r\n"),
            Outcome::Whole,
        ),
        (
            format!("Range: bytes=0-9\r\nIf-Range: {LM}\r\n"),
            partial(0, 10),
        ),
        (
            "Range: bytes=0-9\r\nIf-Range: Mon, 01 Jan 2024 00:00:00 GMT\r\n".into(),
            Outcome::Whole,
        ),
        (
            "Range: bytes=0-9\r\nIf-Range: nonsense\r\n".into(),
            Outcome::Whole,
        ),
        (
            format!("Range: bytes=0-9\r\nIf-Range: {tag}\r\nIf-Range: {tag}\r\n"),
            Outcome::Whole,
        ),
        // An If-Range without a Range changes nothing; stale, it does not 416.
        ("If-Range: \"stale\"\r\n".into(), Outcome::Whole),
        (
            "Range: bytes=5000-\r\nIf-Range: \"stale\"\r\n".into(),
            Outcome::Whole,
        ),
    ];
    for (fields, want) in &cases {
        assert_eq!(outcome(fields), *want, "{fields:?}");
    }
    // Fields that are not conditions allocate nothing.
    assert_eq!(conditions("Accept: */*\r\n"), None);
}

#[test]
fn preconditions() {
    let etag = ETag::of(&META, None);
    let tag = std::str::from_utf8(etag.as_bytes()).unwrap().to_owned();
    let failed = Outcome::PreconditionFailed;
    let before = "Sun, 06 Nov 1994 08:49:36 GMT";
    let cases: Vec<(String, Outcome)> = vec![
        // If-Match: strong comparison, lists, `*`.
        (format!("If-Match: {tag}\r\n"), Outcome::Whole),
        (format!("If-Match: \"a\", {tag}\r\n"), Outcome::Whole),
        (
            format!("If-Match: \"a\"\r\nIf-Match: {tag}\r\n"),
            Outcome::Whole,
        ),
        ("If-Match: *\r\n".into(), Outcome::Whole),
        (format!("If-Match: W/{tag}\r\n"), failed),
        ("If-Match: \"other\"\r\n".into(), failed),
        ("If-Match: garbage\r\n".into(), failed),
        // If-Unmodified-Since: modified after the date → 412; a bad or
        // repeated date is ignored.
        (format!("If-Unmodified-Since: {LM}\r\n"), Outcome::Whole),
        (format!("If-Unmodified-Since: {before}\r\n"), failed),
        ("If-Unmodified-Since: soon\r\n".into(), Outcome::Whole),
        (
            format!("If-Unmodified-Since: {before}\r\nIf-Unmodified-Since: {before}\r\n"),
            Outcome::Whole,
        ),
        // If-Match wins over If-Unmodified-Since (§13.2.2 step 2 only without it).
        (
            format!("If-Match: {tag}\r\nIf-Unmodified-Since: {before}\r\n"),
            Outcome::Whole,
        ),
        // Preconditions come before If-None-Match and Range.
        (
            format!("If-Match: \"other\"\r\nIf-None-Match: {tag}\r\n"),
            failed,
        ),
        (
            format!("If-Match: {tag}\r\nIf-None-Match: {tag}\r\n"),
            Outcome::NotModified,
        ),
        (
            format!("If-Match: {tag}\r\nRange: bytes=0-9\r\n"),
            partial(0, 10),
        ),
        (
            format!("If-Unmodified-Since: {before}\r\nRange: bytes=0-9\r\n"),
            failed,
        ),
    ];
    for (fields, want) in &cases {
        assert_eq!(outcome(fields), *want, "{fields:?}");
    }
    // Without a Last-Modified (a time no HTTP-date names) the file cannot be
    // shown unmodified since any date.
    let far = FileMeta {
        mtime_sec: -1,
        ..META
    };
    let c = conditions(&format!("If-Unmodified-Since: {LM}\r\n")).unwrap();
    assert_eq!(c.evaluate(&far, &ETag::of(&far, None)), failed);
}

#[test]
fn if_match_lists() {
    let tag = b"\"t\"";
    let cases: &[(&str, bool)] = &[
        ("\"t\"", true),
        (" \"a\" , \"t\" ", true),
        ("*", true),
        ("W/\"t\"", false),
        ("\"a\", W/\"t\"", false),
        ("\"T\"", false),
        ("", false),
    ];
    for (list, want) in cases {
        assert_eq!(match_hits(list.as_bytes(), tag), *want, "{list}");
    }
}

#[test]
fn if_none_match_lists() {
    let tag = b"\"t\"";
    let cases: &[(&str, bool)] = &[
        ("\"t\"", true),
        ("W/\"t\"", true),
        (" \"a\" , \"t\" ", true),
        ("\"a,b\", \"t\"", true),
        ("*", true),
        (" * ", true),
        ("\"a\"", false),
        ("\"T\"", false),
        ("t", false),
        ("\"a\" junk \"t\"", false),
        ("\"unterminated", false),
        ("", false),
        ("*, \"a\"", false),
    ];
    for (list, want) in cases {
        assert_eq!(none_match_hits(list.as_bytes(), tag), *want, "{list}");
    }
}

#[test]
fn accept_encoding_picks_the_variants_to_try() {
    use Coding::*;
    let cases: &[(&[&str], [Option<Coding>; 2])] = &[
        (&[], [None, None]),
        (&["gzip, deflate, br"], [Some(Br), Some(Gzip)]),
        (&["gzip"], [Some(Gzip), None]),
        (&["x-gzip"], [Some(Gzip), None]),
        (&["BR"], [Some(Br), None]),
        (&["identity"], [None, None]),
        (&["*"], [Some(Br), Some(Gzip)]),
        (&["gzip;q=0, br"], [Some(Br), None]),
        (&["gzip; q=0.000, br;q=0"], [None, None]),
        (&["*;q=0"], [None, None]),
        (&["*, gzip;q=0"], [Some(Br), None]),
        (&["gzip;q=1.0, br;q=0.5"], [Some(Gzip), Some(Br)]),
        (&["gzip;q=0.5, br;q=0.5"], [Some(Br), Some(Gzip)]),
        (&["br;q=0.001"], [Some(Br), None]),
        // An invalid weight: that element is ignored.
        (&["gzip;q=2, br;q=abc"], [None, None]),
        (&["gzip;q=0.1234"], [None, None]),
        (&["gzip;level=9"], [Some(Gzip), None]),
        // Several fields are one list.
        (&["gzip", "br;q=0"], [Some(Gzip), None]),
        (&[" , ,gzip"], [Some(Gzip), None]),
    ];
    for (values, want) in cases {
        let got = Codings::from_accept_encoding(values.iter().map(|v| v.as_bytes()));
        assert_eq!(got, Codings::new(*want), "{values:?}");
    }
    let mut c = Codings::new([Some(Br), Some(Gzip)]);
    c.pop_first();
    assert_eq!(c.first(), Some(Gzip));
    c.pop_first();
    assert_eq!(c.first(), None);
}

#[test]
fn qvalues() {
    for (v, want) in [
        ("0", Some(0)),
        ("0.", Some(0)),
        ("0.5", Some(500)),
        ("0.25", Some(250)),
        ("0.001", Some(1)),
        ("1", Some(1000)),
        ("1.000", Some(1000)),
        ("1.001", None),
        ("2", None),
        ("0.0001", None),
        ("", None),
        ("-0", None),
        (".5", None),
    ] {
        assert_eq!(qvalue(v.as_bytes()), want, "{v}");
    }
}

#[test]
fn validators() {
    let etag = ETag::of(&META, None);
    assert_eq!(etag.as_bytes(), b"\"2a-3e8-2ebc98a1.1dcd6500\"");
    assert_eq!(
        ETag::of(&META, Some(Coding::Br)).as_bytes(),
        b"\"2a-3e8-2ebc98a1.1dcd6500-br\""
    );
    assert_eq!(
        ETag::of(&META, Some(Coding::Gzip)).as_bytes(),
        b"\"2a-3e8-2ebc98a1.1dcd6500-gz\""
    );
    // Nanoseconds count: a rewrite within the same second changes the tag.
    let later = FileMeta {
        mtime_nsec: 500_000_001,
        ..META
    };
    assert_ne!(ETag::of(&later, None).as_bytes(), etag.as_bytes());
    // The longest tag fits.
    let max = FileMeta {
        size: u64::MAX,
        mtime_sec: -1,
        mtime_nsec: u32::MAX,
        ino: u64::MAX,
    };
    let t = ETag::of(&max, Some(Coding::Br));
    assert!(t.as_bytes().starts_with(b"\"") && t.as_bytes().ends_with(b"-br\""));
    assert_eq!(
        last_modified(&META).as_ref().map(|d| &d[..]),
        Some(LM.as_bytes())
    );
    // Times an HTTP-date cannot carry: no Last-Modified (and no panic).
    for sec in [-1, i64::MIN, LAST_HTTP_DATE + 1, i64::MAX] {
        let m = FileMeta {
            mtime_sec: sec,
            ..META
        };
        assert_eq!(last_modified(&m), None, "{sec}");
    }
    let m = FileMeta {
        mtime_sec: LAST_HTTP_DATE,
        ..META
    };
    assert_eq!(
        last_modified(&m).as_ref().map(|d| &d[..]),
        Some(&b"Fri, 31 Dec 9999 23:59:59 GMT"[..])
    );
}

#[test]
fn the_fields_of_each_outcome() {
    let etag = ETag::of(&META, Some(Coding::Gzip));
    let fields = |o| {
        let mut out = Vec::new();
        write_fields(&mut out, o, &META, &etag, Some(Coding::Gzip));
        String::from_utf8(out).unwrap()
    };
    let t = "\"2a-3e8-2ebc98a1.1dcd6500-gz\"";
    assert_eq!(
        fields(Outcome::Whole),
        format!("\r\nLast-Modified: {LM}\r\nETag: {t}\r\nAccept-Ranges: bytes\r\nContent-Encoding: gzip\r\nVary: Accept-Encoding")
    );
    assert_eq!(
        fields(partial(10, 5)),
        format!("\r\nLast-Modified: {LM}\r\nETag: {t}\r\nAccept-Ranges: bytes\r\nContent-Encoding: gzip\r\nVary: Accept-Encoding\r\nContent-Range: bytes 10-14/1000")
    );
    assert_eq!(
        fields(Outcome::NotModified),
        format!("\r\nLast-Modified: {LM}\r\nETag: {t}\r\nVary: Accept-Encoding")
    );
    assert_eq!(
        fields(Outcome::Unsatisfiable),
        "\r\nVary: Accept-Encoding\r\nContent-Range: bytes */1000"
    );
    assert_eq!(
        fields(Outcome::PreconditionFailed),
        "\r\nVary: Accept-Encoding"
    );
}

/// Arbitrary field values never panic, and a partial response always names bytes
/// of the file: at least one, none past its end.
#[test]
fn arbitrary_fields_never_panic_and_ranges_stay_inside_the_file() {
    const ALPHABET: &[u8] = b"bytes=0123456789-,; \tqQ=.W/\"*gzipbrx\xff";
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let sizes = [0, 1, 2, 999, 1000, u64::MAX - 1, u64::MAX];
    for _ in 0..20_000 {
        let len = (next() % 24) as usize;
        let v: Vec<u8> = (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
            .collect();
        let _ = Codings::from_accept_encoding([&v[..]]);
        let _ = none_match_hits(&v, b"\"t\"");
        let _ = parse_if_range(&v);
        if let Some(spec) = parse_range(&v) {
            for size in sizes {
                if let Outcome::Partial { start, len } = spec.satisfy(size) {
                    assert!(
                        len >= 1 && start < size && len <= size - start,
                        "{v:?} of {size}"
                    );
                }
            }
        }
    }
}
