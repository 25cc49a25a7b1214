//! Claims of `http-behaviour.md` and the README that had no test over a socket,
//! under every model: cases 6, 16, 17, 19, 27, 30, 31, 37, 39 and 40, HEAD on
//! `/sleep` and `/stats`, `/sleep/60000`, and the limit flags reaching the core.
//! (Cases 38 and 41 at scale are in `tests/resources.rs`; the CLI flags that
//! shape the models in `tests/flags.rs`.)

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{
    assert_well_formed, parse_responses, read_response, read_responses, read_to_close,
    shutdown_write, Server, TempDir,
};
use gvhttpd::config::Variant;

/// Send `raw` on a fresh connection: the one response, which must be `status`
/// with `Connection: close`, followed by the server closing. Failures name `case`.
fn refused(s: &Server, case: &str, raw: &[u8], status: u16) -> Option<String> {
    let mut c = s.connect();
    // The server may answer and close before the whole request is written.
    let _ = c.write_all(raw);
    let (out, closed) = read_to_close(&mut c);
    let rs = parse_responses(&out, false);
    let Some(r) = rs.first() else {
        return Some(format!(
            "{case}: no response ({:?})",
            String::from_utf8_lossy(&out)
        ));
    };
    assert_well_formed(r);
    if r.status != status {
        return Some(format!(
            "{case}: status {} (want {status}): {}",
            r.status,
            r.text()
        ));
    }
    if !closed || r.header("connection") != Some("close") || rs.len() != 1 {
        return Some(format!("{case}: not one response then close ({closed})"));
    }
    None
}

fn chunked(body: &str) -> Vec<u8> {
    format!("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
        .into_bytes()
}

/// Cases 6, 16 (inside chunked framing) and 19 (many fields, over 16 KiB in all).
fn malformed_requests_are_refused(model: Variant) {
    let s = Server::start(model);
    // 90 fields of ~210 bytes: under the 100-field limit, over the 16 KiB head limit.
    let many: String = (0..90)
        .map(|i| format!("X-{i}: {}\r\n", "v".repeat(200)))
        .collect();
    assert!(many.len() > 16 * 1024);
    let rows: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "6 space in target",
            b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
            400,
        ),
        (
            "6 DEL in target",
            b"GET /a\x7fb HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
            400,
        ),
        (
            "16 bare LF after chunk size",
            chunked("3\nabc\r\n0\r\n\r\n"),
            400,
        ),
        (
            "16 bare LF after chunk data",
            chunked("3\r\nabc\n0\r\n\r\n"),
            400,
        ),
        (
            "16 bare LF after last chunk",
            chunked("3\r\nabc\r\n0\n\r\n"),
            400,
        ),
        (
            "16 bare LF in trailer",
            chunked("3\r\nabc\r\n0\r\nT: v\n\r\n"),
            400,
        ),
        (
            "16 bare LF ending trailers",
            chunked("3\r\nabc\r\n0\r\n\n"),
            400,
        ),
        (
            "19 many fields over 16 KiB",
            format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n").into_bytes(),
            431,
        ),
    ];
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|(case, raw, status)| refused(&s, case, raw, *status))
        .collect();
    assert!(
        failures.is_empty(),
        "model {model}:\n{}",
        failures.join("\n")
    );
}

/// Case 17: SP/HTAB around a value are trimmed (the echoed Content-Type shows it).
fn values_are_trimmed(model: Variant) {
    let s = Server::start(model);
    let out = s.exchange(
        b"POST /echo HTTP/1.1\r\nHost:  t \t\r\nContent-Type: \t text/x-a; q=1 \t \r\n\
          Content-Length:  \t 3 \t\r\nConnection: \t close \r\n\r\nabc",
    );
    let rs = parse_responses(&out, false);
    assert_eq!(rs.len(), 1, "{:?}", String::from_utf8_lossy(&out));
    assert_eq!((rs[0].status, rs[0].text().as_str()), (200, "abc"));
    // The harness trims too: look at the exact bytes.
    let raw = String::from_utf8_lossy(&rs[0].raw);
    assert!(
        raw.contains("\r\nContent-Type: text/x-a; q=1\r\n"),
        "value not trimmed: {raw:?}"
    );
    assert!(raw.contains("\r\nConnection: close\r\n"), "{raw:?}");
}

