//! Per-thread `Date` header cache, refreshed at most once a second.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// `Sun, 06 Nov 1994 08:49:37 GMT` is always 29 bytes.
pub const DATE_LEN: usize = 29;

thread_local! {
    /// INVARIANT: `.1` is the IMF-fixdate of second `.0` since the epoch.
    static CACHE: Cell<(u64, [u8; DATE_LEN])> = const { Cell::new((u64::MAX, [0; DATE_LEN])) };
}

/// The current IMF-fixdate, from this thread's cache.
pub fn now() -> [u8; DATE_LEN] {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|c| {
        let (cached, text) = c.get();
        if cached == secs {
            return text;
        }
        let mut fresh = [0u8; DATE_LEN];
        let s = httpdate::fmt_http_date(now);
        let n = s.len().min(DATE_LEN);
        fresh[..n].copy_from_slice(&s.as_bytes()[..n]);
        c.set((secs, fresh));
        fresh
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn date_is_an_imf_fixdate() {
        let d = super::now();
        let s = std::str::from_utf8(&d).unwrap();
        assert!(s.ends_with(" GMT") && s.as_bytes()[3] == b',', "{s}");
        assert!(httpdate::parse_http_date(s).is_ok(), "{s}");
    }
}
