//! The load engine: one event loop per load thread, results merged at the end.
//!
//! ## Why epoll (through mio) and not io_uring
//! Chosen by measurement against the bar the project set (at least wrk's req/s at
//! no more CPU per request) and against io_uring. With epoll each request costs
//! the generator one `write` and one `read` plus a share of an `epoll_wait` that
//! returns many ready connections at once. Two details make that cheap:
//! - a short read ends the read loop without the extra `EAGAIN` call
//!   (edge-triggered readiness is re-armed by the next arrival), and interest is
//!   registered once per socket (wrk adds and removes write interest per request);
//! - connections are refilled after the whole batch of events, so the server sees
//!   requests in bursts, as it would from wrk.
//!
//! A throwaway closed-loop io_uring client (one linked send+recv pair per request,
//! one `io_uring_enter` per batch, the same response parser; not kept) used more
//! client CPU per request than this engine, probably because a recv armed on a
//! socket with no data yet goes through io_uring's internal poll-and-retry path,
//! which costs more than the readiness loop saves.
//!
//! No figures are quoted here: module docs go stale, and those early runs kept no
//! raw output. `scripts/vs-wrk.sh` measures the comparison with wrk; a figure is
//! quoted (in the README) only with its `results/<date>-<host>/` folder holding
//! the raw output and the exact command.
//!
//! So the engine uses epoll. That also keeps `unsafe` buffer-lifetime rules out of
//! a tool whose numbers must be trusted, and lets it run where io_uring is
//! disabled (seccomp, `kernel.io_uring_disabled`).
//!
//! ## Shape
//! - [`run`] validates nothing (that is `cli`'s job): it starts `threads` workers,
//!   each owning `connections / threads` connections, a `mio::Poll`, its own
//!   histograms and counters. Nothing is shared while the load runs except a
//!   channel that carries one message per thread per second (the timeline).
//! - Requests are serialised once; a worker writes a prefix of a buffer holding
//!   `pipeline` copies, so sending never allocates.
//! - Closed loop keeps `pipeline` requests in flight per connection; open loop
//!   sends on each connection's [`Schedule`](crate::schedule::Schedule), woken by a
//!   timerfd: `epoll_wait`'s millisecond timeout made sends up to 1 ms late, and
//!   latency from the intended send time counted that (at 2,000 req/s against
//!   tokio on the 2-core machine, p50 654 µs from the intended time against 108 µs
//!   from the actual send; with the timerfd 111-134 µs against 73-93 µs).

mod conn;
mod send_timer;
mod worker;

use crate::checks::{Checks, Probe};
use crate::hist::{self, Hist};
use crate::schedule::Latencies;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Set by SIGINT (see [`stop_on_sigint`]): every worker ends its run at its next
/// wakeup (within 50 ms) and the results so far are reported.
fn stop_flag() -> &'static Arc<AtomicBool> {
    static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    STOP.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// True once an interrupt asked the running load to stop.
pub fn stop_requested() -> bool {
    stop_flag().load(Ordering::Relaxed)
}

/// Makes the first Ctrl-C end the run early with a normal summary, like wrk; a
/// second one kills the process (the default action, once the flag is set).
pub fn stop_on_sigint() {
    let flag = stop_flag();
    // Registered first, so it sees the flag as the previous signal left it.
    let _ = signal_hook::flag::register_conditional_default(
        signal_hook::consts::SIGINT,
        Arc::clone(flag),
    );
    let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(flag));
}

/// Status codes are counted per code below this bound (the response parser
/// accepts three-digit codes only).
pub const STATUS_CODES: usize = 1000;

/// When to print the live progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Off,
    /// Overwrite one line (stderr is a terminal).
    Line,
    /// One line per second (asked for while stderr is not a terminal).
    Lines,
}

/// A validated run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub addr: SocketAddr,
    /// One serialised request.
    pub request: Vec<u8>,
    /// When not empty: the requests every connection sends in turn instead of
    /// `request` (`--also`, the `large` scenario's file mix); connection `i`
    /// starts at entry `i mod len`, so the connections spread over the list.
    pub rotation: Vec<Vec<u8>>,
    /// The method is HEAD (responses have no body).
    pub head_request: bool,
    /// INVARIANT: >= 1.
    pub connections: usize,
    /// INVARIANT: 1 ..= connections.
    pub threads: usize,
    pub cpus: Option<Vec<usize>>,
    /// INVARIANT: >= 1 (1 when !keepalive).
    pub pipeline: usize,
    pub keepalive: bool,
    /// `--recv-buffer`: `SO_RCVBUF` for every connection (checked by the CLI).
    pub recv_buffer: Option<usize>,
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
    pub warmup: Duration,
    pub rate: Option<f64>,
    pub timeout: Duration,
    pub progress: Progress,
    /// Wait until this wall-clock time before connecting (`--start-at`), so that
    /// runs from several load machines share one measured window.
    pub start_at: Option<SystemTime>,
    pub server_pid: Option<u32>,
    /// A backend the server forwards requests to: its CPU is measured apart
    /// (`Checks::backend`) and not counted as other processes' noise.
    pub backend_pid: Option<u32>,
    /// CPUs the server may use (for the generator-bound check).
    pub server_cores: Option<usize>,
}

