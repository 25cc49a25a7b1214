//! Coordinated-omission correction: first through the real engine against a
//! real slow server on loopback, then on the scheduling logic itself with a
//! simulated slow server (virtual clock, deterministic).
//!
//! One connection is asked for 100 req/s (one every 10 ms) but the server takes
//! 50 ms per response. A wrk-style tool (latency from the actual send) keeps
//! reporting 50 ms; the corrected view grows with the backlog, because every
//! request waits longer than the one before it to even leave.

mod common;

use common::{args, start, Style, SLOW_SERVICE};
use loadgen::hist::LatencySummary;
use loadgen::schedule::{Latencies, Schedule};
use std::time::{Duration, Instant};

const SERVICE: Duration = Duration::from_millis(50);

/// Drives one connection for `run` of virtual time the way the engine does: when
/// the connection is free it takes the next due send (waiting for it if early),
/// the response completes SERVICE later, and the run ends at `run`.
fn simulate(rate: f64, run: Duration) -> Latencies {
    let t0 = Instant::now();
    let mut sched = Schedule::new(t0, 0, 1, rate);
    let mut lat = Latencies::new(true);
    let mut now = t0;
    let end = t0 + run;
    while now < end {
        let intended = match sched.take_due(now) {
            Some(i) => i,
            None => {
                now = sched.next_due(); // idle until the schedule says go
                sched.take_due(now).expect("due now")
            }
        };
        if now >= end {
            break;
        }
        let sample = lat.on_send(intended, now);
        now += SERVICE;
        if now <= end {
            lat.on_response(sample, now); // the engine stops recording at the end
        }
    }
    lat
}

#[test]
fn the_engine_corrects_for_a_slow_server() {
    let srv = start(Style::Slow);
    let mut a = args(srv.addr, "/");
    a.requests = None;
    a.duration = Some("1s".into());
    a.rate = Some(100.0);
    a.connections = 1;
    a.threads = Some(1);
    let r = loadgen::cli::run_load(&a).expect("run succeeds");
    let res = &r.result;
    // Each response takes at least 50 ms, so at most 1 s / 50 ms (+1) were sent,
    // and after the first every one left late.
    let most = (1000 / SLOW_SERVICE.as_millis() + 1) as u64;
    assert!(res.sends <= most, "{} sends", res.sends);
    assert!(res.sends >= 5, "{} sends", res.sends);
    assert!(res.late_sends + 1 >= res.sends, "{res:?}");
    let un = res
        .latency_uncorrected
        .as_ref()
        .expect("open loop keeps both views");
    // Uncorrected: about the service time (the median shrugs off one stall of a
    // busy machine). Corrected: the k-th response was meant to leave at 10 ms * k
    // but left at 50 ms * k or later, so its latency is at least 40 ms * k + 50 ms
    // (the tail ~800 ms and the median ~450 ms when all 20 went).
    assert!(
        (50_000..300_000).contains(&un.p50_us),
        "uncorrected p50 {}",
        un.p50_us
    );
    assert!(
        res.latency.p99_us >= 40_000 * (res.sends - 2),
        "corrected p99 {} over {} sends",
        res.latency.p99_us,
        res.sends
    );
    assert!(
        res.latency.p50_us > 2 * un.p50_us,
        "corrected p50 {} vs uncorrected p50 {}",
        res.latency.p50_us,
        un.p50_us
    );
    assert!(res.latency.max_us >= res.latency.p99_us);
}

#[test]
fn corrected_p99_grows_with_the_backlog_uncorrected_does_not() {
    let short = simulate(100.0, Duration::from_secs(1));
    let long = simulate(100.0, Duration::from_secs(4));
    let (cs, us) = (
        LatencySummary::of(&short.corrected),
        LatencySummary::of(short.uncorrected.as_ref().unwrap()),
    );
    let (cl, ul) = (
        LatencySummary::of(&long.corrected),
        LatencySummary::of(long.uncorrected.as_ref().unwrap()),
    );
    // Uncorrected: every response took the service time, however long the run.
    for u in [&us, &ul] {
        assert!(
            (49_000..=51_000).contains(&u.p99_us),
            "uncorrected p99 {}",
            u.p99_us
        );
    }
    // Corrected: request k leaves 40 ms * k late, so p99 tracks the run length.
    // After 1 s (100 intended sends, 20 sent) the last waited ~0.8 s; after 4 s ~3.2 s.
    assert!(
        cs.p99_us > 700_000 && cs.p99_us < 900_000,
        "1 s run: {}",
        cs.p99_us
    );
    assert!(
        cl.p99_us > 3_000_000 && cl.p99_us < 3_300_000,
        "4 s run: {}",
        cl.p99_us
    );
    assert!(cl.p99_us > 3 * cs.p99_us);
    // Nearly every send after the first was late.
    assert_eq!(long.late + 1, long.sends);
}

#[test]
fn a_fast_server_shows_no_correction_and_no_late_sends() {
    // 10 req/s on one connection (every 100 ms) against a 50 ms server.
    let lat = simulate(10.0, Duration::from_secs(3));
    let c = LatencySummary::of(&lat.corrected);
    let u = LatencySummary::of(lat.uncorrected.as_ref().unwrap());
    assert_eq!(c, u);
    assert_eq!(lat.late, 0);
    assert_eq!(lat.sends, 30);
}

#[test]
fn schedules_spread_connections_evenly() {
    // 4 connections at 1000 req/s: each sends every 4 ms, offset by 1 ms.
    let t0 = Instant::now();
    let mut all: Vec<Duration> = (0..4)
        .flat_map(|i| {
            let mut s = Schedule::new(t0, i, 4, 1000.0);
            (0..3)
                .map(|_| {
                    let d = s.next_due();
                    s.take_due(d).unwrap();
                    d - t0
                })
                .collect::<Vec<_>>()
        })
        .collect();
    all.sort();
    let want: Vec<Duration> = (0..12).map(Duration::from_millis).collect();
    assert_eq!(all, want);
}
