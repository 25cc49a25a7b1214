//! What the driver asks of a model ([`Action`]) and what a model reports with
//! ([`Env`]).

use std::time::Instant;

#[cfg(doc)]
use super::Driver; // the doc links
use crate::shutdown::Shutdown;
use crate::stats::WorkerStats;

/// What the model performs next for this connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Receive: into [`Driver::recv_buf`] then [`Driver::received`], or copy with
    /// [`Driver::feed`]; EOF is [`Driver::eof`]. With `idle` the connection is
    /// between requests and holds no buffer: a model may read into a small buffer
    /// of its own, or wait for readability before taking `recv_buf`.
    Recv { deadline: Instant, idle: bool },
    /// Send [`Driver::pending`] (a prefix is fine), then [`Driver::sent`]. With
    /// `more`, a zero-copy file body follows at once (`Action::SendFile`; one of
    /// at most [`super::CORK_MAX`] bytes): send with `MSG_MORE`, so the kernel
    /// holds the head until the file's first pages join it in one segment and the
    /// client is woken once, not twice.
    Send { deadline: Instant, more: bool },
    /// Wait until `until` on the model's own timer, then [`Driver::slept`].
    Sleep { until: Instant },
    /// Open [`Driver::file_path`] beneath the static root and stat it (see
    /// [`crate::files`]), then [`Driver::file_opened`] with the metadata of the
    /// regular file ([`crate::http::FileMeta`]) or the error. It may be asked
    /// again, for another path (the next precompressed candidate).
    Open,
    /// Read `len` bytes at `offset` of the open file into [`Driver::file_buf`], then
    /// [`Driver::file_read`] (0 when the file ended early).
    ReadFile { offset: u64, len: usize },
    /// Send the bytes of the open file that [`Driver::file_span`] names straight
    /// to the socket (a zero-copy send: every model's `sendfile(2)` on a
    /// non-blocking socket, waiting for writability its own way; only asked of a
    /// model whose driver has [`Driver::set_zero_copy`]), then [`Driver::file_sent`] with the
    /// bytes moved (a prefix is fine; 0 when the file ended early). The span is
    /// not in the action so that an action stays 24 bytes in every connection.
    SendFile { deadline: Instant },
    /// Close the open file, then [`Driver::file_closed`].
    CloseFile,
    /// Proxying (`/proxy/`): get a connection to an upstream — unless `fresh`,
    /// an idle one from the worker's pool ([`crate::http::proxy::UpstreamPool`]:
    /// `pick`, then `take`) if it has one, else connect to the upstream picked —
    /// then [`Driver::up_connected`] (saying whether it was pooled), or
    /// [`Driver::up_failed`]. A model gives up a connect at the deadline
    /// ([`Driver::timed_out`]). The model holds the connection until
    /// `UpRelease`, [`Driver::up_failed`], [`Driver::up_eof`] or `Close`.
    UpConnect { deadline: Instant, fresh: bool },
    /// Send [`Driver::up_pending`] to the upstream (a prefix is fine), then
    /// [`Driver::up_sent`]; an error: close the upstream socket, then
    /// [`Driver::up_failed`].
    UpSend { deadline: Instant },
    /// Receive from the upstream into [`Driver::up_recv_buf`], then
    /// [`Driver::up_received`]; EOF: close the upstream socket, then
    /// [`Driver::up_eof`]; an error: close it, then [`Driver::up_failed`].
    UpRecv { deadline: Instant },
    /// The exchange is over: put the upstream connection back in the pool
    /// (`keep`; the pool may close it if full) or close it, then
    /// [`Driver::up_released`].
    UpRelease { keep: bool },
    /// Shut down the write side of the socket, then [`Driver::write_shut`].
    ShutdownWrite,
    /// Lingering close: receive and discard (into `recv_buf`, or the model's own
    /// scratch), then [`Driver::drained`] / [`Driver::eof`].
    Drain { deadline: Instant },
    /// CPU-bound work is under way and has more to do: let the worker's other
    /// connections run (green: `yield_now`; tokio: `yield_now().await`; callback:
    /// a later loop turn), then [`Driver::resumed`] for the next slice. No I/O and
    /// no deadline; a reset the model notices meanwhile is [`Driver::failed`].
    Yield,
    /// Close the socket (and any file and upstream connection still open).
    /// Nothing else follows.
    Close,
}

impl Action {
    /// When the model must call [`Driver::timed_out`], if the action has a deadline.
    pub fn deadline(&self) -> Option<Instant> {
        match *self {
            Action::Recv { deadline, .. }
            | Action::Send { deadline, .. }
            | Action::SendFile { deadline }
            | Action::UpConnect { deadline, .. }
            | Action::UpSend { deadline }
            | Action::UpRecv { deadline }
            | Action::Drain { deadline } => Some(deadline),
            Action::Sleep { until } => Some(until),
            _ => None,
        }
    }
}

/// What the model reports with: the handler, this worker's counters, the server's
/// shutdown signal, and the time of the event (the model reads its clock; the
/// driver never does).
///
/// Shutdown is an input of the driver only: every event method looks at
/// `shutdown` (one atomic load) and, once it is triggered, applies the shutdown
/// policy itself (the grace deadline comes from the signal). A model keeps no
/// shutdown state and never reads the grace deadline; its only part is to wake a
/// connection that waits with nothing to report ([`super::Driver::shutdown`]).
pub struct Env<'a, H> {
    pub handler: &'a H,
    pub stats: &'a WorkerStats,
    pub shutdown: &'a Shutdown,
    pub now: Instant,
}

impl<H> std::fmt::Debug for Env<'_, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").field("now", &self.now).finish()
    }
}

impl<'a, H> Env<'a, H> {
    pub fn new(
        handler: &'a H,
        stats: &'a WorkerStats,
        shutdown: &'a Shutdown,
        now: Instant,
    ) -> Self {
        Env {
            handler,
            stats,
            shutdown,
            now,
        }
    }
}
