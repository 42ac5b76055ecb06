//! Figures (SVG, so no font files are needed): stacked time-series panels.

use anyhow::{Result, anyhow};
use nmm::io::atomic_write;
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
    if t.is_empty() || series.is_empty() {
        anyhow::bail!("{}: nothing to plot (no samples)", path.display());
    }
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
                // Room for the last time label, which sits on the right edge.
                .margin_right(28)
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
    Ok(atomic_write(path, |f| Ok(f.write_all(svg.as_bytes())?))?)
}

/// Colour of `v` on a blue-white-red scale over `[-1, 1]` (values outside are clamped).
fn diverging(v: f64) -> RGBColor {
    let v = if v.is_finite() {
        v.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let (r, g, b) = if v < 0.0 {
        let a = -v;
        (1.0 - a * 0.85, 1.0 - a * 0.7, 1.0 - a * 0.2)
    } else {
        (1.0 - v * 0.15, 1.0 - v * 0.8, 1.0 - v * 0.85)
    };
    RGBColor((r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8)
}

/// Most cells per axis a heat map draws; larger matrices are block-averaged to this.
const MAX_CELLS: usize = 200;

/// Block-averages `m` (rows x cols) to at most [`MAX_CELLS`] per axis.
fn coarsen(m: &ndarray::Array2<f64>) -> ndarray::Array2<f64> {
    let (r, c) = m.dim();
    let (br, bc) = (r.div_ceil(MAX_CELLS).max(1), c.div_ceil(MAX_CELLS).max(1));
    if br == 1 && bc == 1 {
        return m.clone();
    }
    ndarray::Array2::from_shape_fn((r.div_ceil(br), c.div_ceil(bc)), |(i, j)| {
        let block = m.slice(ndarray::s![
            i * br..((i + 1) * br).min(r),
            j * bc..((j + 1) * bc).min(c)
        ]);
        block.mean().unwrap_or(f64::NAN)
    })
}

/// What a heat map shows: its labels, the data range of the colour scale and its unit.
struct Heat<'a> {
    caption: &'a str,
    xlabel: &'a str,
    ylabel: &'a str,
    x_range: (f64, f64),
    y_range: (f64, f64),
    /// Values `-half..half` span the colour scale (blue, white, red).
    half: f64,
    /// Label of the colour bar, with its unit.
    bar_label: &'a str,
    /// Whole-number ticks on the axes (regions, windows).
    integer_ticks: bool,
    /// A vertical line at this x with this label (the FC transient on the carpet).
    marker: Option<(f64, &'a str)>,
}

/// Draws `m` as a heat map on `area`, with a colour bar on its right.
fn heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    h: &Heat,
    m: &ndarray::Array2<f64>,
) -> Result<()> {
    let e = |e: &dyn std::fmt::Debug| anyhow!("plot: {e:?}");
    let m = coarsen(m);
    let (rows, cols) = m.dim();
    let (w, _) = area.dim_in_pixel();
    let (main, bar) = area.split_horizontally(w.saturating_sub(116));
    let (x_range, y_range) = (h.x_range, h.y_range);
    let mut chart = ChartBuilder::on(&main)
        .caption(h.caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(x_range.0..x_range.1, y_range.1..y_range.0)
        .map_err(|x| e(&x))?;
    let int = |v: &f64| format!("{v:.0}");
    let plain = |v: &f64| format!("{v}");
    let fmt: &dyn Fn(&f64) -> String = if h.integer_ticks { &int } else { &plain };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(h.xlabel)
        .y_desc(h.ylabel)
        .x_label_formatter(fmt)
        .y_label_formatter(&int)
        // Whole-number axes get at most one label per whole number (no repeated "0 0 1").
        .x_labels(if h.integer_ticks {
            ((x_range.1 - x_range.0) as usize + 1).clamp(2, 10)
        } else {
            10
        })
        .y_labels(((y_range.1 - y_range.0) as usize + 1).clamp(2, 10))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(|x| e(&x))?;
    let (dx, dy) = (
        (x_range.1 - x_range.0) / cols.max(1) as f64,
        (y_range.1 - y_range.0) / rows.max(1) as f64,
    );
    chart
        .draw_series(m.indexed_iter().map(|((i, j), v)| {
            let x0 = x_range.0 + j as f64 * dx;
            let y0 = y_range.0 + i as f64 * dy;
            Rectangle::new(
                [(x0, y0), (x0 + dx, y0 + dy)],
                diverging(v / h.half).filled(),
            )
        }))
        .map_err(|x| e(&x))?;
    if let Some((x, label)) = h.marker {
        // Before the marker: veiled in white (the BOLD start-up, left out of FC and FCD).
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x_range.0, y_range.0), (x, y_range.1)],
                WHITE.mix(0.65).filled(),
            )))
            .map_err(|x| e(&x))?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, y_range.0), (x, y_range.1)],
                BLACK.stroke_width(2),
            )))
            .map_err(|x| e(&x))?;
        chart
            .draw_series(std::iter::once(Text::new(
                label.to_string(),
                (
                    x + 0.01 * (x_range.1 - x_range.0),
                    y_range.0 + 0.01 * (y_range.1 - y_range.0),
                ),
                ("sans-serif", 13).into_font().color(&BLACK),
            )))
            .map_err(|x| e(&x))?;
    }
    // The colour bar: the data range from -half (blue) to +half (red), with its unit.
    let mut cb = ChartBuilder::on(&bar)
        .margin_top(40)
        .margin_bottom(54)
        .margin_right(34)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..1.0, -h.half..h.half)
        .map_err(|x| e(&x))?;
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(h.bar_label)
        .y_labels(5)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(|x| e(&x))?;
    const STEPS: usize = 100;
    cb.draw_series((0..STEPS).map(|k| {
        let v0 = -h.half + 2.0 * h.half * k as f64 / STEPS as f64;
        let v1 = -h.half + 2.0 * h.half * (k + 1) as f64 / STEPS as f64;
        Rectangle::new(
            [(0.0, v0), (1.0, v1)],
            diverging(0.5 * (v0 + v1) / h.half).filled(),
        )
    }))
    .map_err(|x| e(&x))?;
    Ok(())
}

