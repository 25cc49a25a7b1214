//! `bench compare` from flags to `raw.json`: check every flag up front, probe the
//! servers, calibrate, then run rounds until the answer resolves or the budget
//! is spent ([`rounds`](super::rounds)).

use super::rounds::{self, Limits, State};
use super::*;
use crate::cli::CliError;
use std::time::Instant;

/// The model rows `gvhttpd serve` knows (its `Variant::ALL`): a name outside
/// this list is refused before anything starts, naming `--models`.
pub const KNOWN_MODELS: [&str; 6] = [
    "callback",
    "tokio",
    "tokio+multi",
    "green",
    "green+steal",
    "green+dedicated",
];

/// Checks `--models`: every name known, none given twice.
pub fn check_models(models: &[String]) -> Result<(), String> {
    if models.is_empty() {
        return Err("--models: no model given".into());
    }
    for m in models {
        if !KNOWN_MODELS.contains(&m.as_str()) {
            return Err(format!(
                "--models: unknown model '{m}' (known: {})",
                KNOWN_MODELS.join(", ")
            ));
        }
    }
    Ok(())
}

/// The `cost` rate: [`COST_SHARE`] of the slowest closed-loop maximum, rounded
/// to 10 req/s; `None` when any server has none (it failed its calibration).
pub fn cost_rate(maxima: &[Option<f64>]) -> Option<f64> {
    let mut slowest = f64::INFINITY;
    for m in maxima {
        slowest = slowest.min((*m)?);
    }
    (slowest.is_finite() && slowest > 0.0)
        .then(|| ((slowest * COST_SHARE / 10.0).round() * 10.0).max(10.0))
}

/// Seconds one round of `kind` is expected to take before one is measured.
fn estimate_round_s(
    kind: Kind,
    quick: bool,
    servers: usize,
    each_s: f64,
    idle_conns: usize,
    scaling_cpus: usize,
    downloads: usize,
) -> f64 {
    let per_server = match kind {
        // Connecting and one request per connection, then 1.5 s of settling.
        Kind::Idle => idle_conns as f64 / 2_000.0 + 2.5,
        // Connecting, 0.7 s of settling, then reading: 14 and 25 s for 5,117
        // downloads on the 2-CPU VM (23 to 92 s for 9,936, the kernel's TCP
        // memory past its pressure threshold).
        Kind::Downloads => downloads as f64 / 2_000.0 + downloads as f64 / 250.0 + 1.0,
        // About five probes per bound.
        Kind::Bound => (5 * LATENCY_BOUNDS_US.len()) as f64 * each_s,
        Kind::Scaling => scaling_points(scaling_cpus).len() as f64 * each_s,
        k => points(k, quick).len() as f64 * each_s,
    };
    per_server * servers as f64
}

