//! `gvhttpd`: thin main. Flags ([`gvhttpd::cli`]) → [`Config`] → `models::serve` →
//! exit status; `bench` → `loadgen`.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use gvhttpd::cli::{self, Cli, Command, ServeArgs};
use gvhttpd::config::{plural, Config, LogTarget, Variant};
use gvhttpd::log::{self, Level};
use gvhttpd::models::{self, ServeError};
use gvhttpd::shutdown::Shutdown;

/// jemalloc gives a burst's memory back to the kernel after it (see Cargo.toml).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => serve(*args),
        Command::Models => models(),
        Command::Bench(args) => loadgen::cli::run(*args),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let started = std::time::Instant::now();
    let cfg = match args.into_config() {
        Ok(cfg) => cfg,
        Err(e) => {
            log::event(Level::Error, format_args!("{e}"));
            return ExitCode::from(2);
        }
    };
    let (code, totals) = run_server(cfg);
    // The final line: the error log's end of this run, whatever ended it.
    let line = log::exit_line(code, started.elapsed(), totals.as_ref());
    log::event(Level::Info, format_args!("{line}"));
    ExitCode::from(code)
}

fn run_server(cfg: Config) -> (u8, Option<log::Totals>) {
    if let Some(LogTarget::File(path)) = &cfg.access_log {
        // Fail now, with the path, rather than once the first request arrives.
        if let Err(e) = log::open_target(&LogTarget::File(path.clone())) {
            let path = path.display();
            log::event(
                Level::Error,
                format_args!("cannot open --access-log {path}: {e}"),
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
    let (model, workers, details) = (cfg.model_label(), cfg.workers, cli::startup_details(&cfg));
    let result = models::serve(&cfg, shutdown, |addr| {
        // The error log's start line first: once the readiness line is out, a
        // signal may come at once, and its line must follow this one.
        log::startup(addr, &model, workers, &details);
        // Tests and scripts wait for this exact line before connecting. A closed
        // stdout must not take the server down (`println!` would panic).
        let mut out = std::io::stdout().lock();
        let workers = plural(workers, "worker", "workers");
        let _ = writeln!(
            out,
            "gvhttpd: listening on http://{addr} (model {model}, {workers})"
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

/// `gvhttpd models`: one line per row; exit 1 when any cannot run here.
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
