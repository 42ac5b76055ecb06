//! Equilibria of a model in a box (Newton from a grid of starts), with eigenvalues and
//! stability; the default boxes per model (also the start search of continuation).

use crate::error::{Result, bail};
use nmm_core::Model;
use nmm_core::equilibria::{Equilibria, SearchBox, equilibria_of_model};

/// Most equilibria reported (more means the box or grid is degenerate).
///
/// ```
/// let found = nmm::fixed_points::search(&nmm_core::models::Mpr::<f64>::default(), 0.0, [1e-5, -20.0], [10.0, 10.0], 10)?;
/// assert!(found.len() <= nmm::fixed_points::CAP);
/// # Ok::<(), nmm::Error>(())
/// ```
pub const CAP: usize = 64;

/// Default search box per model: wide enough for the literature parameter ranges (also the
/// start search of `nmm bifurcation`).
///
/// ```
/// use nmm::fixed_points::DefaultBox;
/// use nmm_core::models::Rww;
/// // RWW's gating variables lie in [0, 1].
/// assert_eq!(<Rww<f64> as DefaultBox<2>>::BOX, ([0.0, 0.0], [1.0, 1.0]));
/// ```
pub trait DefaultBox<const N: usize> {
    /// Lower and upper corners.
    const BOX: ([f64; N], [f64; N]);
    /// Grid points per dimension.
    const GRID: usize;
}

impl DefaultBox<2> for nmm_core::models::Mpr<f64> {
    // r > 0 always (dr/dt = Delta/(pi tau) > 0 at r = 0); v* = -Delta/(2 pi tau r*).
    const BOX: ([f64; 2], [f64; 2]) = ([1e-5, -20.0], [10.0, 10.0]);
    const GRID: usize = 40;
}
impl DefaultBox<4> for nmm_core::models::ChenCampbell<f64> {
    const BOX: ([f64; 4], [f64; 4]) = ([0.0, -2.0, -0.5, 0.0], [2.0, 2.0, 0.5, 5.0]);
    const GRID: usize = 8;
}
impl DefaultBox<2> for nmm_core::models::Rww<f64> {
    const BOX: ([f64; 2], [f64; 2]) = ([0.0, 0.0], [1.0, 1.0]);
    const GRID: usize = 30;
}
impl DefaultBox<2> for nmm_core::models::RwwGriffiths<f64> {
    const BOX: ([f64; 2], [f64; 2]) = ([0.0, 0.0], [1.0, 1.0]);
    const GRID: usize = 30;
}
impl<M: DefaultBox<N> + nmm_core::models::corrected::Library<f64, N>, const N: usize> DefaultBox<N>
    for nmm_core::models::Corrected<f64, M, N>
{
    // The base's: a correction for sparseness keeps the variables' ranges.
    const BOX: ([f64; N], [f64; N]) = M::BOX;
    const GRID: usize = M::GRID;
}
impl<const H1: usize, const H2: usize> DefaultBox<2> for nmm_core::mlp::MlpMeanField<f64, H1, H2> {
    // As MPR: the MLP is trained on (r, v) of QIF networks.
    const BOX: ([f64; 2], [f64; 2]) = ([1e-4, -20.0], [10.0, 10.0]);
    const GRID: usize = 40;
}

/// Equilibria of `model` at drive `input` in the box `lo..hi` from `grid` Newton starts per
/// dimension (at most 2e7 starts in all).
///
/// ```
/// use nmm_core::models::Mpr;
/// use nmm::fixed_points::{DefaultBox, search};
/// let (lo, hi) = <Mpr<f64> as DefaultBox<2>>::BOX;
/// let found = search(&Mpr::<f64>::default(), 0.0, lo, hi, 40).unwrap();
/// assert_eq!(found.len(), 3); // MPR at eta = -5, J = 15: two stable states and a saddle
/// ```
pub fn search<M: Model<f64, N>, const N: usize>(
    model: &M,
    input: f64,
    lo: [f64; N],
    hi: [f64; N],
    grid: usize,
) -> Result<Equilibria<f64, N, CAP>> {
    if (grid as f64).powi(N as i32) > 2e7 {
        bail!(
            "--grid {grid} gives {grid}^{N} Newton starts; use at most {}",
            (2e7f64).powf(1.0 / N as f64) as usize
        );
    }
    let search = SearchBox {
        lo,
        hi,
        points_per_dim: grid,
    };
    // Residual tolerance: a few hundred ulps of the derivative scale.
    Ok(equilibria_of_model::<f64, M, N, CAP>(
        model, input, &search, 1e-11,
    ))
}
