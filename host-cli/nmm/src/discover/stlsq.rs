//! Sequentially thresholded least squares (STLSQ, the sparse regression of SINDy; Brunton et
//! al. 2016, as pysindy implements it) on normal equations, and its threshold chosen by
//! cross-validation over groups of samples.
//!
//! Everything works on the Gram matrix `X^T X`, `X^T y` and `y^T y` of the (column-normalised)
//! library, accumulated once per group: a fit costs a few small solves whatever the number of
//! samples, and the held-out error of a fold is `y_f^T y_f - 2 c^T b_f + c^T G_f c`.
//!
//! Differences from pysindy's defaults, and why:
//! - the columns are scaled to unit root-mean-square before thresholding, and a coefficient is
//!   dropped when its *contribution* `|c_k| rms(X_k)` is below `threshold rms(dx/dt)`, a
//!   fraction of the whole derivative (the dynamics), not of the correction: where the true
//!   correction is zero the target is only derivative error and finite-size noise, and a
//!   threshold relative to it would keep terms fitted to that error. pysindy thresholds raw
//!   coefficients, which here would compare terms whose scales differ by four orders of
//!   magnitude (`J r` against `r sqrt((1 - p)/(p N))`);
//! - the ridge `alpha` is added to the Gram of the normalised columns (pysindy: of the raw
//!   ones); with its default 0.05 and 10^4 or more samples it only steadies nearly collinear
//!   columns (a relative shrinkage of 5e-6 or less).

use nalgebra::{DMatrix, DVector};

/// Normal-equation sums of one group of samples (one network run).
#[derive(Clone, Debug, PartialEq)]
pub struct Gram {
    /// `X^T X` (columns as given, not yet normalised).
    pub xtx: DMatrix<f64>,
    /// `X^T y`.
    pub xty: DVector<f64>,
    /// `y^T y`.
    pub yty: f64,
    /// Sum of squares of the whole derivative `dx/dt` (known field plus target), the scale
    /// thresholds are relative to.
    pub dds: f64,
    /// Number of samples.
    pub n: usize,
}

impl Gram {
    /// Empty sums for `k` columns.
    pub fn new(k: usize) -> Self {
        Self {
            xtx: DMatrix::zeros(k, k),
            xty: DVector::zeros(k),
            yty: 0.0,
            dds: 0.0,
            n: 0,
        }
    }

    /// Adds one sample: library row `x`, target `y` and the whole derivative `d` (the known
    /// field plus the target).
    pub fn add(&mut self, x: &[f64], y: f64, d: f64) {
        let k = self.xty.len();
        for i in 0..k {
            if x[i] == 0.0 {
                continue;
            }
            self.xty[i] += x[i] * y;
            for j in i..k {
                self.xtx[(i, j)] += x[i] * x[j];
            }
        }
        self.yty += y * y;
        self.dds += d * d;
        self.n += 1;
    }

    /// Fills the lower triangle from the upper one (call once, after the last [`Gram::add`]).
    pub fn symmetrise(&mut self) {
        let k = self.xty.len();
        for i in 0..k {
            for j in 0..i {
                self.xtx[(i, j)] = self.xtx[(j, i)];
            }
        }
    }

    /// The sum of `parts`, in their order.
    pub fn sum<'a>(k: usize, parts: impl IntoIterator<Item = &'a Gram>) -> Gram {
        let mut g = Gram::new(k);
        for p in parts {
            g.xtx += &p.xtx;
            g.xty += &p.xty;
            g.yty += p.yty;
            g.dds += p.dds;
            g.n += p.n;
        }
        g
    }

    /// Mean squared residual of coefficients `c` on these samples.
    pub fn mse(&self, c: &DVector<f64>) -> f64 {
        let sse = self.yty - 2.0 * c.dot(&self.xty) + c.dot(&(&self.xtx * c));
        sse.max(0.0) / self.n.max(1) as f64
    }
}

/// STLSQ settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Relative threshold: a term whose contribution `|c_k| rms(X_k)` is below
    /// `threshold rms(dx/dt)` is dropped.
    pub threshold: f64,
    /// Ridge on the Gram of the unit-RMS columns.
    pub alpha: f64,
    /// Most threshold-and-refit rounds (pysindy: 20).
    pub iterations: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            threshold: 0.1,
            alpha: 0.05,
            iterations: 20,
        }
    }
}

