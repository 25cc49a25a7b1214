//! `gvhttpd bench` and `gvhttpd bench compare` through the real binary, against
//! a real `gvhttpd serve --model tokio` on 127.0.0.1. Bounded by request count
//! and short durations.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_gvhttpd");

/// A tokio server on an ephemeral port, killed on drop.
struct Serve(Child, String);

impl Serve {
    fn start() -> Serve {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--model",
                "tokio",
                "--workers",
                "1",
                "--addr",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = loadgen::compare::parse_ready(line.trim()).expect(&line);
        Serve(child, format!("http://{addr}"))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn bench_counts_exactly_and_writes_json() {
    let srv = Serve::start();
    let rss_before = status_kib(srv.0.id(), "VmRSS");
    let json = std::env::temp_dir().join(format!("gv-bench-{}.json", std::process::id()));
    let out = Command::new(BIN)
        .args([
            "bench",
            "--url",
            &format!("{}/json", srv.1),
            "-c",
            "8",
            "-n",
            "3000",
        ])
        .args([
            "--pipeline",
            "4",
            "--server-pid",
            &srv.0.id().to_string(),
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("3000 requests in"), "{stdout}");
    assert!(stdout.contains("99.99%"), "{stdout}");
    let report =
        loadgen::report::Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    assert_eq!(report.result.counts.status_2xx, 3000);
    assert_eq!(report.result.counts.transport_errors(), 0);
    let server = report
        .checks
        .server
        .expect("server checks with --server-pid");
    // The server's own figures: its peak RSS lies between what it held before the
    // run and its high-water mark now (the bench process's would not).
    assert_eq!(server.pid, srv.0.id());
    let hwm = status_kib(srv.0.id(), "VmHWM");
    assert!(
        (rss_before..=hwm).contains(&server.peak_rss_kib),
        "peak RSS {} KiB outside [{rss_before}, {hwm}]",
        server.peak_rss_kib
    );
    let per_request = server.cpu_s * 1e6 / 3000.0;
    assert!(
        (server.cpu_us_per_request - per_request).abs() < 1e-6 * per_request.max(1.0),
        "{server:?}"
    );
}

/// A field of `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} of {pid}"))
}

#[test]
fn bench_errors_are_one_line_with_status_2() {
    for args in [
        vec!["--url", "http://127.0.0.1:1/", "-c", "0"],
        vec!["--url", "ftp://127.0.0.1/"],
        vec!["--url", "http://no-such-host.invalid/"],
        vec!["--url", "http://127.0.0.1:1/"],
    ] {
        let out = Command::new(BIN).arg("bench").args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("gvhttpd bench: "), "{err}");
    }
}

#[test]
fn compare_runs_end_to_end_and_lists_unavailable_models() {
    let dir = std::env::temp_dir().join(format!("gv-compare-{}", std::process::id()));
    let out = Command::new(BIN)
        .args(["bench", "compare", "--models", "tokio,nosuchmodel"])
        .args(["--scenarios", "plaintext,sleep,idle", "--repeat", "2"])
        .args([
            "--duration",
            "300ms",
            "--warmup",
            "100ms",
            "--idle-conns",
            "300",
        ])
        .args(["--server-cpus", "0", "--load-cpus", "0"])
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let folder = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let read = |name: &str| std::fs::read_to_string(folder.join(name)).unwrap();
    let summary = read("summary.md");
    assert!(summary.contains("| plaintext | tokio |"), "{summary}");
    assert!(summary.contains("| idle | tokio |"), "{summary}");
    assert!(summary.contains("`nosuchmodel`"), "{summary}");
    assert!(read("README.md").contains("bench compare"));
    let raw = loadgen::compare::Raw::from_json(&read("raw.json")).unwrap();
    assert_eq!(raw.runs.len(), 6, "2 repetitions x 3 scenarios x 1 model");
    assert!(raw.runs.iter().all(|r| r.error.is_none()), "{:?}", raw.runs);
    assert!(!raw.models[1].available);
    for svg in [
        "latency-plaintext.svg",
        "latency-sleep.svg",
        "throughput.svg",
        "cpu-per-request.svg",
    ] {
        assert!(read(svg).starts_with("<svg"), "{svg}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ctrl_c_ends_the_run_early_with_a_summary() {
    let srv = Serve::start();
    let mut child = Command::new(BIN)
        .args([
            "bench",
            "--url",
            &srv.1,
            "-c",
            "4",
            "-d",
            "60s",
            "--progress",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first progress line means the load is running.
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("req/s"), "{line}");
    // `kill -INT` on the child we started and have not reaped (no `unsafe` in tests).
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("Requests/sec:"), "{stdout}");
    assert!(
        !stdout.contains("60.0s test"),
        "the run was cut short: {stdout}"
    );
}
