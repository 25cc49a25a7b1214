//! The green connection loop's helpers: driver calls on the worker's stack, the
//! reaction to a failed blocking call, and the static-file open.

use std::io;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use crate::app::App;
use crate::config::{Config, GreenSched};
use crate::files::{self, OPEN_FLAGS, OPEN_RESOLVE};
use crate::green::fs::{self as gfs, GvtFile};
use crate::green::{self, ReactorThread, StealGroup};
use crate::http::{Action, Driver, Env, FileError};

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

/// The open-beneath-root contract of [`crate::files`], with green file ops.
pub(super) fn open_static(app: &App, rel: &str) -> Result<(GvtFile, u64), FileError> {
    let root = app.static_root().ok_or(FileError::NotFound)?;
    let errno = |e: io::Error| {
        e.raw_os_error()
            .map_or(FileError::Internal, FileError::from_errno)
    };
    let file = gfs::open_beneath(root.fd(), Path::new(rel), OPEN_FLAGS as u64, OPEN_RESOLVE)
        .map_err(errno)?;
    let checked = file
        .stat()
        .map_err(errno)
        .and_then(|st| files::check_stat(st.mode, st.size))
        .and_then(|size| files::clear_nonblock(file.as_fd()).map(|()| size));
    match checked {
        Ok(size) => Ok((file, size)),
        Err(e) => {
            let _ = file.close();
            Err(e)
        }
    }
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
