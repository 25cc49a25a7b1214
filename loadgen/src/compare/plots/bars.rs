//! Bar plots: per-scenario bars with spread, churn, skew, large responses.

use super::*;

/// One bar panel: `groups` along x, one bar per model in each (median, with a
/// min–max line). With one group the models name the x ticks; with several the
/// groups do and a legend names the models.
pub(super) fn bar_panel(
    area: &Area<'_>,
    caption: &str,
    y_desc: &str,
    groups: &[String],
    models: &[&str],
    stats: &[Vec<Stat>],
) -> Res<()> {
    let top = stats
        .iter()
        .flatten()
        .flatten()
        .map(|s| s.2)
        .fold(0.0, f64::max)
        // Headroom for the legend when there is one.
        * if groups.len() > 1 { 1.45 } else { 1.1 };
    let (yt, step) = ticks_linear(top);
    let ytop = *yt.last().unwrap_or(&1.0);
    let n = models.len().max(1);
    let g = groups.len().max(1);
    let single = g == 1;
    let labels: Vec<String> = if single {
        models.iter().map(|m| m.to_string()).collect()
    } else {
        groups.to_vec()
    };
    let xticks: Vec<f64> = if single {
        (0..n).map(|i| i as f64).collect()
    } else {
        (0..g).map(|i| i as f64).collect()
    };
    let xmax = if single { n } else { g } as f64 - 0.5;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 16))
        .margin(10)
        .margin_right(20)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(Lin::new(-0.5, xmax, xticks), Lin::new(0.0, ytop, yt))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|x| {
            let i = x.round();
            labels
                .get(i.max(0.0) as usize)
                .filter(|_| (x - i).abs() < 0.01)
                .cloned()
                .unwrap_or_default()
        })
        .y_desc(y_desc)
        .y_label_formatter(&|y| fmt_tick(*y, step))
        .draw()?;
    let width = if single { 0.6 } else { 0.8 / n as f64 };
    for (i, m) in models.iter().enumerate() {
        let c = color(i, m);
        for (gi, st) in stats.iter().enumerate() {
            let Some((md, lo, hi)) = st.get(i).copied().flatten() else {
                continue;
            };
            let x = if single {
                i as f64
            } else {
                gi as f64 - 0.4 + width * (i as f64 + 0.5)
            };
            let bar = chart.draw_series(std::iter::once(Rectangle::new(
                [(x - width * 0.45, 0.0), (x + width * 0.45, md)],
                c.filled(),
            )))?;
            if !single && gi == 0 {
                bar.label(*m).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled())
                });
            }
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, lo), (x, hi)],
                BLACK.stroke_width(2),
            )))?;
        }
    }
    if !single {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}

/// Per model, the spread of `f` over the runs of (scenario, point).
pub(super) fn stats_of(
    raw: &Raw,
    models: &[&str],
    scenario: &str,
    point: Option<&str>,
    f: fn(&Run) -> Option<f64>,
) -> Vec<Stat> {
    models
        .iter()
        .map(|m| stat(&runs_of(raw, scenario, point, m), f))
        .collect()
}