/// Outcome counters; errors by category and responses by status class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub connect_refused: u64,
    /// Other connect failures (unreachable, no address) are counted here too.
    pub connect_timeout: u64,
    pub request_timeout: u64,
    pub reset_eof: u64,
    pub write_error: u64,
    pub parse_error: u64,
    pub status_1xx: u64,
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    pub bytes_read: u64,
    /// Connections whose first request was sent in the measured period (with
    /// `--no-keepalive` one per request: the churn count).
    #[serde(default)]
    pub connections: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.connect_refused += o.connect_refused;
        self.connect_timeout += o.connect_timeout;
        self.request_timeout += o.request_timeout;
        self.reset_eof += o.reset_eof;
        self.write_error += o.write_error;
        self.parse_error += o.parse_error;
        self.status_1xx += o.status_1xx;
        self.status_2xx += o.status_2xx;
        self.status_3xx += o.status_3xx;
        self.status_4xx += o.status_4xx;
        self.status_5xx += o.status_5xx;
        self.bytes_read += o.bytes_read;
        self.connections += o.connections;
    }

    /// Transport and protocol errors (no response at all).
    pub fn transport_errors(&self) -> u64 {
        self.connect_refused
            + self.connect_timeout
            + self.request_timeout
            + self.reset_eof
            + self.write_error
            + self.parse_error
    }

    /// Responses with a status below 400: the ones in the latency histogram.
    pub fn successes(&self) -> u64 {
        self.status_1xx + self.status_2xx + self.status_3xx
    }
}

/// One second of the measured period (all threads together).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// End of the interval, seconds since the measured period began.
    pub t_s: f64,
    /// Interval length (the last one may be shorter).
    pub dur_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

/// Everything a run measured.
#[derive(Debug)]
pub struct Outcome {
    /// The measured period (warm-up excluded).
    pub elapsed: Duration,
    /// Wall-clock start of the measured period, seconds since the Unix epoch.
    pub measure_start_unix_s: f64,
    pub latencies: Latencies,
    pub counts: Counts,
    /// Responses by status code (codes that occurred only).
    pub status_codes: BTreeMap<u16, u64>,
    /// The run was cut short by Ctrl-C (SIGINT) before its duration or count.
    pub interrupted: bool,
    pub timeline: Vec<Second>,
    pub checks: Checks,
}

/// What a worker sends to the coordinating thread.
enum Msg {
    Tick {
        second: u32,
        dur: Duration,
        requests: u64,
        errors: u64,
        hist: Box<Hist>,
    },
    Done(Box<worker::ThreadResult>),
    Failed(String),
}

/// Runs the load described by `plan`.
pub fn run(plan: &Plan) -> Result<Outcome, String> {
    if let Some(cpus) = &plan.cpus {
        crate::sys::pin_current_thread(cpus)?;
    }
    if let Some(at) = plan.start_at {
        wait_until(at);
    }
    let start = Instant::now();
    let wall_start = SystemTime::now();
    let measure_start = start + plan.warmup;
    let (tx, rx) = mpsc::channel::<Msg>();
    let per_thread = split(plan.connections, plan.threads);
    let budgets: Vec<Option<u64>> = match plan.requests {
        Some(n) => split(n as usize, plan.threads)
            .into_iter()
            .map(|b| Some(b as u64))
            .collect(),
        None => vec![None; plan.threads],
    };
    let mut first_conn = 0;
    std::thread::scope(|scope| -> Result<Outcome, String> {
        for (t, &conns) in per_thread.iter().enumerate() {
            let tx = tx.clone();
            let setup = worker::Setup {
                plan,
                thread: t,
                first_conn,
                conns,
                budget: budgets[t],
                start,
                measure_start,
            };
            first_conn += conns;
            std::thread::Builder::new()
                .name(format!("load-{t}"))
                .spawn_scoped(scope, move || {
                    let msg = match worker::run(setup, &tx) {
                        Ok(r) => Msg::Done(Box::new(r)),
                        Err(e) => Msg::Failed(e),
                    };
                    let _ = tx.send(msg);
                })
                .map_err(|e| format!("cannot start a load thread: {e}"))?;
        }
        drop(tx);
        let mut out = collect(plan, rx, measure_start)?;
        out.measure_start_unix_s = (wall_start + plan.warmup)
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Ok(out)
    })
}

