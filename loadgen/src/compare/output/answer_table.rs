//! The answer as Markdown: the verdict per row, why each metric, and for the
//! rows still undecided, the per-round ratios that keep them so.

use super::super::paired::{self, Verdict};
use super::answer::best_per_scenario;
use super::*;

/// Why each headline metric is the one (one line per scenario kind, for the summary).
pub const METRIC_REASONS: &str = "Why these metrics: on 2 CPUs one load core saturates \
near 150–170 k req/s, so closed-loop req/s mostly measures the load generator (*gen-bound*) \
and cannot separate the models; server CPU per request is what the server itself spent, and \
the generator's speed cancels out of it to first order, so it is the headline of the \
closed-loop shapes (`plaintext`, `pipelined`, `json`, `busy`). Closed-loop CPU per request \
still favours the faster server (more requests per wake-up), which is what `cost` removes: \
every server at the same offered rate. `sleep` is open loop at a fixed rate, so it is a \
cost row too. `churn` is per new connection. `large` has two rows per file (and for the mix): \
MB/s and server CPU per MB, what the bytes cost; the load's receive buffers are fixed (256 KiB, \
`--recv-buffer`) because on loopback the receive window decides whether a 1 MiB response is \
sent, and counted, in the server's own `sendfile` or from the generator's reads, and with \
autotuned buffers that flipped from run to run for every server alike. `downloads` is the server's RSS per download in flight; `proxy` the server's CPU \
per proxied request (the backend's is reported apart). `skew` keeps the light requests' p99 and the heavy req/s; \
`sweep` the highest rate held under each p99 bound.";

fn fmt_metric(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A ratio with two decimals, or ∞.
fn fr(x: f64) -> String {
    if x.is_infinite() {
        "∞".into()
    } else {
        format!("{x:.2}")
    }
}

/// A verdict in words, naming `best` and `next` as it applies.
pub fn verdict_text(v: &Verdict, best: &str, next: &str) -> String {
    let rounds = |n: usize| format!("{n} round{}", if n == 1 { "" } else { "s" });
    match v {
        Verdict::Better {
            first,
            ratio,
            lo,
            hi,
        } => format!(
            "`{}` better by {}× [{}–{}]",
            if *first { best } else { next },
            fr(*ratio),
            fr(*lo),
            fr(*hi)
        ),
        Verdict::Equivalent { within, .. } => {
            format!("equivalent within ±{:.0} %", within * 100.0)
        }
        Verdict::Undecided {
            rounds: n,
            interval,
        } => match interval {
            Some((md, lo, hi)) => format!(
                "undecided after {} ({}× [{}–{}])",
                rounds(*n),
                fr(*md),
                fr(*lo),
                fr(*hi)
            ),
            None => format!(
                "undecided after {} (an exact 95 % interval needs {})",
                rounds(*n),
                paired::MIN_ROUNDS_FOR_INTERVAL
            ),
        },
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
        "Per round (every server once, interleaved), the best server's value is divided by \
         the runner-up's; the row gives the median of those ratios with its exact 95 % \
         order-statistic interval (distribution-free; it needs at least {} rounds, and a \
         bootstrap over so few rounds would claim more than it knows). A row says *better* \
         when the interval excludes 1, *equivalent* when it lies inside ±{:.0} % \
         (`--equivalence`), otherwise *undecided*. A server with failed requests or runs \
         cannot be best: *not comparable*.\n",
        paired::MIN_ROUNDS_FOR_INTERVAL,
        raw.equivalence * 100.0
    );
    let _ = writeln!(s, "{METRIC_REASONS}\n");
    let _ = writeln!(
        s,
        "| scenario | metric | best (median) | runner-up (median) | answer | against references | not comparable |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for a in &answers {
        let name = |o: &Option<(String, f64)>| {
            o.as_ref().map_or("–".to_string(), |(n, v)| {
                format!("`{n}` ({})", fmt_metric(*v))
            })
        };
        let best = a.best.as_ref().map_or("", |b| b.0.as_str());
        let next = a.next.as_ref().map_or("", |b| b.0.as_str());
        let verdict = match (&a.verdict, &a.best) {
            (Some(v), _) => verdict_text(v, best, next),
            (None, Some(_)) => "no comparable runner-up".into(),
            (None, None) => "no comparable server reached it".into(),
        };
        let refs = a
            .references
            .iter()
            .map(|(r, v)| format!("vs `{r}`: {}", verdict_text(v, best, r)))
            .collect::<Vec<_>>()
            .join("; ");
        let nc = a
            .not_comparable
            .iter()
            .map(|(n, why)| format!("`{n}`: {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {verdict} | {} | {} |",
            a.what,
            a.metric,
            if best.is_empty() {
                "none".to_string()
            } else {
                format!("**{}**", name(&a.best))
            },
            name(&a.next),
            if refs.is_empty() { "–" } else { &refs },
            if nc.is_empty() { "–" } else { &nc },
        );
    }
    let _ = writeln!(s);
}

/// The per-round ratios of the rows still undecided after at least the rounds
/// an interval needs: what the noise looks like, and so what more rounds would
/// have to overcome.
pub(super) fn undecided_ratios(raw: &Raw, s: &mut String) {
    let answers = best_per_scenario(raw);
    let stuck: Vec<_> = answers
        .iter()
        .filter(|a| {
            matches!(a.verdict, Some(Verdict::Undecided { .. }))
                && a.ratios.len() >= paired::MIN_ROUNDS_FOR_INTERVAL
        })
        .collect();
    if stuck.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Why the undecided rows are undecided\n");
    let _ = writeln!(
        s,
        "Per round, best ÷ runner-up (above 1: the best was better that round), in round \
         order. The interval is the sign test's: it excludes 1 only when few enough rounds \
         fall on the other side of 1 (at most 1 of 9, 2 of 12, 3 of 15), so a row whose \
         rounds keep landing on both sides needs many more rounds or does not differ.\n"
    );
    for a in stuck {
        let below = a.ratios.iter().filter(|r| **r < 1.0).count();
        let _ = writeln!(
            s,
            "- {} (`{}` ÷ `{}`, {} of {} rounds below 1): {}",
            a.what,
            a.best.as_ref().map_or("", |b| b.0.as_str()),
            a.next.as_ref().map_or("", |b| b.0.as_str()),
            below,
            a.ratios.len(),
            a.ratios
                .iter()
                .map(|r| fr(*r))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(s);
}
