//! Simulation-based inference: neural posterior estimation (NPE) with a conditional masked
//! autoregressive flow or neural spline flow, trained on `(theta, x)` pairs from any simulator,
//! with sbi's defaults (REFERENCE section 8), and sampled with the prior's bounds enforced.
//!
//! - [`Prior`]: independent uniform or normal marginals, from a TOML file.
//! - [`train`]: `q(theta | x)` from pairs: theta and x z-scored with the training pairs'
//!   statistics, a [`Maf`] of `transforms` MADE blocks (`hidden` wide, tanh) with random
//!   permutations (the default) or an [`Nsf`] of `transforms` rational-quadratic spline
//!   couplings with LU layers ([`Settings::estimator`]), Adam, gradient clipping, early
//!   stopping on a validation split; the weights with the lowest validation loss are kept.
//! - [`Posterior`]: draws for an observation ([`Posterior::sample`]), log-densities
//!   ([`Posterior::log_prob`]), and the NMMP file ([`mod@file`]).
//! - [`check()`]: simulation-based calibration, expected coverage, and posterior z-scores
//!   against shrinkage, and TARP on held-out simulations.
//! - [`c2st()`]: the classifier two-sample test against a reference posterior's draws.
//!
//! Everything random comes from `Settings::seed` (training) or the sampling seed, and results
//! do not depend on the thread count.

pub mod c2st;
pub mod check;
pub mod features;
pub mod file;
pub mod flow;
pub mod maf;
pub mod npe;
pub mod nsf;
pub mod prior;
pub mod simulate;

pub use c2st::c2st;
pub use check::{Check, check};
pub use flow::{Estimator, Flow};
pub use maf::{Maf, Shape};
pub use npe::{History, Posterior, Precision, Samples, Settings, Standardise, train};
pub use nsf::{Nsf, Spline};
pub use prior::{Marginal, Param, Prior};

/// A standard normal draw from `rng` (Box-Muller; two uniforms per draw), as the samplers
/// here use.
pub fn standard_normal(rng: &mut nmm_core::rng::Xoshiro256PlusPlus) -> f64 {
    prior::standard_normal(rng)
}

use crate::error::{Result, bail};
use ndarray::{Array2, Ix2};
use std::path::Path;

/// Reads a matrix of pairs' rows (`n x d` theta or `n x k` features; a 1-D array is one
/// column), float32 or float64. Non-finite values are kept (training leaves out rows of `x`
/// that have them, and refuses them in theta). Errors name the file.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("x.npy");
/// ndarray_npy::write_npy(&p, &ndarray::arr1(&[1.0, 2.0, 3.0])).unwrap();
/// assert_eq!(nmm::infer::read_rows(&p)?.dim(), (3, 1));
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn read_rows(path: &Path) -> Result<Array2<f64>> {
    let a = crate::io::read_npy_f64(path)?;
    let shape = a.shape().to_vec();
    let m = match shape.len() {
        1 => a.into_shape_with_order((shape[0], 1))?,
        2 => a.into_dimensionality::<Ix2>()?,
        d => bail!(
            "{}: expected a 2-D array (one row per simulation), found {d}-D with shape {shape:?}",
            path.display()
        ),
    };
    if m.nrows() == 0 || m.ncols() == 0 {
        bail!("{}: array is empty (shape {shape:?})", path.display());
    }
    Ok(m)
}

/// Reads an observation: `(k,)` or `(1, k)`, float32 or float64, every value finite. Errors
/// name the file and the feature.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("xo.npy");
/// ndarray_npy::write_npy(&p, &ndarray::arr2(&[[1.0, 2.0]])).unwrap();
/// assert_eq!(nmm::infer::read_observation(&p)?, vec![1.0, 2.0]);
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn read_observation(path: &Path) -> Result<Vec<f64>> {
    let a = crate::io::read_npy_f64(path)?;
    let shape = a.shape().to_vec();
    let ok = match shape.len() {
        1 => true,
        2 => shape[0] == 1,
        _ => false,
    };
    if !ok || a.is_empty() {
        bail!(
            "{}: expected one observation, shape (k,) or (1, k), found shape {shape:?}",
            path.display()
        );
    }
    let v: Vec<f64> = a.iter().copied().collect();
    if let Some(j) = v.iter().position(|x| !x.is_finite()) {
        bail!("{}: feature {j} is not finite ({})", path.display(), v[j]);
    }
    Ok(v)
}
