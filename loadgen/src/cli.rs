//! `gvhttpd bench` flags, their validation into a [`Plan`], and the entry point.
//!
//! Every error the user can cause is one line naming the flag or the cause, and
//! exits with status 2 (clap's own syntax errors use clap's format, also status 2).

use crate::compare::CompareArgs;
use crate::engine::{self, Plan, Progress};
use crate::hist;
use crate::report::{self, Report, RunConfig, ServerSource};
use crate::target::{self, RequestSpec, Url};
use clap::{Args, Subcommand};
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

/// `gvhttpd bench`: an HTTP/1.1 load generator (closed or open loop).
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// Target URL, as wrk and oha take it (same as --url).
    #[arg(value_name = "URL", conflicts_with = "url")]
    pub target: Option<String>,
    /// Accepted for wrk compatibility and ignored: the latency distribution is always printed.
    #[arg(long)]
    pub latency: bool,
    #[command(flatten)]
    pub load: LoadArgs,
}

impl BenchArgs {
    /// The load flags, with the positional URL folded into `--url`.
    pub fn load_args(&self) -> LoadArgs {
        let mut load = self.load.clone();
        if let Some(t) = &self.target {
            load.url = Some(t.clone());
        }
        load
    }
}

/// Subcommands of `gvhttpd bench`.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// Start `gvhttpd serve` for each model, run the scenario matrix, write results/.
    Compare(Box<CompareArgs>),
    /// Combine `--json` reports of runs made at the same time from several load
    /// machines against one server (exact histogram merge, summed counts).
    Merge(crate::merge::MergeArgs),
}

/// Flags of one load run.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Target URL (http:// only; any host, resolved via DNS); the URL may also be
    /// given without the flag.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Connections to keep open.
    #[arg(
        short = 'c',
        long = "connections",
        value_name = "N",
        default_value_t = 10
    )]
    pub connections: u64,
    /// Load threads, one event loop each [default: number of --cpus, else 1].
    #[arg(short = 't', long, value_name = "N")]
    pub threads: Option<u64>,
    /// Pin load threads to these CPUs (e.g. 1, 2-3, 1,3).
    #[arg(long, value_name = "LIST")]
    pub cpus: Option<String>,
    /// Measured duration (e.g. 10s, 500ms, 2m) [default: 10s unless -n is given].
    #[arg(short = 'd', long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Stop after this many requests (counted after warm-up).
    #[arg(short = 'n', long = "requests", value_name = "COUNT")]
    pub requests: Option<u64>,
    /// Load before measuring starts; excluded from all results.
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub warmup: String,
    /// Open loop: offer this many requests per second in total (wrk2's -R; latency
    /// corrected for coordinated omission); without it, closed loop. Little's law:
    /// -c must be at least rate x latency (e.g. 1000/s x 50 ms = 50).
    #[arg(short = 'R', long, value_name = "REQ_PER_S")]
    pub rate: Option<f64>,
    /// Wait until this wall-clock time before starting: Unix seconds (e.g.
    /// `$(date -d '+10 sec' +%s)`) or HH:MM[:SS] UTC today. Runs from several load
    /// machines with one --start-at and one --duration can be combined by `bench merge`.
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<String>,
    /// Connect and request timeout.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub timeout: String,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Request method.
    #[arg(short = 'm', long, value_name = "METHOD", default_value = "GET")]
    pub method: String,
    /// Request body.
    #[arg(long, value_name = "TEXT", conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Request body read from a file.
    #[arg(long, value_name = "PATH")]
    pub body_file: Option<std::path::PathBuf>,
    /// Another path on the same host (repeatable): every connection requests the
    /// URL's path and these in turn (e.g. a mix of static files), starting at a
    /// different one per connection.
    #[arg(long = "also", value_name = "PATH")]
    pub also: Vec<String>,
    /// Requests in flight per connection.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub pipeline: u64,
    /// A new connection for every request (`Connection: close`).
    #[arg(long)]
    pub no_keepalive: bool,
    /// Fix every connection's receive buffer at this many bytes (`SO_RCVBUF`,
    /// which the kernel doubles; it turns off receive-buffer autotuning), so that
    /// every server meets the same receive window: on loopback the window
    /// decides whether a large response is sent in the server's `send` or later
    /// from the generator's reads, i.e. on whose CPU the transfer is counted.
    #[arg(long = "recv-buffer", value_name = "BYTES")]
    pub recv_buffer: Option<u64>,
    /// Write the full report (timeline, histograms, checks) as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<std::path::PathBuf>,
    /// Write the percentile spectrum in HdrHistogram's .hgrm format.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<std::path::PathBuf>,
    /// Server process to watch (CPU per request, peak RSS).
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// No progress line.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Print the progress line even when stderr is not a terminal.
    #[arg(long, conflicts_with = "quiet")]
    pub progress: bool,
    /// No summary on stdout (with --json).
    #[arg(long, hide = true)]
    pub no_summary: bool,
}

