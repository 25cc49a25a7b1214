//! "The answer": for each scenario (or point), which server is best, by how much
//! within each round, and what the rounds let us say about it (see
//! [`paired`](super::super::paired)).
//!
//! A server with failed requests or runs in a row cannot be best in it: its row
//! says *not comparable: N of M failed* (nginx answering every heavy `/work`
//! with 404 served its light requests on an idle CPU, and looked best).

use super::super::paired::{self, Verdict};
use super::*;
use std::collections::BTreeMap;

/// For one scenario (or one point of it): which server is best, and by how much.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// `plaintext`, `busy c1000`, `sweep (p99 ≤ 1 ms)`, ...
    pub what: String,
    /// The scenario it belongs to (for the rounds-until-resolved loop).
    pub scenario: String,
    /// What was compared, with its unit and direction.
    pub metric: String,
    pub higher_better: bool,
    /// The best comparable server and its median over rounds.
    pub best: Option<(String, f64)>,
    /// The runner-up and its median.
    pub next: Option<(String, f64)>,
    /// Per paired round: best ÷ runner-up, oriented so that > 1 is better.
    pub ratios: Vec<f64>,
    /// Best against runner-up; `None` without a runner-up.
    pub verdict: Option<Verdict>,
    /// Servers that cannot be best here, and why.
    pub not_comparable: Vec<(String, String)>,
    /// The best against each reference (`--peer`) row other than the runner-up.
    pub references: Vec<(String, Verdict)>,
}

impl Answer {
    /// True when more rounds cannot change the answer's kind: a verdict that is
    /// not undecided, or nothing to compare.
    pub fn resolved(&self) -> bool {
        self.verdict.as_ref().is_none_or(Verdict::resolved)
    }
}

/// Per round, the value of `f` on the runs of (scenario, point, model).
pub fn per_round(
    raw: &Raw,
    scenario: &str,
    point: Option<&str>,
    model: &str,
    f: impl Fn(&Run) -> Option<f64>,
) -> BTreeMap<u32, f64> {
    runs_of(raw, scenario, point, model)
        .into_iter()
        .filter(|r| r.error.is_none())
        .filter_map(|r| f(r).map(|v| (r.repeat, v)))
        .collect()
}

/// Why the runs cannot make their server best, or `None`: failed runs, or
/// requests answered with 4xx/5xx or lost to a transport error or timeout.
pub fn failures(runs: &[&Run]) -> Option<String> {
    let failed_runs = runs.iter().filter(|r| r.error.is_some()).count();
    let (mut failed, mut total) = (0u64, 0u64);
    for rep in runs
        .iter()
        .flat_map(|r| r.report.iter().chain(r.heavy.iter()))
    {
        let c = &rep.result.counts;
        let bad = c.status_4xx + c.status_5xx + c.transport_errors();
        failed += bad;
        total += rep.result.requests + c.transport_errors();
    }
    for d in runs.iter().filter_map(|r| r.downloads.as_ref()) {
        failed += d.errors as u64;
        total += d.downloads as u64;
    }
    let mut why = Vec::new();
    if failed > 0 {
        why.push(format!("{failed} of {total} failed"));
    }
    if failed_runs > 0 {
        why.push(format!("{failed_runs} of {} runs failed", runs.len()));
    }
    (!why.is_empty()).then(|| format!("not comparable: {}", why.join(", ")))
}

fn median_of(v: &BTreeMap<u32, f64>) -> Option<f64> {
    spread(v.values().copied().collect()).map(|s| s.0)
}

/// Per paired round, `a` against `b`, oriented so that > 1 means `a` is better.
fn ratios(a: &BTreeMap<u32, f64>, b: &BTreeMap<u32, f64>, higher_better: bool) -> Vec<f64> {
    a.iter()
        .filter_map(|(round, va)| {
            let vb = b.get(round)?;
            let r = if higher_better { va / vb } else { vb / va };
            (!r.is_nan()).then_some(r)
        })
        .collect()
}

/// One answer row from every server's per-round values and failures.
pub struct RowInput<'a> {
    pub what: String,
    pub scenario: &'a str,
    pub metric: &'a str,
    pub higher_better: bool,
    /// (server, per-round values, why not comparable).
    pub servers: Vec<(&'a str, BTreeMap<u32, f64>, Option<String>)>,
    /// Names of the reference (`--peer`) rows.
    pub references: Vec<&'a str>,
    pub equivalence: f64,
}

