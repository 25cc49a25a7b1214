//! `gvhttpd bench compare`: the three-model comparison behind `results/`.
//!
//! For each repetition, for each scenario, for each available model (so models
//! are interleaved A B C A B C ...), a fresh `gvhttpd serve --model M` is started
//! pinned to `--server-cpus`, the load runs pinned to `--load-cpus`, and the
//! server is stopped. A fresh server per run keeps peak RSS and CPU per request
//! attributable to one scenario. The results go to `<out>/<date>-<host>/`.

mod output;
mod plots;
mod server;

use crate::cli::{self, CliError, Failure, LoadArgs};
use crate::engine;
use crate::report::{Env, Report};
use clap::Args;
use serde::{Deserialize, Serialize};
use server::{Server, StartError};
use std::path::PathBuf;
use std::time::Duration;

pub use server::parse_ready;

/// Flags of `gvhttpd bench compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Models to compare (unavailable ones are listed as such).
    #[arg(long, value_delimiter = ',', default_value = "callback,tokio,green")]
    pub models: Vec<String>,
    /// Scenarios to run (default: all): plaintext, pipelined, json, sleep, idle.
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<String>,
    /// CPUs for the server (its worker count is the number of CPUs).
    #[arg(long, default_value = "0")]
    pub server_cpus: String,
    /// CPUs for the load generator (one load thread per CPU).
    #[arg(long, default_value = "1")]
    pub load_cpus: String,
    /// Repetitions of the whole matrix (interleaved).
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Measured duration of each load run.
    #[arg(long, default_value = "3s")]
    pub duration: String,
    /// Warm-up before each load run.
    #[arg(long, default_value = "1s")]
    pub warmup: String,
    /// Open connections for the idle-memory scenario.
    #[arg(long, default_value_t = 10_000)]
    pub idle_conns: usize,
    /// Parent directory of the results folder.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// The gvhttpd binary to start [default: this executable].
    #[arg(long)]
    pub exe: Option<PathBuf>,
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
    },
    /// Hold this many idle connections and measure the server's RSS growth.
    Idle,
}

/// The fixed scenario matrix.
pub const SCENARIOS: [Scenario; 5] = [
    Scenario {
        name: "plaintext",
        title: "GET / at -c64",
        kind: Kind::Load {
            path: "/",
            connections: 64,
            pipeline: 1,
            rate: None,
        },
    },
    Scenario {
        name: "pipelined",
        title: "GET / at -c64, pipelined x16",
        kind: Kind::Load {
            path: "/",
            connections: 64,
            pipeline: 16,
            rate: None,
        },
    },
    Scenario {
        name: "json",
        title: "GET /json at -c64",
        kind: Kind::Load {
            path: "/json",
            connections: 64,
            pipeline: 1,
            rate: None,
        },
    },
    Scenario {
        name: "sleep",
        title: "GET /sleep/100 at -c1000, open loop 5000 req/s",
        kind: Kind::Load {
            path: "/sleep/100",
            connections: 1000,
            pipeline: 1,
            rate: Some(5000.0),
        },
    },
    Scenario {
        name: "idle",
        title: "idle connections held open (RSS per connection)",
        kind: Kind::Idle,
    },
];

/// A model's availability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelStatus {
    pub name: String,
    pub available: bool,
    /// Why not, in the model's own words.
    pub reason: Option<String>,
}

/// The idle-memory measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleResult {
    pub connections: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub bytes_per_connection: f64,
}

/// One (model, scenario, repetition) run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub model: String,
    pub scenario: String,
    pub repeat: u32,
    pub report: Option<Report>,
    pub idle: Option<IdleResult>,
    /// Set when the run failed; the error in one line.
    pub error: Option<String>,
}

/// The whole `raw.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Raw {
    pub schema: String,
    pub command: Vec<String>,
    pub env: Env,
    pub rustc: String,
    pub git_revision: String,
    pub server_cpus: Vec<usize>,
    pub load_cpus: Vec<usize>,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub repeat: u32,
    pub models: Vec<ModelStatus>,
    pub scenarios: Vec<String>,
    pub runs: Vec<Run>,
}

