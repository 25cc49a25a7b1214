//! The results folder: README.md, raw.json, summary.md and the SVG plots; and the
//! numbers behind them (medians, spreads, exact histogram merges, the answer).

use super::{scenario, Kind, Raw, Run, LATENCY_BOUNDS_US, SCENARIOS};
use crate::hist::{self, fmt_us, Hist};
use crate::report::Report;
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
    let what = match &r.point {
        Some(p) => format!("{} {} {}", r.model, r.scenario, p.label),
        None => format!("{} {}", r.model, r.scenario),
    };
    if let Some(e) = &r.error {
        return format!("{what}: FAILED: {e}");
    }
    if let Some(i) = &r.idle {
        return format!(
            "{what}: {} connections, {:.0} bytes RSS each",
            i.connections, i.bytes_per_connection
        );
    }
    let heavy = r
        .heavy
        .as_ref()
        .map(|h| format!(", heavy {:.0} req/s", h.result.req_per_s))
        .unwrap_or_default();
    match &r.report {
        Some(rep) => format!(
            "{what}: {:.0} req/s{}, p99 {}, server {:.2}us/req{heavy}{}",
            rep.result.req_per_s,
            rep.result
                .target_rate
                .map(|t| format!(" (offered {t:.0})"))
                .unwrap_or_default(),
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
    write_reports(&dir, raw)?;
    Ok(dir)
}

/// Writes README.md, summary.md and the plots of `raw` into `dir`.
pub fn write_reports(dir: &Path, raw: &Raw) -> Result<(), String> {
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))
    };
    write("README.md", readme(raw))?;
    write("summary.md", summary(raw))?;
    for (name, svg) in super::plots::render_all(raw)? {
        write(&name, svg)?;
    }
    Ok(())
}

/// Scenarios of the matrix present in `raw`, in matrix order.
pub fn present(raw: &Raw) -> Vec<&'static super::Scenario> {
    SCENARIOS
        .iter()
        .filter(|sc| raw.scenarios.iter().any(|n| n == sc.name))
        .collect()
}

fn readme(raw: &Raw) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# gvhttpd model comparison\n");
    let _ = writeln!(
        s,
        "See [summary.md](summary.md) for the answer, the tables and the plots.\n"
    );
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| date | {} |", raw.date);
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
        "| per run | {:.1} s measured after {:.1} s warm-up, {} repetitions interleaved{} |",
        raw.duration_s,
        raw.warmup_s,
        raw.repeat,
        if raw.quick { " (--quick)" } else { "" }
    );
    let _ = writeln!(
        s,
        "\nExact command:\n\n```\n{}\n```\n",
        raw.command.join(" ")
    );
    let _ = writeln!(s, "Servers:\n");
    for m in &raw.models {
        let what = match &m.peer {
            Some(c) => format!("peer, `{c}`"),
            None => "model".into(),
        };
        match &m.reason {
            None => {
                let _ = writeln!(s, "- `{}` ({what}): measured", m.name);
            }
            Some(r) => {
                let _ = writeln!(s, "- `{}` ({what}): unavailable: {r}", m.name);
            }
        }
    }
    let _ = writeln!(s, "\nScenarios:\n");
    for sc in present(raw) {
        let _ = writeln!(s, "- `{}`: {}", sc.name, sc.title);
    }
    let _ = writeln!(
        s,
        "\nEach run starts a fresh server pinned to the server CPUs (`gvhttpd serve --model M \
         --workers {}`, 2 workers in `skew`; a peer as its command says); the load generator \
         runs pinned to the load CPUs. The sweep's closed-loop maxima are measured once per \
         server before the repetitions (runs with `repeat: 0`). `raw.json` has every run's \
         full report, including base64 HdrHistogram V2 histograms that merge exactly.",
        raw.server_cpus.len()
    );
    s
}

/// Runs of one (scenario, point, model); `point` None matches single-point scenarios.
pub fn runs_of<'a>(raw: &'a Raw, scenario: &str, point: Option<&str>, model: &str) -> Vec<&'a Run> {
    raw.runs
        .iter()
        .filter(|r| r.scenario == scenario && r.model == model && r.repeat > 0)
        .filter(|r| r.point.as_ref().map(|p| p.label.as_str()) == point)
        .collect()
}

