//! "The answer": for each scenario, which target is best, by how much, and
//! whether the spread makes the difference insignificant.

use super::*;

/// For one scenario (or one point of it): which target is best, and by how much.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// `plaintext`, `busy c1000`, `sweep`, ...
    pub what: String,
    /// What was compared, with its unit and direction.
    pub metric: String,
    pub best: String,
    /// Median, min, max of the best target.
    pub best_stat: (f64, f64, f64),
    /// The runner-up and its median, min, max.
    pub next: Option<(String, (f64, f64, f64))>,
    /// How many times better than the runner-up (>= 1).
    pub ratio: Option<f64>,
    /// The best's and the runner-up's min–max ranges overlap: the difference is
    /// within the spread.
    pub overlap: bool,
}

/// Ranks targets by the median of `values` (each a list over repetitions).
fn answer(
    what: String,
    metric: &str,
    higher_better: bool,
    values: Vec<(&str, Vec<f64>)>,
) -> Option<Answer> {
    let mut ranked: Vec<(&str, (f64, f64, f64))> = values
        .into_iter()
        .filter_map(|(m, v)| spread(v).map(|s| (m, s)))
        .collect();
    ranked.sort_by(|a, b| {
        let o = a.1 .0.total_cmp(&b.1 .0);
        if higher_better {
            o.reverse()
        } else {
            o
        }
    });
    let (best, bs) = *ranked.first()?;
    if higher_better && bs.0 <= 0.0 {
        // Nobody achieved anything (e.g. no sweep point held the bound).
        return Some(Answer {
            what,
            metric: metric.into(),
            best: "none".into(),
            best_stat: bs,
            next: None,
            ratio: None,
            overlap: false,
        });
    }
    let next = ranked.get(1).copied();
    let ratio = next.and_then(|(_, ns)| {
        let r = if higher_better {
            bs.0 / ns.0
        } else {
            ns.0 / bs.0
        };
        r.is_finite().then_some(r)
    });
    let overlap = next.is_some_and(|(_, ns)| bs.1 <= ns.2 && ns.1 <= bs.2);
    Some(Answer {
        what,
        metric: metric.into(),
        best: best.into(),
        best_stat: bs,
        next: next.map(|(n, s)| (n.to_string(), s)),
        ratio,
        overlap,
    })
}

/// The answer for every scenario (and point) in `raw`.
pub fn best_per_scenario(raw: &Raw) -> Vec<Answer> {
    let models = measured_models(raw);
    let mut out = Vec::new();
    let per =
        |sc: &str, point: Option<&str>, f: fn(&Run) -> Option<f64>| -> Vec<(&str, Vec<f64>)> {
            models
                .iter()
                .map(|m| {
                    (
                        *m,
                        runs_of(raw, sc, point, m)
                            .iter()
                            .filter_map(|r| f(r))
                            .collect(),
                    )
                })
                .collect()
        };
    for sc in present(raw) {
        let name = sc.name;
        match sc.kind {
            Kind::Load { .. } if name == "sleep" => {
                out.extend(answer(
                    name.into(),
                    "server CPU µs/req (lower is better)",
                    false,
                    per(name, None, cpu_per_req),
                ));
            }
            Kind::Load {
                keepalive: false, ..
            } => {
                out.extend(answer(
                    name.into(),
                    "new connections/s",
                    true,
                    per(name, None, conns_per_s),
                ));
            }
            Kind::Load { .. } => {
                out.extend(answer(name.into(), "req/s", true, per(name, None, rps)));
            }
            Kind::Idle => {
                out.extend(answer(
                    name.into(),
                    "RSS bytes per idle connection (lower is better)",
                    false,
                    per(name, None, idle_bytes),
                ));
            }
            Kind::Sweep => {
                for bound in LATENCY_BOUNDS_US {
                    let v = models
                        .iter()
                        .map(|m| (*m, held_rates(raw, m, bound)))
                        .collect();
                    out.extend(answer(
                        format!("sweep (p99 ≤ {})", fmt_bound(bound)),
                        "highest achieved req/s with p99 under the bound",
                        true,
                        v,
                    ));
                }
            }
            Kind::Skew => {
                out.extend(answer(
                    format!("{name} (light)"),
                    "p99 µs of the light requests (lower is better)",
                    false,
                    per(name, None, p99),
                ));
                out.extend(answer(
                    format!("{name} (heavy)"),
                    "heavy /work req/s",
                    true,
                    per(name, None, heavy_rps),
                ));
            }
            Kind::Busy => {
                for (label, _) in point_labels(raw, name) {
                    out.extend(answer(
                        format!("{name} {label}"),
                        "req/s",
                        true,
                        per(name, Some(&label), rps),
                    ));
                }
            }
            Kind::Large => {
                for (label, _) in point_labels(raw, name) {
                    out.extend(answer(
                        format!("{name} {label}"),
                        "MB/s",
                        true,
                        per(name, Some(&label), mb_per_s),
                    ));
                }
            }
        }
    }
    out
}

pub(super) fn fmt_bound(us: u64) -> String {
    if us >= 1000 {
        format!("{} ms", us / 1000)
    } else {
        format!("{us} µs")
    }
}

fn fmt_metric(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

pub(super) fn answer_table(raw: &Raw, s: &mut String) {
    let answers = best_per_scenario(raw);
    if answers.is_empty() {
        return;
    }
    let _ = writeln!(s, "## The answer\n");
    let _ = writeln!(
        s,
        "Best per scenario by the median over repetitions, [min–max] in brackets; the ratio \
         is against the runner-up. *within spread*: the two min–max ranges overlap, so the \
         difference is not significant at this number of repetitions ({}).\n",
        raw.repeat
    );
    let _ = writeln!(
        s,
        "| scenario | metric | best | median [min–max] | runner-up | median [min–max] | ratio | significant? |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for a in answers {
        let (md, lo, hi) = a.best_stat;
        let (next, next_cell) = a.next.as_ref().map_or(("–".into(), "–".into()), |(n, st)| {
            (
                format!("`{n}`"),
                format!(
                    "{} [{}–{}]",
                    fmt_metric(st.0),
                    fmt_metric(st.1),
                    fmt_metric(st.2)
                ),
            )
        });
        let sig = match (&a.next, a.overlap) {
            (None, _) if a.best == "none" => "no server reached it",
            (None, _) => "–",
            (Some(_), true) => "no: within spread",
            (Some(_), false) if raw.repeat < 2 => "no spread (1 repetition)",
            (Some(_), false) => "yes",
        };
        let _ = writeln!(
            s,
            "| {} | {} | **{}** | {} [{}–{}] | {next} | {next_cell} | {} | {sig} |",
            a.what,
            a.metric,
            if a.best == "none" {
                "none".to_string()
            } else {
                format!("`{}`", a.best)
            },
            fmt_metric(md),
            fmt_metric(lo),
            fmt_metric(hi),
            a.ratio.map_or("–".into(), |r| format!("{r:.2}×")),
        );
    }
    let _ = writeln!(s);
}
