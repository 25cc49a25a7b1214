//! `gvhttpd bench compare`: the model comparison behind `results/`.
//!
//! For each repetition, for each scenario, for each of its points (a rate of the
//! sweep, a connection count, a file size), for each target (every available
//! model, then every `--peer`), so targets are interleaved A B C A B C ..., a
//! fresh server is started pinned to `--server-cpus`, the load runs pinned to
//! `--load-cpus`, and the server is stopped. A fresh server per run keeps peak RSS
//! and CPU per request attributable to one run. The results go to
//! `<out>/<date>-<host>/`.
//!
//! The matrix ([`SCENARIOS`]):
//! - `plaintext`, `pipelined`, `json`, `sleep`, `idle`: hello-world shapes that
//!   mostly show what the kernel's loopback path costs every model alike;
//! - `sweep`: the load–latency curve. Each target's closed-loop maximum at
//!   [`SWEEP_CONNECTIONS`] is measured first (once, before the repetitions), then
//!   open-loop runs offer [`SWEEP_FRACTIONS`] of it; latency is from the intended
//!   send time. Reported: p50/p99/p99.9 against offered and achieved rate, and the
//!   highest achieved rate whose p99 stays under each of [`LATENCY_BOUNDS_US`];
//! - `churn`: a new connection per request (`--no-keepalive`);
//! - `skew`: [`SKEW_WORKERS`] workers; a few connections send CPU-heavy
//!   `/work/<µs>` (closed loop) while many send `/` at a fixed open-loop rate;
//!   reported: the light requests' p99 and the heavy ones' throughput;
//! - `busy`: closed loop at [`BUSY_CONNECTIONS`] connections that all keep sending;
//! - `large`: `/static/` files of [`LARGE_FILES`] sizes and a mix of
//!   [`MIX_FILES`] files from 3 KB to 300 KB requested in turn ([`mix_files`]),
//!   all created in a temporary `--root`: MB/s and server CPU per MB;
//! - `downloads`: `--downloads` (10,000) concurrent downloads of the 1 MiB file,
//!   each stalled after its head until all are open: the server's RSS per
//!   download in flight ([`downloads`]);
//! - `proxy`: every server forwards `GET /proxy/` to one pinned backend
//!   (`gvhttpd serve --model tokio --workers 1` on `--backend-cpus`): req/s,
//!   latency, server CPU per proxied request, and the backend's CPU apart.
//!
//! `--peer NAME='command with {port}'` starts another HTTP server the same way
//! (pinned, fresh per run, ready once it accepts a connection) as one more row.

pub mod bisect;
pub mod breakdown;
pub mod downloads;
mod output;
pub mod paired;
mod plan;
pub mod rounds;
mod runner;
pub use runner::{bound_held, bound_label, bound_prefix, check_models, run, KNOWN_MODELS};
mod plots;
mod server;
pub use plan::{points, rate_plan, scaling_cpus, scaling_plan, scaling_points, SCALING_SHAPES};

use crate::cli::{self, Failure, LoadArgs};
use crate::engine;
use crate::report::{Env, Report};
use clap::Args;
use serde::{Deserialize, Serialize};
use server::{Server, StartError, StartOpts};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use output::{
    best_per_scenario, cost_rows, new_run_dir, scenario_title, summary, verdict_text,
    write_reports, Answer, CostRow, CPU_PER_MB_SUFFIX,
};
pub use plots::{
    fmt_tick, names as plot_names, render_all as render_plots, ticks_125, ticks_linear,
};
pub use server::{check_serve_args, fill_peer_command, parse_peer, parse_ready, Target};

