//! The `bound` scenario's probes drawn as the load–latency curve they sample.

use super::lines::p99_chart;
use super::*;

/// One probe of a bisection: offered rate, p99 from the intended send time, and
/// whether it held the bound it was probing.
type Probe = (f64, f64, bool);

/// Every probe of `model` in every measured round (both bounds' searches).
fn probes(raw: &Raw, model: &str) -> Vec<Probe> {
    raw.runs
        .iter()
        .filter(|r| r.scenario == "bound" && r.model == model && r.repeat > 0)
        .filter_map(|r| {
            let point = r.point.as_ref()?;
            let bound = LATENCY_BOUNDS_US
                .into_iter()
                .find(|&b| point.label.starts_with(&super::super::bound_prefix(b)))?;
            let p99 = p99(r)?;
            Some((
                point.value,
                p99.max(1.0),
                super::super::bound_held(r, bound),
            ))
        })
        .collect()
}

/// p99 against offered rate for every probe: a filled dot held its bound, a
/// cross did not; a triangle on each bound line marks the server's median
/// highest rate held under it.
pub(super) fn bound(raw: &Raw) -> Res<String> {
    let models = measured_models(raw);
    let all: Vec<Vec<Probe>> = models.iter().map(|m| probes(raw, m)).collect();
    let medians: Vec<Vec<(f64, f64)>> = models
        .iter()
        .map(|m| {
            LATENCY_BOUNDS_US
                .into_iter()
                .filter_map(|b| {
                    let md = spread(bound_rates(raw, m, b).into_values().collect())?.0;
                    (md > 0.0).then_some((md, b as f64))
                })
                .collect()
        })
        .collect();
    let xmax = all.iter().flatten().map(|p| p.0).fold(0.0, f64::max) * 1.05;
    let ys = || {
        all.iter()
            .flatten()
            .map(|p| p.1)
            .chain(LATENCY_BOUNDS_US.map(|b| b as f64))
    };
    let ymax = ys().fold(1.0, f64::max);
    let ymin = ys().fold(ymax, f64::min);
    let (xt, xstep) = ticks_linear(xmax);
    let yt = ticks_125(ymin, ymax * 10.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let body = frame(
            &root,
            "Load–latency bound: every bisection probe",
            &subtitle(
                raw,
                &format!(
                    "GET / at -c{} open loop; dot: the probe held its bound, cross: it did not; \
                     triangle: median highest rate held",
                    super::super::SWEEP_CONNECTIONS
                ),
            ),
        )?;
        let mut chart = p99_chart(&body, "offered rate (req/s)", (xt, xstep), &yt, ymax)?;
        for (i, ((m, pts), mds)) in models.iter().zip(&all).zip(&medians).enumerate() {
            let c = color(i, m);
            chart
                .draw_series(
                    pts.iter()
                        .filter(|p| p.2)
                        .map(|&(x, y, _)| Circle::new((x, y), 3, c.filled())),
                )?
                .label(*m)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, c.filled()));
            chart.draw_series(
                pts.iter()
                    .filter(|p| !p.2)
                    .map(|&(x, y, _)| Cross::new((x, y), 4, c.stroke_width(1))),
            )?;
            chart.draw_series(
                mds.iter()
                    .map(|&(x, y)| TriangleMarker::new((x, y), 7, c.filled())),
            )?;
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
