//! `gvhttpd bench` as wrk, wrk2 and oha users type it, and what its summary and
//! JSON say about unusual runs (issue 12, point 3). Against a real
//! `gvhttpd serve --model tokio` on 127.0.0.1; bounded by count or short durations.

mod common;

use std::io::Read as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Server, BIN};
use gvhttpd::config::Model;
use loadgen::report::{Report, ServerSource};

fn bench(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("bench")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run gvhttpd bench")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("gv-bench-cli-{}-{name}", std::process::id()))
}

fn json(path: &std::path::Path) -> Report {
    let r = Report::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    std::fs::remove_file(path).unwrap();
    r
}

#[test]
fn positional_url_latency_flag_and_request_count_header() {
    let s = Server::start(Model::Tokio);
    let url = format!("http://{}/", s.addr);
    let out = bench(&[&url, "-n", "300", "-c", "2", "--latency", "-q"]);
    let so = text(&out.stdout);
    assert!(out.status.success(), "{so}{}", text(&out.stderr));
    assert!(
        so.starts_with(&format!("Running 300 requests @ {url} (closed loop)\n")),
        "{so}"
    );
    assert!(!so.contains("0.0s test"), "{so}");
    assert!(so.contains("  1 thread and 2 connections\n"), "{so}");
    assert!(so.contains("  300 requests in "), "{so}");
    assert!(so.contains("  Status codes: [200] 300\n"), "{so}");
    // --url still works, and both at once is a usage error.
    let out = bench(&["--url", &url, "-n", "10", "-q"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = bench(&[&url, "--url", &url, "-n", "10"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot be used with"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn wrk2_rate_flag_runs_an_open_loop() {
    let s = Server::start(Model::Tokio);
    let url = format!("http://{}/", s.addr);
    let out = bench(&[&url, "-R", "200", "-c", "4", "-d", "500ms", "-q"]);
    let so = text(&out.stdout);
    assert!(out.status.success(), "{so}{}", text(&out.stderr));
    assert!(
        so.starts_with(&format!(
            "Running 500ms test @ {url} (open loop at 200 req/s)"
        )),
        "{so}"
    );
    assert!(so.contains("Target rate:"), "{so}");
}

#[test]
fn status_codes_counted_one_by_one_and_all_errors_are_not_timed() {
    let s = Server::start(Model::Tokio);
    let url = format!("http://{}/no-such-page", s.addr);
    let path = tmp("404.json");
    let out = bench(&[
        &url,
        "-n",
        "200",
        "-c",
        "2",
        "-q",
        "--json",
        path.to_str().unwrap(),
    ]);
    let so = text(&out.stdout);
    // No successful response: exit 1, but the summary and JSON are written.
    assert_eq!(out.status.code(), Some(1), "{so}");
    assert!(so.contains("  Status codes: [404] 200\n"), "{so}");
    assert!(so.contains("Non-2xx or 3xx responses: 200"), "{so}");
    assert!(
        so.contains("Latency: not measured: none of the 200 responses had a status below 400"),
        "{so}"
    );
    assert!(
        !so.contains("Latency Distribution")
            && !so.lines().any(|l| l.trim_start().starts_with("50%")),
        "no fake percentiles: {so}"
    );
    let r = json(&path);
    assert_eq!(r.result.status_codes, [(404, 200)].into());
    assert_eq!(r.result.latency.count, 0);
    assert!(!r.result.interrupted);
}

#[test]
fn a_local_server_is_found_without_server_pid() {
    let s = Server::start(Model::Tokio);
    let url = format!("http://{}/", s.addr);
    let path = tmp("detect.json");
    let out = bench(&[&url, "-n", "300", "-q", "--json", path.to_str().unwrap()]);
    let so = text(&out.stdout);
    assert!(out.status.success(), "{so}");
    assert!(
        so.contains(&format!("Server:        pid {} (gvhttpd)", s.pid())),
        "{so}"
    );
    assert!(so.contains("Server CPU:    "), "{so}");
    let r = json(&path);
    let pid = s.pid() as u32;
    assert_eq!(
        r.config.server,
        Some(ServerSource::Detected {
            pid,
            name: "gvhttpd".into()
        })
    );
    assert_eq!(r.checks.server.map(|c| c.pid), Some(pid));
}

#[test]
fn a_local_server_that_cannot_be_identified_is_said_to_be_unattributed() {
    // Two processes on one port (--reuse-port): neither can be called "the" server.
    let first = Server::start(Model::Tokio);
    let mut cmd = Command::new(BIN);
    cmd.args([
        "serve",
        "--model",
        "tokio",
        "--workers",
        "1",
        "--reuse-port",
    ])
    .args(["--addr", &first.addr.to_string()]);
    let _second = Server::spawn(cmd, Model::Tokio);
    let url = format!("http://{}/", first.addr);
    let out = bench(&[&url, "-n", "100", "-q"]);
    let so = text(&out.stdout);
    assert!(out.status.success(), "{so}");
    assert!(
        so.contains("Server CPU:    not attributed (2 processes listen on port"),
        "{so}"
    );
    assert!(
        so.contains("other processes") && so.contains("(server included)"),
        "{so}"
    );
}

#[test]
fn ctrl_c_marks_the_run_interrupted_in_summary_and_json() {
    let s = Server::start(Model::Tokio);
    let url = format!("http://{}/", s.addr);
    let path = tmp("int.json");
    let mut child = Command::new(BIN)
        .args(["bench", &url, "-c", "2", "-d", "60s", "--progress"])
        .args(["--json", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first progress line means the load is running.
    let mut err = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut b = [0u8; 1];
    while !seen.ends_with(b"\n") && err.read(&mut b).unwrap() == 1 {
        seen.push(b[0]);
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let so = text(&out.stdout);
    assert!(out.status.success(), "{so}");
    assert!(so.contains("  INTERRUPTED by Ctrl-C after "), "{so}");
    assert!(json(&path).result.interrupted);
}

#[test]
fn on_a_terminal_the_header_comes_before_the_run() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: script(1) from util-linux is needed for a terminal");
        println!("SKIPPED: script(1) from util-linux is needed for a terminal");
        return;
    }
    let s = Server::start(Model::Tokio);
    let cmd = format!("{BIN} bench http://{}/ -c 1 -d 3s -q", s.addr);
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut b = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("connection") {
        let n = out.read(&mut b).unwrap();
        assert!(n > 0, "no header: {}", text(&seen));
        seen.extend_from_slice(&b[..n]);
    }
    // The run lasts 3 s; the header arrived while it was still going.
    let during = started.elapsed() < Duration::from_secs(3) && child.try_wait().unwrap().is_none();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let seen = text(&seen);
    assert!(seen.contains("Running 3s test @ http://"), "{seen}");
    assert!(!seen.contains("Requests/sec"), "header only: {seen}");
    assert!(during, "the header came with the results: {seen}{rest}");
    assert!(rest.contains("Requests/sec"), "{rest}");
}
