//! summary.md: the answer, then one table per scenario.

use super::answer::fmt_bound;
use super::answer_table::{answer_table, undecided_ratios};
use super::*;

/// The whole summary.md.
pub fn summary(raw: &Raw) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Summary ({} on {})\n", raw.env.host, raw.env.cpu_model);
    let _ = writeln!(
        s,
        "{} · {:.1} s per run × up to {} interleaved rounds (+{:.1} s warm-up) · server CPUs \
         {:?}, load CPUs {:?} · commit {}{}\n",
        raw.date,
        raw.duration_s,
        raw.repeat,
        raw.warmup_s,
        raw.server_cpus,
        raw.load_cpus,
        raw.git_revision,
        if raw.quick {
            " · **--quick smoke run: not for conclusions**"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "Medians over the repetitions, [min–max] in brackets. Latency percentiles come from \
         the exact merge of the repetitions' histograms (from the intended send time in open \
         loop). *noisy*: steal or other processes' CPU above 5 % during a run; *gen-bound*: \
         in closed loop the load generator saturated its core while the server did not; in \
         open loop it fell behind its schedule (over 1 % of sends late, or under 95 % of the \
         rate sent) while the server did not saturate.\n"
    );
    let unavailable: Vec<String> = raw
        .models
        .iter()
        .filter(|m| !m.available)
        .map(|m| format!("`{}` ({})", m.name, m.reason.as_deref().unwrap_or("?")))
        .collect();
    if !unavailable.is_empty() {
        let _ = writeln!(s, "Unavailable: {}\n", unavailable.join(", "));
    }
    let peers: Vec<String> = raw
        .models
        .iter()
        .filter_map(|m| m.peer.as_ref().map(|c| format!("`{}` = `{c}`", m.name)))
        .collect();
    if !peers.is_empty() {
        let _ = writeln!(s, "Reference servers (--peer): {}\n", peers.join(", "));
    }
    answer_table(raw, &mut s);
    rounds_table(raw, &mut s);
    undecided_ratios(raw, &mut s);
    super::costs::cost_table(raw, &mut s);
    let models = measured_models(raw);
    basic_tables(raw, &models, &mut s);
    for sc in present(raw) {
        match sc.kind {
            Kind::Sweep => sweep_table(raw, &models, &mut s),
            Kind::Load {
                keepalive: false, ..
            } => churn_table(raw, sc.name, &models, &mut s),
            Kind::Skew => skew_table(raw, &models, &mut s),
            Kind::Busy => busy_table(raw, &models, &mut s),
            Kind::Large => large_table(raw, &models, &mut s),
            Kind::Downloads => downloads_table(raw, &models, &mut s),
            Kind::Proxy => proxy_table(raw, &models, &mut s),
            Kind::Bound => bound_table(raw, &models, &mut s),
            Kind::Scaling => scaling_table(raw, &models, &mut s),
            _ => {}
        }
    }
    let _ = writeln!(s, "\n## Plots\n");
    for (name, what) in super::super::plots::names(raw) {
        let _ = writeln!(s, "![{what}]({name})\n");
    }
    s
}