/// The whole-brain figure: FC matrix, BOLD carpet (each region z-scored with the mean and
/// standard deviation of its samples after `transient_ms`, so the haemodynamic start-up does
/// not set the colour scale), FCD matrix (colour scale: blue -1, white 0, red +1; the carpet in
/// units of 3 standard deviations).
pub fn brain_figure(
    path: &Path,
    title: &str,
    fc: &ndarray::Array2<f64>,
    bold: &ndarray::Array2<f64>,
    t_ms: &[f64],
    transient_ms: f64,
    fcd: &ndarray::Array2<f64>,
) -> Result<()> {
    let n = fc.nrows();
    // Carpet: regions x time, z-scored per region.
    let (samples, regions) = bold.dim();
    let mut carpet = ndarray::Array2::<f64>::zeros((regions, samples));
    let first = t_ms.iter().position(|t| *t > transient_ms).unwrap_or(0);
    let first = if samples - first >= 2 { first } else { 0 };
    for r in 0..regions {
        let col = bold.column(r);
        let tail = col.slice(ndarray::s![first..]);
        let m = tail.mean().unwrap_or(0.0);
        let sd = tail.std(1.0);
        for t in 0..samples {
            carpet[[r, t]] = if sd > 0.0 { (col[t] - m) / sd } else { 0.0 };
        }
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1650, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
        let root = root
            .titled(title, ("sans-serif", 22))
            .map_err(|e| anyhow!("plot: {e}"))?;
        let panels = root.split_evenly((1, 3));
        heatmap(
            &panels[0],
            &Heat {
                caption: "FC (BOLD after the transient)",
                xlabel: "region",
                ylabel: "region",
                x_range: (0.0, n as f64),
                y_range: (0.0, n as f64),
                half: 1.0,
                bar_label: "Pearson r [1]",
                integer_ticks: true,
                marker: None,
            },
            fc,
        )?;
        let t_end = t_ms.last().copied().unwrap_or(1.0) / 1000.0;
        let transient_s = transient_ms / 1000.0;
        heatmap(
            &panels[1],
            &Heat {
                caption: "BOLD carpet",
                xlabel: "t [s]",
                ylabel: "region",
                x_range: (0.0, t_end.max(1e-9)),
                y_range: (0.0, regions as f64),
                half: 3.0,
                bar_label: "BOLD, z-score [SD]",
                integer_ticks: false,
                marker: (transient_s > 0.0 && transient_s < t_end)
                    .then_some((transient_s, " FC and FCD from here")),
            },
            &carpet,
        )?;
        let w = fcd.nrows() as f64;
        heatmap(
            &panels[2],
            &Heat {
                caption: "FCD (FC of sliding windows)",
                xlabel: "window",
                ylabel: "window",
                x_range: (0.0, w.max(1.0)),
                y_range: (0.0, w.max(1.0)),
                half: 1.0,
                bar_label: "Pearson r [1]",
                integer_ticks: true,
                marker: None,
            },
            fcd,
        )?;
        root.present().map_err(|e| anyhow!("plot: {e}"))?;
    }
    Ok(atomic_write(path, |f| Ok(f.write_all(svg.as_bytes())?))?)
}

