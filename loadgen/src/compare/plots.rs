//! SVG plots (plotters, SVG backend only), one or more per scenario.
//!
//! Every image has a title, a two-line subtitle with the conditions (load shape,
//! duration × repetitions, CPUs, commit, date, host) and units in every axis
//! title. Log axes carry 1-2-5 ticks across the whole data range; linear axes
//! carry 1-2-5 steps labelled with as many digits as the step needs, so no two
//! ticks read the same; the right margin leaves room for the last x label.

use super::output::{
    conns_per_s, cpu_per_conn, cpu_per_mb, cpu_per_req, heavy_rps, mb_per_s, measured_models,
    merged, merged_of, p99, point_labels, present, rps, runs_of, stat,
};
use super::{Kind, Raw, Run, LATENCY_BOUNDS_US};
use crate::hist;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::error::Error;

type Res<T> = Result<T, Box<dyn Error>>;
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// Median, min, max.
type Stat = Option<(f64, f64, f64)>;

const W: u32 = 960;
const H: u32 = 560;
/// Title and subtitle band at the top of every image.
const HEADER: u32 = 70;
const FONT: &str = "sans-serif";
const GREY: RGBColor = RGBColor(60, 60, 60);

/// A linear f64 axis with exactly the given ticks (plotters' own f64 axis picks
/// its ticks itself, and its key-point wrapper loses the label formatter).
#[derive(Debug, Clone)]
struct Lin {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Lin {
    fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> Lin {
        Lin { lo, hi, ticks }
    }
}

impl Ranged for Lin {
    type ValueType = f64;
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let share = (v - self.lo) / (self.hi - self.lo);
        let len = f64::from(limit.1 - limit.0);
        if !share.is_finite() {
            return limit.0;
        }
        limit.0 + (len * share + 1e-3).floor() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// Keep-alive load scenarios drawn as percentile curves and in the bar plots.
fn basic_scenarios(raw: &Raw) -> Vec<&'static str> {
    present(raw)
        .into_iter()
        .filter(|s| {
            matches!(
                s.kind,
                Kind::Load {
                    keepalive: true,
                    ..
                }
            )
        })
        .map(|s| s.name)
        .collect()
}

fn has(raw: &Raw, kind: Kind) -> Option<&'static str> {
    present(raw)
        .into_iter()
        .find(|s| {
            s.kind == kind
                || matches!(
                    (s.kind, kind),
                    (
                        Kind::Load {
                            keepalive: false,
                            ..
                        },
                        Kind::Load {
                            keepalive: false,
                            ..
                        }
                    )
                )
        })
        .map(|s| s.name)
}

const CHURN: Kind = Kind::Load {
    path: "/",
    connections: 0,
    pipeline: 1,
    rate: None,
    keepalive: false,
};

/// The plot files [`render_all`] writes, with what each shows.
pub fn names(raw: &Raw) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = basic_scenarios(raw)
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
    let extra = [
        (
            Kind::Sweep,
            "sweep.svg",
            "p99 latency against achieved rate",
        ),
        (CHURN, "churn.svg", "connection churn"),
        (Kind::Skew, "skew.svg", "CPU skew"),
        (Kind::Busy, "busy.svg", "many busy connections"),
        (Kind::Large, "large.svg", "large responses"),
    ];
    for (kind, file, what) in extra {
        if has(raw, kind).is_some() {
            v.push((file.into(), what.into()));
        }
    }
    v
}

