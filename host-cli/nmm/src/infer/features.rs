//! The 2025 paper's 51 summary statistics of a whole-brain run (REFERENCE section 8; vbi's
//! `matrix_stat`): 25 statistics of FC, 25 of FCD and the regional mean of BOLD zero-crossing
//! counts.
//!
//! For a matrix `A` (`n x n`) and an upper-triangle offset `k`, in order:
//!
//! 1. `q05, q25, q50, q75, q95`: quantiles of all `n^2` entries, diagonal included, by
//!    numpy's linear interpolation;
//! 2. `pca_sum, pca_max, pca_min, pca_mean, pca_std, pca_skew, pca_kurt` of the scores of
//!    `A`'s rows on its first 3 principal components (columns centred, no whitening; each
//!    axis signed as scikit-learn 1.5 and later sign it, its largest-magnitude entry positive;
//!    older versions signed by the scores, which flips `max`, `min` and `skew`), flattened;
//!    `std` is the population deviation, `skew` and `kurt` scipy's biased defaults (`kurt`
//!    the excess kurtosis);
//! 3. `eig_*`: the same 7 of `A`'s eigenvalues but one. vbi leaves out the last in the order
//!    LAPACK's general eigensolver returns them, which no other solver reproduces; here they
//!    are sorted in decreasing order and the smallest is left out. (For FC and FCD, which are
//!    symmetric, every eigenvalue is real.)
//! 4. `ut_max, ut_min, ut_mean, ut_std, ut_skew, ut_kurt` of the entries `A_ij`, `j >= i + k`
//!    (vbi's upper-triangle sum and off-diagonal sum are the two the paper drops).
//!
//! FC is the Pearson correlation of BOLD after the transient with its diagonal set to 0 (vbi's
//! `get_fc`), `k = 1`; FCD is the run's FCD (windows of `fc.window_tr` TRs every `fc.step_tr`)
//! with `k` the number of windows that overlap, `ceil(window / step)`, so its upper-triangle
//! statistics leave out the band of overlapping windows. The last feature is the mean over
//! regions of the number of sign changes of each region's BOLD after the transient, centred
//! on its mean (z-scoring does not move zero crossings).

use crate::brain::{FcCfg, Prepared, RunOutput};
use crate::error::{Result, bail};
use ndarray::Array2;
use nmm_core::fc::{SlidingFc, Welford, fcd, n_pairs, packed_len};

/// Statistics per matrix.
pub const PER_MATRIX: usize = 25;
/// All features.
pub const COUNT: usize = 2 * PER_MATRIX + 1;

const STATS: [&str; 7] = ["sum", "max", "min", "mean", "std", "skew", "kurt"];

/// The names of the 51 features, in order: `fc_q05` ... `fc_ut_kurt`, `fcd_q05` ...,
/// `bold_zero_crossings`.
///
/// ```
/// let n = nmm::infer::features::names();
/// assert_eq!(n.len(), 51);
/// assert_eq!((n[0].as_str(), n[5].as_str(), n[50].as_str()), ("fc_q05", "fc_pca_sum", "bold_zero_crossings"));
/// ```
pub fn names() -> Vec<String> {
    let mut v = Vec::with_capacity(COUNT);
    for m in ["fc", "fcd"] {
        for q in ["q05", "q25", "q50", "q75", "q95"] {
            v.push(format!("{m}_{q}"));
        }
        for group in ["pca", "eig"] {
            for s in STATS {
                v.push(format!("{m}_{group}_{s}"));
            }
        }
        for s in &STATS[1..] {
            v.push(format!("{m}_ut_{s}"));
        }
    }
    v.push("bold_zero_crossings".into());
    v
}

/// `sum, max, min, mean, std (population), skew, excess kurtosis` (scipy's biased
/// estimators; skew and kurtosis are NaN for constant values, as scipy's).
pub fn seven(v: &[f64]) -> [f64; 7] {
    let n = v.len() as f64;
    let sum: f64 = v.iter().sum();
    let mean = sum / n;
    let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
    for &x in v {
        let d = x - mean;
        m2 += d * d;
        m3 += d * d * d;
        m4 += d * d * d * d;
    }
    let (m2, m3, m4) = (m2 / n, m3 / n, m4 / n);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let (skew, kurt) = if m2 > 0.0 {
        (m3 / m2.powf(1.5), m4 / (m2 * m2) - 3.0)
    } else {
        (f64::NAN, f64::NAN)
    };
    [sum, max, min, mean, m2.sqrt(), skew, kurt]
}

