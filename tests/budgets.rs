//! Deadlines a client cannot stretch and the memory budget for connection
//! buffers (`--response-timeout`, `--max-buffer-memory`), under every model.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use gvhttpd::config::Variant;
use socket2::{Domain, Socket, Type};

/// A client that reads a large file a little at a time keeps making progress, so
/// the write timeout (30 s) never fires; the response timeout (1 s here) does:
/// the connection is cut long before the file could have been read.
fn a_slow_reader_is_cut_at_the_response_timeout(model: Variant) {
    let dir = TempDir::new("response-timeout");
    let size = 8 << 20;
    std::fs::write(format!("{}/big.bin", dir.path()), vec![7u8; size]).unwrap();
    let s = Server::start_with(model, &["--root", dir.path(), "--response-timeout", "1s"]);
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap(); // before connect: a small window
    sock.connect(&s.addr.into()).unwrap();
    let mut c: TcpStream = sock.into();
    c.write_all(b"GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    c.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let t0 = Instant::now();
    let mut got = 0;
    let mut buf = [0u8; 1024];
    let closed = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "{model}: still open after {:?} ({got} bytes read): no response deadline",
            t0.elapsed()
        );
        match c.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break true, // a reset is a cut too
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(closed);
    assert!(got < size, "{model}: the whole file ({got} bytes) was read");
    assert!(got > 0, "{model}: nothing was sent before the cut");
}

/// While connections hold the whole buffer budget, new connections get a 503;
/// once the connection that held it is gone, new ones are served again, and
/// `/stats` reports the budget.
fn the_buffer_budget_refuses_new_connections_while_spent(model: Variant) {
    let s = Server::start_with(model, &["--max-buffer-memory", "64KiB"]);
    let limit = 64 * 1024;
    let stats = s.get("/stats");
    assert!(
        stats.text().contains(&format!(
            "\"buffer_memory\":{{\"used\":0,\"limit\":{limit}}}"
        )),
        "{model}: {}",
        stats.text()
    );
    // A body of 1 MiB announced, 256 KiB of it sent: the input buffer grows past
    // the budget (and then stops growing: the rest waits in the socket).
    let mut hog = s.connect();
    hog.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n")
        .unwrap();
    let chunk = vec![b'x'; 16 * 1024];
    for _ in 0..16 {
        hog.write_all(&chunk).unwrap();
    }
    let t0 = Instant::now();
    let refused = loop {
        let r = s.get("/");
        if r.status == 503 {
            break r;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{model}: new connections still served with the budget spent"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(refused.header("connection"), Some("close"));
    // Gone at once, with a reset: a FIN would wait behind the body bytes still
    // queued in the client's socket, which the server does not read meanwhile.
    socket2::SockRef::from(&hog)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(hog);
    let t0 = Instant::now();
    while s.get("/").status != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{model}: the budget was not given back when the connection closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = s.get("/stats").text();
    assert!(
        stats.contains(&format!(
            "\"buffer_memory\":{{\"used\":0,\"limit\":{limit}}}"
        )),
        "{model}: {stats}"
    );
}

per_model!(
    a_slow_reader_is_cut_at_the_response_timeout,
    the_buffer_budget_refuses_new_connections_while_spent,
);
