//! The reverse proxy (`serve --upstream`, issue 23) under every model row: a
//! small upstream in this process, on loopback, plays each part the issue names
//! (an echo, one that resets, one that never answers, one that closes its
//! keep-alive connections, one that sends a large body), and the cases check
//! what the client sees, what the upstream sees, and the `/stats` counters
//! (`http-behaviour.md` cases 55–63).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{read_response, read_to_close, Server, IO_TIMEOUT};
use gvhttpd::config::{Model, Variant};
use socket2::{Domain, Socket, Type};

/// What the in-test upstream does with each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Keep-alive; a request with a body gets it back (chunked if it came
    /// chunked), one without gets its own head as the body.
    Echo,
    /// Answers one request per connection as `Echo` does, then closes the
    /// connection without having said so.
    OneShot,
    /// Reads the request, then resets the connection.
    Reset,
    /// Reads the request and never answers.
    Silent,
    /// Answers with a `BIG`-byte body, as fast as the proxy takes it.
    Big,
    /// Promises 100,000 bytes, sends 1,000, then closes.
    Truncate,
}

/// The large body of `Mode::Big`.
const BIG: u64 = 128 << 20;

/// The in-test upstream: its address, and for `Mode::Big` the bytes of body
/// written so far and how each connection's body ended (true: whole).
struct Upstream {
    addr: SocketAddr,
    written: Arc<AtomicU64>,
    ended: mpsc::Receiver<bool>,
}

impl Upstream {
    fn start(mode: Mode) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let written = Arc::new(AtomicU64::new(0));
        let (tx, ended) = mpsc::channel();
        let w = written.clone();
        thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(s) = s else { continue };
                let (w, tx) = (w.clone(), tx.clone());
                thread::spawn(move || serve_upstream(s, mode, &w, &tx));
            }
        });
        Upstream {
            addr,
            written,
            ended,
        }
    }
}

/// One request as the upstream read it: the head (text) and the decoded body.
struct UpRequest {
    head: String,
    body: Vec<u8>,
    chunked: bool,
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<UpRequest> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let field = |name: &str| {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let chunked = field("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            if n == 0 {
                let mut end = String::new();
                r.read_line(&mut end).ok()?;
                break;
            }
            let at = body.len();
            body.resize(at + n, 0);
            r.read_exact(&mut body[at..]).ok()?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).ok()?;
        }
    } else if let Some(n) = field("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body).ok()?;
    }
    Some(UpRequest {
        head,
        body,
        chunked,
    })
}

fn serve_upstream(s: TcpStream, mode: Mode, written: &AtomicU64, ended: &mpsc::Sender<bool>) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut s = s;
    while let Some(req) = read_request(&mut r) {
        match mode {
            Mode::Silent => {
                thread::sleep(Duration::from_secs(30));
                return;
            }
            Mode::Truncate => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
                let _ = s.write_all(&[b'y'; 1000]);
                return;
            }
            Mode::Reset => {
                let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                return;
            }
            Mode::Big => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n");
                let _ = s.write_all(head.as_bytes());
                let chunk = vec![b'x'; 64 * 1024];
                let mut left = BIG;
                s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    if s.write_all(&chunk[..n]).is_err() {
                        let _ = ended.send(false);
                        return;
                    }
                    written.fetch_add(n as u64, Ordering::SeqCst);
                    left -= n as u64;
                }
                let _ = ended.send(true);
            }
            Mode::Echo | Mode::OneShot => {
                let is_head = req.head.starts_with("HEAD ");
                let body = if req.body.is_empty() && !req.chunked {
                    req.head.clone().into_bytes()
                } else {
                    req.body
                };
                let mut out = Vec::new();
                if req.chunked {
                    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
                    for c in body.chunks(7777) {
                        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                        out.extend_from_slice(c);
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b"0\r\n\r\n");
                } else {
                    out.extend_from_slice(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                             Keep-Alive: timeout=60\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    );
                    if !is_head {
                        out.extend_from_slice(&body);
                    }
                }
                if s.write_all(&out).is_err() {
                    return;
                }
                if mode == Mode::OneShot {
                    return;
                }
            }
        }
    }
}

/// `serve` for row `v` proxying to `upstreams`, with one worker (so that its
/// pool is the one every request of a case uses) and `extra` flags.
fn proxy(v: Variant, upstreams: &[SocketAddr], extra: &[&str]) -> Server {
    let mut cmd = Command::new(common::BIN);
    cmd.args([
        "serve",
        "--model",
        v.name(),
        "--addr",
        "127.0.0.1:0",
        "--workers",
        "1",
    ]);
    for u in upstreams {
        cmd.arg("--upstream").arg(u.to_string());
    }
    cmd.args(extra);
    Server::spawn(cmd, v)
}

