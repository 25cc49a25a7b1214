//! Latency histograms: one per load thread (no sharing while recording), merged at
//! the end; serialised as base64 of HdrHistogram's V2 encoding so that two runs'
//! JSON files can be merged exactly.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Lowest recordable latency: 1 µs.
pub const LOWEST_US: u64 = 1;
/// Highest recordable latency: 60 s (larger values are clamped to it).
pub const HIGHEST_US: u64 = 60_000_000;
/// Significant decimal digits kept.
pub const SIGFIG: u8 = 3;

/// Percentiles shown in summaries and kept in JSON.
pub const PERCENTILES: [f64; 6] = [50.0, 75.0, 90.0, 99.0, 99.9, 99.99];

/// A latency histogram in microseconds.
pub type Hist = Histogram<u64>;

/// An empty histogram with the project's bounds.
pub fn new_hist() -> Hist {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG).expect("constant bounds are valid")
}

/// Records `us` microseconds, clamped to the histogram's range.
pub fn record(h: &mut Hist, us: u64) {
    // Clamped into range, so recording cannot fail.
    let _ = h.record(us.clamp(LOWEST_US, HIGHEST_US));
}

/// Merges `src` into `dst`. Histograms made here share bounds, so this is exact;
/// one decoded from elsewhere with wider bounds has its values clamped instead.
pub fn merge(dst: &mut Hist, src: &Hist) {
    if dst.add(src).is_err() {
        for v in src.iter_recorded() {
            let us = v.value_iterated_to().clamp(LOWEST_US, HIGHEST_US);
            let _ = dst.record_n(us, v.count_at_value());
        }
    }
}

/// The V2 serialisation of `h` as base64.
pub fn encode(h: &Hist) -> String {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut bytes)
        .expect("serialising into a Vec cannot fail");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes what [`encode`] produced.
pub fn decode(s: &str) -> Result<Hist, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    let mut h: Hist = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram does not decode: {e:?}"))?;
    h.auto(false);
    Ok(h)
}

/// The numbers a summary shows, in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Responses recorded.
    pub count: u64,
    pub mean_us: f64,
    pub stdev_us: f64,
    pub min_us: u64,
    pub p50_us: u64,
    pub p75_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub p9999_us: u64,
    pub max_us: u64,
}

impl LatencySummary {
    /// Summarises `h`.
    pub fn of(h: &Hist) -> Self {
        let q = |p: f64| h.value_at_quantile(p / 100.0);
        LatencySummary {
            count: h.len(),
            mean_us: if h.is_empty() { 0.0 } else { h.mean() },
            stdev_us: if h.is_empty() { 0.0 } else { h.stdev() },
            min_us: if h.is_empty() { 0 } else { h.min() },
            p50_us: q(50.0),
            p75_us: q(75.0),
            p90_us: q(90.0),
            p99_us: q(99.0),
            p999_us: q(99.9),
            p9999_us: q(99.99),
            max_us: if h.is_empty() { 0 } else { h.max() },
        }
    }

    /// (label, value) pairs for the percentile table.
    pub fn rows(&self) -> [(&'static str, u64); 7] {
        [
            ("50%", self.p50_us),
            ("75%", self.p75_us),
            ("90%", self.p90_us),
            ("99%", self.p99_us),
            ("99.9%", self.p999_us),
            ("99.99%", self.p9999_us),
            ("max", self.max_us),
        ]
    }
}

/// Formats microseconds the way wrk does (`85.00us`, `1.23ms`, `2.00s`).
pub fn fmt_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.2}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1_000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

/// The percentile spectrum in HdrHistogram's `.hgrm` text format (values in ms).
pub fn hgrm(h: &Hist) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in h.iter_quantiles(1) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let value_ms = v.value_iterated_to() as f64 / 1_000.0;
        let inv = if q < 1.0 {
            format!("{:>14.2}", 1.0 / (1.0 - q))
        } else {
            format!("{:>14}", "inf")
        };
        let _ = writeln!(out, "{value_ms:>12.3} {q:>14.12} {total:>10} {inv}");
    }
    let s = LatencySummary::of(h);
    let _ = writeln!(
        out,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        s.mean_us / 1e3,
        s.stdev_us / 1e3
    );
    let _ = writeln!(
        out,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        s.max_us as f64 / 1e3,
        s.count
    );
    out
}

/// (percentile, latency µs) points for plotting a percentile curve.
pub fn spectrum(h: &Hist) -> Vec<(f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(5)
        .map(|v| (v.quantile_iterated_to() * 100.0, v.value_iterated_to()))
        .collect()
}