/// Renders every plot: (file name, SVG text).
pub fn render_all(raw: &Raw) -> Result<Vec<(String, String)>, String> {
    let err = |e: Box<dyn Error>| format!("cannot draw a plot: {e}");
    let mut out = Vec::new();
    let basic = basic_scenarios(raw);
    for s in &basic {
        out.push((format!("latency-{s}.svg"), latency(raw, s).map_err(err)?));
    }
    if !basic.is_empty() {
        out.push((
            "throughput.svg".into(),
            per_scenario_bars(raw, &basic, "Throughput", "throughput (req/s)", rps).map_err(err)?,
        ));
        out.push((
            "cpu-per-request.svg".into(),
            per_scenario_bars(
                raw,
                &basic,
                "Server CPU per request",
                "server CPU per request (µs)",
                cpu_per_req,
            )
            .map_err(err)?,
        ));
    }
    if has(raw, Kind::Sweep).is_some() {
        out.push(("sweep.svg".into(), sweep(raw).map_err(err)?));
    }
    if let Some(name) = has(raw, CHURN) {
        out.push(("churn.svg".into(), churn(raw, name).map_err(err)?));
    }
    if has(raw, Kind::Skew).is_some() {
        out.push(("skew.svg".into(), skew(raw).map_err(err)?));
    }
    if has(raw, Kind::Busy).is_some() {
        out.push(("busy.svg".into(), busy(raw).map_err(err)?));
    }
    if has(raw, Kind::Large).is_some() {
        out.push(("large.svg".into(), large(raw).map_err(err)?));
    }
    Ok(out)
}

// ---- shared pieces ----

fn color(i: usize, model: &str) -> RGBColor {
    match model {
        "callback" => RGBColor(200, 40, 40),
        "tokio" => RGBColor(40, 80, 200),
        "green" => RGBColor(30, 150, 60),
        _ => [
            RGBColor(150, 60, 170),
            RGBColor(230, 130, 0),
            RGBColor(0, 150, 160),
            RGBColor(90, 90, 90),
        ][i % 4],
    }
}

/// The two subtitle lines: the load shape, then the machine and the run.
pub fn subtitle(raw: &Raw, conditions: &str) -> [String; 2] {
    [
        format!(
            "{conditions} · {:.1} s × {} repetitions (+{:.1} s warm-up){}",
            raw.duration_s,
            raw.repeat,
            raw.warmup_s,
            if raw.quick {
                " · --quick smoke run"
            } else {
                ""
            }
        ),
        format!(
            "server CPUs {:?}, load CPUs {:?} · {} ({} CPUs) · commit {} · {} · host {}",
            raw.server_cpus,
            raw.load_cpus,
            raw.env.cpu_model,
            raw.env.cpus,
            raw.git_revision,
            raw.date,
            raw.env.host
        ),
    ]
}

/// White background, title and subtitle; returns the area below them.
fn frame<'a>(root: &Area<'a>, title: &str, sub: &[String; 2]) -> Res<Area<'a>> {
    root.fill(&WHITE)?;
    let (head, body) = root.split_vertically(HEADER);
    let centre = |size: i32, color: &'static RGBColor| {
        TextStyle::from((FONT, size).into_font()).color(color).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ),
        )
    };
    let mid = (W / 2) as i32;
    head.draw(&Text::new(title.to_string(), (mid, 8), centre(22, &BLACK)))?;
    head.draw(&Text::new(sub[0].clone(), (mid, 36), centre(13, &GREY)))?;
    head.draw(&Text::new(sub[1].clone(), (mid, 53), centre(13, &GREY)))?;
    Ok(body)
}

/// 1-2-5 ticks covering `[lo, hi]`: from the largest tick at or below `lo` to
/// the smallest at or above `hi`.
pub fn ticks_125(lo: f64, hi: f64) -> Vec<f64> {
    let lo = if lo > 0.0 && lo.is_finite() { lo } else { 1.0 };
    let hi = if hi.is_finite() { hi.max(lo) } else { lo };
    let eps = 1e-9;
    let mut decade = 10f64.powf(lo.log10().floor());
    let mut all = Vec::new();
    // Until two ticks lie at or above hi (so there are always at least two).
    while all.iter().filter(|&&t| t >= hi * (1.0 - eps)).count() < 2 {
        all.extend([1.0, 2.0, 5.0].map(|m| m * decade));
        decade *= 10.0;
    }
    let start = all
        .iter()
        .rposition(|&t| t <= lo * (1.0 + eps))
        .unwrap_or(0);
    let end = all
        .iter()
        .position(|&t| t >= hi * (1.0 - eps))
        .unwrap_or(all.len() - 1)
        .max(start + 1);
    all[start..=end].to_vec()
}

