//! io_uring pieces shared by the `callback` and `green` models.
//!
//! - [`ring`]: the per-worker [`Ring`] — the buffer-lifetime contract of every
//!   submission (read its module docs first), the SQ backlog, one batched
//!   `io_uring_enter` per loop turn, reaping, counters, the wake eventfd, draining.
//! - [`token`]: `user_data` [`Token`]s (slot, generation, op kind) and the
//!   generation-checked [`Slots`] table that drops stale completions.
//! - [`probe`]: setup-flag fallbacks, the [`Features`] a ring has, and
//!   [`check_available`] for a clear "cause + fix" when io_uring cannot be used.
//! - [`bufring`]: the provided-buffer ring for multishot recv.

pub mod bufring;
pub mod ops;
pub mod probe;
pub mod ring;
pub mod token;

#[cfg(test)]
mod tests;

pub use bufring::BufRing;
pub use ops::{Busy, Returned, Stat};
pub use probe::{check_available, Features};
pub use ring::{Completion, Ring, RingWaker};
pub use token::{OpKind, SlotKey, Slots, Token};

/// For tests that need io_uring: `true` (skip) only when io_uring is unavailable AND
/// `GVHTTPD_SKIP_URING=1` is set, printing a loud SKIPPED line; panics when it is
/// unavailable without that variable, so a broken environment never passes silently.
pub fn skip_if_unavailable() -> bool {
    match check_available() {
        Ok(()) => false,
        Err(msg) if std::env::var("GVHTTPD_SKIP_URING").as_deref() == Ok("1") => {
            eprintln!("SKIPPED (GVHTTPD_SKIP_URING=1): io_uring unavailable: {msg}");
            true
        }
        Err(msg) => panic!("io_uring unavailable ({msg}); set GVHTTPD_SKIP_URING=1 to skip"),
    }
}
