//! Bad flags give one clear line and exit status 2.

mod common;

use clap::Parser;
use loadgen::cli::{plan, BenchArgs, CliError};
use std::process::ExitCode;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

fn plan_error(argv: &[&str]) -> String {
    let cli = Cli::try_parse_from(std::iter::once("bench").chain(argv.iter().copied()))
        .expect("syntactically valid");
    let CliError(msg) = plan(&cli.bench.load).expect_err("must be rejected");
    assert!(!msg.contains('\n'), "one line: {msg}");
    msg
}

#[test]
fn zero_connections() {
    let m = plan_error(&["--url", "http://127.0.0.1:1/", "-c", "0"]);
    assert_eq!(m, "-c/--connections must be at least 1");
}

#[test]
fn bad_urls() {
    assert!(plan_error(&["--url", "https://127.0.0.1/"]).contains("only http://"));
    assert!(plan_error(&["--url", "127.0.0.1:8080"]).contains("expected http://"));
    assert!(plan_error(&["--url", "http://127.0.0.1:99999/"]).contains("bad port"));
    assert!(plan_error(&["--url", "http:///path"]).contains("no host"));
    assert!(plan_error(&[]).contains("missing --url"));
}

#[test]
fn unreachable_hosts() {
    // A name that cannot resolve (RFC 2606 reserves .invalid).
    let m = plan_error(&["--url", "http://no-such-host.invalid/"]);
    assert!(
        m.starts_with("cannot resolve host 'no-such-host.invalid'"),
        "{m}"
    );
    // A loopback port with nothing listening.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let url = format!("http://127.0.0.1:{port}/");
    let m = plan_error(&["--url", &url]);
    assert!(
        m.starts_with(&format!("cannot connect to 127.0.0.1:{port}")),
        "{m}"
    );
    assert!(m.to_lowercase().contains("refused"), "{m}");
}

#[test]
fn other_bad_values() {
    let srv = common::start(common::Style::Length);
    let url = format!("http://{}/", srv.addr);
    let u = url.as_str();
    assert!(plan_error(&["--url", u, "-d", "10 parsecs"]).contains("-d/--duration"));
    assert!(plan_error(&["--url", u, "-d", "0s"]).contains("more than 0"));
    assert!(plan_error(&["--url", u, "--rate=-5"]).contains("--rate"));
    assert!(plan_error(&["--url", u, "--pipeline", "0"]).contains("--pipeline"));
    assert!(plan_error(&["--url", u, "--pipeline", "4", "--no-keepalive"]).contains("keep-alive"));
    assert!(plan_error(&["--url", u, "-H", "NoColon"]).contains("bad header"));
    assert!(plan_error(&["--url", u, "-m", "G T"]).contains("bad method"));
    assert!(plan_error(&["--url", u, "--cpus", "x"]).contains("--cpus"));
    assert!(plan_error(&["--url", u, "-t", "0"]).contains("-t/--threads"));
    assert!(plan_error(&["--url", u, "--server-pid", "4000000000"]).contains("no such process"));
}

#[test]
fn run_maps_usage_errors_to_exit_2() {
    let cli = Cli::try_parse_from(["bench", "--url", "http://127.0.0.1:1/", "-c", "0"]).unwrap();
    assert_eq!(loadgen::cli::run(cli.bench), ExitCode::from(2));
}

