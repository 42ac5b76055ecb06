//! Connectome preparation: the normalisations whole-brain studies apply to structural weights,
//! conduction delays from tract lengths, and a built-in synthetic connectome.
//!
//! Matrices are `n x n`, row-major, `w[i n + j]` the link from region `j` to region `i`: row =
//! target, column = source, the orientation of TVB's `weights.txt` (TVB's coupling sums
//! `weights[i, j] x_j(t - d_ij)` over `j`).
//!
//! ```
//! use nmm_core::connectome::{Normalise, normalise, synthetic};
//! const N: usize = 8;
//! let n = N;
//! // Fixed arrays, as a no_std caller would use (nothing here allocates).
//! let (mut w, mut len, mut centres) = ([0.0; N * N], [0.0; N * N], [[0.0; 3]; N]);
//! synthetic(n, &mut w, &mut len, &mut centres).unwrap();
//! normalise(n, &mut w, Normalise::Laplacian).unwrap();
//! for i in 0..n {
//!     let row: f64 = w[i * n..(i + 1) * n].iter().sum();
//!     assert!(row.abs() < 1e-12); // a Laplacian's rows sum to zero
//! }
//! ```

use crate::real::Real;
use core::fmt;
use core::str::FromStr;

/// One normalisation step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Normalise {
    /// Divide every weight by the largest (TVB's and the 2025 paper's `W / max W`).
    Max,
    /// `ln(1 + w)` element-wise (Griffiths et al. 2022 before their norm).
    Log1p,
    /// Divide each row by its sum, so every region's inputs sum to one (rows summing to zero
    /// stay zero).
    RowSum,
    /// Divide by the Frobenius norm `sqrt(sum w^2)` (Griffiths et al. 2022).
    Frobenius,
    /// Set the diagonal to zero.
    ZeroDiagonal,
    /// Replace `W` by `W - diag(row sums)` after zeroing its diagonal, so the coupling
    /// `sum_j W_ij x_j` becomes the diffusive `sum_j W_ij (x_j - x_i)` (the Laplacian coupling
    /// of Griffiths et al. 2022, with the sign that makes it `-L x`).
    Laplacian,
}

impl Normalise {
    /// Every step, in the order they are documented.
    pub const ALL: [Normalise; 6] = [
        Normalise::Max,
        Normalise::Log1p,
        Normalise::RowSum,
        Normalise::Frobenius,
        Normalise::ZeroDiagonal,
        Normalise::Laplacian,
    ];

    /// Name in configs and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Normalise::Max => "max",
            Normalise::Log1p => "log1p",
            Normalise::RowSum => "rowsum",
            Normalise::Frobenius => "frobenius",
            Normalise::ZeroDiagonal => "zero-diagonal",
            Normalise::Laplacian => "laplacian",
        }
    }

    /// The steps of a named recipe: `griffiths2022` is `log1p, frobenius, laplacian`.
    pub fn recipe(name: &str) -> Option<&'static [Normalise]> {
        match name {
            "griffiths2022" => {
                Some(&[Normalise::Log1p, Normalise::Frobenius, Normalise::Laplacian])
            }
            _ => None,
        }
    }
}

