//! `gvhttpd bench merge`: one report from runs made at the same time by several
//! load machines against one server.
//!
//! Start the runs with one `--start-at` and one `--duration`, each with `--json`,
//! then merge the files. What is exact and what is not:
//! - histograms (corrected and, in open loop, uncorrected) merge exactly, so the
//!   merged percentiles are those of all responses together;
//! - counts, sends and late sends are summed;
//! - the measured window is the union of the runs' windows by wall clock (their
//!   `started_unix_s` and `elapsed_s`), and rates are per second of that window;
//!   a warning says when the windows do not overlap or overlap only in part;
//! - the timeline is aligned by wall clock to whole seconds from the earliest
//!   start; requests and errors per second are summed, and a second's p50/p99 is
//!   the largest of the machines' values for it (an upper bound on the merged
//!   quantile: per-second histograms are not stored);
//! - generator CPU is summed over the machines; server CPU is taken from the run
//!   that watched the server longest (all watched the same process) and divided
//!   by all requests.

use crate::cli::{CliError, Failure};
use crate::engine::{Counts, Second};
use crate::hist::{self, LatencySummary};
use crate::report::{self, Report};
use clap::Args;
use std::path::PathBuf;

/// Flags of `gvhttpd bench merge`.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// `--json` reports of `gvhttpd bench` runs (two or more).
    #[arg(value_name = "REPORT.json", num_args = 1.., required = true)]
    pub inputs: Vec<PathBuf>,
    /// Write the merged report as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Reads, merges, prints and writes.