/// Flags of `gvhttpd bench compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Models to compare (unavailable ones are listed as such).
    #[arg(long, value_delimiter = ',', default_value = "callback,tokio,green")]
    pub models: Vec<String>,
    /// Another HTTP server as a row beside the models (repeatable):
    /// NAME='command'. The command runs as `sh -c 'exec COMMAND'`, in the
    /// foreground, and must listen on 127.0.0.1:{port}; {root} is the static
    /// directory, {workers} the worker count. Its own process is measured.
    #[arg(long = "peer", value_name = "NAME=COMMAND")]
    pub peers: Vec<String>,
    /// Scenarios to run, or `all`: plaintext, pipelined, json, sleep, idle,
    /// sweep, churn, skew, busy, large, cost, bound, scaling, downloads, proxy
    /// [default: all but sweep, scaling and downloads].
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<String>,
    /// CPUs for the server (its worker count is the number of CPUs).
    #[arg(long, default_value = "0")]
    pub server_cpus: String,
    /// CPUs for the load generator (one load thread per CPU).
    #[arg(long, default_value = "1")]
    pub load_cpus: String,
    /// Rounds every scenario gets at least (a round runs every server once,
    /// interleaved) [default: 6, the fewest an exact 95 % interval needs;
    /// --quick: 1].
    #[arg(long)]
    pub repeat: Option<u32>,
    /// Rounds a scenario whose answer is still undecided may get at most
    /// [default: 30; --quick: --repeat].
    #[arg(long)]
    pub max_rounds: Option<u32>,
    /// Wall-clock budget of the whole comparison: no round starts that would
    /// overrun it (e.g. 20m, 90s) [default: 20m].
    #[arg(long, value_name = "DURATION")]
    pub budget: Option<String>,
    /// Measured duration of each load run [default: 1s; --quick: 500ms].
    #[arg(long)]
    pub duration: Option<String>,
    /// Warm-up before each load run [default: 300ms; --quick: 200ms].
    #[arg(long)]
    pub warmup: Option<String>,
    /// Open connections for the idle-memory scenario [default: 10000; --quick: 1000].
    #[arg(long)]
    pub idle_conns: Option<usize>,
    /// Concurrent 1 MiB downloads in the `downloads` scenario [default: 10000,
    /// or as many as the open-files hard limit allows the server (a socket and a
    /// file each); --quick: 1000].
    #[arg(long, value_name = "N")]
    pub downloads: Option<usize>,
    /// CPUs for the `proxy` scenario's backend [default: --load-cpus, so the
    /// server's CPU stays its own and the backend's work, the same for every
    /// server, sits beside the load's].
    #[arg(long, value_name = "LIST")]
    pub backend_cpus: Option<String>,
    /// Smoke run: one repetition of short runs, three sweep points, busy up to
    /// 1000 connections (about 20 s per server).
    #[arg(long)]
    pub quick: bool,
    /// Parent directory of the results folder.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// The gvhttpd binary to start [default: this executable]; it is given
    /// `--bench-routes`, so a build older than that flag runs as a `--peer` instead.
    #[arg(long)]
    pub exe: Option<PathBuf>,
    /// An extra flag for every model's `gvhttpd serve` (repeatable), e.g.
    /// `--serve-arg=--work-slice=0`; recorded in raw.json and the summary. Not
    /// the flags the comparison sets itself (--model, --addr, --workers, --root,
    /// --bench-routes)
    /// nor the scheduling flags a row's name stands for (--models tokio+multi).
    #[arg(long = "serve-arg", value_name = "FLAG", allow_hyphen_values = true)]
    pub serve_args: Vec<String>,
    /// CPU each heavy request of the `skew` scenario burns, in microseconds
    /// (`GET /work/<µs>`, 1..=1000000).
    #[arg(long, default_value_t = DEFAULT_SKEW_WORK_US, value_name = "µs")]
    pub skew_work_us: u32,
    /// Half-width of the band a paired ratio's 95 % interval must lie in for a
    /// row to say "equivalent", as a fraction or a percentage (5% = 0.05).
    #[arg(long, default_value = "5%", value_parser = parse_equivalence)]
    pub equivalence: f64,
    /// The `cost` scenario's open-loop rate for every server, req/s [default:
    /// half the slowest server's closed-loop maximum].
    #[arg(long, value_name = "REQ/S")]
    pub cost_rate: Option<f64>,
    /// Run nothing: rewrite summary.md, README.md and the plots next to this
    /// raw.json from its data (e.g. after a change to the tables or plots).
    #[arg(long, value_name = "RAW.json")]
    pub from_raw: Option<PathBuf>,
}

