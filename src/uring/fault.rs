//! Fault injection for tests: `GVHTTPD_URING_FAULT`, a comma-separated list of
//! faults (read once per process), each making the io_uring layer behave as the
//! kernel may, so that every model's handling of it runs on demand:
//!
//! - `setup-enomem`: every ring [`super::probe::build_ring`] sets up fails with
//!   ENOMEM, as `io_uring_setup` does when the memlock limit or the kernel's memory
//!   runs out; the start-up probe ([`super::check_available`]) is spared, so this
//!   is a worker's ring failing after the server decided io_uring works. Expected:
//!   exit status 2 and the one-line cause and fix, no hang, no panic.
//! - `short-send`: every send op asks the kernel for at most [`SHORT_SEND`] bytes,
//!   a short send as a full socket buffer gives, so the send-the-rest path runs on
//!   every response. Expected: the same bytes on the wire.
//! - `tiny-bufring`: a provided-buffer ring gets [`TINY_BUF_RING`] buffers, so a
//!   few connections receiving at once run it dry and their multishot recvs end
//!   with ENOBUFS. Expected: the recvs are re-armed once buffers come back
//!   (`/stats` `enobufs` counts them), every request is answered.
//! - `eintr`: every other `io_uring_enter` of [`super::Ring::submit_and_wait`]
//!   fails with EINTR before reaching the kernel, as a signal makes it. Expected:
//!   the caller reaps and comes back; nothing is lost or doubled.
//!
//! Unset, each check is one load of a cached flag.

use std::sync::OnceLock;

/// Bytes a send asks for under `short-send`.
pub const SHORT_SEND: usize = 7;

/// Buffers a provided-buffer ring gets under `tiny-bufring`.
pub const TINY_BUF_RING: u16 = 2;

/// The buffers a provided-buffer ring asked for `entries` gets.
pub fn buf_ring_entries(entries: u16) -> u16 {
    if injected("tiny-bufring") {
        entries.min(TINY_BUF_RING)
    } else {
        entries
    }
}

/// Under `eintr`: should this `io_uring_enter` fail with EINTR? Every other one,
/// per thread.
#[inline]
pub fn interrupt_enter() -> bool {
    static EINTR: OnceLock<bool> = OnceLock::new();
    if !*EINTR.get_or_init(|| injected("eintr")) {
        return false;
    }
    thread_local! {
        static TURN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    TURN.with(|t| {
        t.set(!t.get());
        t.get()
    })
}

/// Is `fault` asked for?
pub fn injected(fault: &str) -> bool {
    static FAULTS: OnceLock<Vec<String>> = OnceLock::new();
    FAULTS
        .get_or_init(|| {
            std::env::var("GVHTTPD_URING_FAULT")
                .map(|v| v.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        })
        .iter()
        .any(|f| f == fault)
}

/// The length a send of `len` bytes asks the kernel for.
#[inline]
pub fn send_len(len: usize) -> usize {
    static SHORT: OnceLock<bool> = OnceLock::new();
    if *SHORT.get_or_init(|| injected("short-send")) {
        len.min(SHORT_SEND)
    } else {
        len
    }
}