/// Runs the comparison and writes the results folder.
pub fn run(a: &CompareArgs) -> Result<(), Failure> {
    let usage = |m: String| Failure::Usage(CliError(m));
    if let Some(path) = &a.from_raw {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("--from-raw {}: {e}", path.display())))?;
        let raw = Raw::from_json(&text)
            .map_err(|e| usage(format!("--from-raw {}: {e}", path.display())))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        output::write_reports(dir, &raw).map_err(Failure::Run)?;
        println!(
            "gvhttpd bench compare: rewrote the summary and plots in {}",
            dir.display()
        );
        return Ok(());
    }
    let server_cpus = crate::sys::parse_cpu_list(&a.server_cpus)
        .map_err(|e| usage(format!("--server-cpus: {e}")))?;
    let load_cpus =
        crate::sys::parse_cpu_list(&a.load_cpus).map_err(|e| usage(format!("--load-cpus: {e}")))?;
    let q = a.quick;
    let duration = a
        .duration
        .as_deref()
        .unwrap_or(if q { "500ms" } else { "1s" });
    let duration = cli::parse_duration(duration).map_err(|e| usage(format!("--duration: {e}")))?;
    let warmup = a
        .warmup
        .as_deref()
        .unwrap_or(if q { "200ms" } else { "300ms" });
    let warmup = cli::parse_duration(warmup).map_err(|e| usage(format!("--warmup: {e}")))?;
    let min_rounds = a
        .repeat
        .unwrap_or(if q { 1 } else { rounds::DEFAULT_MIN_ROUNDS });
    let max_rounds = a.max_rounds.unwrap_or(if q {
        min_rounds
    } else {
        rounds::DEFAULT_MAX_ROUNDS.max(min_rounds)
    });
    let budget = match &a.budget {
        Some(b) => cli::parse_duration(b).map_err(|e| usage(format!("--budget: {e}")))?,
        None => rounds::DEFAULT_BUDGET,
    };
    let idle_conns = a.idle_conns.unwrap_or(if q { 1_000 } else { 10_000 });
    let mut downloads = a.downloads.unwrap_or(if q { 1_000 } else { 10_000 });
    if downloads == 0 {
        return Err(usage("--downloads must be at least 1".into()));
    }
    let backend_cpus = match &a.backend_cpus {
        Some(list) => {
            crate::sys::parse_cpu_list(list).map_err(|e| usage(format!("--backend-cpus: {e}")))?
        }
        None => load_cpus.clone(),
    };
    if min_rounds == 0 {
        return Err(usage("--repeat must be at least 1".into()));
    }
    if max_rounds < min_rounds {
        return Err(usage(format!(
            "--max-rounds ({max_rounds}) must be at least --repeat ({min_rounds})"
        )));
    }
    if duration.is_zero() {
        return Err(usage("--duration must be more than 0".into()));
    }
    if let Some(r) = a.cost_rate {
        if !(r.is_finite() && r >= 1.0) {
            return Err(usage(format!(
                "--cost-rate: {r} is not a rate (at least 1 request per second)"
            )));
        }
    }
    if budget.is_zero() {
        return Err(usage("--budget must be more than 0".into()));
    }
    check_models(&a.models).map_err(usage)?;
    let names = SCENARIOS.map(|s| s.name).join(", ");
    let scenarios: Vec<Scenario> = if a.scenarios.is_empty() {
        SCENARIOS
            .iter()
            .filter(|s| !NOT_BY_DEFAULT.contains(&s.name))
            .copied()
            .collect()
    } else if a.scenarios.iter().any(|n| n == "all") {
        SCENARIOS.to_vec()
    } else {
        a.scenarios
            .iter()
            .map(|n| {
                scenario(n)
                    .copied()
                    .ok_or_else(|| usage(format!("--scenarios: unknown scenario '{n}' ({names})")))
            })
            .collect::<Result<_, _>>()?
    };
    server::check_serve_args(&a.serve_args).map_err(|e| usage(format!("--serve-arg: {e}")))?;
    if !(1..=1_000_000).contains(&a.skew_work_us) {
        return Err(usage(
            "--skew-work-us takes 1 to 1000000 microseconds".into(),
        ));
    }
    let mut targets: Vec<Target> = a.models.iter().cloned().map(Target::Model).collect();
    for p in &a.peers {
        let (name, command) = parse_peer(p).map_err(|e| usage(format!("--peer: {e}")))?;
        targets.push(Target::Peer { name, command });
    }
    for (i, t) in targets.iter().enumerate() {
        if targets[..i].iter().any(|o| o.name() == t.name()) {
            return Err(usage(format!(
                "--models/--peer: the name '{}' is given twice",
                t.name()
            )));
        }
    }
    let exe = match &a.exe {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| Failure::Run(format!("cannot find the gvhttpd executable: {e}")))?,
    };
    let started = Instant::now();
    if scenarios.iter().any(|s| s.kind == Kind::Downloads) {
        // The server inherits this process's limit and holds a socket and an
        // open file per download: a limit too low fails the last downloads
        // with 500s (EMFILE), which would read as the server's fault.
        let hard = crate::sys::nofile_hard_limit();
        if downloads::descriptors_needed(downloads) > hard {
            let fits = (hard.saturating_sub(downloads::descriptors_needed(0)) / 2) as usize;
            if a.downloads.is_some() || fits == 0 {
                return Err(usage(format!(
                    "--downloads {downloads}: the server needs {} descriptors (a socket and the \
                     open file per download), and the hard limit here is {hard}; give at most \
                     {fits}, or raise the limit (ulimit -Hn, LimitNOFILE)",
                    downloads::descriptors_needed(downloads)
                )));
            }
            eprintln!(
                "gvhttpd bench compare: warning: {downloads} downloads need {} descriptors in \
                 the server and the hard limit here is {hard}: running {fits} (give --downloads \
                 to choose, or raise the limit)",
                downloads::descriptors_needed(downloads)
            );
            downloads = fits;
        }
        // Past the kernel's TCP pressure threshold it drops and retransmits,
        // and reading the downloads takes minutes: the default stays under it.
        let pressure = downloads::tcp_pressure_kib();
        if let Some(fits) = downloads::fits_tcp_memory(pressure, downloads::kernel_tcp_kib()) {
            if downloads > fits {
                let mib = pressure.unwrap_or(0) / 1024;
                let held = (downloads as u64 * downloads::KERNEL_BYTES_PER_DOWNLOAD) >> 20;
                if a.downloads.is_some() || fits == 0 {
                    eprintln!(
                        "gvhttpd bench compare: warning: --downloads {downloads} holds about {} \
                         MiB of kernel TCP memory (~{} KiB each), past {:.0} % of its pressure \
                         threshold ({mib} MiB, tcp_mem): expect dropped segments, \
                         retransmissions and slow reading",
                        held,
                        downloads::KERNEL_BYTES_PER_DOWNLOAD >> 10,
                        downloads::TCP_MEMORY_SHARE * 100.0
                    );
                } else {
                    eprintln!(
                        "gvhttpd bench compare: {downloads} downloads would hold about {} MiB of \
                         kernel TCP memory (~{} KiB each), past {:.0} % of its pressure \
                         threshold ({mib} MiB, tcp_mem): running {fits} (give --downloads to \
                         choose)",
                        held,
                        downloads::KERNEL_BYTES_PER_DOWNLOAD >> 10,
                        downloads::TCP_MEMORY_SHARE * 100.0
                    );
                    downloads = fits;
                }
            }
        }
    }
    let max_conns = BUSY_CONNECTIONS[2]
        .max(idle_conns as u64)
        .max(downloads::descriptors_needed(downloads));
    crate::sys::raise_nofile(max_conns + 2048);
    crate::sys::pin_current_thread(&load_cpus).map_err(Failure::Run)?;
    let root = StaticRoot::create().map_err(Failure::Run)?;
    let scaling_cpus = scaling_cpus(&server_cpus, &load_cpus);

    let ctx = Ctx {
        exe: &exe,
        server_cpus: &server_cpus,
        load_cpus: &load_cpus,
        duration,
        warmup,
        idle_conns,
        root: &root.dir,
        serve_args: &a.serve_args,
        skew_path: format!("/work/{}", a.skew_work_us),
        downloads,
        backend_cpus: &backend_cpus,
        scaling_cpus: &scaling_cpus,
    };
    let models: Vec<ModelStatus> = targets.iter().map(|t| ctx.probe(t)).collect();
    let available: Vec<&Target> = targets
        .iter()
        .zip(&models)
        .filter(|(_, m)| m.available)
        .map(|(t, _)| t)
        .collect();
    if available.is_empty() {
        return Err(Failure::Run(format!(
            "no model could be started: {}",
            models
                .iter()
                .map(|m| format!("{}: {}", m.name, m.reason.as_deref().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    let mut raw = Raw {
        schema: "gvhttpd-compare/3".into(),
        command: std::env::args().collect(),
        env: Env::here(),
        rustc: output::command_line("rustc", &["--version"]),
        git_revision: output::command_line("git", &["rev-parse", "--short", "HEAD"]),
        date: output::utc_date(),
        server_cpus: server_cpus.clone(),
        load_cpus: load_cpus.clone(),
        duration_s: duration.as_secs_f64(),
        warmup_s: warmup.as_secs_f64(),
        repeat: 0,
        quick: q,
        models,
        serve_args: a.serve_args.clone(),
        skew_work_us: a.skew_work_us,
        scenarios: scenarios.iter().map(|s| s.name.to_string()).collect(),
        runs: Vec::new(),
        equivalence: a.equivalence,
        rounds: Vec::new(),
        budget_s: budget.as_secs_f64(),
        cost_rate: a.cost_rate,
        min_rounds,
        backend_cpus: if scenarios.iter().any(|s| s.kind == Kind::Proxy) {
            backend_cpus.clone()
        } else {
            Vec::new()
        },
        scaling_cpus: if scenarios.iter().any(|s| s.kind == Kind::Scaling) {
            scaling_cpus.clone()
        } else {
            Vec::new()
        },
    };
    // Starting and stopping a server and the load's connections: about 0.1 s
    // a run in a smoke run; the estimate only matters until a round is measured.
    let each_s = (duration + warmup + Duration::from_millis(200)).as_secs_f64();
    let mut states: Vec<State> = scenarios
        .iter()
        .map(|s| {
            State::new(
                s.name,
                estimate_round_s(
                    s.kind,
                    q,
                    available.len(),
                    each_s,
                    idle_conns,
                    scaling_cpus.len(),
                    downloads,
                ),
            )
        })
        .collect();
    let first: f64 = states.iter().map(|s| s.estimate).sum();
    if first * f64::from(min_rounds) > budget.as_secs_f64() {
        eprintln!(
            "gvhttpd bench compare: warning: {min_rounds} rounds of these scenarios need about \
             {:.0} min, more than --budget ({:.0} min): the last scenarios will get fewer \
             rounds and stay undecided; raise --budget or choose fewer --scenarios",
            first * f64::from(min_rounds) / 60.0,
            budget.as_secs_f64() / 60.0
        );
    }
    eprintln!(
        "gvhttpd bench compare: {} to {} rounds per scenario (a round: every server once), \
         about {:.0} s a round of everything; stops when each scenario's answer resolves or \
         --budget {:.0} s is spent",
        min_rounds,
        max_rounds,
        first,
        budget.as_secs_f64()
    );
    // The first Ctrl-C ends the run in progress within ~50 ms; its server is
    // stopped, nothing more starts, and nothing is written.
    crate::engine::stop_on_sigint();
    let interrupted =
        || Failure::Run("interrupted (Ctrl-C): every server stopped, no results written".into());
    // The sweep's plan per target: its closed-loop maximum, measured once first.
    let mut sweep_max: Vec<Option<f64>> = vec![None; available.len()];
    let has = |k: Kind| scenarios.iter().any(|s| s.kind == k);
    if has(Kind::Sweep) || has(Kind::Bound) || (has(Kind::Cost) && a.cost_rate.is_none()) {
        for (i, t) in available.iter().enumerate() {
            let label = Point {
                label: "max".into(),
                value: 0.0,
            };
            let run = ctx.run_one(t, &SCENARIOS[5], Some(&label), 0, None);
            eprintln!(
                "gvhttpd bench compare: [calibration] {}",
                output::one_line(&run)
            );
            sweep_max[i] = run.report.as_ref().map(|r| r.result.req_per_s);
            raw.runs.push(run);
            if crate::engine::stop_requested() {
                return Err(interrupted());
            }
        }
    }
    if has(Kind::Cost) && raw.cost_rate.is_none() {
        raw.cost_rate = cost_rate(&sweep_max);
        match raw.cost_rate {
            Some(r) => eprintln!("gvhttpd bench compare: cost rate {r:.0} req/s for every server"),
            None => eprintln!(
                "gvhttpd bench compare: no closed-loop maximum: the cost scenario fails (give --cost-rate)"
            ),
        }
    }
    let limits = Limits {
        min_rounds,
        max_rounds,
        budget,
    };
    loop {
        let next = rounds::plan_round(&mut states, started.elapsed().as_secs_f64(), limits);
        if next.is_empty() {
            break;
        }
        for i in next {
            let s = &scenarios[i];
            let round = states[i].rounds + 1;
            let t0 = Instant::now();
            if s.kind == Kind::Bound {
                for run in bound_round(&ctx, s, &available, &sweep_max, round)? {
                    raw.runs.push(run);
                }
            }
            let pts = if s.kind == Kind::Scaling {
                scaling_points(scaling_cpus.len())
            } else {
                points(s.kind, q)
            };
            for point in pts {
                for (j, t) in available.iter().enumerate() {
                    let run = match (s.kind, &point) {
                        (Kind::Sweep, Some(p)) => match sweep_max[j]
                            .ok_or_else(|| "no closed-loop maximum to sweep from".to_string())
                            .and_then(|m| rate_plan(m, &[p.value]).map(|v| v[0]))
                        {
                            Ok(rate) => ctx.run_one(t, s, point.as_ref(), round, Some(rate)),
                            Err(e) => Run {
                                error: Some(e),
                                ..Run::new(t.name(), s.name, round, point.as_ref())
                            },
                        },
                        (Kind::Cost, _) => match raw.cost_rate {
                            Some(rate) => ctx.run_one(t, s, point.as_ref(), round, Some(rate)),
                            None => Run {
                                error: Some("no cost rate: no closed-loop maximum measured".into()),
                                ..Run::new(t.name(), s.name, round, point.as_ref())
                            },
                        },
                        _ => ctx.run_one(t, s, point.as_ref(), round, None),
                    };
                    eprintln!(
                        "gvhttpd bench compare: [round {round}] {}",
                        output::one_line(&run)
                    );
                    raw.runs.push(run);
                    if crate::engine::stop_requested() {
                        return Err(interrupted());
                    }
                }
            }
            let st = &mut states[i];
            st.rounds = round;
            st.seconds += t0.elapsed().as_secs_f64();
            let answers = best_per_scenario(&raw);
            let rows: Vec<&Answer> = answers.iter().filter(|a| a.scenario == s.name).collect();
            st.no_answer = rows.is_empty();
            st.resolved = rows.iter().all(|a| a.resolved());
        }
    }
    raw.rounds = rounds::record(&states);
    raw.repeat = states.iter().map(|s| s.rounds).max().unwrap_or(0);
    for r in &raw.rounds {
        eprintln!(
            "gvhttpd bench compare: {}: {} rounds, {}",
            r.scenario,
            r.rounds,
            r.stop.describe()
        );
    }
    let dir = output::write_all(&a.out, &raw).map_err(Failure::Run)?;
    println!("gvhttpd bench compare: wrote {}", dir.display());
    Ok(())
}

/// One round of `bound`: for each p99 bound, every server's bisection, one
/// probe each in turn (so servers stay interleaved), until every bracket closes.
fn bound_round(
    ctx: &Ctx<'_>,
    s: &Scenario,
    available: &[&Target],
    maxima: &[Option<f64>],
    round: u32,
) -> Result<Vec<Run>, Failure> {
    let mut runs = Vec::new();
    for bound in LATENCY_BOUNDS_US {
        let mut searches: Vec<Option<bisect::Search>> =
            maxima.iter().map(|m| m.map(bisect::Search::new)).collect();
        loop {
            let mut probed = false;
            for (j, t) in available.iter().enumerate() {
                let Some(search) = searches[j].as_mut() else {
                    continue;
                };
                let Some(rate) = search.next() else { continue };
                let point = Point {
                    label: bound_label(bound, search.probes.len() + 1),
                    value: rate,
                };
                let run = ctx.run_one(t, s, Some(&point), round, Some(rate));
                search.record(rate, bound_held(&run, bound));
                eprintln!(
                    "gvhttpd bench compare: [round {round}] {}",
                    output::one_line(&run)
                );
                runs.push(run);
                probed = true;
                if crate::engine::stop_requested() {
                    return Err(Failure::Run(
                        "interrupted (Ctrl-C): every server stopped, no results written".into(),
                    ));
                }
            }
            if !probed {
                break;
            }
        }
    }
    Ok(runs)
}

/// The label prefix of one bound's `bound` probes: `1ms #`.
pub fn bound_prefix(bound_us: u64) -> String {
    format!("{}ms #", bound_us as f64 / 1000.0)
}

/// A `bound` probe's point label: `1ms #3`.
pub fn bound_label(bound_us: u64, probe: usize) -> String {
    format!("{}{probe}", bound_prefix(bound_us))
}

/// Whether a `bound` probe held: it ran, every request succeeded, and its p99
/// (from the intended send time) is at or under the bound.
pub fn bound_held(run: &Run, bound_us: u64) -> bool {
    run.error.is_none()
        && run.report.as_ref().is_some_and(|r| {
            let c = &r.result.counts;
            c.status_4xx + c.status_5xx + c.transport_errors() == 0
                && r.result.latency.p99_us <= bound_us
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_models_are_refused_naming_the_flag() {
        let m = |v: &[&str]| check_models(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(m(&["callback", "green+steal"]), Ok(()));
        let e = m(&["callback", "gren"]).unwrap_err();
        assert!(e.starts_with("--models: unknown model 'gren'"), "{e}");
        assert!(e.contains("green+dedicated"), "{e}");
        assert!(m(&[]).unwrap_err().contains("--models"));
    }

    #[test]
    fn the_cost_rate_is_half_the_slowest_maximum() {
        assert_eq!(
            cost_rate(&[Some(141_971.0), Some(114_434.0)]),
            Some(57_220.0)
        );
        assert_eq!(cost_rate(&[Some(141_971.0), None]), None);
        assert_eq!(cost_rate(&[Some(4.0)]), Some(10.0));
        assert_eq!(cost_rate(&[]), None);
    }

    #[test]
    fn a_round_estimate_counts_points_and_servers() {
        // plaintext: one point; 3 servers at 2.6 s a run.
        let plain = SCENARIOS[0].kind;
        assert!((estimate_round_s(plain, false, 3, 2.6, 0, 1, 0) - 7.8).abs() < 1e-9);
        let sweep = SCENARIOS[5].kind;
        assert!((estimate_round_s(sweep, false, 2, 1.0, 0, 1, 0) - 14.0).abs() < 1e-9);
        assert!((estimate_round_s(Kind::Idle, true, 1, 1.0, 1_000, 1, 0) - 3.0).abs() < 1e-9);
        // scaling on 2 CPUs: 1 and 2 workers, two shapes each.
        assert!((estimate_round_s(Kind::Scaling, false, 3, 1.0, 0, 2, 0) - 12.0).abs() < 1e-9);
        // large: two files and the mix.
        assert!((estimate_round_s(Kind::Large, false, 2, 1.0, 0, 1, 0) - 6.0).abs() < 1e-9);
        // 10,000 downloads: 5 s to connect, 40 s to read, 1 s more, per server.
        let d = estimate_round_s(Kind::Downloads, false, 2, 1.0, 0, 1, 10_000);
        assert!((d - 92.0).abs() < 1e-9, "{d}");
    }
}