/// Ridge least squares restricted to the columns in `active` (normalised coordinates);
/// zero elsewhere. `None` when the system is singular even with the ridge.
fn solve(g: &Gram, scale: &[f64], active: &[bool], alpha: f64) -> Option<DVector<f64>> {
    let idx: Vec<usize> = (0..active.len()).filter(|&i| active[i]).collect();
    let m = idx.len();
    let mut c = DVector::zeros(active.len());
    if m == 0 {
        return Some(c);
    }
    let a = DMatrix::from_fn(m, m, |i, j| {
        let (p, q) = (idx[i], idx[j]);
        g.xtx[(p, q)] / (scale[p] * scale[q]) + if i == j { alpha } else { 0.0 }
    });
    let b = DVector::from_fn(m, |i, _| g.xty[idx[i]] / scale[idx[i]]);
    let x = a.cholesky()?.solve(&b);
    for (i, &p) in idx.iter().enumerate() {
        // Back to raw units: X_p c_p = (X_p / s_p)(s_p c_p).
        c[p] = x[i] / scale[p];
    }
    Some(c)
}

/// Root-mean-square of each column over the samples of `g` (0 for a column that is zero on
/// every sample).
pub fn column_rms(g: &Gram) -> Vec<f64> {
    let n = g.n.max(1) as f64;
    (0..g.xty.len())
        .map(|i| (g.xtx[(i, i)] / n).sqrt())
        .collect()
}

/// STLSQ on the sums `g`, with column scales `scale` (root-mean-square of each column; a zero
/// scale drops that column). Returns raw-unit coefficients, or `None` when a least-squares
/// system is singular.
pub fn fit(g: &Gram, scale: &[f64], s: &Settings) -> Option<DVector<f64>> {
    let k = scale.len();
    let y_rms = (g.dds / g.n.max(1) as f64).sqrt();
    let mut active: Vec<bool> = scale.iter().map(|&x| x > 0.0 && x.is_finite()).collect();
    let mut c = solve(g, scale, &active, s.alpha)?;
    for _ in 0..s.iterations {
        let next: Vec<bool> = (0..k)
            .map(|i| active[i] && (c[i] * scale[i]).abs() >= s.threshold * y_rms)
            .collect();
        if next == active {
            break;
        }
        active = next;
        c = solve(g, scale, &active, s.alpha)?;
    }
    Some(c)
}

/// The cross-validation of one threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CvPoint {
    /// Relative threshold.
    pub threshold: f64,
    /// Held-out mean squared error, averaged over the folds.
    pub mse: f64,
    /// Its standard error over the folds.
    pub se: f64,
    /// Nonzero terms in the fit on all the data at this threshold.
    pub terms: usize,
}

/// The thresholds tried by [`cross_validate`]: 0 (plain least squares, for reference; never
/// chosen) and 25 values from 1e-3 to 1, evenly spaced in log. The floor: a correction below
/// 0.1 % of the dynamics' root-mean-square is not reported as a law (on noise-free test data
/// the derivative's own discretisation error reaches 1e-4 of it).
pub fn threshold_grid() -> Vec<f64> {
    std::iter::once(0.0)
        .chain((0..25).map(|i| 10f64.powf(-3.0 + 3.0 * i as f64 / 24.0)))
        .collect()
}

/// Cross-validates thresholds over `folds` (each a set of group indices into `groups`), with
/// the column scales of all the data, and picks the largest threshold (the sparsest fit) whose
/// held-out error is within `max(SE, tolerance y^2)` of the best: one standard error over the
/// folds (the usual rule, for noisy targets) or a fraction `tolerance` of the target's mean
/// square, i.e. an R^2 within `tolerance` of the best. The second matters for smooth targets
/// (a learned network term, noise-free derivatives): there every extra term lowers the
/// held-out error a little by fitting the target's own approximation error, and the
/// standard error alone would keep them all. Returns the chosen threshold and the curve.
pub fn cross_validate(
    groups: &[Gram],
    folds: &[Vec<usize>],
    s: &Settings,
    tolerance: f64,
) -> Option<(f64, Vec<CvPoint>)> {
    let k = groups.first()?.xty.len();
    let all = Gram::sum(k, groups);
    let scale = column_rms(&all);
    let mut curve = Vec::new();
    for t in threshold_grid() {
        let st = Settings { threshold: t, ..*s };
        let mut errs = Vec::with_capacity(folds.len());
        for f in folds {
            let test = Gram::sum(k, f.iter().map(|&i| &groups[i]));
            let train = Gram::sum(
                k,
                (0..groups.len())
                    .filter(|i| !f.contains(i))
                    .map(|i| &groups[i]),
            );
            let c = fit(&train, &scale, &st)?;
            errs.push(test.mse(&c));
        }
        let n = errs.len() as f64;
        let mean = errs.iter().sum::<f64>() / n;
        let var = errs.iter().map(|e| (e - mean) * (e - mean)).sum::<f64>() / (n - 1.0).max(1.0);
        let c = fit(&all, &scale, &st)?;
        curve.push(CvPoint {
            threshold: t,
            mse: mean,
            se: (var / n).sqrt(),
            terms: c.iter().filter(|x| **x != 0.0).count(),
        });
    }
    let best = curve
        .iter()
        .filter(|p| p.threshold > 0.0)
        .min_by(|a, b| a.mse.total_cmp(&b.mse))
        .copied()?;
    let slack = best.se.max(tolerance * all.yty / all.n.max(1) as f64);
    let chosen = curve
        .iter()
        .filter(|p| p.threshold > 0.0 && p.mse <= best.mse + slack)
        .map(|p| p.threshold)
        .fold(best.threshold, f64::max);
    Some((chosen, curve))
}

