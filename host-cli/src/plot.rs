//! Figures (SVG, so no font files are needed): stacked time-series panels.

use crate::io::atomic_write;
use anyhow::{Result, anyhow};
use plotters::prelude::*;
use std::io::Write;
use std::path::Path;

/// Draws one panel per series, sharing the time axis, and writes it atomically as SVG.
pub fn time_series(
    path: &Path,
    title: &str,
    xlabel: &str,
    t: &[f64],
    series: &[(&str, Vec<f64>)],
) -> Result<()> {
    let panel_h = 220u32;
    let (w, h) = (1000u32, 60 + panel_h * series.len() as u32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
        let root = root
            .titled(title, ("sans-serif", 22))
            .map_err(|e| anyhow!("plot: {e}"))?;
        let panels = root.split_evenly((series.len(), 1));
        let (t0, t1) = (t[0], *t.last().unwrap_or(&t[0]));
        let t1 = if t1 > t0 { t1 } else { t0 + 1.0 };
        for (area, (name, y)) in panels.iter().zip(series) {
            let (mut lo, mut hi) = y
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(*v), b.max(*v))
                });
            if !lo.is_finite() || !hi.is_finite() {
                (lo, hi) = (-0.5, 0.5);
            } else if hi <= lo {
                (lo, hi) = (lo - 0.5, hi + 0.5);
            }
            let pad = 0.05 * (hi - lo);
            let mut chart = ChartBuilder::on(area)
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(70)
                .build_cartesian_2d(t0..t1, (lo - pad)..(hi + pad))
                .map_err(|e| anyhow!("plot: {e}"))?;
            chart
                .configure_mesh()
                .x_desc(xlabel)
                .y_desc(*name)
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(|e| anyhow!("plot: {e}"))?;
            chart
                .draw_series(LineSeries::new(
                    t.iter().copied().zip(y.iter().copied()),
                    BLUE.stroke_width(2),
                ))
                .map_err(|e| anyhow!("plot: {e}"))?;
        }
        root.present().map_err(|e| anyhow!("plot: {e}"))?;
    }
    atomic_write(path, |f| Ok(f.write_all(svg.as_bytes())?))
}