/// Case 27: EOF before the last chunk: closed within a bounded time, never a 200
/// of the partial body.
fn eof_before_the_last_chunk_is_closed(model: Variant) {
    let s = Server::start(model);
    for partial in ["3\r\nabc\r\n", "3\r\nab", "3\r\nabc\r\n0\r\n", "5"] {
        let mut c = s.connect();
        c.write_all(&chunked(partial)).unwrap();
        shutdown_write(&c);
        let t0 = Instant::now();
        let (out, closed) = read_to_close(&mut c);
        assert!(closed, "{partial:?}: not closed within {:?}", t0.elapsed());
        // 400 or a plain close; nothing else.
        for r in parse_responses(&out, false) {
            assert_eq!(r.status, 400, "{partial:?}: {}", r.text());
        }
        assert!(
            out.is_empty() || out.starts_with(b"HTTP/1.1 400 "),
            "{partial:?}: {:?}",
            String::from_utf8_lossy(&out)
        );
    }
    s.wait_until_served(Duration::from_secs(2), "not serving after the EOFs");
}

/// Case 30: a client that goes away mid-body is closed quietly; nothing leaks.
fn client_closing_mid_body_is_quiet(model: Variant) {
    let mut s = Server::start(model);
    // Half-close mid-body: no response is owed, the server just closes.
    let mut c = s.connect();
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
        .unwrap();
    shutdown_write(&c);
    let (out, closed) = read_to_close(&mut c);
    assert!(closed, "half-closed mid-body connection left open");
    assert!(
        out.is_empty() || out.starts_with(b"HTTP/1.1 400 "),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    // Reset mid-body, content-length and chunked.
    for head in [
        &b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nabc"[..],
        &b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nab"[..],
    ] {
        let mut c = s.connect();
        c.write_all(head).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        socket2::SockRef::from(&c)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(c);
    }
    // Still serving, and every one of those connections was closed (only the
    // /stats request itself is open).
    let until = Instant::now() + Duration::from_secs(3);
    let mut stats = s.stats();
    while !stats.contains("\"open\":1,") && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
        stats = s.stats();
    }
    assert!(stats.contains("\"open\":1,"), "connections leaked: {stats}");
    assert!(s.child.try_wait().unwrap().is_none(), "server died");
}

/// Case 31: a body over the limit gets 413 at once instead of `100 Continue`.
/// Case 40: the `100 Continue` itself has no length, no body, no close.
fn expect_continue_interim_and_413(model: Variant) {
    let s = Server::start(model);
    let mut c = s.connect();
    c.write_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2000000\r\n\r\n",
    )
    .unwrap();
    let (out, closed) = read_to_close(&mut c);
    let text = String::from_utf8_lossy(&out);
    assert!(
        !text.contains(" 100 "),
        "100 Continue before a 413: {text:?}"
    );
    let rs = parse_responses(&out, false);
    assert!(closed && rs.len() == 1, "{text:?}");
    assert_eq!(rs[0].status, 413, "{text:?}");
    assert_eq!(rs[0].header("connection"), Some("close"));
    assert_well_formed(&rs[0]);

    let mut c = s.connect();
    c.write_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .unwrap();
    let interim = read_response(&mut c, false);
    assert_eq!(interim.status, 100);
    assert!(interim.raw.starts_with(b"HTTP/1.1 100 Continue\r\n"));
    for name in ["content-length", "transfer-encoding", "connection"] {
        assert!(interim.header(name).is_none(), "{name} on 100: {interim:?}");
    }
    assert!(interim.body.is_empty() && interim.raw.ends_with(b"\r\n\r\n"));
    c.write_all(b"ping").unwrap();
    let r = read_response(&mut c, false);
    assert_well_formed(&r);
    assert_eq!((r.status, r.text().as_str()), (200, "ping"));
}

