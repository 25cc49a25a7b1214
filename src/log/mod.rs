//! What the server writes for its operator: an access log (`--access-log PATH|-`,
//! off by default) in the combined log format, and an error log on stderr, one
//! line per event, each starting with an RFC 3339 UTC timestamp.
//!
//! Neither may slow a model down or block its event loop:
//! - Access log: each worker owns a [`WorkerLog`], a plain byte buffer that
//!   [`WorkerLog::record`] appends one line to (no lock, no syscall, no
//!   allocation once the buffer has grown). Whole buffers go to one writer thread
//!   through a bounded channel, when a buffer fills up and whenever the event loop
//!   calls [`WorkerLog::flush`] off the hot path (between batches of completions,
//!   on a timer). `flush` never blocks: if the writer is behind (a slow disk, a
//!   stdout nobody reads), the buffer keeps growing up to [`MAX_PENDING`] bytes and
//!   then lines are dropped and counted ([`AccessLog::finish`] returns the count).
//! - Error log: 4xx/5xx responses and `--max-conns` refusals are already counted
//!   by the server's counters (`crate::stats`, which sums them into [`Totals`]); a [`Reporter`] turns the change of those counters over
//!   an interval into at most one line, so a flood of bad requests costs nothing
//!   extra on the hot path and cannot flood stderr. Rare events (startup, a
//!   grace-deadline cut, exit) are written directly by [`event`].

use std::fmt;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod access;
pub use access::{open_target, AccessLog, Entry, WorkerLog, FLUSH_AT, MAX_PENDING};

// ---------------------------------------------------------------------------
// Time formatting (no time-zone database: everything is UTC).

/// (year, month 1..=12, day 1..=31) of the civil date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Broken-down UTC time of `secs` since the Unix epoch.
struct Utc {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
}

impl Utc {
    fn of(secs: u64) -> Utc {
        let days = (secs / 86_400) as i64;
        let rem = (secs % 86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Utc {
            year,
            month,
            day,
            hour: rem / 3600,
            min: rem / 60 % 60,
            sec: rem % 60,
        }
    }
}

pub(crate) fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// RFC 3339 UTC with milliseconds: `2026-12-01T09:53:11.042Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = since_epoch(t);
    let u = Utc::of(d.as_secs());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        u.year,
        u.month,
        u.day,
        u.hour,
        u.min,
        u.sec,
        d.subsec_millis()
    )
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The combined log format's time field, brackets included:
/// `[01/Dec/2026:09:53:11 +0000]`.
pub(crate) fn clf_time(secs: u64) -> String {
    let u = Utc::of(secs);
    format!(
        "[{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000]",
        u.day,
        MONTHS[(u.month - 1) as usize],
        u.year,
        u.hour,
        u.min,
        u.sec
    )
}

// ---------------------------------------------------------------------------
// Error log.

/// How serious an error-log line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One error-log line, without its newline: `TIMESTAMP gvhttpd[PID] LEVEL: MESSAGE`.
pub fn format_event(at: SystemTime, level: Level, msg: fmt::Arguments<'_>) -> String {
    format!(
        "{} gvhttpd[{}] {}: {msg}",
        rfc3339(at),
        std::process::id(),
        level.name()
    )
}

/// Writes one error-log line to stderr. For rare events only: a model's hot
/// path must not call this (see [`Reporter`] for per-request events).
pub fn event(level: Level, msg: fmt::Arguments<'_>) {
    let line = format_event(SystemTime::now(), level, msg);
    let mut err = io::stderr().lock();
    // A closed stderr must not take the server down.
    let _ = writeln!(err, "{line}");
}

/// The startup line.
pub fn startup(addr: SocketAddr, model: &str, workers: usize, extra: &str) {
    event(
        Level::Info,
        format_args!(
            "started: listening on http://{addr}, model {model}, {}{extra}",
            crate::config::plural(workers, "worker", "workers")
        ),
    );
}

