//! Classifier two-sample test (C2ST; Lopez-Paz and Oquab 2017), the score sbi reports to
//! compare a posterior estimate with a reference posterior: the cross-validated accuracy of a
//! classifier asked to tell the two samples apart. 0.5 when they come from one distribution,
//! 1 when they do not overlap. Samples of different sizes are cut to the smaller size (a
//! seeded choice of rows), so that chance stays at 0.5.
//!
//! The classifier is k-nearest neighbours (odd `k` near the square root of the training
//! size, so that the accuracy tends to the Bayes accuracy as the samples grow) on the pooled
//! samples z-scored together, with 5-fold cross-validation over a seeded split; the score is
//! the accuracy over all points (the folds are of equal size to one point). sbi's `c2st`
//! defaults to a random forest (an MLP on request; sbibm uses the MLP) and z-scores with the
//! first sample's statistics. k-NN needs no training and no seed beyond the split, and for the
//! few-dimensional posteriors it is used on (samples of 10^3 to 10^4) the brute-force search
//! is cheap: 2,000 points in 2-D take about 4 * 10^6 distances, a few milliseconds, so no
//! search-tree crate is needed. Points are classified in parallel; the result does not depend
//! on the thread count.

use super::maf::permutation;
use crate::error::{Result, bail};
use ndarray::{ArrayView2, Axis, concatenate};
use nmm_core::rng::stream;
use rayon::prelude::*;

/// Folds of the cross-validation.
pub const FOLDS: usize = 5;

/// The C2ST accuracy of samples `a` and `b` (rows are points, the same number of columns),
/// deterministic for `seed`. Each needs at least [`FOLDS`] * 2 rows; the larger is cut to the
/// smaller's size; every value must be finite.
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
    // Equal sizes: the larger sample cut to a seeded choice of the smaller's number of rows.
    let m = a.nrows().min(b.nrows());
    let cut = |s: ArrayView2<f64>, stream_id: u64| {
        let mut rows = permutation(&mut stream(seed, stream_id), s.nrows());
        rows.truncate(m);
        rows.sort_unstable();
        s.select(Axis(0), &rows)
    };
    let (a, b) = (cut(a, 1), cut(b, 2));
    let mut x = concatenate(Axis(0), &[a.view(), b.view()])?;
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
    let correct = (0..n)
        .into_par_iter()
        .filter(|&i| {
            let xi = x.row(i);
            let mut dist: Vec<(f64, bool)> = (0..n)
                .filter(|&j| fold[j] != fold[i])
                .map(|j| {
                    let d2: f64 = xi
                        .iter()
                        .zip(x.row(j))
                        .map(|(p, q)| (p - q) * (p - q))
                        .sum();
                    (d2, label[j])
                })
                .collect();
            let k = k.min(dist.len());
            dist.select_nth_unstable_by(k - 1, |p, q| p.0.total_cmp(&q.0));
            let votes_b = dist[..k].iter().filter(|d| d.1).count();
            (2 * votes_b > k) == label[i]
        })
        .count();
    Ok(correct as f64 / n as f64)
}
