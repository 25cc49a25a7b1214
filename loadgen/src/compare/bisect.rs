//! The load–latency bound by bisection: the highest offered rate whose p99
//! stays under a bound, searched per server until the bracket is within
//! [`BRACKET`] (the fixed sweep could only move between shares of the maximum:
//! 35,490 [35,489–70,991] was a factor of two inside one bracket).
//!
//! The bracket starts at [`START`] shares of the server's closed-loop maximum:
//! the low end is assumed to hold and the high end to fail, and neither is
//! probed unless the search runs into it. Each step probes the geometric
//! midpoint (the bracket is a ratio), so the number of probes is
//! log2(ln(hi/lo) / ln(1 + BRACKET)): 5 from [0.25, 1.2].

/// The bracket is closed when hi ÷ lo ≤ 1 + this.
pub const BRACKET: f64 = 0.05;
/// The starting bracket, as shares of the closed-loop maximum.
pub const START: (f64, f64) = (0.25, 1.2);
/// Probes per search at most (a bracket that does not close stops here).
pub const MAX_PROBES: usize = 8;

/// One server's search for one bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// Highest rate known to hold (assumed at first).
    pub lo: f64,
    /// Lowest rate known to fail (assumed at first).
    pub hi: f64,
    /// (offered rate, held) in the order probed.
    pub probes: Vec<(f64, bool)>,
}

/// Rounds a rate to 10 req/s (at least 10).
fn round10(r: f64) -> f64 {
    ((r / 10.0).round() * 10.0).max(10.0)
}

impl Search {
    /// A search between `START` shares of `max_rps`.
    pub fn new(max_rps: f64) -> Search {
        Search {
            lo: round10(max_rps * START.0),
            hi: round10(max_rps * START.1),
            probes: Vec::new(),
        }
    }

    fn mid(&self) -> f64 {
        round10((self.lo * self.hi).sqrt())
    }

    /// Whether the bracket is within [`BRACKET`] (or too narrow for a probe
    /// between its ends at 10 req/s steps).
    pub fn closed(&self) -> bool {
        let mid = self.mid();
        self.hi <= self.lo * (1.0 + BRACKET) || !(mid > self.lo && mid < self.hi)
    }

    /// The next rate to probe, or `None` when the bracket is closed or the
    /// probes are spent.
    pub fn next(&self) -> Option<f64> {
        (!self.closed() && self.probes.len() < MAX_PROBES).then(|| self.mid())
    }

    /// Records a probe's outcome.
    pub fn record(&mut self, rate: f64, held: bool) {
        self.probes.push((rate, held));
        if held {
            self.lo = self.lo.max(rate);
        } else {
            self.hi = self.hi.min(rate);
        }
    }

    /// The highest probed rate that held (`None` when none did: the bound may
    /// not hold even at the low end).
    pub fn held(&self) -> Option<f64> {
        self.probes
            .iter()
            .filter(|p| p.1)
            .map(|p| p.0)
            .fold(None, |a: Option<f64>, r| Some(a.map_or(r, |a| a.max(r))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue's p99 against offered rate: 50 µs at no load, growing as
    /// 1 / (1 − ρ) towards the capacity.
    fn p99_us(rate: f64, capacity: f64) -> f64 {
        let rho = rate / capacity;
        if rho >= 1.0 {
            f64::INFINITY
        } else {
            50.0 / (1.0 - rho)
        }
    }

    fn search(max: f64, capacity: f64, bound_us: f64) -> Search {
        let mut s = Search::new(max);
        while let Some(r) = s.next() {
            s.record(r, p99_us(r, capacity) <= bound_us);
        }
        s
    }

    #[test]
    fn converges_on_a_synthetic_latency_curve() {
        // p99 ≤ 1 ms holds up to 0.95 × capacity; ≤ 100 µs up to 0.5 ×.
        for (bound, share) in [(1_000.0, 0.95), (100.0, 0.5)] {
            let s = search(100_000.0, 100_000.0, bound);
            let truth = 100_000.0 * share;
            let held = s.held().expect("a rate held");
            assert!(held <= truth, "{held} above the truth {truth}: {s:?}");
            assert!(
                held >= truth / (1.0 + BRACKET) - 10.0,
                "{held} vs {truth}: {s:?}"
            );
            assert!(s.closed(), "{s:?}");
            assert!(s.probes.len() <= 6, "{} probes", s.probes.len());
        }
    }

    #[test]
    fn a_bound_never_met_or_always_met_says_so() {
        // Even the low end fails: nothing held, the bracket collapses down.
        let s = search(100_000.0, 100_000.0, 10.0);
        assert_eq!(s.held(), None);
        assert!(s.hi <= s.lo * (1.0 + BRACKET) + 10.0, "{s:?}");
        // Everything holds: the highest probe sits just under the assumed top.
        let s = search(100_000.0, 1e9, 1_000.0);
        let held = s.held().unwrap();
        assert!((120_000.0 / (1.0 + BRACKET) - 10.0..120_000.0).contains(&held));
    }

    #[test]
    fn probes_are_geometric_midpoints() {
        let mut s = Search::new(100_000.0);
        assert_eq!((s.lo, s.hi), (25_000.0, 120_000.0));
        let first = s.next().unwrap();
        assert_eq!(first, 54_770.0);
        s.record(first, false);
        assert_eq!(s.next(), Some(37_000.0));
    }
}