/// Features of a one-parameter batch (`nmm brain batch --vary`) against the parameter: four
/// panels (FC against the connectome and the empirical FC, FC mean and spread, FCD mean and
/// spread, BOLD spread), diverged runs marked with red crosses on the axis.
pub fn exploration(
    path: &Path,
    title: &str,
    bold_unit: &str,
    header: &[String],
    table: &[Vec<String>],
) -> Result<()> {
    let bold_label = format!("std of BOLD [{bold_unit}]");
    let col = |name: &str| header.iter().position(|h| h == name);
    let value = |row: &Vec<String>, c: usize| row[c].parse::<f64>().unwrap_or(f64::NAN);
    let x_name = header.get(2).cloned().unwrap_or_default();
    let x: Vec<f64> = table.iter().map(|r| value(r, 2)).collect();
    if x.is_empty() {
        anyhow::bail!("{}: nothing to plot (no runs)", path.display());
    }
    let series = |name: &str| -> Option<Vec<f64>> {
        col(name).map(|c| table.iter().map(|r| value(r, c)).collect())
    };
    let diverged: Vec<f64> = match col("diverged") {
        Some(c) => table
            .iter()
            .zip(&x)
            .filter(|(r, _)| r[c] == "1")
            .map(|(_, x)| *x)
            .collect(),
        None => vec![],
    };
    let (x0, x1) = x
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    let (x0, x1) = if x1 > x0 {
        (x0, x1)
    } else {
        (x0 - 0.5, x1 + 0.5)
    };
    let xpad = 0.03 * (x1 - x0);
    let x_label = if x_name == "G" || x_name == "coupling" {
        "G, global coupling [model input per unit of coupling variable]".to_string()
    } else {
        x_name.clone()
    };
    // Each panel: title, y label, fixed y range (None: from the data), curves (name, colour).
    type Panel<'a> = (
        &'a str,
        &'a str,
        Option<(f64, f64)>,
        Vec<(&'a str, RGBColor)>,
    );
    let mut first = vec![("fc_sc_corr", RGBColor(31, 119, 180))];
    if col("fc_emp_corr").is_some() {
        first.push(("fc_emp_corr", RGBColor(44, 160, 44)));
    }
    let panels: Vec<Panel> = vec![
        (
            if col("fc_emp_corr").is_some() {
                "FC against the connectome and the empirical FC"
            } else {
                "FC against the connectome"
            },
            "correlation [1]",
            Some((-0.2, 1.0)),
            first,
        ),
        (
            "FC: mean and spread over pairs",
            "Pearson r [1]",
            None,
            vec![
                ("fc_mean", RGBColor(31, 119, 180)),
                ("fc_std", RGBColor(255, 127, 14)),
            ],
        ),
        (
            "FCD: mean and spread",
            "r between windows [1]",
            None,
            vec![
                ("fcd_mean", RGBColor(31, 119, 180)),
                ("fcd_std", RGBColor(255, 127, 14)),
            ],
        ),
        (
            "BOLD: spread per region, mean",
            &bold_label,
            None,
            vec![("bold_std_mean", RGBColor(31, 119, 180))],
        ),
    ];
    let mut svg = String::new();
    {
        let e = |e: &dyn std::fmt::Debug| anyhow!("plot: {e:?}");
        let root = SVGBackend::with_string(&mut svg, (1200, 860)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let root = root.titled(title, ("sans-serif", 24)).map_err(|x| e(&x))?;
        let areas = root.split_evenly((2, 2));
        for (area, (caption, ylabel, fixed, curves)) in areas.iter().zip(panels) {
            let data: Vec<(&str, RGBColor, Vec<f64>)> = curves
                .iter()
                .filter_map(|(n, c)| series(n).map(|v| (*n, *c, v)))
                .collect();
            let axes = Axes {
                caption,
                x_label: &x_label,
                y_label: ylabel,
                x_range: (x0 - xpad, x1 + xpad),
                fixed,
            };
            feature_panel(area, &axes, &x, &data, &diverged)?;
        }
        root.present().map_err(|x| e(&x))?;
    }
    Ok(atomic_write(path, |f| Ok(f.write_all(svg.as_bytes())?))?)
}

/// The axes of one panel of [`exploration`].
struct Axes<'a> {
    caption: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    x_range: (f64, f64),
    /// A fixed y range, or `None` for the data's.
    fixed: Option<(f64, f64)>,
}

