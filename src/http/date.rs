//! Per-thread `Date` header cache, derived from the event time the model passes in
//! (`Env::now`), so answering a request reads no clock: the wall clock is read
//! once when a new second begins, and every response within that second copies the
//! cached text.

use std::cell::Cell;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `Sun, 06 Nov 1994 08:49:37 GMT` is always 29 bytes.
pub const DATE_LEN: usize = 29;

#[derive(Clone, Copy)]
struct Cached {
    /// The text is valid for event times before this instant (the next second).
    until: Option<Instant>,
    text: [u8; DATE_LEN],
}

thread_local! {
    /// INVARIANT: `text` is the IMF-fixdate of the wall-clock second that was
    /// current when `until` was computed, and `until` is when that second ends.
    static CACHE: Cell<Cached> = const {
        Cell::new(Cached { until: None, text: [0; DATE_LEN] })
    };
}

/// The IMF-fixdate for an event at `now` (the model's clock reading). Never
/// inlined: a green thread may call it on its stack and then move to another OS
/// thread, and an inlined thread-local address could be reused there (`green::tls`).
#[inline(never)]
pub fn at(now: Instant) -> [u8; DATE_LEN] {
    let c = CACHE.get();
    match c.until {
        Some(until) if now < until => c.text,
        _ => refresh(now),
    }
}

#[cold]
fn refresh(now: Instant) -> [u8; DATE_LEN] {
    let wall = SystemTime::now();
    let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let left = Duration::from_secs(1) - Duration::from_nanos(u64::from(since.subsec_nanos()));
    // Formatted straight into the fixed buffer: `fmt_http_date` would allocate a
    // `String` once a second, inside some request's answer.
    let mut text = [0u8; DATE_LEN];
    let _ = write!(&mut text[..], "{}", httpdate::HttpDate::from(wall));
    CACHE.set(Cached {
        until: Some(now + left),
        text,
    });
    text
}

/// The current IMF-fixdate (reads the clock; for callers without an event time).
pub fn now() -> [u8; DATE_LEN] {
    at(Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_is_an_imf_fixdate_and_cached_within_its_second() {
        let t = Instant::now();
        let d = at(t);
        let s = std::str::from_utf8(&d).unwrap();
        assert!(s.ends_with(" GMT") && s.as_bytes()[3] == b',', "{s}");
        assert!(httpdate::parse_http_date(s).is_ok(), "{s}");
        assert_eq!(at(t), d, "the same event time gives the same text");
        let later = at(t + Duration::from_secs(2));
        let parsed = |b: &[u8]| httpdate::parse_http_date(std::str::from_utf8(b).unwrap());
        assert!(parsed(&later).unwrap() >= parsed(&d).unwrap());
    }
}
