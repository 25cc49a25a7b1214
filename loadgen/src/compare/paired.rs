//! Paired statistics: the ratio of two servers taken within each round, its
//! median over rounds with a 95 % interval, and the verdict it supports.
//!
//! **The interval is the exact order-statistic (sign-test) interval for the
//! median**, not a bootstrap. For `n` independent per-round ratios, the
//! interval between the `k`-th smallest and the `k`-th largest covers the true
//! median with probability `1 − 2·P(Binomial(n, ½) ≤ k − 1)`, whatever the
//! distribution of the ratios; we take the narrowest such interval whose
//! coverage is at least 95 %. Why not a bootstrap: with the few rounds a 2-CPU
//! machine affords, the bootstrap's percentile interval for a median collapses
//! to [min–max] (for n ≤ 5), which covers the median only 75 % (n = 3) to 94 %
//! (n = 5) of the time while calling itself 95 %. The exact interval says
//! plainly that it needs at least [`MIN_ROUNDS_FOR_INTERVAL`] rounds, and needs
//! no seed. Its one assumption is that rounds are exchangeable: rounds are
//! interleaved (A B C A B C …), so a slow minute of the machine hits every server
//! of a round alike and cancels out of the ratio.
//!
//! A ratio is oriented so that above 1 means the first server is better (higher
//! value for higher-is-better metrics, lower for lower-is-better ones).

use serde::{Deserialize, Serialize};

/// Coverage of the interval.
pub const CONFIDENCE: f64 = 0.95;
/// Fewest rounds for which an exact 95 % interval exists (2·½⁶ = 3.1 % ≤ 5 %).
pub const MIN_ROUNDS_FOR_INTERVAL: usize = 6;
/// `--equivalence`: default half-width of the band called "equivalent".
pub const DEFAULT_EQUIVALENCE: f64 = 0.05;

/// P(Binomial(n, ½) ≤ k).
fn binom_half_cdf(n: usize, k: usize) -> f64 {
    let mut c = 1.0f64; // C(n, 0)
    let mut sum = 0.0;
    for i in 0..=k.min(n) {
        if i > 0 {
            c = c * (n + 1 - i) as f64 / i as f64;
        }
        sum += c;
    }
    sum / 2f64.powi(n as i32)
}

/// The median of `v` with its exact interval: (median, lo, hi, coverage).
/// `None` when `v` has fewer than [`MIN_ROUNDS_FOR_INTERVAL`] values that are
/// not NaN. An infinite ratio (the runner-up held no rate at all that round)
/// is a value like any other: order statistics need only the ordering.
pub fn median_interval(v: &[f64]) -> Option<(f64, f64, f64, f64)> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    let n = s.len();
    if n < MIN_ROUNDS_FOR_INTERVAL {
        return None;
    }
    s.sort_by(f64::total_cmp);
    // Largest k (1-based) whose coverage is still at least CONFIDENCE.
    let mut k = 1;
    while k < n / 2 && 1.0 - 2.0 * binom_half_cdf(n, k) >= CONFIDENCE {
        k += 1;
    }
    let coverage = 1.0 - 2.0 * binom_half_cdf(n, k - 1);
    Some((median(&s), s[k - 1], s[n - k], coverage))
}

/// The median of sorted `s` (non-empty).
fn median(s: &[f64]) -> f64 {
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// What the rounds say about two servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Verdict {
    /// The interval excludes 1: `better` is better by `ratio` [lo–hi] (all ≥ 1
    /// when `better` is the first server; the ratio is turned around otherwise).
    Better {
        first: bool,
        ratio: f64,
        lo: f64,
        hi: f64,
    },
    /// The whole interval lies inside [1 − E, 1 + E].
    Equivalent {
        within: f64,
        ratio: f64,
        lo: f64,
        hi: f64,
    },
    /// Neither, after this many paired rounds (`interval` when there was one).
    Undecided {
        rounds: usize,
        interval: Option<(f64, f64, f64)>,
    },
}

impl Verdict {
    /// True when more rounds would not change the kind of answer.
    pub fn resolved(&self) -> bool {
        !matches!(self, Verdict::Undecided { .. })
    }
}