/// At the shutdown grace deadline, `n` connections still busy were cut.
pub fn grace_cut(n: usize, grace: Duration) {
    if n > 0 {
        event(
            Level::Warn,
            format_args!(
                "shutdown grace of {grace:?} ran out: cut {}",
                crate::config::plural(n, "connection", "connections")
            ),
        );
    }
}

/// The server's lifetime totals, summed over the workers' counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub accepted: u64,
    pub refused: u64,
    pub requests: u64,
    /// By status class: index 0 = 1xx … 4 = 5xx.
    pub responses: [u64; 5],
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.responses;
        write!(
            f,
            "{} accepted, {} refused (--max-conns), {}, responses 1xx {} 2xx {} 3xx {} \
             4xx {} 5xx {}, {} bytes in, {} bytes out",
            self.accepted,
            self.refused,
            crate::config::plural(self.requests as usize, "request", "requests"),
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            self.bytes_in,
            self.bytes_out
        )
    }
}

/// The final line: how the server ended, after how long, with its totals when
/// the caller has them.
pub fn exit_line(code: u8, uptime: Duration, totals: Option<&Totals>) -> String {
    let mut msg = format!(
        "exiting with status {code} after {:.1}s",
        uptime.as_secs_f64()
    );
    if let Some(t) = totals {
        msg.push_str(": ");
        msg.push_str(&t.to_string());
    }
    msg
}

/// Turns the change of the error counters over each interval into at most one
/// line, so no request rate can make the error log grow faster than one line
/// per interval.
#[derive(Debug)]
pub struct Reporter {
    last: Totals,
    interval: Duration,
}

impl Reporter {
    /// Starts from `now` (the counters' current values are not reported).
    pub fn new(now: Totals, interval: Duration) -> Reporter {
        Reporter {
            last: now,
            interval,
        }
    }

    /// The line for what happened since the previous call, if anything did.
    pub fn tick(&mut self, now: Totals) -> Option<String> {
        self.next_line(now).map(|(_, line)| line)
    }

    /// Logs what happened since the previous call, if anything did: `warn` when
    /// the server answered 5xx or refused connections (its own trouble), `info`
    /// when only clients erred (a 404 is an ordinary answer, not a warning).
    pub fn report(&mut self, now: Totals) {
        if let Some((level, line)) = self.next_line(now) {
            event(level, format_args!("{line}"));
        }
    }

    fn next_line(&mut self, now: Totals) -> Option<(Level, String)> {
        let d4 = now.responses[3].saturating_sub(self.last.responses[3]);
        let d5 = now.responses[4].saturating_sub(self.last.responses[4]);
        let refused = now.refused.saturating_sub(self.last.refused);
        self.last = now;
        if d4 + d5 + refused == 0 {
            return None;
        }
        let level = if d5 + refused > 0 {
            Level::Warn
        } else {
            Level::Info
        };
        let line = format!(
            "in the last {:?}: {} 4xx and {} 5xx responses, {} refused at --max-conns",
            self.interval,
            d4,
            d5,
            crate::config::plural(refused as usize, "connection", "connections")
        );
        Some((level, line))
    }
}