/// Ranks the comparable servers by their median and judges best against runner-up.
pub fn answer(input: RowInput<'_>) -> Answer {
    let RowInput {
        what,
        scenario,
        metric,
        higher_better,
        servers,
        references,
        equivalence,
    } = input;
    let mut not_comparable = Vec::new();
    let mut ranked: Vec<(&str, f64, &BTreeMap<u32, f64>)> = Vec::new();
    for (name, values, failed) in &servers {
        if let Some(why) = failed {
            not_comparable.push((name.to_string(), why.clone()));
        } else if let Some(md) = median_of(values) {
            ranked.push((name, md, values));
        }
    }
    ranked.sort_by(|a, b| {
        let o = a.1.total_cmp(&b.1);
        if higher_better {
            o.reverse()
        } else {
            o
        }
    });
    let mut out = Answer {
        what,
        scenario: scenario.to_string(),
        metric: metric.to_string(),
        higher_better,
        best: None,
        next: None,
        ratios: Vec::new(),
        verdict: None,
        not_comparable,
        references: Vec::new(),
    };
    let Some(&(best, bmd, bv)) = ranked.first() else {
        return out;
    };
    if higher_better && bmd <= 0.0 {
        // Nobody achieved anything (e.g. no rate held the bound).
        return out;
    }
    let (mut best, mut bmd, mut bv) = (best, bmd, bv);
    if let Some(&(next, nmd, nv)) = ranked.get(1) {
        let (mut next, mut nmd, mut nv) = (next, nmd, nv);
        let mut r = ratios(bv, nv, higher_better);
        let mut v = paired::verdict(&r, equivalence);
        let paired_favour_next = match v {
            Verdict::Better { first, .. } => !first,
            // Undecided, but more rounds went the runner-up's way: name it as
            // leading, so the row and its per-round ratios read the same way.
            Verdict::Undecided {
                interval: Some((md, _, _)),
                ..
            } => md < 1.0,
            Verdict::Undecided { .. } | Verdict::Equivalent { .. } => false,
        };
        if paired_favour_next {
            // The rounds, paired, favour the runner-up: it is the best.
            std::mem::swap(&mut best, &mut next);
            std::mem::swap(&mut bmd, &mut nmd);
            std::mem::swap(&mut bv, &mut nv);
            r = ratios(bv, nv, higher_better);
            v = paired::verdict(&r, equivalence);
        }
        out.next = Some((next.to_string(), nmd));
        out.ratios = r;
        out.verdict = Some(v);
        for (name, _, values) in &ranked {
            if *name != best && *name != next && references.contains(name) {
                let rv = paired::verdict(&ratios(bv, values, higher_better), equivalence);
                out.references.push((name.to_string(), rv));
            }
        }
    }
    out.best = Some((best.to_string(), bmd));
    out
}

/// Ends the `what` of a `large` row judged by server CPU per MB (the row
/// without it is judged by MB/s).
pub const CPU_PER_MB_SUFFIX: &str = "(CPU/MB)";