/// The verdict on per-round ratios of the first server to the second.
///
/// Equivalence is checked first: an interval inside ±E is called equivalent
/// even when it also excludes 1, because a difference under E on this shared
/// machine is the size of the order effects interleaving cannot remove, and is
/// not one an operator would size a machine by.
pub fn verdict(ratios: &[f64], equivalence: f64) -> Verdict {
    let Some((md, lo, hi, _)) = median_interval(ratios) else {
        let n = ratios.iter().filter(|r| !r.is_nan()).count();
        return Verdict::Undecided {
            rounds: n,
            interval: None,
        };
    };
    // A tolerance for float noise in ratios that are exactly on a boundary.
    const EPS: f64 = 1e-12;
    if lo >= 1.0 - equivalence - EPS && hi <= 1.0 + equivalence + EPS {
        return Verdict::Equivalent {
            within: equivalence,
            ratio: md,
            lo,
            hi,
        };
    }
    if lo > 1.0 {
        return Verdict::Better {
            first: true,
            ratio: md,
            lo,
            hi,
        };
    }
    if hi < 1.0 {
        return Verdict::Better {
            first: false,
            ratio: 1.0 / md,
            lo: 1.0 / hi,
            hi: 1.0 / lo,
        };
    }
    Verdict::Undecided {
        rounds: ratios.len(),
        interval: Some((md, lo, hi)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_the_exact_sign_test_interval() {
        // n = 5 cannot reach 95 % (min–max covers 1 − 2/32 = 93.75 %).
        assert_eq!(median_interval(&[1.0, 2.0, 3.0, 4.0, 5.0]), None);
        // n = 6: min–max, coverage 1 − 2/64.
        let (md, lo, hi, cov) = median_interval(&[6.0, 1.0, 5.0, 2.0, 4.0, 3.0]).unwrap();
        assert_eq!((md, lo, hi), (3.5, 1.0, 6.0));
        assert!((cov - (1.0 - 2.0 / 64.0)).abs() < 1e-12);
        // n = 9: P(B ≤ 1) = 10/512, so the 2nd smallest to the 2nd largest
        // (coverage 96.1 %); the 3rd would be 82 % (P(B ≤ 2) = 46/512).
        let v: Vec<f64> = (1..=9).map(f64::from).collect();
        let (md, lo, hi, cov) = median_interval(&v).unwrap();
        assert_eq!((md, lo, hi), (5.0, 2.0, 8.0));
        assert!((cov - (1.0 - 20.0 / 512.0)).abs() < 1e-12, "{cov}");
        // n = 20: P(B ≤ 5) = 0.0207, P(B ≤ 6) = 0.0577: the 6th to the 15th.
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let (_, lo, hi, cov) = median_interval(&v).unwrap();
        assert_eq!((lo, hi), (6.0, 15.0));
        assert!((CONFIDENCE..0.96).contains(&cov), "{cov}");
        // NaN (0 ÷ 0: neither server held anything) does not count; an
        // infinite ratio does, as the largest value.
        let mut v = vec![1.0; 5];
        v.push(f64::NAN);
        assert_eq!(median_interval(&v), None);
        v[5] = f64::INFINITY;
        let (md, lo, hi, _) = median_interval(&v).unwrap();
        assert_eq!((md, lo, hi), (1.0, 1.0, f64::INFINITY));
        let v = [2.0, f64::INFINITY, 3.0, 2.5, f64::INFINITY, 4.0];
        assert!(matches!(verdict(&v, 0.05), Verdict::Better { first: true, lo, .. } if lo == 2.0));
    }

    #[test]
    fn binomial_cdf_known_values() {
        assert!((binom_half_cdf(6, 0) - 1.0 / 64.0).abs() < 1e-15);
        assert!((binom_half_cdf(9, 1) - 10.0 / 512.0).abs() < 1e-15);
        assert!((binom_half_cdf(4, 4) - 1.0).abs() < 1e-15);
    }

    /// Six rounds: the interval is [min–max], so boundaries are set exactly.
    fn six(lo: f64, hi: f64) -> Vec<f64> {
        vec![lo, hi, (lo + hi) / 2.0, (lo + hi) / 2.0, lo, hi]
    }

    #[test]
    fn better_needs_the_interval_to_exclude_one() {
        // E = 0.25 keeps the boundary values exact in binary.
        match verdict(&six(1.5, 2.0), 0.25) {
            Verdict::Better {
                first: true,
                lo,
                hi,
                ..
            } => assert_eq!((lo, hi), (1.5, 2.0)),
            v => panic!("{v:?}"),
        }
        // lo exactly 1 does not exclude 1, and hi is outside the band: undecided.
        assert!(matches!(
            verdict(&six(1.0, 2.0), 0.25),
            Verdict::Undecided { rounds: 6, .. }
        ));
        // The second server better: the ratio is turned around.
        match verdict(&six(0.25, 0.5), 0.25) {
            Verdict::Better {
                first: false,
                lo,
                hi,
                ..
            } => assert_eq!((lo, hi), (2.0, 4.0)),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn equivalent_needs_the_whole_interval_inside_the_band() {
        // Exactly on both edges of ±25 %: equivalent.
        assert!(matches!(
            verdict(&six(0.75, 1.25), 0.25),
            Verdict::Equivalent { within, .. } if within == 0.25
        ));
        // Just past an edge: undecided (the interval also straddles 1).
        assert!(matches!(
            verdict(&six(0.75, 1.2500001), 0.25),
            Verdict::Undecided { .. }
        ));
        // Inside the band but excluding 1: still called equivalent.
        assert!(matches!(
            verdict(&six(1.01, 1.04), 0.05),
            Verdict::Equivalent { .. }
        ));
        // The default 5 % band at its edges.
        assert!(matches!(
            verdict(&six(0.95, 1.05), DEFAULT_EQUIVALENCE),
            Verdict::Equivalent { .. }
        ));
    }

    #[test]
    fn undecided_names_the_rounds_it_had() {
        assert_eq!(
            verdict(&[2.0, 2.1, 2.2], 0.05),
            Verdict::Undecided {
                rounds: 3,
                interval: None
            }
        );
        let v = verdict(&six(0.9, 1.2), 0.05);
        assert!(!v.resolved());
        assert_eq!(
            v,
            Verdict::Undecided {
                rounds: 6,
                interval: Some((1.05, 0.9, 1.2))
            }
        );
    }
}
