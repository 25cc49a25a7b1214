//! `gvhttpd`: thin main. Flags → [`Config`] → `models::serve`; `bench` → `loadgen`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand};
use gvhttpd::config::{
    plural, Config, GreenReactor, GreenSched, Limits, LogTarget, Model, Scheduling, Timeouts,
    TokioRuntime, UringOptions, Variant,
};
use gvhttpd::log::{self, Level};
use gvhttpd::models::{self, ServeError};
use gvhttpd::shutdown::Shutdown;

/// jemalloc gives a burst's memory back to the kernel after it (see Cargo.toml).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// One HTTP/1.1 handler under three concurrency models, and a load generator to compare them.
#[derive(Parser, Debug)]
#[command(name = "gvhttpd", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP/1.1 server under one concurrency model.
    Serve(Box<ServeArgs>),
    /// Say which models and variants can run on this machine (exit 1 if any cannot).
    Models,
    /// Load generator (closed or open loop); `bench compare` runs the model comparison.
    Bench(Box<loadgen::cli::BenchArgs>),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Concurrency model: callback (io_uring state machine), tokio (epoll), green (green threads
    /// on io_uring); or a scheduling variant: tokio+multi, green+steal, green+dedicated (the
    /// model with --tokio-runtime multi-thread, --green-sched steal, --green-reactor dedicated).
    #[arg(long, default_value = "green", value_name = "MODEL", value_parser = model_parser())]
    model: Variant,
    /// Address to listen on: IP:PORT, HOST:PORT (a name that resolves), or :PORT / PORT for
    /// 127.0.0.1 (all interfaces: 0.0.0.0:PORT); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_addr, value_name = "ADDR")]
    addr: SocketAddr,
    /// Share the port with servers already listening on it (SO_REUSEPORT; the kernel splits
    /// connections between them). Without it, a port in use makes serve exit with an error.
    #[arg(long)]
    reuse_port: bool,
    /// Worker threads, each with its own listener and event loop [default: CPUs available].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: Option<u16>,
    /// Directory served under /static/ (without it, /static/ is always 404).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Most connections open at once; beyond it a new connection gets a 503 and is closed.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_conns: u32,
    /// Budget for connection buffers beyond each connection's base 4 KiB ones (large heads,
    /// bodies, replies, file chunks): over it, reads wait and new connections get a 503
    /// [default: a quarter of the machine's memory].
    #[arg(long, value_parser = parse_budget, value_name = "SIZE")]
    max_buffer_memory: Option<usize>,
    /// Access log in the combined log format, appended to PATH, or - for stdout [default: off].
    #[arg(long, value_name = "PATH|-", help_heading = "Logging")]
    access_log: Option<LogTarget>,

    /// Longest request target (414 beyond). Sizes: bytes or 8k, 8KiB, 1MiB (powers of 1024).
    #[arg(long, default_value = "8KiB", value_parser = parse_size, value_name = "SIZE", help_heading = "Limits")]
    max_target: usize,
    /// Most header fields per request (431 beyond).
    #[arg(long, default_value_t = Limits::default().max_headers, help_heading = "Limits")]
    max_headers: usize,
    /// Largest request head, request line + headers (431 beyond).
    #[arg(long, default_value = "16KiB", value_parser = parse_size, value_name = "SIZE", help_heading = "Limits")]
    max_head: usize,
    /// Largest request body (413 beyond).
    #[arg(long, default_value = "1MiB", value_parser = parse_size, value_name = "SIZE", help_heading = "Limits")]
    max_body: usize,

    /// Time allowed from a request's first byte to the end of its headers (then 408).
    #[arg(long, default_value = "10s", value_parser = parse_duration, help_heading = "Timeouts")]
    header_timeout: Duration,
    /// Time allowed to receive a request body (then 408).
    #[arg(long, default_value = "30s", value_parser = parse_duration, help_heading = "Timeouts")]
    body_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    #[arg(long, default_value = "60s", value_parser = parse_duration, help_heading = "Timeouts")]
    idle_timeout: Duration,
    /// A response write that makes no progress for this long closes the connection.
    #[arg(long, default_value = "30s", value_parser = parse_duration, help_heading = "Timeouts")]
    write_timeout: Duration,
    /// Sending one response, however slowly the client reads, takes at most this long
    /// (progress does not restart it); then the connection is cut.
    #[arg(long, default_value = "300s", value_parser = parse_duration, help_heading = "Timeouts")]
    response_timeout: Duration,
    /// After SIGINT/SIGTERM, in-flight responses get this long to finish.
    #[arg(long, default_value = "5s", value_parser = parse_duration, help_heading = "Timeouts")]
    shutdown_grace: Duration,

    /// Submission queue entries per io_uring (callback, green).
    #[arg(long, default_value_t = UringOptions::default().entries, value_parser = parse_entries, help_heading = "io_uring")]
    uring_entries: u32,
    /// Use a kernel SQ polling thread (IORING_SETUP_SQPOLL; costs a core).
    #[arg(long, help_heading = "io_uring")]
    uring_sqpoll: bool,
    /// The longest a CPU-bound request (/work) runs before it gives the worker back to other
    /// connections, e.g. 500us, 2ms; 0 = never (it runs to the end).
    #[arg(long, default_value = "500us", value_parser = parse_slice, value_name = "DURATION", help_heading = "Scheduling")]
    work_slice: Duration,
    /// tokio model: one current_thread runtime per worker, or one work-stealing multi-thread
    /// runtime with --workers threads [default: per-worker].
    #[arg(long, value_enum, help_heading = "Scheduling")]
    tokio_runtime: Option<TokioRuntime>,
    /// green model: green threads stay on the worker that accepted them (local), or idle
    /// workers steal runnable green threads from busy ones (steal) [default: local].
    #[arg(long, value_enum, help_heading = "Scheduling")]
    green_sched: Option<GreenSched>,
    /// green model: one io_uring per worker, or one dedicated reactor thread owning the only
    /// ring (the seed's design) [default: per-worker].
    #[arg(long, value_enum, help_heading = "Scheduling")]
    green_reactor: Option<GreenReactor>,

    /// Usable stack per green thread, 16KiB to 64MiB (a 64 KiB guard region is added).
    #[arg(long, default_value = "64KiB", value_parser = parse_stack, value_name = "SIZE", help_heading = "Green threads")]
    green_stack_size: usize,
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    gvhttpd::config::parse_addr(s)
}

