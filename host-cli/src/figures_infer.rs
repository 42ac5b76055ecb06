//! Figures of `nmm infer` (SVG): the SBC rank histograms, the expected-coverage curve, the
//! posterior z-score against shrinkage, a pair plot of posterior draws with the true value,
//! and the comparison of posteriors (z-score against shrinkage, posterior mean against truth).

use anyhow::{Result, anyhow};
use ndarray::{Array2, ArrayView1};
use nmm::infer::Check;
use nmm::infer::check::RANK_BINS;
use nmm::io::atomic_write;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::io::Write;
use std::path::Path;

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plot: {e:?}")
}

fn save(path: &Path, svg: &str) -> Result<()> {
    Ok(atomic_write(path, |f| Ok(f.write_all(svg.as_bytes())?))?)
}

/// The legend of the series labelled so far, boxed, at the upper left.
fn legend<'a>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// Panel `k` of `n` side by side, with room for a title above.
fn panels<'a>(
    root: &DrawingArea<SVGBackend<'a>, Shift>,
    title: &str,
    n: usize,
) -> Result<Vec<DrawingArea<SVGBackend<'a>, Shift>>> {
    root.fill(&WHITE).map_err(err)?;
    let body = root.titled(title, ("sans-serif", 20)).map_err(err)?;
    Ok(body.split_evenly((1, n)))
}

/// One histogram of ranks per parameter, with the count expected under calibration and its
/// 99 % band (binomial, normal approximation).
pub fn ranks(path: &Path, c: &Check) -> Result<()> {
    let d = c.names.len();
    let n = c.len() as f64;
    let e = n / RANK_BINS as f64;
    let band = 2.576 * (n * (1.0 / RANK_BINS as f64) * (1.0 - 1.0 / RANK_BINS as f64)).sqrt();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, ((360 * d as u32 + 40).max(760), 400))
            .into_drawing_area();
        let title = format!(
            "SBC ranks among {} draws, {} simulations (grey: 99 % band if calibrated)",
            c.draws,
            c.len()
        );
        let areas = panels(&root, &title, d)?;
        for (j, area) in areas.iter().enumerate() {
            let h = c.rank_histogram(j);
            let top = (*h.iter().max().unwrap_or(&1) as f64).max(e + band) * 1.1;
            let mut chart = ChartBuilder::on(area)
                .caption(
                    format!("{} (chi2 {:.1}, 9 dof)", c.names[j], c.rank_chi2(j)),
                    ("sans-serif", 16),
                )
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(50)
                .build_cartesian_2d(0.0..RANK_BINS as f64, 0.0..top)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc(format!("rank bin ({} ranks in all)", c.draws + 1))
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_desc("simulations")
                .y_label_formatter(&|v| format!("{v:.0}"))
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, (e - band).max(0.0)), (RANK_BINS as f64, e + band)],
                    BLACK.mix(0.12).filled(),
                )))
                .map_err(err)?;
            chart
                .draw_series(h.iter().enumerate().map(|(b, &v)| {
                    Rectangle::new(
                        [(b as f64 + 0.08, 0.0), (b as f64 + 0.92, v as f64)],
                        BLUE.mix(0.7).filled(),
                    )
                }))
                .map_err(err)?;
            chart
                .draw_series(LineSeries::new(
                    [(0.0, e), (RANK_BINS as f64, e)],
                    BLACK.stroke_width(1),
                ))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    save(path, &svg)
}

