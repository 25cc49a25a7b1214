//! The `--json` document: written by a real run, read back identically, with the
//! fields the schema promises.

mod common;

use common::{args, start, Style};
use loadgen::report::{Report, SCHEMA};

#[test]
fn json_report_round_trips_and_has_the_promised_fields() {
    let srv = start(Style::Length);
    let path = std::env::temp_dir().join(format!("lg-report-{}.json", std::process::id()));
    let hgrm = std::env::temp_dir().join(format!("lg-report-{}.hgrm", std::process::id()));
    let mut a = args(srv.addr, "/json?x=1");
    a.requests = None;
    a.duration = Some("1200ms".into());
    a.warmup = "200ms".into();
    a.json = Some(path.clone());
    a.hgrm = Some(hgrm.clone());
    // A separate, idle process as the "server": its figures must be its own, not
    // the generator's (this test process), which does all the work here.
    let mut idle = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    a.server_pid = Some(idle.id());
    let report = loadgen::cli::run_load(&a).unwrap();
    let hwm = std::fs::read_to_string(format!("/proc/{}/status", idle.id()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap();
    let _ = idle.kill();
    let _ = idle.wait();
    let server = report.checks.server.as_ref().expect("server checks");
    assert_eq!(server.pid, idle.id());
    assert_eq!(server.peak_rss_kib, hwm, "peak RSS of the watched process");
    assert!(
        server.cpu_s < 0.05,
        "sleep(1) used {} s of CPU",
        server.cpu_s
    );
    assert!(
        report.checks.generator_cpu_s > server.cpu_s,
        "generator {} s vs idle server {} s",
        report.checks.generator_cpu_s,
        server.cpu_s
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let back = Report::from_json(&text).unwrap();
    assert_eq!(back, report);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema"], SCHEMA);
    for key in [
        "command", "tool", "env", "config", "result", "timeline", "checks",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    for key in ["host", "kernel", "cpu_model"] {
        assert!(
            v["env"][key].as_str().is_some_and(|s| !s.is_empty()),
            "env.{key}"
        );
    }
    for key in [
        "connect_refused",
        "connect_timeout",
        "request_timeout",
        "reset_eof",
        "write_error",
        "parse_error",
        "status_2xx",
        "status_3xx",
        "status_4xx",
        "status_5xx",
    ] {
        assert!(v["result"]["counts"][key].is_u64(), "counts.{key}");
    }
    assert!(v["checks"]["server"]["cpu_us_per_request"].is_f64());
    // Timeline: whole seconds of the measured period (warm-up excluded), then the rest.
    assert_eq!(back.timeline.len(), 2);
    assert_eq!(back.timeline[0].t_s, 1.0);
    let in_timeline: u64 = back.timeline.iter().map(|s| s.requests).sum();
    assert_eq!(in_timeline, back.result.successes);
    let h = loadgen::hist::decode(&back.result.histogram).unwrap();
    assert_eq!(h.len(), back.result.successes);
    assert!(std::fs::read_to_string(&hgrm)
        .unwrap()
        .contains("Total count"));
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(&hgrm).unwrap();
}
