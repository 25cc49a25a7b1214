//! One acceptor policy for every model: admission under `--max-conns` and the
//! buffer budget `--max-buffer-memory` (a 503 and close beyond either), EMFILE back-off, and the shutdown sequence. Models call these
//! from their own accept loops; none of them decides anything of its own.
//!
//! The shutdown sequence, identical in every model and driven by each model's own
//! timer (never by polling counters):
//! 1. on the trigger, the model closes its listener at once (new clients are
//!    refused by the kernel, they do not hang in a backlog);
//! 2. it wakes every connection's driver ([`crate::http::Driver::shutdown`]); the
//!    driver, which reads the signal and its grace deadline itself, closes idle
//!    connections now (a FIN after a lingering drain, never a RST), makes a
//!    response in flight the last one (`Connection: close`), and caps every
//!    connection deadline at the grace deadline, where it cuts the connection;
//! 3. the worker returns when its last connection is gone.

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::http::Driver;
use crate::net::{self, ConnGate};
use crate::shutdown::Shutdown;
use crate::stats::{Registry, WorkerStats, BUFFER_BUDGET};

/// What an accept loop does after a failed accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Accept again now (ECONNABORTED and friends).
    Now,
    /// Out of descriptors (case 41): keep serving, accept again after this long.
    After(Duration),
}

/// One worker's view of the server-wide admission policy.
#[derive(Clone, Debug)]
pub struct Acceptor {
    cfg: Arc<Config>,
    gate: Arc<ConnGate>,
    registry: Arc<Registry>,
    shutdown: Arc<Shutdown>,
    index: usize,
}

impl Acceptor {
    pub fn new(
        cfg: Arc<Config>,
        gate: Arc<ConnGate>,
        registry: Arc<Registry>,
        shutdown: Arc<Shutdown>,
        index: usize,
    ) -> Acceptor {
        Acceptor {
            cfg,
            gate,
            registry,
            shutdown,
            index,
        }
    }

    fn stats(&self) -> &WorkerStats {
        self.registry.worker(self.index)
    }

    /// A connection was accepted: admit it — its [`Admission`] releases the slot
    /// when dropped, and its [`Driver`] is set up from the config (and for the
    /// access log, when on) — or refuse it beyond `--max-conns` with one
    /// non-blocking 503: the caller then just drops (closes) the socket.
    pub fn admit(&self, stream: &impl AsFd) -> Option<(Admission, Driver)> {
        if self.shutdown.is_triggered() {
            return None;
        }
        // Beyond --max-conns, or while connections hold the whole buffer budget
        // (--max-buffer-memory): a 503, and the connection is closed.
        if BUFFER_BUDGET.over() || !self.gate.try_open() {
            self.stats().refused.inc();
            net::send_refusal(stream);
            return None;
        }
        self.stats().accepted.inc();
        net::tune_stream(stream);
        let mut driver = Driver::new(self.cfg.limits, self.cfg.timeouts);
        driver.set_work_slice(self.cfg.sched.work_slice);
        driver.set_zero_copy(self.cfg.zero_copy_files());
        // The peer goes in the access log and, proxying, in `X-Forwarded-For`.
        if self.stats().logs_access() || self.cfg.upstream.is_some() {
            if let Some(peer) = net::peer_addr(stream) {
                driver.log_peer(peer);
            }
        }
        let admission = Admission {
            gate: self.gate.clone(),
            registry: self.registry.clone(),
            index: self.index,
        };
        Some((admission, driver))
    }

    /// An accept failed: what to do next.
    pub fn failed(&self, err: &io::Error) -> Retry {
        if net::is_fd_exhaustion(err) {
            Retry::After(net::ACCEPT_BACKOFF)
        } else {
            Retry::Now
        }
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown.is_triggered()
    }
}

/// A connection admitted through the gate: on drop (also when its task or green
/// thread panics) it releases the `--max-conns` slot and counts the close. Dropped
/// on the worker that admitted it, or moved first ([`Admission::count_on`]) to the
/// worker that drops it (the counters have a single writer).
#[derive(Debug)]
pub struct Admission {
    gate: Arc<ConnGate>,
    registry: Arc<Registry>,
    index: usize,
}

impl Admission {
    /// Count the close on worker `index`'s counters instead, for a model whose
    /// connections move between threads (tokio's multi-thread runtime, green work
    /// stealing): called on the thread that drops the admission, with that
    /// thread's block, so each counter keeps a single writer.
    pub fn count_on(&mut self, index: usize) {
        self.index = index;
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.gate.close();
        self.registry.worker(self.index).closed.inc();
    }
}
