//! Test harness: start `gvhttpd serve` as a real process on 127.0.0.1, talk to it
//! over real sockets, and run every per-model case once per enabled model.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gvhttpd::config::{Model, Variant};

/// Define per-model tests: each `case` is a `fn(Variant)` in the calling file, and
/// becomes one `#[test]` per row of the suite: every model and every scheduling
/// variant (`tokio_model::case`, `green_steal_model::case`, ...).
/// Enabling a row is one line here, with no edits to the tests themselves.
#[macro_export]
macro_rules! per_model {
    ($($case:ident),+ $(,)?) => {
        $crate::per_model!(@model tokio_model, Tokio; $($case),+);
        $crate::per_model!(@model tokio_multi_model, TokioMulti; $($case),+);
        $crate::per_model!(@model callback_model, Callback; $($case),+);
        $crate::per_model!(@model green_model, Green; $($case),+);
        $crate::per_model!(@model green_steal_model, GreenSteal; $($case),+);
        $crate::per_model!(@model green_dedicated_model, GreenDedicated; $($case),+);
    };
    (@model $module:ident, $variant:ident; $($case:ident),+) => {
        mod $module {
            $(
                #[test]
                fn $case() {
                    $crate::common::run_case(gvhttpd::config::Variant::$variant, super::$case);
                }
            )+
        }
    };
}

/// Run one case against the row `v`; io_uring models that cannot run here fail the
/// test unless `GVHTTPD_SKIP_URING=1`. A skipped row is recorded with
/// `gvhttpd::uring::record_skip`, so `.ci/run` counts it as skipped (by name),
/// never as passed.
pub fn run_case(v: Variant, case: fn(Variant)) {
    if let Err(e) = gvhttpd::models::check_available(v.model()) {
        if std::env::var_os("GVHTTPD_SKIP_URING").is_some_and(|v| v == "1") && v.uses_io_uring() {
            gvhttpd::uring::record_skip(&format!("model {v} unavailable: {e}"));
            return;
        }
        panic!(
            "model {v} is unavailable here: {e} (set GVHTTPD_SKIP_URING=1 to skip io_uring models)"
        );
    }
    let cfg = gvhttpd::config::Config::for_variant(v, "127.0.0.1:0".parse().unwrap());
    if let Err(e) = gvhttpd::models::check_scheduling(&cfg) {
        // A variant whose scheduler this build lacks: counted as skipped, by name.
        gvhttpd::uring::record_skip(&format!("row {v} unavailable: {e}"));
        return;
    }
    case(v);
}

pub const BIN: &str = env!("CARGO_BIN_EXE_gvhttpd");
/// The longest any single read in a test waits.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A running `gvhttpd serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The row it runs (`--model` takes a variant's name).
    pub model: Variant,
}

/// `serve` on an ephemeral loopback port with `workers` workers.
fn serve_args(model: Variant, workers: &str) -> [&str; 7] {
    [
        "serve",
        "--model",
        model.name(),
        "--addr",
        "127.0.0.1:0",
        "--workers",
        workers,
    ]
}

impl Server {
    pub fn start(model: impl Into<Variant>) -> Server {
        Server::start_with(model, &[])
    }

    pub fn start_with(model: impl Into<Variant>, args: &[&str]) -> Server {
        let model = model.into();
        let mut cmd = Command::new(BIN);
        cmd.args(serve_args(model, "2")).args(args);
        Server::spawn(cmd, model)
    }