/// One panel per scenario, one bar per model.
pub(super) fn per_scenario_bars(
    raw: &Raw,
    scenarios: &[&str],
    title: &str,
    y_desc: &str,
    f: fn(&Run) -> Option<f64>,
) -> Res<String> {
    let models = measured_models(raw);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let cond = "-c64 closed loop (sleep: -c1000 open loop at 5000 req/s); bars: median, \
                    lines: min–max";
        let body = frame(
            &root,
            &format!("{title} (median, min–max)"),
            &subtitle(raw, cond),
        )?;
        let panels = body.split_evenly((1, scenarios.len().max(1)));
        for (panel, sc) in panels.iter().zip(scenarios) {
            let st = stats_of(raw, &models, sc, None, f);
            bar_panel(panel, sc, y_desc, &[sc.to_string()], &models, &[st])?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// One bar panel: (caption, y axis title, per group the stats per model).
pub(super) type Panel<'a> = (&'a str, &'a str, Vec<Vec<Stat>>);

/// Bar panels side by side, each with the same groups and models.
pub(super) fn bar_panels(
    raw: &Raw,
    title: &str,
    conditions: &str,
    groups: &[String],
    panels: &[Panel<'_>],
) -> Res<String> {
    let models = measured_models(raw);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let body = frame(&root, title, &subtitle(raw, conditions))?;
        let areas = body.split_evenly((1, panels.len().max(1)));
        for (area, (caption, y_desc, stats)) in areas.iter().zip(panels) {
            bar_panel(area, caption, y_desc, groups, &models, stats)?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// Two bar panels side by side.
pub(super) fn two_bar_panels(
    raw: &Raw,
    title: &str,
    conditions: &str,
    groups: &[String],
    left: Panel<'_>,
    right: Panel<'_>,
) -> Res<String> {
    bar_panels(raw, title, conditions, groups, &[left, right])
}

/// `downloads`: the server's RSS per download in flight, one bar per server.
pub(super) fn downloads(raw: &Raw) -> Res<String> {
    let models = measured_models(raw);
    let kib = |r: &Run| download_bytes(r).map(|b| b / 1024.0);
    let n = raw
        .runs
        .iter()
        .find_map(|r| r.downloads.as_ref().map(|d| d.downloads))
        .unwrap_or(0);
    let conditions = format!(
        "{n} downloads of the 1 MiB file at once, stalled after the head · {} KiB client \
         receive buffers · {} s send timeout",
        super::super::downloads::CLIENT_RCVBUF >> 10,
        super::super::downloads::SEND_TIMEOUT.as_secs()
    );
    bar_panels(
        raw,
        "Concurrent downloads: server RSS per download in flight (median, min–max)",
        &conditions,
        &["downloads".to_string()],
        &[(
            "RSS growth ÷ downloads in flight (kernel socket buffers not included)",
            "server RSS per download (KiB)",
            vec![stats_of(raw, &models, "downloads", None, kib)],
        )],
    )
}

/// `proxy`: req/s and the server's CPU per proxied request, and the backend's
/// CPU per request in a panel of its own (the same backend behind every server).
pub(super) fn proxy(raw: &Raw) -> Res<String> {
    let models = measured_models(raw);
    let per = |f: fn(&Run) -> Option<f64>| vec![stats_of(raw, &models, "proxy", None, f)];
    bar_panels(
        raw,
        "Reverse proxy: GET /proxy/ forwarded to one backend (median, min–max)",
        &format!(
            "GET {} at -c{} closed loop · backend gvhttpd tokio, 1 worker, CPUs {:?}",
            super::super::PROXY_PATH,
            super::super::PROXY_CONNECTIONS,
            raw.backend_cpus
        ),
        &["proxy".to_string()],
        &[
            ("throughput", "throughput (req/s)", per(rps)),
            (
                "server CPU per proxied request",
                "server CPU per request (µs)",
                per(cpu_per_req),
            ),
            (
                "backend CPU per request (apart)",
                "backend CPU per request (µs)",
                per(backend_cpu_per_req),
            ),
        ],
    )
}

pub(super) fn churn(raw: &Raw, name: &str) -> Res<String> {
    let models = measured_models(raw);
    let g = vec![name.to_string()];
    two_bar_panels(
        raw,
        "Connection churn: a new connection per request (median, min–max)",
        &conditions_of(name),
        &g,
        (
            "connections per second",
            "new connections (1/s)",
            vec![stats_of(raw, &models, name, None, conns_per_s)],
        ),
        (
            "server CPU per connection",
            "server CPU per connection (µs)",
            vec![stats_of(raw, &models, name, None, cpu_per_conn)],
        ),
    )
}

pub(super) fn skew(raw: &Raw) -> Res<String> {
    let models = measured_models(raw);
    let g = vec!["skew".to_string()];
    let ms = |r: &Run| p99(r).map(|us| us / 1000.0);
    let light: Vec<Stat> = models
        .iter()
        .map(|m| stat(&runs_of(raw, "skew", None, m), ms))
        .collect();
    let heavy = raw.skew_path();
    two_bar_panels(
        raw,
        "CPU skew: light requests beside CPU-heavy ones (median, min–max)",
        &format!(
            "2 workers · 2 conns GET {heavy} closed loop + 32 conns GET / at 1000 req/s open loop"
        ),
        &g,
        (
            "light GET /: p99 from intended send",
            "p99 latency (ms)",
            vec![light],
        ),
        (
            &format!("heavy GET {heavy}: throughput"),
            "throughput (req/s)",
            vec![stats_of(raw, &models, "skew", None, heavy_rps)],
        ),
    )
}

pub(super) fn large(raw: &Raw) -> Res<String> {
    let models = measured_models(raw);
    let points = point_labels(raw, "large");
    let groups: Vec<String> = points.iter().map(|p| p.0.clone()).collect();
    let per = |f: fn(&Run) -> Option<f64>| -> Vec<Vec<Stat>> {
        points
            .iter()
            .map(|(l, _)| stats_of(raw, &models, "large", Some(l), f))
            .collect()
    };
    two_bar_panels(
        raw,
        "Large responses: /static/ files (median, min–max)",
        &conditions_of("large"),
        &groups,
        ("throughput", "response bytes (MB/s)", per(mb_per_s)),
        (
            "server CPU per MB",
            "server CPU per MB (µs)",
            per(cpu_per_mb),
        ),
    )
}

/// req/s and server CPU per request against workers and shape (`scaling`).
pub(super) fn scaling(raw: &Raw) -> Res<String> {
    let models = measured_models(raw);
    let points = point_labels(raw, "scaling");
    let groups: Vec<String> = points.iter().map(|p| p.0.clone()).collect();
    let per = |f: fn(&Run) -> Option<f64>| -> Vec<Vec<Stat>> {
        points
            .iter()
            .map(|(l, _)| stats_of(raw, &models, "scaling", Some(l), f))
            .collect()
    };
    two_bar_panels(
        raw,
        "Scaling: workers on as many server CPUs (median, min–max)",
        &if raw.scaling_cpus.len() > raw.server_cpus.len() {
            format!(
                "GET / at -c64 closed loop, plain and pipelined x16; wN = N workers on the first N \
                 of CPUs {:?}, shared with the load from w2 on",
                raw.scaling_cpus
            )
        } else {
            "GET / at -c64 closed loop, plain and pipelined x16; wN = N workers".to_string()
        },
        &groups,
        ("throughput", "throughput (req/s)", per(rps)),
        (
            "server CPU per request",
            "server CPU per request (µs)",
            per(cpu_per_req),
        ),
    )
}
