//! Classifier two-sample test (C2ST; Lopez-Paz and Oquab 2017), the score sbi reports to
//! compare a posterior estimate with a reference posterior: the cross-validated accuracy of a
//! classifier asked to tell the two samples apart. 0.5 when they come from one distribution,
//! 1 when they do not overlap.
//!
//! The classifier is k-nearest neighbours (odd `k` near the square root of the training
//! size, so that the accuracy tends to the Bayes accuracy as the samples grow) on the pooled
//! samples z-scored together, with 5-fold cross-validation over a seeded split. sbi's default
//! classifier is a scikit-learn MLP; k-NN needs no training of its own and no seed beyond the
//! split, and for the few-dimensional posteriors it is used on (samples of 10^3 to 10^4) the
//! brute-force search is cheap: 2,000 points in 2-D take about 4 * 10^6 distances, a few
//! milliseconds, so no search-tree crate is needed.

use super::maf::permutation;
use crate::error::{Result, bail};
use ndarray::{ArrayView2, Axis, concatenate};
use nmm_core::rng::stream;

/// Folds of the cross-validation.
pub const FOLDS: usize = 5;

/// The C2ST accuracy of samples `a` and `b` (rows are points, the same number of columns),
/// deterministic for `seed`. Each needs at least [`FOLDS`] * 2 rows; every value must be
/// finite.
///
/// ```
/// use ndarray::Array2;
/// let mut rng = nmm_core::rng::stream(7, 0);
/// let mut normal = |_| nmm::infer::standard_normal(&mut rng);
/// // Two samples of one distribution cannot be told apart; a distant one can.
/// let a = Array2::from_shape_fn((500, 2), &mut normal);
/// let b = Array2::from_shape_fn((500, 2), &mut normal);
/// assert!((nmm::infer::c2st(a.view(), b.view(), 1)? - 0.5).abs() < 0.1);
/// let far = b.mapv(|v| v + 20.0);
/// assert_eq!(nmm::infer::c2st(a.view(), far.view(), 1)?, 1.0);
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn c2st(a: ArrayView2<f64>, b: ArrayView2<f64>, seed: u64) -> Result<f64> {
    if a.ncols() != b.ncols() || a.ncols() == 0 {
        bail!(
            "c2st: the samples have {} and {} columns; they must have the same number, at least one",
            a.ncols(),
            b.ncols()
        );
    }
    if a.nrows() < 2 * FOLDS || b.nrows() < 2 * FOLDS {
        bail!(
            "c2st: samples of {} and {} rows; each needs at least {}",
            a.nrows(),
            b.nrows(),
            2 * FOLDS
        );
    }
    if a.iter().chain(b.iter()).any(|v| !v.is_finite()) {
        bail!("c2st: the samples have a non-finite value");
    }
    let mut x = concatenate(Axis(0), &[a, b])?;
    let label: Vec<bool> = (0..x.nrows()).map(|i| i >= a.nrows()).collect();
    for mut c in x.columns_mut() {
        let (m, s) = crate::stats::mean_sd(&c.to_vec());
        let s = if s > 0.0 { s } else { 1.0 };
        c.mapv_inplace(|v| (v - m) / s);
    }
    let n = x.nrows();
    let order = permutation(&mut stream(seed, 0), n);
    let mut fold = vec![0; n];
    for (pos, &i) in order.iter().enumerate() {
        fold[i] = pos % FOLDS;
    }
    let n_train = n - n.div_ceil(FOLDS);
    let k = ((n_train as f64).sqrt() as usize) | 1;
    let mut correct = 0usize;
    let mut dist: Vec<(f64, bool)> = Vec::with_capacity(n);
    for i in 0..n {
        dist.clear();
        let xi = x.row(i);
        dist.extend((0..n).filter(|&j| fold[j] != fold[i]).map(|j| {
            let d2: f64 = xi
                .iter()
                .zip(x.row(j))
                .map(|(p, q)| (p - q) * (p - q))
                .sum();
            (d2, label[j])
        }));
        let k = k.min(dist.len());
        dist.select_nth_unstable_by(k - 1, |p, q| p.0.total_cmp(&q.0));
        let votes_b = dist[..k].iter().filter(|d| d.1).count();
        if (2 * votes_b > k) == label[i] {
            correct += 1;
        }
    }
    Ok(correct as f64 / n as f64)
}