    /// Start through `sh -c` (for `ulimit`), `script` ending in `exec "$@"`.
    pub fn start_in_shell(model: impl Into<Variant>, script: &str, args: &[&str]) -> Server {
        let model = model.into();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script, "sh", BIN])
            .args(serve_args(model, "1"))
            .args(args);
        Server::spawn(cmd, model)
    }

    /// Start `cmd` (a `gvhttpd serve` command line) and wait for its readiness line.
    pub fn spawn(mut cmd: Command, model: impl Into<Variant>) -> Server {
        let model = model.into();
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn gvhttpd");
        let stdout = child.stdout.take().unwrap();
        // The server's error log goes through the test's captured stderr: shown
        // when the test fails, quiet when it passes.
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("gvhttpd --model {model} printed no readiness line");
            }
        };
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("unexpected readiness line: {line}"));
        Server { child, addr, model }
    }

    /// `http://ADDR` of this server (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A one-worker tokio server (the bench tests' target).
    pub fn tokio_one_worker() -> Server {
        Server::start_in_shell(Model::Tokio, "exec \"$@\"", &[])
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// Send `raw` on a new connection and read until the server closes it (or
    /// `IO_TIMEOUT`). Returns everything received.
    pub fn exchange(&self, raw: &[u8]) -> Vec<u8> {
        let mut s = self.connect();
        s.write_all(raw).unwrap();
        read_to_close(&mut s).0
    }

    /// One request on a new connection; the parsed response.
    pub fn get(&self, path: &str) -> Response {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let out = self.exchange(raw.as_bytes());
        parse_responses(&out, false)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no response to {path}"))
    }

    /// Poll with fresh connections until `GET /` is answered 200, for at most
    /// `limit`; fail with `what` if it never is.
    pub fn wait_until_served(&self, limit: Duration, what: &str) {
        let until = Instant::now() + limit;
        loop {
            let out = self.exchange(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            if parse_responses(&out, false)
                .first()
                .is_some_and(|r| r.status == 200)
            {
                return;
            }
            assert!(Instant::now() < until, "{what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Send a signal to the server.
    pub fn signal(&self, sig: i32) {
        // A plain `kill(2)` of the child we started.
        assert_eq!(unsafe_free_kill(self.pid(), sig), 0);
    }

    /// Wait for the server to exit, up to `limit`; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Open file descriptors of the server process.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, |d| d.count())
    }

    /// A `VmRSS`-style field of the server's `/proc/PID/status`, in KiB.
    pub fn status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{field} missing from /proc/{}/status", self.pid()))
    }

    /// Resident set size of the server, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS")
    }

    /// utime + stime of the server, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let after_comm = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = after_comm.split_whitespace().collect();
        f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
    }

    /// The `/stats` document.
    pub fn stats(&self) -> String {
        String::from_utf8(self.get("/stats").body).unwrap()
    }

    /// One counter of the `/stats` document, such as `"open"`.
    pub fn stat(&self, key: &str) -> u64 {
        let stats = self.stats();
        let pat = format!("\"{key}\":");
        let at = stats
            .find(&pat)
            .unwrap_or_else(|| panic!("{key} missing: {stats}"))
            + pat.len();
        stats[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{key} not a number: {stats}"))
    }

    /// Connections the server holds open (counting the `/stats` request itself).
    pub fn stats_open(&self) -> u64 {
        self.stat("open")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kill(2)` through the `kill` command, so tests need no `unsafe`.
fn unsafe_free_kill(pid: i32, sig: i32) -> i32 {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    if status.success() {
        0
    } else {
        -1
    }
}

/// Read until EOF, reset or `IO_TIMEOUT`. Returns the bytes and whether the peer
/// closed (EOF or reset) rather than the read timing out.
pub fn read_to_close(s: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    let until = Instant::now() + IO_TIMEOUT;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (out, true),
            Err(_) => return (out, false),
        }
        if Instant::now() > until {
            return (out, false);
        }
    }
}

/// Read exactly one response (the `head_only` one has no body).
pub fn read_response(s: &mut TcpStream, head_only: bool) -> Response {
    read_responses(s, &[head_only]).pop().unwrap()
}

/// Read exactly `heads.len()` responses; `heads[i]` marks a reply to HEAD.
pub fn read_responses(s: &mut TcpStream, heads: &[bool]) -> Vec<Response> {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let mut out = Vec::new();
    let mut at = 0;
    while out.len() < heads.len() {
        if let Some((r, used)) = parse_one(&got[at..], heads[out.len()]) {
            at += used;
            out.push(r);
            continue;
        }
        let n = s.read(&mut buf).expect("read response");
        assert!(
            n > 0,
            "connection closed mid-response: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(at, got.len(), "unexpected bytes after the responses");
    out
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The exact bytes of this response.
    pub raw: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parse one response from the front of `buf`: the response and bytes used.
pub fn parse_one(buf: &[u8], head_only: bool) -> Option<(Response, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).expect("response head is UTF-8");
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    assert!(
        status_line.starts_with("HTTP/1.1 "),
        "bad status line {status_line:?}"
    );
    let status: u16 = status_line[9..12].parse().expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line has a colon");
            (n.to_string(), v.trim().to_string())
        })
        .collect();
    let mut r = Response {
        status,
        headers,
        body: Vec::new(),
        raw: Vec::new(),
    };
    let len: usize = match r.header("content-length") {
        Some(v) => v.parse().expect("numeric Content-Length"),
        None => {
            assert!(
                status < 200 || status == 204 || status == 304,
                "response without length: {head}"
            );
            0
        }
    };
    // No body on 1xx, 204 and 304 (a 304 may carry the length it describes).
    let body_len = if head_only || status < 200 || status == 204 || status == 304 {
        0
    } else {
        len
    };
    if buf.len() < end + body_len {
        return None;
    }
    r.body = buf[end..end + body_len].to_vec();
    r.raw = buf[..end + body_len].to_vec();
    Some((r, end + body_len))
}

/// Parse every complete response in `buf`; `heads[i]` marks a reply to HEAD.
pub fn parse_sequence(buf: &[u8], heads: &[bool]) -> Vec<Response> {
    let mut out = Vec::new();
    let mut rest = buf;
    while let Some((r, used)) = parse_one(rest, heads.get(out.len()).copied().unwrap_or(false)) {
        rest = &rest[used..];
        out.push(r);
    }
    out
}

/// Parse every complete response in `buf` (none of them replies to HEAD, unless
/// `head_first` marks the first).
pub fn parse_responses(buf: &[u8], head_first: bool) -> Vec<Response> {
    parse_sequence(buf, &[head_first])
}

/// Every response must carry Date and Server and a definite length (case 40; a
/// 304 has no body, with or without the length it describes).
pub fn assert_well_formed(r: &Response) {
    assert!(
        r.header("date")
            .is_some_and(|d| d.ends_with(" GMT") && d.len() == 29),
        "Date: {r:?}"
    );
    assert_eq!(r.header("server"), Some("gvhttpd"), "{r:?}");
    match r.status {
        304 => assert!(r.body.is_empty(), "{r:?}"),
        s if s >= 200 && s != 204 => assert!(r.header("content-length").is_some(), "{r:?}"),
        _ => assert!(
            r.header("content-length").is_none() && r.body.is_empty(),
            "{r:?}"
        ),
    }
}

/// Replace `Date:` values so outputs can be compared byte for byte.
pub fn mask_dates(raw: &[u8]) -> Vec<u8> {
    let mut out = raw.to_vec();
    let mut i = 0;
    while let Some(p) = out[i..].windows(6).position(|w| w == b"Date: ") {
        let at = i + p + 6;
        for b in out.iter_mut().skip(at).take(29) {
            *b = b'#';
        }
        i = at;
    }
    out
}

/// Half-close helper.
pub fn shutdown_write(s: &TcpStream) {
    s.shutdown(Shutdown::Write).unwrap();
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "gvhttpd-test-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The soft and hard `RLIMIT_NOFILE` of this process, from `/proc/self/limits`.
pub fn nofile_limits() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files in /proc/self/limits");
    let mut nums = line.split_whitespace().filter_map(|w| {
        w.parse::<u64>()
            .ok()
            .or((w == "unlimited").then_some(u64::MAX))
    });
    (nums.next().unwrap(), nums.next().unwrap())
}
