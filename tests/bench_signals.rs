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
    if field("State:").map_or(true, |s| s.starts_with('Z')) {
        return None;
    }
    let mask = u64::from_str_radix(field("SigCgt:")?, 16).ok()?;
    Some(mask & (1 << (SIGINT - 1)) != 0)
}

#[test]
fn a_second_ctrl_c_kills_the_run() {
    use std::os::unix::process::ExitStatusExt;
    let srv = common::Server::tokio_one_worker();
    let mut seen_killed = false;
    // The process ends within ~50 ms of the first Ctrl-C, so a second one sent
    // 2 ms later almost always finds it still running (if not, it ended with its
    // summary, which is fine too, and the test tries again).
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
        std::thread::sleep(Duration::from_millis(2));
        let second_sent = catches_sigint(pid).is_some();
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