/// One panel of [`exploration`]: each named curve against `x`, the diverged runs as red crosses.
fn feature_panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    axes: &Axes,
    x: &[f64],
    data: &[(&str, RGBColor, Vec<f64>)],
    diverged: &[f64],
) -> Result<()> {
    let e = |e: &dyn std::fmt::Debug| anyhow!("plot: {e:?}");
    let (lo, hi) = match axes.fixed {
        // The fixed range, widened to any value outside it.
        Some((lo, hi)) => data
            .iter()
            .flat_map(|(_, _, v)| v.iter().copied().filter(|v| v.is_finite()))
            .fold((lo, hi), |(a, b), v| (a.min(v - 0.05), b.max(v + 0.05))),
        None => {
            let (lo, hi) = data
                .iter()
                .flat_map(|(_, _, v)| v.iter().copied().filter(|v| v.is_finite()))
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                });
            if !(lo.is_finite() && hi.is_finite()) {
                (0.0, 1.0)
            } else if hi > lo {
                let pad = 0.08 * (hi - lo);
                (lo - pad, hi + pad)
            } else {
                (lo - 0.5, hi + 0.5)
            }
        }
    };
    let mut chart = ChartBuilder::on(area)
        .caption(axes.caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(axes.x_range.0..axes.x_range.1, lo..hi)
        .map_err(|x| e(&x))?;
    // Ticks rounded to 1e-9 first: a tick computed as -1e-17 reads 0, not "-0.0".
    let tick = |v: &f64| {
        let r = (v * 1e9).round() / 1e9;
        if r == 0.0 {
            "0".to_string()
        } else {
            format!("{r}")
        }
    };
    chart
        .configure_mesh()
        .x_desc(axes.x_label)
        .y_desc(axes.y_label)
        .y_label_formatter(&tick)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|x| e(&x))?;
    for (name, colour, y) in data {
        let pts: Vec<(f64, f64)> = x
            .iter()
            .zip(y)
            .filter(|(_, v)| v.is_finite())
            .map(|(a, b)| (*a, *b))
            .collect();
        let c = *colour;
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(*name)
            .legend(move |(a, b)| PathElement::new(vec![(a, b), (a + 20, b)], c.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 4, c.filled())))
            .map_err(|x| e(&x))?;
    }
    if !diverged.is_empty() {
        let y = lo + 0.04 * (hi - lo);
        chart
            .draw_series(
                diverged
                    .iter()
                    .map(|d| Cross::new((*d, y), 6, RED.stroke_width(2))),
            )
            .map_err(|x| e(&x))?
            .label("diverged")
            .legend(|(a, b)| Cross::new((a + 10, b), 5, RED.stroke_width(2)));
    }
    // The legend goes in the corner whose quarter of the panel holds the fewest points and
    // diverged marks.
    let (xm, ym) = (0.5 * (axes.x_range.0 + axes.x_range.1), 0.5 * (lo + hi));
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let crowd = |right: bool, upper: bool| {
        data.iter()
            .flat_map(|(_, _, y)| x.iter().zip(y.iter()))
            .filter(|(a, b)| b.is_finite() && (**a > xm) == right && (**b > ym) == upper)
            .count()
            // Diverged runs are marked along the bottom.
            + diverged.iter().filter(|d| !upper && (**d > xm) == right).count()
    };
    let corner = corners
        .into_iter()
        .min_by_key(|(_, right, upper)| crowd(*right, *upper))
        .map_or(SeriesLabelPosition::UpperRight, |c| c.0);
    chart
        .configure_series_labels()
        .position(corner)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|x| e(&x))?;
    Ok(())
}