/// A keep-alive request on `s`; the response (`head_only` for HEAD).
fn ask(s: &mut TcpStream, req: &str, head_only: bool) -> common::Response {
    s.write_all(req.as_bytes()).unwrap();
    read_response(s, head_only)
}

/// Decode a chunked body (the bytes after the head); None if it is incomplete.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&b[..eol]).ok()?;
        let n = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if n == 0 {
            return b.starts_with(b"\r\n").then_some(out);
        }
        out.extend_from_slice(b.get(..n)?);
        b = b.get(n + 2..)?;
    }
}

/// A body of `n` bytes that is not one repeated byte.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Case 55, Case 56 and Case 63: the target rewritten, hop-by-hop fields dropped, `Via`
/// and `X-Forwarded-For`; HEAD; keep-alive upstream; the access log's time.
fn get_and_head_through_the_proxy(v: Variant) {
    let up = Upstream::start(Mode::Echo);
    let dir = common::TempDir::new("proxy-log");
    let log = format!("{}/access.log", dir.path());
    let server = proxy(v, &[up.addr], &["--access-log", &log]);
    let mut s = server.connect();
    let r = ask(
        &mut s,
        "GET /proxy/x?y=1 HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\n\
         Keep-Alive: timeout=5\r\nTE: trailers\r\nX-Forwarded-For: 10.1.1.1\r\nAccept: */*\r\n\r\n",
        false,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.text();
    assert!(seen.starts_with("GET /x?y=1 HTTP/1.1\r\n"), "{seen}");
    assert!(
        seen.contains("Host: h\r\n") && seen.contains("Accept: */*\r\n"),
        "{seen}"
    );
    assert!(seen.contains("Via: 1.1 gvhttpd\r\n"), "{seen}");
    assert!(
        seen.contains("X-Forwarded-For: 10.1.1.1, 127.0.0.1\r\n"),
        "{seen}"
    );
    let lower = seen.to_ascii_lowercase();
    for hop in ["x-hop", "keep-alive", "connection:", "te:"] {
        assert!(!lower.contains(hop), "{hop} was forwarded: {seen}");
    }
    assert_eq!(r.header("via"), Some("1.1 gvhttpd"));
    assert_eq!(r.header("keep-alive"), None, "hop-by-hop field relayed");
    // HEAD: the head alone, and the connection goes on.
    let h = ask(&mut s, "HEAD /proxy/h HTTP/1.1\r\nHost: h\r\n\r\n", true);
    assert_eq!(h.status, 200);
    assert!(h.header("content-length").is_some_and(|l| l != "0"));
    assert!(h.body.is_empty());
    let r = ask(
        &mut s,
        "GET /proxy/again HTTP/1.1\r\nHost: h\r\n\r\n",
        false,
    );
    assert!(
        r.text().starts_with("GET /again HTTP/1.1\r\n"),
        "{}",
        r.text()
    );
    // One upstream connection, kept alive and reused.
    assert_eq!(server.stat("connects"), 1);
    assert_eq!(server.stat("reuses"), 2);
    // The access log gives each proxied request the upstream's time.
    let until = Instant::now() + IO_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let proxied: Vec<&str> = text.lines().filter(|l| l.contains("/proxy/")).collect();
        if proxied.len() == 3 {
            assert!(proxied.iter().all(|l| l.contains(" upstream=0.")), "{text}");
            break;
        }
        assert!(Instant::now() < until, "access log: {text}");
        thread::sleep(Duration::from_millis(50));
    }
    // Without --upstream, /proxy/ is an unknown path.
    let plain = Server::start(v);
    assert_eq!(plain.get("/proxy/x").status, 404);
}

