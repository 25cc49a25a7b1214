//! The results folder: README.md, raw.json, summary.md and the SVG plots; and the
//! numbers behind them (medians, spreads, exact histogram merges, the answer).

use super::{scenario, Kind, Raw, Run, COST_POINTS, LATENCY_BOUNDS_US, SCENARIOS};
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
    if let Some(d) = &r.downloads {
        return format!(
            "{what}: {} downloads, {} in flight, {:.0} bytes RSS each, {} intact, {} errors{} ({:.1} s)",
            d.downloads,
            d.in_flight,
            d.bytes_per_download,
            d.intact,
            d.errors,
            d.first_error
                .as_ref()
                .map(|e| format!(", first: {e}"))
                .unwrap_or_default(),
            d.seconds
        );
    }
    let heavy = r
        .heavy
        .as_ref()
        .map(|h| format!(", heavy {:.0} req/s", h.result.req_per_s))
        .unwrap_or_default();
    let heavy = match r.report.as_ref().and_then(|x| x.checks.backend.as_ref()) {
        Some(b) => format!("{heavy}, backend {:.2}us/req", b.cpu_us_per_request),
        None => heavy,
    };
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

/// A new folder `<parent>/<date>-<host>` for this run, or `...-2`, `-3`, ...
/// when that exists: a run never writes into another run's folder (a second run
/// the same day overwrote the first's raw.json and left its stale plots).
pub fn new_run_dir(parent: &Path, date: &str, host: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let base = format!("{date}-{host}");
    for n in 1..=1000u32 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = parent.join(name);
        // create_dir fails on an existing folder: the check and the claim are one step.
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
    Err(format!(
        "{}: 1000 folders named {base}-N exist already",
        parent.display()
    ))
}

/// A scenario's description as this run ran it (the matrix's title names the
/// full-size counts; `--quick` and `--idle-conns` run fewer).
pub fn scenario_title(raw: &Raw, sc: &super::Scenario) -> String {
    match sc.kind {
        Kind::Busy => {
            let counts: Vec<String> = point_labels(raw, sc.name)
                .iter()
                .map(|(_, c)| format!("{c:.0}"))
                .collect();
            format!(
                "many busy connections: GET / closed loop at {} connections",
                counts.join(", ")
            )
        }
        Kind::Idle => {
            let n = raw
                .runs
                .iter()
                .filter(|r| r.scenario == sc.name)
                .find_map(|r| r.idle.as_ref().map(|i| i.connections));
            match n {
                Some(n) => {
                    format!("{n} idle connections, each after one request (RSS per connection)")
                }
                None => sc.title.to_string(),
            }
        }
        Kind::Downloads => {
            let n = raw
                .runs
                .iter()
                .filter(|r| r.scenario == sc.name)
                .find_map(|r| r.downloads.as_ref().map(|d| d.downloads));
            match n {
                Some(n) => format!(
                    "concurrent downloads: {n} connections each GET the 1 MiB file, stalled after \
                     the head until all are open (server RSS per download in flight), then read \
                     to the end and checked byte for byte"
                ),
                None => sc.title.to_string(),
            }
        }
        Kind::Cost => match raw.cost_rate {
            Some(r) => {
                format!("cost at equal load: GET / at -c64, every server at {r:.0} req/s open loop")
            }
            None => sc.title.to_string(),
        },
        _ => sc.title.to_string(),
    }
}

/// Writes everything into a new folder; returns it.
pub fn write_all(parent: &Path, raw: &Raw) -> Result<PathBuf, String> {
    let dir = new_run_dir(parent, &utc_date(), &raw.env.host)?;
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
    let plots = super::plots::render_all(raw)?;
    // A rewrite (--from-raw) leaves no plot an earlier version drew and this
    // one does not: every .svg beside raw.json is then one of these.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".svg") && !plots.iter().any(|(n, _)| *n == name) {
                std::fs::remove_file(e.path())
                    .map_err(|err| format!("cannot remove the stale {name}: {err}"))?;
            }
        }
    }
    for (name, svg) in plots {
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
    let _ = writeln!(s, "| serve flags (`--serve-arg`) | {} |", serve_flags(raw));
    if raw.scenarios.iter().any(|n| n == "skew") {
        let _ = writeln!(s, "| skew heavy requests | `GET {}` |", raw.skew_path());
    }
    let _ = writeln!(
        s,
        "| per run | {:.1} s measured after {:.1} s warm-up, up to {} rounds interleaved (see summary.md, Rounds){} |",
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
        let _ = writeln!(s, "- `{}`: {}", sc.name, scenario_title(raw, sc));
    }
    let _ = writeln!(
        s,
        "\nEach run starts a fresh server pinned to the server CPUs (`gvhttpd serve --model M \
         --workers {}`, 2 workers in `skew`, plus the serve flags above; a peer as its command \
         says); the load generator \
         runs pinned to the load CPUs. The sweep's closed-loop maxima are measured once per \
         server before the repetitions (runs with `repeat: 0`). `raw.json` has every run's \
         full report, including base64 HdrHistogram V2 histograms that merge exactly.",
        raw.server_cpus.len()
    );
    s
}

/// The models' extra `serve` flags as Markdown, or `none`.
pub fn serve_flags(raw: &Raw) -> String {
    if raw.serve_args.is_empty() {
        return "none".into();
    }
    format!("`{}`", raw.serve_args.join(" "))
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

/// `downloads`: RSS growth per download in flight, bytes.
pub fn download_bytes(r: &Run) -> Option<f64> {
    r.downloads
        .as_ref()
        .filter(|d| d.in_flight > 0)
        .map(|d| d.bytes_per_download)
}

/// `proxy`: the backend's CPU per request, µs.
pub fn backend_cpu_per_req(r: &Run) -> Option<f64> {
    r.report
        .as_ref()
        .and_then(|x| x.checks.backend.as_ref())
        .map(|s| s.cpu_us_per_request)
}

/// Per round: the highest achieved rate of the sweep whose p99 stayed at or
/// under `bound_us` (0 when none did).
pub fn held_rates(raw: &Raw, model: &str, bound_us: u64) -> std::collections::BTreeMap<u32, f64> {
    let mut out = std::collections::BTreeMap::new();
    for r in raw
        .runs
        .iter()
        .filter(|r| r.scenario == "sweep" && r.model == model && r.repeat > 0)
    {
        let Some(rep) = &r.report else { continue };
        let held = out.entry(r.repeat).or_insert(0.0f64);
        if rep.result.latency.p99_us <= bound_us {
            *held = held.max(rep.result.req_per_s);
        }
    }
    out
}

/// Per round: the highest offered rate of the `bound` bisection that held
/// `bound_us` (0 when no probe did).
pub fn bound_rates(raw: &Raw, model: &str, bound_us: u64) -> std::collections::BTreeMap<u32, f64> {
    let prefix = super::bound_prefix(bound_us);
    let mut out = std::collections::BTreeMap::new();
    for r in raw.runs.iter().filter(|r| {
        r.scenario == "bound"
            && r.model == model
            && r.repeat > 0
            && r.point
                .as_ref()
                .is_some_and(|p| p.label.starts_with(&prefix))
    }) {
        let held = out.entry(r.repeat).or_insert(0.0f64);
        if super::bound_held(r, bound_us) {
            *held = held.max(r.point.as_ref().map_or(0.0, |p| p.value));
        }
    }
    out
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

mod answer;
mod answer_table;
mod costs;
mod summary;
pub use answer::{best_per_scenario, Answer, CPU_PER_MB_SUFFIX};
pub use answer_table::verdict_text;
pub use costs::{cost_rows, CostRow};
pub use summary::summary;
