//! The results folder: README.md, raw.json, summary.md and the SVG plots.

use super::{Kind, Raw, Run, SCENARIOS};
use crate::hist::{self, fmt_us, Hist};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// First line of `prog args` (or "unknown").
pub fn command_line(prog: &str, args: &[&str]) -> String {
    std::process::Command::new(prog)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// Today's UTC date as YYYY-MM-DD (civil-from-days, no calendar crate needed).
pub fn utc_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// One line describing a finished run (for stderr).
pub fn one_line(r: &Run) -> String {
    let what = format!("{} {}", r.model, r.scenario);
    if let Some(e) = &r.error {
        return format!("{what}: FAILED: {e}");
    }
    if let Some(i) = &r.idle {
        return format!(
            "{what}: {} connections, {:.0} bytes RSS each",
            i.connections, i.bytes_per_connection
        );
    }
    match &r.report {
        Some(rep) => format!(
            "{what}: {:.0} req/s, p99 {}, server {:.2}us/req{}",
            rep.result.req_per_s,
            fmt_us(rep.result.latency.p99_us as f64),
            rep.checks
                .server
                .as_ref()
                .map_or(0.0, |s| s.cpu_us_per_request),
            if rep.checks.noisy { " (noisy)" } else { "" }
        ),
        None => format!("{what}: no result"),
    }
}

/// Writes everything; returns the folder.
pub fn write_all(parent: &Path, raw: &Raw) -> Result<PathBuf, String> {
    let dir = parent.join(format!("{}-{}", utc_date(), raw.env.host));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))
    };
    write(
        "raw.json",
        serde_json::to_string_pretty(raw).expect("raw results serialise"),
    )?;
    write("README.md", readme(raw))?;
    write("summary.md", summary(raw))?;
    for (name, svg) in super::plots::all(raw)? {
        write(&name, svg)?;
    }
    Ok(dir)
}

fn readme(raw: &Raw) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# gvhttpd model comparison\n");
    let _ = writeln!(
        s,
        "See [summary.md](summary.md) for the table and the plots.\n"
    );
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| host | {} |", raw.env.host);
    let _ = writeln!(
        s,
        "| CPU | {} ({} online) |",
        raw.env.cpu_model, raw.env.cpus
    );
    let _ = writeln!(s, "| kernel | {} |", raw.env.kernel);
    let _ = writeln!(s, "| rustc | {} |", raw.rustc);
    let _ = writeln!(s, "| git revision | {} |", raw.git_revision);
    let _ = writeln!(s, "| server CPUs | {:?} |", raw.server_cpus);
    let _ = writeln!(s, "| load CPUs | {:?} |", raw.load_cpus);
    let _ = writeln!(
        s,
        "| per run | {:.1} s measured after {:.1} s warm-up, {} repetitions interleaved |",
        raw.duration_s, raw.warmup_s, raw.repeat
    );
    let _ = writeln!(
        s,
        "\nExact command:\n\n```\n{}\n```\n",
        raw.command.join(" ")
    );
    let _ = writeln!(s, "Models:\n");
    for m in &raw.models {
        match &m.reason {
            None => {
                let _ = writeln!(s, "- `{}`: measured", m.name);
            }
            Some(r) => {
                let _ = writeln!(s, "- `{}`: unavailable: {r}", m.name);
            }
        }
    }
    let _ = writeln!(s, "\nScenarios:\n");
    for sc in SCENARIOS
        .iter()
        .filter(|sc| raw.scenarios.iter().any(|n| n == sc.name))
    {
        let _ = writeln!(s, "- `{}`: {}", sc.name, sc.title);
    }
    let _ = writeln!(
        s,
        "\nEach run starts a fresh `gvhttpd serve --model M --workers {}` pinned to the server \
         CPUs; the load generator runs pinned to the load CPUs. `raw.json` has every run's full \
         report, including base64 HdrHistogram V2 histograms that merge exactly.",
        raw.server_cpus.len()
    );
    s
}

/// Runs of one (scenario, model) that produced a load report.
fn reports<'a>(raw: &'a Raw, scenario: &str, model: &str) -> Vec<&'a crate::report::Report> {
    raw.runs
        .iter()
        .filter(|r| r.scenario == scenario && r.model == model)
        .filter_map(|r| r.report.as_ref())
        .collect()
}

/// The exact merge of the runs' corrected (or uncorrected) histograms.
pub fn merged(raw: &Raw, scenario: &str, model: &str, uncorrected: bool) -> Option<Hist> {
    let mut acc = hist::new_hist();
    let mut any = false;
    for rep in reports(raw, scenario, model) {
        let enc = if uncorrected {
            rep.result.histogram_uncorrected.as_ref()
        } else {
            Some(&rep.result.histogram)
        };
        if let Some(h) = enc.and_then(|e| hist::decode(e).ok()) {
            hist::merge(&mut acc, &h);
            any = true;
        }
    }
    any.then_some(acc)
}

/// Median, min and max.
pub fn spread(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    };
    Some((median, v[0], v[v.len() - 1]))
}

/// Available models in the order given.
pub fn measured_models(raw: &Raw) -> Vec<&str> {
    raw.models
        .iter()
        .filter(|m| m.available)
        .map(|m| m.name.as_str())
        .collect()
}