/// Line colours of the fit figure's parameters (colour-blind safe, Okabe-Ito).
const FIT_COLOURS: [RGBColor; 4] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
];

/// One line of an epoch panel of the fit figure.
struct EpochLine {
    label: String,
    points: Vec<(f64, f64)>,
    colour: RGBColor,
}

/// An epoch panel of the fit figure: lines with dots at the epochs, whole-number epoch
/// labels, the legend at the upper left. `text` is the caption and the axes' descriptions.
fn epoch_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    text: [&str; 3],
    (x_range, y_range): (std::ops::Range<f64>, std::ops::Range<f64>),
    ticks: usize,
    lines: &[EpochLine],
) -> Result<()> {
    let e = |x: &dyn std::fmt::Debug| anyhow!("plot: {x:?}");
    let whole = |v: &f64| {
        if (v - v.round()).abs() < 1e-9 {
            format!("{v:.0}")
        } else {
            String::new()
        }
    };
    let mut c = ChartBuilder::on(area)
        .caption(text[0], ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range, y_range)
        .map_err(|x| e(&x))?;
    c.configure_mesh()
        .x_desc(text[1])
        .y_desc(text[2])
        .x_labels(ticks)
        .x_label_formatter(&whole)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(|x| e(&x))?;
    for l in lines {
        let colour = l.colour;
        c.draw_series(LineSeries::new(
            l.points.iter().copied(),
            colour.stroke_width(2),
        ))
        .map_err(|x| e(&x))?
        .label(l.label.as_str())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        c.draw_series(
            l.points
                .iter()
                .map(|&(x, y)| Circle::new((x, y), 3, colour.filled())),
        )
        .map_err(|x| e(&x))?;
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|x| e(&x))?;
    Ok(())
}

