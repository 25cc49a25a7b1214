//! What an operator runs into before the first request (issue 12): a port that
//! is already in use, the address forms people type, sizes with units, help
//! texts, the startup and exit lines.

mod common;

use std::io::Read as _;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Server, TempDir, BIN};
use gvhttpd::config::Variant;

/// Runs `gvhttpd ARGS` expecting it to exit by itself within 10 s; a server
/// that starts instead is killed and the test fails.
fn run_to_exit(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gvhttpd");
    let until = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "gvhttpd {args:?} kept running; stdout: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `serve --model M --workers 1 --addr ADDR EXTRA...` as a [`Server`].
fn serve_on(model: Variant, addr: &str, extra: &[&str]) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--model", model.name(), "--workers", "1"])
        .args(["--addr", addr])
        .args(extra);
    Server::spawn(cmd, model)
}

fn second_server_on_a_used_port_refuses_to_start(model: Variant) {
    let first = Server::start(model);
    let addr = first.addr.to_string();
    let out = run_to_exit(&["serve", "--model", model.name(), "--addr", &addr]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot listen on {addr}: port {} is already in use by pid {}",
            first.addr.port(),
            first.pid()
        )),
        "{err}"
    );
    assert!(err.contains("--reuse-port"), "{err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening"),
        "it must not announce readiness"
    );
    // The first server still has the port to itself.
    first.wait_until_served(Duration::from_secs(5), "the first server stopped serving");
}

fn reuse_port_shares_on_purpose(model: Variant) {
    // Each server serves a file saying which one it is.
    let (dir_a, dir_b) = (TempDir::new("reuse-a"), TempDir::new("reuse-b"));
    std::fs::write(dir_a.0.join("who"), "first").unwrap();
    std::fs::write(dir_b.0.join("who"), "second").unwrap();
    let first = serve_on(model, "127.0.0.1:0", &["--root", dir_a.path()]);
    let addr = first.addr.to_string();
    let second = serve_on(model, &addr, &["--reuse-port", "--root", dir_b.path()]);
    assert_eq!(second.addr, first.addr);
    // The kernel spreads new connections across both processes' listeners.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        seen.insert(first.get("/static/who").text());
        if seen.len() == 2 {
            break;
        }
    }
    let want: std::collections::BTreeSet<String> = ["first".into(), "second".into()].into();
    assert_eq!(seen, want, "both servers answer on the shared port");
}

