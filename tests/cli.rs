//! What a new user meets at the command line, through the real binary: one
//! duration syntax and one wording of its errors for `serve` and `bench`, an
//! address that is no IPv4 address said to be one, a quiet normal shutdown, a
//! bench with no success that says why, the start-up line on the bench routes,
//! and help texts that say what a thing is.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{parse_responses, read_to_close, Server, BIN};

/// Runs `gvhttpd ARGS` to its end (killed after 20 s: a test failure).
fn run_to_exit(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gvhttpd");
    let until = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gvhttpd {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn serve_and_bench_word_a_bad_duration_alike() {
    for (bad, words) in [
        (
            "10 parsecs",
            loadgen::duration::parse("10 parsecs").unwrap_err(),
        ),
        ("soon", loadgen::duration::parse("soon").unwrap_err()),
        ("0", loadgen::duration::NOT_ZERO.to_string()),
    ] {
        let serve = run_to_exit(&["serve", "--addr", "127.0.0.1:0", "--idle-timeout", bad]);
        let err = stderr(&serve);
        assert_eq!(serve.status.code(), Some(2), "{err}");
        assert!(
            err.contains("--idle-timeout") && err.contains(&words),
            "serve {bad:?}: {err}"
        );
        // Port 9 (discard) is never reached: flags are checked before any connection.
        let bench = run_to_exit(&["bench", "http://127.0.0.1:9/", "-d", bad]);
        let err = stderr(&bench);
        assert_eq!(bench.status.code(), Some(2), "{err}");
        assert!(
            err.contains("-d/--duration") && err.contains(&words),
            "bench {bad:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // The same forms are accepted by both (bench's only reaches the URL check).
    // (clap checks flags in order: the duration passes, then --max-conns fails.)
    let serve = run_to_exit(&["serve", "--idle-timeout", "1m30s", "--max-conns", "0"]);
    assert!(stderr(&serve).contains("--max-conns"), "{}", stderr(&serve));
    assert!(
        !stderr(&serve).contains("--idle-timeout"),
        "{}",
        stderr(&serve)
    );
    let bench = run_to_exit(&["bench", "--url", "ftp://x/", "-d", "1m30s"]);
    assert!(!stderr(&bench).contains("--duration"), "{}", stderr(&bench));
}

#[test]
fn an_out_of_range_ipv4_address_is_called_an_invalid_ipv4_address() {
    let out = run_to_exit(&["serve", "--addr", "999.1.1.1:80"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("'999.1.1.1' of '999.1.1.1:80' is not a valid IPv4 address"),
        "{err}"
    );
    assert!(!err.contains("resolve"), "not a host name lookup: {err}");
}

/// `serve --model tokio --workers 1 ARGS` with its stderr kept for the test: the
/// child, its address and a thread collecting stderr's lines.
fn serve_keeping_stderr(args: &[&str]) -> (Child, String, std::thread::JoinHandle<String>) {
    let mut child = Command::new(BIN)
        .args(["serve", "--model", "tokio", "--workers", "1"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no readiness line: {line:?}"))
        .to_string();
    let err = child.stderr.take().unwrap();
    let collect = std::thread::spawn(move || {
        let mut all = String::new();
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            all.push_str(&l);
            all.push('\n');
        }
        all
    });
    (child, addr, collect)
}

/// The status of `GET path` on a new connection to `addr`.
fn status_of(addr: std::net::SocketAddr, path: &str) -> u16 {
    use std::io::Write as _;
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    c.write_all(req.as_bytes()).unwrap();
    let (out, _) = read_to_close(&mut c);
    parse_responses(&out, false)
        .first()
        .unwrap_or_else(|| panic!("no response to {path}"))
        .status
}

fn interrupt(child: &mut Child) {
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn a_normal_shutdown_after_404s_logs_no_warning() {
    let (mut child, addr, err) = serve_keeping_stderr(&["--addr", "127.0.0.1:0"]);
    for _ in 0..3 {
        assert_eq!(status_of(addr.parse().unwrap(), "/no-such-page"), 404);
    }
    interrupt(&mut child);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let err = err.join().unwrap();
    assert!(
        !err.contains(" warn: "),
        "an ordinary 404 is no warning:\n{err}"
    );
    let line = err
        .lines()
        .find(|l| l.contains(" info: in the last "))
        .unwrap_or_else(|| panic!("the 404s are still counted:\n{err}"));
    assert!(line.contains(": 3 4xx and 0 5xx responses"), "{line}");
}

#[test]
fn a_bench_with_no_success_names_the_status_codes() {
    let s = Server::tokio_one_worker();
    let url = format!("{}/no-such-page", s.url());
    let out = run_to_exit(&["bench", &url, "-c", "1", "-n", "5", "-q"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let line = err.lines().last().unwrap_or("");
    assert!(
        line.starts_with("gvhttpd bench: no successful responses: all ")
            && line.contains(" had a status of 400 or more (status codes: [404] "),
        "{err}"
    );
    assert!(!err.contains("error counts above"), "{err}");
}

#[test]
fn the_startup_line_says_the_bench_routes_are_off_off_loopback() {
    // Listens on every interface for well under a second; the test connects to
    // 127.0.0.1 only, and the routes that cost the server anything are off.
    let (mut child, addr, err) = serve_keeping_stderr(&["--addr", "0.0.0.0:0"]);
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let local = ([127, 0, 0, 1], port).into();
    assert_eq!(status_of(local, "/stats"), 404);
    assert_eq!(status_of(local, "/work/1"), 404);
    assert_eq!(status_of(local, "/"), 200);
    interrupt(&mut child);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let err = err.join().unwrap();
    let started = err
        .lines()
        .find(|l| l.contains(" info: started: "))
        .unwrap();
    assert!(
        started.ends_with(
            "bench routes off: /work, /sleep and /stats answer 404 on a non-loopback address \
             (--bench-routes turns them on)"
        ),
        "{started}"
    );
}

#[test]
fn help_says_what_a_thing_is_not_where_it_came_from() {
    for args in [
        &["serve", "--help"][..],
        &["bench", "--help"],
        &["bench", "compare", "--help"],
        &["--help"],
    ] {
        let out = run_to_exit(args);
        let help = String::from_utf8_lossy(&out.stdout).to_lowercase();
        for word in ["seed", "tier 2", "issue "] {
            assert!(!help.contains(word), "{args:?} says {word:?}:\n{help}");
        }
    }
    let out = run_to_exit(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--bench-routes[=<BOOL>]"), "{help}");
    assert!(help.contains("a bare number is seconds"), "{help}");
}