/// One scenario of the fixed matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scenario {
    pub name: &'static str,
    pub title: &'static str,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Load {
        path: &'static str,
        connections: u64,
        pipeline: u64,
        rate: Option<f64>,
        keepalive: bool,
    },
    /// Hold this many idle connections and measure the server's RSS growth.
    Idle,
    /// Open-loop rate sweep against each target's closed-loop maximum.
    Sweep,
    /// Heavy `/work` requests beside light `/` ones on [`SKEW_WORKERS`] workers.
    Skew,
    /// Closed loop at each of [`BUSY_CONNECTIONS`].
    Busy,
    /// Closed loop on each of [`LARGE_FILES`], then on the mix ([`mix_files`]).
    Large,
    /// Concurrent stalled downloads of the 1 MiB file: RSS per download in flight.
    Downloads,
    /// `GET /proxy/` forwarded to a backend ([`PROXY_PATH`]).
    Proxy,
    /// Every server at the same open-loop rate ([`COST_POINTS`]).
    Cost,
    /// The highest rate held under each of [`LATENCY_BOUNDS_US`], by bisection
    /// ([`bisect`]).
    Bound,
    /// Plain and pipelined `GET /` at 1, 2, 4, … workers ([`scaling_points`]).
    Scaling,
}

/// Connections of the sweep (its closed-loop maximum and every open-loop point).
pub const SWEEP_CONNECTIONS: u64 = 64;
/// Offered rates of the sweep, as shares of the closed-loop maximum.
pub const SWEEP_FRACTIONS: [f64; 7] = [0.10, 0.25, 0.50, 0.75, 0.90, 1.00, 1.10];
/// The sweep's points in `--quick` mode.
pub const QUICK_SWEEP_FRACTIONS: [f64; 3] = [0.25, 0.75, 1.10];
/// p99 bounds for "highest rate held" (µs).
pub const LATENCY_BOUNDS_US: [u64; 2] = [1_000, 10_000];
/// Connections of the churn scenario.
pub const CHURN_CONNECTIONS: u64 = 16;
/// Server workers in the skew scenario.
pub const SKEW_WORKERS: usize = 2;
/// The heavy requests of the skew scenario: `/work/<µs>` of this many µs of CPU
/// each, unless `--skew-work-us` says otherwise.
pub const DEFAULT_SKEW_WORK_US: u32 = 5_000;
/// Connections sending heavy requests (closed loop).
pub const SKEW_HEAVY_CONNECTIONS: u64 = 2;
/// Connections sending light `GET /` at [`SKEW_LIGHT_RATE`] (open loop).
pub const SKEW_LIGHT_CONNECTIONS: u64 = 32;
/// Light requests per second in the skew scenario.
pub const SKEW_LIGHT_RATE: f64 = 1_000.0;
/// Connection counts of the busy scenario.
pub const BUSY_CONNECTIONS: [u64; 3] = [64, 1_000, 10_000];
/// The busy scenario's counts in `--quick` mode.
pub const QUICK_BUSY_CONNECTIONS: [u64; 2] = [64, 1_000];
/// Files of the large-response scenario: (name under the root, size in bytes).
pub const LARGE_FILES: [(&str, u64); 2] = [("64KiB.bin", 64 << 10), ("1MiB.bin", 1 << 20)];
/// Files in the `large` scenario's mix, requested in turn by every connection.
pub const MIX_FILES: usize = 20;
/// The mix's smallest and largest file, bytes (3 KB and 300 KB).
pub const MIX_SIZES: (u64, u64) = (3_000, 300_000);
/// The `large` scenario's point for the mix.
pub const MIX_LABEL: &str = "mix";