/// Case 57: request and response bodies streamed, Content-Length and chunked.
fn request_bodies_stream_both_ways(v: Variant) {
    let up = Upstream::start(Mode::Echo);
    let server = proxy(v, &[up.addr], &[]);
    let body = pattern(300 * 1024 + 17);
    // Content-Length in, Content-Length out.
    let mut s = server.connect();
    let head = format!(
        "POST /proxy/echo HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    for part in body.chunks(50_000) {
        s.write_all(part).unwrap();
    }
    let r = read_response(&mut s, false);
    assert_eq!(r.status, 200);
    assert!(
        r.body == body,
        "the echoed body differs ({} bytes)",
        r.body.len()
    );
    // Chunked in, chunked out.
    s.write_all(b"POST /proxy/echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .unwrap();
    for part in body.chunks(33_333) {
        s.write_all(format!("{:x}\r\n", part.len()).as_bytes())
            .unwrap();
        s.write_all(part).unwrap();
        s.write_all(b"\r\n").unwrap();
    }
    s.write_all(b"0\r\n\r\n").unwrap();
    let (raw, closed) = read_to_close(&mut s);
    assert!(closed);
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let got = dechunk(&raw[end..]).expect("a complete chunked body");
    assert!(
        got == body,
        "the echoed chunked body differs ({} bytes)",
        got.len()
    );
}

/// Case 58: refused or reset before the response head: 502.
fn bad_gateway_when_the_upstream_is_down_or_resets(v: Variant) {
    let down = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let reset = Upstream::start(Mode::Reset);
    // Round robin: one request meets each.
    let server = proxy(v, &[down, reset.addr], &[]);
    for _ in 0..2 {
        let r = server.get("/proxy/x");
        assert_eq!(r.status, 502, "{}", r.text());
    }
    assert_eq!(server.stat("502"), 2);
    assert_eq!(server.stat("retries"), 0);
}

/// Case 59: no response head within `--upstream-timeout`: 504.
fn gateway_timeout_when_the_upstream_never_answers(v: Variant) {
    let silent = Upstream::start(Mode::Silent);
    let server = proxy(v, &[silent.addr], &["--upstream-timeout", "300ms"]);
    let t = Instant::now();
    let r = server.get("/proxy/x");
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(t.elapsed() < IO_TIMEOUT);
    assert_eq!(server.stat("504"), 1);
}

/// Case 60: an upstream that breaks mid-body: the client's connection is cut,
/// with fewer bytes than the Content-Length promised.
fn a_response_that_breaks_off_cuts_the_client(v: Variant) {
    let up = Upstream::start(Mode::Truncate);
    let server = proxy(v, &[up.addr], &[]);
    let mut s = server.connect();
    s.write_all(b"GET /proxy/t HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let (raw, closed) = read_to_close(&mut s);
    assert!(closed, "the connection was left open");
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&raw[..end]);
    assert!(head.contains("Content-Length: 100000"), "{head}");
    assert!(
        raw.len() - end < 100_000,
        "a body of {} bytes",
        raw.len() - end
    );
}

/// Case 61: a pooled connection closed by the upstream: GET sent again once,
/// POST not.
fn a_closed_pooled_connection_is_retried_once_for_get_never_for_post(v: Variant) {
    let up = Upstream::start(Mode::OneShot);
    let server = proxy(v, &[up.addr], &[]);
    assert_eq!(server.get("/proxy/a").status, 200);
    // The upstream has closed that connection; the proxy still pools it.
    thread::sleep(Duration::from_millis(200));
    let r = server.get("/proxy/b");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().starts_with("GET /b "), "{}", r.text());
    assert_eq!(server.stat("retries"), 1);
    assert_eq!(server.stat("reuses"), 1);
    thread::sleep(Duration::from_millis(200));
    let out = server.exchange(
        b"POST /proxy/c HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    );
    let r = common::parse_responses(&out, false).remove(0);
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(server.stat("retries"), 1, "a POST was sent again");
    assert_eq!(server.stat("502"), 1);
}

/// Case 62: a client that leaves mid-response: the upstream connection closes.
fn a_client_that_leaves_mid_response_frees_the_upstream(v: Variant) {
    let up = Upstream::start(Mode::Big);
    let server = proxy(v, &[up.addr], &[]);
    let mut s = server.connect();
    s.write_all(b"GET /proxy/big HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < 1 << 20 {
        got += s.read(&mut buf).unwrap();
    }
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    drop(s);
    // The proxy closes its upstream connection: the upstream's writes fail.
    let whole = up
        .ended
        .recv_timeout(Duration::from_secs(10))
        .expect("the upstream's connection was not closed");
    assert!(!whole, "the upstream could send the whole body");
}

/// Case 62: a client that reads nothing holds the upstream, not the server's
/// memory.
fn a_slow_client_holds_bounded_memory(v: Variant) {
    let up = Upstream::start(Mode::Big);
    let server = proxy(v, &[up.addr], &[]);
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(64 * 1024).unwrap();
    sock.connect(&server.addr.into()).unwrap();
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(b"GET /proxy/big HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    // The client reads nothing: what the upstream could write is what the
    // socket buffers on the way hold plus the proxy's bounded buffer.
    let mut last = 0;
    for _ in 0..50 {
        thread::sleep(Duration::from_millis(100));
        let now = up.written.load(Ordering::SeqCst);
        if now == last && now > 0 {
            break;
        }
        last = now;
    }
    let held = up.written.load(Ordering::SeqCst);
    assert!(
        held < BIG / 2,
        "the upstream wrote {held} bytes to a client that reads nothing"
    );
    let rss_mib = server.rss_kib() / 1024;
    assert!(rss_mib < 48, "the proxy's RSS is {rss_mib} MiB");
    // Then the client reads, and gets the whole body.
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) => panic!("read after {total} bytes: {e}"),
        }
    }
    assert!(total > BIG, "got {total} bytes");
    assert!(up.ended.recv_timeout(IO_TIMEOUT).unwrap());
}

