//! `bench compare` without servers: the sweep's rate plan, `--peer` parsing, axis
//! ticks, and every plot and the summary rendered from a synthetic run.

use loadgen::checks::{Checks, ServerCheck};
use loadgen::compare::paired::Verdict;
use loadgen::compare::CostRow;
use loadgen::compare::{
    self, fmt_tick, parse_peer, points, rate_plan, ticks_125, ticks_linear, Kind, ModelStatus,
    Point, Raw, Run, SCENARIOS, SWEEP_FRACTIONS,
};
use loadgen::engine::Counts;
use loadgen::hist;
use loadgen::report::{Env, Report, RunConfig, RunResult, Tool};

#[test]
fn sweep_rate_plan_offers_shares_of_the_maximum() {
    let plan = rate_plan(50_000.0, &SWEEP_FRACTIONS).unwrap();
    assert_eq!(
        plan,
        [5_000.0, 12_500.0, 25_000.0, 37_500.0, 45_000.0, 50_000.0, 55_000.0]
    );
    // Rounded to 10 req/s, never below 10.
    assert_eq!(rate_plan(1_234.0, &[0.1, 1.0]).unwrap(), [120.0, 1_230.0]);
    assert_eq!(rate_plan(20.0, &[0.1]).unwrap(), [10.0]);
    for bad in [0.0, 5.0, f64::NAN, f64::INFINITY, -1.0] {
        assert!(rate_plan(bad, &SWEEP_FRACTIONS).is_err(), "{bad}");
    }
    // The sweep's points are those shares, from light load to past saturation.
    let pts: Vec<Point> = points(Kind::Sweep, false).into_iter().flatten().collect();
    let labels: Vec<&str> = pts.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(labels, ["10%", "25%", "50%", "75%", "90%", "100%", "110%"]);
    assert!(pts.iter().zip(SWEEP_FRACTIONS).all(|(p, f)| p.value == f));
    assert_eq!(points(Kind::Sweep, true).len(), 3);
    assert_eq!(points(Kind::Busy, false).len(), 3);
    assert_eq!(points(Kind::Idle, false), vec![None]);
}