/// A user error: one line, exit status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs `gvhttpd bench` and maps the outcome to an exit status.
pub fn run(args: BenchArgs) -> ExitCode {
    let result = match &args.command {
        Some(BenchCommand::Compare(c)) => crate::compare::run(c),
        Some(BenchCommand::Merge(m)) => crate::merge::run(m),
        None => run_load(&args.load_args()).map(|_| ()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("gvhttpd bench: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            eprintln!("gvhttpd bench: {e}");
            ExitCode::from(1)
        }
    }
}

/// Why `bench` failed: the user's input (exit 2) or the run itself (exit 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Usage(CliError),
    Run(String),
}

impl From<CliError> for Failure {
    fn from(e: CliError) -> Self {
        Failure::Usage(e)
    }
}

/// Validates, runs, prints and writes one load run; returns its report.
pub fn run_load(a: &LoadArgs) -> Result<Report, Failure> {
    let (plan, config) = plan(a)?;
    if let Some(rate) = plan.rate {
        let per_conn = rate / plan.connections as f64;
        if per_conn > 2_000.0 {
            eprintln!(
                "gvhttpd bench: warning: --rate {rate} over -c {} asks {per_conn:.0} req/s of each \
                 connection (under 0.5 ms per response); raise -c or expect late sends",
                plan.connections
            );
        }
    }
    crate::sys::raise_nofile(plan.connections as u64 + 64);
    engine::stop_on_sigint();
    // On a terminal the header shows what is running while it runs, as wrk does;
    // into a pipe or file the summary goes in one piece at the end.
    let header_first = !a.no_summary && std::io::stdout().is_terminal();
    if header_first {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(report::header(&config).as_bytes());
        let _ = out.flush();
    }
    let out = engine::run(&plan).map_err(Failure::Run)?;
    let report = Report::new(config, &plan, &out);
    if !a.no_summary {
        if header_first {
            print!("{}", report::results(&report));
        } else {
            print!("{}", report::summary(&report));
        }
    }
    if let Some(path) = &a.json {
        std::fs::write(path, report.to_json())
            .map_err(|e| Failure::Run(format!("cannot write --json {}: {e}", path.display())))?;
    }
    if let Some(path) = &a.hgrm {
        std::fs::write(path, hist::hgrm(&out.latencies.corrected))
            .map_err(|e| Failure::Run(format!("cannot write --hgrm {}: {e}", path.display())))?;
    }
    if report.result.successes == 0 {
        return Err(Failure::Run(no_success(&report.result)));
    }
    Ok(report)
}

/// Why a run had no successful response, with the counts that say so (the line
/// stands on its own: with `--no-summary` nothing is printed above it).
fn no_success(r: &crate::report::RunResult) -> String {
    if r.requests > 0 {
        let codes: Vec<String> = r
            .status_codes
            .iter()
            .map(|(code, n)| format!("[{code}] {n}"))
            .collect();
        return format!(
            "no successful responses: all {} had a status of 400 or more (status codes: {})",
            r.requests,
            codes.join(", ")
        );
    }
    let k = &r.counts;
    let errors: Vec<String> = [
        ("connect refused", k.connect_refused),
        ("connect timeout", k.connect_timeout),
        ("request timeout", k.request_timeout),
        ("reset/EOF", k.reset_eof),
        ("write", k.write_error),
        ("parse", k.parse_error),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(what, n)| format!("{what} {n}"))
    .collect();
    if errors.is_empty() {
        "no successful responses: no response arrived".into()
    } else {
        format!(
            "no successful responses: no response arrived (socket errors: {})",
            errors.join(", ")
        )
    }
}