/// Empirical against nominal coverage: each parameter's central intervals, the joint
/// highest-density regions and TARP's random-reference balls, with the diagonal of a
/// calibrated posterior.
pub fn coverage(path: &Path, c: &Check) -> Result<()> {
    let levels: Vec<f64> = (0..=50).map(|k| k as f64 / 50.0).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (620, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Expected coverage, {} held-out simulations", c.len()),
                ("sans-serif", 20),
            )
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("credibility level")
            .y_desc("fraction of true values inside")
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.5)))
            .map_err(err)?
            .label("calibrated")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
        for j in 0..c.names.len() {
            // Red is the joint curve's; the parameters take other colours.
            const COLOURS: [RGBColor; 6] = [BLUE, GREEN, MAGENTA, CYAN, BLACK, YELLOW];
            let col = COLOURS[j % COLOURS.len()].to_rgba();
            chart
                .draw_series(LineSeries::new(
                    levels.iter().map(|&l| (l, c.marginal_coverage(j, l))),
                    col.stroke_width(2),
                ))
                .map_err(err)?
                .label(format!("{} (central interval)", c.names[j]))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2))
                });
        }
        chart
            .draw_series(LineSeries::new(
                levels.iter().map(|&l| (l, c.joint_coverage(l))),
                RED.stroke_width(3),
            ))
            .map_err(err)?
            .label("joint (highest-density region)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(3)));
        let (ks, p) = c.tarp_ks();
        let grey = RGBColor(110, 110, 110);
        chart
            .draw_series(DashedLineSeries::new(
                levels.iter().map(|&l| (l, c.tarp_coverage(l))),
                6,
                4,
                grey.stroke_width(2),
            ))
            .map_err(err)?
            .label(format!("TARP (KS {ks:.3}, p = {p:.3})"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(2))
            });
        legend(&mut chart)?;
        root.present().map_err(err)?;
    }
    save(path, &svg)
}

/// Per-simulation results of one posterior on held-out simulations, for the figures that
/// compare posteriors: what `nmm infer check` writes to check.csv.
pub struct Checked {
    /// The posterior's label in legends.
    pub label: String,
    /// Parameter names (columns of the arrays).
    pub names: Vec<String>,
    /// True values, `n x d`.
    pub truth: Array2<f64>,
    /// Posterior means, `n x d`.
    pub mean: Array2<f64>,
    /// Posterior standard deviations, `n x d`.
    pub sd: Array2<f64>,
    /// `|mean - truth| / sd`, `n x d`.
    pub zscore: Array2<f64>,
    /// `1 - var_post / var_prior`, `n x d`.
    pub shrinkage: Array2<f64>,
}

impl Checked {
    fn of(c: &Check) -> Self {
        Checked {
            label: String::new(),
            names: c.names.clone(),
            truth: c.truth.clone(),
            mean: c.mean.clone(),
            sd: c.sd.clone(),
            zscore: c.zscore.clone(),
            shrinkage: c.shrinkage.clone(),
        }
    }
}

/// Colours of the sets in comparison figures.
const SET_COLOURS: [RGBColor; 4] = [BLUE, RED, GREEN, MAGENTA];

