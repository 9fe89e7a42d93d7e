//! `--plot FILE.svg`: connected peers and latency percentiles over time, from the report's
//! timeline. plotters with its SVG backend only and no font feature (text is laid out with
//! plotters' built-in metrics), so it needs no system fonts and no fontconfig.

use std::path::Path;

use anyhow::{anyhow, Result};
use kith::loadtest::metrics::Sample;
use kith::loadtest::Report;
use plotters::prelude::*;

/// Picture size in pixels.
const SIZE: (u32, u32) = (900, 640);

/// Draw `report`'s timeline to `path`.
pub fn draw(report: &Report, path: &Path) -> Result<()> {
    let t = &report.timeline;
    let end = t.last().map_or(1.0, |s| s.t_s).max(1.0);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| anyhow!("drawing {}: {e:?}", path.display());
    root.fill(&WHITE).map_err(err)?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2);

    let most = t.iter().map(|s| s.connected).max().unwrap_or(1).max(1) as f64;
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!("kith loadtest {}: connected peers", report.scenario),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..most * 1.05)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("peers")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            t.iter().map(|s| (s.t_s, s.connected as f64)),
            &BLUE,
        ))
        .map_err(err)?
        .label("connected")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .draw()
        .map_err(err)?;

    type Pick = fn(&Sample) -> Option<[f64; 2]>;
    let series: [(&str, Pick, RGBColor); 3] = [
        ("relay", |s| s.relay_ms, RED),
        ("presence", |s| s.presence_ms, GREEN),
        ("post", |s| s.post_ms, MAGENTA),
    ];
    let highest = t
        .iter()
        .flat_map(|s| {
            series
                .iter()
                .filter_map(move |(_, pick, _)| pick(s).map(|p| p[1]))
        })
        .fold(1.0f64, f64::max);
    let mut chart = ChartBuilder::on(&bottom)
        .caption(
            "latency per second: p50 (thin) and p99 (thick), ms",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..highest * 1.05)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("ms")
        .draw()
        .map_err(err)?;
    for (name, pick, color) in series {
        let points = |i: usize| {
            t.iter()
                .filter_map(move |s| pick(s).map(|p| (s.t_s, p[i])))
                .collect::<Vec<_>>()
        };
        if points(1).is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points(0), color.stroke_width(1)))
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(points(1), color.stroke_width(3)))
            .map_err(err)?
            .label(format!("{name} p99"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