/// `folds` groups of indices `0..n`, round robin over a seeded shuffle (the `k`-th index in
/// the shuffled order goes to fold `k % folds`). Shuffled because sweeps list their runs in
/// grid order: a plain round robin over a grid with five values of `p` innermost puts one `p`
/// in each of five folds, and cross-validation becomes extrapolation in `p`.
pub fn round_robin(n: usize, folds: usize, seed: u64) -> Vec<Vec<usize>> {
    let f = folds.clamp(2, n.max(2));
    // splitmix64 of (seed, index) as the sort key: a fixed permutation for a seed.
    let mix = |i: u64| {
        let mut z = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| mix(i as u64));
    let mut out = vec![Vec::new(); f];
    for (k, &i) in order.iter().enumerate() {
        out[k % f].push(i);
    }
    for v in &mut out {
        v.sort_unstable();
    }
    out.retain(|v| !v.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sparse law recovered exactly from noise-free samples of a 12-column library whose
    /// columns differ in scale by 10^4, and with noise, the threshold picked by
    /// cross-validation keeps exactly the true terms.
    #[test]
    fn recovers_a_sparse_law() {
        let k = 12;
        let truth = |x: &[f64]| 2.0 * x[1] - 0.5 * x[4] + 3e3 * x[7];
        let mut rng = 12345u64;
        let mut u = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut clean = Vec::new();
        let mut noisy = Vec::new();
        for _ in 0..10 {
            let (mut g0, mut g1) = (Gram::new(k), Gram::new(k));
            for _ in 0..400 {
                let a = u();
                let b = u();
                // Correlated columns, and one (7) 1e-3 the scale of the others.
                let x: Vec<f64> = (0..k)
                    .map(|j| match j {
                        7 => 1e-3 * (a + 0.3 * b),
                        _ => (j as f64 * 0.7 + a).sin() + 0.2 * b * j as f64 + u(),
                    })
                    .collect();
                let y = truth(&x);
                g0.add(&x, y, y);
                let yn = y + 0.05 * u();
                g1.add(&x, yn, yn);
            }
            g0.symmetrise();
            g1.symmetrise();
            clean.push(g0);
            noisy.push(g1);
        }
        let all = Gram::sum(k, &clean);
        let scale = column_rms(&all);
        let c = fit(&all, &scale, &Settings::default()).unwrap();
        let want = [0.0, 2.0, 0.0, 0.0, -0.5, 0.0, 0.0, 3e3, 0.0, 0.0, 0.0, 0.0];
        for j in 0..k {
            // Noise-free data: exact up to the ridge (alpha 0.05 against a Gram diagonal of
            // 4000: a relative shrinkage ~1e-5).
            assert!(
                (c[j] - want[j]).abs() <= 1e-4 * want[j].abs().max(1.0),
                "{j}: {}",
                c[j]
            );
        }
        let folds = round_robin(noisy.len(), 5, 1);
        let (t, curve) = cross_validate(&noisy, &folds, &Settings::default(), 0.0).unwrap();
        let alln = Gram::sum(k, &noisy);
        let c = fit(
            &alln,
            &column_rms(&alln),
            &Settings {
                threshold: t,
                ..Default::default()
            },
        )
        .unwrap();
        let support: Vec<usize> = (0..k).filter(|&j| c[j] != 0.0).collect();
        assert_eq!(support, [1, 4, 7], "threshold {t}, curve {curve:?}");
        // Noise of sd 0.05/sqrt(12) on 4000 samples: the coefficients to a few 1e-3.
        assert!((c[1] - 2.0).abs() < 0.01 && (c[4] + 0.5).abs() < 0.01);
        assert!((c[7] - 3e3).abs() < 30.0, "{}", c[7]);
        // Least squares alone (threshold 0) keeps every column.
        assert_eq!(curve[0].terms, k);
    }
}
