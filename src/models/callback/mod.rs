//! `--model callback`: io_uring, one explicit, completion-driven state machine per
//! connection.
//!
//! Shape: one OS thread per worker, each owning its own [`Ring`](crate::uring::Ring)
//! and its own `SO_REUSEPORT` listener (thread-per-core, nothing shared on the hot
//! path but the `--max-conns` counter). A worker turn is: submit everything the last
//! turn queued and wait for a completion (one `io_uring_enter`), reap all CQEs,
//! dispatch each to its connection by token, expire deadlines.
//!
//! Per connection ([`conn::Conn`]):
//!
//! ```text
//!            recv CQE (bytes)                 send CQE (all sent)
//!  Reading ───────────────► handling ──out──► Writing ──────────► Reading (keep-alive)
//!     ▲                     (process)  │        │  partial: send the rest
//!     │                                │        ├──► Sleeping (IORING_OP_TIMEOUT) ─► handling
//!     │                                │        ├──► File: OPENAT2 → STATX → (READ → SEND)* ─► handling
//!     └────────────── deadline ────────┘        └──► Lingering (SHUTDOWN + drain) ─► Closing
//!                     (cancel, 408)                                     Closing: cancel ops,
//!                                                                       wait CQEs, CLOSE
//! ```
//!
//! Every op a connection has in flight is a bit in `Conn::ops`; a connection is only
//! removed from the slot table (and its buffers freed) once that mask is empty,
//! i.e. after the CQEs of cancelled ops arrived — the buffer-lifetime contract of
//! [`crate::uring::ring`]. Input comes through one multishot recv per connection
//! into the worker's provided-buffer ring (`recv_multi`), or, where the kernel lacks
//! it (before 6.0), through one recv per read straight into the core's input buffer
//! ([`crate::http::Conn::read_buf`]), which nothing touches while that recv is in
//! flight. Responses and file chunks are sent from the connection's `out` buffer.
//!
//! Timeouts: each connection has one deadline (read phase, write progress, or
//! lingering close); the worker keeps a heap of deadlines and one io_uring timeout
//! armed at the earliest, rounded to [`worker::TICK`] so connections share timers.
//! An expired connection's in-flight op is cancelled (`IORING_OP_ASYNC_CANCEL`); its
//! CQE then drives the 408 / close.

mod conn;
mod file;
mod recv_multi;
mod worker;

use std::net::TcpListener;
use std::sync::Arc;

use super::ServeError;
use crate::app::App;
use crate::config::Config;
use crate::shutdown::Shutdown;

/// Run the callback model until shutdown.
pub fn run(
    cfg: &Config,
    listeners: Vec<TcpListener>,
    app: Arc<App>,
    shutdown: Arc<Shutdown>,
) -> Result<(), ServeError> {
    let sd = shutdown.clone();
    super::run_workers(cfg, app, listeners, &shutdown, move |w, listener| {
        worker::run_worker(w.index, &w.cfg, listener, &w.app, &w.gate, &sd)
    })
}