#[test]
fn clap_rejects_non_numbers_with_status_2() {
    let e = Cli::try_parse_from(["bench", "-c", "many"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn start_at_takes_unix_seconds_or_utc_clock_time() {
    use loadgen::cli::parse_start_at;
    use std::time::{Duration, UNIX_EPOCH};
    // 2026-12-01 10:00:00 UTC.
    let now = UNIX_EPOCH + Duration::from_secs(1_796_119_200);
    assert_eq!(
        parse_start_at("1796119230.5", now),
        Ok(UNIX_EPOCH + Duration::from_secs_f64(1_796_119_230.5))
    );
    assert_eq!(
        parse_start_at("10:00:30", now),
        Ok(now + Duration::from_secs(30))
    );
    assert_eq!(
        parse_start_at("11:15", now),
        Ok(now + Duration::from_secs(4500))
    );
    // Within a second of now is fine (clocks of load machines differ a little).
    assert_eq!(parse_start_at("10:00", now), Ok(now));
    let past = parse_start_at("09:59:00", now).unwrap_err();
    assert!(past.contains("was 60.0s ago"), "{past}");
    for bad in [
        "", "soon", "25:00", "10:60", "1:2:3:4", "-5", "1e300", "10::00",
    ] {
        let e = parse_start_at(bad, now).unwrap_err();
        assert!(e.starts_with("--start-at: bad time"), "{bad}: {e}");
    }
    let m = plan_error(&["--url", "http://127.0.0.1:1/", "--start-at", "00:00:00"]);
    assert!(m.contains("ago") || m.contains("cannot connect"), "{m}");
}

#[derive(Debug, Parser)]
struct CompareCli {
    #[command(flatten)]
    compare: loadgen::compare::CompareArgs,
}

/// `bench compare` flag errors: one line naming the flag, before anything runs.
fn compare_error(argv: &[&str]) -> String {
    let parsed = CompareCli::try_parse_from(std::iter::once("compare").chain(argv.iter().copied()));
    match parsed {
        Err(e) => e.to_string(),
        Ok(cli) => match loadgen::compare::run(&cli.compare) {
            Err(loadgen::cli::Failure::Usage(CliError(m))) => m,
            other => panic!("{argv:?}: not a usage error: {other:?}"),
        },
    }
}

#[test]
fn compare_flags_are_checked_up_front() {
    let m = compare_error(&["--models", "callback,gren"]);
    assert!(m.starts_with("--models: unknown model 'gren'"), "{m}");
    assert_eq!(
        compare_error(&["--budget", "0s"]),
        "--budget must be more than 0"
    );
    assert!(compare_error(&["--budget", "soon"]).starts_with("--budget: "));
    assert_eq!(
        compare_error(&["--repeat", "6", "--max-rounds", "3"]),
        "--max-rounds (3) must be at least --repeat (6)"
    );
    assert!(compare_error(&["--cost-rate", "0"]).starts_with("--cost-rate: 0 is not a rate"));
    let m = compare_error(&["--equivalence", "150%"]);
    assert!(
        m.contains("--equivalence") && m.contains("below 100 %"),
        "{m}"
    );
    assert!(compare_error(&["--scenarios", "plaintext,nope"]).contains("unknown scenario 'nope'"));
    assert_eq!(
        compare_error(&["--downloads", "0"]),
        "--downloads must be at least 1"
    );
    assert!(compare_error(&["--backend-cpus", "x"]).starts_with("--backend-cpus: "));
    // More downloads than the server could hold descriptors for, refused up front.
    let m = compare_error(&["--scenarios", "downloads", "--downloads", "4000000000"]);
    assert!(
        m.starts_with("--downloads 4000000000: the server needs 8000000128 descriptors"),
        "{m}"
    );
}

#[test]
fn also_takes_paths_only() {
    for bad in ["b", "/with space", "http://127.0.0.1:1/x"] {
        let m = plan_error(&["--url", "http://127.0.0.1:1/", "--also", bad]);
        assert!(
            m.starts_with(&format!("--also '{bad}': expected a path")),
            "{m}"
        );
    }
}

#[test]
fn recv_buffer_out_of_range_or_above_the_kernels_cap() {
    let m = plan_error(&["--url", "http://127.0.0.1:1/", "--recv-buffer", "100"]);
    assert_eq!(
        m,
        "--recv-buffer 100: must be between 4096 and 1073741824 bytes"
    );
    // More than net.core.rmem_max: the kernel would silently grant less.
    let max: u64 = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .expect("Linux")
        .trim()
        .parse()
        .unwrap();
    if max < 1 << 30 {
        let asked = (max + 1).to_string();
        let m = plan_error(&["--url", "http://127.0.0.1:1/", "--recv-buffer", &asked]);
        assert_eq!(
            m,
            format!(
                "--recv-buffer {asked}: the kernel caps a receive buffer at \
                 net.core.rmem_max = {max} bytes; ask for at most that or raise the sysctl"
            )
        );
    }
}