#[test]
fn peer_flags_parse_or_say_why_not() {
    assert_eq!(
        parse_peer("nginx=nginx -p /tmp -g 'daemon off; listen {port};'").unwrap(),
        (
            "nginx".to_string(),
            "nginx -p /tmp -g 'daemon off; listen {port};'".to_string()
        )
    );
    // Only the first '=' splits; the command may contain more.
    assert_eq!(
        parse_peer("ref-1.0 = srv --port={port} --x=y").unwrap(),
        ("ref-1.0".to_string(), "srv --port={port} --x=y".to_string())
    );
    for (bad, why) in [
        ("nginx", "expected NAME="),
        ("=srv {port}", "the name must be"),
        ("a b=srv {port}", "the name must be"),
        ("x=", "the command is empty"),
        ("x=srv --port 8080", "must contain {port}"),
    ] {
        let e = parse_peer(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn axis_ticks_are_1_2_5_and_never_repeat() {
    assert_eq!(
        ticks_125(130.0, 42_000.0),
        [100.0, 200.0, 500.0, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4]
    );
    assert_eq!(ticks_125(1_000.0, 1_000.0), [1e3, 2e3]);
    let (t, step) = ticks_linear(4_400.0);
    assert_eq!(
        (t.first(), t.last(), step),
        (Some(&0.0), Some(&5_000.0), 1_000.0)
    );
    for top in [1.0, 7.3, 99.0, 4_400.0, 4_999.0, 35_000.0, 1.3e6] {
        let (t, step) = ticks_linear(top);
        assert!(*t.last().unwrap() >= top && t.len() <= 7, "{top}: {t:?}");
        let labels: Vec<String> = t.iter().map(|v| fmt_tick(*v, step)).collect();
        let mut uniq = labels.clone();
        uniq.dedup();
        assert_eq!(labels, uniq, "{top}: repeated tick labels");
    }
    assert_eq!(fmt_tick(3_500.0, 500.0), "3500");
    assert_eq!(fmt_tick(35_000.0, 5_000.0), "35k");
    assert_eq!(fmt_tick(12_500.0, 2_500.0), "12.5k");
    assert_eq!(fmt_tick(0.0, 500.0), "0");
}

/// A load report with `n` responses at latencies spread over `lat_us`.
fn report(rps: f64, lat_us: (u64, u64), rate: Option<f64>, bytes: u64) -> Report {
    let mut h = hist::new_hist();
    let n = 2_000u64;
    for i in 0..n {
        hist::record(&mut h, lat_us.0 + (lat_us.1 - lat_us.0) * i * i / (n * n));
    }
    let elapsed = 2.0;
    let requests = (rps * elapsed) as u64;
    let lat = hist::LatencySummary::of(&h);
    Report {
        schema: loadgen::report::SCHEMA.into(),
        tool: Tool {
            name: "gvhttpd bench".into(),
            version: "test".into(),
        },
        command: vec!["test".into()],
        env: env(),
        config: RunConfig {
            url: "http://127.0.0.1:1/".into(),
            also: Vec::new(),
            method: "GET".into(),
            connections: 64,
            threads: 1,
            cpus: Some(vec![1]),
            pipeline: 1,
            keepalive: true,
            recv_buffer: None,
            duration_s: Some(elapsed),
            requests: None,
            warmup_s: 1.0,
            rate,
            timeout_s: 10.0,
            server: None,
        },
        started_unix_s: Some(1.7e9),
        result: RunResult {
            elapsed_s: elapsed,
            requests,
            successes: requests,
            req_per_s: rps,
            target_rate: rate,
            send_rate: rps,
            sends: requests,
            late_sends: 0,
            counts: Counts {
                status_2xx: requests,
                bytes_read: bytes.max(requests * 100),
                connections: requests / 2,
                ..Counts::default()
            },
            latency: lat.clone(),
            latency_uncorrected: rate.map(|_| lat),
            histogram: hist::encode(&h),
            histogram_uncorrected: rate.map(|_| hist::encode(&h)),
            status_codes: [(200, requests)].into_iter().collect(),
            interrupted: false,
        },
        timeline: Vec::new(),
        checks: Checks {
            generator_cpu_s: 1.0,
            generator_cpu_us_per_request: 5.0,
            generator_cpu_share: 0.5,
            generator_cores: 1,
            server: Some(ServerCheck {
                pid: 1,
                cpu_s: 1.9,
                cpu_us_per_request: 1.9e6 / requests as f64,
                cpu_share: 0.95,
                cores: 1,
                peak_rss_kib: 9_000,
                rss_kib: 8_000,
                threads: None,
            }),
            backend: None,
            load_cpu_share: None,
            steal_share: 0.0,
            foreign_share: 0.0,
            generator_bound: false,
            noisy: false,
        },
        warnings: Vec::new(),
    }
}

fn env() -> Env {
    Env {
        host: "testhost".into(),
        kernel: "6.1".into(),
        cpu_model: "Test CPU".into(),
        cpus: 2,
    }
}

/// Rounds of the synthetic comparison: enough for an exact 95 % interval.
const ROUNDS: u32 = 6;

/// Every scenario for two models and a peer, six rounds; `green` is
/// clearly faster everywhere, `tokio` and `nginx` overlap.
fn synthetic() -> Raw {
    let models = ["green", "tokio", "nginx"];
    let speed = |m: &str, rep: u32| match m {
        "green" => 2.0 + 0.01 * rep as f64,
        "tokio" => 1.0 + 0.05 * rep as f64,
        _ => 1.02 + 0.05 * rep as f64,
    };
    let mut runs = Vec::new();
    let run = |m: &str, sc: &str, rep: u32, point: Option<Point>, r: Option<Report>| Run {
        model: m.into(),
        scenario: sc.into(),
        repeat: rep,
        point,
        report: r,
        heavy: None,
        idle: None,
        error: None,
        extra: None,
        downloads: None,
    };
    for m in models {
        runs.push(run(
            m,
            "sweep",
            0,
            Some(Point {
                label: "max".into(),
                value: 0.0,
            }),
            Some(report(50_000.0 * speed(m, 0), (50, 3_000), None, 0)),
        ));
    }
    for rep in 1..=ROUNDS {
        for sc in SCENARIOS {
            for point in points(sc.kind, false) {
                for m in models {
                    let k = speed(m, rep);
                    let r = match sc.kind {
                        Kind::Load { rate, .. } => Some(report(40_000.0 * k, (30, 5_000), rate, 0)),
                        Kind::Sweep => {
                            let f = point.as_ref().unwrap().value;
                            let worst = (200.0 * f.powi(4) * 30.0 / k) as u64 + 100;
                            Some(report(
                                50_000.0 * f * k.min(1.0 + f),
                                (40, worst),
                                Some(50_000.0 * f),
                                0,
                            ))
                        }
                        Kind::Busy | Kind::Skew => {
                            Some(report(30_000.0 * k, (100, 20_000), None, 0))
                        }
                        Kind::Large => {
                            Some(report(900.0 * k, (500, 9_000), None, (2e9 * k) as u64))
                        }
                        Kind::Cost => Some(report(20_000.0, (30, 900), Some(20_000.0), 0)),
                        Kind::Proxy => {
                            let mut r = report(30_000.0 * k, (200, 4_000), None, 0);
                            let mut b = r.checks.server.clone().unwrap();
                            b.cpu_us_per_request = 7.5;
                            r.checks.backend = Some(b);
                            Some(r)
                        }
                        Kind::Idle | Kind::Bound | Kind::Scaling | Kind::Downloads => None,
                    };
                    runs.push(run(m, sc.name, rep, point.clone(), r));
                    let last = runs.last_mut().unwrap();
                    if sc.kind == Kind::Cost {
                        let rep = last.report.as_mut().unwrap();
                        rep.checks.server.as_mut().unwrap().cpu_us_per_request = 5.0 / k;
                        last.extra = Some(compare::breakdown::Extra {
                            syscalls_per_request: Some(3.0 / k),
                            syscalls_na: None,
                            uring_sqes_per_request: (m == "green").then_some(2.0),
                            uring_enters_per_request: (m == "green").then_some(0.5),
                        });
                    }
                    if sc.kind == Kind::Skew {
                        last.heavy = Some(report(190.0 * k, (5_000, 12_000), None, 0));
                    }
                    if sc.kind == Kind::Downloads {
                        last.downloads = Some(compare::downloads::DownloadsResult {
                            downloads: 10_000,
                            in_flight: 9_990,
                            rss_idle_kib: 8_000,
                            rss_during_kib: 8_000 + (100_000.0 / k) as u64,
                            bytes_per_download: 100_000.0 * 1024.0 / k / 9_990.0,
                            intact: 10_000,
                            errors: 0,
                            first_error: None,
                            client_rcvbuf: 16 << 10,
                            seconds: 30.0,
                            kernel_tcp_kib: Some(1_200_000),
                            tcp_pressure_kib: Some(1_535_508),
                        });
                    }
                    if sc.kind == Kind::Idle {
                        last.idle = Some(compare::IdleResult {
                            connections: 10_000,
                            rss_before_kib: 8_000,
                            rss_after_kib: 8_000 + (40_000.0 / k) as u64,
                            bytes_per_connection: 4096.0 / k,
                        });
                    }
                }
            }
        }
    }
    Raw {
        schema: "gvhttpd-compare/2".into(),
        command: vec!["gvhttpd".into(), "bench".into(), "compare".into()],
        env: env(),
        rustc: "rustc 1.80".into(),
        git_revision: "abc1234".into(),
        date: "2026-12-01".into(),
        server_cpus: vec![0],
        load_cpus: vec![1],
        duration_s: 3.0,
        warmup_s: 1.0,
        repeat: ROUNDS,
        quick: false,
        models: models
            .iter()
            .map(|m| ModelStatus {
                name: m.to_string(),
                available: true,
                reason: None,
                peer: (*m == "nginx").then(|| "nginx -g 'daemon off;' {port}".into()),
            })
            .collect(),
        serve_args: Vec::new(),
        skew_work_us: compare::DEFAULT_SKEW_WORK_US,
        // `bound` and `scaling` have runs only where a test adds them.
        scenarios: SCENARIOS
            .iter()
            .filter(|s| s.kind != Kind::Bound && s.kind != Kind::Scaling)
            .map(|s| s.name.to_string())
            .collect(),
        runs,
        equivalence: 0.05,
        rounds: Vec::new(),
        budget_s: 1200.0,
        cost_rate: Some(20_000.0),
        min_rounds: ROUNDS,
        backend_cpus: vec![1],
        scaling_cpus: Vec::new(),
    }
}

#[test]
fn every_plot_renders_with_axis_titles_units_and_conditions() {
    let raw = synthetic();
    let plots = compare::render_plots(&raw).unwrap();
    let names: Vec<&str> = plots.iter().map(|p| p.0.as_str()).collect();
    let expected = [
        "latency-plaintext.svg",
        "latency-pipelined.svg",
        "latency-json.svg",
        "latency-sleep.svg",
        "throughput.svg",
        "cpu-per-request.svg",
        "sweep.svg",
        "churn.svg",
        "skew.svg",
        "busy.svg",
        "large.svg",
        "cost-breakdown.svg",
        "downloads.svg",
        "proxy.svg",
    ];
    assert_eq!(names, expected);
    let listed: Vec<String> = compare::plot_names(&raw).into_iter().map(|p| p.0).collect();
    assert_eq!(
        listed, expected,
        "summary.md links exactly the plots written"
    );
    let axes: [(&str, &[&str]); 11] = [
        (
            "latency-plaintext.svg",
            &["percentile (%)", "latency (ms, log scale)", "99.9999%"],
        ),
        (
            "latency-pipelined.svg",
            &["percentile (%)", "latency (ms, log scale)"],
        ),
        (
            "latency-json.svg",
            &["percentile (%)", "latency (ms, log scale)"],
        ),
        (
            "latency-sleep.svg",
            &[
                "percentile (%)",
                "latency from intended send (ms, log scale)",
            ],
        ),
        ("throughput.svg", &["throughput (req/s)"]),
        ("cpu-per-request.svg", &["server CPU per request (µs)"]),
        (
            "sweep.svg",
            &[
                "achieved throughput (req/s)",
                "p99 latency from intended send (ms, log scale)",
                "p99 bound 1 ms",
                "p99 bound 10 ms",
            ],
        ),
        (
            "churn.svg",
            &["new connections (1/s)", "server CPU per connection (µs)"],
        ),
        ("skew.svg", &["p99 latency (ms)", "throughput (req/s)"]),
        (
            "busy.svg",
            &[
                "connections (log scale)",
                "throughput (req/s)",
                "server CPU per request (µs)",
                "10000",
            ],
        ),
        (
            "large.svg",
            &[
                "response bytes (MB/s)",
                "server CPU per MB (µs)",
                "64KiB",
                "1MiB",
            ],
        ),
    ];
    let more: [(&str, &[&str]); 2] = [
        (
            "downloads.svg",
            &[
                "server RSS per download (KiB)",
                "10000 downloads of the 1 MiB file at once",
            ],
        ),
        (
            "proxy.svg",
            &[
                "throughput (req/s)",
                "server CPU per request (µs)",
                "backend CPU per request (µs)",
            ],
        ),
    ];
    let checked = axes.into_iter().chain(more).map(|(n, l)| {
        let svg = plots.iter().find(|p| p.0 == n).map(|p| &p.1);
        ((n, svg.unwrap_or_else(|| panic!("no {n}"))), (n, l))
    });
    for ((name, svg), (want_name, labels)) in checked {
        assert_eq!(name, want_name);
        let text = svg.replace(['\n'], " ");
        assert!(svg.starts_with("<svg"), "{name}");
        for l in labels {
            assert!(text.contains(l), "{name} lacks '{l}'");
        }
        // The subtitle: load shape, duration × repetitions, CPUs, commit, date, host.
        for l in [
            "3.0 s × up to 6 rounds (+1.0 s warm-up)",
            "server CPUs [0], load CPUs [1]",
            "commit abc1234",
            "2026-12-01",
            "host testhost",
        ] {
            assert!(text.contains(l), "{name} lacks the subtitle part '{l}'");
        }
        for m in ["green", "tokio", "nginx"] {
            assert!(
                text.contains(&format!(">{m}<"))
                    || text.contains(&format!("> {m} <"))
                    || text.contains(m),
                "{name} lacks {m}"
            );
        }
    }
}

#[test]
fn summary_names_the_best_with_a_paired_interval() {
    let raw = synthetic();
    let answers = compare::best_per_scenario(&raw);
    let plain = answers.iter().find(|a| a.what == "plaintext").unwrap();
    // Server CPU per request (lower is better): green at ~half of the others.
    assert_eq!(plain.best.as_ref().unwrap().0, "green");
    // nginx is 0.02 faster than tokio in every round.
    assert_eq!(plain.next.as_ref().unwrap().0, "nginx");
    assert_eq!(plain.ratios.len(), ROUNDS as usize);
    // Round r: (2 + 0.01 r) / (1.02 + 0.05 r); the interval over 6 rounds is [min–max].
    let want = |r: f64| (2.0 + 0.01 * r) / (1.02 + 0.05 * r);
    match plain.verdict.as_ref().unwrap() {
        Verdict::Better {
            first: true,
            lo,
            hi,
            ..
        } => {
            assert!(
                (lo - want(6.0)).abs() < 1e-3 && (hi - want(1.0)).abs() < 1e-3,
                "{lo} {hi}"
            )
        }
        v => panic!("{v:?}"),
    }
    // tokio is a reference only when it is a --peer: nginx is the runner-up here.
    assert!(plain.references.is_empty());
    // Lower is better for memory and the skew's light p99.
    let idle = answers.iter().find(|a| a.what == "idle").unwrap();
    assert_eq!(idle.best.as_ref().unwrap().0, "green");
    for what in [
        "busy c64",
        "busy c1000",
        "busy c10000",
        "large 64KiB",
        "large 1MiB",
        "sweep (p99 ≤ 1 ms)",
        "sweep (p99 ≤ 10 ms)",
        "churn",
        "skew (light)",
        "skew (heavy)",
    ] {
        let a = answers.iter().find(|a| a.what == what);
        assert!(a.is_some(), "no answer for {what}");
    }
    let md = compare::summary(&raw);
    assert!(md.contains("## The answer"), "{md}");
    let line = format!(
        "| plaintext | server CPU µs/req (lower is better) | **`green` (11.67)** | `nginx` (19.88) | `green` better by {:.2}× [{:.2}–{:.2}] | – | – |",
        {
            let mut v: Vec<f64> = (1..=6).map(|r| want(f64::from(r))).collect();
            v.sort_by(f64::total_cmp);
            (v[2] + v[3]) / 2.0
        },
        want(6.0),
        want(1.0)
    );
    assert!(md.contains(&line), "{line}\n{md}");
    assert!(md.contains("Why these metrics"), "{md}");
    for section in [
        "## Load–latency curve",
        "## Connection churn",
        "## CPU skew",
        "## Many busy connections",
        "## Large responses",
        "## Plots",
    ] {
        assert!(md.contains(section), "{section}");
    }
}

/// nginx answered the skew's heavy requests with 404: it cannot be best there.
#[test]
fn a_server_with_failed_requests_is_not_comparable() {
    let mut raw = synthetic();
    for r in raw
        .runs
        .iter_mut()
        .filter(|r| r.model == "nginx" && r.scenario == "skew")
    {
        let h = r.heavy.as_mut().unwrap();
        h.result.counts.status_4xx = 100;
        h.result.counts.status_2xx = 0;
        h.result.requests = 100;
        // And it answers the light ones ten times faster than anyone.
        r.report.as_mut().unwrap().result.latency.p99_us = 1;
    }
    let answers = compare::best_per_scenario(&raw);
    let light = answers.iter().find(|a| a.what == "skew (light)").unwrap();
    assert_ne!(light.best.as_ref().unwrap().0, "nginx");
    assert_eq!(light.not_comparable.len(), 1);
    let (who, why) = &light.not_comparable[0];
    assert_eq!(who, "nginx");
    assert!(why.starts_with("not comparable: 600 of "), "{why}");
    let md = compare::summary(&raw);
    assert!(md.contains("`nginx`: not comparable: 600 of "), "{md}");
}

/// A variant row (`tokio+multi`: a '+' in the name) and `--serve-arg`s go through
/// every table, plot and file name, and the result says which flags it ran with.
#[test]
fn variant_rows_and_serve_flags_show_in_every_output() {
    let mut raw = synthetic();
    let rename = |n: &mut String| {
        if n == "tokio" {
            *n = "tokio+multi".into();
        }
    };
    raw.models.iter_mut().for_each(|m| rename(&mut m.name));
    raw.runs.iter_mut().for_each(|r| rename(&mut r.model));
    raw.serve_args = vec!["--work-slice=0".into()];
    raw.skew_work_us = 20_000;

    let summary = compare::summary(&raw);
    assert!(summary.contains("| tokio+multi |"), "{summary}");
    assert!(!summary.contains("| tokio |"), "{summary}");
    assert!(
        summary.contains("Heavy requests: `GET /work/20000`; serve flags: `--work-slice=0`"),
        "{summary}"
    );
    for (name, svg) in compare::render_plots(&raw).unwrap() {
        assert!(
            !name.contains('+'),
            "file names come from scenarios: {name}"
        );
        assert!(svg.contains("tokio+multi"), "{name} names the row");
        assert!(
            svg.contains("serve --work-slice=0"),
            "{name} says the flags"
        );
    }
    let skew = compare::render_plots(&raw)
        .unwrap()
        .into_iter()
        .find(|p| p.0 == "skew.svg")
        .unwrap()
        .1;
    assert!(
        skew.contains("GET /work/20000"),
        "skew.svg names the heavy path"
    );

    let dir = std::env::temp_dir().join(format!("gvhttpd-compare-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    compare::write_reports(&dir, &raw).unwrap();
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        readme.contains("| serve flags (`--serve-arg`) | `--work-slice=0` |"),
        "{readme}"
    );
    assert!(
        readme.contains("`tokio+multi` (model): measured"),
        "{readme}"
    );

    // raw.json keeps both; one written before they existed reads as the defaults.
    let back = Raw::from_json(&serde_json::to_string(&raw).unwrap()).unwrap();
    assert_eq!(
        (back.serve_args, back.skew_work_us),
        (raw.serve_args, 20_000)
    );
    let mut old: serde_json::Value = serde_json::to_value(synthetic()).unwrap();
    let obj = old.as_object_mut().unwrap();
    obj.remove("serve_args");
    obj.remove("skew_work_us");
    let old = Raw::from_json(&old.to_string()).unwrap();
    assert_eq!((old.serve_args.len(), old.skew_work_us), (0, 5_000));
}

/// The breakdown: figures where they were measured, n/a with its reason where not.
#[test]
fn the_cost_breakdown_gives_figures_or_says_why_not() {
    let mut raw = synthetic();
    let rows = compare::cost_rows(&raw);
    let green = rows
        .iter()
        .find(|r| r.scenario == "cost" && r.server == "green")
        .unwrap();
    assert_eq!(green.uring_sqes, Some(2.0));
    let s = green.syscalls.clone().unwrap();
    assert!(s > 1.0 && s < 2.0, "{s}");
    // No thread readings in the synthetic runs: no split, not a made-up one.
    assert_eq!(green.user_us, None);
    let tokio = rows
        .iter()
        .find(|r| r.scenario == "cost" && r.server == "tokio")
        .unwrap();
    assert_eq!(tokio.uring_sqes, None);
    let plain = rows.iter().find(|r| r.scenario == "plaintext").unwrap();
    assert!(plain
        .syscalls
        .as_ref()
        .unwrap_err()
        .contains("counted in `cost` only"));

    // perf refused: every cost row says n/a and the summary gives the reason.
    let why = "kernel.perf_event_paranoid is 2: tracepoints need -1, root or CAP_PERFMON";
    for r in raw.runs.iter_mut().filter(|r| r.scenario == "cost") {
        let e = r.extra.as_mut().unwrap();
        e.syscalls_per_request = None;
        e.syscalls_na = Some(why.into());
    }
    let rows = compare::cost_rows(&raw);
    let cost: Vec<&CostRow> = rows.iter().filter(|r| r.scenario == "cost").collect();
    assert_eq!(cost.len(), 3);
    assert!(cost.iter().all(|r| r.syscalls.as_ref().unwrap_err() == why));
    let md = compare::summary(&raw);
    assert!(md.contains("## Where the cost goes"), "{md}");
    assert!(md.contains(&format!("n/a: {why}")), "{md}");
    assert!(md.contains("| cost | green | 2.46 |"), "{md}");
}

/// The two p99 bounds of sweep.svg differ in colour and dash, in the legend too.
#[test]
fn the_sweep_bounds_are_told_apart_in_the_legend() {
    let raw = synthetic();
    let plots = compare::render_plots(&raw).unwrap();
    let sweep = &plots.iter().find(|p| p.0 == "sweep.svg").unwrap().1;
    for colour in ["#C86E00", "#5A5A5A"] {
        // The line across the plot (many dashes) and its legend glyph.
        let n = sweep.matches(colour).count();
        assert!(n >= 3, "{colour} drawn {n} times");
    }
    assert!(sweep.contains("p99 bound 1 ms") && sweep.contains("p99 bound 10 ms"));
    let cost = &plots
        .iter()
        .find(|p| p.0 == "cost-breakdown.svg")
        .unwrap()
        .1;
    assert!(cost.contains("server CPU per request (µs)"), "{cost}");
    assert!(cost.contains("no user/system split"), "{cost}");
}

/// A second run the same day gets its own folder; nothing of the first is touched.
#[test]
fn a_run_never_writes_into_another_runs_folder() {
    let parent = std::env::temp_dir().join(format!("gvhttpd-rundir-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&parent);
    let a = compare::new_run_dir(&parent, "2026-12-07", "vm").unwrap();
    std::fs::write(a.join("sweep.svg"), "first run").unwrap();
    let b = compare::new_run_dir(&parent, "2026-12-07", "vm").unwrap();
    let c = compare::new_run_dir(&parent, "2026-12-07", "vm").unwrap();
    assert_eq!(a.file_name().unwrap(), "2026-12-07-vm");
    assert_eq!(b.file_name().unwrap(), "2026-12-07-vm-2");
    assert_eq!(c.file_name().unwrap(), "2026-12-07-vm-3");
    assert_eq!(
        std::fs::read_dir(&b).unwrap().count(),
        0,
        "a new folder is empty"
    );
    assert_eq!(
        std::fs::read_to_string(a.join("sweep.svg")).unwrap(),
        "first run"
    );
    let _ = std::fs::remove_dir_all(&parent);
}

/// The README describes what ran: a quick run's busy counts, the idle count.
#[test]
fn the_readme_states_the_counts_that_ran() {
    let mut raw = synthetic();
    raw.runs
        .retain(|r| r.point.as_ref().is_none_or(|p| p.label != "c10000"));
    for r in raw.runs.iter_mut() {
        if let Some(i) = r.idle.as_mut() {
            i.connections = 1_000;
        }
    }
    let busy = compare::scenario("busy").unwrap();
    let t = compare::scenario_title(&raw, busy);
    assert_eq!(
        t,
        "many busy connections: GET / closed loop at 64, 1000 connections"
    );
    let idle = compare::scenario_title(&raw, compare::scenario("idle").unwrap());
    assert!(idle.starts_with("1000 idle connections"), "{idle}");
    let cost = compare::scenario_title(&raw, compare::scenario("cost").unwrap());
    assert!(cost.contains("every server at 20000 req/s"), "{cost}");
}

/// `bound` rows: each round's bisection gives a held rate per server; the answer
/// pairs them like any other row, and replaces the sweep's coarse bound rows.
#[test]
fn the_bisected_bound_answers_with_a_paired_interval() {
    use loadgen::compare::bisect::Search;
    let mut raw = synthetic();
    raw.scenarios.push("bound".into());
    // green's capacity is twice the others'; p99 = 50 µs / (1 − ρ).
    let capacity = |m: &str, rep: u32| match m {
        "green" => 200_000.0 + 1_000.0 * f64::from(rep),
        _ => 100_000.0 + 2_000.0 * f64::from(rep),
    };
    for rep in 1..=ROUNDS {
        for bound in compare::LATENCY_BOUNDS_US {
            for m in ["green", "tokio", "nginx"] {
                let cap = capacity(m, rep);
                let mut s = Search::new(cap);
                while let Some(rate) = s.next() {
                    let rho = rate / cap;
                    let p99 = if rho < 1.0 { 50.0 / (1.0 - rho) } else { 1e6 };
                    let run = Run {
                        model: m.into(),
                        scenario: "bound".into(),
                        repeat: rep,
                        point: Some(Point {
                            label: compare::bound_label(bound, s.probes.len() + 1),
                            value: rate,
                        }),
                        report: Some(report(rate, (30, p99 as u64), Some(rate), 0)),
                        heavy: None,
                        idle: None,
                        error: None,
                        extra: None,
                        downloads: None,
                    };
                    let held = compare::bound_held(&run, bound);
                    s.record(rate, held);
                    raw.runs.push(run);
                }
            }
        }
    }
    let answers = compare::best_per_scenario(&raw);
    assert!(
        !answers.iter().any(|a| a.what.starts_with("sweep (")),
        "the sweep rows go"
    );
    let one = answers
        .iter()
        .find(|a| a.what == "bound (p99 ≤ 1 ms)")
        .unwrap();
    assert_eq!(one.best.as_ref().unwrap().0, "green");
    assert_eq!(one.ratios.len(), ROUNDS as usize);
    match one.verdict.as_ref().unwrap() {
        Verdict::Better {
            first: true,
            lo,
            hi,
            ..
        } => {
            // About 2 (the capacities' ratio), within the 5 % brackets.
            assert!(*lo > 1.7 && *hi < 2.3, "{lo} {hi}")
        }
        v => panic!("{v:?}"),
    }
    assert!(answers.iter().any(|a| a.what == "bound (p99 ≤ 10 ms)"));
    let md = compare::summary(&raw);
    assert!(md.contains("## Load–latency bound by bisection"), "{md}");
    assert!(md.contains("| green | "), "{md}");
}

/// `scaling`: a table and one plot of req/s and CPU per request against workers.
#[test]
fn scaling_rows_show_in_the_summary_and_a_plot() {
    let mut raw = synthetic();
    raw.scenarios.push("scaling".into());
    for rep in 1..=2 {
        for point in compare::scaling_points(2) {
            let p = point.unwrap();
            for m in ["green", "tokio"] {
                let rps = 40_000.0
                    * p.value
                    * if p.label.ends_with("pipelined") {
                        8.0
                    } else {
                        1.0
                    };
                raw.runs.push(Run {
                    model: m.into(),
                    scenario: "scaling".into(),
                    repeat: rep,
                    point: Some(p.clone()),
                    report: Some(report(rps, (30, 900), None, 0)),
                    heavy: None,
                    idle: None,
                    error: None,
                    extra: None,
                    downloads: None,
                });
            }
        }
    }
    // One server CPU (0) and one load CPU (1): the servers ran on both.
    raw.scaling_cpus = compare::scaling_cpus(&raw.server_cpus, &raw.load_cpus);
    let md = compare::summary(&raw);
    assert!(md.contains("## Scaling (`scaling`)"), "{md}");
    assert!(
        md.contains("the first w of CPUs [0, 1], the load on the load CPUs [1]")
            && md.contains("from 2 workers on, the load shares their CPUs"),
        "the summary says the load shares the CPUs: {md}"
    );
    assert!(
        md.contains("| green | 2 | pipelined | 640000 [640000–640000] |"),
        "{md}"
    );
    let plots = compare::render_plots(&raw).unwrap();
    let svg = &plots
        .iter()
        .find(|p| p.0 == "scaling.svg")
        .expect("scaling.svg")
        .1;
    assert!(
        svg.contains("w2 pipelined"),
        "the groups name workers and shape"
    );
    assert!(svg.contains("shared with the load from w2 on"), "{svg}");
    assert!(compare::plot_names(&raw)
        .iter()
        .any(|p| p.0 == "scaling.svg"));
}

/// A row whose rounds fall on both sides of 1 stays undecided, and the summary
/// shows the per-round ratios that keep it so.
#[test]
fn undecided_rows_show_their_per_round_ratios() {
    let mut raw = synthetic();
    for r in raw
        .runs
        .iter_mut()
        .filter(|r| r.scenario == "plaintext" && r.model == "green" && r.repeat % 2 == 1)
    {
        let s = r.report.as_mut().unwrap().checks.server.as_mut().unwrap();
        s.cpu_us_per_request = 25.0;
    }
    let answers = compare::best_per_scenario(&raw);
    let plain = answers.iter().find(|a| a.what == "plaintext").unwrap();
    assert!(
        matches!(plain.verdict, Some(Verdict::Undecided { rounds: 6, .. })),
        "{plain:?}"
    );
    let md = compare::summary(&raw);
    assert!(
        md.contains("## Why the undecided rows are undecided"),
        "{md}"
    );
    let line = md
        .lines()
        .find(|l| l.starts_with("- plaintext ("))
        .expect("a line for plaintext");
    assert!(line.contains("3 of 6 rounds below 1"), "{line}");
    let ratios = line.split_once("): ").unwrap().1;
    assert_eq!(ratios.split(", ").count(), 6, "six ratios: {line}");
}

/// When the budget stops scenarios short of the minimum, the summary says
/// what budget would have given every scenario its rounds.
#[test]
fn the_rounds_table_says_what_budget_the_minimum_needs() {
    use loadgen::compare::rounds::{ScenarioRounds, Stop};
    let mut raw = synthetic();
    raw.rounds = vec![
        ScenarioRounds {
            scenario: "plaintext".into(),
            rounds: 6,
            stop: Stop::Resolved,
            seconds: 120.0,
        },
        ScenarioRounds {
            scenario: "bound".into(),
            rounds: 2,
            stop: Stop::Budget,
            seconds: 400.0,
        },
    ];
    let md = compare::summary(&raw);
    // 6 × 20 s + 6 × 200 s = 1320 s = 22 min.
    assert!(
        md.contains("that needs about 22 min (`--budget 22m`)"),
        "{md}"
    );
    assert!(md.contains("| bound | 2 | budget spent"), "{md}");
}

#[test]
fn the_mix_is_twenty_files_from_3_to_300_kb() {
    let files = compare::mix_files();
    assert_eq!(files.len(), compare::MIX_FILES);
    assert_eq!(files[0], ("mix/00-3000.bin".to_string(), 3_000));
    assert_eq!(files[19], ("mix/19-300000.bin".to_string(), 300_000));
    for w in files.windows(2) {
        // Geometric: each about 27 % larger than the one before.
        let step = w[1].1 as f64 / w[0].1 as f64;
        assert!((step - 1.2743).abs() < 0.002, "{w:?}");
    }
    let mean = compare::mix_mean_size();
    assert!((mean - files.iter().map(|f| f.1 as f64).sum::<f64>() / 20.0).abs() < 1e-9);
    // The bytes are the size's own stream: reproducible, and different per size.
    let a = compare::file_bytes(3_000);
    assert_eq!(a.len(), 3_000);
    assert_eq!(a, compare::file_bytes(3_000));
    assert_ne!(a[..64], compare::file_bytes(3_826)[..64]);
    // The large scenario's points: the two files, then the mix.
    let labels: Vec<String> = points(Kind::Large, false)
        .into_iter()
        .map(|p| p.unwrap().label)
        .collect();
    assert_eq!(labels, ["64KiB", "1MiB", "mix"]);
}

#[test]
fn large_downloads_and_proxy_rows_show_in_the_answer_and_the_summary() {
    let raw = synthetic();
    let answers = compare::best_per_scenario(&raw);
    let find = |what: &str| {
        answers
            .iter()
            .find(|a| a.what == what)
            .unwrap_or_else(|| panic!("no answer for {what}"))
    };
    // MB/s (higher is better) and CPU per MB (lower is better) per file and for the mix.
    for point in ["64KiB", "1MiB", "mix"] {
        let mbs = find(&format!("large {point}"));
        assert!(mbs.higher_better && mbs.metric == "MB/s");
        let cpu = find(&format!("large {point} {}", compare::CPU_PER_MB_SUFFIX));
        assert!(!cpu.higher_better && cpu.metric.contains("CPU µs per MB"));
        assert_eq!(cpu.ratios.len(), ROUNDS as usize, "paired per round");
        assert!(cpu.verdict.is_some());
    }
    // Memory per download: lower is better; green's synthetic figure is lowest.
    let d = find("downloads");
    assert!(!d.higher_better);
    assert_eq!(d.best.as_ref().unwrap().0, "green");
    assert_eq!(
        find("proxy").metric,
        "server CPU µs per proxied request (lower is better)"
    );
    let md = compare::summary(&raw);
    for want in [
        "## Concurrent downloads (`downloads`)",
        "| green | 60000 | 59940 |",
        "kernel TCP memory",
        "1500 MiB",
        "## Reverse proxy (`proxy`)",
        "(`gvhttpd serve --model tokio --workers 1` on CPUs [1])",
        "| 7.50 |",
        "`mix`: every connection requests 20 files in turn, 3000 bytes to 300000 bytes",
        "| large mix (CPU/MB) |",
    ] {
        assert!(md.contains(want), "{want}\n{md}");
    }
}

#[test]
fn a_download_error_makes_the_row_not_comparable() {
    let mut raw = synthetic();
    for r in raw
        .runs
        .iter_mut()
        .filter(|r| r.scenario == "downloads" && r.model == "green")
    {
        let d = r.downloads.as_mut().unwrap();
        d.errors = 1;
        d.intact -= 1;
        d.first_error = Some("download 7: closed after 5 of 1048576 body bytes".into());
    }
    let answers = compare::best_per_scenario(&raw);
    let d = answers.iter().find(|a| a.what == "downloads").unwrap();
    assert_ne!(d.best.as_ref().unwrap().0, "green");
    assert_eq!(
        d.not_comparable,
        vec![(
            "green".to_string(),
            "not comparable: 6 of 60000 failed".to_string()
        )]
    );
    let md = compare::summary(&raw);
    assert!(
        md.contains("first error: download 7: closed after 5 of 1048576 body bytes"),
        "{md}"
    );
}
