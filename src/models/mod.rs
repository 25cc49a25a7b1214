//! The three models: executors of [`crate::http::Driver`] actions, with no policy
//! and no code that needs a SAFETY argument (that lives in `uring` and `green`).
//! Each runs one event loop per worker thread under [`run_workers`] (tokio and
//! green give it their `worker_thread(ctx, listener)`, callback its `run`), and
//! differs from the others **only** in how it performs the driver's actions (its
//! own sockets, timers and file I/O) and how it schedules connections.
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
use crate::config::{Config, Model, TokioRuntime};
pub use crate::error::ServeError;
use crate::net::ConnGate;
use crate::shutdown::Shutdown;
use crate::stats::{Registry, WorkerStats};

pub mod callback;
pub mod green;
pub mod tokio_rt;

/// The green runtime publishes its counters into the app's registry.
impl crate::green::StatsSource for App {
    fn worker_counters(&self, worker: usize) -> crate::green::WorkerCounters<'_> {
        self.registry().worker(worker).runtime_counters()
    }
}

/// Close a connection the driver cut mid-response with a reset rather than a FIN
/// ([`crate::http::Driver::resets`]), so the kernel drops what it still holds for
/// the client (one `setsockopt`, only on that path).
pub(crate) fn reset_on_close(stream: &impl std::os::fd::AsFd) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(std::time::Duration::ZERO));
}

/// What a look at the socket between two slices of work found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    /// Still connected both ways.
    Here,
    /// The peer shut down its write side: its responses are still owed (case
    /// 36), but the driver bounds the work it still spends on them.
    HalfClosed,
    /// Reset (or a socket error): close at once.
    Reset,
}

/// Between two slices of work (`Action::Yield`), no read is in flight: did the
/// peer reset the connection, or half-close it, meanwhile? One `poll` with no
/// timeout per slice (`POLLRDHUP` reports the FIN even behind unread bytes).
pub(crate) fn peer_state(stream: &impl std::os::fd::AsFd) -> Peer {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(stream, PollFlags::RDHUP)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if poll(&mut fds, Some(&now)).is_err() {
        return Peer::Here;
    }
    let got = fds[0].revents();
    if got.intersects(PollFlags::ERR | PollFlags::HUP) {
        Peer::Reset
    } else if got.contains(PollFlags::RDHUP) {
        Peer::HalfClosed
    } else {
        Peer::Here
    }
}

/// Is `model` usable here? `Err` carries a one-line reason and the fix.
pub fn check_available(model: Model) -> Result<(), ServeError> {
    match model {
        Model::Tokio => Ok(()),
        Model::Callback | Model::Green => {
            crate::uring::check_available().map_err(ServeError::Unavailable)
        }
    }
}

/// Can the row `v` run here: its model ([`check_available`]) and its scheduling
/// ([`check_scheduling`])?
pub fn check_variant(v: crate::config::Variant) -> Result<(), ServeError> {
    check_available(v.model())?;
    check_scheduling(&Config::for_variant(
        v,
        SocketAddr::from(([127, 0, 0, 1], 0)),
    ))
}

/// Can `cfg`'s scheduling knobs run together? `Err` names the flags that cannot.
pub fn check_scheduling(cfg: &Config) -> Result<(), ServeError> {
    use crate::config::{GreenReactor, GreenSched};
    let s = &cfg.sched;
    if s.green_sched == GreenSched::Steal && s.green_reactor == GreenReactor::Dedicated {
        return Err(ServeError::Unavailable(
            "--green-sched steal cannot be combined with --green-reactor dedicated \
             (a stolen thread's I/O goes to the ring of the worker it runs on; \
             with one dedicated reactor there is none): choose one of them"
                .into(),
        ));
    }
    Ok(())
}

