//! `cost-breakdown.svg`: server CPU per request at the `cost` rate, one stacked
//! bar per server (user, system), beside syscalls per request.

use super::super::output::{cost_rows, CostRow};
use super::*;

/// User and system colours; a bar without a user/system split is one grey block.
const USER: RGBColor = RGBColor(40, 110, 190);
const SYSTEM: RGBColor = RGBColor(230, 140, 30);
const UNSPLIT: RGBColor = RGBColor(150, 150, 150);

pub(super) fn cost_breakdown(raw: &Raw) -> Res<String> {
    let rows: Vec<CostRow> = cost_rows(raw)
        .into_iter()
        .filter(|r| r.scenario == "cost")
        .collect();
    let names: Vec<String> = rows.iter().map(|r| r.server.clone()).collect();
    let rate = raw.cost_rate.map_or("?".into(), |r| format!("{r:.0}"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let body = frame(
            &root,
            "Where the cost goes: every server at the same offered rate (medians over rounds)",
            &subtitle(raw, &format!("GET / at -c64, open loop at {rate} req/s")),
        )?;
        let panels = body.split_evenly((1, 2));
        let n = rows.len().max(1);
        let xticks: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let label = |x: &f64| {
            let i = x.round();
            names
                .get(i.max(0.0) as usize)
                .filter(|_| (x - i).abs() < 0.01)
                .cloned()
                .unwrap_or_default()
        };
        // Left: CPU µs per request, user stacked under system.
        let top = rows.iter().filter_map(|r| r.cpu_us).fold(0.0, f64::max) * 1.35;
        let (yt, step) = ticks_linear(top);
        let ytop = *yt.last().unwrap_or(&1.0);
        let mut chart = ChartBuilder::on(&panels[0])
            .caption("server CPU per request", (FONT, 16))
            .margin(10)
            .margin_right(20)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(
                Lin::new(-0.5, n as f64 - 0.5, xticks.clone()),
                Lin::new(0.0, ytop, yt),
            )?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&label)
            .y_desc("server CPU per request (µs)")
            .y_label_formatter(&|y| fmt_tick(*y, step))
            .draw()?;
        let mut legend = [false; 3];
        for (i, r) in rows.iter().enumerate() {
            let x = i as f64;
            let Some(cpu) = r.cpu_us else { continue };
            let segments: Vec<(f64, f64, RGBColor, usize, &str)> = match (r.user_us, r.system_us) {
                (Some(u), Some(_)) => {
                    vec![(0.0, u, USER, 0, "user"), (u, cpu, SYSTEM, 1, "system")]
                }
                _ => vec![(0.0, cpu, UNSPLIT, 2, "no user/system split")],
            };
            for (lo, hi, c, k, name) in segments {
                let bar = chart.draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.3, lo), (x + 0.3, hi)],
                    c.filled(),
                )))?;
                if !legend[k] {
                    legend[k] = true;
                    bar.label(name).legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled())
                    });
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        // Right: syscalls per request (where perf could count them).
        let top = rows
            .iter()
            .filter_map(|r| r.syscalls.as_ref().ok().copied())
            .fold(0.0, f64::max)
            * 1.2;
        let (yt, step) = ticks_linear(top);
        let ytop = *yt.last().unwrap_or(&1.0);
        let why = rows.iter().find_map(|r| r.syscalls.as_ref().err().cloned());
        let caption = match &why {
            Some(w) if rows.iter().all(|r| r.syscalls.is_err()) => {
                format!("syscalls per request: n/a ({w})")
            }
            _ => "syscalls per request (perf, raw_syscalls:sys_enter)".into(),
        };
        let mut chart = ChartBuilder::on(&panels[1])
            .caption(caption, (FONT, 14))
            .margin(10)
            .margin_right(20)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(
                Lin::new(-0.5, n as f64 - 0.5, xticks),
                Lin::new(0.0, ytop, yt),
            )?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&label)
            .y_desc("syscalls per request")
            .y_label_formatter(&|y| fmt_tick(*y, step))
            .draw()?;
        for (i, r) in rows.iter().enumerate() {
            let Ok(v) = r.syscalls else { continue };
            let x = i as f64;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x - 0.3, 0.0), (x + 0.3, v)],
                color(i, &r.server).filled(),
            )))?;
        }
        root.present()?;
    }
    Ok(svg)
}
