//! `--tokio-runtime multi-thread`: one `multi_thread` runtime with `--workers`
//! threads over one listener; tokio steals runnable connection tasks between its
//! threads. The connections run the same executor ([`super::conn`]) and the same
//! shutdown sequence as the per-worker runtime.
//!
//! - Accepting: one accept-loop task per worker over the one listener (any idle
//!   thread may accept; each loop admits through its own [`Acceptor`], so the
//!   `accepted` / `refused` counters of block *i* are written by loop *i* alone).
//! - `/stats`: a task may run on any runtime thread between two awaits, so every
//!   event counts on the block of the thread it runs on ([`Threads`]); the sums
//!   are exact. Per block, `requests`, bytes, responses and `closed` belong to a
//!   runtime thread, `accepted` / `refused` to an accept loop, so a block's own
//!   `accepted - closed` is not its open connections (the total is).
//! - Shutdown: the trigger ends every accept loop (the listener closes when the
//!   last one returns, at once), then the runtime waits for its last connection.

use std::cell::Cell;
use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::{accept_loop, Shared, Stop};
use crate::accept::Acceptor;
use crate::app::App;
use crate::config::Config;
use crate::models::{ServeError, WorkerCtx};
use crate::net::ConnGate;
use crate::shutdown::Shutdown;

thread_local! {
    /// The counters block of this runtime thread (`usize::MAX`: none yet).
    static BLOCK: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Gives each runtime thread its own counters block, on its first event.
#[derive(Debug)]
pub(super) struct Threads {
    next: AtomicUsize,
    blocks: usize,
}

impl Threads {
    fn new(blocks: usize) -> Threads {
        Threads {
            next: AtomicUsize::new(0),
            blocks: blocks.max(1),
        }
    }

    /// The block of the calling thread. The runtime has exactly `blocks` worker
    /// threads (tasks never run on its blocking pool), so each gets its own.
    pub(super) fn current(&self) -> usize {
        BLOCK.with(|b| {
            let i = b.get();
            if i != usize::MAX {
                return i;
            }
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.blocks;
            b.set(i);
            i
        })
    }
}

/// Serve on one multi-thread runtime until shutdown.
pub(in crate::models) fn run(
    cfg: &Config,
    listener: StdListener,
    app: Arc<App>,
    shutdown: Arc<Shutdown>,
) -> Result<(), ServeError> {
    let workers = cfg.workers.max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("gvhttpd-tokio-multi")
        .enable_all()
        .build()
        .map_err(|e| ServeError::io("cannot build tokio runtime", e))?;
    let ctx = WorkerCtx {
        index: 0,
        cfg: Arc::new(cfg.clone()),
        registry: app.registry_arc(),
        app,
        gate: Arc::new(ConnGate::new(cfg.max_conns)),
        shutdown: shutdown.clone(),
    };
    let w = Arc::new(Shared {
        stop: Stop::new(&ctx.shutdown),
        ctx,
        live: AtomicUsize::new(0),
        done: Notify::new(),
        threads: Some(Threads::new(workers)),
    });
    let r = rt.block_on(async move {
        let listener = Arc::new(
            TcpListener::from_std(listener)
                .map_err(|e| ServeError::io("cannot register listener", e))?,
        );
        let loops: Vec<_> = (0..workers)
            .map(|index| {
                let acceptor: Acceptor = WorkerCtx {
                    index,
                    ..w.ctx.clone()
                }
                .acceptor();
                let (w, listener) = (w.clone(), listener.clone());
                tokio::spawn(async move { accept_loop(&w, &listener, acceptor).await })
            })
            .collect();
        drop(listener); // closed when the last accept loop returns
        let mut result = Ok(());
        for l in loops {
            if l.await.is_err() && result.is_ok() {
                // A panicked accept loop stops the server, as a worker's would.
                shutdown.trigger();
                result = Err(ServeError::Panic("tokio accept loop".into()));
            }
        }
        w.drained().await;
        result
    });
    // Not a plain drop, which waits for every blocking-pool thread: one may still
    // be in an open abandoned at the grace deadline (see `conn::grace_over`).
    rt.shutdown_background();
    r
}
