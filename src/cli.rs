//! The `gvhttpd` command line: the flags of `serve`, `models` and `bench`, and the
//! step from `serve`'s flags to a checked [`Config`].
//!
//! Every error a flag can cause names the flag and says what is wrong; clap prints
//! it and exits with status 2, or [`ServeArgs::into_config`] returns it. Durations
//! have one syntax for `serve` and `bench` ([`loadgen::duration`]), so the same bad
//! text gets the same words from both.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand};

use crate::config::{
    Config, GreenReactor, GreenSched, Limits, LogTarget, Model, Scheduling, Timeouts, TokioRuntime,
    UringOptions, Variant,
};

/// One HTTP/1.1 handler under three concurrency models, and a load generator to compare them.
#[derive(Parser, Debug)]
#[command(name = "gvhttpd", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `gvhttpd`'s subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP/1.1 server under one concurrency model.
    Serve(Box<ServeArgs>),
    /// Say which models and variants can run on this machine (exit 1 if any cannot).
    Models,
    /// Load generator (closed or open loop); `bench compare` runs the model comparison.
    Bench(Box<loadgen::cli::BenchArgs>),
}

/// The flags of `gvhttpd serve`.
#[derive(Args, Debug)]
#[command(
    after_help = "Durations: 500ms, 10s, 1.5s, 2m, 1h30m (units ns, us, ms, s, m, h); \
    a bare number is seconds. Sizes: bytes, or 8k, 8KiB, 1MiB (powers of 1024)."
)]
pub struct ServeArgs {
    /// Concurrency model: callback (io_uring state machine), tokio (epoll), green (green threads
    /// on io_uring); or a scheduling variant: tokio+multi, green+steal, green+dedicated (the
    /// model with --tokio-runtime multi-thread, --green-sched steal, --green-reactor dedicated).
    #[arg(long, default_value = "green", value_name = "MODEL", value_parser = model_parser())]
    model: Variant,
    /// Address to listen on: IP:PORT, HOST:PORT (a name that resolves), or :PORT / PORT for
    /// 127.0.0.1 (all interfaces: 0.0.0.0:PORT); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = crate::config::parse_addr, value_name = "ADDR")]
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
    /// Answer the benchmark routes /work, /sleep and /stats (they cost CPU, hold connections
    /// and show the server's counters); --bench-routes=false makes them 404
    /// [default: on when --addr is a loopback address, else off].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = clap::value_parser!(bool))]
    bench_routes: Option<bool>,
    /// The most bytes each connection may have queued in the kernel but not yet sent
    /// (TCP_NOTSENT_LOWAT): bounds the kernel memory a slow reader holds; 0 = no bound
    /// (the kernel's default).
    #[arg(long, default_value = "768KiB", value_parser = parse_lowat, value_name = "SIZE")]
    notsent_lowat: u32,
    /// Access log in the combined log format, appended to PATH, or - for stdout [default: off].
    #[arg(long, value_name = "PATH|-", help_heading = "Logging")]
    access_log: Option<LogTarget>,

    /// Longest request target (414 beyond).
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
    #[arg(long, default_value = "10s", value_parser = parse_timeout, value_name = "DURATION", help_heading = "Timeouts")]
    header_timeout: Duration,
    /// Time allowed to receive a request body (then 408).
    #[arg(long, default_value = "30s", value_parser = parse_timeout, value_name = "DURATION", help_heading = "Timeouts")]
    body_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    #[arg(long, default_value = "60s", value_parser = parse_timeout, value_name = "DURATION", help_heading = "Timeouts")]
    idle_timeout: Duration,
    /// A response write that makes no progress for this long closes the connection.
    #[arg(long, default_value = "30s", value_parser = parse_timeout, value_name = "DURATION", help_heading = "Timeouts")]
    write_timeout: Duration,
    /// Sending one response, however slowly the client reads, takes at most this long
    /// (progress does not restart it); then the connection is cut.
    #[arg(long, default_value = "300s", value_parser = parse_timeout, value_name = "DURATION", help_heading = "Timeouts")]
    response_timeout: Duration,
    /// After SIGINT/SIGTERM, in-flight responses get this long to finish.
    #[arg(long, default_value = "5s", value_parser = parse_timeout, value_name = "DURATION", help_heading = "Timeouts")]
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
    /// green model: one io_uring per worker, or one reactor thread that owns the only ring
    /// and does the I/O the workers hand it (dedicated) [default: per-worker].
    #[arg(long, value_enum, help_heading = "Scheduling")]
    green_reactor: Option<GreenReactor>,