/// Bind, announce readiness through `ready(addr)`, and serve until `shutdown`.
/// Returns the server's lifetime totals (for the error log's final line).
pub fn serve(
    cfg: &Config,
    shutdown: Arc<Shutdown>,
    ready: impl FnOnce(SocketAddr),
) -> Result<crate::log::Totals, ServeError> {
    check_available(cfg.model)?;
    check_scheduling(cfg)?;
    crate::stats::BUFFER_BUDGET.set_limit(cfg.max_buffer_memory);
    let registry = Arc::new(
        Registry::new(cfg.model, cfg.workers)
            .with_label(cfg.model_label())
            .with_files(cfg.files_mode().0),
    );
    let access = match &cfg.access_log {
        None => None,
        Some(target) => {
            let log = crate::log::AccessLog::open(target)
                .map_err(|e| ServeError::io("cannot open --access-log", e))?;
            registry.attach_access_log(&log);
            Some(log)
        }
    };
    let app = Arc::new(App::new(cfg, registry.clone())?);
    // One listener for a runtime that shares it between its threads.
    let multi = cfg.model == Model::Tokio && cfg.sched.tokio_runtime == TokioRuntime::MultiThread;
    let count = if multi { 1 } else { cfg.workers };
    let listeners = crate::net::bind_listeners(cfg.addr, count, cfg.reuse_port, cfg.notsent_lowat)
        .map_err(|e| ServeError::Io(format!("cannot listen on {}", cfg.addr), e))?;
    let local = listeners[0]
        .local_addr()
        .map_err(|e| ServeError::Io("local_addr".into(), e))?;
    // The reporter takes its baseline before the readiness line: a client that
    // reads that line may send at once, and a request counted before the baseline
    // would be missing from every report (seen as "2 4xx" for three 404s).
    let reporter = Reporter::start(registry.clone());
    ready(local);
    let result = run_model(cfg, listeners, app, shutdown.clone());
    reporter.stop();
    crate::log::grace_cut(registry.grace_cuts() as usize, shutdown.grace());
    registry.detach_access_logs();
    if let Some(log) = access {
        match log.finish() {
            Ok(0) => {}
            Ok(dropped) => crate::log::event(
                crate::log::Level::Warn,
                format_args!("access log: {dropped} lines dropped (the writer fell behind)"),
            ),
            Err(e) => crate::log::event(crate::log::Level::Error, format_args!("access log: {e}")),
        }
    }
    result.map(|()| registry.totals())
}

/// The thread beside the workers that keeps the logs off their hot path: every
/// 100 ms it hands the workers' access-log buffers to the writer, and every
/// [`crate::log::REPORT_INTERVAL`] it reports new 4xx / 5xx / refusals (at most one
/// line per interval, so an attack cannot flood the error log).
struct Reporter {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reporter {
    fn start(registry: Arc<Registry>) -> Reporter {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::{Duration, Instant};
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // The baseline is taken here, on the caller's thread, not when the
        // thread first runs (requests served in between would be in no report).
        let every = crate::log::REPORT_INTERVAL;
        let mut rep = crate::log::Reporter::new(registry.totals(), every);
        let thread = std::thread::Builder::new()
            .name("gvhttpd-logs".into())
            .spawn(move || {
                let mut next = Instant::now() + every;
                loop {
                    let stopping = flag.load(Ordering::Acquire);
                    registry.flush_access_logs();
                    if stopping || Instant::now() >= next {
                        rep.report(registry.totals());
                        next += every;
                    }
                    if stopping {
                        return;
                    }
                    std::thread::park_timeout(Duration::from_millis(100));
                }
            })
            .ok();
        Reporter { stop, thread }
    }

    fn stop(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn run_model(
    cfg: &Config,
    listeners: Vec<TcpListener>,
    app: Arc<App>,
    shutdown: Arc<Shutdown>,
) -> Result<(), ServeError> {
    match cfg.model {
        Model::Tokio if cfg.sched.tokio_runtime == TokioRuntime::MultiThread => {
            let listener = listeners.into_iter().next().ok_or_else(|| {
                ServeError::Io("no listener".into(), io::ErrorKind::NotFound.into())
            })?;
            tokio_rt::run_multi_thread(cfg, listener, app, shutdown)
        }
        Model::Tokio => run_workers(cfg, app, listeners, &shutdown, tokio_rt::worker_thread),
        Model::Callback => callback::run(cfg, listeners, app, shutdown),
        Model::Green => {
            // `--green-reactor dedicated`: the reactor thread, dropped after the workers.
            let (r, n) = (cfg.sched.green_reactor, listeners.len());
            let reactor = green::reactor_for_server(r, cfg.uring, n, app.registry())
                .map_err(ServeError::Unavailable)?
                .map(Arc::new);
            let shared = green::Shared::new(cfg, reactor);
            let worker = move |ctx, l| green::worker_thread(ctx, l, &shared);
            run_workers(cfg, app, listeners, &shutdown, worker)
        }
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
            self.cfg.clone(),
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