/// The mix: [`MIX_FILES`] files whose sizes grow geometrically from 3 KB to
/// 300 KB (each about 27 % larger than the one before), as (name under the
/// root, size in bytes): the small static responses of a web page (icons,
/// scripts, style sheets, images) rather than one size.
pub fn mix_files() -> Vec<(String, u64)> {
    let (lo, hi) = MIX_SIZES;
    let n = MIX_FILES as f64 - 1.0;
    (0..MIX_FILES)
        .map(|i| {
            let size = (lo as f64 * (hi as f64 / lo as f64).powf(i as f64 / n)).round() as u64;
            (format!("mix/{i:02}-{size}.bin"), size)
        })
        .collect()
}

/// Mean size of the mix's files, bytes (the `mix` point's value).
pub fn mix_mean_size() -> f64 {
    let files = mix_files();
    files.iter().map(|f| f.1 as f64).sum::<f64>() / files.len() as f64
}

/// The flags every model's `serve` gets in `downloads`, each with
/// [`downloads::SEND_TIMEOUT`]: no progress for that long (`--write-timeout`),
/// or a response not sent in that long (`--response-timeout`), ends a download.
pub const DOWNLOAD_SERVE_FLAGS: [&str; 2] = ["--write-timeout", "--response-timeout"];

/// The file every `downloads` connection fetches.
pub const DOWNLOAD_FILE: (&str, u64) = LARGE_FILES[1];
/// Connections of the `proxy` scenario (the reference: wrk -c64).
pub const PROXY_CONNECTIONS: u64 = 64;
/// What the `proxy` scenario requests; a proxy sends it to the backend as `/`.
pub const PROXY_PATH: &str = "/proxy/";
/// `{upstream}` of a peer's command outside the `proxy` scenario: an address
/// nothing listens on (the discard port), so that a proxying peer's
/// configuration is complete but unused.
pub const NO_UPSTREAM: &str = "127.0.0.1:9";
/// Points of the `cost` scenario: the clean run whose CPU is compared, and a
/// run with the server's syscalls counted (the tracepoint costs CPU).
pub const COST_POINTS: [&str; 2] = ["rate", "syscalls"];
/// Connections of the `cost` scenario.
pub const COST_CONNECTIONS: u64 = 64;
/// The `cost` rate by default: this share of the slowest server's closed-loop
/// maximum, so that every server has headroom.
pub const COST_SHARE: f64 = 0.5;

/// Connections of the large-response scenario.
pub const LARGE_CONNECTIONS: u64 = 16;
/// The large-response scenario's receive buffer per connection (`--recv-buffer`;
/// the kernel grants twice it, 512 KiB). Autotuned, the generator's receive
/// window decided on loopback whether a 1 MiB response went out in the
/// server's own `sendfile` (charging it the receiver's processing too, ~400 µs
/// per MB) or from the generator's reads (~80), and which one a server got
/// flipped with the run: nginx measured 390 and 179 µs/MB in two runs in a row
/// (results/2026-12-07-vm-one-mib). Fixed, every server meets the same window.
/// The 64 KiB file and the mix's files (at most 300 KB) fit in it whole.
pub const LARGE_RECV_BUFFER: u64 = 256 * 1024;

const fn load(path: &'static str, connections: u64, pipeline: u64, rate: Option<f64>) -> Kind {
    Kind::Load {
        path,
        connections,
        pipeline,
        rate,
        keepalive: true,
    }
}

