//! The conditional density estimators NPE trains: a masked autoregressive flow ([`Maf`], sbi's
//! default) or a neural spline flow ([`Nsf`]), behind one type.

use super::maf::{Float, Maf, Shape};
use super::nsf::{Nsf, Spline};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use serde::{Deserialize, Serialize};

/// Which flow to train.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Estimator {
    /// Masked autoregressive flow (sbi's `"maf"`, the default).
    #[default]
    Maf,
    /// Neural spline flow: rational-quadratic coupling splines with LU layers (sbi's `"nsf"`).
    Nsf,
}

impl Estimator {
    /// The name sbi and the posterior file use (`"maf"`, `"nsf"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Maf => "maf",
            Self::Nsf => "nsf",
        }
    }
}

/// A trained or training flow, in precision `T`.
#[derive(Clone, Debug)]
pub enum Flow<T: Float = f64> {
    /// See [`Maf`].
    Maf(Maf<T>),
    /// See [`Nsf`].
    Nsf(Nsf<T>),
}

impl<T: Float> Flow<T> {
    /// Which kind.
    pub fn estimator(&self) -> Estimator {
        match self {
            Self::Maf(_) => Estimator::Maf,
            Self::Nsf(_) => Estimator::Nsf,
        }
    }

    /// The sizes shared by both kinds.
    pub fn shape(&self) -> Shape {
        match self {
            Self::Maf(f) => f.shape(),
            Self::Nsf(f) => f.shape(),
        }
    }

    /// The spline's sizes (neural spline flows only).
    pub fn spline(&self) -> Option<Spline> {
        match self {
            Self::Maf(_) => None,
            Self::Nsf(f) => Some(f.spline()),
        }
    }

    /// The flat weights.
    pub fn params(&self) -> &[T] {
        match self {
            Self::Maf(f) => f.params(),
            Self::Nsf(f) => f.params(),
        }
    }

    pub(crate) fn params_mut(&mut self) -> &mut Vec<T> {
        match self {
            Self::Maf(f) => &mut f.params,
            Self::Nsf(f) => &mut f.params,
        }
    }

    /// The same flow computing in another precision.
    pub fn cast<U: Float>(&self) -> Flow<U> {
        match self {
            Self::Maf(f) => Flow::Maf(f.cast()),
            Self::Nsf(f) => Flow::Nsf(f.cast()),
        }
    }

    pub(crate) fn set_params(&mut self, w: &[f64]) {
        match self {
            Self::Maf(f) => f.set_params(w),
            Self::Nsf(f) => f.set_params(w),
        }
    }

    /// `log q(x | c)` for each row of `x` (`n x D`), with `ctx` `n x C` or `1 x C`.
    pub fn log_prob(&self, x: ArrayView2<T>, ctx: ArrayView2<T>) -> Array1<f64> {
        match self {
            Self::Maf(f) => f.log_prob(x, ctx),
            Self::Nsf(f) => f.log_prob(x, ctx),
        }
    }

    /// Adds the gradient of `sum_rows -log q(x | c)` to `grad` and returns that sum.
    pub fn nll_grad(&self, x: ArrayView2<T>, ctx: ArrayView2<T>, grad: &mut [T]) -> f64 {
        match self {
            Self::Maf(f) => f.nll_grad(x, ctx, grad),
            Self::Nsf(f) => f.nll_grad(x, ctx, grad),
        }
    }

    /// Maps base draws `y` (`n x D`) to samples of `q(. | c)` for one context `ctx` (`C`).
    pub fn inverse(&self, y: Array2<T>, ctx: ArrayView1<T>) -> Array2<T> {
        match self {
            Self::Maf(f) => f.inverse(y, ctx),
            Self::Nsf(f) => f.inverse(y, ctx),
        }
    }
}
