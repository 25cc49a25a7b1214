//! The three models. Each exposes the same entry point,
//! `run(&Config, Vec<TcpListener>, Arc<App>, Arc<Shutdown>) -> Result<(), ServeError>`,
//! and differs from the others **only** in how bytes move between sockets and the
//! shared sans-IO core ([`crate::http::Conn`]) and how it executes a deferred
//! [`crate::app`] reply (its own timer, its own file I/O).
//!
//! The contract every model implements:
//! - one event loop per worker thread, each with its own listener from
//!   [`crate::net::bind_listeners`];
//! - per connection: read into [`Conn::read_buf`](crate::http::Conn::read_buf), call
//!   `process`, write the whole output buffer, act on the returned `Step`;
//! - timeouts from [`crate::config::Timeouts`] chosen by `Conn::phase()`, and a write
//!   timeout on every send;
//! - `--max-conns` through [`crate::net::ConnGate`]; EMFILE/ENFILE on accept backs off
//!   for [`crate::net::ACCEPT_BACKOFF`] instead of spinning;
//! - on [`Shutdown`]: stop accepting, close idle connections, finish in-flight
//!   responses with `Connection: close`, return before `Shutdown::deadline()`.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use crate::app::App;
use crate::config::{Config, Model};
use crate::net::ConnGate;
use crate::shutdown::Shutdown;
use crate::stats::{Registry, WorkerStats};

pub mod callback;
pub mod green;
pub mod tokio_rt;

/// Why `serve` could not run.
#[derive(Debug)]
pub enum ServeError {
    /// The model cannot run on this system (e.g. io_uring disabled); exit status 2.
    Unavailable(String),
    /// Bad configuration (e.g. `--root` is not a directory); exit status 2.
    Config(String),
    /// An I/O error while setting up or running; exit status 1.
    Io(String, io::Error),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Unavailable(m) | ServeError::Config(m) => f.write_str(m),
            ServeError::Io(ctx, e) => write!(f, "{ctx}: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// Is `model` usable here? `Err` carries a one-line reason and the fix.
pub fn check_available(model: Model) -> Result<(), ServeError> {
    match model {
        Model::Tokio => Ok(()),
        Model::Callback | Model::Green => {
            crate::uring::check_available().map_err(ServeError::Unavailable)
        }
    }
}

/// Bind, announce readiness through `ready(addr)`, and serve until `shutdown`.
pub fn serve(
    cfg: &Config,
    shutdown: Arc<Shutdown>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    check_available(cfg.model)?;
    let registry = Arc::new(Registry::new(cfg.model, cfg.workers));
    let app = Arc::new(App::new(cfg, registry)?);
    let listeners = crate::net::bind_listeners(cfg.addr, cfg.workers, cfg.reuse_port)
        .map_err(|e| ServeError::Io(format!("cannot listen on {}", cfg.addr), e))?;
    let local = listeners[0]
        .local_addr()
        .map_err(|e| ServeError::Io("local_addr".into(), e))?;
    ready(local);
    run_model(cfg, listeners, app, shutdown)
}

fn run_model(
    cfg: &Config,
    listeners: Vec<TcpListener>,
    app: Arc<App>,
    shutdown: Arc<Shutdown>,
) -> Result<(), ServeError> {
    match cfg.model {
        Model::Tokio => tokio_rt::run(cfg, listeners, app, shutdown),
        Model::Callback => callback::run(cfg, listeners, app, shutdown),
        Model::Green => green::run(cfg, listeners, app, shutdown),
    }
}

/// What one worker thread of any model gets: its index, and what all workers of
/// the server share (config, handler, `--max-conns` gate).
#[derive(Clone, Debug)]
pub(crate) struct WorkerCtx {
    pub index: usize,
    pub cfg: Arc<Config>,
    pub app: Arc<App>,
    pub gate: Arc<ConnGate>,
}

impl WorkerCtx {
    /// This worker's counters (single writer: this worker).
    pub fn stats(&self) -> &WorkerStats {
        self.app.registry().worker(self.index)
    }
}

/// A connection admitted through the gate: on drop (also when its task or green
/// thread panics) it releases the `--max-conns` slot and counts the close.
pub(crate) struct Admitted<'a>(pub &'a WorkerCtx);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.gate.close();
        self.0.stats().closed.inc();
    }
}

/// Run `worker(ctx, listener)` on one named thread per listener and wait for all
/// of them. A worker that fails or panics triggers `shutdown` at once, from its own
/// thread, so the others stop too; its error is logged and the first one returned.
pub(crate) fn run_workers<F>(
    cfg: &Config,
    app: Arc<App>,
    listeners: Vec<TcpListener>,
    shutdown: &Arc<Shutdown>,
    worker: F,
) -> Result<(), ServeError>
where
    F: Fn(WorkerCtx, TcpListener) -> Result<(), ServeError> + Send + Sync + 'static,
{
    let model = cfg.model;
    let shared = WorkerCtx {
        index: 0,
        cfg: Arc::new(cfg.clone()),
        app,
        gate: Arc::new(ConnGate::new(cfg.max_conns)),
    };
    let worker = Arc::new(worker);
    let mut threads = Vec::with_capacity(listeners.len());
    for (index, listener) in listeners.into_iter().enumerate() {
        let (worker, shutdown) = (worker.clone(), shutdown.clone());
        let ctx = WorkerCtx {
            index,
            ..shared.clone()
        };
        let t = std::thread::Builder::new()
            .name(format!("gvhttpd-{model}-{index}"))
            .spawn(move || {
                let run = std::panic::AssertUnwindSafe(|| worker(ctx, listener));
                let failed = match std::panic::catch_unwind(run) {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(e)) => e,
                    Err(_) => {
                        ServeError::Io("worker thread panicked".into(), io::Error::other("panic"))
                    }
                };
                eprintln!("gvhttpd: {model} worker {index} stopped: {failed}");
                shutdown.trigger();
                Err(failed)
            })
            .map_err(|e| ServeError::Io("cannot start worker thread".into(), e))?;
        threads.push(t);
    }
    let mut result = Ok(());
    for t in threads {
        let r = t.join().unwrap_or_else(|_| {
            Err(ServeError::Io(
                "worker thread panicked".into(),
                io::Error::other("panic"),
            ))
        });
        if result.is_ok() {
            result = r;
        }
    }
    result
}
