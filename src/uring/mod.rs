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
//! - [`counters`]: the single-writer [`Counter`] and the ring's [`UringCounters`]
//!   (the application's `/stats` embeds them; nothing here imports it).

pub mod bufring;
pub mod counters;
pub mod fault;
pub mod ops;
mod owned;
pub mod probe;
pub mod ring;
pub mod token;

#[cfg(test)]
mod tests;

pub use bufring::BufRing;
pub use counters::{Counter, UringCounters};
pub use ops::Busy;
pub use owned::{Returned, Stat};
pub use probe::{check_available, Features, UringOptions};
pub use ring::{Completion, Ring, RingWaker};
pub use token::{OpKind, SlotKey, Slots, Token};

/// For tests that need io_uring: `true` (skip) only when io_uring is unavailable AND
/// `GVHTTPD_SKIP_URING=1` is set, printing a loud SKIPPED line; panics when it is
/// unavailable without that variable, so a broken environment never passes silently.
pub fn skip_if_unavailable() -> bool {
    match check_available() {
        Ok(()) => false,
        Err(msg) if std::env::var("GVHTTPD_SKIP_URING").as_deref() == Ok("1") => {
            record_skip(&format!(
                "GVHTTPD_SKIP_URING=1 and io_uring unavailable: {msg}"
            ));
            true
        }
        Err(msg) => panic!("io_uring unavailable ({msg}); set GVHTTPD_SKIP_URING=1 to skip"),
    }
}

/// For tests: record that the running test skipped its claim (`reason` says why)
/// so that the suite's summary counts it as skipped, never as passed. libtest has
/// no runtime skip, so the test still returns `ok`; `.ci/run` reads the log and
/// moves every logged test that libtest reported `ok` from "passed" to
/// "skipped", naming it. Call it right before the test returns.
///
/// The log is `$GVHTTPD_SKIP_LOG` (set by `.ci/run`), else
/// `target/skipped-tests.log` in the workspace; one line per skip:
/// `<test binary>\t<test name>\t<reason>`. The test name is libtest's name for
/// the thread running the test.
pub fn record_skip(reason: &str) {
    use std::io::Write;
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test thread>")
        .to_string();
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            // Cargo names test binaries `<crate>-<16 hex digits>`.
            Some((name, hash))
                if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                name.to_string()
            }
            _ => stem,
        })
        .unwrap_or_else(|| "<unknown binary>".to_string());
    let reason = reason.replace(['\t', '\n'], " ");
    eprintln!("SKIPPED {binary} {test}: {reason}");
    let path = std::env::var_os("GVHTTPD_SKIP_LOG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/skipped-tests.log")
        });
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // One write(2) per line on an O_APPEND file: concurrent tests do not interleave.
    let line = format!("{binary}\t{test}\t{reason}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        // A skip that cannot be recorded would read as a pass: fail instead.
        panic!("could not record the skip in {}: {e}", path.display());
    }
}