/// Parameter names over all sets, in order of first appearance.
fn union_names(sets: &[Checked]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for s in sets {
        for n in &s.names {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    names
}

/// The 2025 paper's diagnostic: posterior z-score `|mean - true| / sd` against shrinkage
/// `1 - var_post / var_prior`, one panel per parameter. A good posterior sits at the bottom
/// right (small z-score, large shrinkage).
pub fn zscore_shrinkage(path: &Path, c: &Check) -> Result<()> {
    let title = format!(
        "Posterior z-score against shrinkage, {} held-out simulations",
        c.len()
    );
    zscore_shrinkage_sets(path, &title, &[Checked::of(c)])
}

/// [`zscore_shrinkage`] for several posteriors, one colour each (a legend names them).
pub fn zscore_shrinkage_sets(path: &Path, title: &str, sets: &[Checked]) -> Result<()> {
    let names = union_names(sets);
    let d = names.len();
    let zmax = sets
        .iter()
        .flat_map(|s| s.zscore.iter().copied())
        .filter(|v| v.is_finite())
        .fold(3.0, f64::max)
        .min(20.0)
        * 1.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, ((360 * d as u32 + 40).max(760), 400))
            .into_drawing_area();
        let areas = panels(&root, title, d)?;
        for (area, name) in areas.iter().zip(&names) {
            let smin = sets
                .iter()
                .filter_map(|s| s.names.iter().position(|n| n == name).map(|j| (s, j)))
                .flat_map(|(s, j)| s.shrinkage.column(j).to_vec())
                .filter(|v| v.is_finite())
                .fold(0.0, f64::min);
            let mut chart = ChartBuilder::on(area)
                .caption(name.as_str(), ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(44)
                .build_cartesian_2d(smin.max(-1.0)..1.0, 0.0..zmax)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("shrinkage")
                .y_desc("z-score")
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(err)?;
            for (k, s) in sets.iter().enumerate() {
                let Some(j) = s.names.iter().position(|n| n == name) else {
                    continue;
                };
                let col = SET_COLOURS[k % SET_COLOURS.len()];
                let drawn = chart
                    .draw_series(
                        s.shrinkage
                            .column(j)
                            .iter()
                            .zip(s.zscore.column(j))
                            .filter(|(s, z)| s.is_finite() && z.is_finite())
                            .map(|(&s, &z)| {
                                Circle::new((s, z.min(zmax)), 2, col.mix(0.5).filled())
                            }),
                    )
                    .map_err(err)?;
                if !s.label.is_empty() {
                    drawn
                        .label(s.label.as_str())
                        .legend(move |(x, y)| Circle::new((x + 10, y), 4, col.filled()));
                }
            }
            if sets.iter().any(|s| !s.label.is_empty()) {
                legend(&mut chart)?;
            }
        }
        root.present().map_err(err)?;
    }
    save(path, &svg)
}

/// Posterior mean (with +-1 sd bars) against the true value, one panel per parameter and one
/// colour per posterior; the diagonal is exact recovery.
pub fn recovery(path: &Path, title: &str, sets: &[Checked]) -> Result<()> {
    let names = union_names(sets);
    let d = names.len();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, ((360 * d as u32 + 40).max(760), 400))
            .into_drawing_area();
        let areas = panels(&root, title, d)?;
        for (area, name) in areas.iter().zip(&names) {
            let cols: Vec<(usize, &Checked, usize)> = sets
                .iter()
                .enumerate()
                .filter_map(|(k, s)| s.names.iter().position(|n| n == name).map(|j| (k, s, j)))
                .collect();
            let (lo, hi) = cols
                .iter()
                .flat_map(|&(_, s, j)| {
                    s.truth
                        .column(j)
                        .to_vec()
                        .into_iter()
                        .chain(s.mean.column(j).to_vec())
                })
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                });
            let pad = 0.05 * (hi - lo).max(1e-12);
            let (lo, hi) = (lo - pad, hi + pad);
            let mut chart = ChartBuilder::on(area)
                .caption(name.as_str(), ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(50)
                .build_cartesian_2d(lo..hi, lo..hi)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("true value")
                .y_desc("posterior mean")
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(err)?;
            chart
                .draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.mix(0.5)))
                .map_err(err)?;
            for &(k, s, j) in &cols {
                let col = SET_COLOURS[k % SET_COLOURS.len()];
                let rows = || {
                    (0..s.truth.nrows())
                        .map(move |i| (s.truth[[i, j]], s.mean[[i, j]], s.sd[[i, j]]))
                        .filter(|(t, m, e)| t.is_finite() && m.is_finite() && e.is_finite())
                };
                chart
                    .draw_series(rows().map(|(t, m, e)| {
                        PathElement::new(
                            vec![(t, (m - e).max(lo)), (t, (m + e).min(hi))],
                            col.mix(0.15),
                        )
                    }))
                    .map_err(err)?;
                let drawn = chart
                    .draw_series(
                        rows().map(|(t, m, _)| Circle::new((t, m), 2, col.mix(0.6).filled())),
                    )
                    .map_err(err)?;
                if !s.label.is_empty() {
                    drawn
                        .label(s.label.as_str())
                        .legend(move |(x, y)| Circle::new((x + 10, y), 4, col.filled()));
                }
            }
            if sets.iter().any(|s| !s.label.is_empty()) {
                legend(&mut chart)?;
            }
        }
        root.present().map_err(err)?;
    }
    save(path, &svg)
}

