//! SVG plots (plotters, SVG backend only), one or more per scenario.
//!
//! Every image has a title, a two-line subtitle with the conditions (load shape,
//! duration × repetitions, CPUs, commit, date, host) and units in every axis
//! title. Log axes carry 1-2-5 ticks across the whole data range; linear axes
//! carry 1-2-5 steps labelled with as many digits as the step needs, so no two
//! ticks read the same; the right margin leaves room for the last x label.

use super::output::{
    backend_cpu_per_req, bound_rates, conns_per_s, cpu_per_conn, cpu_per_mb, cpu_per_req,
    download_bytes, heavy_rps, mb_per_s, measured_models, merged, merged_of, p99, point_labels,
    present, rps, runs_of, spread, stat,
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
        (
            Kind::Cost,
            "cost-breakdown.svg",
            "where the cost goes at the same offered rate",
        ),
        (Kind::Scaling, "scaling.svg", "scaling with workers"),
        (
            Kind::Bound,
            "bound.svg",
            "every probe of the load–latency bound's bisection",
        ),
        (
            Kind::Downloads,
            "downloads.svg",
            "server RSS per download in flight",
        ),
        (
            Kind::Proxy,
            "proxy.svg",
            "reverse proxy: req/s, server and backend CPU per request",
        ),
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
    if has(raw, Kind::Scaling).is_some() {
        out.push(("scaling.svg".into(), scaling(raw).map_err(err)?));
    }
    if has(raw, Kind::Bound).is_some() {
        out.push(("bound.svg".into(), bound::bound(raw).map_err(err)?));
    }
    if has(raw, Kind::Cost).is_some() {
        out.push((
            "cost-breakdown.svg".into(),
            stacked::cost_breakdown(raw).map_err(err)?,
        ));
    }
    if has(raw, Kind::Downloads).is_some() {
        out.push(("downloads.svg".into(), downloads(raw).map_err(err)?));
    }
    if has(raw, Kind::Proxy).is_some() {
        out.push(("proxy.svg".into(), proxy(raw).map_err(err)?));
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
            "{conditions} · {:.1} s × up to {} rounds (+{:.1} s warm-up){}{}",
            raw.duration_s,
            raw.repeat,
            raw.warmup_s,
            if raw.quick {
                " · --quick smoke run"
            } else {
                ""
            },
            serve_flags(raw)
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

/// ` · serve FLAGS` when the models ran with `--serve-arg`s, else nothing.
fn serve_flags(raw: &Raw) -> String {
    if raw.serve_args.is_empty() {
        return String::new();
    }
    format!(" · serve {}", raw.serve_args.join(" "))
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

mod bars;
mod bound;
mod lines;
mod stacked;
use bars::*;
use lines::*;