/// Concurrent proxied requests of [`many_concurrent_requests_to_a_slow_backend`].
const MANY: usize = 10_000;

/// One many-connection case at a time in this process (each needs `MANY`
/// descriptors of its own).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Raise this process's soft open-file limit to its hard one (`prlimit(1)`).
fn raise_nofile() -> u64 {
    let (soft, hard) = common::nofile_limits();
    if soft < hard {
        let me = std::process::id().to_string();
        let _ = Command::new("prlimit")
            .args(["--pid", &me, &format!("--nofile={hard}:{hard}")])
            .status();
    }
    common::nofile_limits().0
}

/// Shell prologue for servers that hold tens of thousands of sockets: as many
/// descriptors as the hard limit allows.
const MANY_FILES: &str = "ulimit -n \"$(ulimit -Hn)\"; exec \"$@\"";

fn many_concurrent_requests_to_a_slow_backend(v: Variant) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let limit = raise_nofile();
    assert!(
        limit > MANY as u64 + 512,
        "RLIMIT_NOFILE {limit} is too low for {MANY} clients"
    );
    let backend = Server::start_in_shell(Model::Tokio, MANY_FILES, &[]);
    let upstream = backend.addr.to_string();
    // A proxy holds two descriptors per request in flight (client, upstream):
    // where one process may not hold 2 × MANY (a hard limit of 20,000, say),
    // two share the port (`--reuse-port`), each with half the clients.
    let args = ["--upstream", upstream.as_str(), "--upstream-pool", "1024"];
    let server = Server::start_in_shell(v, MANY_FILES, &args);
    let _second = (limit < 2 * MANY as u64 + 1024).then(|| {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            MANY_FILES,
            "sh",
            common::BIN,
            "serve",
            "--model",
            v.name(),
        ])
        .args(["--workers", "1", "--reuse-port", "--addr"])
        .arg(server.addr.to_string())
        .args(args);
        Server::spawn(cmd, v)
    });
    // Connect them all, then send every request before reading any answer:
    // they are all in flight at once (the backend holds each for 100 ms).
    let mut conns: Vec<TcpStream> = (0..MANY)
        .map(|i| TcpStream::connect(server.addr).unwrap_or_else(|e| panic!("connection {i}: {e}")))
        .collect();
    for s in conns.iter_mut() {
        s.write_all(b"GET /proxy/sleep/100 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            .unwrap();
    }
    // Read the answers on a few threads.
    let per = MANY.div_ceil(8);
    let mut handles = Vec::new();
    while !conns.is_empty() {
        let part: Vec<TcpStream> = conns.drain(..per.min(conns.len())).collect();
        handles.push(thread::spawn(move || {
            let mut bad = Vec::new();
            for mut s in part {
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out);
                let ok = out.starts_with(b"HTTP/1.1 200") && out.ends_with(b"slept 100ms");
                if !ok {
                    bad.push(String::from_utf8_lossy(&out[..out.len().min(200)]).into_owned());
                }
                let _ = s.shutdown(Shutdown::Both);
            }
            bad
        }));
    }
    let bad: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {MANY} failed, e.g. {:?}",
        bad.len(),
        bad.first()
    );
    assert!(backend.stat("2xx") >= MANY as u64);
}

per_model!(
    get_and_head_through_the_proxy,
    request_bodies_stream_both_ways,
    bad_gateway_when_the_upstream_is_down_or_resets,
    gateway_timeout_when_the_upstream_never_answers,
    a_response_that_breaks_off_cuts_the_client,
    a_closed_pooled_connection_is_retried_once_for_get_never_for_post,
    a_client_that_leaves_mid_response_frees_the_upstream,
    a_slow_client_holds_bounded_memory,
    many_concurrent_requests_to_a_slow_backend,
);
