//! `http-behaviour.md` cases 1–34 as one table, run over real loopback sockets
//! against every model. Each row is a fresh connection; every response must be well
//! formed (case 40), and rows marked `close` must end with the server closing.

mod common;

use common::{assert_well_formed, parse_responses, read_to_close, Server};
use gvhttpd::config::Variant;
use std::io::Write;

struct Row {
    case: &'static str,
    raw: Vec<u8>,
    status: u16,
    close: bool,
}

fn row(case: &'static str, raw: impl Into<Vec<u8>>, status: u16, close: bool) -> Row {
    Row {
        case,
        raw: raw.into(),
        status,
        close,
    }
}

/// A complete HTTP/1.1 request with `head` (request line + extra fields).
fn req(line: &str, fields: &str) -> Vec<u8> {
    format!("{line}\r\nHost: t\r\n{fields}Connection: close\r\n\r\n").into_bytes()
}

fn table() -> Vec<Row> {
    let long_ok = format!(
        "GET /?{} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "a".repeat(7998)
    );
    let long_bad = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
        "v".repeat(20_000)
    );
    let trailer_flood = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: {}\r\n\r\n",
        "v".repeat(20_000)
    );
    vec![
        // Request line.
        row("1 double space", req("GET  / HTTP/1.1", ""), 400, true),
        row("1 tab", req("GET\t/ HTTP/1.1", ""), 400, true),
        row("2 missing version", "GET /\r\n\r\n", 400, true),
        row("2 HTTP/1.10", req("GET / HTTP/1.10", ""), 400, true),
        row("2 lowercase", req("GET / http/1.1", ""), 400, true),
        row("2 HTTP/1", req("GET / HTTP/1", ""), 400, true),
        row("3 HTTP/2.0", req("GET / HTTP/2.0", ""), 505, true),
        row("3 HTTP/3.0", req("GET / HTTP/3.0", ""), 505, true),
        row("3 HTTP/1.2 as 1.1", req("GET / HTTP/1.2", ""), 200, true),
        row("4 unknown method", req("BREW / HTTP/1.1", ""), 501, true),
        row("4 non-token method", req("G(T / HTTP/1.1", ""), 400, true),
        row("5 target 8000 octets", long_ok, 200, true),
        row("5 target over limit", long_bad, 414, true),
        row("6 NUL in target", req("GET /a\0b HTTP/1.1", ""), 400, true),
        row("6 control in target", req("GET /a\x07b HTTP/1.1", ""), 400, true),
        row("7 absolute-form", req("GET http://t/json HTTP/1.1", ""), 200, true),
        row("7 OPTIONS *", req("OPTIONS * HTTP/1.1", ""), 200, true),
        row("8 TLS ClientHello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03".to_vec(), 400, true),
        row("8 HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, true),
        row("8 binary junk", vec![0u8, 0xff, 0x13, 0x37, b'\r', b'\n'], 400, true),
        // Header section.
        row("9 no Host on 1.1", "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 400, true),
        row("9 no Host on 1.0", "GET / HTTP/1.0\r\n\r\n", 200, true),
        row("10 two Hosts", req("GET / HTTP/1.1", "Host: t\r\n"), 400, true),
        row("10 Host a b", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, true),
        row("10 Host a/b", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, true),
        row("10 Host user@host", "GET / HTTP/1.1\r\nHost: user@host\r\n\r\n", 400, true),
        row("11 space before colon", req("GET / HTTP/1.1", "X-A : b\r\n"), 400, true),
        row("12 obs-fold", req("GET / HTTP/1.1", "X-A: b\r\n c\r\n"), 400, true),
        row("13 whitespace before first field", "GET / HTTP/1.1\r\n Host: t\r\n\r\n", 400, true),
        row("14 no colon", req("GET / HTTP/1.1", "NoColon\r\n"), 400, true),
        row("14 empty name", req("GET / HTTP/1.1", ": v\r\n"), 400, true),
        row("14 non-token name", req("GET / HTTP/1.1", "X(A): v\r\n"), 400, true),
        row("15 NUL in value", req("GET / HTTP/1.1", "X: a\0b\r\n"), 400, true),
        row("15 control in value", req("GET / HTTP/1.1", "X: a\x01b\r\n"), 400, true),
        row("15 obs-text allowed", req("GET / HTTP/1.1", "X: caf\u{e9}\r\n"), 200, true),
        row("16 bare CR", req("GET / HTTP/1.1", "X: a\rb\r\n"), 400, true),
        row("16 bare LF", "GET / HTTP/1.1\nHost: t\n\n", 400, true),
        row("18 too many fields", format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n"), 431, true),
        row("19 huge field", huge, 431, true),
        // Body framing.
        row("20 CL abc", req("POST /echo HTTP/1.1", "Content-Length: abc\r\n"), 400, true),
        row("20 CL +5", req("POST /echo HTTP/1.1", "Content-Length: +5\r\n"), 400, true),
        row("20 CL -1", req("POST /echo HTTP/1.1", "Content-Length: -1\r\n"), 400, true),
        row("20 CL 0x5", req("POST /echo HTTP/1.1", "Content-Length: 0x5\r\n"), 400, true),
        row("20 CL 5 5", req("POST /echo HTTP/1.1", "Content-Length: 5 5\r\n"), 400, true),
        row("20 CL overflow", req("POST /echo HTTP/1.1", "Content-Length: 184467440737095516160\r\n"), 400, true),
        row("21 two CLs", req("POST /echo HTTP/1.1", "Content-Length: 1\r\nContent-Length: 2\r\n"), 400, true),
        // Lists and repeats are refused, not merged (RFC 9110 §8.6 permits it; issue 14).
        row("21 CL 5, 5 refused", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\nConnection: close\r\n\r\nhello", 400, true),
        row("21 CL 1000,1000 refused at once", req("POST /echo HTTP/1.1", "Content-Length: 1000,1000\r\n"), 400, true),
        row("21 two equal CLs refused", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", 400, true),
        row("22 TE and CL", req("POST /echo HTTP/1.1", "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"), 400, true),
        row("23 chunked not last", req("POST /echo HTTP/1.1", "Transfer-Encoding: chunked, gzip\r\n"), 400, true),
        row("23 other coding", req("POST /echo HTTP/1.1", "Transfer-Encoding: gzip\r\n"), 501, true),
        row("24 chunked twice", req("POST /echo HTTP/1.1", "Transfer-Encoding: chunked, chunked\r\n"), 400, true),
        row("24 TE space colon", req("POST /echo HTTP/1.1", "Transfer-Encoding : chunked\r\n"), 400, true),
        row("24 TE vtab", req("POST /echo HTTP/1.1", "Transfer-Encoding: \x0bchunked\r\n"), 400, true),
        row("25 TE on 1.0", "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, true),
        row("26 size not hex", chunked("zz\r\nab\r\n0\r\n\r\n"), 400, true),
        row("26 empty size", chunked("\r\nab\r\n0\r\n\r\n"), 400, true),
        row("26 0x size", chunked("0x1\r\na\r\n0\r\n\r\n"), 400, true),
        row("26 negative size", chunked("-1\r\na\r\n0\r\n\r\n"), 400, true),
        row("26 17 hex digits", chunked("10000000000000000\r\n"), 400, true),
        row("27 data too long", chunked("2\r\nabc\r\n0\r\n\r\n"), 400, true),
        row("27 data too short", chunked("4\r\nabc\r\n0\r\n\r\n"), 400, true),
        row("27 missing CRLF", chunked("3\r\nabc0\r\n\r\n"), 400, true),
        row("28 extensions and trailers", chunked("3;a=b\r\nabc\r\n0;x\r\nT: v\r\n\r\n"), 200, true),
        row("28 quoted extension value", chunked("3 ; a = \"b;\\\"c\" ; d\r\nabc\r\n0\r\n\r\n"), 200, true),
        row("28 empty extension name", chunked("5;\r\nhello\r\n0\r\n\r\n"), 400, true),
        row("28 extension value missing", chunked("5;a=\r\nhello\r\n0\r\n\r\n"), 400, true),
        row("28 extension junk", chunked("5;a b\r\nhello\r\n0\r\n\r\n"), 400, true),
        row("28 trailer flood", trailer_flood, 431, true),
        row("29 body over limit", req("POST /echo HTTP/1.1", "Content-Length: 2000000\r\n"), 413, true),
        row("31 other expectation", req("POST /echo HTTP/1.1", "Expect: teapot\r\nContent-Length: 0\r\n"), 417, true),
        row("33 1.0 closes", "GET / HTTP/1.0\r\n\r\n", 200, true),
        row("34 Connection: close", req("GET /json HTTP/1.1", ""), 200, true),
    ]
}

fn chunked(body: &str) -> Vec<u8> {
    format!("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{body}").into_bytes()
}

fn conformance_table(model: Variant) {
    let server = Server::start(model);
    let mut failures = Vec::new();
    for r in table() {
        let mut s = server.connect();
        // The server may answer and close before the whole row is written.
        let _ = s.write_all(&r.raw);
        let (out, closed) = read_to_close(&mut s);
        let responses = parse_responses(&out, false);
        let Some(first) = responses.first() else {
            failures.push(format!(
                "{}: no response ({} bytes: {:?})",
                r.case,
                out.len(),
                String::from_utf8_lossy(&out)
            ));
            continue;
        };
        assert_well_formed(first);
        if first.status != r.status {
            failures.push(format!(
                "{}: status {} (want {}) body {:?}",
                r.case,
                first.status,
                r.status,
                first.text()
            ));
        }
        if r.close && (!closed || first.header("connection") != Some("close")) {
            failures.push(format!(
                "{}: not closed with Connection: close ({closed})",
                r.case
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "model {model}:\n{}",
        failures.join("\n")
    );
}

/// Case 8 for input that never forms a line: the server must not wait forever.
fn junk_without_newline_is_refused(model: Variant) {
    let server = Server::start(model);
    let (out, closed) = read_to_close(&mut {
        let mut s = server.connect();
        s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
        s
    });
    assert!(closed, "server kept a junk connection open");
    // A first byte that cannot start a method is refused at once with a 400.
    assert!(
        parse_responses(&out, false)
            .first()
            .is_some_and(|r| r.status == 400),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
}

/// Empty lines before a request line (RFC 9112 §2.2) are skipped, and the body
/// still starts after the blank line: with 8 of them, the last 16 bytes of a body
/// were once read as the start of the next request (a desync a client controls).
fn leading_empty_lines_keep_the_body_in_place(model: Variant) {
    let server = Server::start(model);
    let mut raw = b"\r\n".repeat(8);
    raw.extend_from_slice(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 16\r\n\r\n");
    raw.extend_from_slice(b"GET / HTTP/1.1\r\n");
    raw.extend_from_slice(b"GET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let out = server.exchange(&raw);
    let r = parse_responses(&out, false);
    let got: Vec<(u16, &[u8])> = r.iter().map(|r| (r.status, &r.body[..])).collect();
    assert_eq!(
        got,
        [
            (200, &b"GET / HTTP/1.1\r\n"[..]),
            (200, &br#"{"message":"Hello, World!"}"#[..])
        ],
        "{}",
        String::from_utf8_lossy(&out)
    );
}

per_model!(
    conformance_table,
    junk_without_newline_is_refused,
    leading_empty_lines_keep_the_body_in_place
);
