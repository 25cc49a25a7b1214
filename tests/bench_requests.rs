//! `gvhttpd bench -H/-m/--body/--body-file` through the real binary: what each
//! flag puts on the wire, captured by a small loopback server in this test, and
//! the same run against a real `gvhttpd serve` echoing the body back.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};

const BIN: &str = env!("CARGO_BIN_EXE_gvhttpd");

/// A loopback server that records every request (head and body, by its
/// Content-Length) and answers each with a 200.
struct Capture {
    url: String,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

fn capture() -> Capture {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { continue };
            let log = Arc::clone(&log);
            std::thread::spawn(move || serve(conn, &log));
        }
    });
    Capture { url, seen }
}

fn serve(mut s: TcpStream, log: &Mutex<Vec<Vec<u8>>>) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        // Every complete request in `pending`: head, then Content-Length bytes.
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if pending.len() < end + 4 + len {
                break;
            }
            let req: Vec<u8> = pending.drain(..end + 4 + len).collect();
            log.lock().unwrap().push(req);
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

/// `gvhttpd bench` with `args` for exactly 20 requests on 2 connections; its
/// stdout, after checking that it succeeded and counted 20 successes.
fn bench(url: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["bench", "--url", url, "-c", "2", "-n", "20"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("20 requests in"), "{args:?}: {stdout}");
    stdout
}

#[test]
fn headers_method_and_body_reach_the_wire() {
    let srv = capture();
    bench(
        &format!("{}/echo?x=1", srv.url),
        &[
            "-m",
            "post",
            "-H",
            "X-Test: one",
            "-H",
            "Content-Type: text/x-bench",
            "--body",
            "hello bench",
        ],
    );
    let seen = srv.seen.lock().unwrap();
    // Warm-up is off by default: exactly the counted requests were sent.
    assert_eq!(seen.len(), 20);
    for req in seen.iter() {
        let text = String::from_utf8_lossy(req);
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        assert_eq!(lines.next(), Some("POST /echo?x=1 HTTP/1.1"), "{text}");
        let fields: Vec<&str> = lines.collect();
        for want in [
            "X-Test: one",
            "Content-Type: text/x-bench",
            "Content-Length: 11",
        ] {
            assert!(fields.contains(&want), "{want} missing: {text}");
        }
        assert_eq!(body, "hello bench");
    }
}

#[test]
fn body_file_is_sent_byte_for_byte() {
    let srv = capture();
    let path = std::env::temp_dir().join(format!("gv-bench-body-{}.bin", std::process::id()));
    let body: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &body).unwrap();
    bench(
        &format!("{}/echo", srv.url),
        &["-m", "PUT", "--body-file", path.to_str().unwrap()],
    );
    std::fs::remove_file(&path).unwrap();
    let seen = srv.seen.lock().unwrap();
    assert_eq!(seen.len(), 20);
    for req in seen.iter() {
        let end = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&req[..end]);
        assert!(head.starts_with("PUT /echo HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nContent-Length: 70000\r\n"), "{head}");
        assert!(req[end..] == body[..], "body differs");
    }
}

#[test]
fn a_posted_body_is_echoed_by_the_real_server() {
    let mut srv = Command::new(BIN)
        .args(["serve", "--model", "tokio", "--workers", "1"])
        .args(["--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(srv.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = loadgen::compare::parse_ready(line.trim()).expect(&line);
    // One response to the same request, for its exact size (the Date is fixed width).
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nConnection: close\r\n\r\nping",
    )
    .unwrap();
    let mut one = Vec::new();
    c.read_to_end(&mut one).unwrap();
    let one = String::from_utf8(one).unwrap();
    assert!(one.ends_with("\r\n\r\nping"), "{one}");
    let one_len = one.replace("Connection: close\r\n", "").len() as u64;
    let json = std::env::temp_dir().join(format!("gv-bench-echo-{}.json", std::process::id()));
    bench(
        &format!("http://{addr}/echo"),
        &[
            "-m",
            "POST",
            "--body",
            "ping",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let _ = srv.kill();
    let _ = srv.wait();
    let report =
        loadgen::report::Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    assert_eq!(report.config.method, "POST");
    assert_eq!(report.result.counts.status_2xx, 20);
    // Every response was that echo of the 4-byte body (keep-alive: no close field).
    assert_eq!(report.result.counts.bytes_read, 20 * one_len);
}