/// A headline metric: what it is, whether higher is better, how to read it.
pub type Metric = (&'static str, bool, fn(&Run) -> Option<f64>);

/// The headline metric of a scenario (none for `sweep` and `skew`, which have two).
pub fn metric_of(sc: &super::super::Scenario) -> Option<Metric> {
    Some(match sc.kind {
        Kind::Load {
            keepalive: false, ..
        } => (
            "server CPU µs per connection (lower is better)",
            false,
            cpu_per_conn,
        ),
        Kind::Load { .. } | Kind::Busy => {
            ("server CPU µs/req (lower is better)", false, cpu_per_req)
        }
        Kind::Idle => (
            "RSS bytes per idle connection (lower is better)",
            false,
            idle_bytes,
        ),
        Kind::Large => ("MB/s", true, mb_per_s),
        Kind::Downloads => (
            "RSS bytes per download in flight (lower is better)",
            false,
            download_bytes,
        ),
        Kind::Proxy => (
            "server CPU µs per proxied request (lower is better)",
            false,
            cpu_per_req,
        ),
        Kind::Cost => (
            "server CPU µs/req at the same offered rate (lower is better)",
            false,
            cpu_per_req,
        ),
        Kind::Sweep | Kind::Skew | Kind::Bound | Kind::Scaling => return None,
    })
}

/// The answer for every scenario (and point) in `raw`.
pub fn best_per_scenario(raw: &Raw) -> Vec<Answer> {
    let models = measured_models(raw);
    let refs: Vec<&str> = raw
        .models
        .iter()
        .filter(|m| m.available && m.peer.is_some())
        .map(|m| m.name.as_str())
        .collect();
    let eq = raw.equivalence;
    let row = |what: String,
               sc: &'static str,
               point: Option<&str>,
               metric: &'static str,
               hb: bool,
               f: &dyn Fn(&Run) -> Option<f64>| {
        let servers = models
            .iter()
            .map(|m| {
                let runs = runs_of(raw, sc, point, m);
                (*m, per_round(raw, sc, point, m, f), failures(&runs))
            })
            .collect();
        answer(RowInput {
            what,
            scenario: sc,
            metric,
            higher_better: hb,
            servers,
            references: refs.clone(),
            equivalence: eq,
        })
    };
    let mut out = Vec::new();
    let bisected = present(raw).iter().any(|s| s.kind == Kind::Bound);
    for sc in present(raw) {
        let name = sc.name;
        match sc.kind {
            // The bisection answers the bounds; the sweep then only draws the curve.
            Kind::Sweep if bisected => {}
            Kind::Bound => {
                for bound in LATENCY_BOUNDS_US {
                    let servers = models
                        .iter()
                        .map(|m| {
                            let runs = runs_of_all_points(raw, name, m);
                            (*m, bound_rates(raw, m, bound), failed_runs_only(&runs))
                        })
                        .collect();
                    out.push(answer(RowInput {
                        what: format!("bound (p99 ≤ {})", fmt_bound(bound)),
                        scenario: name,
                        metric: "highest offered req/s with p99 under the bound (bisected to 5 %)",
                        higher_better: true,
                        servers,
                        references: refs.clone(),
                        equivalence: eq,
                    }));
                }
            }
            Kind::Sweep => {
                for bound in LATENCY_BOUNDS_US {
                    let servers = models
                        .iter()
                        .map(|m| {
                            let runs = runs_of_all_points(raw, name, m);
                            (*m, held_rates(raw, m, bound), failures(&runs))
                        })
                        .collect();
                    out.push(answer(RowInput {
                        what: format!("sweep (p99 ≤ {})", fmt_bound(bound)),
                        scenario: name,
                        metric: "highest achieved req/s with p99 under the bound",
                        higher_better: true,
                        servers,
                        references: refs.clone(),
                        equivalence: eq,
                    }));
                }
            }
            Kind::Skew => {
                out.push(row(
                    format!("{name} (light)"),
                    name,
                    None,
                    "p99 µs of the light requests (lower is better)",
                    false,
                    &p99,
                ));
                out.push(row(
                    format!("{name} (heavy)"),
                    name,
                    None,
                    "heavy /work req/s",
                    true,
                    &heavy_rps,
                ));
            }
            Kind::Busy | Kind::Large => {
                let Some((metric, hb, f)) = metric_of(sc) else {
                    continue;
                };
                for (label, _) in point_labels(raw, name) {
                    out.push(row(
                        format!("{name} {label}"),
                        name,
                        Some(&label),
                        metric,
                        hb,
                        &f,
                    ));
                    // Files: what the bytes cost the server, beside how fast they went.
                    if sc.kind == Kind::Large {
                        out.push(row(
                            format!("{name} {label} {CPU_PER_MB_SUFFIX}"),
                            name,
                            Some(&label),
                            "server CPU µs per MB (lower is better)",
                            false,
                            &cpu_per_mb,
                        ));
                    }
                }
            }
            Kind::Cost => {
                let Some((metric, hb, f)) = metric_of(sc) else {
                    continue;
                };
                out.push(row(name.into(), name, Some(COST_POINTS[0]), metric, hb, &f));
            }
            // A description of how servers scale, not a contest: no answer row.
            Kind::Scaling => {}
            _ => {
                if let Some((metric, hb, f)) = metric_of(sc) {
                    out.push(row(name.into(), name, None, metric, hb, &f));
                }
            }
        }
    }
    out
}

/// For `bound`: a probe with failed requests simply did not hold (past its
/// capacity a server may time requests out); only runs that failed outright
/// make a server not comparable.
fn failed_runs_only(runs: &[&Run]) -> Option<String> {
    let failed = runs.iter().filter(|r| r.error.is_some()).count();
    (failed > 0).then(|| format!("not comparable: {failed} of {} runs failed", runs.len()))
}

/// Every measured run of one server in a multi-point scenario.
fn runs_of_all_points<'a>(raw: &'a Raw, scenario: &str, model: &str) -> Vec<&'a Run> {
    raw.runs
        .iter()
        .filter(|r| r.scenario == scenario && r.model == model && r.repeat > 0)
        .collect()
}