/// How often a [`Reporter`] sums up the error counters.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// A per-event rate limit shareable by every worker (lock-free): at most one
/// event per interval is logged, the others are counted and the next logged
/// line says how many were suppressed. For events that have no counter in the
/// server's counters (an `accept` failing with EMFILE, say).
#[derive(Debug)]
pub struct RateLimit {
    epoch: std::time::Instant,
    interval_ms: u64,
    /// Milliseconds since `epoch` before which nothing more is logged.
    next_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimit {
    pub fn new(interval: Duration) -> RateLimit {
        RateLimit {
            epoch: std::time::Instant::now(),
            interval_ms: interval.as_millis().max(1) as u64,
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when this event may be logged now (`n` similar ones were
    /// suppressed since the last logged one); `None` when it is suppressed.
    pub fn check(&self) -> Option<u64> {
        let now = self.epoch.elapsed().as_millis() as u64;
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now + self.interval_ms,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// Logs `msg` unless the limit suppresses it.
    pub fn event(&self, level: Level, msg: fmt::Arguments<'_>) {
        match self.check() {
            Some(0) => event(level, msg),
            Some(n) => event(level, format_args!("{msg} ({n} similar suppressed)")),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(31 + 28), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // 2026-12-01 is day 20,788.
        assert_eq!(civil_from_days(20_788), (2026, 12, 1));
    }

    #[test]
    fn rfc3339_timestamps_are_utc_with_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_118_791_042);
        assert_eq!(rfc3339(t), "2026-12-01T09:53:11.042Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn event_lines_start_with_the_timestamp() {
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        let line = format_event(t, Level::Warn, format_args!("a {}", 1));
        assert_eq!(
            line,
            format!(
                "2000-02-29T00:00:00.000Z gvhttpd[{}] warn: a 1",
                std::process::id()
            )
        );
    }

    #[test]
    fn reporter_makes_one_line_per_interval_whatever_the_flood() {
        let mut t = Totals::default();
        let mut rep = Reporter::new(t, Duration::from_secs(10));
        assert_eq!(rep.tick(t), None, "nothing happened");
        t.responses[3] += 100_000;
        t.refused += 100_000;
        t.responses[4] += 1;
        let line = rep.tick(t).expect("a line");
        assert_eq!(
            line,
            "in the last 10s: 100000 4xx and 1 5xx responses, 100000 connections refused at --max-conns"
        );
        t.refused += 1;
        assert_eq!(
            rep.tick(t).unwrap(),
            "in the last 10s: 0 4xx and 0 5xx responses, 1 connection refused at --max-conns"
        );
        assert_eq!(rep.tick(t), None);
    }

    #[test]
    fn client_errors_alone_are_info_and_server_trouble_is_a_warning() {
        let mut t = Totals::default();
        let mut rep = Reporter::new(t, Duration::from_secs(10));
        t.responses[3] += 1;
        assert_eq!(rep.next_line(t).unwrap().0, Level::Info);
        t.responses[3] += 1;
        t.responses[4] += 1;
        assert_eq!(rep.next_line(t).unwrap().0, Level::Warn);
        t.refused += 1;
        assert_eq!(rep.next_line(t).unwrap().0, Level::Warn);
        assert_eq!(rep.next_line(t), None);
    }

    #[test]
    fn rate_limit_lets_one_event_per_interval_through_and_counts_the_rest() {
        let limit = RateLimit::new(Duration::from_secs(3600));
        assert_eq!(limit.check(), Some(0));
        for _ in 0..1000 {
            assert_eq!(limit.check(), None);
        }
        let fast = RateLimit::new(Duration::from_millis(500));
        assert_eq!(fast.check(), Some(0));
        assert_eq!(fast.check(), None);
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(fast.check(), Some(1), "one suppressed in between");
    }

    #[test]
    fn rate_limit_is_shared_by_threads() {
        let limit = Arc::new(RateLimit::new(Duration::from_secs(3600)));
        let allowed: u64 = (0..4)
            .map(|_| {
                let l = Arc::clone(&limit);
                std::thread::spawn(move || (0..1000).filter(|_| l.check().is_some()).count() as u64)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(allowed, 1);
        assert_eq!(limit.suppressed.load(Ordering::Relaxed), 3999);
    }

    #[test]
    fn totals_and_exit_line() {
        let t = Totals {
            accepted: 5,
            requests: 7,
            responses: [0, 1, 0, 1, 0],
            ..Totals::default()
        };
        assert_eq!(
            exit_line(0, Duration::from_millis(12_340), Some(&t)),
            "exiting with status 0 after 12.3s: 5 accepted, 0 refused (--max-conns), 7 requests, \
             responses 1xx 0 2xx 1 3xx 0 4xx 1 5xx 0, 0 bytes in, 0 bytes out"
        );
        assert_eq!(
            exit_line(2, Duration::ZERO, None),
            "exiting with status 2 after 0.0s"
        );
    }
}
