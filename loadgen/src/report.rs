//! What a run reports: the JSON document (`--json`), the human summary, and the
//! live progress line.
//!
//! JSON schema `gvhttpd-bench/1` (every field is written; readers may rely on it):
//! `schema`, `tool{name,version}`, `command[]`, `env{host,kernel,cpu_model,cpus}`,
//! `config{...}`, `result{elapsed_s, requests, successes, req_per_s, ...,
//! counts{...}, latency, latency_uncorrected?, histogram, histogram_uncorrected?}`,
//! `timeline[]`, `checks{...}`. Histograms are base64 HdrHistogram V2 (µs).
//! Added later, and absent from older reports (readers get their defaults):
//! `config.server` (how the server's CPU was attributed), `result.status_codes`
//! (responses per status code, keys are the codes) and `result.interrupted`.

use crate::checks::Checks;
use crate::engine::{Counts, Outcome, Plan, Progress, Second};
use crate::hist::{self, fmt_us, LatencySummary};
use crate::sys;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

/// Schema name written into every report.
pub const SCHEMA: &str = "gvhttpd-bench/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Env {
    pub host: String,
    pub kernel: String,
    pub cpu_model: String,
    pub cpus: usize,
}

impl Env {
    /// This machine.
    pub fn here() -> Env {
        Env {
            host: sys::hostname(),
            kernel: sys::kernel(),
            cpu_model: sys::cpu_model(),
            cpus: sys::cpu_count(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub url: String,
    /// `--also`: further paths every connection requests in turn after the URL's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
    pub method: String,
    pub connections: usize,
    pub threads: usize,
    pub cpus: Option<Vec<usize>>,
    pub pipeline: usize,
    pub keepalive: bool,
    /// `--recv-buffer`: each connection's receive buffer as the kernel grants
    /// it (twice the size asked), bytes; `None`: autotuned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv_buffer: Option<u64>,
    pub duration_s: Option<f64>,
    pub requests: Option<u64>,
    pub warmup_s: f64,
    pub rate: Option<f64>,
    pub timeout_s: f64,
    /// Whose CPU is reported as the server's; `None` in reports from before.
    #[serde(default)]
    pub server: Option<ServerSource>,
}

/// How the server process whose CPU a run reports was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ServerSource {
    /// `--server-pid`.
    Given { pid: u32 },
    /// The one process listening on the (loopback) target's port.
    Detected { pid: u32, name: String },
    /// A loopback target whose server could not be identified: its CPU is in
    /// "other processes", so that share says nothing about noise.
    NotAttributed { reason: String },
    /// The target is not on this machine.
    Remote,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Measured period (warm-up excluded).
    pub elapsed_s: f64,
    /// Responses received (any status).
    pub requests: u64,
    /// Responses with status < 400 (the ones in the histograms).
    pub successes: u64,
    /// Responses per second over the measured period.
    pub req_per_s: f64,
    /// Open loop: the requested rate.
    pub target_rate: Option<f64>,
    /// Requests sent per second.
    pub send_rate: f64,
    pub sends: u64,
    /// Sends that left more than 2 ms after their intended time.
    pub late_sends: u64,
    pub counts: Counts,
    /// Responses per status code (only codes that occurred).
    #[serde(default)]
    pub status_codes: BTreeMap<u16, u64>,
    /// Ctrl-C ended the run before its duration or request count.
    #[serde(default)]
    pub interrupted: bool,
    /// From the intended send time (coordinated-omission corrected).
    pub latency: LatencySummary,
    /// Open loop: from the actual send time.
    pub latency_uncorrected: Option<LatencySummary>,
    pub histogram: String,
    pub histogram_uncorrected: Option<String>,
}

/// The whole `--json` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub tool: Tool,
    pub command: Vec<String>,
    pub env: Env,
    pub config: RunConfig,
    /// Wall-clock start of the measured period, seconds since the Unix epoch
    /// (`bench merge` aligns runs from several load machines by it).
    #[serde(default)]
    pub started_unix_s: Option<f64>,
    pub result: RunResult,
    pub timeline: Vec<Second>,
    pub checks: Checks,
    /// Warnings printed with the summary.
    pub warnings: Vec<String>,
}

impl Report {
    /// Builds the report of a finished run.
    pub fn new(config: RunConfig, plan: &Plan, out: &Outcome) -> Report {
        let secs = out.elapsed.as_secs_f64().max(1e-9);
        let c = &out.counts;
        let requests = c.successes() + c.status_4xx + c.status_5xx;
        let lat = &out.latencies;
        let mut r = Report {
            schema: SCHEMA.into(),
            tool: Tool {
                name: "gvhttpd bench".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            command: std::env::args().collect(),
            env: Env::here(),
            config,
            started_unix_s: Some(out.measure_start_unix_s),
            result: RunResult {
                elapsed_s: out.elapsed.as_secs_f64(),
                requests,
                successes: c.successes(),
                req_per_s: requests as f64 / secs,
                target_rate: plan.rate,
                send_rate: lat.sends as f64 / secs,
                sends: lat.sends,
                late_sends: lat.late,
                counts: *c,
                status_codes: out.status_codes.clone(),
                interrupted: out.interrupted,
                latency: LatencySummary::of(&lat.corrected),
                latency_uncorrected: lat.uncorrected.as_ref().map(LatencySummary::of),
                histogram: hist::encode(&lat.corrected),
                histogram_uncorrected: lat.uncorrected.as_ref().map(hist::encode),
            },
            timeline: out.timeline.clone(),
            checks: out.checks.clone(),
            warnings: Vec::new(),
        };
        if let Some(rate) = plan.rate {
            let saturated = r
                .checks
                .server
                .as_ref()
                .is_some_and(|s| s.cpu_share > crate::checks::BOUND_SHARE);
            r.checks.generator_bound = crate::checks::open_loop_bound(
                r.result.late_sends,
                r.result.sends,
                r.result.send_rate,
                rate,
                saturated,
            );
        }
        if matches!(r.config.server, Some(ServerSource::NotAttributed { .. })) {
            // The server's own CPU is inside "other processes": only steal can
            // tell that the machine was noisy.
            r.checks.noisy = r.checks.steal_share > crate::checks::NOISY_SHARE;
        }
        r.warnings = warnings(&r, plan);
        r
    }

    /// Serialises to pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// Parses a report written by [`Report::to_json`].
    pub fn from_json(s: &str) -> Result<Report, String> {
        let r: Report = serde_json::from_str(s).map_err(|e| format!("not a bench report: {e}"))?;
        if r.schema != SCHEMA {
            return Err(format!("unknown report schema '{}'", r.schema));
        }
        Ok(r)
    }
}

fn warnings(r: &Report, plan: &Plan) -> Vec<String> {
    let mut w = Vec::new();
    let res = &r.result;
    if let Some(rate) = plan.rate {
        let late_share = res.late_sends as f64 / (res.sends.max(1)) as f64;
        let mean_s = res
            .latency_uncorrected
            .as_ref()
            .map_or(0.0, |l| l.mean_us / 1e6);
        let needed = (rate * mean_s * plan.pipeline.max(1) as f64).ceil() as usize;
        if late_share > 0.01 || res.send_rate < rate * 0.95 {
            w.push(format!(
                "{} of {} sends were late and the send rate was {:.0}/s for a target of {rate:.0}/s: \
                 -c {} is too small or the server is saturated (by Little's law about {} \
                 connections are needed at the observed mean latency)",
                res.late_sends, res.sends, res.send_rate, plan.connections, needed.max(1)
            ));
        }
    }
    if r.checks.generator_bound && plan.rate.is_some() {
        w.push(format!(
            "generator-bound: the generator fell behind its schedule ({} of {} sends late, \
             {:.0} sent/s) while the server did not saturate; latencies include its lag",
            res.late_sends, res.sends, res.send_rate
        ));
    } else if let (true, Some(load)) = (
        r.checks.generator_bound && r.checks.generator_cpu_share <= crate::checks::BOUND_SHARE,
        r.checks.load_cpu_share,
    ) {
        w.push(format!(
            "generator-bound: the load CPUs were {:.0}% busy (the generator {:.0}% of its {} \
             core(s), the rest the backend beside it) while the server did not saturate; the \
             numbers measure the load CPUs",
            load * 100.0,
            r.checks.generator_cpu_share * 100.0,
            r.checks.generator_cores
        ));
    } else if r.checks.generator_bound {
        w.push(format!(
            "generator-bound: the generator used {:.0}% of its {} core(s) while the server did not \
             saturate; the numbers measure the load generator",
            r.checks.generator_cpu_share * 100.0,
            r.checks.generator_cores
        ));
    }
    if r.checks.noisy {
        w.push(format!(
            "noisy: steal {:.1}%, other processes {:.1}% of machine CPU during the run",
            r.checks.steal_share * 100.0,
            r.checks.foreign_share * 100.0
        ));
    }
    w
}

/// `1 thread`, `2 threads`.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The header, known before the run starts (printed then on a terminal):
/// what will run, against what, how.
pub fn header(c: &RunConfig) -> String {
    let mut s = String::new();
    let what = match (c.duration_s, c.requests) {
        (Some(d), Some(n)) => format!("{n} requests (at most {})", fmt_secs(d)),
        (Some(d), None) => format!("{} test", fmt_secs(d)),
        (None, Some(n)) => format!("{n} requests"),
        (None, None) => "test".into(),
    };
    let mode = match c.rate {
        Some(rate) => format!("open loop at {rate:.0} req/s"),
        None => "closed loop".into(),
    };
    let warmup = if c.warmup_s > 0.0 {
        format!(", warm-up {} excluded", fmt_secs(c.warmup_s))
    } else {
        String::new()
    };
    let _ = writeln!(s, "Running {what} @ {} ({mode}{warmup})", c.url);
    let _ = writeln!(
        s,
        "  {} and {}{}{}{}",
        plural(c.threads, "thread", "threads"),
        plural(c.connections, "connection", "connections"),
        if c.pipeline > 1 {
            format!(", pipeline {}", c.pipeline)
        } else {
            String::new()
        },
        if c.keepalive { "" } else { ", no keep-alive" },
        match c.recv_buffer {
            Some(b) => format!(", receive buffer {} KiB each (fixed)", b / 1024),
            None => String::new(),
        }
    );
    s
}

/// `10s`, `1.5s`, `250ms`.
fn fmt_secs(secs: f64) -> String {
    if secs < 1.0 {
        format!("{}ms", (secs * 1e3).round())
    } else if secs.fract() == 0.0 {
        format!("{secs:.0}s")
    } else {
        format!("{secs:.1}s")
    }
}

/// The final human summary (wrk-like, with more percentiles): [`header`] then
/// [`results`].
pub fn summary(r: &Report) -> String {
    header(&r.config) + &results(r)
}

/// Everything the summary says after its header.
pub fn results(r: &Report) -> String {
    let mut s = String::new();
    let res = &r.result;
    if res.interrupted {
        let _ = writeln!(
            s,
            "  INTERRUPTED by Ctrl-C after {:.2}s: the results cover only the part that ran",
            res.elapsed_s
        );
    }
    let corrected = if res.latency_uncorrected.is_some() {
        " (from intended send time)"
    } else {
        ""
    };
    let l = &res.latency;
    if l.count == 0 {
        let why = if res.requests == 0 {
            "no responses arrived".to_string()
        } else {
            format!(
                "none of the {} responses had a status below 400, and only those are timed",
                res.requests
            )
        };
        let _ = writeln!(s, "  Latency: not measured: {why}");
    } else {
        let _ = writeln!(
            s,
            "  Latency{corrected}: mean {}, stdev {} ({} responses with status < 400)",
            fmt_us(l.mean_us),
            fmt_us(l.stdev_us),
            l.count
        );
        let _ = writeln!(s, "  Latency Distribution");
        for (i, (label, v)) in l.rows().iter().enumerate() {
            let u = res
                .latency_uncorrected
                .as_ref()
                .map(|u| format!("   (actual send: {})", fmt_us(u.rows()[i].1 as f64)))
                .unwrap_or_default();
            let _ = writeln!(s, "    {label:>7} {:>10}{u}", fmt_us(*v as f64));
        }
    }
    let _ = writeln!(
        s,
        "  {} requests in {:.2}s, {:.2}MB read",
        res.requests,
        res.elapsed_s,
        res.counts.bytes_read as f64 / 1e6
    );
    if !res.status_codes.is_empty() {
        let codes: Vec<String> = res
            .status_codes
            .iter()
            .map(|(code, n)| format!("[{code}] {n}"))
            .collect();
        let _ = writeln!(s, "  Status codes: {}", codes.join(", "));
    }
    let k = &res.counts;
    if k.transport_errors() > 0 {
        let _ = writeln!(
            s,
            "  Socket errors: connect refused {}, connect timeout {}, request timeout {}, \
             reset/EOF {}, write {}, parse {}",
            k.connect_refused,
            k.connect_timeout,
            k.request_timeout,
            k.reset_eof,
            k.write_error,
            k.parse_error
        );
    }
    if k.status_4xx + k.status_5xx > 0 {
        let _ = writeln!(
            s,
            "  Non-2xx or 3xx responses: {} (4xx {}, 5xx {}) - not in the latency histogram",
            k.status_4xx + k.status_5xx,
            k.status_4xx,
            k.status_5xx
        );
    }
    let _ = writeln!(s, "Requests/sec: {:>12.2}", res.req_per_s);
    if !r.config.keepalive {
        let _ = writeln!(
            s,
            "Connections/sec: {:>9.2}   ({} connections opened)",
            k.connections as f64 / res.elapsed_s.max(1e-9),
            k.connections
        );
    }
    if let Some(t) = res.target_rate {
        let _ = writeln!(
            s,
            "Target rate:  {t:>12.2}   sent {:.2}/s, {} of {} sends late",
            res.send_rate, res.late_sends, res.sends
        );
    }
    let ch = &r.checks;
    let _ = writeln!(
        s,
        "Generator CPU: {:.2}s ({:.0}% of {}, {:.2}us/request)",
        ch.generator_cpu_s,
        ch.generator_cpu_share * 100.0,
        plural(ch.generator_cores, "core", "cores"),
        ch.generator_cpu_us_per_request
    );
    if let Some(ServerSource::Detected { pid, name }) = &r.config.server {
        let _ = writeln!(
            s,
            "Server:        pid {pid} ({name}), the process listening on the target's port"
        );
    }
    if let Some(sv) = &ch.server {
        let _ = writeln!(
            s,
            "Server CPU:    {:.2}s ({:.0}% of {}, {:.2}us/request; from {}), peak RSS {} KiB",
            sv.cpu_s,
            sv.cpu_share * 100.0,
            plural(sv.cores, "core", "cores"),
            sv.cpu_us_per_request,
            sv.cpu_source(),
            sv.peak_rss_kib
        );
    }
    let unattributed = match &r.config.server {
        Some(ServerSource::NotAttributed { reason }) => {
            let _ = writeln!(
                s,
                "Server CPU:    not attributed ({reason}; pass --server-pid PID); it is part of \
                 \"other processes\" below"
            );
            true
        }
        _ => false,
    };
    let _ = writeln!(
        s,
        "Machine: steal {:.1}%, other processes {:.1}%{}",
        ch.steal_share * 100.0,
        ch.foreign_share * 100.0,
        if unattributed {
            " (server included)"
        } else {
            ""
        }
    );
    for w in &r.warnings {
        let _ = writeln!(s, "WARNING: {w}");
    }
    s
}

/// Prints one progress line for a finished second: its rate, errors and p99, and
/// the p99 of the whole measured period so far.
pub fn progress_line(mode: Progress, s: &Second, p99_so_far: u64) {
    if mode == Progress::Off {
        return;
    }
    let line = format!(
        "[{:>5.1}s] {:>10.0} req/s  errors {:>6}  p99 {:>9} (so far {:>9})",
        s.t_s,
        s.requests as f64 / s.dur_s.max(1e-9),
        s.errors,
        fmt_us(s.p99_us as f64),
        fmt_us(p99_so_far as f64)
    );
    let mut err = std::io::stderr().lock();
    let _ = match mode {
        Progress::Line => write!(err, "\r{line}"),
        _ => writeln!(err, "{line}"),
    };
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RunConfig {
        RunConfig {
            url: "http://127.0.0.1:8080/".into(),
            also: Vec::new(),
            method: "GET".into(),
            connections: 1,
            threads: 1,
            cpus: None,
            pipeline: 1,
            keepalive: true,
            recv_buffer: None,
            duration_s: None,
            requests: Some(1000),
            warmup_s: 0.0,
            rate: None,
            timeout_s: 10.0,
            server: None,
        }
    }

    #[test]
    fn header_says_what_will_run_before_it_runs() {
        let mut c = config();
        assert_eq!(
            header(&c),
            "Running 1000 requests @ http://127.0.0.1:8080/ (closed loop)\n  1 thread and 1 connection\n"
        );
        c.duration_s = Some(10.0);
        c.requests = None;
        c.threads = 2;
        c.connections = 64;
        c.pipeline = 16;
        c.warmup_s = 0.5;
        c.rate = Some(1000.0);
        assert_eq!(
            header(&c),
            "Running 10s test @ http://127.0.0.1:8080/ (open loop at 1000 req/s, warm-up 500ms \
             excluded)\n  2 threads and 64 connections, pipeline 16\n"
        );
        c.requests = Some(5);
        c.duration_s = Some(1.5);
        assert!(header(&c).starts_with("Running 5 requests (at most 1.5s) @ "));
    }

    #[test]
    fn reports_from_before_the_new_fields_still_parse() {
        let c: RunConfig = serde_json::from_str(
            r#"{"url":"u","method":"GET","connections":1,"threads":1,"cpus":null,"pipeline":1,
            "keepalive":true,"duration_s":1.0,"requests":null,"warmup_s":0.0,"rate":null,
            "timeout_s":1.0}"#,
        )
        .unwrap();
        assert_eq!(c.server, None);
        let s = serde_json::to_string(&ServerSource::Detected {
            pid: 7,
            name: "gvhttpd".into(),
        })
        .unwrap();
        assert_eq!(s, r#"{"kind":"detected","pid":7,"name":"gvhttpd"}"#);
    }
}