fn summary(raw: &Raw) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Summary ({} on {})\n", raw.env.host, raw.env.cpu_model);
    let _ = writeln!(
        s,
        "Medians over {} interleaved repetitions, [min–max] in brackets. Latency percentiles \
         come from the exact merge of the repetitions' histograms (corrected for coordinated \
         omission in open loop). *noisy*: steal or other processes' CPU above 5 % during a run; \
         *gen-bound*: the load generator saturated its core while the server did not.\n",
        raw.repeat
    );
    let unavailable: Vec<String> = raw
        .models
        .iter()
        .filter(|m| !m.available)
        .map(|m| format!("`{}` ({})", m.name, m.reason.as_deref().unwrap_or("?")))
        .collect();
    if !unavailable.is_empty() {
        let _ = writeln!(s, "Unavailable: {}\n", unavailable.join(", "));
    }
    let models = measured_models(raw);
    let _ = writeln!(
        s,
        "| scenario | model | req/s median [min–max] | p50 | p99 | p99.9 | server CPU µs/req | \
         peak RSS | RSS/connection | flags |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for sc in SCENARIOS
        .iter()
        .filter(|sc| raw.scenarios.iter().any(|n| n == sc.name))
    {
        for m in &models {
            let runs: Vec<&Run> = raw
                .runs
                .iter()
                .filter(|r| r.scenario == sc.name && r.model == *m)
                .collect();
            let failed = runs.iter().filter(|r| r.error.is_some()).count();
            let mut flags = Vec::new();
            if failed > 0 {
                flags.push(format!("{failed} failed"));
            }
            if sc.kind == Kind::Idle {
                let per = spread(
                    runs.iter()
                        .filter_map(|r| r.idle.as_ref())
                        .map(|i| i.bytes_per_connection)
                        .collect(),
                );
                let cell = per.map_or("–".into(), |(md, lo, hi)| {
                    format!("{} [{}–{}]", kib(md), kib(lo), kib(hi))
                });
                let _ = writeln!(
                    s,
                    "| {} | {m} | | | | | | | {cell} | {} |",
                    sc.name,
                    flags.join(", ")
                );
                continue;
            }
            let reps = reports(raw, sc.name, m);
            let noisy = reps.iter().filter(|r| r.checks.noisy).count();
            let bound = reps.iter().filter(|r| r.checks.generator_bound).count();
            if noisy > 0 {
                flags.push(format!("noisy {noisy}/{}", reps.len()));
            }
            if bound > 0 {
                flags.push(format!("gen-bound {bound}/{}", reps.len()));
            }
            let rps = spread(reps.iter().map(|r| r.result.req_per_s).collect())
                .map_or("–".into(), |(md, lo, hi)| {
                    format!("{md:.0} [{lo:.0}–{hi:.0}]")
                });
            let lat = merged(raw, sc.name, m, false).map(|h| hist::LatencySummary::of(&h));
            let p = |f: fn(&hist::LatencySummary) -> u64| {
                lat.as_ref().map_or("–".into(), |l| fmt_us(f(l) as f64))
            };
            let cpu = spread(
                reps.iter()
                    .filter_map(|r| r.checks.server.as_ref())
                    .map(|sv| sv.cpu_us_per_request)
                    .collect(),
            )
            .map_or("–".into(), |(md, _, _)| format!("{md:.2}"));
            let rss = spread(
                reps.iter()
                    .filter_map(|r| r.checks.server.as_ref())
                    .map(|sv| sv.peak_rss_kib as f64)
                    .collect(),
            )
            .map_or("–".into(), |(md, _, _)| format!("{:.1} MiB", md / 1024.0));
            let _ = writeln!(
                s,
                "| {} | {m} | {rps} | {} | {} | {} | {cpu} | {rss} | | {} |",
                sc.name,
                p(|l| l.p50_us),
                p(|l| l.p99_us),
                p(|l| l.p999_us),
                flags.join(", ")
            );
        }
    }
    open_loop_notes(raw, &models, &mut s);
    let _ = writeln!(s, "\n## Plots\n");
    for (name, _) in super::plots::names(raw) {
        let _ = writeln!(s, "![{name}]({name})\n");
    }
    s
}

/// For open-loop scenarios: corrected vs uncorrected p99 and late sends.
fn open_loop_notes(raw: &Raw, models: &[&str], s: &mut String) {
    for sc in SCENARIOS
        .iter()
        .filter(|sc| raw.scenarios.iter().any(|n| n == sc.name))
    {
        let Kind::Load {
            rate: Some(rate), ..
        } = sc.kind
        else {
            continue;
        };
        let _ = writeln!(s, "\n`{}` is open loop at {rate:.0} req/s:\n", sc.name);
        for m in models {
            let reps = reports(raw, sc.name, m);
            let (sends, late): (u64, u64) = reps
                .iter()
                .map(|r| (r.result.sends, r.result.late_sends))
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            let c = merged(raw, sc.name, m, false).map(|h| h.value_at_quantile(0.99));
            let u = merged(raw, sc.name, m, true).map(|h| h.value_at_quantile(0.99));
            let _ = writeln!(
                s,
                "- `{m}`: p99 {} from the intended send time, {} from the actual send time; \
                 {late} of {sends} sends late",
                c.map_or("–".into(), |v| fmt_us(v as f64)),
                u.map_or("–".into(), |v| fmt_us(v as f64)),
            );
        }
    }
}

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}
