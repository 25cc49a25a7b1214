//! The green connection loop's helpers: driver calls on the worker's stack, the
//! reaction to a failed blocking call, and the static-file open; and what the
//! workers share, including the server's dedicated reactor thread.

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use crate::app::App;
use crate::config::{Config, GreenReactor, GreenSched};
use crate::files::{self, OPEN_FLAGS, OPEN_RESOLVE};
use crate::green::fs::{self as gfs, GvtFile};
use crate::green::{self, ReactorOptions, ReactorThread, StealGroup};
use crate::http::{Action, Driver, Env, FileError, FileMeta};
use crate::stats::Registry;
use crate::uring::UringOptions;

/// Run a driver call on the worker's stack (parsing and answering happen there).
pub(super) fn core<R>(f: impl FnOnce() -> R + Send) -> R {
    green::on_worker_stack(f)
}

/// A blocking call failed: a missed deadline, an interrupt (shutdown, or its hard
/// stop: the driver tells them apart), or a socket error.
pub(super) fn on_error(d: &mut Driver, e: Env<'_, App>, err: &io::Error) -> Action {
    match err.kind() {
        io::ErrorKind::TimedOut => core(|| d.timed_out(&e)),
        io::ErrorKind::Interrupted => core(|| d.interrupted(&e)),
        _ => d.failed(),
    }
}

/// The open-beneath-root contract of [`crate::files`]: on this thread when the
/// path is in the kernel's lookup cache ([`files::open_cached`]: no park, no wait
/// for the disk), else a green `OPENAT2` op; the stat is then an `fstat` on this
/// thread ([`files::finish_open`]: a `STATX` op would always go to one of
/// io_uring's worker threads).
pub(super) fn open_static(app: &App, rel: &str) -> Result<(GvtFile, FileMeta), FileError> {
    let into_green = |(f, meta): (std::fs::File, FileMeta)| (GvtFile::from(OwnedFd::from(f)), meta);
    if let Some(opened) = files::open_cached(app.static_root(), rel) {
        return opened.map(into_green);
    }
    let root = app.static_root().ok_or(FileError::NotFound)?;
    let errno = |e: io::Error| {
        e.raw_os_error()
            .map_or(FileError::Internal, FileError::from_errno)
    };
    let file = gfs::open_beneath(root.fd(), Path::new(rel), OPEN_FLAGS as u64, OPEN_RESOLVE)
        .map_err(errno)?;
    files::finish_open(OwnedFd::from(file)).map(into_green)
}

/// What all workers of this model share: the steal group, if stealing, and the
/// dedicated reactor thread, if there is one.
pub(in crate::models) struct Shared {
    pub(super) group: Option<Arc<StealGroup>>,
    pub(super) reactor: Option<Arc<ReactorThread>>,
    /// Connection threads of the whole server (used when stealing).
    pub(super) live: Arc<AtomicUsize>,
}

impl Shared {
    pub(in crate::models) fn new(cfg: &Config, reactor: Option<Arc<ReactorThread>>) -> Shared {
        let group = (cfg.sched.green_sched == GreenSched::Steal)
            .then(|| StealGroup::new(cfg.workers, cfg.green_stack_size));
        Shared {
            group,
            reactor,
            live: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// The server's reactor, if `choice` is `dedicated` (`None` for per-worker
/// rings): options from [`ReactorOptions::new`], counters into `stats`, a failure
/// of its io_uring loop into the error log, and one info line in the error log
/// naming the ring's features and the CPUs the thread may run on. `Err` is one
/// line: the cause and the fix.
pub(in crate::models) fn reactor_for_server(
    choice: GreenReactor,
    uring: UringOptions,
    workers: usize,
    stats: &Registry,
) -> Result<Option<ReactorThread>, String> {
    if choice == GreenReactor::PerWorker {
        return Ok(None);
    }
    let mut opts = ReactorOptions::new(uring, workers).map_err(|e| e.to_string())?;
    opts.on_failure = log_reactor_failure;
    let r = ReactorThread::start(&opts, Some(stats.reactor_counters())).map_err(|e| {
        match e.raw_os_error() {
            Some(_) => crate::uring::probe::explain_setup_error(&e),
            None => e.to_string(),
        }
    })?;
    let forced = match opts.force_fallback.is_empty() {
        true => String::new(),
        false => ", blocking pool forced by GVHTTPD_GREEN_FALLBACK".into(),
    };
    crate::log::event(
        crate::log::Level::Info,
        format_args!(
            "green reactor thread: {}, CPUs {}{forced}",
            r.features().summary(),
            r.cpus()
        ),
    );
    Ok(Some(r))
}

/// The reactor thread's loop ended because io_uring failed: the error log says so.
fn log_reactor_failure(e: &io::Error) {
    crate::log::event(
        crate::log::Level::Error,
        format_args!("green reactor thread: io_uring failed: {e}"),
    );
}