pub(super) fn fmt_bound(us: u64) -> String {
    if us >= 1000 {
        format!("{} ms", us / 1000)
    } else {
        format!("{us} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rounds(v: &[f64]) -> BTreeMap<u32, f64> {
        v.iter()
            .enumerate()
            .map(|(i, x)| (i as u32 + 1, *x))
            .collect()
    }

    fn input<'a>(servers: Vec<(&'a str, BTreeMap<u32, f64>, Option<String>)>) -> RowInput<'a> {
        RowInput {
            what: "skew (light)".into(),
            scenario: "skew",
            metric: "p99",
            higher_better: false,
            servers,
            references: vec!["nginx"],
            equivalence: 0.05,
        }
    }

    #[test]
    fn a_failing_peer_cannot_be_best() {
        // nginx is ten times faster, but it failed requests: it is not comparable.
        let a = answer(input(vec![
            ("green", rounds(&[2200.0; 6]), None),
            ("tokio", rounds(&[2800.0; 6]), None),
            (
                "nginx",
                rounds(&[284.0; 6]),
                Some("not comparable: 3 of 9 failed".into()),
            ),
        ]));
        assert_eq!(a.best.as_ref().unwrap().0, "green");
        assert_eq!(a.next.as_ref().unwrap().0, "tokio");
        assert_eq!(
            a.not_comparable,
            vec![(
                "nginx".to_string(),
                "not comparable: 3 of 9 failed".to_string()
            )]
        );
        assert!(matches!(
            a.verdict,
            Some(Verdict::Better { first: true, .. })
        ));
        assert!(a.references.is_empty(), "nginx is not comparable: {a:?}");
        let md = verdict_text(a.verdict.as_ref().unwrap(), "green", "tokio");
        assert!(md.starts_with("`green` better by 1.27×"), "{md}");
    }

    #[test]
    fn failures_count_requests_and_runs() {
        assert_eq!(failures(&[]), None);
        let failed = Run {
            model: "nginx".into(),
            scenario: "sleep".into(),
            repeat: 1,
            point: None,
            report: None,
            heavy: None,
            idle: None,
            error: Some("no successful responses".into()),
            extra: None,
            downloads: None,
        };
        assert_eq!(
            failures(&[&failed]).as_deref(),
            Some("not comparable: 1 of 1 runs failed")
        );
    }

    #[test]
    fn paired_rounds_can_overturn_the_ranking_by_median() {
        // Higher is better. By medians a (50) leads b (4.4), but within rounds b
        // is 10 % ahead in 8 of 9: the 95 % interval of a ÷ b lies below 1.
        let a = rounds(&[1.0, 2.0, 3.0, 4.0, 50.0, 60.0, 70.0, 80.0, 90.0]);
        let b = rounds(&[1.1, 2.2, 3.3, 4.4, 1.0, 66.0, 77.0, 88.0, 99.0]);
        let mut i = input(vec![("a", a, None), ("b", b, None)]);
        i.higher_better = true;
        let out = answer(i);
        assert_eq!(out.best.as_ref().unwrap().0, "b", "{out:?}");
        assert_eq!(out.next.as_ref().unwrap().0, "a");
        match out.verdict {
            Some(Verdict::Better {
                first: true, ratio, ..
            }) => {
                assert!((ratio - 1.1).abs() < 1e-9, "{ratio}")
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn an_undecided_row_names_the_server_the_rounds_favour() {
        // Lower is better. By medians a (5.0) leads b (5.9), but in 6 of 9
        // paired rounds b was cheaper: undecided, with b leading.
        let a = rounds(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let b = rounds(&[0.9, 1.9, 2.9, 3.9, 9.5, 5.9, 6.9, 9.6, 9.7]);
        let mut i = input(vec![("a", a, None), ("b", b, None)]);
        i.higher_better = false;
        let out = answer(i);
        assert_eq!(out.best.as_ref().unwrap().0, "b", "{out:?}");
        match out.verdict {
            Some(Verdict::Undecided {
                interval: Some((md, _, _)),
                ..
            }) => assert!(md > 1.0, "{md}"),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn only_rounds_both_servers_have_are_paired() {
        let a: BTreeMap<u32, f64> = [(1, 2.0), (2, 2.0), (4, 2.0)].into_iter().collect();
        let b: BTreeMap<u32, f64> = [(1, 1.0), (3, 1.0), (4, 0.0)].into_iter().collect();
        // Rounds 2 and 3 have no pair; round 4's b held nothing: a is
        // infinitely better there (higher is better), and b 0 × as good.
        assert_eq!(ratios(&a, &b, true), vec![2.0, f64::INFINITY]);
        assert_eq!(ratios(&a, &b, false), vec![0.5, 0.0]);
        let z: BTreeMap<u32, f64> = [(1, 0.0)].into_iter().collect();
        assert!(ratios(&z, &z, true).is_empty(), "0 ÷ 0 is no ratio");
    }
}