/// The scores of `a`'s rows on its first `c` principal components (`n x c`), signed as
/// scikit-learn signs them.
pub fn pca_scores(a: &Array2<f64>, c: usize) -> Array2<f64> {
    let n = a.nrows();
    let mean = a
        .mean_axis(ndarray::Axis(0))
        .unwrap_or_else(|| ndarray::Array1::zeros(a.ncols()));
    let xc = a - &mean;
    let cov = xc.t().dot(&xc);
    let m = a.ncols();
    let eig = nalgebra::DMatrix::from_fn(m, m, |i, j| cov[[i, j]]).symmetric_eigen();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| eig.eigenvalues[j].total_cmp(&eig.eigenvalues[i]));
    let mut scores = Array2::zeros((n, c.min(m)));
    for (k, &e) in order.iter().take(c.min(m)).enumerate() {
        let v = eig.eigenvectors.column(e);
        // scikit-learn's svd_flip on the axes: the largest |entry| of each axis positive.
        let big = (0..m)
            .max_by(|&i, &j| v[i].abs().total_cmp(&v[j].abs()))
            .unwrap_or(0);
        let s = if v[big] < 0.0 { -1.0 } else { 1.0 };
        for r in 0..n {
            scores[[r, k]] = s * (0..m).map(|j| xc[[r, j]] * v[j]).sum::<f64>();
        }
    }
    scores
}

/// Eigenvalues of a symmetric matrix, in decreasing order.
pub fn symmetric_eigenvalues(a: &Array2<f64>) -> Vec<f64> {
    let n = a.nrows();
    let mut e: Vec<f64> = nalgebra::DMatrix::from_fn(n, n, |i, j| a[[i, j]])
        .symmetric_eigenvalues()
        .iter()
        .copied()
        .collect();
    e.sort_by(|x, y| y.total_cmp(x));
    e
}

/// The 25 statistics of a symmetric matrix `a` with upper-triangle offset `k` (see the
/// module documentation). `a` must be square with at least 2 rows and finite.
pub fn matrix_stats(a: &Array2<f64>, k: usize) -> Result<[f64; PER_MATRIX]> {
    let n = a.nrows();
    if n < 2 || a.ncols() != n {
        bail!(
            "matrix statistics need a square matrix of size 2 or more, got {:?}",
            a.dim()
        );
    }
    if a.iter().any(|v| !v.is_finite()) {
        bail!("matrix statistics of a matrix with non-finite entries");
    }
    let mut out = [0.0; PER_MATRIX];
    let mut all: Vec<f64> = a.iter().copied().collect();
    all.sort_by(f64::total_cmp);
    for (i, q) in [0.05, 0.25, 0.5, 0.75, 0.95].into_iter().enumerate() {
        out[i] = crate::stats::quantile_sorted(&all, q);
    }
    let scores = pca_scores(a, 3);
    out[5..12].copy_from_slice(&seven(&scores.iter().copied().collect::<Vec<_>>()));
    let eig = symmetric_eigenvalues(a);
    out[12..19].copy_from_slice(&seven(&eig[..n - 1]));
    let ut: Vec<f64> = (0..n)
        .flat_map(|i| ((i + k)..n).map(move |j| (i, j)))
        .map(|(i, j)| a[[i, j]])
        .collect();
    if ut.is_empty() {
        bail!("no entries above offset {k} in a {n} x {n} matrix");
    }
    out[19..25].copy_from_slice(&seven(&ut)[1..]);
    Ok(out)
}

/// Mean over regions of the number of sign changes of `bold` (samples x regions) about each
/// region's mean.
pub fn zero_crossings(bold: &Array2<f64>) -> f64 {
    let n = bold.ncols();
    let mut total = 0usize;
    for c in bold.columns() {
        let m = c.sum() / c.len() as f64;
        let signs: Vec<bool> = c.iter().map(|&v| v - m > 0.0).collect();
        total += signs.windows(2).filter(|w| w[0] != w[1]).count();
    }
    total as f64 / n as f64
}

