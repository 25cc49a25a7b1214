//! "Where the cost goes": per request, for every server in the scenarios where
//! it applies, user and system CPU, context switches, syscalls and io_uring
//! operations, medians over rounds.

use super::*;
use crate::compare::COST_POINTS;

/// One row of the breakdown (medians over rounds; `None` when not measured).
#[derive(Debug, Clone, PartialEq)]
pub struct CostRow {
    pub scenario: String,
    pub server: String,
    pub cpu_us: Option<f64>,
    pub user_us: Option<f64>,
    pub system_us: Option<f64>,
    pub voluntary: Option<f64>,
    pub involuntary: Option<f64>,
    /// Syscalls per request, or why there is no count.
    pub syscalls: Result<f64, String>,
    pub uring_sqes: Option<f64>,
    pub uring_enters: Option<f64>,
}

/// The user share of a run's server CPU (from its tick ratio).
fn user_share(r: &Run) -> Option<f64> {
    r.report
        .as_ref()?
        .checks
        .server
        .as_ref()?
        .threads
        .as_ref()?
        .user_share
}

fn switches(r: &Run, voluntary: bool) -> Option<f64> {
    let rep = r.report.as_ref()?;
    let t = rep.checks.server.as_ref()?.threads.as_ref()?;
    let n = if voluntary {
        t.voluntary_switches
    } else {
        t.involuntary_switches
    };
    (rep.result.requests > 0).then(|| n as f64 / rep.result.requests as f64)
}

fn median_of(runs: &[&Run], f: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
    stat(runs, f).map(|s| s.0)
}

/// The scenarios (and the point of each) the breakdown covers, in matrix order.
pub fn covered(raw: &Raw) -> Vec<(&'static str, Option<&'static str>)> {
    present(raw)
        .into_iter()
        .filter_map(|sc| match sc.kind {
            Kind::Load {
                keepalive: true, ..
            } => Some((sc.name, None)),
            Kind::Cost => Some((sc.name, Some(COST_POINTS[0]))),
            // The server's side of each proxied request (the backend's CPU is
            // its own, in the proxy table).
            Kind::Proxy => Some((sc.name, None)),
            _ => None,
        })
        .collect()
}

/// The breakdown rows of `raw`.
pub fn cost_rows(raw: &Raw) -> Vec<CostRow> {
    let mut out = Vec::new();
    for (sc, point) in covered(raw) {
        for m in measured_models(raw) {
            let runs: Vec<&Run> = runs_of(raw, sc, point, m)
                .into_iter()
                .filter(|r| r.error.is_none())
                .collect();
            if runs.is_empty() {
                continue;
            }
            let cpu = median_of(&runs, cpu_per_req);
            let share = median_of(&runs, user_share);
            let syscalls = if point.is_some() {
                let traced = runs_of(raw, sc, Some(COST_POINTS[1]), m);
                match median_of(&traced, |r| r.extra.as_ref()?.syscalls_per_request) {
                    Some(v) => Ok(v),
                    None => Err(traced
                        .iter()
                        .find_map(|r| {
                            r.extra
                                .as_ref()
                                .and_then(|e| e.syscalls_na.clone())
                                .or_else(|| r.error.clone())
                        })
                        .unwrap_or_else(|| "no traced run".into())),
                }
            } else {
                Err("counted in `cost` only (the tracepoint costs CPU)".into())
            };
            out.push(CostRow {
                scenario: sc.to_string(),
                server: m.to_string(),
                cpu_us: cpu,
                user_us: cpu.zip(share).map(|(c, s)| c * s),
                system_us: cpu.zip(share).map(|(c, s)| c * (1.0 - s)),
                voluntary: median_of(&runs, |r| switches(r, true)),
                involuntary: median_of(&runs, |r| switches(r, false)),
                syscalls,
                uring_sqes: median_of(&runs, |r| r.extra.as_ref()?.uring_sqes_per_request),
                uring_enters: median_of(&runs, |r| r.extra.as_ref()?.uring_enters_per_request),
            });
        }
    }
    out
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or("–".into(), f)
}

fn d2(v: f64) -> String {
    format!("{v:.2}")
}

fn d3(v: f64) -> String {
    format!("{v:.3}")
}

/// The section of summary.md.
pub(super) fn cost_table(raw: &Raw, s: &mut String) {
    let rows = cost_rows(raw);
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Where the cost goes\n");
    let rate = raw
        .cost_rate
        .map(|r| format!(" `cost` offers {r:.0} req/s to every server."))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "Per request, medians over rounds.{rate} CPU is the server's threads' run time from \
         `/proc/PID/task/*/schedstat` (nanosecond resolution); the user/system split applies \
         the utime:stime ratio of `/proc/PID/stat` (10 ms ticks) to it, so it is only as \
         good as the ticks in the run. Context switches from the threads' `status`. \
         Syscalls: `perf stat -e raw_syscalls:sys_enter` on the server's process during \
         `cost`'s separate `syscalls` point (never in a run whose CPU is compared); io_uring \
         SQEs and `io_uring_enter` calls from the server's `/stats` (io_uring models only). \
         `proxy`: the server's side of each proxied request only (the backend's CPU is apart, \
         in the proxy table).{}\n",
        if rows.iter().any(|r| r.scenario == "cost") {
            " Plot: `cost-breakdown.svg`."
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "| scenario | server | CPU µs | user µs | system µs | voluntary switches | involuntary switches | syscalls | io_uring SQEs | io_uring enters |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    let mut na: Vec<String> = Vec::new();
    for r in &rows {
        let sys = match &r.syscalls {
            Ok(v) => d2(*v),
            Err(why) => {
                if !na.contains(why) {
                    na.push(why.clone());
                }
                let i = na.iter().position(|n| n == why).unwrap_or(0) + 1;
                format!("n/a ({i})")
            }
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {sys} | {} | {} |",
            r.scenario,
            r.server,
            opt(r.cpu_us, d2),
            opt(r.user_us, d2),
            opt(r.system_us, d2),
            opt(r.voluntary, d3),
            opt(r.involuntary, d3),
            opt(r.uring_sqes, d2),
            opt(r.uring_enters, d3),
        );
    }
    if !na.is_empty() {
        let _ = writeln!(s);
        for (i, why) in na.iter().enumerate() {
            let _ = writeln!(s, "({}) n/a: {why}  ", i + 1);
        }
    }
    let _ = writeln!(s);
}