/// The fixed scenario matrix.
pub const SCENARIOS: [Scenario; 15] = [
    Scenario {
        name: "plaintext",
        title: "GET / at -c64",
        kind: load("/", 64, 1, None),
    },
    Scenario {
        name: "pipelined",
        title: "GET / at -c64, pipelined x16",
        kind: load("/", 64, 16, None),
    },
    Scenario {
        name: "json",
        title: "GET /json at -c64",
        kind: load("/json", 64, 1, None),
    },
    Scenario {
        name: "sleep",
        title: "GET /sleep/100 at -c1000, open loop 5000 req/s",
        kind: load("/sleep/100", 1000, 1, Some(5000.0)),
    },
    Scenario {
        name: "idle",
        title: "idle connections, each after one request (RSS per connection)",
        kind: Kind::Idle,
    },
    Scenario {
        name: "sweep",
        title: "load–latency curve: GET / at -c64, open loop at shares of the closed-loop maximum",
        kind: Kind::Sweep,
    },
    Scenario {
        name: "churn",
        title: "GET / at -c16 with a new connection per request (--no-keepalive)",
        kind: Kind::Load {
            path: "/",
            connections: CHURN_CONNECTIONS,
            pipeline: 1,
            rate: None,
            keepalive: false,
        },
    },
    Scenario {
        name: "skew",
        title: "CPU skew: 2 workers; 2 connections send CPU-heavy GET /work/<µs> in closed \
                loop while 32 send GET / at 1000 req/s open loop",
        kind: Kind::Skew,
    },
    Scenario {
        name: "busy",
        title: "many busy connections: GET / closed loop at 64, 1000 and 10000 connections",
        kind: Kind::Busy,
    },
    Scenario {
        name: "large",
        title: "large responses: GET /static/ of a 64 KiB and a 1 MiB file, and a mix of 20 \
                files from 3 KB to 300 KB requested in turn, at -c16, each load connection's \
                receive buffer fixed at 256 KiB",
        kind: Kind::Large,
    },
    Scenario {
        name: "cost",
        title: "cost at equal load: GET / at -c64, every server at the same open-loop rate \
                (half the slowest server's closed-loop maximum, or --cost-rate)",
        kind: Kind::Cost,
    },
    Scenario {
        name: "bound",
        title: "load–latency bound: GET / at -c64, open loop; per server the highest offered rate \
                with p99 under 1 ms and under 10 ms, bisected until the bracket is within 5 %",
        kind: Kind::Bound,
    },
    Scenario {
        name: "scaling",
        title: "scaling: GET / at -c64, plain and pipelined x16, with 1, 2, 4, … workers up to \
                --server-cpus (the server on as many of them as it has workers)",
        kind: Kind::Scaling,
    },
    Scenario {
        name: "downloads",
        title: "concurrent downloads: 10000 connections each GET the 1 MiB file, stalled after \
                the head until all are open (server RSS per download in flight), then read to \
                the end and checked byte for byte",
        kind: Kind::Downloads,
    },
    Scenario {
        name: "proxy",
        title: "reverse proxy: GET /proxy/ at -c64, each server forwarding to one backend \
                (gvhttpd serve --model tokio --workers 1 on the backend CPUs) as GET /",
        kind: Kind::Proxy,
    },
];

/// Scenarios left out by default: `sweep` only draws the curve (`bound`
/// answers the bounds) and `scaling` describes rather than compares; with them,
/// six rounds of the matrix take about 30 minutes on the 2-CPU machine.
/// `downloads` reads 10 GB per server and round (23 to 92 s each on that
/// machine): it is run on its own (`--scenarios downloads`).
pub const NOT_BY_DEFAULT: [&str; 3] = ["sweep", "scaling", "downloads"];

/// Looks a scenario up by name.
pub fn scenario(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// One point of a multi-point scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// As shown in tables: `50%`, `c1000`, `1MiB`, `max`.
    pub label: String,
    /// Share of the maximum (sweep), connections (busy), bytes (large).
    pub value: f64,
}

/// A target's availability (a model, or a `--peer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelStatus {
    pub name: String,
    pub available: bool,
    /// Why not, in the model's own words.
    pub reason: Option<String>,
    /// For a `--peer`: its command as given.
    #[serde(default)]
    pub peer: Option<String>,
}

/// The idle-memory measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleResult {
    pub connections: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub bytes_per_connection: f64,
}

