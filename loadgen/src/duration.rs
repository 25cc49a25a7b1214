//! The one duration syntax of the `gvhttpd` command line, for `serve` and `bench`
//! alike, so the same text means the same time and a bad one gets the same words.
//!
//! A duration is one or more `<number><unit>` terms, spaces allowed between them
//! (`500ms`, `10s`, `1.5s`, `2m`, `1h30m`, `1m 30s`), or a bare number of seconds
//! (`10`, `0`). Units: `ns`, `us` (or `µs`), `ms`, `s` (`sec`), `m` (`min`), `h`.
//! A fraction is exact to the nanosecond (`0.1s` is 100 ms, not 99.999…).

use std::time::Duration;

/// The longest duration accepted: 1000 hours.
pub const MAX: Duration = Duration::from_secs(1000 * 3600);

/// What a duration that must not be zero (a timeout) says when it is.
pub const NOT_ZERO: &str = "must be more than 0";

/// Units and their length in nanoseconds.
const UNITS: [(&str, u128); 10] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("sec", 1_000_000_000),
    ("m", 60_000_000_000),
    ("min", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("hr", 3_600_000_000_000),
];

/// Parses a duration (see the module docs). Errors name the text and what is
/// wrong with it, never the flag: callers prefix the flag.
pub fn parse(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("'{s}' is not a duration: expected a number and a unit, e.g. 500ms, 10s, 2m");
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut rest = t;
    let mut total: u128 = 0;
    let mut terms = 0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_end);
        let after = after.trim_start();
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let scale = if unit.is_empty() {
            // A bare number is seconds, and only on its own (`1m 30` is a slip).
            if terms > 0 || !after.trim().is_empty() {
                return Err(bad());
            }
            1_000_000_000
        } else {
            match UNITS.iter().find(|(u, _)| *u == unit) {
                Some(&(_, ns)) => ns,
                None if unit.chars().all(char::is_alphabetic) && !num.is_empty() => {
                    return Err(format!(
                        "'{s}' is not a duration: unknown unit '{unit}' (use ns, us, ms, s, m or h)"
                    ))
                }
                None => return Err(bad()),
            }
        };
        let ns = term_nanos(num, scale).ok_or_else(bad)?;
        total = total.saturating_add(ns);
        terms += 1;
        rest = after.trim_start();
    }
    if total > MAX.as_nanos() {
        return Err(format!("'{s}' is longer than 1000h"));
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// `num` (digits, at most one `.`) times `scale` nanoseconds, exactly (a
/// fraction finer than a nanosecond is dropped); `None` when `num` is no number.
fn term_nanos(num: &str, scale: u128) -> Option<u128> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return None;
    }
    // 30 digits of nanoseconds is far past MAX: saturate instead of overflowing.
    let int: u128 = if int.is_empty() {
        0
    } else if int.len() > 30 {
        u128::MAX / scale
    } else {
        int.parse().ok()?
    };
    let frac = &frac[..frac.len().min(18)];
    let frac_ns = if frac.is_empty() {
        0
    } else {
        frac.parse::<u128>().ok()? * scale / 10u128.pow(frac.len() as u32)
    };
    Some(int.saturating_mul(scale).saturating_add(frac_ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_forms_people_type() {
        let ok = |s: &str| parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let ms = Duration::from_millis;
        for (s, want) in [
            ("10s", Duration::from_secs(10)),
            ("10", Duration::from_secs(10)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("500ms", ms(500)),
            ("500us", Duration::from_micros(500)),
            ("500µs", Duration::from_micros(500)),
            ("250ns", Duration::from_nanos(250)),
            ("1.5s", ms(1500)),
            ("0.1s", ms(100)),
            (".5s", ms(500)),
            ("2m", Duration::from_secs(120)),
            ("2min", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1h30m", Duration::from_secs(5400)),
            ("1m 30s", Duration::from_secs(90)),
            (" 10 s ", Duration::from_secs(10)),
            ("1000h", MAX),
        ] {
            assert_eq!(ok(s), want, "{s}");
        }
    }

    #[test]
    fn bad_durations_say_why() {
        let e = |s: &str| parse(s).unwrap_err();
        let not = "is not a duration: expected a number and a unit, e.g. 500ms, 10s, 2m";
        for s in ["", "soon", "s", "1.2.3s", "-1s", "1m 30", "10s!", ".s"] {
            assert_eq!(e(s), format!("'{s}' {not}"), "{s}");
        }
        assert_eq!(
            e("10 parsecs"),
            "'10 parsecs' is not a duration: unknown unit 'parsecs' (use ns, us, ms, s, m or h)"
        );
        assert!(e("10S").contains("unknown unit 'S'"), "{}", e("10S"));
        assert_eq!(e("1001h"), "'1001h' is longer than 1000h");
        assert!(e("99999999999999999999999999999999999h").contains("longer than 1000h"));
    }
}
