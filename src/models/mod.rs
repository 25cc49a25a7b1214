//! The three models: executors of [`crate::http::Driver`] actions, no policy and no
//! `unsafe`. Each exposes the same entry point,
//! `run(&Config, Vec<TcpListener>, Arc<App>, Arc<Shutdown>) -> Result<(), ServeError>`,
//! and differs from the others **only** in how it performs the driver's actions
//! (its own sockets, timers and file I/O) and how it schedules connections.
//!
//! The contract every model implements:
//! - one event loop per worker thread ([`run_workers`]), each with its own listener
//!   from [`crate::net::bind_listeners`];
//! - per accepted connection: [`crate::accept::Acceptor::admit`] (refusal and
//!   `--max-conns` are decided there), then `Driver::start` and a loop that performs
//!   each returned `Action` and reports its outcome, until `Action::Close`;
//! - accept errors go to `Acceptor::failed` (EMFILE back-off);
//! - on [`Shutdown`]: the sequence of [`crate::accept`] (listener closed at once,
//!   `Driver::shutdown` on every connection, return when none is left).

use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use crate::accept::Acceptor;
use crate::app::App;
use crate::config::{Config, Model};
pub use crate::error::ServeError;
use crate::net::ConnGate;
use crate::shutdown::Shutdown;
use crate::stats::{Registry, WorkerStats};

pub mod callback;
pub mod green;
pub mod tokio_rt;

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
        Model::Tokio => run_workers(cfg, app, listeners, &shutdown, tokio_rt::worker_thread),
        Model::Callback => callback::run(cfg, listeners, app, shutdown),
        Model::Green => run_workers(cfg, app, listeners, &shutdown, green::worker_thread),
    }
}

/// What one worker thread of any model gets: its index, and what all workers of
/// the server share (config, handler, `--max-conns` gate, shutdown).
#[derive(Clone, Debug)]
pub(crate) struct WorkerCtx {
    pub index: usize,
    pub cfg: Arc<Config>,
    pub app: Arc<App>,
    pub gate: Arc<ConnGate>,
    pub registry: Arc<Registry>,
    pub shutdown: Arc<Shutdown>,
}

impl WorkerCtx {
    /// This worker's counters (single writer: this worker).
    pub fn stats(&self) -> &WorkerStats {
        self.registry.worker(self.index)
    }

    /// This worker's view of the acceptor policy.
    pub fn acceptor(&self) -> Acceptor {
        Acceptor::new(
            self.gate.clone(),
            self.registry.clone(),
            self.shutdown.clone(),
            self.index,
        )
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
        registry: app.registry_arc(),
        app,
        gate: Arc::new(ConnGate::new(cfg.max_conns)),
        shutdown: shutdown.clone(),
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
                    Err(_) => ServeError::Panic(format!("{model} worker {index}")),
                };
                let _ = writeln!(
                    io::stderr(),
                    "gvhttpd: {model} worker {index} stopped: {failed}"
                );
                shutdown.trigger();
                Err(failed)
            })
            .map_err(|e| ServeError::Io("cannot start worker thread".into(), e))?;
        threads.push(t);
    }
    let mut result = Ok(());
    for t in threads {
        let r = t
            .join()
            .unwrap_or_else(|_| Err(ServeError::Panic("worker thread".into())));
        if result.is_ok() {
            result = r;
        }
    }
    result
}