fn parse_size(s: &str) -> Result<usize, String> {
    let n = gvhttpd::config::parse_size(s)?;
    usize::try_from(n).map_err(|_| format!("'{s}' is too large"))
}

fn parse_budget(s: &str) -> Result<usize, String> {
    match parse_size(s)? {
        0 => Err("must be greater than zero".into()),
        n => Ok(n),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("'{s}' is not a duration like 500ms, 10s or 2m ({e})"))?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

fn parse_slice(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("'{s}' is not a duration like 500us, 2ms or 0 ({e})"))?;
    if d > Duration::from_secs(1) {
        return Err(format!("'{s}' is longer than 1s"));
    }
    Ok(d)
}

fn parse_entries(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if !(8..=32768).contains(&n) || !n.is_power_of_two() {
        return Err(format!("{n} must be a power of two between 8 and 32768"));
    }
    Ok(n)
}

fn parse_stack(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    if !(16 * 1024..=64 * 1024 * 1024).contains(&n) {
        return Err(format!(
            "{s} ({n} bytes) must be between 16KiB (16384) and 64MiB (67108864)"
        ));
    }
    Ok(n)
}

/// One scheduling knob: the variant's value unless the flag is given; a flag that
/// contradicts `--model`'s variant, or names another model's knob, is an error.
fn knob<T: Copy + PartialEq + Default + clap::ValueEnum>(
    flag: &str,
    given: Option<T>,
    from_variant: T,
    model: Variant,
    owner: Model,
) -> Result<T, String> {
    let Some(v) = given else {
        return Ok(from_variant);
    };
    let name = |x: T| {
        x.to_possible_value()
            .map_or(String::new(), |p| p.get_name().to_string())
    };
    if model.model() != owner {
        return Err(format!(
            "--{flag} applies to --model {owner} only (not {model})"
        ));
    }
    if from_variant != T::default() && v != from_variant {
        return Err(format!(
            "--{flag} {} contradicts --model {model} (which means --{flag} {})",
            name(v),
            name(from_variant)
        ));
    }
    Ok(v)
}

impl ServeArgs {
    fn scheduling(&self) -> Result<Scheduling, String> {
        let v = self.model;
        let from = v.scheduling();
        Ok(Scheduling {
            tokio_runtime: knob(
                "tokio-runtime",
                self.tokio_runtime,
                from.tokio_runtime,
                v,
                Model::Tokio,
            )?,
            green_sched: knob(
                "green-sched",
                self.green_sched,
                from.green_sched,
                v,
                Model::Green,
            )?,
            green_reactor: knob(
                "green-reactor",
                self.green_reactor,
                from.green_reactor,
                v,
                Model::Green,
            )?,
            work_slice: self.work_slice,
        })
    }

