//! Figures of a training run (SVG): loss curves, and the trained MLP against the network on
//! held-out runs.

use anyhow::{Result, anyhow};
use nmm::io::atomic_write;
use plotters::prelude::*;
use std::io::Write;
use std::path::Path;

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plot: {e:?}")
}

/// Smallest and largest finite value of the series, padded by 5 %; `(-0.5, 0.5)` if none.
/// A legend entry: a short line in the series' style.
fn swatch(style: ShapeStyle) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style)
}

/// The legend box, top right, over a white veil.
fn legend_box<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

fn y_range<'a>(series: impl Iterator<Item = &'a [f64]>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for s in series {
        for &v in s.iter().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        return (-0.5, 0.5);
    }
    if hi <= lo {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = 0.05 * (hi - lo);
    (lo - pad, hi + pad)
}

/// Training and validation loss per epoch on a log scale (`val` may be empty or NaN where
/// there is no validation set). The axis is linear in `log10(loss)` with labels in loss
/// units, so that ranges narrower than a decade still get ticks.
pub fn loss_curves(path: &Path, title: &str, train: &[f64], val: &[f64]) -> Result<()> {
    let pts = |s: &[f64]| -> Vec<(f64, f64)> {
        s.iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite() && **v > 0.0)
            .map(|(k, v)| ((k + 1) as f64, v.log10()))
            .collect()
    };
    let (tp, vp) = (pts(train), pts(val));
    let logs: Vec<f64> = tp.iter().chain(&vp).map(|p| p.1).collect();
    let (lo, hi) = y_range(std::iter::once(logs.as_slice()));
    let n = train.len().max(val.len()).max(2) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(1.0..n, lo..hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_desc("loss (rate-weighted, normalised; log scale)")
            .y_label_formatter(&|v| format!("{:.2e}", 10f64.powf(*v)))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(tp, BLUE.stroke_width(2)))
            .map_err(err)?
            .label("train (mean over the epoch's batches)")
            .legend(swatch(BLUE.stroke_width(2)));
        if !vp.is_empty() {
            chart
                .draw_series(LineSeries::new(vp, RED.stroke_width(2)))
                .map_err(err)?
                .label("validation (end of epoch)")
                .legend(swatch(RED.stroke_width(2)));
        }
        legend_box(&mut chart)?;
        root.present().map_err(err)?;
    }
    Ok(atomic_write(path, |f| Ok(f.write_all(svg.as_bytes())?))?)
}

/// Two panels (`r`, `v`) over time `t`: the network's data and the MLP's free run.
pub fn mlp_vs_data(
    path: &Path,
    title: &str,
    t: &[f64],
    data: [&[f64]; 2],
    mlp: [&[f64]; 2],
) -> Result<()> {
    let names = ["r (1/time unit)", "v"];
    let (t0, t1) = (
        t.first().copied().unwrap_or(0.0),
        t.last().copied().unwrap_or(1.0),
    );
    let t1 = if t1 > t0 { t1 } else { t0 + 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(err)?;
        let panels = root.split_evenly((2, 1));
        for (c, area) in panels.iter().enumerate() {
            let (lo, hi) = y_range([data[c], mlp[c]].into_iter());
            let mut chart = ChartBuilder::on(area)
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(70)
                .build_cartesian_2d(t0..t1, lo..hi)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("t (time units)")
                .y_desc(names[c])
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(err)?;
            let line = |y: &[f64]| -> Vec<(f64, f64)> {
                t.iter()
                    .copied()
                    .zip(y.iter().copied())
                    .filter(|(_, v)| v.is_finite())
                    .collect()
            };
            let grey = RGBColor(90, 90, 90);
            chart
                .draw_series(LineSeries::new(line(data[c]), grey.stroke_width(2)))
                .map_err(err)?
                .label("network")
                .legend(swatch(grey.stroke_width(2)));
            chart
                .draw_series(LineSeries::new(line(mlp[c]), BLUE.stroke_width(2)))
                .map_err(err)?
                .label("MLP mean field (Heun)")
                .legend(swatch(BLUE.stroke_width(2)));
            legend_box(&mut chart)?;
        }
        root.present().map_err(err)?;
    }
    Ok(atomic_write(path, |f| Ok(f.write_all(svg.as_bytes())?))?)
}
