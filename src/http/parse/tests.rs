//! Table-driven tests of request-head parsing (`http-behaviour.md` cases 1–29).

use super::*;

fn scan_all(raw: &[u8]) -> Result<Scan, Reject> {
    HeadScanner::default().scan(raw, &Limits::default())
}

fn status_of(raw: &[u8]) -> u16 {
    match scan_all(raw) {
        Ok(Scan::Complete(_)) => 200,
        Ok(Scan::Partial) => 0,
        Err(r) => r.status,
    }
}

#[test]
fn request_line_cases() {
    let cases: &[(&[u8], u16)] = &[
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200),
        (b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 200), // leading empty line
        (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),    // double space (1)
        (b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400), // tab (1)
        (b"GET /\tHTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET /\r\n\r\n", 400), // missing version (2)
        (b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400),
        (b"GET / http/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505), // (3)
        (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 200),
        (b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n", 501), // (4)
        (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n", 400), // (6)
        (b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET http://h/p HTTP/1.1\r\nHost: h\r\n\r\n", 200), // (7)
        (b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 200),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400), // TLS ClientHello (8)
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),             // h2 preface
        (b"\xff\xfe\xfd", 400),
        (b"GET / HTTP/1.1\nHost: a\n\n", 400), // bare LF (16)
        (b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", 400), // bare CR
        (b"GET / HTTP/1.1\r", 0),
    ];
    for (raw, want) in cases {
        assert_eq!(status_of(raw), *want, "{:?}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn header_cases() {
    let cases: &[(&[u8], u16)] = &[
        (b"GET / HTTP/1.1\r\n\r\n", 400), // no Host (9)
        (b"GET / HTTP/1.0\r\n\r\n", 200), // 1.0 without Host
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400), // (10)
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: user@host\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 200),
        (b"GET / HTTP/1.1\r\nHost: example.com:80\r\n\r\n", 200),
        (b"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400), // (11)
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  folded\r\n\r\n",
            400,
        ), // (12)
        (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400), // (13)
        (b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400), // (14)
        (b"GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nBad(Name: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400), // (15)
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", 200),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: tab\there\r\n\r\n", 200),
    ];
    for (raw, want) in cases {
        assert_eq!(status_of(raw), *want, "{:?}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn framing_cases() {
    let h = |extra: &str| format!("POST /echo HTTP/1.1\r\nHost: a\r\n{extra}\r\n").into_bytes();
    let cases: &[(&str, u16)] = &[
        ("Content-Length: 5\r\n", 200),
        ("Content-Length: abc\r\n", 400), // (20)
        ("Content-Length: +5\r\n", 400),
        ("Content-Length: -1\r\n", 400),
        ("Content-Length: 0x5\r\n", 400),
        ("Content-Length: 5 5\r\n", 400),
        ("Content-Length: 99999999999999999999999\r\n", 400),
        ("Content-Length: 5\r\nContent-Length: 6\r\n", 400), // (21)
        ("Content-Length: 5, 6\r\n", 400),
        // Lists and repeats are refused, not merged (issue 14).
        ("Content-Length: 5, 5\r\n", 400),
        ("Content-Length: 1000,1000\r\n", 400),
        ("Content-Length: 5,\r\n", 400),
        ("Content-Length: ,5\r\n", 400),
        ("Content-Length: 5\r\nContent-Length: 5\r\n", 400),
        ("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400), // (22)
        ("Transfer-Encoding: chunked, gzip\r\n", 400),                // (23)
        ("Transfer-Encoding: gzip\r\n", 501),
        ("Transfer-Encoding: gzip, chunked\r\n", 501),
        ("Transfer-Encoding: chunked, chunked\r\n", 400), // (24)
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            400,
        ),
        ("Transfer-Encoding : chunked\r\n", 400),
        ("Transfer-Encoding: \x0bchunked\r\n", 400),
        ("Transfer-Encoding: CHUNKED\r\n", 200),
        ("Expect: 100-continue\r\nContent-Length: 3\r\n", 200),
        ("Expect: something-else\r\n", 417), // (31)
    ];
    for (extra, want) in cases {
        assert_eq!(status_of(&h(extra)), *want, "{extra:?}");
    }
    // (25) Transfer-Encoding on HTTP/1.0.
    assert_eq!(
        status_of(b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        400
    );
}

#[test]
fn parsed_head_fields() {
    let raw = b"POST /echo?x HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Type:  text/x \t\r\nContent-Length: 4\r\n\r\nbody";
    let Ok(Scan::Complete(h)) = scan_all(raw) else {
        panic!()
    };
    assert_eq!(h.method, Method::Post);
    assert_eq!(&raw[h.target.clone()], b"/echo?x");
    assert_eq!(h.version, Version::Http10);
    assert!(h.keep_alive);
    assert_eq!(h.framing, Framing::Length(4));
    assert_eq!(&raw[h.content_type.clone().unwrap()], b"text/x"); // trimmed (17)
    assert_eq!(h.len, raw.len() - 4);
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let Ok(Scan::Complete(h)) = scan_all(raw) else {
        panic!()
    };
    assert!(!h.keep_alive);
}

#[test]
fn limits() {
    let l = Limits::default();
    let long = |n: usize| format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(n - 1));
    assert_eq!(status_of(long(8000).as_bytes()), 200); // (5)
    assert_eq!(status_of(long(l.max_target + 1).as_bytes()), 414);
    // A long target that has not finished arriving is refused before its end.
    let partial = format!("GET /{}", "a".repeat(l.max_target + 100));
    assert_eq!(status_of(partial.as_bytes()), 414);
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(
        status_of(format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes()),
        431
    ); // (18)
    let ok: String = (0..99).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(
        status_of(format!("GET / HTTP/1.1\r\nHost: a\r\n{ok}\r\n").as_bytes()),
        200
    );
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "v".repeat(20_000)
    );
    assert_eq!(status_of(huge.as_bytes()), 431); // (19)
                                                 // Still incomplete but already over the limit: refused without waiting.
    assert_eq!(status_of(&huge.as_bytes()[..17_000]), 431);
}

#[test]
fn head_found_across_any_split() {
    let raw = b"GET /json HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n";
    for split in 1..raw.len() {
        let mut s = HeadScanner::default();
        let l = Limits::default();
        assert_eq!(
            s.scan(&raw[..split], &l),
            Ok(Scan::Partial),
            "split {split}"
        );
        let Ok(Scan::Complete(h)) = s.scan(raw, &l) else {
            panic!("split {split}")
        };
        assert_eq!(h.len, raw.len());
    }
}

#[test]
fn find_lf_finds_the_first_lf_at_every_position() {
    for len in 0..40 {
        for at in 0..=len {
            let mut b = vec![b'x'; len];
            if at < len {
                b[at] = b'\n';
            }
            // A second LF later never hides the first.
            if at + 3 < len {
                b[at + 3] = b'\n';
            }
            let want = (at < len).then_some(at);
            assert_eq!(super::find_lf(&b), want, "len {len} at {at}");
        }
    }
    // Bytes with the high bit set next to an LF do not confuse the bit trick.
    assert_eq!(super::find_lf(b"\xff\x8b\x0b\n\x89"), Some(3));
}

#[test]
fn an_empty_line_split_after_its_cr_waits_for_more() {
    // Found by tests/fuzz_core.rs: a CRLF between requests, cut after the CR.
    let l = Limits::default();
    let mut s = HeadScanner::default();
    assert_eq!(s.scan(b"\r", &l), Ok(Scan::Partial));
    assert!(matches!(
        s.scan(b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &l),
        Ok(Scan::Complete(_))
    ));
}

#[test]
fn value_bytes_are_checked_exactly_at_every_position() {
    // Every length up to 24 and every position: one bad byte anywhere is found, and
    // HTAB, SP, visible ASCII and obs-text anywhere are not (the eight-byte check
    // must not let one byte's answer leak into its neighbours').
    for len in 1..=40 {
        for at in 0..len {
            for b in 0u8..=255 {
                let mut v = vec![b'a'; len];
                v[at] = b;
                let ok = (b >= 0x20 || b == b'\t') && b != 0x7f;
                assert_eq!(super::valid_value(&v), ok, "byte {b:#x} at {at} of {len}");
            }
            // A tab or obs-text next to a bad byte does not hide it.
            let mut v = vec![b'\t'; len];
            v[at] = 0x08;
            assert!(!super::valid_value(&v), "0x08 at {at} among tabs");
            let mut v = vec![0xff; len];
            v[at] = 0x00;
            assert!(!super::valid_value(&v), "NUL at {at} among obs-text");
        }
    }
}

#[test]
fn host_port_forms() {
    for ok in [
        "a",
        "a:80",
        "127.0.0.1:8080",
        "[::1]:8080",
        "",
        "x:",
        "h:65535",
    ] {
        assert!(super::valid_host(ok.as_bytes()), "{ok}");
    }
    for bad in ["a b", "a:8x", "a:123456", "a/b", "a:80:80", "[::1", "a@b"] {
        assert!(!super::valid_host(bad.as_bytes()), "{bad}");
    }
}

#[test]
fn the_get_fast_path_answers_as_the_general_walk() {
    let limits = Limits {
        max_target: 16,
        ..Limits::default()
    };
    let targets: &[&[u8]] = &[
        b"/",
        b"",
        b"/a b",
        b"/\x7f",
        b"/\x00",
        b"/\xff",
        b"/\t",
        b"/0123456789abcde",
        b"/0123456789abcdef",
        b"*",
        b"http://h/x?y#z",
        b"/ ",
        b" /",
    ];
    for t in targets {
        for tail in [&b" HTTP/1.1"[..], b" HTTP/1.0", b"HTTP/1.1", b" HTTP/1.1 "] {
            let line = [&b"GET "[..], t, tail].concat();
            assert_eq!(
                super::request_line(&line, &limits),
                super::request_line_general(&line, &limits),
                "{:?}",
                String::from_utf8_lossy(&line)
            );
        }
    }
}

/// Scan `raw` one more byte per call, as a head trickling in arrives: every line is
/// then seen in pieces, so only the general walk runs.
fn scan_trickled(raw: &[u8], limits: &Limits) -> Result<Scan, Reject> {
    let mut s = HeadScanner::default();
    for end in 1..raw.len() {
        match s.scan(&raw[..end], limits) {
            Ok(Scan::Partial) => {}
            done => return done,
        }
    }
    s.scan(raw, limits)
}

#[test]
fn the_line_fast_paths_answer_as_the_general_walk() {
    let request_lines: &[&[u8]] = &[
        b"GET / HTTP/1.1",
        b"GET /plaintext HTTP/1.1",
        b"GET /x HTTP/1.0",
        b"GET  / HTTP/1.1",
        b"GET / HTTP/1.1 ",
        b"GET /\x01 HTTP/1.1",
        b"HEAD / HTTP/1.1",
        b"GET / HTTP/1.2",
    ];
    let names: &[&[u8]] = &[b"Host", b"host", b"HOST", b"Hos", b"Hostx", b"Host "];
    let values: &[&[u8]] = &[
        b"a",
        b"127.0.0.1:8080",
        b"localhost:80",
        b"x:",
        b"h:65535",
        b"h:123456",
        b"a b",
        b"a:8x",
        b"[::1]:8080",
        b"",
        b"a%20b",
        b"a\tb",
        b"  a  ",
        b"a ",
        b"\ta",
        b"a:80:80",
        b"a@b",
        b"\xc3\xa9",
        b"a\x7f",
        b"a\rb",
        b"a:80 ",
    ];
    let limits = [
        Limits::default(),
        Limits {
            max_headers: 1,
            ..Limits::default()
        },
    ];
    let mut heads = Vec::new();
    for rl in request_lines {
        for n in names {
            for v in values {
                for sep in [&b":"[..], b": ", b""] {
                    let field = [n, sep, v].concat();
                    heads.push([rl, &b"\r\n"[..], &field, b"\r\n\r\n"].concat());
                    heads.push([rl, &b"\r\n"[..], &field, b"\r\nHost: b\r\n\r\n"].concat());
                    heads.push([rl, &b"\r\nX: y\r\n"[..], &field, b"\n\r\n"].concat());
                }
            }
        }
        heads.push([rl, &b"\r\n\r\n"[..]].concat());
    }
    for l in &limits {
        for h in &heads {
            assert_eq!(
                HeadScanner::default().scan(h, l),
                scan_trickled(h, l),
                "{:?} (max_headers {})",
                String::from_utf8_lossy(h),
                l.max_headers
            );
        }
    }
    // Lines that take the fast paths, and a head over the size limit on one of them.
    let small = Limits {
        max_head: 24,
        ..Limits::default()
    };
    let h = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
    assert_eq!(status_of(h), 200);
    assert_eq!(
        HeadScanner::default().scan(h, &small).map_err(|r| r.status),
        Err(431)
    );
}

/// The verdict must not depend on where the reads end (case 35), also at the
/// limits: a head of exactly the largest size, and a request line whose target
/// is within the limit but whose line is long.
#[test]
fn verdict_does_not_depend_on_a_split_at_the_limits() {
    let l = Limits {
        max_target: 24,
        max_headers: 5,
        max_head: 160,
        max_body: 64,
    };
    // The head without its blank line is max_head octets: accepted.
    let mut largest = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
    largest.resize(l.max_head - 2, b'f');
    largest.extend_from_slice(b"\r\n\r\n");
    // A short target and 100 octets of junk after the version: 400, not 414.
    let mut long_line = b"GET /a HTTP/1.1".to_vec();
    long_line.extend_from_slice(&[b'x'; 100]);
    long_line.extend_from_slice(b"\r\nHost: a\r\n\r\n");
    for (raw, want) in [(&largest, 200), (&long_line, 400)] {
        let whole = HeadScanner::default().scan(raw, &l);
        let status = whole.as_ref().map_or_else(|r| r.status, |_| 200);
        assert_eq!(status, want, "{:?}", String::from_utf8_lossy(raw));
        for cut in 1..raw.len() {
            let mut s = HeadScanner::default();
            let split = match s.scan(&raw[..cut], &l) {
                Ok(Scan::Partial) => s.scan(raw, &l),
                r => r,
            };
            assert_eq!(split, whole, "split at {cut} of {}", raw.len());
        }
    }
}