    fn into_config(self) -> Config {
        let mut cfg = Config::new(self.model.model(), self.addr);
        if let Some(w) = self.workers {
            cfg.workers = usize::from(w);
        }
        cfg.root = self.root;
        cfg.max_conns = self.max_conns as usize;
        if let Some(m) = self.max_buffer_memory {
            cfg.max_buffer_memory = m;
        }
        cfg.reuse_port = self.reuse_port;
        cfg.access_log = self.access_log;
        cfg.limits = Limits {
            max_target: self.max_target,
            max_headers: self.max_headers,
            max_head: self.max_head,
            max_body: self.max_body,
        };
        cfg.timeouts = Timeouts {
            header: self.header_timeout,
            body: self.body_timeout,
            idle: self.idle_timeout,
            write: self.write_timeout,
            response: self.response_timeout,
            shutdown_grace: self.shutdown_grace,
        };
        cfg.uring = UringOptions {
            entries: self.uring_entries,
            sqpoll: self.uring_sqpoll,
        };
        cfg.green_stack_size = self.green_stack_size;
        cfg
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let started = std::time::Instant::now();
    let sched = match args.scheduling() {
        Ok(s) => s,
        Err(e) => {
            log::event(Level::Error, format_args!("{e}"));
            return ExitCode::from(2);
        }
    };
    let mut cfg = args.into_config();
    cfg.sched = sched;
    let (code, totals) = run_server(cfg);
    // The final line: the error log's end of this run, whatever ended it.
    log::event(
        Level::Info,
        format_args!(
            "{}",
            log::exit_line(code, started.elapsed(), totals.as_ref())
        ),
    );
    ExitCode::from(code)
}

fn run_server(cfg: Config) -> (u8, Option<log::Totals>) {
    if let Some(LogTarget::File(path)) = &cfg.access_log {
        // Fail now, with the path, rather than once the first request arrives.
        if let Err(e) = log::open_target(&LogTarget::File(path.clone())) {
            log::event(
                Level::Error,
                format_args!("cannot open --access-log {}: {e}", path.display()),
            );
            return (2, None);
        }
    }
    let shutdown = Shutdown::new(cfg.timeouts.shutdown_grace);
    if let Err(e) = shutdown.install_signal_handlers() {
        log::event(
            Level::Error,
            format_args!("cannot install signal handlers: {e}"),
        );
        return (1, None);
    }
    let (model, workers) = (cfg.model_label(), cfg.workers);
    let extra = format!(
        ", work slice {}, max-conns {}, buffer memory {} MiB, access log {}{}",
        if cfg.sched.work_slice.is_zero() {
            "off".to_string()
        } else {
            humantime::format_duration(cfg.sched.work_slice).to_string()
        },
        cfg.max_conns,
        cfg.max_buffer_memory >> 20,
        match &cfg.access_log {
            None => "off".to_string(),
            Some(LogTarget::Stdout) => "stdout".to_string(),
            Some(LogTarget::File(p)) => p.display().to_string(),
        },
        if cfg.reuse_port {
            ", port shared (--reuse-port)"
        } else {
            ""
        }
    );
    let result = models::serve(&cfg, shutdown, |addr| {
        // The error log's start line first: once the readiness line is out, a
        // signal may come at once, and its line must follow this one.
        log::startup(addr, &model, workers, &extra);
        // Tests and scripts wait for this exact line before connecting. A closed
        // stdout must not take the server down (`println!` would panic).
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "gvhttpd: listening on http://{addr} (model {model}, {})",
            plural(workers, "worker", "workers")
        );
        let _ = out.flush();
    });
    match result {
        Ok(totals) => (0, Some(totals)),
        Err(e @ (ServeError::Unavailable(_) | ServeError::Config(_))) => {
            log::event(Level::Error, format_args!("{e}"));
            (2, None)
        }
        Err(e) => {
            log::event(Level::Error, format_args!("{e}"));
            (1, None)
        }
    }
}

fn models() -> ExitCode {
    let mut all = true;
    for v in Variant::ALL {
        match models::check_variant(v) {
            Ok(()) => println!("{v:<16} available"),
            Err(e) => {
                all = false;
                println!("{v:<16} unavailable: {e}");
            }
        }
    }
    if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Models => models(),
        Command::Bench(args) => loadgen::cli::run(*args),
    }
}

/// `--model`'s values: every row, so `--help` lists them.
fn model_parser() -> impl clap::builder::TypedValueParser<Value = Variant> {
    clap::builder::PossibleValuesParser::new(Variant::ALL.map(|v| v.name()))
        .try_map(|s| s.parse::<Variant>())
}
