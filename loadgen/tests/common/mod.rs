//! A tiny threaded HTTP/1.1 server on 127.0.0.1 for the engine tests. It answers
//! every request head it sees (pipelining works), in a style chosen per test.
#![allow(dead_code)]

use loadgen::cli::LoadArgs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `200` with a Content-Length body.
    Length,
    /// `200` with a chunked body, written in small pieces.
    Chunked,
    /// `503` for every request.
    Unavailable,
    /// Never answers.
    Silent,
    /// Closes the connection on the first request without answering.
    Reset,
    /// Answers, then closes after every response (`Connection: close`).
    CloseEach,
    /// Like `Length`, but each response takes [`SLOW_SERVICE`] (per connection,
    /// one request at a time).
    Slow,
}

/// How long a [`Style::Slow`] server takes per response.
pub const SLOW_SERVICE: std::time::Duration = std::time::Duration::from_millis(50);

/// A running test server, the request heads it has seen and the connections it accepted.
pub struct TestServer {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicU64>,
    pub accepted: Arc<AtomicU64>,
    /// Request targets in the order they arrived (all connections together).
    pub targets: Arc<std::sync::Mutex<Vec<String>>>,
}

pub fn start(style: Style) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicU64::new(0));
    let seen = requests.clone();
    let accepted = Arc::new(AtomicU64::new(0));
    let accepts = accepted.clone();
    let targets = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = targets.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            accepts.fetch_add(1, Ordering::Relaxed);
            let seen = seen.clone();
            let log = log.clone();
            std::thread::spawn(move || serve(conn, style, &seen, &log));
        }
    });
    TestServer {
        addr,
        requests,
        accepted,
        targets,
    }
}

fn serve(mut s: TcpStream, style: Style, seen: &AtomicU64, log: &std::sync::Mutex<Vec<String>>) {
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut out = Vec::new();
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            if let Some(target) = head.split(' ').nth(1) {
                log.lock().unwrap().push(target.to_string());
            }
            pending.drain(..end + 4);
            seen.fetch_add(1, Ordering::Relaxed);
            match style {
                Style::Slow => {
                    std::thread::sleep(SLOW_SERVICE);
                    if s
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .is_err()
                    {
                        return;
                    }
                }
                Style::Length => out.extend_from_slice(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!",
                ),
                Style::Chunked => out.extend_from_slice(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n8\r\n, World!\r\n0\r\n\r\n",
                ),
                Style::Unavailable => out.extend_from_slice(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy",
                ),
                Style::Silent => {}
                Style::Reset => return,
                Style::CloseEach => {
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
                    );
                    return;
                }
            }
        }
        if style == Style::Chunked {
            // Dribble the bytes so responses straddle reads.
            for piece in out.chunks(7) {
                if s.write_all(piece).is_err() {
                    return;
                }
            }
        } else if !out.is_empty() && s.write_all(&out).is_err() {
            return;
        }
    }
}

/// Load flags for a quiet bounded run against `addr`.
pub fn args(addr: SocketAddr, path: &str) -> LoadArgs {
    LoadArgs {
        url: Some(format!("http://{addr}{path}")),
        connections: 4,
        threads: None,
        cpus: None,
        duration: None,
        requests: Some(400),
        warmup: "0s".into(),
        rate: None,
        start_at: None,
        timeout: "5s".into(),
        headers: Vec::new(),
        method: "GET".into(),
        body: None,
        body_file: None,
        also: Vec::new(),
        pipeline: 1,
        no_keepalive: false,
        recv_buffer: None,
        json: None,
        hgrm: None,
        server_pid: None,
        quiet: true,
        progress: false,
        no_summary: true,
    }
}
