//! `--model callback`: io_uring, one completion-driven executor of
//! [`crate::http::Driver`] actions per connection.
//!
//! Shape: one OS thread per worker, each owning its own [`Ring`](crate::uring::Ring)
//! and its own `SO_REUSEPORT` listener (thread-per-core, nothing shared on the hot
//! path but the `--max-conns` counter). A worker turn is: submit everything the last
//! turn queued and wait for a completion (one `io_uring_enter`), reap all CQEs,
//! hand each to its connection by token, expire deadlines.
//!
//! Every decision about a connection is the driver's; this model only performs
//! its actions as io_uring ops ([`conn`]) and reports their completions
//! ([`events`]):
//!
//! | action | op | reported with |
//! |---|---|---|
//! | `Recv`, `Drain` | multishot recv into the worker's provided buffers (or one recv into the lent input buffer) | `feed` / `buffer` (busy), `received`, `eof`, `failed` |
//! | `Send` | send of the lent pending bytes | `sent`, `failed` |
//! | `Sleep` | `IORING_OP_TIMEOUT` (re-armed when shutdown moves it earlier) | `slept` |
//! | `Open` | inline `openat2(RESOLVE_CACHED)` + `fstat` when the path is in the lookup cache, else `OPENAT2` beneath the static root, then an inline `fstat` | `file_opened` |
//! | `ReadFile` | read into the lent chunk buffer (only with zero-copy off) | `file_read` |
//! | `SendFile` | inline `sendfile(2)` on the `O_NONBLOCK` socket; `POLL_ADD` for writability when it would block | `file_sent`, `failed` |
//! | `CloseFile`, `ShutdownWrite` | `CLOSE`, `SHUTDOWN` (nothing to wait for) | `file_closed`, `write_shut` |
//! | `Yield` | none: onto the worker's ready list, resumed after the next turn's completions (that turn's enter waits only for a NOP of its own) | `resumed` |
//! | `Close` | cancel what is in flight; `CLOSE` once the last CQE is in | — |
//!
//! Buffers belong to the ring while an op runs ([`crate::uring::ops`]), so this
//! model has no code that needs a SAFETY argument and a connection never protects memory: a closing one only
//! waits for its completions so no op refers to its descriptor number any more.
//! Input arrives through one multishot recv per connection, kept armed even while
//! the connection is busy (bytes go to `Driver::buffer`, and a reset is noticed at
//! once); when the driver says it holds enough, the recv is cancelled and a poll
//! watches for a reset until the driver reads again. An idle keep-alive connection
//! therefore holds no buffer at all.
//!
//! Timeouts: each connection's current deadline ([`crate::http::Action::deadline`])
//! sits in the worker's bounded heap ([`deadlines`]), with one io_uring timeout
//! armed at the earliest, rounded to a tick so connections share timers. When it
//! passes, an op holding a lent buffer is cancelled first and its completion calls
//! `Driver::timed_out`; otherwise the driver hears at once.
//!
//! Shutdown ([`crate::accept`]): the accept is cancelled and the listener closed
//! as soon as its completion is in; `Driver::shutdown` on every connection; the
//! worker returns when no connection is left.

mod accept;
mod conn;
mod deadlines;
mod events;
mod file;
mod op;
mod proxy;
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
    super::run_workers(cfg, app, listeners, &shutdown, worker::run)
}