/// One (target, scenario, point, repetition) run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub model: String,
    pub scenario: String,
    /// 1-based; 0 for the sweep's closed-loop calibration.
    pub repeat: u32,
    #[serde(default)]
    pub point: Option<Point>,
    /// The load's report (in `skew`: the light requests').
    pub report: Option<Report>,
    /// `skew`: the heavy requests' report.
    #[serde(default)]
    pub heavy: Option<Report>,
    pub idle: Option<IdleResult>,
    /// Set when the run failed; the error in one line.
    pub error: Option<String>,
    /// `cost`: syscalls and io_uring operations per request.
    #[serde(default)]
    pub extra: Option<breakdown::Extra>,
    /// `downloads`: the memory per download in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downloads: Option<downloads::DownloadsResult>,
}

impl Run {
    /// A run of `t` that has not run yet (or failed before it could).
    pub fn new(model: &str, scenario: &str, repeat: u32, point: Option<&Point>) -> Run {
        Run {
            model: model.to_string(),
            scenario: scenario.to_string(),
            repeat,
            point: point.cloned(),
            report: None,
            heavy: None,
            idle: None,
            error: None,
            extra: None,
            downloads: None,
        }
    }
}

/// The whole `raw.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Raw {
    pub schema: String,
    pub command: Vec<String>,
    pub env: Env,
    pub rustc: String,
    pub git_revision: String,
    /// UTC date of the run (YYYY-MM-DD).
    #[serde(default)]
    pub date: String,
    pub server_cpus: Vec<usize>,
    pub load_cpus: Vec<usize>,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub repeat: u32,
    #[serde(default)]
    pub quick: bool,
    /// Models, then peers.
    pub models: Vec<ModelStatus>,
    /// Extra flags every model's `serve` got (`--serve-arg`).
    #[serde(default)]
    pub serve_args: Vec<String>,
    /// µs of CPU per heavy `skew` request (`--skew-work-us`).
    #[serde(default = "default_skew_work_us")]
    pub skew_work_us: u32,
    pub scenarios: Vec<String>,
    pub runs: Vec<Run>,
    /// `--equivalence` (a fraction).
    #[serde(default = "default_equivalence")]
    pub equivalence: f64,
    /// Per scenario: the rounds it got and why it stopped.
    #[serde(default)]
    pub rounds: Vec<rounds::ScenarioRounds>,
    /// `--budget`, seconds (0 when unknown).
    #[serde(default)]
    pub budget_s: f64,
    /// The `cost` scenario's rate, req/s.
    #[serde(default)]
    pub cost_rate: Option<f64>,
    /// `--repeat`: the rounds every scenario was to get at least (0: unknown).
    #[serde(default)]
    pub min_rounds: u32,
    /// CPUs of the `proxy` scenario's backend (empty without that scenario).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_cpus: Vec<usize>,
    /// CPUs of the `scaling` scenario's servers ([`scaling_cpus`]; empty
    /// without that scenario).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scaling_cpus: Vec<usize>,
}

fn default_equivalence() -> f64 {
    paired::DEFAULT_EQUIVALENCE
}

/// `--equivalence`: `5%` or `0.05`, above 0 and below 1.
pub fn parse_equivalence(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("'{s}' is not a fraction or a percentage (e.g. 5% or 0.05)"))?;
    if !(v > 0.0 && v < 1.0) {
        return Err(format!("'{s}' must be above 0 and below 100 %"));
    }
    Ok(v)
}

fn default_skew_work_us() -> u32 {
    DEFAULT_SKEW_WORK_US
}

impl Raw {
    /// The heavy requests' path in the `skew` scenario.
    pub fn skew_path(&self) -> String {
        format!("/work/{}", self.skew_work_us)
    }

    /// Parses a `raw.json` written by `bench compare`.
    pub fn from_json(s: &str) -> Result<Raw, String> {
        serde_json::from_str(s).map_err(|e| format!("not a compare raw.json: {e}"))
    }

    /// The sweep's shares of the maximum used in this run.
    pub fn sweep_fractions(&self) -> &'static [f64] {
        if self.quick {
            &QUICK_SWEEP_FRACTIONS
        } else {
            &SWEEP_FRACTIONS
        }
    }
}

mod execute;
pub use execute::file_bytes;
use execute::{Ctx, StaticRoot};