/// Checks that runs of `cfg` give an FCD with more windows than its upper-triangle offset
/// (so that the FCD's `ut_*` statistics have entries); the error gives the duration needed.
///
/// ```
/// let mut cfg = nmm::brain::Config::default();
/// cfg.duration_ms = 60_000.0; // 20 samples after the 20 s transient: 3 windows, offset 8
/// assert!(nmm::infer::features::check_config(&cfg).unwrap_err().to_string().contains("at least"));
/// cfg.duration_ms = 100_000.0;
/// assert!(nmm::infer::features::check_config(&cfg).is_ok());
/// ```
pub fn check_config(cfg: &crate::brain::Config) -> Result<()> {
    let tr = cfg.bold.tr_ms;
    let samples = (cfg.duration_ms / tr + 1e-9).floor() as usize;
    let skip = (cfg.fc.transient_ms / tr).floor() as usize;
    let (w, s) = (cfg.fc.window_tr, cfg.fc.step_tr.max(1));
    let k = w.div_ceil(s).max(1);
    let need = w + s * k;
    if samples.saturating_sub(skip) < need {
        bail!(
            "the paper's features need an FCD with more than {k} windows (the windows that overlap one), i.e. {need} BOLD samples after the transient: give a duration of at least {} ms (duration_ms), or a shorter transient or smaller FCD windows",
            (skip + need) as f64 * tr
        );
    }
    Ok(())
}

/// The 51 features of a run (names: [`names`]).
pub fn of_run(p: &Prepared, out: &RunOutput) -> Result<Vec<f64>> {
    // Sample k (k = 1, 2, ...) is at k TR, row k - 1; FC uses those with k > transient / TR.
    let skip = (p.cfg.fc.transient_ms / p.cfg.bold.tr_ms).floor() as usize;
    let bold = out
        .bold
        .slice(ndarray::s![skip.min(out.bold.nrows()).., ..]);
    of_parts(&p.cfg.fc, &out.fc, &out.fcd, &bold.to_owned())
}

/// The 51 features from FC, FCD and the BOLD they were computed from.
fn of_parts(
    cfg: &FcCfg,
    fc: &Array2<f64>,
    fcd: &Array2<f64>,
    bold: &Array2<f64>,
) -> Result<Vec<f64>> {
    let mut fc = fc.clone();
    for i in 0..fc.nrows() {
        fc[[i, i]] = 0.0;
    }
    let (w, s) = (cfg.window_tr, cfg.step_tr.max(1));
    let mut v = Vec::with_capacity(COUNT);
    v.extend(matrix_stats(&fc, 1)?);
    v.extend(matrix_stats(fcd, w.div_ceil(s).max(1))?);
    v.push(zero_crossings(bold));
    Ok(v)
}

