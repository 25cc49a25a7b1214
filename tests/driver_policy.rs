//! Connection policy that used to drift between the models and now lives in the
//! one driver and acceptor: each case runs against every model.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use gvhttpd::config::Variant;

/// A request whose reply is a file, completed only after shutdown began, is
/// answered as the last one (`Connection: close`).
fn file_reply_during_shutdown_is_the_last(model: Variant) {
    let dir = TempDir::new("policy-file");
    std::fs::write(format!("{}/f.txt", dir.path()), b"file body").unwrap();
    let mut s = Server::start_with(model, &["--root", dir.path(), "--shutdown-grace", "3s"]);
    let mut c = s.connect();
    // Half a head: the connection is not idle, so shutdown keeps it open.
    c.write_all(b"GET /static/f.txt HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(150));
    s.signal(15);
    std::thread::sleep(Duration::from_millis(150));
    c.write_all(b"Host: t\r\n\r\n").unwrap();
    let r = read_response(&mut c, false);
    assert_eq!((r.status, r.text().as_str()), (200, "file body"));
    assert_eq!(r.header("connection"), Some("close"), "{model}");
    assert_eq!(s.wait_exit(Duration::from_secs(4)), Some(0));
}

/// During the grace period the listener is closed at once: a new client is
/// refused by the kernel instead of hanging in a backlog nobody accepts from.
fn listener_closes_at_once_during_grace(model: Variant) {
    let mut s = Server::start_with(model, &["--shutdown-grace", "5s"]);
    let mut busy = s.connect();
    busy.write_all(b"GET /sleep/3000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    s.signal(15);
    let until = Instant::now() + Duration::from_secs(1);
    loop {
        match TcpStream::connect_timeout(&s.addr, Duration::from_millis(200)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            Ok(_) | Err(_) => {
                assert!(
                    Instant::now() < until,
                    "{model}: new connections still accepted 1 s into the grace period"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    // The in-flight response still completes.
    let r = read_response(&mut busy, false);
    assert_eq!(r.status, 200);
    assert_eq!(s.wait_exit(Duration::from_secs(6)), Some(0));
}

/// The `open` connection count of `/stats`, the asking connection included.
fn open_connections(s: &Server) -> u64 {
    let doc = s.stats();
    let at = doc.find("\"open\":").expect("open in /stats") + 7;
    doc[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number")
}

/// Clients that send an upload and then reset their connection (the attack of
/// issue 14: 100 clients, a 1 MiB body each, then `SO_LINGER {1,0}`) are gone
/// at once, not held until `--body-timeout`.
fn reset_uploads_are_noticed_at_once(model: Variant) {
    let s = Server::start_in_shell(model, "exec \"$@\"", &["--body-timeout", "30s"]);
    let addr = s.addr;
    let uploads: Vec<_> = (0..100)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                c.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                let _ = c.write_all(
                    b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n",
                );
                // Half the clients stop in the middle of the body, half send it all.
                let len = if i % 2 == 0 { 512 * 1024 } else { 1024 * 1024 };
                let _ = c.write_all(&vec![b'x'; len]);
                c
            })
        })
        .collect();
    let clients: Vec<TcpStream> = uploads.into_iter().map(|t| t.join().unwrap()).collect();
    for c in clients {
        socket2::SockRef::from(&c)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(c); // RST
    }
    let until = Instant::now() + Duration::from_secs(1);
    loop {
        let open = open_connections(&s);
        if open == 1 {
            break;
        }
        assert!(
            Instant::now() < until,
            "{model}: {} reset uploads still open after 1 s",
            open - 1
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Keep-alive clients that keep sending while the server shuts down see their
/// responses and then a FIN, never a reset.
fn shutdown_never_resets_keep_alive_clients(model: Variant) {
    let mut s = Server::start_with(model, &["--shutdown-grace", "3s"]);
    let addr = s.addr;
    // Each client loops until the server ends its connection (bounded by the
    // grace period; a read that times out is a failure too).
    let clients: Vec<_> = (0..16)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut served = 0;
                let mut buf = [0u8; 4096];
                loop {
                    if c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").is_err() {
                        return Ok(served);
                    }
                    // Read one response (the server may also end with a FIN).
                    let mut got = Vec::new();
                    loop {
                        match c.read(&mut buf) {
                            Ok(0) => return Ok(served),
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                                return Err(format!("reset after {served} responses"))
                            }
                            Err(e) => return Err(format!("{e} after {served} responses")),
                        }
                        if got.ends_with(b"Hello, World!") {
                            served += 1;
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    s.signal(15);
    for c in clients {
        let r = c.join().unwrap();
        assert!(r.is_ok(), "{model}: {}", r.unwrap_err());
    }
    assert_eq!(s.wait_exit(Duration::from_secs(5)), Some(0));
}

/// A pipelined request's header deadline runs from its own first bytes, not from
/// the request before it (`http-behaviour.md` case 37): with a 2 s header timeout,
/// request 2 begins at 1 s (with request 1's end) and is completed at 2.5 s, which
/// is within its own deadline (3 s) though past request 1's (2 s).
fn pipelined_request_gets_its_own_header_deadline(model: Variant) {
    let s = Server::start_with(model, &["--header-timeout", "2s"]);
    let mut c = s.connect();
    let t0 = Instant::now();
    c.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    c.write_all(b"Host: a\r\n\r\nGET /json HTTP/1.1\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, false).status, 200);
    let left = Duration::from_millis(2500).saturating_sub(t0.elapsed());
    std::thread::sleep(left);
    c.write_all(b"Host: a\r\n\r\n").unwrap();
    let r = read_response(&mut c, false);
    assert_eq!(r.status, 200, "{model}: request 2 got {}", r.status);
    assert_eq!(r.text(), r#"{"message":"Hello, World!"}"#);
}

per_model!(
    file_reply_during_shutdown_is_the_last,
    listener_closes_at_once_during_grace,
    reset_uploads_are_noticed_at_once,
    shutdown_never_resets_keep_alive_clients,
    pipelined_request_gets_its_own_header_deadline,
);