pub fn run(a: &MergeArgs) -> Result<(), Failure> {
    let usage = |m: String| Failure::Usage(CliError(m));
    if a.inputs.len() < 2 {
        return Err(usage("merge needs at least two reports".into()));
    }
    let reports = a
        .inputs
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .map_err(|e| usage(format!("cannot read {}: {e}", p.display())))?;
            Report::from_json(&text).map_err(|e| usage(format!("{}: {e}", p.display())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<String> = a.inputs.iter().map(|p| p.display().to_string()).collect();
    let merged = merge(&reports, &names).map_err(usage)?;
    print!("{}", report::summary(&merged));
    if let Some(path) = &a.json {
        std::fs::write(path, merged.to_json())
            .map_err(|e| Failure::Run(format!("cannot write --json {}: {e}", path.display())))?;
    }
    Ok(())
}

/// Merges `reports` (named `names` in warnings) into one.
pub fn merge(reports: &[Report], names: &[String]) -> Result<Report, String> {
    let first = reports.first().ok_or("nothing to merge")?;
    let mut windows = Vec::with_capacity(reports.len());
    for (r, name) in reports.iter().zip(names) {
        let start = r.started_unix_s.ok_or_else(|| {
            format!("{name} has no start time (written by an older gvhttpd bench); cannot align it")
        })?;
        windows.push((start, start + r.result.elapsed_s));
    }
    let start = windows.iter().map(|w| w.0).fold(f64::INFINITY, f64::min);
    let end = windows
        .iter()
        .map(|w| w.1)
        .fold(f64::NEG_INFINITY, f64::max);
    let overlap = windows.iter().map(|w| w.1).fold(f64::INFINITY, f64::min)
        - windows
            .iter()
            .map(|w| w.0)
            .fold(f64::NEG_INFINITY, f64::max);
    let span = (end - start).max(1e-9);

    let mut corrected = hist::new_hist();
    let all_open = reports
        .iter()
        .all(|r| r.result.histogram_uncorrected.is_some());
    let mut uncorrected = all_open.then(hist::new_hist);
    let mut counts = Counts::default();
    let mut status_codes = std::collections::BTreeMap::<u16, u64>::new();
    let (mut sends, mut late) = (0, 0);
    for (r, name) in reports.iter().zip(names) {
        for (code, n) in &r.result.status_codes {
            *status_codes.entry(*code).or_default() += n;
        }
        let h = hist::decode(&r.result.histogram).map_err(|e| format!("{name}: {e}"))?;
        hist::merge(&mut corrected, &h);
        if let (Some(acc), Some(enc)) = (&mut uncorrected, &r.result.histogram_uncorrected) {
            let h = hist::decode(enc).map_err(|e| format!("{name}: {e}"))?;
            hist::merge(acc, &h);
        }
        counts.add(&r.result.counts);
        sends += r.result.sends;
        late += r.result.late_sends;
    }
    let requests = counts.successes() + counts.status_4xx + counts.status_5xx;

    let mut warnings = Vec::new();
    if overlap <= 0.0 {
        warnings.push(format!(
            "the runs' measured windows do not overlap (union {span:.2}s): this is not one \
             concurrent load; start them with the same --start-at and --duration"
        ));
    } else if overlap < 0.9 * span {
        warnings.push(format!(
            "the runs overlap for {overlap:.2}s of the {span:.2}s they cover together: rates \
             are averaged over the whole {span:.2}s"
        ));
    }
    if reports.iter().any(|r| r.config.url != first.config.url) {
        warnings.push("the runs used different URLs".into());
    }
    for (r, name) in reports.iter().zip(names) {
        warnings.extend(r.warnings.iter().map(|w| format!("{name}: {w}")));
    }

    let mut config = first.config.clone();
    config.connections = reports.iter().map(|r| r.config.connections).sum();
    config.threads = reports.iter().map(|r| r.config.threads).sum();
    config.requests = reports
        .iter()
        .map(|r| r.config.requests)
        .sum::<Option<u64>>();
    config.rate = reports.iter().map(|r| r.config.rate).sum::<Option<f64>>();
    let target_rate = reports
        .iter()
        .map(|r| r.result.target_rate)
        .sum::<Option<f64>>();

    let mut env = first.env.clone();
    for r in &reports[1..] {
        if !env.host.split('+').any(|h| h == r.env.host) {
            env.host = format!("{}+{}", env.host, r.env.host);
        }
    }

    let per_req = |cpu_s: f64| {
        if requests == 0 {
            0.0
        } else {
            cpu_s * 1e6 / requests as f64
        }
    };
    let mut checks = first.checks.clone();
    checks.generator_cpu_s = reports.iter().map(|r| r.checks.generator_cpu_s).sum();
    checks.generator_cores = reports.iter().map(|r| r.checks.generator_cores).sum();
    checks.generator_cpu_us_per_request = per_req(checks.generator_cpu_s);
    checks.generator_cpu_share =
        checks.generator_cpu_s / (span * checks.generator_cores.max(1) as f64);
    checks.steal_share = reports
        .iter()
        .map(|r| r.checks.steal_share)
        .fold(0.0, f64::max);
    checks.foreign_share = reports
        .iter()
        .map(|r| r.checks.foreign_share)
        .fold(0.0, f64::max);
    checks.generator_bound = reports.iter().any(|r| r.checks.generator_bound);
    checks.noisy = reports.iter().any(|r| r.checks.noisy);
    checks.server = reports
        .iter()
        .filter_map(|r| r.checks.server.clone())
        .max_by(|a, b| a.cpu_s.total_cmp(&b.cpu_s))
        .map(|mut s| {
            s.cpu_us_per_request = per_req(s.cpu_s);
            s
        });

    Ok(Report {
        schema: report::SCHEMA.into(),
        tool: first.tool.clone(),
        command: std::env::args().collect(),
        env,
        config,
        started_unix_s: Some(start),
        result: report::RunResult {
            elapsed_s: span,
            requests,
            successes: counts.successes(),
            req_per_s: requests as f64 / span,
            target_rate,
            send_rate: sends as f64 / span,
            sends,
            late_sends: late,
            counts,
            latency: LatencySummary::of(&corrected),
            latency_uncorrected: uncorrected.as_ref().map(LatencySummary::of),
            histogram: hist::encode(&corrected),
            histogram_uncorrected: uncorrected.as_ref().map(hist::encode),
            status_codes,
            interrupted: reports.iter().any(|r| r.result.interrupted),
        },
        timeline: timeline(reports, &windows, start),
        checks,
        warnings,
    })
}

/// The runs' seconds placed on one wall-clock axis from `start`.
fn timeline(reports: &[Report], windows: &[(f64, f64)], start: f64) -> Vec<Second> {
    let mut out: Vec<Second> = Vec::new();
    for (r, w) in reports.iter().zip(windows) {
        for s in &r.timeline {
            let begins = w.0 - start + (s.t_s - s.dur_s);
            let k = begins.round().max(0.0) as usize;
            while out.len() <= k {
                let t = out.len() as f64;
                out.push(Second {
                    t_s: t,
                    dur_s: 0.0,
                    requests: 0,
                    errors: 0,
                    p50_us: 0,
                    p99_us: 0,
                });
            }
            let m = &mut out[k];
            m.requests += s.requests;
            m.errors += s.errors;
            m.dur_s = m.dur_s.max(s.dur_s);
            m.t_s = k as f64 + m.dur_s;
            m.p50_us = m.p50_us.max(s.p50_us);
            m.p99_us = m.p99_us.max(s.p99_us);
        }
    }
    out.retain(|s| s.dur_s > 0.0);
    out
}
