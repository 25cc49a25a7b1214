//! What a comparison runs: each scenario's points, and the sweep's offered rates.

use super::{
    Kind, Point, BUSY_CONNECTIONS, LARGE_FILES, QUICK_BUSY_CONNECTIONS, QUICK_SWEEP_FRACTIONS,
    SWEEP_FRACTIONS,
};

/// The points a scenario runs (one unnamed point for single-point scenarios).
pub fn points(kind: Kind, quick: bool) -> Vec<Option<Point>> {
    match kind {
        Kind::Sweep => {
            let f: &[f64] = if quick {
                &QUICK_SWEEP_FRACTIONS
            } else {
                &SWEEP_FRACTIONS
            };
            f.iter()
                .map(|&f| {
                    Some(Point {
                        label: format!("{:.0}%", f * 100.0),
                        value: f,
                    })
                })
                .collect()
        }
        Kind::Busy => {
            let c: &[u64] = if quick {
                &QUICK_BUSY_CONNECTIONS
            } else {
                &BUSY_CONNECTIONS
            };
            c.iter()
                .map(|&c| {
                    Some(Point {
                        label: format!("c{c}"),
                        value: c as f64,
                    })
                })
                .collect()
        }
        Kind::Large => LARGE_FILES
            .iter()
            .map(|(name, size)| {
                Some(Point {
                    label: name.trim_end_matches(".bin").to_string(),
                    value: *size as f64,
                })
            })
            .collect(),
        Kind::Cost => super::COST_POINTS
            .iter()
            .enumerate()
            .map(|(i, l)| {
                Some(Point {
                    label: l.to_string(),
                    value: i as f64,
                })
            })
            .collect(),
        // Its probes' rates come from each server's bisection as it runs.
        Kind::Bound => Vec::new(),
        _ => vec![None],
    }
}

/// The sweep's offered rates: `fractions` of `max_rps`, rounded to 10 req/s
/// (at least 10).
pub fn rate_plan(max_rps: f64, fractions: &[f64]) -> Result<Vec<f64>, String> {
    if !(max_rps.is_finite() && max_rps >= 10.0) {
        return Err(format!(
            "the closed-loop maximum ({max_rps:.1} req/s) is too low to sweep"
        ));
    }
    Ok(fractions
        .iter()
        .map(|f| ((max_rps * f / 10.0).round() * 10.0).max(10.0))
        .collect())
}