/// Linear ticks from 0 with a 1-2-5 step, about five of them, the last at or
/// above `top`; and the step.
pub fn ticks_linear(top: f64) -> (Vec<f64>, f64) {
    let top = if top > 0.0 && top.is_finite() {
        top
    } else {
        1.0
    };
    let raw_step = top / 5.0;
    let decade = 10f64.powf(raw_step.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * decade)
        .find(|&s| s >= raw_step * (1.0 - 1e-9))
        .unwrap_or(10.0 * decade);
    let n = (top / step - 1e-9).ceil().max(1.0) as usize;
    ((0..=n).map(|i| i as f64 * step).collect(), step)
}

/// A tick label with as many decimals as `step` needs (`k`/`M` for thousands and
/// millions), so distinct ticks never read the same.
pub fn fmt_tick(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let (scale, suffix) = if step >= 1e6 || v.abs() >= 1e6 && step >= 1e5 {
        (1e6, "M")
    } else if step >= 1e3 || v.abs() >= 1e4 && step >= 100.0 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let s = step / scale;
    // As many decimals as the step has (2.5 needs one, 0.25 two).
    let decimals = (0..6)
        .find(|&d| {
            let x = s * 10f64.powi(d);
            (x - x.round()).abs() < 1e-6 * x.max(1.0)
        })
        .unwrap_or(6) as usize;
    format!("{:.*}{suffix}", decimals, v / scale)
}

/// A 1-2-5 log tick in `unit` (µs divided by `div`), e.g. 0.05, 2, 500.
fn fmt_log(v_us: f64, div: f64) -> String {
    let v = v_us / div;
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        let d = (-v.log10()).ceil().max(0.0) as usize;
        format!("{v:.d$}")
    }
}

/// The latency unit for values up to `max_us`: (divisor, name).
fn latency_unit(max_us: f64) -> (f64, &'static str) {
    if max_us >= 2e6 {
        (1e6, "s")
    } else if max_us >= 2_000.0 {
        (1e3, "ms")
    } else {
        (1.0, "µs")
    }
}

fn conditions_of(name: &str) -> String {
    super::scenario(name).map_or(name.to_string(), |s| s.title.to_string())
}

// ---- latency percentile curves ----

/// Percentile → x position `1/(1-p)` on a log axis (so 90, 99, 99.9 are evenly spaced).
fn pct_x(p: f64) -> f64 {
    1.0 / (1.0 - (p / 100.0).min(0.999_999))
}