/// The 51 features of a recorded BOLD series (samples x regions, one row per TR), such as
/// empirical data or a synthetic subject: FC over every sample, FCD in windows of
/// `cfg.window_tr` samples every `cfg.step_tr` (`cfg.transient_ms` is not used: a recording
/// has no simulated transient; cut one off before calling). The same numbers as [`of_run`]
/// gives for a run whose samples after the transient are `bold`.
///
/// # Errors
/// [`crate::Error::Input`] for non-finite values, a constant region, or too few
/// samples for an FCD with more windows than overlap one.
///
/// ```
/// let cfg = nmm::brain::FcCfg { window_tr: 4, step_tr: 2, ..Default::default() };
/// let bold = ndarray::Array2::from_shape_fn((20, 3), |(t, i)| ((t * (i + 2)) as f64).sin());
/// let x = nmm::infer::features::of_bold(&cfg, &bold)?;
/// assert_eq!(x.len(), 51);
/// assert!(nmm::infer::features::of_bold(&cfg, &bold.slice(ndarray::s![..6, ..]).to_owned()).is_err());
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn of_bold(cfg: &FcCfg, bold: &Array2<f64>) -> Result<Vec<f64>> {
    let (samples, n) = bold.dim();
    if n < 2 {
        bail!("BOLD of {n} region(s): FC needs at least 2 (time must run down the rows)");
    }
    if bold.iter().any(|v| !v.is_finite()) {
        bail!("the BOLD has values that are not finite");
    }
    if let Some(i) = (0..n).find(|&i| bold.column(i).iter().all(|&v| v == bold[[0, i]])) {
        bail!("region {i} (0-based) of the BOLD is constant: a region without variance has no FC");
    }
    let (w, s) = (cfg.window_tr, cfg.step_tr.max(1));
    let k = w.div_ceil(s).max(1);
    if samples < w + s * k {
        bail!(
            "{samples} BOLD samples: the paper's features need an FCD with more than {k} windows \
             of {w} samples every {s}, i.e. at least {} samples",
            w + s * k
        );
    }
    let mut mean = vec![0.0; n];
    let mut m2 = vec![0.0; packed_len(n)];
    let mut buf = vec![0.0; SlidingFc::<f64>::buffer_len(n, cfg.window_tr, cfg.step_tr)];
    let mut welford = Welford::new(&mut mean, &mut m2)?;
    let mut sliding = SlidingFc::new(n, cfg.window_tr, cfg.step_tr, &mut buf)?;
    let mut vectors = Vec::new();
    for row in bold.rows() {
        let y = row.to_vec();
        welford.push(&y);
        if let Some((_, v)) = sliding.push(&y) {
            vectors.extend_from_slice(v);
        }
    }
    let mut fc = vec![0.0; n * n];
    welford.pearson(&mut fc);
    let windows = vectors.len() / n_pairs(n).max(1);
    let mut fcd_m = vec![0.0; windows * windows];
    fcd(&vectors, windows, n_pairs(n), &mut fcd_m)?;
    of_parts(
        cfg,
        &Array2::from_shape_vec((n, n), fc)?,
        &Array2::from_shape_vec((windows, windows), fcd_m)?,
        bold,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seven_statistics_by_hand() {
        // [1, 2, 3, 10]: mean 4, deviations -3 -2 -1 6; m2 = 50/4, m3 = (-27-8-1+216)/4 = 45,
        // m4 = (81+16+1+1296)/4 = 348.5.
        let s = seven(&[1.0, 2.0, 3.0, 10.0]);
        let m2: f64 = 12.5;
        assert_eq!(&s[..5], &[16.0, 10.0, 1.0, 4.0, m2.sqrt()]);
        assert!((s[5] - 45.0 / m2.powf(1.5)).abs() < 1e-14);
        assert!((s[6] - (348.5 / (m2 * m2) - 3.0)).abs() < 1e-14);
    }

    /// A symmetric 5 x 5 matrix with distinct eigenvalues.
    fn sample() -> Array2<f64> {
        Array2::from_shape_fn((5, 5), |(i, j)| {
            let (a, b) = (i.min(j) as f64, i.max(j) as f64);
            if i == j {
                1.0
            } else {
                0.9 / (1.0 + a + 2.0 * b) - 0.1 * (a * b).sin()
            }
        })
    }

    #[test]
    fn quantiles_and_upper_triangle_by_direct_evaluation() {
        let a = sample();
        let st = matrix_stats(&a, 2).unwrap();
        let mut all: Vec<f64> = a.iter().copied().collect();
        all.sort_by(f64::total_cmp);
        // 25 entries: quantile p sits at position 24 p; 0.05 -> 1.2, between sorted[1], [2].
        assert!((st[0] - (all[1] + 0.2 * (all[2] - all[1]))).abs() < 1e-15);
        assert_eq!(st[2], all[12]);
        // Offset 2 of a 5 x 5: (0,2) (0,3) (0,4) (1,3) (1,4) (2,4).
        let ut = [
            a[[0, 2]],
            a[[0, 3]],
            a[[0, 4]],
            a[[1, 3]],
            a[[1, 4]],
            a[[2, 4]],
        ];
        assert_eq!(st[19..25], seven(&ut)[1..]);
    }

    #[test]
    fn eigenvalues_match_the_trace_and_frobenius_identities() {
        let a = sample();
        let e = symmetric_eigenvalues(&a);
        let trace: f64 = (0..5).map(|i| a[[i, i]]).sum();
        let frob: f64 = a.iter().map(|v| v * v).sum();
        assert!((e.iter().sum::<f64>() - trace).abs() < 1e-12);
        assert!((e.iter().map(|v| v * v).sum::<f64>() - frob).abs() < 1e-12);
        assert!(e.windows(2).all(|w| w[0] >= w[1]));
        // And each is an eigenvalue: det(A - e I) = 0, checked by a singular A - e I having a
        // null vector found by inverse iteration (residual below 1e-9).
        for &l in &e {
            let m = nalgebra::DMatrix::from_fn(5, 5, |i, j| {
                a[[i, j]] - if i == j { l + 1e-9 } else { 0.0 }
            });
            let mut v = nalgebra::DVector::from_element(5, 1.0);
            let lu = m.lu();
            for _ in 0..5 {
                v = lu.solve(&v).expect("shifted matrix invertible");
                v /= v.norm();
            }
            let am = nalgebra::DMatrix::from_fn(5, 5, |i, j| a[[i, j]]);
            assert!((&am * &v - &v * l).norm() < 1e-7, "eigenvalue {l}");
        }
    }

    #[test]
    fn pca_scores_against_power_iteration() {
        // A second implementation: power iteration with deflation on the covariance of the
        // centred columns, then the scikit-learn sign rule.
        let a = sample();
        let n = 5;
        let mean: Vec<f64> = (0..n)
            .map(|j| (0..n).map(|i| a[[i, j]]).sum::<f64>() / n as f64)
            .collect();
        let xc = Array2::from_shape_fn((n, n), |(i, j)| a[[i, j]] - mean[j]);
        let mut c = xc.t().dot(&xc);
        let scores = pca_scores(&a, 3);
        for k in 0..3 {
            let mut v = vec![1.0, 0.3, -0.2, 0.5, 0.1];
            let mut lambda = 0.0;
            for _ in 0..5000 {
                let w: Vec<f64> = (0..n)
                    .map(|i| (0..n).map(|j| c[[i, j]] * v[j]).sum())
                    .collect();
                let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
                lambda = norm;
                v = w.iter().map(|x| x / norm).collect();
            }
            let big = (0..n)
                .max_by(|&i, &j| v[i].abs().total_cmp(&v[j].abs()))
                .unwrap();
            if v[big] < 0.0 {
                v.iter_mut().for_each(|x| *x = -*x);
            }
            for r in 0..n {
                let s: f64 = (0..n).map(|j| xc[[r, j]] * v[j]).sum();
                // Power iteration converges to ~1e-12 here (distinct eigenvalues).
                assert!(
                    (s - scores[[r, k]]).abs() < 1e-8,
                    "component {k}, row {r}: {s} vs {}",
                    scores[[r, k]]
                );
            }
            for i in 0..n {
                for j in 0..n {
                    c[[i, j]] -= lambda * v[i] * v[j];
                }
            }
        }
    }

    /// The features of a run's BOLD after its transient, computed from the BOLD alone, are
    /// the run's own (whose FC and FCD were accumulated while it ran), bit for bit.
    #[test]
    fn features_of_a_runs_bold_are_the_runs() {
        let mut cfg = crate::brain::Config::default();
        cfg.connectome.path = "builtin:6".into();
        cfg.duration_ms = 6000.0;
        cfg.bold.tr_ms = 100.0;
        cfg.fc.transient_ms = 1050.0; // not a whole number of TRs: 10 samples dropped
        cfg.fc.window_tr = 6;
        cfg.fc.step_tr = 2;
        let p = crate::brain::Prepared::new(cfg).unwrap();
        let out = crate::brain::run(&p, &crate::progress::Silent).unwrap();
        let x = of_run(&p, &out).unwrap();
        let bold = out.bold.slice(ndarray::s![10.., ..]).to_owned();
        assert_eq!(of_bold(&p.cfg.fc, &bold).unwrap(), x);
        // One sample more is another series: the check can fail.
        let more = out.bold.slice(ndarray::s![9.., ..]).to_owned();
        assert_ne!(of_bold(&p.cfg.fc, &more).unwrap(), x);
        let mut flat = bold.clone();
        flat.column_mut(2).fill(1.0);
        let e = of_bold(&p.cfg.fc, &flat).unwrap_err().to_string();
        assert!(
            e.contains("region 2 (0-based) of the BOLD is constant"),
            "{e}"
        );
        let one = bold.slice(ndarray::s![.., ..1]).to_owned();
        let e = of_bold(&p.cfg.fc, &one).unwrap_err().to_string();
        assert!(e.contains("at least 2"), "{e}");
        let mut nan = bold.clone();
        nan[[3, 1]] = f64::NAN;
        let e = of_bold(&p.cfg.fc, &nan).unwrap_err().to_string();
        assert!(e.contains("not finite"), "{e}");
    }

    #[test]
    fn zero_crossings_count_sign_changes_about_the_mean() {
        // Region 0: mean 0.5; 1 0 1 0 -> 3 changes. Region 1: rising, 1 change.
        let b = ndarray::arr2(&[[1.0, 0.0], [0.0, 1.0], [1.0, 2.0], [0.0, 3.0]]);
        assert_eq!(zero_crossings(&b), 2.0);
    }
}