fn range(v: ArrayView1<f64>, also: f64) -> (f64, f64) {
    let (lo, hi) = v
        .iter()
        .chain(std::iter::once(&also))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let pad = 0.05 * (hi - lo).max(1e-12);
    (lo - pad, hi + pad)
}

/// Pair plot (corner plot) of posterior draws: marginal histograms on the diagonal, draws
/// below it, the true value (when given) in red.
pub fn pairs(
    path: &Path,
    title: &str,
    names: &[String],
    draws: &Array2<f64>,
    truth: Option<&[f64]>,
) -> Result<()> {
    let d = names.len();
    let shown = draws.nrows().min(3000);
    let mut svg = String::new();
    {
        let side = 260 * d as u32 + 40;
        let root = SVGBackend::with_string(&mut svg, (side, side)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let body = root.titled(title, ("sans-serif", 18)).map_err(err)?;
        let cells = body.split_evenly((d, d));
        let nan = f64::NAN;
        let t = |j: usize| truth.map_or(nan, |t| t[j]);
        let ranges: Vec<(f64, f64)> = (0..d)
            .map(|j| {
                let tj = t(j);
                range(
                    draws.column(j),
                    if tj.is_finite() { tj } else { draws[[0, j]] },
                )
            })
            .collect();
        for a in 0..d {
            for b in 0..d {
                let cell = &cells[a * d + b];
                if b > a {
                    continue;
                }
                let (xr, yr) = (ranges[b], ranges[a]);
                if a == b {
                    let bins = 40;
                    let mut h = vec![0usize; bins];
                    for &v in draws.column(a) {
                        let k = ((v - xr.0) / (xr.1 - xr.0) * bins as f64) as usize;
                        h[k.min(bins - 1)] += 1;
                    }
                    let top = *h.iter().max().unwrap_or(&1) as f64 * 1.1;
                    let mut chart = ChartBuilder::on(cell)
                        .margin(6)
                        .x_label_area_size(if a == d - 1 { 30 } else { 14 })
                        .y_label_area_size(14)
                        .build_cartesian_2d(xr.0..xr.1, 0.0..top)
                        .map_err(err)?;
                    chart
                        .configure_mesh()
                        .x_desc(if a == d - 1 { names[b].as_str() } else { "" })
                        .y_labels(0)
                        .light_line_style(WHITE.mix(0.0))
                        .draw()
                        .map_err(err)?;
                    let w = (xr.1 - xr.0) / bins as f64;
                    chart
                        .draw_series(h.iter().enumerate().map(|(k, &v)| {
                            let x0 = xr.0 + k as f64 * w;
                            Rectangle::new([(x0, 0.0), (x0 + w, v as f64)], BLUE.mix(0.6).filled())
                        }))
                        .map_err(err)?;
                    if t(a).is_finite() {
                        chart
                            .draw_series(LineSeries::new(
                                [(t(a), 0.0), (t(a), top)],
                                RED.stroke_width(2),
                            ))
                            .map_err(err)?;
                    }
                } else {
                    let mut chart = ChartBuilder::on(cell)
                        .margin(6)
                        .x_label_area_size(if a == d - 1 { 30 } else { 14 })
                        .y_label_area_size(if b == 0 { 44 } else { 14 })
                        .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
                        .map_err(err)?;
                    chart
                        .configure_mesh()
                        .x_desc(if a == d - 1 { names[b].as_str() } else { "" })
                        .y_desc(if b == 0 { names[a].as_str() } else { "" })
                        .light_line_style(WHITE.mix(0.0))
                        .draw()
                        .map_err(err)?;
                    chart
                        .draw_series((0..shown).map(|r| {
                            Circle::new((draws[[r, b]], draws[[r, a]]), 1, BLUE.mix(0.25).filled())
                        }))
                        .map_err(err)?;
                    if t(a).is_finite() && t(b).is_finite() {
                        chart
                            .draw_series(std::iter::once(Cross::new(
                                (t(b), t(a)),
                                7,
                                RED.stroke_width(3),
                            )))
                            .map_err(err)?;
                    }
                }
            }
        }
        root.present().map_err(err)?;
    }
    save(path, &svg)
}