/// The exact merge of the runs' corrected (or uncorrected) histograms, of the
/// report `which` picks (the main one or the skew's heavy one).
pub fn merged_of(runs: &[&Run], heavy: bool, uncorrected: bool) -> Option<Hist> {
    let mut acc = hist::new_hist();
    let mut any = false;
    for run in runs {
        let rep = if heavy { &run.heavy } else { &run.report };
        let Some(rep) = rep else { continue };
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

/// The exact merge for one (scenario, point, model).
pub fn merged(
    raw: &Raw,
    scenario: &str,
    point: Option<&str>,
    model: &str,
    uncorrected: bool,
) -> Option<Hist> {
    merged_of(&runs_of(raw, scenario, point, model), false, uncorrected)
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

/// Spread of `f` over `runs`.
pub fn stat(runs: &[&Run], f: impl Fn(&Run) -> Option<f64>) -> Option<(f64, f64, f64)> {
    spread(runs.iter().filter_map(|r| f(r)).collect())
}

/// Available targets (models, then peers) in the order given.
pub fn measured_models(raw: &Raw) -> Vec<&str> {
    raw.models
        .iter()
        .filter(|m| m.available)
        .map(|m| m.name.as_str())
        .collect()
}

/// Point labels of a scenario in run order.
pub fn point_labels(raw: &Raw, scenario: &str) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = Vec::new();
    for r in raw
        .runs
        .iter()
        .filter(|r| r.scenario == scenario && r.repeat > 0)
    {
        if let Some(p) = &r.point {
            if !v.iter().any(|(l, _)| *l == p.label) {
                v.push((p.label.clone(), p.value));
            }
        }
    }
    v
}

// ---- per-run metrics ----

pub fn rps(r: &Run) -> Option<f64> {
    r.report.as_ref().map(|x| x.result.req_per_s)
}

pub fn cpu_per_req(r: &Run) -> Option<f64> {
    r.report
        .as_ref()
        .and_then(|x| x.checks.server.as_ref())
        .map(|s| s.cpu_us_per_request)
}

pub fn peak_rss_mib(r: &Run) -> Option<f64> {
    r.report
        .as_ref()
        .and_then(|x| x.checks.server.as_ref())
        .map(|s| s.peak_rss_kib as f64 / 1024.0)
}

/// New connections per second.
pub fn conns_per_s(r: &Run) -> Option<f64> {
    r.report
        .as_ref()
        .map(|x| x.result.counts.connections as f64 / x.result.elapsed_s.max(1e-9))
}

/// Server CPU per new connection, µs.
pub fn cpu_per_conn(r: &Run) -> Option<f64> {
    let x = r.report.as_ref()?;
    let s = x.checks.server.as_ref()?;
    (x.result.counts.connections > 0).then(|| s.cpu_s * 1e6 / x.result.counts.connections as f64)
}

/// Response bytes per second, in MB (10^6 bytes).
pub fn mb_per_s(r: &Run) -> Option<f64> {
    r.report
        .as_ref()
        .map(|x| x.result.counts.bytes_read as f64 / 1e6 / x.result.elapsed_s.max(1e-9))
}

/// Server CPU per MB of responses, µs.
pub fn cpu_per_mb(r: &Run) -> Option<f64> {
    let x = r.report.as_ref()?;
    let s = x.checks.server.as_ref()?;
    let mb = x.result.counts.bytes_read as f64 / 1e6;
    (mb > 0.0).then(|| s.cpu_s * 1e6 / mb)
}

pub fn p99(r: &Run) -> Option<f64> {
    r.report.as_ref().map(|x| x.result.latency.p99_us as f64)
}

pub fn heavy_rps(r: &Run) -> Option<f64> {
    r.heavy.as_ref().map(|x| x.result.req_per_s)
}

pub fn idle_bytes(r: &Run) -> Option<f64> {
    r.idle.as_ref().map(|i| i.bytes_per_connection)
}

/// Per repetition: the highest achieved rate of the sweep whose p99 stayed at or
/// under `bound_us` (0 when none did).
pub fn held_rates(raw: &Raw, model: &str, bound_us: u64) -> Vec<f64> {
    (1..=raw.repeat)
        .filter_map(|rep| {
            let runs: Vec<&Report> = raw
                .runs
                .iter()
                .filter(|r| r.scenario == "sweep" && r.model == model && r.repeat == rep)
                .filter_map(|r| r.report.as_ref())
                .collect();
            (!runs.is_empty()).then(|| {
                runs.iter()
                    .filter(|r| r.result.latency.p99_us <= bound_us)
                    .map(|r| r.result.req_per_s)
                    .fold(0.0, f64::max)
            })
        })
        .collect()
}

// ---- formatting ----

fn cell(st: Option<(f64, f64, f64)>, f: impl Fn(f64) -> String) -> String {
    st.map_or("–".into(), |(md, lo, hi)| {
        format!("{} [{}–{}]", f(md), f(lo), f(hi))
    })
}

fn med(st: Option<(f64, f64, f64)>, f: impl Fn(f64) -> String) -> String {
    st.map_or("–".into(), |(md, _, _)| f(md))
}

fn n0(v: f64) -> String {
    format!("{v:.0}")
}

fn n2(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn lat(h: &Option<Hist>, q: f64) -> String {
    h.as_ref()
        .map_or("–".into(), |h| fmt_us(h.value_at_quantile(q) as f64))
}

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

/// Failed, noisy, generator-bound and error flags of a cell's runs.
fn flags(runs: &[&Run]) -> String {
    let mut f = Vec::new();
    let failed = runs.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        f.push(format!("{failed} failed"));
    }
    let reps: Vec<&Report> = runs
        .iter()
        .flat_map(|r| r.report.iter().chain(r.heavy.iter()))
        .collect();
    let noisy = reps.iter().filter(|r| r.checks.noisy).count();
    let bound = reps.iter().filter(|r| r.checks.generator_bound).count();
    let errors: u64 = reps
        .iter()
        .map(|r| r.result.counts.transport_errors() + r.result.counts.status_5xx)
        .sum();
    if noisy > 0 {
        f.push(format!("noisy {noisy}/{}", reps.len()));
    }
    if bound > 0 {
        f.push(format!("gen-bound {bound}/{}", reps.len()));
    }
    if errors > 0 {
        f.push(format!("{errors} errors"));
    }
    f.join(", ")
}

// ---- the answer ----

/// For one scenario (or one point of it): which target is best, and by how much.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// `plaintext`, `busy c1000`, `sweep`, ...
    pub what: String,
    /// What was compared, with its unit and direction.
    pub metric: String,
    pub best: String,
    /// Median, min, max of the best target.
    pub best_stat: (f64, f64, f64),
    /// The runner-up and its median, min, max.
    pub next: Option<(String, (f64, f64, f64))>,
    /// How many times better than the runner-up (>= 1).
    pub ratio: Option<f64>,
    /// The best's and the runner-up's min–max ranges overlap: the difference is
    /// within the spread.
    pub overlap: bool,
}

/// Ranks targets by the median of `values` (each a list over repetitions).
fn answer(
    what: String,
    metric: &str,
    higher_better: bool,
    values: Vec<(&str, Vec<f64>)>,
) -> Option<Answer> {
    let mut ranked: Vec<(&str, (f64, f64, f64))> = values
        .into_iter()
        .filter_map(|(m, v)| spread(v).map(|s| (m, s)))
        .collect();
    ranked.sort_by(|a, b| {
        let o = a.1 .0.total_cmp(&b.1 .0);
        if higher_better {
            o.reverse()
        } else {
            o
        }
    });
    let (best, bs) = *ranked.first()?;
    if higher_better && bs.0 <= 0.0 {
        // Nobody achieved anything (e.g. no sweep point held the bound).
        return Some(Answer {
            what,
            metric: metric.into(),
            best: "none".into(),
            best_stat: bs,
            next: None,
            ratio: None,
            overlap: false,
        });
    }
    let next = ranked.get(1).copied();
    let ratio = next.and_then(|(_, ns)| {
        let r = if higher_better {
            bs.0 / ns.0
        } else {
            ns.0 / bs.0
        };
        r.is_finite().then_some(r)
    });
    let overlap = next.is_some_and(|(_, ns)| bs.1 <= ns.2 && ns.1 <= bs.2);
    Some(Answer {
        what,
        metric: metric.into(),
        best: best.into(),
        best_stat: bs,
        next: next.map(|(n, s)| (n.to_string(), s)),
        ratio,
        overlap,
    })
}

/// The answer for every scenario (and point) in `raw`.
pub fn best_per_scenario(raw: &Raw) -> Vec<Answer> {
    let models = measured_models(raw);
    let mut out = Vec::new();
    let per =
        |sc: &str, point: Option<&str>, f: fn(&Run) -> Option<f64>| -> Vec<(&str, Vec<f64>)> {
            models
                .iter()
                .map(|m| {
                    (
                        *m,
                        runs_of(raw, sc, point, m)
                            .iter()
                            .filter_map(|r| f(r))
                            .collect(),
                    )
                })
                .collect()
        };
    for sc in present(raw) {
        let name = sc.name;
        match sc.kind {
            Kind::Load { .. } if name == "sleep" => {
                out.extend(answer(
                    name.into(),
                    "server CPU µs/req (lower is better)",
                    false,
                    per(name, None, cpu_per_req),
                ));
            }
            Kind::Load {
                keepalive: false, ..
            } => {
                out.extend(answer(
                    name.into(),
                    "new connections/s",
                    true,
                    per(name, None, conns_per_s),
                ));
            }
            Kind::Load { .. } => {
                out.extend(answer(name.into(), "req/s", true, per(name, None, rps)));
            }
            Kind::Idle => {
                out.extend(answer(
                    name.into(),
                    "RSS bytes per idle connection (lower is better)",
                    false,
                    per(name, None, idle_bytes),
                ));
            }
            Kind::Sweep => {
                for bound in LATENCY_BOUNDS_US {
                    let v = models
                        .iter()
                        .map(|m| (*m, held_rates(raw, m, bound)))
                        .collect();
                    out.extend(answer(
                        format!("sweep (p99 ≤ {})", fmt_bound(bound)),
                        "highest achieved req/s with p99 under the bound",
                        true,
                        v,
                    ));
                }
            }
            Kind::Skew => {
                out.extend(answer(
                    format!("{name} (light)"),
                    "p99 µs of the light requests (lower is better)",
                    false,
                    per(name, None, p99),
                ));
                out.extend(answer(
                    format!("{name} (heavy)"),
                    "heavy /work req/s",
                    true,
                    per(name, None, heavy_rps),
                ));
            }
            Kind::Busy => {
                for (label, _) in point_labels(raw, name) {
                    out.extend(answer(
                        format!("{name} {label}"),
                        "req/s",
                        true,
                        per(name, Some(&label), rps),
                    ));
                }
            }
            Kind::Large => {
                for (label, _) in point_labels(raw, name) {
                    out.extend(answer(
                        format!("{name} {label}"),
                        "MB/s",
                        true,
                        per(name, Some(&label), mb_per_s),
                    ));
                }
            }
        }
    }
    out
}

fn fmt_bound(us: u64) -> String {
    if us >= 1000 {
        format!("{} ms", us / 1000)
    } else {
        format!("{us} µs")
    }
}

fn fmt_metric(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn answer_table(raw: &Raw, s: &mut String) {
    let answers = best_per_scenario(raw);
    if answers.is_empty() {
        return;
    }
    let _ = writeln!(s, "## The answer\n");
    let _ = writeln!(
        s,
        "Best per scenario by the median over repetitions, [min–max] in brackets; the ratio \
         is against the runner-up. *within spread*: the two min–max ranges overlap, so the \
         difference is not significant at this number of repetitions ({}).\n",
        raw.repeat
    );
    let _ = writeln!(
        s,
        "| scenario | metric | best | median [min–max] | runner-up | median [min–max] | ratio | significant? |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for a in answers {
        let (md, lo, hi) = a.best_stat;
        let (next, next_cell) = a.next.as_ref().map_or(("–".into(), "–".into()), |(n, st)| {
            (
                format!("`{n}`"),
                format!(
                    "{} [{}–{}]",
                    fmt_metric(st.0),
                    fmt_metric(st.1),
                    fmt_metric(st.2)
                ),
            )
        });
        let sig = match (&a.next, a.overlap) {
            (None, _) if a.best == "none" => "no server reached it",
            (None, _) => "–",
            (Some(_), true) => "no: within spread",
            (Some(_), false) if raw.repeat < 2 => "no spread (1 repetition)",
            (Some(_), false) => "yes",
        };
        let _ = writeln!(
            s,
            "| {} | {} | **{}** | {} [{}–{}] | {next} | {next_cell} | {} | {sig} |",
            a.what,
            a.metric,
            if a.best == "none" {
                "none".to_string()
            } else {
                format!("`{}`", a.best)
            },
            fmt_metric(md),
            fmt_metric(lo),
            fmt_metric(hi),
            a.ratio.map_or("–".into(), |r| format!("{r:.2}×")),
        );
    }
    let _ = writeln!(s);
}

// ---- summary.md ----

/// The whole summary.md.
pub fn summary(raw: &Raw) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Summary ({} on {})\n", raw.env.host, raw.env.cpu_model);
    let _ = writeln!(
        s,
        "{} · {:.1} s × {} interleaved repetitions (+{:.1} s warm-up) · server CPUs {:?}, load \
         CPUs {:?} · commit {}{}\n",
        raw.date,
        raw.duration_s,
        raw.repeat,
        raw.warmup_s,
        raw.server_cpus,
        raw.load_cpus,
        raw.git_revision,
        if raw.quick {
            " · **--quick smoke run: not for conclusions**"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "Medians over the repetitions, [min–max] in brackets. Latency percentiles come from \
         the exact merge of the repetitions' histograms (from the intended send time in open \
         loop). *noisy*: steal or other processes' CPU above 5 % during a run; *gen-bound*: \
         the load generator saturated its core while the server did not.\n"
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
    let peers: Vec<String> = raw
        .models
        .iter()
        .filter_map(|m| m.peer.as_ref().map(|c| format!("`{}` = `{c}`", m.name)))
        .collect();
    if !peers.is_empty() {
        let _ = writeln!(s, "Reference servers (--peer): {}\n", peers.join(", "));
    }
    answer_table(raw, &mut s);
    let models = measured_models(raw);
    basic_tables(raw, &models, &mut s);
    for sc in present(raw) {
        match sc.kind {
            Kind::Sweep => sweep_table(raw, &models, &mut s),
            Kind::Load {
                keepalive: false, ..
            } => churn_table(raw, sc.name, &models, &mut s),
            Kind::Skew => skew_table(raw, &models, &mut s),
            Kind::Busy => busy_table(raw, &models, &mut s),
            Kind::Large => large_table(raw, &models, &mut s),
            _ => {}
        }
    }
    let _ = writeln!(s, "\n## Plots\n");
    for (name, what) in super::plots::names(raw) {
        let _ = writeln!(s, "![{what}]({name})\n");
    }
    s
}

/// Keep-alive closed/open-loop scenarios and idle memory.
fn basic_tables(raw: &Raw, models: &[&str], s: &mut String) {
    let basic: Vec<_> = present(raw)
        .into_iter()
        .filter(|sc| {
            matches!(
                sc.kind,
                Kind::Load {
                    keepalive: true,
                    ..
                }
            ) || sc.kind == Kind::Idle
        })
        .collect();
    if basic.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Hello-world shapes\n");
    let _ = writeln!(
        s,
        "| scenario | server | req/s median [min–max] | p50 | p99 | p99.9 | server CPU µs/req | \
         peak RSS | RSS/connection | flags |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for sc in &basic {
        for m in models {
            let runs = runs_of(raw, sc.name, None, m);
            if sc.kind == Kind::Idle {
                let per = cell(stat(&runs, idle_bytes), kib);
                let _ = writeln!(
                    s,
                    "| {} | {m} | | | | | | | {per} | {} |",
                    sc.name,
                    flags(&runs)
                );
                continue;
            }
            let h = merged(raw, sc.name, None, m, false);
            let _ = writeln!(
                s,
                "| {} | {m} | {} | {} | {} | {} | {} | {} | | {} |",
                sc.name,
                cell(stat(&runs, rps), n0),
                lat(&h, 0.5),
                lat(&h, 0.99),
                lat(&h, 0.999),
                med(stat(&runs, cpu_per_req), n2),
                med(stat(&runs, peak_rss_mib), |v| format!("{v:.1} MiB")),
                flags(&runs)
            );
        }
    }
    for sc in &basic {
        let Kind::Load {
            rate: Some(rate), ..
        } = sc.kind
        else {
            continue;
        };
        let _ = writeln!(s, "\n`{}` is open loop at {rate:.0} req/s:\n", sc.name);
        for m in models {
            let runs = runs_of(raw, sc.name, None, m);
            let (sends, late) = runs
                .iter()
                .filter_map(|r| r.report.as_ref())
                .fold((0, 0), |a, r| {
                    (a.0 + r.result.sends, a.1 + r.result.late_sends)
                });
            let c = merged_of(&runs, false, false);
            let u = merged_of(&runs, false, true);
            let _ = writeln!(
                s,
                "- `{m}`: p99 {} from the intended send time, {} from the actual send time; \
                 {late} of {sends} sends late",
                lat(&c, 0.99),
                lat(&u, 0.99),
            );
        }
    }
    let _ = writeln!(s);
}

fn sweep_table(raw: &Raw, models: &[&str], s: &mut String) {
    let _ = writeln!(s, "## Load–latency curve (`sweep`)\n");
    let _ = writeln!(
        s,
        "Each server's closed-loop maximum at -c{} is measured first; the open-loop runs \
         offer {} of it. Latency from the intended send time (coordinated omission \
         corrected).\n",
        super::SWEEP_CONNECTIONS,
        raw.sweep_fractions()
            .iter()
            .map(|f| format!("{:.0} %", f * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "Highest achieved rate held with p99 under a bound (median [min–max] over repetitions):\n"
    );
    let _ = write!(s, "| server | closed-loop max req/s |");
    for b in LATENCY_BOUNDS_US {
        let _ = write!(s, " p99 ≤ {} |", fmt_bound(b));
    }
    let _ = writeln!(s, "\n|---|---|{}", "---|".repeat(LATENCY_BOUNDS_US.len()));
    for m in models {
        let cal: Vec<&Run> = raw
            .runs
            .iter()
            .filter(|r| r.scenario == "sweep" && r.model == *m && r.repeat == 0)
            .collect();
        let _ = write!(s, "| {m} | {} |", med(stat(&cal, rps), n0));
        for b in LATENCY_BOUNDS_US {
            let _ = write!(s, " {} |", cell(spread(held_rates(raw, m, b)), n0));
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "\n| server | share | offered req/s | achieved req/s median [min–max] | p50 | p99 | p99.9 | late sends | flags |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for m in models {
        for (label, _) in point_labels(raw, "sweep") {
            let runs = runs_of(raw, "sweep", Some(&label), m);
            let h = merged_of(&runs, false, false);
            let offered = stat(&runs, |r| r.report.as_ref().and_then(|x| x.config.rate));
            let (sends, late) = runs
                .iter()
                .filter_map(|r| r.report.as_ref())
                .fold((0, 0), |a, r| {
                    (a.0 + r.result.sends, a.1 + r.result.late_sends)
                });
            let late = if sends > 0 {
                format!("{:.1} %", late as f64 * 100.0 / sends as f64)
            } else {
                "–".into()
            };
            let _ = writeln!(
                s,
                "| {m} | {label} | {} | {} | {} | {} | {} | {late} | {} |",
                med(offered, n0),
                cell(stat(&runs, rps), n0),
                lat(&h, 0.5),
                lat(&h, 0.99),
                lat(&h, 0.999),
                flags(&runs)
            );
        }
    }
    let _ = writeln!(s);
}

fn churn_table(raw: &Raw, name: &str, models: &[&str], s: &mut String) {
    let _ = writeln!(s, "## Connection churn (`{name}`)\n");
    let _ = writeln!(s, "{}.\n", scenario(name).map_or("", |sc| sc.title));
    let _ = writeln!(
        s,
        "| server | new connections/s median [min–max] | server CPU µs/connection | p50 | p99 | flags |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for m in models {
        let runs = runs_of(raw, name, None, m);
        let h = merged_of(&runs, false, false);
        let _ = writeln!(
            s,
            "| {m} | {} | {} | {} | {} | {} |",
            cell(stat(&runs, conns_per_s), n0),
            med(stat(&runs, cpu_per_conn), n2),
            lat(&h, 0.5),
            lat(&h, 0.99),
            flags(&runs)
        );
    }
    let _ = writeln!(s);
}

fn skew_table(raw: &Raw, models: &[&str], s: &mut String) {
    let _ = writeln!(s, "## CPU skew (`skew`)\n");
    let _ = writeln!(s, "{}.\n", scenario("skew").map_or("", |sc| sc.title));
    let _ = writeln!(
        s,
        "| server | light p50 | light p99 | light p99.9 | light p99 per run median [min–max] | heavy req/s median [min–max] | heavy p99 | flags |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for m in models {
        let runs = runs_of(raw, "skew", None, m);
        let light = merged_of(&runs, false, false);
        let heavy = merged_of(&runs, true, false);
        let _ = writeln!(
            s,
            "| {m} | {} | {} | {} | {} | {} | {} | {} |",
            lat(&light, 0.5),
            lat(&light, 0.99),
            lat(&light, 0.999),
            cell(stat(&runs, p99), fmt_us),
            cell(stat(&runs, heavy_rps), |v| format!("{v:.1}")),
            lat(&heavy, 0.99),
            flags(&runs)
        );
    }
    let _ = writeln!(s);
}

fn busy_table(raw: &Raw, models: &[&str], s: &mut String) {
    let _ = writeln!(s, "## Many busy connections (`busy`)\n");
    let _ = writeln!(
        s,
        "| server | connections | req/s median [min–max] | p99 | server CPU µs/req | peak RSS | flags |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for m in models {
        for (label, c) in point_labels(raw, "busy") {
            let runs = runs_of(raw, "busy", Some(&label), m);
            let h = merged_of(&runs, false, false);
            let _ = writeln!(
                s,
                "| {m} | {c:.0} | {} | {} | {} | {} | {} |",
                cell(stat(&runs, rps), n0),
                lat(&h, 0.99),
                med(stat(&runs, cpu_per_req), n2),
                med(stat(&runs, peak_rss_mib), |v| format!("{v:.1} MiB")),
                flags(&runs)
            );
        }
    }
    let _ = writeln!(s);
}

fn large_table(raw: &Raw, models: &[&str], s: &mut String) {
    let _ = writeln!(s, "## Large responses (`large`)\n");
    let _ = writeln!(
        s,
        "| server | file | MB/s median [min–max] | req/s | p99 | server CPU µs/MB | flags |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for m in models {
        for (label, _) in point_labels(raw, "large") {
            let runs = runs_of(raw, "large", Some(&label), m);
            let h = merged_of(&runs, false, false);
            let _ = writeln!(
                s,
                "| {m} | {label} | {} | {} | {} | {} | {} |",
                cell(stat(&runs, mb_per_s), n0),
                med(stat(&runs, rps), n0),
                lat(&h, 0.99),
                med(stat(&runs, cpu_per_mb), n0),
                flags(&runs)
            );
        }
    }
    let _ = writeln!(s);
}