/// Turns flags into a validated plan (resolving and probing the target).
pub fn plan(a: &LoadArgs) -> Result<(Plan, RunConfig), CliError> {
    let err = |m: String| CliError(m);
    if a.connections == 0 {
        return Err(err("-c/--connections must be at least 1".into()));
    }
    if a.connections > 1 << 20 {
        return Err(err("-c/--connections must be at most 1048576".into()));
    }
    if a.pipeline == 0 || a.pipeline > 1024 {
        return Err(err("--pipeline must be between 1 and 1024".into()));
    }
    if a.no_keepalive && a.pipeline > 1 {
        return Err(err(
            "--pipeline needs keep-alive; drop --no-keepalive".into()
        ));
    }
    if a.threads == Some(0) {
        return Err(err("-t/--threads must be at least 1".into()));
    }
    let recv_buffer = a
        .recv_buffer
        .map(|n| recv_buffer(n).map_err(|e| err(format!("--recv-buffer {n}: {e}"))))
        .transpose()?;
    if a.requests == Some(0) {
        return Err(err("-n/--requests must be at least 1".into()));
    }
    if let Some(r) = a.rate {
        if !(r.is_finite() && r > 0.0) {
            return Err(err(format!("--rate must be a positive number, not {r}")));
        }
    }
    let duration = match (&a.duration, a.requests) {
        (Some(d), _) => Some(parse_duration(d).map_err(|e| err(format!("-d/--duration: {e}")))?),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    if duration == Some(Duration::ZERO) {
        return Err(err("-d/--duration must be more than 0".into()));
    }
    let warmup = parse_duration(&a.warmup).map_err(|e| err(format!("--warmup: {e}")))?;
    let timeout = parse_duration(&a.timeout).map_err(|e| err(format!("--timeout: {e}")))?;
    let start_at = match &a.start_at {
        Some(t) => Some(parse_start_at(t, std::time::SystemTime::now()).map_err(err)?),
        None => None,
    };
    if timeout.is_zero() {
        return Err(err("--timeout must be more than 0".into()));
    }
    let cpus = match &a.cpus {
        Some(s) => Some(crate::sys::parse_cpu_list(s).map_err(|e| err(format!("--cpus: {e}")))?),
        None => None,
    };
    let raw_url = a.url.as_deref().ok_or_else(|| {
        err("missing --url or URL argument (e.g. gvhttpd bench http://127.0.0.1:8080/)".into())
    })?;
    let url = Url::parse(raw_url).map_err(err)?;
    let body = match (&a.body, &a.body_file) {
        (Some(b), _) => b.as_bytes().to_vec(),
        (None, Some(p)) => {
            std::fs::read(p).map_err(|e| err(format!("--body-file {}: {e}", p.display())))?
        }
        (None, None) => Vec::new(),
    };
    let method = a.method.to_ascii_uppercase();
    let serialise = |url: &Url| {
        target::serialise(&RequestSpec {
            method: &method,
            url,
            headers: &a.headers,
            body: &body,
            keepalive: !a.no_keepalive,
        })
    };
    let request = serialise(&url).map_err(err)?;
    let mut rotation = Vec::new();
    if !a.also.is_empty() {
        rotation.push(request.clone());
        for p in &a.also {
            if !p.starts_with('/')
                || p.bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
            {
                return Err(err(format!(
                    "--also '{p}': expected a path starting with / (no spaces)"
                )));
            }
            let other = Url {
                path: p.clone(),
                ..url.clone()
            };
            rotation.push(serialise(&other).map_err(err)?);
        }
    }
    let addrs = url.resolve().map_err(err)?;
    let addr = target::preflight(&addrs, timeout.min(Duration::from_secs(5))).map_err(err)?;
    let connections = a.connections as usize;
    let threads = a
        .threads
        .map(|t| t as usize)
        .unwrap_or_else(|| cpus.as_ref().map_or(1, Vec::len))
        .clamp(1, connections);
    let tty = std::io::stderr().is_terminal();
    let progress = match (a.quiet, a.progress, tty) {
        (true, _, _) => Progress::Off,
        (false, true, false) => Progress::Lines,
        (false, _, true) => Progress::Line,
        (false, false, false) => Progress::Off,
    };
    if let Some(pid) = a.server_pid {
        if crate::sys::process_cpu(&pid.to_string()).is_none() {
            return Err(err(format!("--server-pid {pid}: no such process")));
        }
    }
    let server = match a.server_pid {
        Some(pid) => ServerSource::Given { pid },
        None => find_server(addr),
    };
    let server_pid = match &server {
        ServerSource::Given { pid } | ServerSource::Detected { pid, .. } => Some(*pid),
        _ => None,
    };
    let server_cores = server_pid.and_then(|p| crate::sys::allowed_cpus(&p.to_string()));
    let plan = Plan {
        addr,
        request,
        rotation,
        head_request: method == "HEAD",
        connections,
        threads,
        cpus: cpus.clone(),
        pipeline: a.pipeline as usize,
        keepalive: !a.no_keepalive,
        recv_buffer: recv_buffer.map(|(asked, _)| asked),
        duration,
        requests: a.requests,
        warmup,
        rate: a.rate,
        timeout,
        progress,
        start_at,
        server_pid,
        backend_pid: None,
        server_cores,
    };
    let config = RunConfig {
        url: raw_url.to_string(),
        also: a.also.clone(),
        method,
        connections,
        threads,
        cpus,
        pipeline: plan.pipeline,
        keepalive: plan.keepalive,
        recv_buffer: recv_buffer.map(|(_, effective)| effective),
        duration_s: duration.map(|d| d.as_secs_f64()),
        requests: a.requests,
        warmup_s: warmup.as_secs_f64(),
        rate: a.rate,
        timeout_s: timeout.as_secs_f64(),
        server: Some(server),
    };
    Ok((plan, config))
}

/// Without `--server-pid`: the server is the one other process listening on the
/// target's port, when the target is an address of this machine.
fn find_server(addr: std::net::SocketAddr) -> ServerSource {
    // An address this machine can bind to is one of its own.
    let local = addr.ip().is_loopback()
        || std::net::TcpListener::bind(std::net::SocketAddr::new(addr.ip(), 0)).is_ok();
    if !local {
        return ServerSource::Remote;
    }
    let port = addr.port();
    let all = crate::sys::listening_pids(port);
    let me = std::process::id();
    let others: Vec<u32> = all.iter().copied().filter(|&p| p != me).collect();
    match others[..] {
        [pid] => ServerSource::Detected {
            pid,
            name: crate::sys::process_name(pid).unwrap_or_else(|| "?".into()),
        },
        [] if all.contains(&me) => ServerSource::NotAttributed {
            reason: format!("the listener on port {port} is inside this process"),
        },
        [] => ServerSource::NotAttributed {
            reason: format!("no process this user can inspect listens on port {port}"),
        },
        _ => ServerSource::NotAttributed {
            reason: format!(
                "{} processes listen on port {port} (pids {})",
                others.len(),
                others
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    }
}

/// Parses a duration: `10s`, `500ms`, `2m`, `1h30m` or a bare number of seconds
/// (the one syntax `serve` shares, see [`crate::duration`]).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::duration::parse(s)
}

/// Parses `--start-at`: Unix seconds (fractions allowed) or `HH:MM[:SS]` UTC of
/// the day of `now`. A time already past is an error naming how long ago it was.
pub fn parse_start_at(
    s: &str,
    now: std::time::SystemTime,
) -> Result<std::time::SystemTime, String> {
    use std::time::UNIX_EPOCH;
    let bad = || format!("--start-at: bad time '{s}': expected Unix seconds or HH:MM[:SS] UTC");
    let t = s.trim();
    let at = if t.contains(':') {
        let parts: Vec<&str> = t.split(':').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty() || p.len() > 2) {
            return Err(bad());
        }
        let n: Vec<u64> = parts
            .iter()
            .map(|p| p.parse::<u64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let (h, m, sec) = (n[0], n[1], n.get(2).copied().unwrap_or(0));
        if h > 23 || m > 59 || sec > 59 {
            return Err(bad());
        }
        let today = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) / 86_400 * 86_400;
        UNIX_EPOCH + Duration::from_secs(today + h * 3600 + m * 60 + sec)
    } else {
        let v: f64 = t.parse().map_err(|_| bad())?;
        if !(v.is_finite() && v > 0.0 && v < 1e11) {
            return Err(bad());
        }
        UNIX_EPOCH + Duration::from_secs_f64(v)
    };
    match now.duration_since(at) {
        Ok(ago) if ago > Duration::from_secs(1) => Err(format!(
            "--start-at {s} was {:.1}s ago; give a time in the future",
            ago.as_secs_f64()
        )),
        _ => Ok(at),
    }
}

/// Check `--recv-buffer`: between 4 KiB and 1 GiB, and granted whole by the
/// kernel (it caps `SO_RCVBUF` at `net.core.rmem_max` silently, which would
/// make the runs' conditions other than asked). Returns the size to ask for and the
/// buffer the kernel gives (twice it: room for its bookkeeping), read back from
/// a socket that is never connected.
fn recv_buffer(n: u64) -> Result<(usize, u64), String> {
    if !(4096..=1 << 30).contains(&n) {
        return Err("must be between 4096 and 1073741824 bytes".into());
    }
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .map_err(|e| format!("cannot open a socket to check it: {e}"))?;
    let asked = n as usize;
    sock.set_recv_buffer_size(asked)
        .map_err(|e| format!("the kernel refused it: {e}"))?;
    let got = sock
        .recv_buffer_size()
        .map_err(|e| format!("cannot read it back: {e}"))? as u64;
    if got < 2 * n {
        let max = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into());
        return Err(format!(
            "the kernel caps a receive buffer at net.core.rmem_max = {max} bytes; \
             ask for at most that or raise the sysctl"
        ));
    }
    Ok((asked, got))
}