    /// Reverse proxy: requests whose target starts with /proxy/ go to this upstream, the prefix
    /// replaced by / (/proxy/x?y -> /x?y). HOST:PORT, repeatable: upstreams are taken in turn
    /// (round robin). Without it, /proxy/ is 404.
    #[arg(long, value_name = "HOST:PORT", value_parser = crate::config::parse_addr, help_heading = "Proxy")]
    upstream: Vec<SocketAddr>,
    /// A connect to an upstream that takes longer is answered 504.
    #[arg(long, default_value = "5s", value_parser = parse_timeout, value_name = "DURATION", help_heading = "Proxy")]
    upstream_connect_timeout: Duration,
    /// Time allowed for the upstream's response head once the request is sent, and for each
    /// read or write of an exchange: a 504 before the response head, a cut connection after it.
    #[arg(long, default_value = "60s", value_parser = parse_timeout, value_name = "DURATION", help_heading = "Proxy")]
    upstream_timeout: Duration,
    /// Idle keep-alive connections to the upstreams each worker keeps (0: none, every request
    /// connects anew).
    #[arg(long, default_value_t = crate::config::DEFAULT_UPSTREAM_POOL, value_parser = parse_pool, value_name = "N", help_heading = "Proxy")]
    upstream_pool: usize,

    /// Usable stack per green thread, 16KiB to 64MiB (a 64 KiB guard region is added).
    #[arg(long, default_value = "64KiB", value_parser = parse_stack, value_name = "SIZE", help_heading = "Green threads")]
    green_stack_size: usize,
}

impl ServeArgs {
    /// The server's [`Config`], or the error naming the flag that contradicts
    /// `--model` (`--green-sched` with `--model tokio`, say).
    pub fn into_config(self) -> Result<Config, String> {
        let sched = self.scheduling()?;
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
        cfg.notsent_lowat = (self.notsent_lowat > 0).then_some(self.notsent_lowat);
        cfg.access_log = self.access_log;
        cfg.bench_routes = self.bench_routes;
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
        cfg.sched = sched;
        if !self.upstream.is_empty() {
            cfg.upstream = Some(crate::config::Upstreams {
                addrs: self.upstream,
                connect_timeout: self.upstream_connect_timeout,
                timeout: self.upstream_timeout,
                pool: self.upstream_pool,
            });
        }
        Ok(cfg)
    }

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
}

/// What the start-up log line says after the address, model and workers: the
/// settings an operator checks first, and whether the bench routes answer.
pub fn startup_details(cfg: &Config) -> String {
    let slice = if cfg.sched.work_slice.is_zero() {
        "off".to_string()
    } else {
        humantime::format_duration(cfg.sched.work_slice).to_string()
    };
    let log = match &cfg.access_log {
        None => "off".to_string(),
        Some(LogTarget::Stdout) => "stdout".to_string(),
        Some(LogTarget::File(p)) => p.display().to_string(),
    };
    let port = if cfg.reuse_port {
        ", port shared (--reuse-port)"
    } else {
        ""
    };
    let bench = match (cfg.bench_routes(), cfg.bench_routes) {
        (true, Some(true)) => "bench routes on (--bench-routes)",
        (true, _) => "bench routes on (a loopback address)",
        (false, Some(false)) => {
            "bench routes off: /work, /sleep and /stats answer 404 (--bench-routes=false)"
        }
        (false, _) => {
            "bench routes off: /work, /sleep and /stats answer 404 on a non-loopback \
             address (--bench-routes turns them on)"
        }
    };
    let files = match cfg.files_mode() {
        ("sendfile", _) => "files by sendfile".to_string(),
        (_, None) => "files by read and send".to_string(),
        (_, Some(why)) => format!("files by read and send ({why})"),
    };
    format!(
        ", work slice {slice}, max-conns {}, buffer memory {} MiB, access log {log}{port}, \
         {files}, {bench}",
        cfg.max_conns,
        cfg.max_buffer_memory >> 20
    )
}

/// `--model`'s values: every row, so `--help` lists them.
fn model_parser() -> impl clap::builder::TypedValueParser<Value = Variant> {
    clap::builder::PossibleValuesParser::new(Variant::ALL.map(|v| v.name()))
        .try_map(|s| s.parse::<Variant>())
}

fn parse_size(s: &str) -> Result<usize, String> {
    let n = crate::config::parse_size(s)?;
    usize::try_from(n).map_err(|_| format!("'{s}' is too large"))
}

/// `--max-buffer-memory`: a size greater than zero.
fn parse_budget(s: &str) -> Result<usize, String> {
    match parse_size(s)? {
        0 => Err("must be greater than zero".into()),
        n => Ok(n),
    }
}

/// `--notsent-lowat`: 0 (no bound) or 16 KiB to 1 GiB; below 16 KiB every write
/// would wake for a few segments acknowledged.
fn parse_lowat(s: &str) -> Result<u32, String> {
    match parse_size(s)? {
        0 => Ok(0),
        n if n < 16 << 10 => Err(format!("'{s}' is below 16KiB (0 turns the bound off)")),
        n if n > 1 << 30 => Err(format!("'{s}' is more than 1GiB")),
        n => Ok(n as u32),
    }
}

/// A timeout: a duration ([`loadgen::duration`]) greater than zero.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = loadgen::duration::parse(s)?;
    if d.is_zero() {
        return Err(loadgen::duration::NOT_ZERO.into());
    }
    Ok(d)
}

/// `--work-slice`: a duration up to 1s; 0 turns slicing off.
fn parse_slice(s: &str) -> Result<Duration, String> {
    let d = loadgen::duration::parse(s)?;
    if d > Duration::from_secs(1) {
        return Err(format!("'{s}' is longer than 1s"));
    }
    Ok(d)
}