impl fmt::Display for Normalise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A normalisation name that is not one of [`Normalise::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownNormalise;

impl fmt::Display for UnknownNormalise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "unknown normalisation (expected max, log1p, rowsum, frobenius, zero-diagonal, \
             laplacian, or the recipe griffiths2022)",
        )
    }
}

impl core::error::Error for UnknownNormalise {}

impl FromStr for Normalise {
    type Err = UnknownNormalise;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Normalise::ALL
            .into_iter()
            .find(|n| n.name() == s)
            .ok_or(UnknownNormalise)
    }
}

/// A connectome that cannot be prepared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConnectomeError {
    /// A matrix does not have `n x n` entries.
    Shape {
        /// Entries required.
        expected: usize,
        /// Entries given.
        got: usize,
    },
    /// A value is NaN, infinite or negative where it must not be.
    BadValue {
        /// Which matrix.
        what: &'static str,
        /// Row.
        i: usize,
        /// Column.
        j: usize,
        /// The value.
        value: f64,
    },
    /// Normalising by a maximum or norm that is zero (an empty connectome).
    AllZero(Normalise),
    /// The conduction speed or time step is not positive and finite.
    BadSpeedOrStep,
    /// A delay does not fit 32 bits of steps.
    DelayTooLong,
    /// The synthetic connectome needs an even number of regions, at least 4.
    BadSyntheticSize(usize),
}

impl fmt::Display for ConnectomeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConnectomeError::Shape { expected, got } => {
                write!(f, "matrix has {got} entries, expected {expected} (n x n)")
            }
            ConnectomeError::BadValue { what, i, j, value } => {
                write!(
                    f,
                    "{what}[{i}][{j}] = {value} is not a finite, non-negative number"
                )
            }
            ConnectomeError::AllZero(step) => {
                write!(
                    f,
                    "cannot apply normalisation {step}: the weights are all zero"
                )
            }
            ConnectomeError::BadSpeedOrStep => {
                f.write_str("conduction speed and time step must be positive and finite")
            }
            ConnectomeError::DelayTooLong => f.write_str("a delay exceeds 2^32 steps"),
            ConnectomeError::BadSyntheticSize(n) => write!(
                f,
                "the synthetic connectome needs an even number of regions >= 4, not {n}"
            ),
        }
    }
}

impl core::error::Error for ConnectomeError {}

fn check_shape(n: usize, len: usize) -> Result<(), ConnectomeError> {
    let expected = n.saturating_mul(n);
    if expected != len {
        return Err(ConnectomeError::Shape { expected, got: len });
    }
    Ok(())
}

/// Checks that every entry is finite and non-negative (structural weights and tract lengths).
///
/// # Errors
/// [`ConnectomeError::Shape`] or [`ConnectomeError::BadValue`] naming the first bad entry.
pub fn check_non_negative<T: Real>(
    what: &'static str,
    n: usize,
    m: &[T],
) -> Result<(), ConnectomeError> {
    check_shape(n, m.len())?;
    for (k, &v) in m.iter().enumerate() {
        if !(v.is_finite() && v >= T::ZERO) {
            return Err(ConnectomeError::BadValue {
                what,
                i: k / n,
                j: k % n,
                value: v.to_f64(),
            });
        }
    }
    Ok(())
}

/// Applies one normalisation step to `w` in place.
///
/// # Errors
/// [`ConnectomeError::Shape`] if `w.len() != n n`; [`ConnectomeError::AllZero`] for `Max` or
/// `Frobenius` on all-zero weights.
pub fn normalise<T: Real>(n: usize, w: &mut [T], step: Normalise) -> Result<(), ConnectomeError> {
    check_shape(n, w.len())?;
    if n == 0 {
        return Ok(());
    }
    match step {
        Normalise::Max => {
            let m = w.iter().fold(T::ZERO, |m, &v| m.max(v.abs()));
            if m == T::ZERO {
                return Err(ConnectomeError::AllZero(step));
            }
            w.iter_mut().for_each(|v| *v /= m);
        }
        Normalise::Log1p => w.iter_mut().for_each(|v| *v = (T::ONE + *v).ln()),
        Normalise::RowSum => {
            for row in w.chunks_exact_mut(n) {
                let s = row.iter().fold(T::ZERO, |s, &v| s + v);
                if s != T::ZERO {
                    row.iter_mut().for_each(|v| *v /= s);
                }
            }
        }
        Normalise::Frobenius => {
            let f = w.iter().fold(T::ZERO, |s, &v| s + v * v).sqrt();
            if f == T::ZERO {
                return Err(ConnectomeError::AllZero(step));
            }
            w.iter_mut().for_each(|v| *v /= f);
        }
        Normalise::ZeroDiagonal => (0..n).for_each(|i| w[i * n + i] = T::ZERO),
        Normalise::Laplacian => {
            for (i, row) in w.chunks_exact_mut(n).enumerate() {
                row[i] = T::ZERO;
                let s = row.iter().fold(T::ZERO, |s, &v| s + v);
                row[i] = -s;
            }
        }
    }
    Ok(())
}

/// Delays in whole steps from tract lengths (mm), a conduction speed (mm/ms) and a step (ms):
/// `round(length / speed / dt)`, as TVB computes `idelays`.
///
/// # Errors
/// [`ConnectomeError::BadSpeedOrStep`], [`ConnectomeError::Shape`] if `lengths` and `out`
/// differ in length, [`ConnectomeError::BadValue`] for a negative or non-finite length,
/// [`ConnectomeError::DelayTooLong`].
pub fn delays_in_steps(
    n: usize,
    lengths_mm: &[f64],
    speed_mm_per_ms: f64,
    dt_ms: f64,
    out: &mut [u32],
) -> Result<(), ConnectomeError> {
    if !(speed_mm_per_ms.is_finite() && speed_mm_per_ms > 0.0 && dt_ms.is_finite() && dt_ms > 0.0) {
        return Err(ConnectomeError::BadSpeedOrStep);
    }
    check_non_negative("tract_lengths", n, lengths_mm)?;
    check_shape(n, out.len())?;
    for (d, &l) in out.iter_mut().zip(lengths_mm) {
        let s = libm::round(l / speed_mm_per_ms / dt_ms);
        if s > u32::MAX as f64 {
            return Err(ConnectomeError::DelayTooLong);
        }
        *d = s as u32;
    }
    Ok(())
}

/// Length scale of the synthetic connectome's distance decay, mm.
pub const SYNTHETIC_LAMBDA_MM: f64 = 25.0;
/// Weight of the synthetic connectome's homotopic (left-right mirror) links, relative to the
/// strongest intra-hemispheric link.
pub const SYNTHETIC_HOMOTOPIC: f64 = 0.5;
/// Intra-hemispheric weights below this fraction of the strongest are dropped (sparsity).
pub const SYNTHETIC_THRESHOLD: f64 = 0.02;

/// A deterministic synthetic connectome of `n` regions (even, at least 4): two hemispheres of
/// `n/2` regions on half-ellipsoids (semi-axes 65, 85, 60 mm along x = left-right,
/// y = posterior-anterior, z = inferior-superior), placed by a Fibonacci spiral; within a
/// hemisphere `w = exp(-d / 25 mm)` of the Euclidean distance `d`, dropped below 0.02; between
/// hemispheres only homotopic links (region `k` and its mirror image), weight 0.5. Regions
/// `0..n/2` are the right hemisphere (x > 0), `n/2..n` their mirror images. Tract lengths are
/// the Euclidean distances (mm), the diagonal is zero, the largest weight is 1.
///
/// Fills `weights` and `lengths_mm` (`n x n`) and `centres_mm` (`n`).
///
/// # Errors
/// [`ConnectomeError::BadSyntheticSize`], [`ConnectomeError::Shape`].
pub fn synthetic(
    n: usize,
    weights: &mut [f64],
    lengths_mm: &mut [f64],
    centres_mm: &mut [[f64; 3]],
) -> Result<(), ConnectomeError> {
    if n < 4 || !n.is_multiple_of(2) {
        return Err(ConnectomeError::BadSyntheticSize(n));
    }
    check_shape(n, weights.len())?;
    check_shape(n, lengths_mm.len())?;
    if centres_mm.len() != n {
        return Err(ConnectomeError::Shape {
            expected: n,
            got: centres_mm.len(),
        });
    }
    let half = n / 2;
    let golden = core::f64::consts::PI * (3.0 - libm::sqrt(5.0));
    for k in 0..half {
        // Fibonacci spiral on the unit hemisphere x > 0 (axis of the spiral along x).
        let u = (k as f64 + 0.5) / half as f64; // x in (0, 1)
        let rho = libm::sqrt(1.0 - u * u);
        let phi = golden * k as f64;
        let (ux, uy, uz) = (u, rho * libm::cos(phi), rho * libm::sin(phi));
        // Keep regions off the midline: x from 15 % to 100 % of the semi-axis.
        let x = 65.0 * (0.15 + 0.85 * ux);
        centres_mm[k] = [x, 85.0 * uy, 60.0 * uz];
        centres_mm[k + half] = [-x, 85.0 * uy, 60.0 * uz];
    }
    for i in 0..n {
        for j in 0..n {
            let (a, b) = (centres_mm[i], centres_mm[j]);
            let (dx, dy, dz) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
            let d = libm::sqrt(dx * dx + dy * dy + dz * dz);
            lengths_mm[i * n + j] = d;
            let same = (i < half) == (j < half);
            weights[i * n + j] = if i == j {
                0.0
            } else if same {
                let w = libm::exp(-d / SYNTHETIC_LAMBDA_MM);
                if w < SYNTHETIC_THRESHOLD { 0.0 } else { w }
            } else if i % half == j % half {
                SYNTHETIC_HOMOTOPIC
            } else {
                0.0
            };
        }
    }
    // Scale intra-hemispheric weights so the strongest is 1; homotopic links stay 0.5.
    let mut max = 0.0f64;
    for i in 0..n {
        for j in 0..n {
            if (i < half) == (j < half) {
                max = max.max(weights[i * n + j]);
            }
        }
    }
    if max > 0.0 {
        for i in 0..n {
            for j in 0..n {
                if (i < half) == (j < half) {
                    weights[i * n + j] /= max;
                }
            }
        }
    }
    Ok(())
}