fn a_port_held_by_another_program_is_refused(model: Variant) {
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = other.local_addr().unwrap().to_string();
    for extra in [&[][..], &["--reuse-port"][..]] {
        let mut args = vec!["serve", "--model", model.name(), "--addr", &addr];
        args.extend_from_slice(extra);
        let out = run_to_exit(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
        assert!(err.contains("cannot listen on"), "{err}");
    }
}

fn address_forms(model: Variant) {
    for addr in ["localhost:0", ":0", "0", "127.0.0.1:0"] {
        let s = serve_on(model, addr, &[]);
        assert!(s.addr.ip().is_loopback(), "{addr} -> {}", s.addr);
        assert_eq!(s.get("/").status, 200, "{addr}");
    }
}

per_model!(
    second_server_on_a_used_port_refuses_to_start,
    reuse_port_shares_on_purpose,
    a_port_held_by_another_program_is_refused,
    address_forms,
);

#[test]
fn bad_addresses_are_one_clear_error() {
    for (addr, want) in [
        ("localhost:http", "bad port 'http'"),
        (
            "no-such-host.invalid:80",
            "cannot resolve host 'no-such-host.invalid'",
        ),
        ("99999", "bad port '99999'"),
    ] {
        let out = run_to_exit(&["serve", "--model", "tokio", "--addr", addr]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{addr}: {err}");
        assert!(err.contains(want), "{addr}: {err}");
    }
}

#[test]
fn sizes_take_units() {
    let s = serve_on(
        Variant::Tokio,
        "127.0.0.1:0",
        &[
            "--max-body",
            "1KiB",
            "--max-head",
            "16k",
            "--max-target",
            "2048",
            "--green-stack-size",
            "1MiB",
        ],
    );
    // 1KiB of body is allowed, one byte more is a 413.
    let post = |n: usize| {
        let raw = format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {n}\r\n\r\n{}",
            "x".repeat(n)
        );
        common::parse_responses(&s.exchange(raw.as_bytes()), false)[0].status
    };
    assert_eq!(post(1024), 200);
    assert_eq!(post(1025), 413);
    let long = format!("/{}", "a".repeat(2100));
    assert_eq!(s.get(&long).status, 414);
    let out = run_to_exit(&["serve", "--max-body", "1MB"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("ambiguous; write 1MiB"), "{err}");
}

#[test]
fn help_lists_possible_values_and_agrees_with_the_readme() {
    let out = run_to_exit(&["serve", "-h"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains(
            "[possible values: callback, tokio, tokio+multi, green, green+steal, green+dedicated]"
        ),
        "{help}"
    );
    assert!(help.contains("gets a 503"), "--max-conns: {help}");
    assert!(help.contains("--reuse-port"), "{help}");
    assert!(help.contains("--access-log <PATH|->"), "{help}");
    for doc in ["/README.md", "/docs/serve.md"] {
        let text = std::fs::read_to_string(format!("{}{doc}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(text.contains("gets a 503"), "{doc} on --max-conns");
        assert!(text.contains("--reuse-port"), "{doc} names --reuse-port");
        assert!(text.contains("--access-log"), "{doc} names --access-log");
    }
}

#[test]
fn one_worker_is_singular_and_stderr_has_timestamped_start_and_exit() {
    let mut child: Child = Command::new(BIN)
        .args([
            "serve",
            "--model",
            "tokio",
            "--workers",
            "1",
            "--addr",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while !first.ends_with(b"\n") && stdout.read(&mut byte).unwrap() == 1 {
        first.push(byte[0]);
    }
    let line = String::from_utf8(first).unwrap();
    assert!(line.ends_with("(model tokio, 1 worker)\n"), "{line}");
    let kill = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    // 2026-12-01T09:53:11.042Z gvhttpd[PID] info: ...
    let prefix = format!("gvhttpd[{pid}] info: ");
    let logged: Vec<&str> = err
        .lines()
        .filter_map(|l| {
            let (ts, rest) = l.split_once(' ')?;
            let stamped = ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T';
            stamped.then(|| rest.strip_prefix(&prefix)).flatten()
        })
        .collect();
    assert_eq!(logged.len(), 3, "{err}");
    assert!(
        logged[0].starts_with("started: listening on http://127.0.0.1:"),
        "{err}"
    );
    assert!(logged[0].contains("model tokio, 1 worker,"), "{err}");
    assert!(logged[1].starts_with("SIGINT received"), "{err}");
    assert!(
        logged[2].starts_with("exiting with status 0 after"),
        "{err}"
    );
    assert!(
        logged[2].contains(" accepted, 0 refused (--max-conns), "),
        "the final line has the totals: {err}"
    );
}

/// Every `--flag` in `text`.
fn flags_in(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("--") {
        rest = &rest[at + 2..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
            .collect();
        if name.len() > 1 && name.starts_with(|c: char| c.is_ascii_lowercase()) {
            out.insert(format!("--{name}"));
        }
    }
    out
}

#[test]
fn the_serve_flag_table_lists_exactly_the_serve_flags() {
    let out = run_to_exit(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    let flag_lines: String = help
        .lines()
        .filter(|l| l.trim_start().starts_with("--"))
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    let mut in_help = flags_in(&flag_lines);
    in_help.remove("--help");
    assert!(in_help.len() >= 19, "{in_help:?}");
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/serve.md")).unwrap();
    let table = &doc[doc.find("## Flags").unwrap()..];
    let table: String = table
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| `--"))
        .map(|l| l.split(" | ").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(flags_in(&table), in_help);
}

#[test]
fn an_access_log_that_cannot_be_opened_stops_the_start() {
    let out = run_to_exit(&[
        "serve",
        "--model",
        "tokio",
        "--addr",
        "127.0.0.1:0",
        "--access-log",
        "/nonexistent-dir/access.log",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error: cannot open --access-log /nonexistent-dir/access.log: "),
        "{err}"
    );
}
