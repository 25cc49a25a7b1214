//! `gvhttpd bench`'s second Ctrl-C: the first ends the run with a summary (see
//! `tests/bench.rs`), and a second one, once the first was seen, kills the process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gvhttpd");
const SIGINT: u32 = 2;

mod common;

/// `kill -INT pid` through the command, so the test needs no `unsafe`.
fn sigint(pid: u32) {
    let ok = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -INT {pid}");
}

/// Whether `pid` (alive, not a zombie) catches SIGINT, from `SigCgt` in
/// `/proc/PID/status`; `None` once it has exited.
fn catches_sigint(pid: u32) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    if field("State:").is_none_or(|s| s.starts_with('Z')) {
        return None;
    }
    let mask = u64::from_str_radix(field("SigCgt:")?, 16).ok()?;
    Some(mask & (1 << (SIGINT - 1)) != 0)
}

/// Whether a SIGINT sent to `pid` is still pending (not yet delivered), from
/// `SigPnd`/`ShdPnd` in `/proc/PID/status`; `None` once it has exited.
fn sigint_pending(pid: u32) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut pending = false;
    for l in status.lines() {
        if let Some(v) = l
            .strip_prefix("SigPnd:")
            .or_else(|| l.strip_prefix("ShdPnd:"))
        {
            let mask = u64::from_str_radix(v.trim(), 16).ok()?;
            pending |= mask & (1 << (SIGINT - 1)) != 0;
        }
    }
    Some(pending)
}

#[test]
fn a_second_ctrl_c_kills_the_run() {
    use std::os::unix::process::ExitStatusExt;
    let srv = common::Server::tokio_one_worker();
    let mut seen_killed = false;
    // The process ends within ~50 ms of the first Ctrl-C. The second is sent once
    // the first was delivered (two pending SIGINTs would merge into one); if the
    // run ended first, with its summary, that is fine too and the test tries again.
    for _ in 0..10 {
        let mut bench = Command::new(BIN)
            .args([
                "bench",
                "--url",
                &format!("{}/", srv.url()),
                "-c",
                "2",
                "-d",
                "60s",
                "--progress",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = bench.id();
        let mut line = String::new();
        BufReader::new(bench.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("req/s"), "{line}");
        assert_eq!(
            catches_sigint(pid),
            Some(true),
            "no SIGINT handler while running"
        );
        sigint(pid);
        let until = Instant::now() + Duration::from_secs(5);
        while sigint_pending(pid) == Some(true) && Instant::now() < until {
            std::thread::yield_now();
        }
        let second_sent = sigint_pending(pid) == Some(false);
        if second_sent {
            sigint(pid);
        }
        let t0 = Instant::now();
        let out = bench.wait_with_output().unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the run did not stop"
        );
        match out.status.signal() {
            Some(sig) => {
                assert_eq!(sig as u32, SIGINT, "{:?}", out.status);
                assert!(second_sent, "killed by a single Ctrl-C");
                seen_killed = true;
                break;
            }
            None => assert!(out.status.success(), "{:?}", out.status),
        }
    }
    assert!(seen_killed, "a second Ctrl-C never killed the run");
}

/// The PIDs of `pid`'s children (`/proc/PID/task/*/children`).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Ctrl-C during `bench compare` stops the server of the run in progress (it does
/// not outlive the comparison), says so, and writes no half results.
#[test]
fn ctrl_c_stops_a_comparison_and_its_server() {
    let dir = std::env::temp_dir().join(format!("gv-compare-int-{}", std::process::id()));
    let mut compare = Command::new(BIN)
        .args([
            "bench",
            "compare",
            "--models",
            "tokio",
            "--scenarios",
            "plaintext",
        ])
        .args(["--repeat", "3", "--duration", "20s", "--warmup", "100ms"])
        .args(["--server-cpus", "0", "--load-cpus", "0", "--out"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = compare.id();
    let mut err = BufReader::new(compare.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("rounds per scenario"), "{line}");
    // The run's server is up once compare has a child that serves.
    let until = Instant::now() + Duration::from_secs(10);
    let server = loop {
        if let Some(&c) = children(pid).first() {
            let cmd = std::fs::read_to_string(format!("/proc/{c}/cmdline")).unwrap_or_default();
            if cmd.contains("serve") {
                break c;
            }
        }
        assert!(Instant::now() < until, "no server started");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(500));
    sigint(pid);
    let t0 = Instant::now();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let status = compare.wait().unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "compare did not stop"
    );
    assert_eq!(status.code(), Some(1), "{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    assert!(
        !std::path::Path::new(&format!("/proc/{server}")).exists(),
        "the server ({server}) outlived the comparison"
    );
    assert!(
        !dir.exists(),
        "half results were written to {}",
        dir.display()
    );
}
