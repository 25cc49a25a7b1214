//! `gvhttpd bench` and `gvhttpd bench compare` through the real binary, against
//! a real `gvhttpd serve --model tokio` on 127.0.0.1. Bounded by request count
//! and short durations.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_gvhttpd");

mod common;
use common::Server;

#[test]
fn bench_counts_exactly_and_writes_json() {
    let srv = Server::tokio_one_worker();
    let rss_before = status_kib(srv.child.id(), "VmRSS");
    let json = std::env::temp_dir().join(format!("gv-bench-{}.json", std::process::id()));
    let out = Command::new(BIN)
        .args([
            "bench",
            "--url",
            &format!("{}/json", srv.url()),
            "-c",
            "8",
            "-n",
            "3000",
        ])
        .args([
            "--pipeline",
            "4",
            "--server-pid",
            &srv.child.id().to_string(),
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
    assert_eq!(server.pid, srv.child.id());
    let hwm = status_kib(srv.child.id(), "VmHWM");
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
fn compare_runs_every_scenario_with_a_peer_row() {
    let dir = std::env::temp_dir().join(format!("gv-compare-{}", std::process::id()));
    // The peer is started by its command like any other server: here gvhttpd's
    // own tokio model on the port compare picks.
    let peer = format!("ref={BIN} serve --model tokio --addr 127.0.0.1:{{port}} --workers {{workers}} --root {{root}}");
    // An unknown model is refused before anything starts, naming the flag.
    let out = Command::new(BIN)
        .args([
            "bench",
            "compare",
            "--quick",
            "--models",
            "tokio,nosuchmodel",
        ])
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--models: unknown model 'nosuchmodel'"),
        "{err}"
    );
    assert!(!dir.exists(), "nothing ran, nothing was written");
    let out = Command::new(BIN)
        .args(["bench", "compare", "--quick", "--models", "tokio"])
        .args(["--peer", &peer])
        .args([
            "--scenarios",
            "plaintext,pipelined,json,sleep,idle,sweep,churn,skew,busy,large,cost",
        ])
        .args([
            "--duration",
            "400ms",
            "--warmup",
            "100ms",
            "--idle-conns",
            "200",
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
    let raw = loadgen::compare::Raw::from_json(&read("raw.json")).unwrap();
    let failed: Vec<_> = raw.runs.iter().filter(|r| r.error.is_some()).collect();
    assert!(failed.is_empty(), "{failed:?}");
    // Per server: 5 hello-world runs, 1 sweep calibration and 3 sweep points,
    // churn, skew, 2 busy counts, 2 file sizes and the mix, and the 2 points of cost.
    assert_eq!(raw.runs.len(), 2 * (5 + 1 + 3 + 1 + 1 + 2 + 3 + 2));
    assert_eq!(raw.models[1].name, "ref");
    assert!(raw.models[1]
        .peer
        .as_deref()
        .is_some_and(|c| c.contains("{port}")));
    for server in ["tokio", "ref"] {
        let runs: Vec<_> = raw.runs.iter().filter(|r| r.model == server).collect();
        let churn = runs.iter().find(|r| r.scenario == "churn").unwrap();
        let rep = churn.report.as_ref().unwrap();
        assert!(!rep.config.keepalive);
        // One connection per request; requests sent in the warm-up (at most one
        // per connection) are answered in the measured period.
        let (c, n) = (rep.result.counts.connections, rep.result.requests);
        assert!(
            n > 0 && c.abs_diff(n) <= 16,
            "{server}: {c} connections, {n} requests"
        );
        let skew = runs.iter().find(|r| r.scenario == "skew").unwrap();
        assert!(skew.heavy.as_ref().unwrap().result.counts.status_2xx > 0);
        assert_eq!(
            skew.report.as_ref().unwrap().result.target_rate,
            Some(1000.0)
        );
        let large: Vec<_> = runs.iter().filter(|r| r.scenario == "large").collect();
        for l in large
            .iter()
            .filter(|l| l.point.as_ref().unwrap().label != "mix")
        {
            let r = l.report.as_ref().unwrap();
            let size = l.point.as_ref().unwrap().value as u64;
            // Bytes of responses begun in the warm-up are not counted: up to one per connection.
            let whole = r.result.successes.saturating_sub(16);
            assert!(r.result.counts.bytes_read >= whole * size, "{server}");
        }
        // The mix: every connection walks the 20 files (at least 3 KB each).
        let mix = large
            .iter()
            .find(|l| l.point.as_ref().unwrap().label == "mix")
            .unwrap();
        let r = mix.report.as_ref().unwrap();
        assert_eq!(r.config.also.len(), 19, "{server}");
        assert!(
            r.config.url.ends_with("/static/mix/00-3000.bin"),
            "{server}"
        );
        assert_eq!(r.result.counts.status_4xx + r.result.counts.status_5xx, 0);
        assert!(r.result.counts.bytes_read >= r.result.successes.saturating_sub(16) * 3_000);
        // cost: every server at the same rate, with the io_uring and syscall
        // figures or the reason there are none.
        for r in runs.iter().filter(|r| r.scenario == "cost") {
            let rate = r.report.as_ref().unwrap().config.rate;
            assert_eq!(rate, raw.cost_rate, "{server}");
            let extra = r.extra.as_ref().unwrap();
            if r.point.as_ref().unwrap().label == "syscalls" {
                assert!(
                    extra.syscalls_per_request.is_some() != extra.syscalls_na.is_some(),
                    "{extra:?}"
                );
            }
        }
        // The sweep offers shares of this server's own closed-loop maximum.
        let max = runs
            .iter()
            .find(|r| r.scenario == "sweep" && r.repeat == 0)
            .and_then(|r| r.report.as_ref())
            .unwrap()
            .result
            .req_per_s;
        for r in runs
            .iter()
            .filter(|r| r.scenario == "sweep" && r.repeat == 1)
        {
            let share = r.point.as_ref().unwrap().value;
            let rate = r.report.as_ref().unwrap().config.rate.unwrap();
            assert!(
                (rate - max * share).abs() <= 10.0,
                "{rate} vs {max} x {share}"
            );
        }
    }
    let summary = read("summary.md");
    for want in [
        "## The answer",
        "| plaintext | tokio |",
        "| plaintext | ref |",
        "| ref | 1000 |",
        "## Rounds",
        "## Where the cost goes",
        "--peer",
    ] {
        assert!(summary.contains(want), "{want}: {summary}");
    }
    assert!(read("README.md").contains("bench compare"));
    for (svg, _) in loadgen::compare::plot_names(&raw) {
        let text = read(&svg);
        assert!(
            text.starts_with("<svg") && text.contains("commit "),
            "{svg}"
        );
    }
    // --from-raw rewrites the summary and plots from raw.json alone.
    std::fs::remove_file(folder.join("summary.md")).unwrap();
    std::fs::remove_file(folder.join("sweep.svg")).unwrap();
    let out = Command::new(BIN)
        .args(["bench", "compare", "--from-raw"])
        .arg(folder.join("raw.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read("summary.md"), summary);
    assert!(read("sweep.svg").starts_with("<svg"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn merge_of_two_concurrent_runs_is_the_exact_merge() {
    let srv = Server::tokio_one_worker();
    let dir = std::env::temp_dir().join(format!("gv-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let start_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 3.0;
    // 3 s: room for both debug binaries to start on a busy CI machine.
    // Two "load machines": same --start-at, same --duration, one server.
    let runs: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| {
            let json = dir.join(format!("{name}.json"));
            let child = Command::new(BIN)
                .args([
                    "bench",
                    "--url",
                    &srv.url(),
                    "-c",
                    "4",
                    "-d",
                    "700ms",
                    "--quiet",
                ])
                .args(["--start-at", &format!("{start_at:.3}"), "--json"])
                .arg(&json)
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            (child, json)
        })
        .collect();
    let mut reports = Vec::new();
    for (mut child, json) in runs {
        assert!(child.wait().unwrap().success());
        let r =
            loadgen::report::Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
        // (--start-at was given to the millisecond.)
        assert!(
            r.started_unix_s.unwrap() >= start_at - 0.001,
            "waited for --start-at"
        );
        reports.push(r);
    }
    let merged_json = dir.join("merged.json");
    let out = Command::new(BIN)
        .args(["bench", "merge"])
        .arg(dir.join("a.json"))
        .arg(dir.join("b.json"))
        .arg("--json")
        .arg(&merged_json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Requests/sec:"), "{stdout}");
    let m = loadgen::report::Report::from_json(&std::fs::read_to_string(&merged_json).unwrap())
        .unwrap();
    // Counts are summed.
    let sum = |f: fn(&loadgen::report::Report) -> u64| reports.iter().map(f).sum::<u64>();
    assert_eq!(m.result.requests, sum(|r| r.result.requests));
    assert_eq!(
        m.result.counts.status_2xx,
        sum(|r| r.result.counts.status_2xx)
    );
    assert_eq!(
        m.result.counts.bytes_read,
        sum(|r| r.result.counts.bytes_read)
    );
    assert_eq!(m.config.connections, 8);
    // Percentiles are those of the exact merge of both histograms.
    let mut exact = loadgen::hist::new_hist();
    for r in &reports {
        loadgen::hist::merge(
            &mut exact,
            &loadgen::hist::decode(&r.result.histogram).unwrap(),
        );
    }
    assert_eq!(m.result.latency, loadgen::hist::LatencySummary::of(&exact));
    assert_eq!(loadgen::hist::decode(&m.result.histogram).unwrap(), exact);
    // The windows overlapped (same start, same duration): no warning about it,
    // and the timeline is aligned to one clock.
    assert!(
        !m.warnings.iter().any(|w| w.contains("overlap")),
        "{:?}",
        m.warnings
    );
    let tl: u64 = m.timeline.iter().map(|s| s.requests).sum();
    assert_eq!(tl, sum(|r| r.timeline.iter().map(|s| s.requests).sum()));
    assert!(m.timeline.len() <= 2, "{:?}", m.timeline);

    // Runs that did not overlap are merged with a warning.
    let mut late = reports[1].clone();
    late.started_unix_s = late.started_unix_s.map(|t| t + 100.0);
    std::fs::write(dir.join("late.json"), late.to_json()).unwrap();
    let out = Command::new(BIN)
        .args(["bench", "merge"])
        .arg(dir.join("a.json"))
        .arg(dir.join("late.json"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains("windows do not overlap"), "{stdout}");
    // One report, or a file that is not one, is a usage error.
    let out = Command::new(BIN)
        .args(["bench", "merge"])
        .arg(dir.join("a.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args(["bench", "merge", "/nonexistent.json", "/nonexistent2.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("gvhttpd bench: cannot read"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ctrl_c_ends_the_run_early_with_a_summary() {
    let srv = Server::tokio_one_worker();
    let mut child = Command::new(BIN)
        .args([
            "bench",
            "--url",
            &srv.url(),
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
    // The header names the planned 60 s; the summary says the run was cut short.
    assert!(
        stdout.contains("INTERRUPTED by Ctrl-C after"),
        "the run was cut short: {stdout}"
    );
}

/// `--serve-arg` reaches every model's `serve` (a bad value fails the row with
/// serve's own error), is refused for flags the comparison sets, and is recorded;
/// a variant row (`tokio+multi`) runs under its own name.
#[test]
fn compare_passes_serve_args_to_every_model_and_records_them() {
    let compare = |extra: &[&str], out: &std::path::Path| {
        Command::new(BIN)
            .args(["bench", "compare", "--quick", "--models", "tokio+multi"])
            .args([
                "--scenarios",
                "skew",
                "--duration",
                "300ms",
                "--warmup",
                "100ms",
            ])
            .args([
                "--server-cpus",
                "0",
                "--load-cpus",
                "0",
                "--skew-work-us",
                "2000",
            ])
            .args(extra)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let dir = std::env::temp_dir().join(format!("gv-compare-args-{}", std::process::id()));
    let refused = compare(&["--serve-arg=--workers=3"], &dir);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("bench compare sets --workers itself"), "{err}");

    let bad = compare(&["--serve-arg=--work-slice=soon"], &dir);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "{err}");
    assert!(
        err.contains("tokio+multi") && err.contains("--work-slice"),
        "{err}"
    );

    let ok = compare(&["--serve-arg", "--work-slice=0"], &dir);
    let err = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{err}");
    let folder = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let raw = std::fs::read_to_string(folder.join("raw.json")).unwrap();
    let raw = loadgen::compare::Raw::from_json(&raw).unwrap();
    assert_eq!(raw.serve_args, ["--work-slice=0"]);
    assert_eq!(raw.skew_path(), "/work/2000");
    let run = &raw.runs[0];
    assert_eq!((run.model.as_str(), &run.error), ("tokio+multi", &None));
    assert!(run.heavy.is_some(), "the heavy /work requests ran");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--nginx-peer` / `--haproxy-peer` as `bench compare` starts them: the
/// generated configuration forwards `/proxy/...` to the backend as `/...`.
/// Skipped, loudly, where nginx or HAProxy is not installed.
#[test]
fn the_peer_scripts_proxy_to_the_backend() {
    let backend = Server::tokio_one_worker();
    let root = common::TempDir::new("peer-proxy");
    std::fs::write(root.0.join("f.txt"), "file\n").unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/compare.sh");
    for (peer, tool) in [("--nginx-peer", "nginx"), ("--haproxy-peer", "haproxy")] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            eprintln!("SKIPPED {peer}: {tool} is not installed");
            continue;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(script)
            .args([
                peer,
                &port.to_string(),
                root.path(),
                &backend.addr.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(std::time::Instant::now() < until, "{tool} never listened");
            assert!(child.try_wait().unwrap().is_none(), "{tool} exited");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let get = |path: &str| {
            use std::io::{Read, Write};
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            write!(
                c,
                "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut out = String::new();
            let _ = c.read_to_string(&mut out);
            out
        };
        // Twice: the second goes over a pooled upstream connection.
        for _ in 0..2 {
            let json = get("/proxy/json");
            assert!(json.starts_with("HTTP/1.1 200"), "{tool}: {json}");
            assert!(
                json.ends_with("{\"message\":\"Hello, World!\"}"),
                "{tool}: {json}"
            );
        }
        let hello = get("/proxy/?x=1");
        assert!(hello.ends_with("Hello, World!"), "{tool}: {hello}");
        if tool == "nginx" {
            // The same process still serves the files of the other scenarios.
            assert!(get("/static/f.txt").ends_with("file\n"));
        } else {
            assert!(get("/static/f.txt").starts_with("HTTP/1.1 404"));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `scaling` with one server CPU: the workers still double (1 and 2), the
/// second on the load's CPU, and the raw data says which CPUs they ran on.
#[test]
fn compare_scaling_on_one_server_cpu_runs_two_workers() {
    let dir = std::env::temp_dir().join(format!("gv-compare-scaling-{}", std::process::id()));
    let out = Command::new(BIN)
        .args(["bench", "compare", "--quick", "--models", "tokio"])
        .args([
            "--scenarios",
            "scaling",
            "--duration",
            "200ms",
            "--warmup",
            "50ms",
        ])
        .args(["--server-cpus", "0", "--load-cpus", "1", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && err.contains("--load-cpus") {
        // A one-CPU machine has no CPU 1 to pin to.
        eprintln!("SKIPPED: {err}");
        return;
    }
    assert!(out.status.success(), "{err}");
    let folder = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let raw = loadgen::compare::Raw::from_json(
        &std::fs::read_to_string(folder.join("raw.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(raw.scaling_cpus, vec![0, 1]);
    let mut labels: Vec<&str> = raw
        .runs
        .iter()
        .filter_map(|r| r.point.as_ref().map(|p| p.label.as_str()))
        .collect();
    labels.sort_unstable();
    assert_eq!(
        labels,
        ["w1 pipelined", "w1 plain", "w2 pipelined", "w2 plain"]
    );
    for r in &raw.runs {
        let rep = r.report.as_ref().unwrap_or_else(|| panic!("{:?}", r.error));
        assert!(
            rep.result.requests > 0,
            "{}",
            r.point.as_ref().unwrap().label
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The `large` mix, `downloads` (a small count) and `proxy` through the real
/// binary: files served intact, every download read and checked, the backend's
/// CPU reported apart. Until `serve --upstream` exists the models' proxy runs
/// fail, naming the flag; nginx and HAProxy (when installed) are peers that proxy.
#[test]
fn compare_runs_the_file_mix_downloads_and_proxy() {
    let dir = std::env::temp_dir().join(format!("gv-compare-new-{}", std::process::id()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/compare.sh");
    let mut cmd = Command::new(BIN);
    cmd.args(["bench", "compare", "--quick", "--models", "tokio"])
        .args(["--scenarios", "large,downloads,proxy", "--downloads", "40"])
        .args(["--duration", "300ms", "--warmup", "100ms"])
        .args(["--server-cpus", "0", "--load-cpus", "0"]);
    let mut peers = Vec::new();
    for (name, tool) in [("nginx", "--nginx-peer"), ("haproxy", "--haproxy-peer")] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            cmd.args([
                "--peer",
                &format!("{name}={script} {tool} {{port}} {{root}} {{upstream}}"),
            ]);
            peers.push(name);
        } else {
            eprintln!("SKIPPED the {name} peer: {name} is not installed");
        }
    }
    let out = cmd.arg("--out").arg(&dir).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let folder = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let raw = loadgen::compare::Raw::from_json(
        &std::fs::read_to_string(folder.join("raw.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(raw.backend_cpus, vec![0]);
    let run = |model: &str, sc: &str, label: Option<&str>| {
        raw.runs
            .iter()
            .find(|r| {
                r.model == model
                    && r.scenario == sc
                    && r.point.as_ref().map(|p| p.label.as_str()) == label
            })
            .unwrap_or_else(|| panic!("no {model} {sc} run"))
    };
    // The mix: every request answered 200 by gvhttpd (and nginx).
    for m in std::iter::once("tokio").chain(peers.iter().copied().filter(|p| *p == "nginx")) {
        let mix = run(m, "large", Some("mix"));
        let r = mix
            .report
            .as_ref()
            .unwrap_or_else(|| panic!("{m}: {:?}", mix.error));
        assert_eq!(r.result.counts.status_2xx, r.result.requests, "{m}");
        assert!(r.result.requests > 0);
    }
    // Downloads: every one read to the end and identical to the file.
    let d = run("tokio", "downloads", None).downloads.clone().unwrap();
    assert_eq!((d.downloads, d.intact, d.errors), (40, 40, 0), "{d:?}");
    assert!(d.in_flight > 0 && d.in_flight <= 40, "{d:?}");
    assert!(
        d.bytes_per_download.is_finite() && d.rss_during_kib > 0,
        "{d:?}"
    );
    // proxy: gvhttpd either proxies or says why not (the flag, before --upstream exists).
    let p = run("tokio", "proxy", None);
    match (&p.report, &p.error) {
        (Some(r), None) => assert!(r.checks.backend.is_some()),
        (_, Some(e)) => assert!(e.contains("--upstream") || e.contains("/proxy/"), "{e}"),
        (None, None) => panic!("neither a report nor an error"),
    }
    for peer in &peers {
        let r = run(peer, "proxy", None);
        let rep = r
            .report
            .as_ref()
            .unwrap_or_else(|| panic!("{peer}: {:?}", r.error));
        assert_eq!(rep.result.counts.status_2xx, rep.result.requests, "{peer}");
        let b = rep
            .checks
            .backend
            .as_ref()
            .expect("the backend is measured");
        let s = rep.checks.server.as_ref().unwrap();
        assert!(b.pid != s.pid && b.cpu_s > 0.0, "{b:?}");
    }
    let summary = std::fs::read_to_string(folder.join("summary.md")).unwrap();
    for want in [
        "## Concurrent downloads",
        "the models `--write-timeout 600s --response-timeout 600s`",
        "## Reverse proxy",
        "| large mix (CPU/MB) |",
    ] {
        assert!(summary.contains(want), "{want}: {summary}");
    }
    for plot in ["downloads.svg", "proxy.svg"] {
        assert!(folder.join(plot).is_file(), "{plot}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
