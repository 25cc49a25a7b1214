//! Line plots: the load–latency sweep and throughput against connection count.

use super::*;
use plotters::coord::combinators::{LogCoord, WithKeyPoints};

/// p99 against achieved rate, one line per model, the bounds as dashed lines.
pub(super) fn sweep(raw: &Raw) -> Res<String> {
    let models = measured_models(raw);
    let points = point_labels(raw, "sweep");
    let lines: Vec<Vec<(f64, f64)>> = models
        .iter()
        .map(|m| {
            points
                .iter()
                .filter_map(|(l, _)| {
                    let runs = runs_of(raw, "sweep", Some(l), m);
                    let x = stat(&runs, rps)?.0;
                    let y = merged_of(&runs, false, false)?.value_at_quantile(0.99);
                    Some((x, y.max(1) as f64))
                })
                .collect()
        })
        .collect();
    let all = || lines.iter().flatten();
    let xmax = all().map(|p| p.0).fold(0.0, f64::max) * 1.05;
    let ymax = all()
        .map(|p| p.1)
        .chain(LATENCY_BOUNDS_US.map(|b| b as f64))
        .fold(1.0, f64::max);
    let ymin = all()
        .map(|p| p.1)
        .chain(LATENCY_BOUNDS_US.map(|b| b as f64))
        .fold(ymax, f64::min);
    let (xt, xstep) = ticks_linear(xmax);
    // A decade of headroom above the highest p99 for the legend.
    let yt = ticks_125(ymin, ymax * 10.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let body = frame(
            &root,
            "Load–latency curve: p99 against achieved rate",
            &subtitle(
                raw,
                &format!(
                    "GET / at -c{} open loop, offered {} of each server's closed-loop maximum",
                    super::super::SWEEP_CONNECTIONS,
                    raw.sweep_fractions()
                        .iter()
                        .map(|f| format!("{:.0}%", f * 100.0))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            ),
        )?;
        let mut chart = p99_chart(&body, "achieved throughput (req/s)", (xt, xstep), &yt, ymax)?;
        for (i, (m, pts)) in models.iter().zip(&lines).enumerate() {
            let c = color(i, m);
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))?
                .label(*m)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// Rate (linear) against p99 (log, with fixed ticks).
pub(super) type P99Chart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<Lin, WithKeyPoints<LogCoord<f64>>>>;

/// The chart the sweep and the bound draw on: p99 (log axis, `yt` ticks, in the
/// unit `ymax` calls for) against a rate from 0 (`xt` ticks, `xstep` apart), with
/// the latency bounds drawn in.
pub(super) fn p99_chart<'a, 'b>(
    body: &'a Area<'b>,
    x_desc: &str,
    (xt, xstep): (Vec<f64>, f64),
    yt: &[f64],
    ymax: f64,
) -> Res<P99Chart<'a, 'b>> {
    let xtop = *xt.last().unwrap_or(&1.0);
    let (div, unit) = latency_unit(ymax);
    let mut chart = ChartBuilder::on(body)
        .margin(10)
        .margin_right(40)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(
            Lin::new(0.0, xtop, xt),
            (yt[0]..*yt.last().unwrap_or(&ymax))
                .log_scale()
                .with_key_points(yt.to_vec()),
        )?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(format!(
            "p99 latency from intended send ({unit}, log scale)"
        ))
        .x_label_formatter(&|x| fmt_tick(*x, xstep))
        .y_label_formatter(&|y| fmt_log(*y, div))
        .draw()?;
    bound_lines(&mut chart, xtop)?;
    Ok(chart)
}

/// The latency bounds as horizontal dashed lines, each its own colour and dash in
/// the plot and in the legend (both were the same grey line once, told apart
/// only by their labels).
pub(super) fn bound_lines<X, Y>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>,
    xtop: f64,
) -> Res<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let bound_styles = [(RGBColor(200, 110, 0), 3, 3), (RGBColor(90, 90, 90), 12, 5)];
    for (bi, b) in LATENCY_BOUNDS_US.into_iter().enumerate() {
        let y = b as f64;
        let (bc, dash, gap) = bound_styles[bi % bound_styles.len()];
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, y), (xtop, y)],
                dash,
                gap,
                bc.stroke_width(2),
            ))?
            .label(format!("p99 bound {}", fmt_log(y, 1000.0) + " ms"))
            .legend(move |(x, y)| {
                plotters::element::DashedPathElement::new(
                    vec![(x, y), (x + 28, y)],
                    dash,
                    gap,
                    bc.stroke_width(2),
                )
            });
    }
    Ok(())
}

/// req/s and server CPU per request against connection count, one line per model.
pub(super) fn busy(raw: &Raw) -> Res<String> {
    let models = measured_models(raw);
    let points = point_labels(raw, "busy");
    let conns: Vec<f64> = points.iter().map(|p| p.1).collect();
    let series = |f: fn(&Run) -> Option<f64>| -> Vec<Vec<(f64, f64, f64, f64)>> {
        models
            .iter()
            .map(|m| {
                points
                    .iter()
                    .filter_map(|(l, c)| {
                        let (md, lo, hi) = stat(&runs_of(raw, "busy", Some(l), m), f)?;
                        Some((*c, md, lo, hi))
                    })
                    .collect()
            })
            .collect()
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let body = frame(
            &root,
            "Many busy connections (median, min–max)",
            &subtitle(
                raw,
                "GET / closed loop, every connection keeps one request in flight",
            ),
        )?;
        let panels = body.split_evenly((1, 2));
        let specs = [
            ("throughput", "throughput (req/s)", series(rps)),
            (
                "server CPU per request",
                "server CPU per request (µs)",
                series(cpu_per_req),
            ),
        ];
        for (panel, (caption, y_desc, data)) in panels.iter().zip(specs) {
            // Headroom above the lines for the legend.
            let top = data.iter().flatten().map(|p| p.3).fold(0.0, f64::max) * 1.45;
            let (yt, step) = ticks_linear(top);
            let ytop = *yt.last().unwrap_or(&1.0);
            let lo = conns.iter().copied().fold(f64::INFINITY, f64::min).max(1.0);
            let hi = conns.iter().copied().fold(1.0, f64::max).max(lo * 2.0);
            let mut chart = ChartBuilder::on(panel)
                .caption(caption, (FONT, 16))
                .margin(10)
                .margin_right(30)
                .x_label_area_size(45)
                .y_label_area_size(70)
                .build_cartesian_2d(
                    (lo / 1.5..hi * 1.5)
                        .log_scale()
                        .with_key_points(conns.clone()),
                    Lin::new(0.0, ytop, yt),
                )?;
            chart
                .configure_mesh()
                .x_desc("connections (log scale)")
                .y_desc(y_desc)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| fmt_tick(*y, step))
                .draw()?;
            for (i, (m, pts)) in models.iter().zip(&data).enumerate() {
                let c = color(i, m);
                chart
                    .draw_series(LineSeries::new(
                        pts.iter().map(|p| (p.0, p.1)),
                        c.stroke_width(2),
                    ))?
                    .label(*m)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                    });
                for p in pts {
                    chart.draw_series(std::iter::once(PathElement::new(
                        vec![(p.0, p.2), (p.0, p.3)],
                        c.stroke_width(1),
                    )))?;
                    chart.draw_series(std::iter::once(Circle::new((p.0, p.1), 3, c.filled())))?;
                }
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
        root.present()?;
    }
    Ok(svg)
}
