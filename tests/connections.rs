//! Connection behaviour (`http-behaviour.md` cases 31–43) under every model:
//! 100-continue, HEAD, HTTP/1.0, pipelining, half-close, slow clients, idle
//! connections, resets, descriptor exhaustion, --max-conns, graceful shutdown.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{
    mask_dates, parse_responses, read_response, read_to_close, shutdown_write, Server, TempDir,
};
use gvhttpd::config::Variant;

fn expect_continue(model: Variant) {
    let s = Server::start(model);
    let mut c = s.connect();
    c.write_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .unwrap();
    let interim = read_response(&mut c, false);
    assert_eq!(interim.status, 100, "{interim:?}");
    c.write_all(b"ping").unwrap();
    let r = read_response(&mut c, false);
    assert_eq!((r.status, r.text().as_str()), (200, "ping"));
    // HTTP/1.0 never gets 100; the server just waits for the body.
    let mut c = s.connect();
    c.write_all(b"POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        .unwrap();
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 64];
    assert!(
        c.read(&mut b).is_err(),
        "sent something before the body to HTTP/1.0"
    );
    c.write_all(b"pong").unwrap();
    c.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    let (out, _) = read_to_close(&mut c);
    assert_eq!(parse_responses(&out, false)[0].text(), "pong");
}