/// What [`fit_figure`] draws.
pub struct FitFigure<'a> {
    /// The figure's title.
    pub title: &'a str,
    /// The fitted parameters' names.
    pub names: &'a [String],
    /// Their starting values.
    pub start: &'a [f64],
    /// The fit's epochs.
    pub epochs: &'a [nmm::fit::Epoch],
    /// The empirical FC.
    pub emp: &'a ndarray::Array2<f64>,
    /// The last epoch's simulated FC.
    pub sim: &'a ndarray::Array2<f64>,
    /// What the loss is, for the legend.
    pub loss_label: &'a str,
    /// The connectome gains, if fitted.
    pub gains: Option<&'a ndarray::Array2<f64>>,
}

/// The fit figure (`nmm fit --plot`): fitted values relative to their start, loss and FC
/// correlation per epoch, the last epoch's simulated FC against the empirical one, and both
/// FC matrices (empirical below the diagonal, simulated above).
pub fn fit_figure(path: &Path, f: &FitFigure) -> Result<()> {
    let FitFigure {
        title,
        names,
        start,
        epochs,
        emp,
        sim,
        loss_label,
        gains,
    } = *f;
    let e = |x: &dyn std::fmt::Debug| anyhow!("plot: {x:?}");
    if epochs.is_empty() {
        anyhow::bail!("{}: nothing to plot (no epochs)", path.display());
    }
    let n_ep = epochs.len() as f64;
    let xs: Vec<f64> = (1..=epochs.len()).map(|i| i as f64).collect();
    // The values from epoch 0 (the start); the losses from epoch 1.
    let xs0: Vec<f64> = (0..=epochs.len()).map(|i| i as f64).collect();
    let x_range = if epochs.len() > 1 {
        1.0..n_ep
    } else {
        0.5..1.5
    };
    let padded = |lo: f64, hi: f64| {
        let pad = ((hi - lo) * 0.08).max(1e-3);
        (lo - pad)..(hi + pad)
    };
    // Room above the lines for the legend.
    let legend_room = |lo: f64, hi: f64| {
        let pad = ((hi - lo) * 0.08).max(1e-3);
        (lo - pad)..(hi + 0.45 * (hi - lo).max(1e-3))
    };
    let ticks = (epochs.len() + 1).min(11);
    let mut svg = String::new();
    {
        // With connectome gains, a third column: the fitted gains.
        let cols = if gains.is_some() { 3 } else { 2 };
        let root = SVGBackend::with_string(&mut svg, (650 * cols as u32, 1000)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let root = root.titled(title, ("sans-serif", 22)).map_err(|x| e(&x))?;
        let grid = root.split_evenly((2, cols));
        // Panels in reading order of the 2 x 2 layout, then the gains.
        let quad = [&grid[0], &grid[1], &grid[cols], &grid[cols + 1]];
        // Fitted values relative to their start.
        let rel: Vec<Vec<f64>> = (0..names.len())
            .map(|j| {
                std::iter::once(1.0)
                    .chain(epochs.iter().map(|ep| ep.values[j] / start[j]))
                    .collect()
            })
            .collect();
        let (lo, hi) = rel
            .iter()
            .flatten()
            .fold((1.0f64, 1.0f64), |(a, b), &v| (a.min(v), b.max(v)));
        let lines: Vec<EpochLine> = names
            .iter()
            .zip(&rel)
            .enumerate()
            .map(|(j, (name, r))| EpochLine {
                label: format!("{name} (start {})", start[j]),
                points: xs0.iter().copied().zip(r.iter().copied()).collect(),
                colour: FIT_COLOURS[j % FIT_COLOURS.len()],
            })
            .collect();
        epoch_lines(
            quad[0],
            [
                "fitted values / starting values",
                "epoch (0: start)",
                "value / start [1]",
            ],
            (0.0..n_ep, legend_room(lo, hi)),
            ticks,
            &lines,
        )?;
        // Loss and FC correlation per epoch.
        let loss: Vec<f64> = epochs.iter().map(|ep| ep.loss).collect();
        let fcr: Vec<f64> = epochs.iter().map(|ep| ep.fc_r).collect();
        let wr: Vec<f64> = epochs.iter().map(|ep| ep.window_r).collect();
        let (lo, hi) = loss
            .iter()
            .chain(&fcr)
            .chain(&wr)
            .fold((0.0f64, 1.0f64), |(a, b), &v| (a.min(v), b.max(v)));
        let line = |label: &str, v: &[f64], colour| EpochLine {
            label: label.to_string(),
            points: xs.iter().copied().zip(v.iter().copied()).collect(),
            colour,
        };
        epoch_lines(
            quad[1],
            ["loss and FC correlation per epoch", "epoch", "[1]"],
            (x_range, legend_room(lo, hi)),
            ticks,
            &[
                line(loss_label, &loss, BLACK),
                line("FC r, mean over windows", &wr, FIT_COLOURS[0]),
                line("FC r, whole epoch", &fcr, FIT_COLOURS[1]),
            ],
        )?;
        // Simulated against empirical FC, off the diagonal.
        let n = emp.nrows();
        let pairs: Vec<(f64, f64)> = (0..n)
            .flat_map(|i| (0..i).map(move |j| (i, j)))
            .map(|(i, j)| (emp[[i, j]], sim[[i, j]]))
            .collect();
        let (lo, hi) = pairs.iter().fold((0.0f64, 0.0f64), |(a, b), &(x, y)| {
            (a.min(x.min(y)), b.max(x.max(y)))
        });
        let last = &epochs[epochs.len() - 1];
        let mut c = ChartBuilder::on(quad[2])
            .caption(
                format!("FC, last epoch: r = {:.3}", last.fc_r),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(padded(lo, hi), padded(lo, hi))
            .map_err(|x| e(&x))?;
        c.configure_mesh()
            .x_desc("empirical FC [Pearson r]")
            .y_desc("simulated FC [Pearson r]")
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(|x| e(&x))?;
        c.draw_series(std::iter::once(PathElement::new(
            vec![(lo, lo), (hi, hi)],
            BLACK.mix(0.5).stroke_width(1),
        )))
        .map_err(|x| e(&x))?;
        c.draw_series(
            pairs
                .iter()
                .map(|&(x, y)| Circle::new((x, y), 2, FIT_COLOURS[0].mix(0.5).filled())),
        )
        .map_err(|x| e(&x))?;
        // Both matrices in one: empirical below the diagonal, simulated above.
        let both = ndarray::Array2::from_shape_fn((n, n), |(i, j)| match i.cmp(&j) {
            std::cmp::Ordering::Greater => emp[[i, j]],
            std::cmp::Ordering::Less => sim[[i, j]],
            std::cmp::Ordering::Equal => 1.0,
        });
        heatmap(
            quad[3],
            &Heat {
                caption: "FC: empirical below the diagonal, simulated above",
                xlabel: "region",
                ylabel: "region",
                x_range: (0.0, n as f64),
                y_range: (0.0, n as f64),
                half: 1.0,
                bar_label: "Pearson r [1]",
                integer_ticks: true,
                marker: None,
            },
            &both,
        )?;
        if let Some(g) = gains {
            // Gains 1 + tanh b in (0, 2): shown as gain - 1, zero where there is no link.
            let dev = g.mapv(|x| if x == 0.0 { 0.0 } else { x - 1.0 });
            let half = dev.iter().fold(1e-3f64, |m, x| m.max(x.abs()));
            heatmap(
                &grid[2],
                &Heat {
                    caption: "connectome gains - 1 (0: the connectome as given, or no link)",
                    xlabel: "region",
                    ylabel: "region",
                    x_range: (0.0, n as f64),
                    y_range: (0.0, n as f64),
                    half,
                    bar_label: "gain - 1 [1]",
                    integer_ticks: true,
                    marker: None,
                },
                &dev,
            )?;
        }
        root.present().map_err(|x| e(&x))?;
    }
    Ok(atomic_write(path, |w| Ok(w.write_all(svg.as_bytes())?))?)
}