/// `--upstream-pool`: 0 to 65536 idle connections per worker.
fn parse_pool(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if n > 65536 {
        return Err(format!("{n} is more than 65536"));
    }
    Ok(n)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Result<Config, String> {
        let argv = ["gvhttpd", "serve"].iter().chain(args);
        match Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .command
        {
            Command::Serve(a) => a.into_config(),
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn bench_routes_flag_forms() {
        let routes = |args: &[&str]| serve(args).unwrap().bench_routes;
        assert_eq!(routes(&[]), None);
        assert_eq!(routes(&["--bench-routes"]), Some(true));
        assert_eq!(routes(&["--bench-routes=true"]), Some(true));
        assert_eq!(routes(&["--bench-routes=false"]), Some(false));
        // Without `=`, the next word is not taken as its value.
        let e = serve(&["--bench-routes", "false"]).unwrap_err();
        assert!(e.contains("unexpected argument 'false'"), "{e}");
        let e = serve(&["--bench-routes=no"]).unwrap_err();
        assert!(e.contains("--bench-routes"), "{e}");
        assert!(!serve(&["--addr", "0.0.0.0:0"]).unwrap().bench_routes());
    }

    #[test]
    fn durations_and_their_errors() {
        let cfg = serve(&["--idle-timeout", "1m30s", "--work-slice", "0"]).unwrap();
        assert_eq!(cfg.timeouts.idle, Duration::from_secs(90));
        assert_eq!(cfg.sched.work_slice, Duration::ZERO);
        let e = serve(&["--header-timeout", "10 parsecs"]).unwrap_err();
        assert!(e.contains("--header-timeout <DURATION>"), "{e}");
        assert!(
            e.contains(&loadgen::duration::parse("10 parsecs").unwrap_err()),
            "{e}"
        );
        let e = serve(&["--idle-timeout", "0s"]).unwrap_err();
        assert!(e.contains(loadgen::duration::NOT_ZERO), "{e}");
        let e = serve(&["--work-slice", "2s"]).unwrap_err();
        assert!(e.contains("'2s' is longer than 1s"), "{e}");
    }

    #[test]
    fn knobs_that_contradict_the_model_are_refused() {
        let e = serve(&["--model", "tokio", "--green-sched", "steal"]).unwrap_err();
        assert_eq!(e, "--green-sched applies to --model green only (not tokio)");
        let e = serve(&["--model", "green+steal", "--green-sched", "local"]).unwrap_err();
        assert!(e.contains("contradicts --model green+steal"), "{e}");
    }

    #[test]
    fn startup_details_say_whether_the_bench_routes_answer() {
        let d = |args: &[&str]| startup_details(&serve(args).unwrap());
        assert!(d(&["--addr", "127.0.0.1:0"]).ends_with("bench routes on (a loopback address)"));
        assert!(d(&["--addr", "0.0.0.0:0"]).contains("/stats answer 404 on a non-loopback"));
        assert!(d(&["--bench-routes=false"]).contains("answer 404 (--bench-routes=false)"));
    }

    #[test]
    fn startup_details_say_how_files_are_sent() {
        let d = |args: &[&str]| startup_details(&serve(args).unwrap());
        assert!(d(&["--model", "tokio"]).contains("files by sendfile"));
        // The io_uring models send by sendfile where the ring has
        // IORING_FEAT_FAST_POLL, else they read and send and say why (the test
        // process does not set GVHTTPD_ZERO_COPY).
        let callback = d(&["--model", "callback"]);
        match crate::uring::probe::zero_copy_sends() {
            Ok(()) => assert!(callback.contains("files by sendfile"), "{callback}"),
            Err(why) => assert!(
                callback.contains(&format!("files by read and send ({why})")),
                "{callback}"
            ),
        }
        // GVHTTPD_ZERO_COPY=off: every model reads and sends, and says so.
        for model in ["callback", "tokio", "green"] {
            let mut off = serve(&["--model", model]).unwrap();
            off.zero_copy = Some(false);
            let line = startup_details(&off);
            assert!(
                line.contains("files by read and send (GVHTTPD_ZERO_COPY=off)"),
                "{line}"
            );
        }
    }

    #[test]
    fn notsent_lowat_is_a_bound_or_off() {
        let lowat = |args: &[&str]| serve(args).map(|c| c.notsent_lowat);
        assert_eq!(lowat(&[]), Ok(Some(crate::config::DEFAULT_NOTSENT_LOWAT)));
        assert_eq!(lowat(&["--notsent-lowat", "256KiB"]), Ok(Some(256 << 10)));
        assert_eq!(lowat(&["--notsent-lowat", "0"]), Ok(None));
        for (bad, why) in [
            ("4k", "is below 16KiB (0 turns the bound off)"),
            ("2GiB", "is more than 1GiB"),
            ("lots", "is not a size"),
        ] {
            let e = lowat(&["--notsent-lowat", bad]).unwrap_err();
            assert!(e.contains("--notsent-lowat") && e.contains(why), "{e}");
        }
    }
}