impl Raw {
    /// Parses a `raw.json` written by `bench compare`.
    pub fn from_json(s: &str) -> Result<Raw, String> {
        serde_json::from_str(s).map_err(|e| format!("not a compare raw.json: {e}"))
    }
}

/// Runs the comparison and writes the results folder.
pub fn run(a: &CompareArgs) -> Result<(), Failure> {
    let usage = |m: String| Failure::Usage(CliError(m));
    let server_cpus = crate::sys::parse_cpu_list(&a.server_cpus)
        .map_err(|e| usage(format!("--server-cpus: {e}")))?;
    let load_cpus =
        crate::sys::parse_cpu_list(&a.load_cpus).map_err(|e| usage(format!("--load-cpus: {e}")))?;
    let duration =
        cli::parse_duration(&a.duration).map_err(|e| usage(format!("--duration: {e}")))?;
    let warmup = cli::parse_duration(&a.warmup).map_err(|e| usage(format!("--warmup: {e}")))?;
    if a.repeat == 0 {
        return Err(usage("--repeat must be at least 1".into()));
    }
    if duration.is_zero() {
        return Err(usage("--duration must be more than 0".into()));
    }
    let scenarios: Vec<Scenario> = if a.scenarios.is_empty() {
        SCENARIOS.to_vec()
    } else {
        a.scenarios
            .iter()
            .map(|n| {
                SCENARIOS.iter().find(|s| s.name == n).copied().ok_or_else(|| {
                    usage(format!(
                        "--scenarios: unknown scenario '{n}' (plaintext, pipelined, json, sleep, idle)"
                    ))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let exe = match &a.exe {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| Failure::Run(format!("cannot find the gvhttpd executable: {e}")))?,
    };
    crate::sys::raise_nofile(a.idle_conns as u64 + 2048);
    crate::sys::pin_current_thread(&load_cpus).map_err(Failure::Run)?;

    let models = probe_models(&exe, &a.models, &server_cpus);
    let available: Vec<&str> = models
        .iter()
        .filter(|m| m.available)
        .map(|m| m.name.as_str())
        .collect();
    if available.is_empty() {
        return Err(Failure::Run(format!(
            "no model could be started: {}",
            models
                .iter()
                .map(|m| format!("{}: {}", m.name, m.reason.as_deref().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    let ctx = Ctx {
        exe: &exe,
        server_cpus: &server_cpus,
        load_cpus: &load_cpus,
        duration,
        warmup,
        idle_conns: a.idle_conns,
    };
    let mut runs = Vec::new();
    for r in 1..=a.repeat {
        for s in &scenarios {
            for m in &available {
                let run = ctx.run_one(m, s, r);
                eprintln!(
                    "gvhttpd bench compare: [{r}/{}] {}",
                    a.repeat,
                    output::one_line(&run)
                );
                runs.push(run);
            }
        }
    }
    let raw = Raw {
        schema: "gvhttpd-compare/1".into(),
        command: std::env::args().collect(),
        env: Env::here(),
        rustc: output::command_line("rustc", &["--version"]),
        git_revision: output::command_line("git", &["rev-parse", "--short", "HEAD"]),
        server_cpus,
        load_cpus,
        duration_s: duration.as_secs_f64(),
        warmup_s: warmup.as_secs_f64(),
        repeat: a.repeat,
        models,
        scenarios: scenarios.iter().map(|s| s.name.to_string()).collect(),
        runs,
    };
    let dir = output::write_all(&a.out, &raw).map_err(Failure::Run)?;
    println!("gvhttpd bench compare: wrote {}", dir.display());
    Ok(())
}

/// Starts each model once to learn whether it is available.
fn probe_models(exe: &std::path::Path, names: &[String], cpus: &[usize]) -> Vec<ModelStatus> {
    names
        .iter()
        .map(|name| match Server::start(exe, name, cpus) {
            Ok(_) => ModelStatus {
                name: name.clone(),
                available: true,
                reason: None,
            },
            Err(StartError::Unavailable(why) | StartError::Failed(why)) => {
                eprintln!("gvhttpd bench compare: model {name} unavailable: {why}");
                ModelStatus {
                    name: name.clone(),
                    available: false,
                    reason: Some(why),
                }
            }
        })
        .collect()
}

struct Ctx<'a> {
    exe: &'a std::path::Path,
    server_cpus: &'a [usize],
    load_cpus: &'a [usize],
    duration: Duration,
    warmup: Duration,
    idle_conns: usize,
}

impl Ctx<'_> {
    fn run_one(&self, model: &str, s: &Scenario, repeat: u32) -> Run {
        let mut run = Run {
            model: model.to_string(),
            scenario: s.name.to_string(),
            repeat,
            report: None,
            idle: None,
            error: None,
        };
        let mut server = match Server::start(self.exe, model, self.server_cpus) {
            Ok(srv) => srv,
            Err(StartError::Unavailable(e) | StartError::Failed(e)) => {
                run.error = Some(e);
                return run;
            }
        };
        let result = match s.kind {
            Kind::Load {
                path,
                connections,
                pipeline,
                rate,
            } => self
                .load(&server, path, connections, pipeline, rate)
                .map(|r| run.report = Some(r)),
            Kind::Idle => idle(&mut server, self.idle_conns).map(|r| run.idle = Some(r)),
        };
        if let Err(e) = result {
            run.error = Some(e);
        }
        if !server.alive() {
            run.error
                .get_or_insert_with(|| "the server exited during the run".into());
        }
        run
    }

    fn load(
        &self,
        server: &Server,
        path: &str,
        connections: u64,
        pipeline: u64,
        rate: Option<f64>,
    ) -> Result<Report, String> {
        let cpus = self
            .load_cpus
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let args = LoadArgs {
            url: Some(format!("http://{}{path}", server.addr)),
            connections,
            threads: None,
            cpus: Some(cpus),
            duration: Some(format!("{}s", self.duration.as_secs_f64())),
            requests: None,
            warmup: format!("{}s", self.warmup.as_secs_f64()),
            rate,
            timeout: "10s".into(),
            headers: Vec::new(),
            method: "GET".into(),
            body: None,
            body_file: None,
            pipeline,
            no_keepalive: false,
            json: None,
            hgrm: None,
            server_pid: Some(server.pid),
            quiet: true,
            progress: false,
            no_summary: true,
        };
        let (mut plan, config) = cli::plan(&args).map_err(|e| e.0)?;
        plan.server_cores = Some(self.server_cpus.len());
        let out = engine::run(&plan)?;
        Ok(Report::new(config, &plan, &out))
    }
}

/// Opens `n` idle connections and measures the server's RSS growth.
fn idle(server: &mut Server, n: usize) -> Result<IdleResult, String> {
    let pid = server.pid.to_string();
    std::thread::sleep(Duration::from_millis(200));
    let before = crate::sys::status_kib(&pid, "VmRSS").ok_or("cannot read the server's RSS")?;
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let c = std::net::TcpStream::connect_timeout(&server.addr, Duration::from_secs(5))
            .map_err(|e| format!("idle connection {i} of {n} failed: {e}"))?;
        conns.push(c);
    }
    // Let the server accept and set up every connection.
    std::thread::sleep(Duration::from_millis(1500));
    if !server.alive() {
        return Err("the server exited while holding idle connections".into());
    }
    let after = crate::sys::status_kib(&pid, "VmRSS").ok_or("cannot read the server's RSS")?;
    drop(conns);
    Ok(IdleResult {
        connections: n,
        rss_before_kib: before,
        rss_after_kib: after,
        bytes_per_connection: after.saturating_sub(before) as f64 * 1024.0 / n.max(1) as f64,
    })
}
