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
            .chain(std::iter::once(Some(Point {
                label: super::MIX_LABEL.to_string(),
                value: super::mix_mean_size(),
            })))
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
        // Its points depend on --server-cpus: [`scaling_points`].
        Kind::Scaling => Vec::new(),
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

/// Worker counts of the `scaling` scenario on `cpus` server CPUs: 1, 2, 4, …
/// up to `cpus`, and `cpus` itself when it is not a power of two.
pub fn scaling_plan(cpus: usize) -> Vec<usize> {
    let mut v = Vec::new();
    let mut w = 1;
    while w <= cpus {
        v.push(w);
        w *= 2;
    }
    if cpus > 0 && v.last() != Some(&cpus) {
        v.push(cpus);
    }
    v
}

/// The CPUs the `scaling` scenario's servers run on: the server CPUs when they
/// are two or more; where they are one (the 2-CPU default), that one and the
/// load CPUs, so the workers still double (the load then shares the CPUs of
/// the second and later workers, which the summary says).
pub fn scaling_cpus(server: &[usize], load: &[usize]) -> Vec<usize> {
    let mut v = server.to_vec();
    if v.len() < 2 {
        for c in load {
            if !v.contains(c) {
                v.push(*c);
            }
        }
    }
    v
}

/// The load shapes of `scaling`: (label, pipeline depth).
pub const SCALING_SHAPES: [(&str, u64); 2] = [("plain", 1), ("pipelined", 16)];

/// The points of `scaling` on `cpus` server CPUs: `w2 pipelined` has value 2.
pub fn scaling_points(cpus: usize) -> Vec<Option<Point>> {
    scaling_plan(cpus)
        .into_iter()
        .flat_map(|w| {
            SCALING_SHAPES.iter().map(move |(shape, _)| {
                Some(Point {
                    label: format!("w{w} {shape}"),
                    value: w as f64,
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scaling_plan_doubles_up_to_the_server_cpus() {
        // The 2-CPU machine: 1 and 2 workers, plain and pipelined each.
        assert_eq!(scaling_plan(2), vec![1, 2]);
        let labels: Vec<String> = scaling_points(2)
            .into_iter()
            .map(|p| p.unwrap().label)
            .collect();
        assert_eq!(
            labels,
            ["w1 plain", "w1 pipelined", "w2 plain", "w2 pipelined"]
        );
        assert_eq!(scaling_plan(1), vec![1]);
        assert_eq!(scaling_plan(6), vec![1, 2, 4, 6]);
        assert_eq!(scaling_plan(16), vec![1, 2, 4, 8, 16]);
        assert!(scaling_plan(0).is_empty());
    }

    #[test]
    fn scaling_on_one_server_cpu_takes_the_load_cpus_too() {
        // The 2-CPU default (server 0, load 1): 1 worker on CPU 0, 2 on 0 and 1.
        assert_eq!(scaling_cpus(&[0], &[1]), vec![0, 1]);
        assert_eq!(scaling_plan(scaling_cpus(&[0], &[1]).len()), vec![1, 2]);
        // Server CPUs of their own are kept as given, the load apart.
        assert_eq!(scaling_cpus(&[0, 1, 2, 3], &[4, 5]), vec![0, 1, 2, 3]);
        // A load CPU that is the server's is not counted twice.
        assert_eq!(scaling_cpus(&[0], &[0]), vec![0]);
        assert_eq!(scaling_cpus(&[3], &[1, 3]), vec![3, 1]);
    }
}