fn latency(raw: &Raw, scenario: &str) -> Res<String> {
    let models = measured_models(raw);
    type Curve = (usize, String, bool, Vec<(f64, f64)>);
    let curves: Vec<Curve> = models
        .iter()
        .enumerate()
        .flat_map(|(i, m)| {
            [false, true].into_iter().filter_map(move |uncorrected| {
                let h = merged(raw, scenario, None, m, uncorrected)?;
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
    let values = || curves.iter().flat_map(|c| c.3.iter().map(|q| q.1));
    let ymax = values().fold(1.0, f64::max);
    let ymin = values().fold(ymax, f64::min);
    let xmax_data = curves
        .iter()
        .flat_map(|c| c.3.iter().map(|q| q.0))
        .fold(100.0, f64::max);
    let xmax = 10f64.powf(xmax_data.log10().ceil()).min(1e6);
    let xticks: Vec<f64> = [1.0, 2.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6]
        .into_iter()
        .filter(|&x| x <= xmax * 1.0001)
        .collect();
    let yticks = ticks_125(ymin, ymax);
    let (div, unit) = latency_unit(ymax);
    let open = curves.iter().any(|c| c.2);
    let y_desc = if open {
        format!("latency from intended send ({unit}, log scale)")
    } else {
        format!("latency ({unit}, log scale)")
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let body = frame(
            &root,
            &format!("Latency percentiles: {scenario}"),
            &subtitle(raw, &conditions_of(scenario)),
        )?;
        let mut chart = ChartBuilder::on(&body)
            .margin(10)
            .margin_right(50)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(
                (1.0f64..xmax).log_scale().with_key_points(xticks),
                (yticks[0]..*yticks.last().unwrap_or(&ymax))
                    .log_scale()
                    .with_key_points(yticks.clone()),
            )?;
        chart
            .configure_mesh()
            .x_desc("percentile (%)")
            .y_desc(y_desc)
            .x_label_formatter(&|x| {
                let p = 100.0 * (1.0 - 1.0 / x);
                format!("{}%", (p * 10_000.0).round() / 10_000.0)
            })
            .y_label_formatter(&|y| fmt_log(*y, div))
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

// ---- bars ----

/// One bar panel: `groups` along x, one bar per model in each (median, with a
/// min–max line). With one group the models name the x ticks; with several the
/// groups do and a legend names the models.
fn bar_panel(
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
fn stats_of(
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
fn per_scenario_bars(
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

/// Two bar panels side by side.
fn two_bar_panels(
    raw: &Raw,
    title: &str,
    conditions: &str,
    groups: &[String],
    left: (&str, &str, Vec<Vec<Stat>>),
    right: (&str, &str, Vec<Vec<Stat>>),
) -> Res<String> {
    let models = measured_models(raw);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let body = frame(&root, title, &subtitle(raw, conditions))?;
        let panels = body.split_evenly((1, 2));
        bar_panel(&panels[0], left.0, left.1, groups, &models, &left.2)?;
        bar_panel(&panels[1], right.0, right.1, groups, &models, &right.2)?;
        root.present()?;
    }
    Ok(svg)
}

fn churn(raw: &Raw, name: &str) -> Res<String> {
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

fn skew(raw: &Raw) -> Res<String> {
    let models = measured_models(raw);
    let g = vec!["skew".to_string()];
    let ms = |r: &Run| p99(r).map(|us| us / 1000.0);
    let light: Vec<Stat> = models
        .iter()
        .map(|m| stat(&runs_of(raw, "skew", None, m), ms))
        .collect();
    two_bar_panels(
        raw,
        "CPU skew: light requests beside CPU-heavy ones (median, min–max)",
        "2 workers · 2 conns GET /work/5000 closed loop + 32 conns GET / at 1000 req/s open loop",
        &g,
        (
            "light GET /: p99 from intended send",
            "p99 latency (ms)",
            vec![light],
        ),
        (
            "heavy GET /work/5000: throughput",
            "throughput (req/s)",
            vec![stats_of(raw, &models, "skew", None, heavy_rps)],
        ),
    )
}

fn large(raw: &Raw) -> Res<String> {
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

// ---- lines ----

/// p99 against achieved rate, one line per model, the bounds as dashed lines.
fn sweep(raw: &Raw) -> Res<String> {
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
    let xtop = *xt.last().unwrap_or(&1.0);
    // A decade of headroom above the highest p99 for the legend.
    let yt = ticks_125(ymin, ymax * 10.0);
    let (div, unit) = latency_unit(ymax);
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
                    super::SWEEP_CONNECTIONS,
                    raw.sweep_fractions()
                        .iter()
                        .map(|f| format!("{:.0}%", f * 100.0))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            ),
        )?;
        let mut chart = ChartBuilder::on(&body)
            .margin(10)
            .margin_right(40)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(
                Lin::new(0.0, xtop, xt),
                (yt[0]..*yt.last().unwrap_or(&ymax))
                    .log_scale()
                    .with_key_points(yt.clone()),
            )?;
        chart
            .configure_mesh()
            .x_desc("achieved throughput (req/s)")
            .y_desc(format!(
                "p99 latency from intended send ({unit}, log scale)"
            ))
            .x_label_formatter(&|x| fmt_tick(*x, xstep))
            .y_label_formatter(&|y| fmt_log(*y, div))
            .draw()?;
        for b in LATENCY_BOUNDS_US {
            let y = b as f64;
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, y), (xtop, y)],
                    6,
                    4,
                    RGBColor(120, 120, 120).stroke_width(1),
                ))?
                .label(format!("p99 bound {}", fmt_log(y, 1000.0) + " ms"))
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(120, 120, 120))
                });
        }
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

/// req/s and server CPU per request against connection count, one line per model.
fn busy(raw: &Raw) -> Res<String> {
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