/// Case 37: a body trickled one byte at a time is cut off by the body timeout,
/// which therefore does not restart with every byte.
fn trickled_body_times_out(model: Variant) {
    let s = Server::start_with(model, &["--body-timeout", "600ms"]);
    let mut c = s.connect();
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        .unwrap();
    let t0 = Instant::now();
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut closed = false;
    // One byte every ~50 ms for up to 4 s: a per-byte timeout would never fire.
    while t0.elapsed() < Duration::from_secs(4) && !closed {
        if c.write_all(b"x").is_err() {
            closed = true;
        }
        match c.read(&mut buf) {
            Ok(0) => closed = true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed = true,
            Err(_) => {}
        }
    }
    let cut_at = t0.elapsed();
    c.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    if !closed {
        let (rest, c2) = read_to_close(&mut c);
        got.extend_from_slice(&rest);
        closed = c2;
    }
    let rs = parse_responses(&got, false);
    assert!(
        rs.first().is_some_and(|r| r.status == 408),
        "no 408: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(closed, "trickling body not closed");
    // 600 ms after the body started, with generous slack; never 4 s.
    assert!(
        cut_at < Duration::from_millis(3000),
        "cut off after {cut_at:?}"
    );
}

/// Case 39: a client that stops reading does not make the server buffer the
/// response: neither a large file nor pipelined echoes pile up in its memory.
fn send_buffer_is_bounded(model: Variant) {
    let dir = TempDir::new(&format!("sendbuf-{model}"));
    std::fs::write(dir.0.join("big.bin"), vec![7u8; 32 * 1024 * 1024]).unwrap();
    let s = Server::start_with(model, &["--root", dir.path(), "--write-timeout", "20s"]);
    assert_eq!(s.get("/").status, 200);
    let base = s.rss_kib();
    let c = s.connect();
    socket2::SockRef::from(&c)
        .set_recv_buffer_size(64 * 1024)
        .unwrap();
    (&c).write_all(b"GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // 40 pipelined 1 MiB echoes, never read: the writer blocks once the server
    // stops reading.
    let e = s.connect();
    socket2::SockRef::from(&e)
        .set_recv_buffer_size(64 * 1024)
        .unwrap();
    e.set_write_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut w = e.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let body = vec![b'e'; 1024 * 1024];
        let mut sent = 0usize;
        for _ in 0..40 {
            let head = format!(
                "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            if w.write_all(head.as_bytes()).is_err() || w.write_all(&body).is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    let sent = writer.join().unwrap();
    assert!(sent < 40, "the server read all 40 MiB of echoes unanswered");
    let grew = s.rss_kib().saturating_sub(base);
    // The responses are 32 and 40 MiB; the server may hold only a bounded part.
    assert!(
        grew < 16 * 1024,
        "server RSS grew by {grew} KiB while two clients did not read"
    );
    assert_eq!(s.get("/json").status, 200, "others still served");
    drop((c, e));
}

/// HEAD on `/sleep/<ms>` and `/stats`: the GET's status and headers, no body, and
/// the next request on the connection still parses.
fn head_on_sleep_and_stats(model: Variant) {
    let s = Server::start(model);
    let mut c = s.connect();
    let t0 = Instant::now();
    c.write_all(
        b"HEAD /sleep/200 HTTP/1.1\r\nHost: t\r\n\r\nGET /sleep/200 HTTP/1.1\r\nHost: t\r\n\r\n\
          HEAD /stats HTTP/1.1\r\nHost: t\r\n\r\nGET /stats HTTP/1.1\r\nHost: t\r\n\r\n\
          GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let rs = read_responses(&mut c, &[true, false, true, false, false]);
    // HEAD waits like GET does (both are the same handler).
    assert!(t0.elapsed() >= Duration::from_millis(400));
    let (head, get) = (&rs[0], &rs[1]);
    assert_eq!((head.status, get.status), (200, 200));
    assert_eq!(get.text(), "slept 200ms");
    assert_eq!(head.header("content-length"), Some("11"));
    assert_eq!(head.header("content-type"), get.header("content-type"));
    assert!(head.body.is_empty());
    let (head, get) = (&rs[2], &rs[3]);
    assert_eq!((head.status, get.status), (200, 200));
    assert_eq!(head.header("content-type"), Some("application/json"));
    assert_eq!(head.header("content-type"), get.header("content-type"));
    let n: usize = head.header("content-length").unwrap().parse().unwrap();
    assert!(n > 50, "HEAD /stats announces {n} bytes");
    assert!(get.text().starts_with("{\"model\":"), "{}", get.text());
    assert_eq!(rs[4].text(), "Hello, World!", "pipelining broke after HEAD");
    let (_, closed) = read_to_close(&mut c);
    assert!(closed);
}

/// `/sleep/60000` is accepted (it has not answered after a while, and the
/// connection is still open), `/sleep/60001` is a 400.
fn sleep_60000_is_accepted(model: Variant) {
    let s = Server::start(model);
    let mut c = s.connect();
    c.write_all(b"GET /sleep/60000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    c.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut b = [0u8; 256];
    match c.read(&mut b) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!(
            "/sleep/60000 answered early: {other:?} {:?}",
            String::from_utf8_lossy(&b)
        ),
    }
    let r = s.get("/sleep/60001");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(s.get("/sleep/60000x").status, 400);
}

/// Non-default `--max-target/--max-headers/--max-head/--max-body` reach the core:
/// requests the defaults would serve are refused with the right status.
fn limit_flags_reach_the_core(model: Variant) {
    let s = Server::start_with(
        model,
        &[
            "--max-target",
            "100",
            "--max-headers",
            "5",
            "--max-head",
            "1024",
            "--max-body",
            "10",
        ],
    );
    let req = |target: &str, fields: &str, body: &str| {
        let cl = if body.is_empty() {
            String::new()
        } else {
            format!("Content-Length: {}\r\n", body.len())
        };
        let method = if body.is_empty() { "GET" } else { "POST" };
        format!(
            "{method} {target} HTTP/1.1\r\nHost: t\r\n{fields}{cl}Connection: close\r\n\r\n{body}"
        )
        .into_bytes()
    };
    let target = |n: usize| format!("/?{}", "a".repeat(n - 2));
    let fields = |n: usize| -> String { (0..n).map(|i| format!("X-{i}: v\r\n")).collect() };
    let pad = |n: usize| format!("X: {}\r\n", "v".repeat(n));
    let ok: Vec<(&str, Vec<u8>)> = vec![
        ("target of 100", req(&target(100), "", "")),
        // Host + 3 + Connection = 5 fields.
        ("5 fields", req("/", &fields(3), "")),
        ("head under 1 KiB", req("/", &pad(900), "")),
        ("body of 10", req("/echo", "", "0123456789")),
    ];
    for (case, raw) in ok {
        let rs = parse_responses(&s.exchange(&raw), false);
        assert_eq!(rs.first().map(|r| r.status), Some(200), "{case}");
    }
    let bad: Vec<(&str, Vec<u8>, u16)> = vec![
        ("target of 101", req(&target(101), "", ""), 414),
        ("6 fields", req("/", &fields(4), ""), 431),
        ("head over 1 KiB", req("/", &pad(1200), ""), 431),
        ("body of 11", req("/echo", "", "0123456789a"), 413),
    ];
    let failures: Vec<String> = bad
        .iter()
        .filter_map(|(case, raw, status)| refused(&s, case, raw, *status))
        .collect();
    assert!(
        failures.is_empty(),
        "model {model}:\n{}",
        failures.join("\n")
    );
}

/// Case 7: `OPTIONS *` is answered 200 with `Allow` (the methods of any route).
fn options_star_has_allow(model: Variant) {
    let s = Server::start(model);
    let mut c = s.connect();
    c.write_all(b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let rs = read_responses(&mut c, &[false, false]);
    assert_well_formed(&rs[0]);
    assert_eq!(rs[0].status, 200);
    assert_eq!(rs[0].header("allow"), Some("GET, HEAD, POST, OPTIONS"));
    assert!(rs[0].body.is_empty());
    assert_eq!(rs[1].text(), "Hello, World!");
}

per_model!(
    options_star_has_allow,
    malformed_requests_are_refused,
    values_are_trimmed,
    eof_before_the_last_chunk_is_closed,
    client_closing_mid_body_is_quiet,
    expect_continue_interim_and_413,
    trickled_body_times_out,
    send_buffer_is_bounded,
    head_on_sleep_and_stats,
    sleep_60000_is_accepted,
    limit_flags_reach_the_core,
);