/// The bisected bounds: per server the held rate over rounds and the probes it took.
fn bound_table(raw: &Raw, models: &[&str], s: &mut String) {
    let _ = writeln!(s, "## Load–latency bound by bisection (`bound`)\n");
    let _ = writeln!(
        s,
        "Per round and server, the offered rate is bisected (geometric midpoints, from 25 % \
         to 120 % of the closed-loop maximum) until the bracket is within 5 %; a probe holds \
         when its p99 from the intended send time is at or under the bound and no request \
         failed. Per server: the median over rounds of the highest rate held, its exact 95 % \
         order-statistic interval (as the answer's; min–max below 6 rounds) and that \
         interval's half-width as a share of the median; the paired comparison between \
         servers is in the answer. Every probe is drawn in `bound.svg`.\n"
    );
    let _ = write!(s, "| server |");
    for b in LATENCY_BOUNDS_US {
        let _ = write!(s, " p99 ≤ {} | probes |", fmt_bound(b));
    }
    let _ = writeln!(s, "\n|---|{}", "---|---|".repeat(LATENCY_BOUNDS_US.len()));
    for m in models {
        let _ = write!(s, "| {m} |");
        for b in LATENCY_BOUNDS_US {
            let rates = bound_rates(raw, m, b);
            let rounds = rates.len().max(1);
            let probes = raw
                .runs
                .iter()
                .filter(|r| r.scenario == "bound" && r.model == *m && r.repeat > 0)
                .filter(|r| {
                    r.point
                        .as_ref()
                        .is_some_and(|p| p.label.starts_with(&super::super::bound_prefix(b)))
                })
                .count();
            let _ = write!(
                s,
                " {} | {:.1} per round |",
                rate_interval(&rates.into_values().collect::<Vec<_>>()),
                probes as f64 / rounds as f64
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s);
}

/// A per-server bound: `median [lo–hi] ±h %`, the exact 95 % interval of the
/// median over rounds (min–max when there are too few rounds for one).
fn rate_interval(rates: &[f64]) -> String {
    let (md, lo, hi) = match crate::compare::paired::median_interval(rates) {
        Some((md, lo, hi, _)) => (md, lo, hi),
        None => match spread(rates.to_vec()) {
            Some(st) => st,
            None => return "–".into(),
        },
    };
    if md <= 0.0 {
        return "0 (none held)".into();
    }
    let half = (hi - lo) / 2.0 / md * 100.0;
    format!("{} [{}–{}] ±{half:.0} %", n0(md), n0(lo), n0(hi))
}

/// `scaling`: per server, workers and shape, req/s and CPU per request.
fn scaling_table(raw: &Raw, models: &[&str], s: &mut String) {
    let _ = writeln!(s, "## Scaling (`scaling`)\n");
    let shared = raw.scaling_cpus.len() > raw.server_cpus.len();
    let _ = writeln!(
        s,
        "GET / at -c64 closed loop, plain and pipelined ×16; the server runs w workers on the \
         first w of CPUs {:?}, the load on the load CPUs {:?}.{} On a large machine give the \
         server one NUMA node's cores and the load the rest, e.g. `--server-cpus 0-15 \
         --load-cpus 16-31` (one load thread per load CPU), so the load never shares a core \
         with the server.\n",
        if shared {
            &raw.scaling_cpus
        } else {
            &raw.server_cpus
        },
        raw.load_cpus,
        if shared {
            " The server CPUs are one CPU here, so that the workers can still double the \
             server runs on the load CPUs too: from 2 workers on, the load shares their CPUs, \
             so req/s there is what server and load reach together, not the server's ceiling, \
             and server CPU per request (the server's threads only) is the figure to compare."
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "| server | workers | shape | req/s median [min–max] | server CPU µs/req | flags |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for m in models {
        for (label, w) in point_labels(raw, "scaling") {
            let runs = runs_of(raw, "scaling", Some(&label), m);
            let shape = label.split_once(' ').map_or("", |x| x.1);
            let _ = writeln!(
                s,
                "| {m} | {w:.0} | {shape} | {} | {} | {} |",
                cell(stat(&runs, rps), n0),
                med(stat(&runs, cpu_per_req), n2),
                flags(&runs)
            );
        }
    }
    let _ = writeln!(s);
}

/// Per scenario: the rounds it got and why it stopped (runs before rounds-until-
/// resolved have no record: nothing is written).
fn rounds_table(raw: &Raw, s: &mut String) {
    if raw.rounds.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Rounds\n");
    let _ = writeln!(
        s,
        "Every scenario got at least the minimum rounds; then only scenarios with an \
         undecided row got more, until resolved, `--max-rounds`, or `--budget` ({:.0} s) \
         would be overrun by their next round.\n",
        raw.budget_s
    );
    let short = raw
        .rounds
        .iter()
        .any(|r| r.stop == super::super::rounds::Stop::Budget && r.rounds < raw.min_rounds);
    if short {
        if let Some(need) = super::super::rounds::budget_for_minimum(&raw.rounds, raw.min_rounds) {
            let _ = writeln!(
                s,
                "The budget ran out before every scenario had its {} rounds: at the rounds' \
                 measured times that needs about {:.0} min (`--budget {:.0}m`).\n",
                raw.min_rounds,
                need / 60.0,
                (need / 60.0).ceil()
            );
        }
    }
    let _ = writeln!(s, "| scenario | rounds | stopped because | seconds |");
    let _ = writeln!(s, "|---|---|---|---|");
    for r in &raw.rounds {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0} |",
            r.scenario,
            r.rounds,
            r.stop.describe(),
            r.seconds
        );
    }
    let _ = writeln!(s);
}

/// Keep-alive closed/open-loop scenarios and idle memory.
fn basic_tables(raw: &Raw, models: &[&str], s: &mut String) {
    let basic: Vec<_> = present(raw)
        .into_iter()
        .filter(|sc| {
            matches!(
                sc.kind,
                Kind::Load {
                    keepalive: true,
                    ..
                }
            ) || sc.kind == Kind::Idle
        })
        .collect();
    if basic.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Hello-world shapes\n");
    let _ = writeln!(
        s,
        "| scenario | server | req/s median [min–max] | p50 | p99 | p99.9 | server CPU µs/req | \
         peak RSS | RSS/connection | flags |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for sc in &basic {
        for m in models {
            let runs = runs_of(raw, sc.name, None, m);
            if sc.kind == Kind::Idle {
                let per = cell(stat(&runs, idle_bytes), kib);
                let _ = writeln!(
                    s,
                    "| {} | {m} | | | | | | | {per} | {} |",
                    sc.name,
                    flags(&runs)
                );
                continue;
            }
            let h = merged(raw, sc.name, None, m, false);
            let _ = writeln!(
                s,
                "| {} | {m} | {} | {} | {} | {} | {} | {} | | {} |",
                sc.name,
                cell(stat(&runs, rps), n0),
                lat(&h, 0.5),
                lat(&h, 0.99),
                lat(&h, 0.999),
                med(stat(&runs, cpu_per_req), n2),
                med(stat(&runs, peak_rss_mib), |v| format!("{v:.1} MiB")),
                flags(&runs)
            );
        }
    }
    for sc in &basic {
        let Kind::Load {
            rate: Some(rate), ..
        } = sc.kind
        else {
            continue;
        };
        let _ = writeln!(s, "\n`{}` is open loop at {rate:.0} req/s:\n", sc.name);
        for m in models {
            let runs = runs_of(raw, sc.name, None, m);
            let (sends, late) = runs
                .iter()
                .filter_map(|r| r.report.as_ref())
                .fold((0, 0), |a, r| {
                    (a.0 + r.result.sends, a.1 + r.result.late_sends)
                });
            let c = merged_of(&runs, false, false);
            let u = merged_of(&runs, false, true);
            let _ = writeln!(
                s,
                "- `{m}`: p99 {} from the intended send time, {} from the actual send time; \
                 {late} of {sends} sends late",
                lat(&c, 0.99),
                lat(&u, 0.99),
            );
        }
    }
    let _ = writeln!(s);
}

fn sweep_table(raw: &Raw, models: &[&str], s: &mut String) {
    let _ = writeln!(s, "## Load–latency curve (`sweep`)\n");
    let _ = writeln!(
        s,
        "Each server's closed-loop maximum at -c{} is measured first; the open-loop runs \
         offer {} of it. Latency from the intended send time (coordinated omission \
         corrected).\n",
        super::super::SWEEP_CONNECTIONS,
        raw.sweep_fractions()
            .iter()
            .map(|f| format!("{:.0} %", f * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "Highest achieved rate held with p99 under a bound (median [min–max] over repetitions):\n"
    );
    let _ = write!(s, "| server | closed-loop max req/s |");
    for b in LATENCY_BOUNDS_US {
        let _ = write!(s, " p99 ≤ {} |", fmt_bound(b));
    }
    let _ = writeln!(s, "\n|---|---|{}", "---|".repeat(LATENCY_BOUNDS_US.len()));
    for m in models {
        let cal: Vec<&Run> = raw
            .runs
            .iter()
            .filter(|r| r.scenario == "sweep" && r.model == *m && r.repeat == 0)
            .collect();
        let _ = write!(s, "| {m} | {} |", med(stat(&cal, rps), n0));
        for b in LATENCY_BOUNDS_US {
            let _ = write!(
                s,
                " {} |",
                cell(spread(held_rates(raw, m, b).into_values().collect()), n0)
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "\n| server | share | offered req/s | achieved req/s median [min–max] | p50 | p99 | p99.9 | late sends | flags |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for m in models {
        for (label, _) in point_labels(raw, "sweep") {
            let runs = runs_of(raw, "sweep", Some(&label), m);
            let h = merged_of(&runs, false, false);
            let offered = stat(&runs, |r| r.report.as_ref().and_then(|x| x.config.rate));
            let (sends, late) = runs
                .iter()
                .filter_map(|r| r.report.as_ref())
                .fold((0, 0), |a, r| {
                    (a.0 + r.result.sends, a.1 + r.result.late_sends)
                });
            let late = if sends > 0 {
                format!("{:.1} %", late as f64 * 100.0 / sends as f64)
            } else {
                "–".into()
            };
            let _ = writeln!(
                s,
                "| {m} | {label} | {} | {} | {} | {} | {} | {late} | {} |",
                med(offered, n0),
                cell(stat(&runs, rps), n0),
                lat(&h, 0.5),
                lat(&h, 0.99),
                lat(&h, 0.999),
                flags(&runs)
            );
        }
    }
    let _ = writeln!(s);
}

fn churn_table(raw: &Raw, name: &str, models: &[&str], s: &mut String) {
    let _ = writeln!(s, "## Connection churn (`{name}`)\n");
    let _ = writeln!(s, "{}.\n", scenario(name).map_or("", |sc| sc.title));
    let _ = writeln!(
        s,
        "| server | new connections/s median [min–max] | server CPU µs/connection | p50 | p99 | flags |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for m in models {
        let runs = runs_of(raw, name, None, m);
        let h = merged_of(&runs, false, false);
        let _ = writeln!(
            s,
            "| {m} | {} | {} | {} | {} | {} |",
            cell(stat(&runs, conns_per_s), n0),
            med(stat(&runs, cpu_per_conn), n2),
            lat(&h, 0.5),
            lat(&h, 0.99),
            flags(&runs)
        );
    }
    let _ = writeln!(s);
}

fn skew_table(raw: &Raw, models: &[&str], s: &mut String) {
    let _ = writeln!(s, "## CPU skew (`skew`)\n");
    let _ = writeln!(s, "{}.\n", scenario("skew").map_or("", |sc| sc.title));
    let _ = writeln!(
        s,
        "Heavy requests: `GET {}`; serve flags: {}.\n",
        raw.skew_path(),
        super::serve_flags(raw)
    );
    let _ = writeln!(
        s,
        "| server | light p50 | light p99 | light p99.9 | light p99 per run median [min–max] | heavy req/s median [min–max] | heavy p99 | flags |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for m in models {
        let runs = runs_of(raw, "skew", None, m);
        let light = merged_of(&runs, false, false);
        let heavy = merged_of(&runs, true, false);
        let _ = writeln!(
            s,
            "| {m} | {} | {} | {} | {} | {} | {} | {} |",
            lat(&light, 0.5),
            lat(&light, 0.99),
            lat(&light, 0.999),
            cell(stat(&runs, p99), fmt_us),
            cell(stat(&runs, heavy_rps), |v| format!("{v:.1}")),
            lat(&heavy, 0.99),
            flags(&runs)
        );
    }
    let _ = writeln!(s);
}

fn busy_table(raw: &Raw, models: &[&str], s: &mut String) {
    let _ = writeln!(s, "## Many busy connections (`busy`)\n");
    let _ = writeln!(
        s,
        "| server | connections | req/s median [min–max] | p99 | server CPU µs/req | peak RSS | flags |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for m in models {
        for (label, c) in point_labels(raw, "busy") {
            let runs = runs_of(raw, "busy", Some(&label), m);
            let h = merged_of(&runs, false, false);
            let _ = writeln!(
                s,
                "| {m} | {c:.0} | {} | {} | {} | {} | {} |",
                cell(stat(&runs, rps), n0),
                lat(&h, 0.99),
                med(stat(&runs, cpu_per_req), n2),
                med(stat(&runs, peak_rss_mib), |v| format!("{v:.1} MiB")),
                flags(&runs)
            );
        }
    }
    let _ = writeln!(s);
}

fn large_table(raw: &Raw, models: &[&str], s: &mut String) {
    let _ = writeln!(s, "## Large responses (`large`)\n");
    if point_labels(raw, "large")
        .iter()
        .any(|(l, _)| l == crate::compare::MIX_LABEL)
    {
        let files = crate::compare::mix_files();
        let _ = writeln!(
            s,
            "`mix`: every connection requests {} files in turn, {} bytes to {} bytes, each \
             about {:.0} % larger than the one before (mean {:.0} bytes): `/static/{}` … \
             `/static/{}`.\n",
            files.len(),
            files[0].1,
            files[files.len() - 1].1,
            ((files[1].1 as f64 / files[0].1 as f64) - 1.0) * 100.0,
            crate::compare::mix_mean_size(),
            files[0].0,
            files[files.len() - 1].0
        );
    }
    let _ = writeln!(
        s,
        "| server | file | MB/s median [min–max] | req/s | p99 | server CPU µs/MB | flags |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for m in models {
        for (label, _) in point_labels(raw, "large") {
            let runs = runs_of(raw, "large", Some(&label), m);
            let h = merged_of(&runs, false, false);
            let _ = writeln!(
                s,
                "| {m} | {label} | {} | {} | {} | {} | {} |",
                cell(stat(&runs, mb_per_s), n0),
                med(stat(&runs, rps), n0),
                lat(&h, 0.99),
                med(stat(&runs, cpu_per_mb), n0),
                flags(&runs)
            );
        }
    }
    let _ = writeln!(s);
}

fn downloads_table(raw: &Raw, models: &[&str], s: &mut String) {
    let _ = writeln!(s, "## Concurrent downloads (`downloads`)\n");
    let _ = writeln!(
        s,
        "Each connection asks for the 1 MiB file with a {} KiB receive buffer (set before it \
         connects, so the kernel holds little of the file) and stops reading after the \
         response head until every connection has its head; after {} ms the server's RSS \
         (`VmRSS`, summed over its processes) is read, and from `/proc/net/tcp` how many \
         downloads the server had not finished writing (*in flight*). Per download: (RSS then \
         − RSS before the first connection) ÷ in flight. Then the downloads are read to the \
         end, {} at a time (the others stay stalled, so the kernel's TCP memory only falls), \
         and compared with the file byte for byte; any error makes the row *not comparable*. \
         Kernel socket memory is not in RSS. A download may stall for the whole scenario, so \
         every server gets the same {} s send timeout, longer than the harness's own \
         deadlines: the models `{}`, the nginx peer of `scripts/compare.sh` `send_timeout {}s` \
         (another peer keeps its own). The kernel holds about {} KiB of TCP buffers per stalled \
         download (mostly the server's send buffer, which its kernel sizes from the MSS), so \
         unless `--downloads` says otherwise the count is what fits in {:.0} % of the kernel's \
         TCP pressure threshold: past it, segments are dropped and retransmitted after \
         backed-off timeouts.\n",
        crate::compare::downloads::CLIENT_RCVBUF >> 10,
        crate::compare::downloads::SETTLE.as_millis(),
        crate::compare::downloads::DRAIN_WAVE,
        crate::compare::downloads::SEND_TIMEOUT.as_secs(),
        crate::compare::DOWNLOAD_SERVE_FLAGS
            .map(|f| format!("{f} {}s", crate::compare::downloads::SEND_TIMEOUT.as_secs()))
            .join(" "),
        crate::compare::downloads::SEND_TIMEOUT.as_secs(),
        crate::compare::downloads::KERNEL_BYTES_PER_DOWNLOAD >> 10,
        crate::compare::downloads::TCP_MEMORY_SHARE * 100.0
    );
    let _ = writeln!(
        s,
        "| server | downloads | in flight | RSS idle | RSS during | RSS per download median [min–max] | kernel TCP memory | intact | errors | seconds | flags |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for m in models {
        let runs = runs_of(raw, "downloads", None, m);
        let ds: Vec<&crate::compare::downloads::DownloadsResult> =
            runs.iter().filter_map(|r| r.downloads.as_ref()).collect();
        let sum = |f: fn(&crate::compare::downloads::DownloadsResult) -> usize| {
            ds.iter().map(|d| f(d)).sum::<usize>()
        };
        let first_error = ds
            .iter()
            .find_map(|d| d.first_error.clone())
            .or_else(|| runs.iter().find_map(|r| r.error.clone()));
        let mut fl = flags(&runs);
        if let Some(e) = first_error {
            if !fl.is_empty() {
                fl.push_str("; ");
            }
            fl.push_str(&format!("first error: {}", table_text(&e)));
        }
        let _ = writeln!(
            s,
            "| {m} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {fl} |",
            sum(|d| d.downloads),
            sum(|d| d.in_flight),
            med(
                stat(&runs, |r| r
                    .downloads
                    .as_ref()
                    .map(|d| d.rss_idle_kib as f64)),
                |v| format!("{:.1} MiB", v / 1024.0)
            ),
            med(
                stat(&runs, |r| r
                    .downloads
                    .as_ref()
                    .map(|d| d.rss_during_kib as f64)),
                |v| format!("{:.1} MiB", v / 1024.0)
            ),
            cell(stat(&runs, download_bytes), kib),
            med(
                stat(&runs, |r| r
                    .downloads
                    .as_ref()
                    .and_then(|d| d.kernel_tcp_kib)
                    .map(|k| k as f64)),
                |v| format!("{:.0} MiB", v / 1024.0)
            ),
            sum(|d| d.intact),
            sum(|d| d.errors),
            med(
                stat(&runs, |r| r.downloads.as_ref().map(|d| d.seconds)),
                |v| { format!("{v:.1}") }
            ),
        );
    }
    let pressure = raw
        .runs
        .iter()
        .filter_map(|r| r.downloads.as_ref()?.tcp_pressure_kib)
        .next();
    let _ = writeln!(
        s,
        "\nDownloads, in flight, intact and errors are summed over the rounds. *Kernel TCP \
         memory*: the whole machine's TCP buffers at the measurement (`/proc/net/sockstat`), \
         client and server sockets alike, median over rounds{}; above that threshold the kernel \
         drops received segments and holds senders back, and a download can be starved long \
         enough for a server's send timeout to cut it.\n",
        pressure.map_or(String::new(), |p| format!(
            "; the kernel's TCP memory pressure threshold (`tcp_mem`) here is {:.0} MiB",
            p as f64 / 1024.0
        ))
    );
}

fn proxy_table(raw: &Raw, models: &[&str], s: &mut String) {
    let _ = writeln!(s, "## Reverse proxy (`proxy`)\n");
    let cpus = if raw.backend_cpus.is_empty() {
        String::new()
    } else {
        format!(" on CPUs {:?}", raw.backend_cpus)
    };
    let _ = writeln!(
        s,
        "`GET {}` at -c{} closed loop; each server forwards it to a fresh backend \
         (`gvhttpd serve --model tokio --workers 1`{cpus}) as `GET /`. Server CPU is the \
         proxy's own; the backend's is measured the same way and reported apart (it is not \
         counted as other processes' noise). Where the backend shares the load CPUs, its CPU \
         there counts with the generator's: a run whose load CPUs were over 90 % busy is \
         *gen-bound* (`proxy.svg` draws all three figures).\n",
        crate::compare::PROXY_PATH,
        crate::compare::PROXY_CONNECTIONS
    );
    let _ = writeln!(
        s,
        "| server | req/s median [min–max] | p50 | p99 | p99.9 | server CPU µs/req | backend CPU µs/req | flags |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for m in models {
        let runs = runs_of(raw, "proxy", None, m);
        let h = merged_of(&runs, false, false);
        let mut fl = flags(&runs);
        if let Some(e) = runs.iter().find_map(|r| r.error.clone()) {
            if !fl.is_empty() {
                fl.push_str("; ");
            }
            fl.push_str(&format!("first error: {}", table_text(&e)));
        }
        let _ = writeln!(
            s,
            "| {m} | {} | {} | {} | {} | {} | {} | {fl} |",
            cell(stat(&runs, rps), n0),
            lat(&h, 0.5),
            lat(&h, 0.99),
            lat(&h, 0.999),
            med(stat(&runs, cpu_per_req), n2),
            med(stat(&runs, backend_cpu_per_req), n2),
        );
    }
    let _ = writeln!(s);
}

/// `s` safe inside a Markdown table cell: one line, no column breaks.
fn table_text(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}