fn head_has_get_headers_and_no_body(model: Variant) {
    let s = Server::start(model);
    let mut c = s.connect();
    c.write_all(b"HEAD /json HTTP/1.1\r\nHost: t\r\n\r\nGET /json HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let [head, get] = <[_; 2]>::try_from(common::read_responses(&mut c, &[true, false])).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), get.header("content-length"));
    assert_eq!(head.header("content-type"), get.header("content-type"));
    assert_eq!(get.text(), r#"{"message":"Hello, World!"}"#);
}

fn http10_keep_alive_only_when_asked(model: Variant) {
    let s = Server::start(model);
    let mut c = s.connect();
    for _ in 0..3 {
        c.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let r = read_response(&mut c, false);
        assert_eq!(r.header("connection"), Some("keep-alive"));
        assert!(r.header("content-length").is_some() && r.header("transfer-encoding").is_none());
    }
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let (out, closed) = read_to_close(&mut c);
    assert!(closed && parse_responses(&out, false).len() == 1);
}

fn connection_close_ignores_what_follows(model: Variant) {
    let s = Server::start(model);
    let out = s.exchange(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /json HTTP/1.1\r\nHost: t\r\n\r\n");
    let rs = parse_responses(&out, false);
    assert_eq!(rs.len(), 1, "{:?}", String::from_utf8_lossy(&out));
    assert_eq!(rs[0].header("connection"), Some("close"));
}

const PIPELINE: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n\
POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
GET /sleep/1 HTTP/1.1\r\nHost: t\r\n\r\n\
POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n\
HEAD / HTTP/1.1\r\nHost: t\r\n\r\n\
GET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

fn pipelined_responses_in_order_however_split(model: Variant) {
    let s = Server::start(model);
    let at_once = mask_dates(&s.exchange(PIPELINE));
    let heads = [false, false, false, false, true, false];
    let rs = common::parse_sequence(&at_once, &heads);
    let bodies: Vec<String> = rs.iter().map(|r| r.text()).collect();
    assert_eq!(
        bodies,
        [
            "Hello, World!",
            "hello",
            "slept 1ms",
            "hi",
            "",
            r#"{"message":"Hello, World!"}"#
        ]
    );
    assert_eq!(rs[4].header("content-length"), Some("13"));
    let text = String::from_utf8_lossy(&at_once);
    // One byte per write, and in uneven pieces: byte-identical output.
    for piece in [1usize, 7, 100] {
        let mut c = s.connect();
        for chunk in PIPELINE.chunks(piece) {
            c.write_all(chunk).unwrap();
            if piece == 1 {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        let (out, closed) = read_to_close(&mut c);
        assert!(closed);
        assert_eq!(
            String::from_utf8_lossy(&mask_dates(&out)),
            text,
            "pieces of {piece}"
        );
    }
}

fn half_close_still_gets_the_response(model: Variant) {
    let s = Server::start(model);
    let mut c = s.connect();
    c.write_all(b"GET /json HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    shutdown_write(&c);
    let (out, closed) = read_to_close(&mut c);
    assert!(closed);
    assert_eq!(
        parse_responses(&out, false)[0].text(),
        r#"{"message":"Hello, World!"}"#
    );
}

fn slow_header_and_body_time_out(model: Variant) {
    let s = Server::start_with(
        model,
        &["--header-timeout", "600ms", "--body-timeout", "600ms"],
    );
    let t0 = Instant::now();
    let mut slow = s.connect();
    let mut slow_body = s.connect();
    slow_body
        .write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
        .unwrap();
    // Read between bytes, so the 408 is collected before a write could meet a reset.
    slow.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut out = Vec::new();
    let mut closed = false;
    let mut buf = [0u8; 4096];
    for b in b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: "
        .iter()
        .cycle()
        .take(60)
    {
        if closed || slow.write_all(&[*b]).is_err() {
            break;
        }
        // Everyone else is still served meanwhile.
        assert_eq!(s.get("/").status, 200);
        match slow.read(&mut buf) {
            Ok(0) => closed = true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed = true,
            Err(_) => {}
        }
    }
    slow.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    if !closed {
        let (rest, c) = read_to_close(&mut slow);
        out.extend_from_slice(&rest);
        closed = c;
    }
    assert!(closed, "trickling client never cut off");
    assert!(
        parse_responses(&out, false)
            .first()
            .is_some_and(|r| r.status == 408),
        "no 408 for the trickled header: {:?}",
        String::from_utf8_lossy(&out)
    );
    let (out, closed) = read_to_close(&mut slow_body);
    assert!(
        closed && parse_responses(&out, false)[0].status == 408,
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "timeouts did not fire"
    );
}

fn idle_connections_are_cheap_and_reaped(model: Variant) {
    let s = Server::start_with(model, &["--idle-timeout", "1500ms"]);
    // Let the server settle, then take the descriptor baseline.
    assert_eq!(s.get("/").status, 200);
    std::thread::sleep(Duration::from_millis(100));
    let baseline = s.fd_count();
    let rss0 = s.rss_kib();
    let mut idle: Vec<TcpStream> = (0..500).map(|_| s.connect()).collect();
    for c in idle.iter_mut().take(50) {
        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        assert_eq!(read_response(c, false).status, 200);
    }
    // A new request is served promptly while 500 connections sit idle.
    assert_eq!(s.get("/json").status, 200);
    assert!(
        s.fd_count() >= baseline + 400,
        "idle connections not held open"
    );
    // Cheap: a few KiB each, never a buffer of the size limits (16 KiB + 1 MiB).
    let per_conn = s.rss_kib().saturating_sub(rss0) as f64 / idle.len() as f64;
    assert!(
        per_conn < 24.0,
        "{per_conn:.1} KiB of RSS per idle connection"
    );
    // The idle timeout closes them all; descriptors return to the baseline.
    for c in idle.iter_mut().take(20) {
        let (_, closed) = read_to_close(c);
        assert!(closed, "idle connection not closed after the idle timeout");
    }
    let until = Instant::now() + Duration::from_secs(5);
    while s.fd_count() > baseline && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        s.fd_count() <= baseline,
        "fds {} > baseline {baseline}",
        s.fd_count()
    );
}

fn reset_and_stalled_readers_do_not_hurt(model: Variant) {
    let dir = TempDir::new(&format!("reset-{model}"));
    std::fs::write(dir.0.join("big.bin"), vec![7u8; 16 * 1024 * 1024]).unwrap();
    let s = Server::start_with(model, &["--root", dir.path(), "--write-timeout", "500ms"]);
    // Reset mid-response.
    for _ in 0..5 {
        let mut c = s.connect();
        c.write_all(b"GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut b = [0u8; 1000];
        let _ = c.read(&mut b);
        socket2::SockRef::from(&c)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(c);
    }
    // A reader that stops reading is cut off by the write timeout.
    let mut stalled = s.connect();
    stalled
        .write_all(b"GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.get("/").status, 200, "server stopped serving");
    let until = Instant::now() + Duration::from_secs(6);
    let mut open = String::new();
    while Instant::now() < until {
        open = s.stats();
        if open.contains("\"open\":1,") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        open.contains("\"open\":1,"),
        "stalled connection never closed: {open}"
    );
    drop(stalled);
}

fn max_conns_is_enforced(model: Variant) {
    let s = Server::start_with(model, &["--max-conns", "3"]);
    let mut held: Vec<TcpStream> = (0..3).map(|_| s.connect()).collect();
    for c in held.iter_mut() {
        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        assert_eq!(read_response(c, false).status, 200);
    }
    let mut extra = s.connect();
    let _ = extra.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let (out, closed) = read_to_close(&mut extra);
    assert!(closed, "over-limit connection was not closed promptly");
    let r = parse_responses(&out, false);
    assert!(
        r.first().is_some_and(|r| r.status == 503),
        "no 503 beyond --max-conns: {:?}",
        String::from_utf8_lossy(&out)
    );
    drop(held.pop());
    s.wait_until_served(
        Duration::from_secs(3),
        "no recovery after a connection closed",
    );
}

fn descriptor_exhaustion_backs_off(model: Variant) {
    let mut s = Server::start_in_shell(model, "ulimit -n 64 && exec \"$@\"", &[]);
    // A keep-alive connection from before the exhaustion (case 41: it stays served).
    let mut kept = s.connect();
    kept.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut kept, false).status, 200);
    let mut conns: Vec<TcpStream> = Vec::new();
    for _ in 0..120 {
        if let Ok(c) = TcpStream::connect(s.addr) {
            conns.push(c);
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    // The limit was really hit: every descriptor is in use, and a new connection
    // waits in the backlog unanswered.
    assert!(
        s.fd_count() >= 60,
        "only {} descriptors in use: the limit was never reached",
        s.fd_count()
    );
    let mut waiting = s.connect();
    waiting
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 64];
    assert!(
        waiting.read(&mut b).is_err(),
        "a connection was answered while descriptors were exhausted"
    );
    let before = s.cpu_ticks();
    std::thread::sleep(Duration::from_millis(1000));
    let used = s.cpu_ticks() - before;
    // 100 ticks/s is a core at 100 %: a spinning accept loop would be near it.
    assert!(
        used < 50,
        "server burned {used} ticks in 1 s while out of descriptors"
    );
    // Existing connections are still served meanwhile.
    kept.write_all(b"GET /json HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_response(&mut kept, false).text(),
        r#"{"message":"Hello, World!"}"#
    );
    drop(conns);
    s.wait_until_served(
        Duration::from_secs(5),
        "no recovery after descriptors were freed",
    );
    // The connection that waited in the backlog is served too.
    waiting.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    assert_eq!(read_response(&mut waiting, false).status, 200);
    assert!(s.child.try_wait().unwrap().is_none(), "server died");
}

fn graceful_shutdown(model: Variant) {
    let mut s = Server::start_with(model, &["--shutdown-grace", "3s"]);
    let mut idle = s.connect();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut idle, false).status, 200);
    let mut busy = s.connect();
    busy.write_all(b"GET /sleep/800 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    s.signal(15);
    // The idle keep-alive connection is closed.
    let (out, closed) = read_to_close(&mut idle);
    assert!(
        closed && out.is_empty(),
        "idle connection: {:?}",
        String::from_utf8_lossy(&out)
    );
    // The in-flight response is finished, marked as the last one.
    let r = read_response(&mut busy, false);
    assert_eq!((r.status, r.text().as_str()), (200, "slept 800ms"));
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(
        s.wait_exit(Duration::from_secs(4)),
        Some(0),
        "no clean exit within the grace period"
    );
    assert!(
        TcpStream::connect(s.addr).is_err(),
        "still accepting after shutdown"
    );
}

fn shutdown_grace_bounds_stuck_work(model: Variant) {
    let mut s = Server::start_with(model, &["--shutdown-grace", "500ms"]);
    let mut busy = s.connect();
    busy.write_all(b"GET /sleep/10000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.signal(2);
    assert_eq!(
        s.wait_exit(Duration::from_secs(3)),
        Some(0),
        "grace period not enforced"
    );
}

per_model!(
    expect_continue,
    head_has_get_headers_and_no_body,
    http10_keep_alive_only_when_asked,
    connection_close_ignores_what_follows,
    pipelined_responses_in_order_however_split,
    half_close_still_gets_the_response,
    slow_header_and_body_time_out,
    idle_connections_are_cheap_and_reaped,
    reset_and_stalled_readers_do_not_hurt,
    max_conns_is_enforced,
    descriptor_exhaustion_backs_off,
    graceful_shutdown,
    shutdown_grace_bounds_stuck_work,
);