/// Sleeps until the wall clock reaches `at` (at once if it has); an interrupt ends the wait.
fn wait_until(at: SystemTime) {
    while let Ok(left) = at.duration_since(SystemTime::now()) {
        if left.is_zero() || stop_requested() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Gathers ticks into the timeline, prints progress, and merges the results.
fn collect(
    plan: &Plan,
    rx: mpsc::Receiver<Msg>,
    measure_start: Instant,
) -> Result<Outcome, String> {
    let mut probe: Option<Probe> = None;
    let mut seconds: Vec<(usize, Second, Hist)> = Vec::new();
    let mut timeline = Vec::new();
    let mut so_far = hist::new_hist();
    let mut results = Vec::new();
    let mut failure = None;
    let mut done = 0;
    while done < plan.threads {
        if probe.is_none() && Instant::now() >= measure_start {
            probe = Some(Probe::start_with_backend(plan.server_pid, plan.backend_pid));
        }
        let msg = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        match msg {
            Msg::Tick {
                second,
                dur,
                requests,
                errors,
                hist: h,
            } => {
                let i = second as usize;
                while seconds.len() <= i {
                    let t = seconds.len() as f64 + 1.0;
                    seconds.push((0, blank_second(t), hist::new_hist()));
                }
                let (n, s, acc) = &mut seconds[i];
                *n += 1;
                s.requests += requests;
                s.errors += errors;
                s.dur_s = s.dur_s.max(dur.as_secs_f64());
                s.t_s = i as f64 + s.dur_s;
                hist::merge(acc, &h);
                if *n == plan.threads {
                    s.p50_us = acc.value_at_quantile(0.50);
                    s.p99_us = acc.value_at_quantile(0.99);
                    hist::merge(&mut so_far, acc);
                    let p99 = so_far.value_at_quantile(0.99);
                    crate::report::progress_line(plan.progress, s, p99);
                    timeline.push(s.clone());
                }
            }
            Msg::Done(r) => {
                results.push(*r);
                done += 1;
            }
            Msg::Failed(e) => {
                failure.get_or_insert(e);
                done += 1;
            }
        }
    }
    // Seconds some thread never reached (it met its -n share early) are complete now.
    for (n, s, acc) in &mut seconds {
        if *n > 0 && *n < plan.threads {
            s.p50_us = acc.value_at_quantile(0.50);
            s.p99_us = acc.value_at_quantile(0.99);
            timeline.push(s.clone());
        }
    }
    if plan.progress == Progress::Line {
        eprintln!();
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let probe =
        probe.unwrap_or_else(|| Probe::start_with_backend(plan.server_pid, plan.backend_pid));
    let mut latencies = Latencies::new(plan.rate.is_some());
    let mut counts = Counts::default();
    let mut codes = vec![0u64; STATUS_CODES];
    let mut until = measure_start;
    for r in &results {
        for (acc, n) in codes.iter_mut().zip(&r.codes) {
            *acc += n;
        }
        hist::merge(&mut latencies.corrected, &r.latencies.corrected);
        if let (Some(dst), Some(src)) = (&mut latencies.uncorrected, &r.latencies.uncorrected) {
            hist::merge(dst, src);
        }
        latencies.sends += r.latencies.sends;
        latencies.late += r.latencies.late;
        counts.add(&r.counts);
        until = until.max(r.measured_until);
    }
    let elapsed = until.saturating_duration_since(measure_start);
    timeline.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let requests = counts.successes() + counts.status_4xx + counts.status_5xx;
    let load_cores = plan
        .cpus
        .as_ref()
        .map_or(plan.threads, |c| c.len().min(plan.threads));
    let checks = probe.finish(
        requests,
        load_cores,
        plan.server_cores,
        plan.cpus.as_deref(),
    );
    let status_codes = codes
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n > 0)
        .map(|(code, &n)| (code as u16, n))
        .collect();
    Ok(Outcome {
        elapsed,
        measure_start_unix_s: 0.0,
        latencies,
        counts,
        status_codes,
        interrupted: stop_requested(),
        timeline,
        checks,
    })
}

fn blank_second(t: f64) -> Second {
    Second {
        t_s: t,
        dur_s: 0.0,
        requests: 0,
        errors: 0,
        p50_us: 0,
        p99_us: 0,
    }
}

/// Splits `n` into `parts` near-equal shares.
fn split(n: usize, parts: usize) -> Vec<usize> {
    (0..parts)
        .map(|i| n / parts + usize::from(i < n % parts))
        .collect()
}
