//! SVG plots (plotters, SVG backend only): latency percentile curves per scenario
//! on log axes, and throughput and server CPU per request as bars.

use super::output::{measured_models, merged, spread};
use super::{Kind, Raw, SCENARIOS};
use crate::hist;
use plotters::prelude::*;
use std::error::Error;

type Res<T> = Result<T, Box<dyn Error>>;

/// (model index, legend label, is the uncorrected view, points).
type Curve = (usize, String, bool, Vec<(f64, f64)>);

const W: u32 = 900;
const H: u32 = 520;

/// Load scenarios present in `raw`.
fn load_scenarios(raw: &Raw) -> Vec<&'static str> {
    SCENARIOS
        .iter()
        .filter(|s| matches!(s.kind, Kind::Load { .. }))
        .filter(|s| raw.scenarios.iter().any(|n| n == s.name))
        .map(|s| s.name)
        .collect()
}

/// The plot files `all` writes, with what each shows.
pub fn names(raw: &Raw) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = load_scenarios(raw)
        .into_iter()
        .map(|s| {
            (
                format!("latency-{s}.svg"),
                format!("latency percentiles, {s}"),
            )
        })
        .collect();
    if !v.is_empty() {
        v.push(("throughput.svg".into(), "requests per second".into()));
        v.push((
            "cpu-per-request.svg".into(),
            "server CPU per request".into(),
        ));
    }
    v
}

/// Renders every plot.
pub fn all(raw: &Raw) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let err = |e: Box<dyn Error>| format!("cannot draw a plot: {e}");
    for s in load_scenarios(raw) {
        out.push((format!("latency-{s}.svg"), latency(raw, s).map_err(err)?));
    }
    if !out.is_empty() {
        let rps = |r: &crate::report::Report| Some(r.result.req_per_s);
        out.push((
            "throughput.svg".into(),
            bars(raw, "Throughput (median, min–max)", "req/s", rps).map_err(err)?,
        ));
        let cpu =
            |r: &crate::report::Report| r.checks.server.as_ref().map(|s| s.cpu_us_per_request);
        out.push((
            "cpu-per-request.svg".into(),
            bars(raw, "Server CPU per request (median, min–max)", "µs", cpu).map_err(err)?,
        ));
    }
    Ok(out)
}

fn color(i: usize, model: &str) -> RGBColor {
    match model {
        "callback" => RGBColor(200, 40, 40),
        "tokio" => RGBColor(40, 80, 200),
        "green" => RGBColor(30, 150, 60),
        _ => [MAGENTA, CYAN, BLACK][i % 3],
    }
}

/// Percentile → x position `1/(1-p)` on a log axis (so 90, 99, 99.9 are evenly spaced).
fn pct_x(p: f64) -> f64 {
    1.0 / (1.0 - (p / 100.0).min(0.999_999))
}

fn latency(raw: &Raw, scenario: &str) -> Res<String> {
    let models = measured_models(raw);
    // Per model: the corrected curve, and in open loop the uncorrected one too.
    let curves: Vec<Curve> = models
        .iter()
        .enumerate()
        .flat_map(|(i, m)| {
            [false, true].into_iter().filter_map(move |uncorrected| {
                let h = merged(raw, scenario, m, uncorrected)?;
                let pts = hist::spectrum(&h)
                    .into_iter()
                    .map(|(p, v)| (pct_x(p), v.max(1) as f64))
                    .collect();
                let label = if uncorrected {
                    format!("{m} (from actual send: coordinated omission)")
                } else {
                    m.to_string()
                };
                Some((i, label, uncorrected, pts))
            })
        })
        .collect();
    let ymax = curves
        .iter()
        .flat_map(|c| c.3.iter().map(|q| q.1))
        .fold(10.0, f64::max);
    let ymin = curves
        .iter()
        .flat_map(|c| c.3.iter().map(|q| q.1))
        .fold(ymax, f64::min);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Latency percentiles: {scenario}"),
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(
                (1.0f64..1e6f64).log_scale(),
                ((ymin / 1.2).max(1.0)..ymax * 1.2).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency")
            .x_label_formatter(&|x| {
                let p = 100.0 * (1.0 - 1.0 / x);
                format!("{}%", (p * 10_000.0).round() / 10_000.0)
            })
            .y_label_formatter(&|y| hist::fmt_us(*y))
            .draw()?;
        for (i, label, uncorrected, pts) in &curves {
            let base = color(*i, models[*i]);
            let style = if *uncorrected {
                base.mix(0.45).stroke_width(1)
            } else {
                base.stroke_width(2)
            };
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), style))?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
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

/// One panel per load scenario, one bar per model (median) with a min–max line.
fn bars(
    raw: &Raw,
    title: &str,
    unit: &str,
    value: fn(&crate::report::Report) -> Option<f64>,
) -> Res<String> {
    let models = measured_models(raw);
    let scenarios = load_scenarios(raw);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, ("sans-serif", 22))?;
        let panels = root.split_evenly((1, scenarios.len().max(1)));
        for (panel, scenario) in panels.iter().zip(&scenarios) {
            let stats: Vec<Option<(f64, f64, f64)>> = models
                .iter()
                .map(|m| {
                    spread(
                        raw.runs
                            .iter()
                            .filter(|r| r.scenario == *scenario && r.model == *m)
                            .filter_map(|r| r.report.as_ref().and_then(value))
                            .collect(),
                    )
                })
                .collect();
            let top = stats.iter().flatten().map(|s| s.2).fold(0.0, f64::max) * 1.15;
            let top = if top > 0.0 { top } else { 1.0 };
            let n = models.len();
            let mut chart = ChartBuilder::on(panel)
                .caption(*scenario, ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(60)
                .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0.0..top)?;
            let names = models.clone();
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n.max(1))
                .x_label_formatter(&move |x| {
                    let i = x.round();
                    if (x - i).abs() < 0.01 && i >= 0.0 {
                        names
                            .get(i as usize)
                            .map_or(String::new(), |s| s.to_string())
                    } else {
                        String::new()
                    }
                })
                .y_desc(unit)
                .y_label_formatter(&|y| short(*y))
                .draw()?;
            for (i, (m, st)) in models.iter().zip(&stats).enumerate() {
                let Some((md, lo, hi)) = *st else { continue };
                let x = i as f64;
                let c = color(i, m);
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.3, 0.0), (x + 0.3, md)],
                    c.filled(),
                )))?;
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(x, lo), (x, hi)],
                    BLACK.stroke_width(2),
                )))?;
            }
        }
        root.present()?;
    }
    Ok(svg)
}

/// 123456 → "123k", 1.5 → "1.5".
fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
