//! `--model tokio`: tokio on epoll, one task per connection, executing the
//! driver's actions ([`conn`]).
//!
//! Two runtimes (`--tokio-runtime`), one connection executor:
//! - `per-worker` (the default): one OS thread per worker, each running its own
//!   `current_thread` runtime with its own `SO_REUSEPORT` listener — the same
//!   thread-per-core shape as the two io_uring models, so the comparison isolates
//!   the I/O mechanism. A connection never leaves the worker that accepted it.
//! - `multi-thread` ([`multi`]): one `multi_thread` runtime with `--workers`
//!   threads over **one** listener; tokio's scheduler steals runnable connection
//!   tasks between its threads.
//!
//! How each action is performed ([`conn`]):
//! - `Recv` / `Drain`: wait for readability, then one non-blocking `try_read` into
//!   the driver's buffer (an idle connection takes its buffer from the pool only
//!   once data is there, so it holds none while it waits).
//! - `Send`: `try_write` first (the socket buffer usually takes the whole
//!   response); only when it is full, wait for writability.
//! - `Sleep` and every deadline: one `tokio::time::Sleep` per connection, re-armed
//!   lazily — it is moved only when a deadline comes earlier; when it fires early
//!   the driver hands back the same action and it is reset to the real deadline.
//! - `Yield` (between slices of `/work`): `tokio::task::yield_now().await` (the
//!   runtime polls for I/O and runs the other tasks first), then a check for the
//!   shutdown trigger and for a reset (`SO_ERROR`; no read is in flight).
//! - `Open` / `ReadFile` / `CloseFile`: tokio's blocking pool (`spawn_blocking`,
//!   `tokio::fs::File`).
//! - Shutdown: a flag and a table of task wakers per runtime ([`stop`]); each
//!   connection's wait also selects on it and reports it to the driver once. The accept loops return at once (the
//!   listener closes), and the runtime ends when its last connection has.

use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::{ServeError, WorkerCtx};
use crate::accept::{Acceptor, Retry};
use crate::stats::WorkerStats;

mod conn;
mod multi;
mod proxy;
mod stop;

pub(super) use multi::run as run_multi_thread;
use stop::{Stop, Watch};

/// What every connection task of one runtime shares.
struct Shared {
    ctx: WorkerCtx,
    stop: Arc<Stop>,
    /// Connection tasks still running; the last one to end during shutdown
    /// notifies `done`.
    live: AtomicUsize,
    done: Notify,
    /// Multi-thread runtime: which counters block each of its threads writes.
    /// `None`: one thread, the block of `ctx.index`.
    threads: Option<multi::Threads>,
}

impl Shared {
    /// The counters of the thread running the caller: each block keeps a single
    /// writer (see [`crate::stats`]) even when tasks move between threads.
    fn stats(&self) -> &WorkerStats {
        self.ctx.registry.worker(self.stats_index())
    }

    fn stats_index(&self) -> usize {
        match &self.threads {
            None => self.ctx.index,
            Some(t) => t.current(),
        }
    }

    /// Wait until the last connection task has ended (after the accept loops).
    async fn drained(&self) {
        while self.live.load(Ordering::Acquire) > 0 {
            self.done.notified().await;
        }
    }
}

/// Counts one running connection task (also when it is cancelled or panics).
struct Live(Arc<Shared>);

impl Drop for Live {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.done.notify_one();
        }
    }
}

/// One worker thread of the per-worker runtime, until shutdown (see
/// [`super::run_workers`]).
pub(super) fn worker_thread(ctx: WorkerCtx, listener: StdListener) -> Result<(), ServeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::io("cannot build tokio runtime", e))?;
    let w = Arc::new(Shared {
        stop: Stop::new(&ctx.shutdown),
        ctx,
        live: AtomicUsize::new(0),
        done: Notify::new(),
        threads: None,
    });
    let r = rt.block_on(async move {
        let listener = TcpListener::from_std(listener)
            .map_err(|e| ServeError::io("cannot register listener", e))?;
        accept_loop(&w, &listener, w.ctx.acceptor()).await;
        drop(listener);
        // The listener is closed. Every connection's driver cuts it at the grace
        // deadline at the latest; wait for the last one to end.
        w.drained().await;
        Ok(())
    });
    // Not a plain drop, which waits for every blocking-pool thread: one may still
    // be in an open abandoned at the grace deadline (see `conn::grace_over`).
    rt.shutdown_background();
    r
}

/// Accept until shutdown, spawning a task per admitted connection.
async fn accept_loop(w: &Arc<Shared>, listener: &TcpListener, acceptor: Acceptor) {
    let mut shutdown = Watch::new(&w.stop);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.triggered() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _)) => {
                let Some((admission, driver)) = acceptor.admit(&stream) else {
                    continue; // refused (503 sent) or shutting down: dropped = closed
                };
                w.live.fetch_add(1, Ordering::AcqRel);
                let live = Live(w.clone());
                // Boxed: an argument of an async fn is kept beside its locals in the
                // future, so a Driver passed by value would be stored twice.
                tokio::spawn(conn::connection(stream, admission, Box::new(driver), live));
            }
            Err(e) => match acceptor.failed(&e) {
                Retry::Now => {}
                Retry::After(d) => tokio::time::sleep(d).await,
            },
        }
    }
}
