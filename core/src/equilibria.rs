//! Equilibria of small ODE systems: Jacobians, Newton's method, eigenvalues, stability, and a
//! grid search for every fixed point in a box.
//!
//! Everything works on fixed-size states `[T; N]` and vector fields `FnMut(&[T; N]) -> [T; N]`
//! (close over a model's parameters and input, see [`equilibria_of_model`]); nothing allocates.
//!
//! - [`jacobian`]: central differences, `J[i][j] = d f_i / d x_j`.
//! - [`solve_linear`]: Gaussian elimination with partial pivoting.
//! - [`newton`]: damped Newton with a backtracking line search.
//! - [`eigenvalues`]: closed form for `N <= 2`, nalgebra's real Schur form (after balancing) for
//!   `3 <= N <= MAX_EIG_DIM`; [`classify`] and [`stability`] turn them into a [`Kind`] and a
//!   [`Stability`].
//! - [`find_equilibria`]: Newton from every point of a regular grid in a [`SearchBox`], roots
//!   kept inside the box, deduplicated and sorted.
//!
//! Eigenvalues and classification are computed in `f64` (through [`Real::to_f64`]): they are
//! analysis output, not part of any model's arithmetic.
//!
//! ```
//! use nmm_core::equilibria::{find_equilibria, Kind, SearchBox};
//! // dx/dt = x - x^3, dy/dt = -y: saddle at 0, stable nodes at x = +-1.
//! let mut f = |s: &[f64; 2]| [s[0] - s[0] * s[0] * s[0], -s[1]];
//! let search = SearchBox { lo: [-2.0, -1.0], hi: [2.0, 1.0], points_per_dim: 9 };
//! let found = find_equilibria::<f64, 2, 4, _>(&mut f, &search, 1e-12);
//! assert!(!found.truncated);
//! let kinds = found.points.iter().map(|e| e.kind);
//! assert!(kinds.eq([Kind::StableNode, Kind::Saddle, Kind::StableNode]));
//! assert!((found.points[2].x[0] - 1.0).abs() < 1e-12);
//! ```

use crate::models::Model;
use crate::real::{Real, all_finite, axpy};
use core::cmp::Ordering;
use core::fmt;

/// Largest state dimension for which [`eigenvalues`] computes a spectrum (nalgebra's real Schur
/// form is instantiated for each size up to this one); larger systems get `None`.
pub const MAX_EIG_DIM: usize = 8;

/// Relative tolerance (a fraction of each box side) used by [`find_equilibria`] both to keep
/// roots that lie just outside the box and (with a bound from the Newton tolerance) to merge
/// roots found from different starts.
pub const BOX_REL_TOL: f64 = 1e-6;

/// Newton iterations allowed per start in [`find_equilibria`].
pub const GRID_MAX_ITER: usize = 60;

/// Largest absolute component (`||x||_inf`).
#[inline]
fn norm_inf<T: Real, const N: usize>(x: &[T; N]) -> T {
    x.iter().fold(T::ZERO, |m, v| m.max(v.abs()))
}

/// Sum of squares (`||x||_2^2`).
#[inline]
fn norm2_sq<T: Real, const N: usize>(x: &[T; N]) -> T {
    x.iter().fold(T::ZERO, |s, &v| s + v * v)
}

/// Jacobian with central-difference steps `h_i = c max(1, |x_i|)`.
fn jacobian_with_step<T: Real, const N: usize, F>(f: &mut F, x: &[T; N], c: T) -> [[T; N]; N]
where
    F: FnMut(&[T; N]) -> [T; N],
{
    let mut jac = [[T::ZERO; N]; N];
    let mut xp = *x;
    for j in 0..N {
        let h = c * T::ONE.max(x[j].abs());
        let (plus, minus) = (x[j] + h, x[j] - h);
        // The step actually taken after rounding, so that the quotient is consistent.
        let width = plus - minus;
        xp[j] = plus;
        let fp = f(&xp);
        xp[j] = minus;
        let fm = f(&xp);
        xp[j] = x[j];
        for (row, (a, b)) in jac.iter_mut().zip(fp.iter().zip(fm.iter())) {
            row[j] = (*a - *b) / width;
        }
    }
    jac
}

/// Jacobian `J[i][j] = d f_i / d x_j` of `f` at `x` by central differences.
///
/// Column `j` uses the step `h_j = cbrt(eps) max(1, |x_j|)` (`eps` the machine epsilon of `T`,
/// so `h_j` is about `6e-6` for `f64` and `5e-3` for `f32` at unit scale), and divides by the
/// rounded distance `(x_j + h_j) - (x_j - h_j)` actually taken. The truncation error is
/// `h_j^2 |d^3 f_i / d x_j^3| / 6 = O(h^2)` and the rounding error about
/// `eps |f_i| / h_j`; the choice `h ~ eps^(1/3)` balances the two, for a total error of order
/// `eps^(2/3)` relative to the scale of `f` (about `4e-11` in `f64`, `2e-5` in `f32`).
/// Costs `2 N` evaluations of `f`.
///
/// ```
/// use nmm_core::equilibria::jacobian;
/// let mut f = |x: &[f64; 2]| [x[0] * x[1], x[0].sin()];
/// let j = jacobian(&mut f, &[2.0, 3.0]);
/// assert!((j[0][0] - 3.0).abs() < 1e-9 && (j[0][1] - 2.0).abs() < 1e-9);
/// assert!((j[1][0] - 2.0_f64.cos()).abs() < 1e-9 && j[1][1].abs() < 1e-12);
/// ```
pub fn jacobian<T: Real, const N: usize, F>(f: &mut F, x: &[T; N]) -> [[T; N]; N]
where
    F: FnMut(&[T; N]) -> [T; N],
{
    let c = T::from_f64(libm::cbrt(T::EPSILON.to_f64()));
    jacobian_with_step(f, x, c)
}

/// Solves `a x = b` by Gaussian elimination with partial (row) pivoting.
///
/// Returns `None` when an entry of `a` or `b` is not finite, when `a` is singular to working
/// precision (a pivot no larger than `N eps max|a_ij|`, `eps` the machine epsilon of `T`), or
/// when the solution overflows.
///
/// ```
/// use nmm_core::equilibria::solve_linear;
/// let x = solve_linear([[0.0, 2.0], [1.0, 1.0]], [4.0, 3.0]).unwrap();
/// assert_eq!(x, [1.0, 2.0]);
/// assert_eq!(solve_linear([[1.0, 2.0], [2.0, 4.0]], [1.0, 1.0]), None);
/// ```
pub fn solve_linear<T: Real, const N: usize>(mut a: [[T; N]; N], mut b: [T; N]) -> Option<[T; N]> {
    let mut sys = Arrays {
        a: &mut a,
        b: &mut b,
    };
    gauss_in_place(&mut sys, N, T::EPSILON).then_some(b)
}

/// A linear system `a x = b` stored so that Gaussian elimination can work on it in place:
/// [`solve_linear`]'s arrays, and continuation's bordered systems of size up to `N + 2`.
pub(crate) trait LinearSystem<T> {
    /// `a[i][j]`.
    fn a(&self, i: usize, j: usize) -> T;
    /// Sets `a[i][j]`.
    fn set_a(&mut self, i: usize, j: usize, v: T);
    /// `b[i]`.
    fn b(&self, i: usize) -> T;
    /// Sets `b[i]`.
    fn set_b(&mut self, i: usize, v: T);
    /// Swaps rows `i` and `j` of `a` and entries `i` and `j` of `b`.
    fn swap(&mut self, i: usize, j: usize);
}

/// `a` and `b` as fixed-size arrays.
struct Arrays<'a, T, const N: usize> {
    a: &'a mut [[T; N]; N],
    b: &'a mut [T; N],
}

impl<T: Real, const N: usize> LinearSystem<T> for Arrays<'_, T, N> {
    #[inline]
    fn a(&self, i: usize, j: usize) -> T {
        self.a[i][j]
    }
    #[inline]
    fn set_a(&mut self, i: usize, j: usize, v: T) {
        self.a[i][j] = v;
    }
    #[inline]
    fn b(&self, i: usize) -> T {
        self.b[i]
    }
    #[inline]
    fn set_b(&mut self, i: usize, v: T) {
        self.b[i] = v;
    }
    #[inline]
    fn swap(&mut self, i: usize, j: usize) {
        self.a.swap(i, j);
        self.b.swap(i, j);
    }
}

/// Solves the leading `n x n` block of `sys` by Gaussian elimination with partial pivoting, in
/// place: on success `b` holds the solution. `false` when an entry of `a` or `b` is not finite,
/// when a pivot is no larger than `n eps max|a_ij|` (singular to working precision), or when
/// the solution is not finite. The one elimination of core (equilibria and continuation).
pub(crate) fn gauss_in_place<T: Real, S: LinearSystem<T>>(sys: &mut S, n: usize, eps: T) -> bool {
    let mut amax = T::ZERO;
    for i in 0..n {
        let mut row = T::ZERO;
        for j in 0..n {
            let v = sys.a(i, j);
            if !v.is_finite() {
                return false;
            }
            row = row.max(v.abs());
        }
        amax = amax.max(row);
    }
    if !(0..n).all(|i| sys.b(i).is_finite()) {
        return false;
    }
    let tiny = amax * eps * T::from_usize(n);
    for k in 0..n {
        let mut p = k;
        for i in k + 1..n {
            if sys.a(i, k).abs() > sys.a(p, k).abs() {
                p = i;
            }
        }
        // `<=` also rejects the all-zero matrix, where `tiny` is 0.
        let pivot = sys.a(p, k);
        if pivot.abs() <= tiny || !pivot.is_finite() {
            return false;
        }
        sys.swap(k, p);
        let pb = sys.b(k);
        for i in k + 1..n {
            let m = sys.a(i, k) / pivot;
            sys.set_a(i, k, T::ZERO);
            for j in k + 1..n {
                sys.set_a(i, j, sys.a(i, j) - m * sys.a(k, j));
            }
            sys.set_b(i, sys.b(i) - m * pb);
        }
    }
    // Back substitution, the solution overwriting `b` from the last entry up.
    for i in (0..n).rev() {
        let mut x = sys.b(i);
        for j in i + 1..n {
            x -= sys.a(i, j) * sys.b(j);
        }
        sys.set_b(i, x / sys.a(i, i));
    }
    (0..n).all(|i| sys.b(i).is_finite())
}

/// Why [`newton`] gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewtonError {
    /// `f` is not finite at the starting point.
    NotFinite,
    /// The Jacobian is singular to working precision at an iterate (see [`solve_linear`]).
    Singular,
    /// No step along the Newton direction reduces `||f||_2` (a local minimum of `||f||` that is
    /// not a root, or a tolerance below the rounding level of `f`).
    Stalled,
    /// The iteration limit was reached before convergence.
    MaxIterations,
}

impl fmt::Display for NewtonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NewtonError::NotFinite => "Newton: f is not finite at the starting point",
            NewtonError::Singular => "Newton: singular Jacobian",
            NewtonError::Stalled => "Newton: line search found no decrease of |f|",
            NewtonError::MaxIterations => "Newton: iteration limit reached",
        })
    }
}

impl core::error::Error for NewtonError {}

/// Smallest damping factor tried by the line search of [`newton`] (2^-30).
const MIN_DAMPING: f64 = 9.313225746154785e-10;

/// Solves `f(x) = 0` by damped Newton iteration from `x0`.
///
/// Each iteration computes the Newton step `dx = -J(x)^-1 f(x)` (Jacobian by [`jacobian`]) and
/// takes `x + lambda dx` with the largest `lambda` in `1, 1/2, 1/4, ...` that satisfies the
/// Armijo condition `||f(x + lambda dx)||_2^2 <= (1 - 2e-4 lambda) ||f(x)||_2^2` (points where
/// `f` is not finite count as no decrease). The iteration stops successfully at `x` when
///
/// - `||f(x)||_inf <= tol`, and
/// - the Newton step at `x`, an estimate of the distance to the root, is small:
///   `||dx||_inf <= sqrt(tol) max(1, ||x||_inf)`.
///
/// The second test rejects points where `f` is merely flat; where the Jacobian is well
/// conditioned it holds as soon as the first does (the error is then about `||J^-1|| tol`),
/// and near a fold (a double root) it still accepts the linearly converging iterates.
///
/// `tol` must lie above the rounding level of `f` near the root (about `eps` times the size
/// of the largest terms summed in `f`, plus the `eps^(2/3)` error of the difference Jacobian
/// in the step), e.g. `1e-12` for `f64` models of unit scale and `1e-4` for `f32`; below it
/// the iteration ends with [`NewtonError::Stalled`] or [`NewtonError::MaxIterations`].
///
/// # Errors
/// See [`NewtonError`]; at most `max_iter` Newton steps are taken.
///
/// ```
/// use nmm_core::equilibria::newton;
/// // Intersection of the unit circle with the line y = x.
/// let mut f = |x: &[f64; 2]| [x[0] * x[0] + x[1] * x[1] - 1.0, x[0] - x[1]];
/// let x = newton(&mut f, [2.0, 0.5], 1e-12, 50).unwrap();
/// assert!((x[0] - 0.5_f64.sqrt()).abs() < 1e-12 && (x[1] - x[0]).abs() < 1e-12);
/// ```
pub fn newton<T: Real, const N: usize, F>(
    f: &mut F,
    x0: [T; N],
    tol: T,
    max_iter: usize,
) -> Result<[T; N], NewtonError>
where
    F: FnMut(&[T; N]) -> [T; N],
{
    let c = T::from_f64(libm::cbrt(T::EPSILON.to_f64()));
    let sqrt_tol = tol.sqrt();
    let armijo = T::from_f64(2e-4);
    let min_damping = T::from_f64(MIN_DAMPING);
    let mut x = x0;
    let mut fx = f(&x);
    if !all_finite(&fx) {
        return Err(NewtonError::NotFinite);
    }
    for iter in 0..=max_iter {
        let jac = jacobian_with_step(f, &x, c);
        let neg_f: [T; N] = core::array::from_fn(|i| -fx[i]);
        let dx = solve_linear(jac, neg_f).ok_or(NewtonError::Singular)?;
        if norm_inf(&fx) <= tol && norm_inf(&dx) <= sqrt_tol * T::ONE.max(norm_inf(&x)) {
            return Ok(x);
        }
        if iter == max_iter {
            break;
        }
        let phi = norm2_sq(&fx);
        let mut lambda = T::ONE;
        loop {
            let xn = axpy(&x, lambda, &dx);
            let fxn = f(&xn);
            if all_finite(&fxn) && norm2_sq(&fxn) <= (T::ONE - armijo * lambda) * phi {
                x = xn;
                fx = fxn;
                break;
            }
            lambda *= T::HALF;
            if lambda < min_damping {
                return Err(NewtonError::Stalled);
            }
        }
    }
    Err(NewtonError::MaxIterations)
}

/// Eigenvalues `(re, im)` of a square matrix, sorted by real part, largest first (then by
/// imaginary part, largest first, so a complex pair appears as `(a, b), (a, -b)` with `b > 0`).
///
/// The matrix is converted to `f64`. `N = 1, 2` use the closed form (the 2x2 real case with
/// the cancellation-free `lambda_2 = det / lambda_1`); `3 <= N <=` [`MAX_EIG_DIM`] balance the
/// matrix (Parlett-Reinsch) and take the real Schur form with nalgebra's double-shift QR,
/// limited to `64 N` sweeps; if that does not converge the QR is retried once on an orthogonally
/// similar matrix (a Householder reflection) to break shift stagnation.
///
/// Returns `None` for a non-finite entry, for `N > MAX_EIG_DIM`, or if the QR iteration fails.
///
/// ```
/// use nmm_core::equilibria::eigenvalues;
/// // Rotation-dilation: eigenvalues -1 +- 2i.
/// let e = eigenvalues(&[[-1.0, -2.0], [2.0, -1.0]]).unwrap();
/// assert_eq!(e, [(-1.0, 2.0), (-1.0, -2.0)]);
/// let t = eigenvalues(&[[1.0, 5.0, 7.0], [0.0, 3.0, 2.0], [0.0, 0.0, -2.0]]).unwrap();
/// for (got, want) in t.iter().zip([3.0, 1.0, -2.0]) {
///     assert!((got.0 - want).abs() < 1e-12 && got.1 == 0.0);
/// }
/// ```
pub fn eigenvalues<T: Real, const N: usize>(j: &[[T; N]; N]) -> Option<[(f64, f64); N]> {
    let a: [[f64; N]; N] = core::array::from_fn(|r| core::array::from_fn(|c| j[r][c].to_f64()));
    let flat = a.as_flattened();
    if !flat.iter().all(|v| v.is_finite()) {
        return None;
    }
    let mut out = [(0.0, 0.0); N];
    if !eigenvalues_f64(flat, &mut out) {
        return None;
    }
    out.sort_unstable_by(|p, q| cmp_desc(p.0, q.0).then(cmp_desc(p.1, q.1)));
    Some(out)
}

/// Descending order for finite floats.
fn cmp_desc(a: f64, b: f64) -> Ordering {
    b.partial_cmp(&a).unwrap_or(Ordering::Equal)
}

/// Eigenvalues of the `n x n` row-major matrix `a` (`n = out.len()`), unsorted; false on failure.
fn eigenvalues_f64(a: &[f64], out: &mut [(f64, f64)]) -> bool {
    match out.len() {
        0 => true,
        1 => {
            out[0] = (a[0], 0.0);
            true
        }
        2 => {
            let (l1, l2) = eig2(a[0], a[1], a[2], a[3]);
            out[0] = l1;
            out[1] = l2;
            true
        }
        n if n > MAX_EIG_DIM => false,
        n => {
            if schur_eigenvalues(a, out) {
                return true;
            }
            // Retry on H A H, H = I - 2 v v^T / (v^T v), v = (1, 2, ..., n): same spectrum,
            // different Hessenberg form.
            let mut b = [0.0; MAX_EIG_DIM * MAX_EIG_DIM];
            let b = &mut b[..n * n];
            let v: [f64; MAX_EIG_DIM] = core::array::from_fn(|i| (i + 1) as f64);
            let vv: f64 = v[..n].iter().map(|x| x * x).sum();
            let h = |r: usize, c: usize| f64::from(u8::from(r == c)) - 2.0 * v[r] * v[c] / vv;
            for r in 0..n {
                for c in 0..n {
                    let mut s = 0.0;
                    for k in 0..n {
                        for l in 0..n {
                            s += h(r, k) * a[k * n + l] * h(l, c);
                        }
                    }
                    b[r * n + c] = s;
                }
            }
            schur_eigenvalues(b, out)
        }
    }
}

/// Eigenvalues of `[[a, b], [c, d]]`.
fn eig2(a: f64, b: f64, c: f64, d: f64) -> ((f64, f64), (f64, f64)) {
    let half_tr = 0.5 * (a + d);
    let half_diff = 0.5 * (a - d);
    let disc = half_diff * half_diff + b * c;
    if disc >= 0.0 {
        // Larger-magnitude root first, the other from the determinant (no cancellation).
        let s = libm::sqrt(disc);
        let l1 = if half_tr >= 0.0 {
            half_tr + s
        } else {
            half_tr - s
        };
        let det = a * d - b * c;
        let l2 = if l1 != 0.0 { det / l1 } else { 0.0 };
        ((l1, 0.0), (l2, 0.0))
    } else {
        let w = libm::sqrt(-disc);
        ((half_tr, w), (half_tr, -w))
    }
}

/// nalgebra real Schur form for `3 <= n <= MAX_EIG_DIM`, instantiated once per size.
fn schur_eigenvalues(a: &[f64], out: &mut [(f64, f64)]) -> bool {
    macro_rules! sizes {
        ($($k:literal)*) => {
            match out.len() {
                $($k => {
                    let mut m = nalgebra::SMatrix::<f64, $k, $k>::from_row_slice(a);
                    nalgebra::linalg::balancing::balance_parlett_reinsch(&mut m);
                    match nalgebra::Schur::try_new(m, f64::EPSILON, 64 * $k) {
                        Some(s) => {
                            for (o, z) in out.iter_mut().zip(s.complex_eigenvalues().iter()) {
                                *o = (z.re, z.im);
                            }
                            out.iter().all(|z| z.0.is_finite() && z.1.is_finite())
                        }
                        None => false,
                    }
                })*
                _ => false,
            }
        };
    }
    sizes!(3 4 5 6 7 8)
}

/// Local type of an equilibrium, from the eigenvalues of its Jacobian.
///
/// With `tol` the tolerance given to [`classify`]: an eigenvalue with `|re| <= tol` makes the
/// point [`Kind::NonHyperbolic`]; eigenvalues of both signs make it a [`Kind::Saddle`];
/// otherwise node or focus is decided by the *leading* eigenvalue (largest real part: the
/// slowest direction for a stable point, the fastest growing one for an unstable point),
/// a focus when it has `|im| > tol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// All real parts negative, leading eigenvalue real.
    StableNode,
    /// All real parts negative, leading eigenvalues a complex pair (damped oscillations).
    StableFocus,
    /// Real parts of both signs.
    Saddle,
    /// All real parts positive, leading eigenvalue real.
    UnstableNode,
    /// All real parts positive, leading eigenvalues a complex pair (growing oscillations).
    UnstableFocus,
    /// Some eigenvalue on the imaginary axis (within the tolerance): a bifurcation point.
    NonHyperbolic,
    /// The eigenvalues could not be computed (non-finite Jacobian, QR failure, `N` too large).
    Unknown,
}

impl Kind {
    /// Lower-case name with spaces, e.g. `"stable focus"`.
    ///
    /// ```
    /// assert_eq!(nmm_core::equilibria::Kind::Saddle.name(), "saddle");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Kind::StableNode => "stable node",
            Kind::StableFocus => "stable focus",
            Kind::Saddle => "saddle",
            Kind::UnstableNode => "unstable node",
            Kind::UnstableFocus => "unstable focus",
            Kind::NonHyperbolic => "non-hyperbolic",
            Kind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Linear stability of an equilibrium.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stability {
    /// Every real part `< -tol`: locally asymptotically stable.
    Stable,
    /// Some real part `> tol`: unstable.
    Unstable,
    /// No real part `> tol` but some `|re| <= tol`: linearisation inconclusive.
    Marginal,
    /// The eigenvalues could not be computed.
    Unknown,
}

/// Classifies an equilibrium from its eigenvalues `(re, im)` (any order); see [`Kind`].
///
/// `tol >= 0` is the threshold below which a real part counts as zero and an imaginary part
/// as absent. Any NaN gives [`Kind::Unknown`].
///
/// ```
/// use nmm_core::equilibria::{classify, Kind};
/// assert_eq!(classify(&[(-0.1, 2.0), (-0.1, -2.0), (-3.0, 0.0)], 1e-9), Kind::StableFocus);
/// assert_eq!(classify(&[(0.5, 0.0), (-1.0, 0.0)], 1e-9), Kind::Saddle);
/// assert_eq!(classify(&[(0.0, 1.0), (0.0, -1.0)], 1e-9), Kind::NonHyperbolic);
/// ```
pub fn classify(eigs: &[(f64, f64)], tol: f64) -> Kind {
    if eigs.iter().any(|e| e.0.is_nan() || e.1.is_nan()) {
        return Kind::Unknown;
    }
    if eigs.iter().any(|e| e.0.abs() <= tol) {
        return Kind::NonHyperbolic;
    }
    let pos = eigs.iter().any(|e| e.0 > 0.0);
    let neg = eigs.iter().any(|e| e.0 < 0.0);
    if pos && neg {
        return Kind::Saddle;
    }
    // Leading eigenvalue: largest real part; among equal real parts any complex one counts.
    let lead_re = eigs.iter().fold(f64::NEG_INFINITY, |m, e| m.max(e.0));
    let complex = eigs.iter().any(|e| e.0 == lead_re && e.1.abs() > tol);
    match (pos, complex) {
        (false, false) => Kind::StableNode,
        (false, true) => Kind::StableFocus,
        (true, false) => Kind::UnstableNode,
        (true, true) => Kind::UnstableFocus,
    }
}

/// Linear stability from eigenvalues `(re, im)`; `tol` as in [`classify`].
///
/// ```
/// use nmm_core::equilibria::{stability, Stability};
/// assert_eq!(stability(&[(-1.0, 0.0), (-2.0, 0.0)], 1e-9), Stability::Stable);
/// assert_eq!(stability(&[(1e-12, 0.0), (-2.0, 0.0)], 1e-9), Stability::Marginal);
/// assert_eq!(stability(&[(0.1, 1.0), (0.1, -1.0)], 1e-9), Stability::Unstable);
/// ```
pub fn stability(eigs: &[(f64, f64)], tol: f64) -> Stability {
    if eigs.iter().any(|e| e.0.is_nan() || e.1.is_nan()) {
        Stability::Unknown
    } else if eigs.iter().any(|e| e.0 > tol) {
        Stability::Unstable
    } else if eigs.iter().all(|e| e.0 < -tol) {
        Stability::Stable
    } else {
        Stability::Marginal
    }
}

/// An equilibrium with its linearisation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Equilibrium<T, const N: usize> {
    /// The state where `f(x) = 0`.
    pub x: [T; N],
    /// `||f(x)||_inf` at the returned point.
    pub residual: f64,
    /// Eigenvalues `(re, im)` of the Jacobian, largest real part first (NaN if they could not
    /// be computed, see [`eigenvalues`]).
    pub eigenvalues: [(f64, f64); N],
    /// Local type (node, focus, saddle, ...).
    pub kind: Kind,
    /// Linear stability.
    pub stability: Stability,
}

impl<T: Real, const N: usize> Equilibrium<T, N> {
    /// Linearises `f` at `x` (assumed to be an equilibrium): residual, Jacobian by
    /// [`jacobian`], its eigenvalues, and the classification with the tolerance
    /// `sqrt(eps) ||J||_inf` (`eps` the machine epsilon of `T`; `||J||_inf` the largest absolute
    /// row sum), well above the `O(eps^(2/3))` relative error of the difference Jacobian.
    ///
    /// ```
    /// use nmm_core::equilibria::{Equilibrium, Kind, Stability};
    /// // Damped oscillator x'' + 0.2 x' + x = 0 at the origin.
    /// let e = Equilibrium::at(&mut |s: &[f64; 2]| [s[1], -s[0] - 0.2 * s[1]], [0.0, 0.0]);
    /// assert_eq!((e.kind, e.stability), (Kind::StableFocus, Stability::Stable));
    /// assert!((e.eigenvalues[0].0 + 0.1).abs() < 1e-9);
    /// ```
    pub fn at<F>(f: &mut F, x: [T; N]) -> Self
    where
        F: FnMut(&[T; N]) -> [T; N],
    {
        let residual = norm_inf(&f(&x)).to_f64();
        let jac = jacobian(f, &x);
        let jnorm = jac.iter().fold(0.0_f64, |m, row| {
            m.max(row.iter().map(|v| v.to_f64().abs()).sum::<f64>())
        });
        let tol = libm::sqrt(T::EPSILON.to_f64()) * jnorm;
        match eigenvalues(&jac) {
            Some(eigs) => Self {
                x,
                residual,
                eigenvalues: eigs,
                kind: classify(&eigs, tol),
                stability: stability(&eigs, tol),
            },
            None => Self {
                x,
                residual,
                eigenvalues: [(f64::NAN, f64::NAN); N],
                kind: Kind::Unknown,
                stability: Stability::Unknown,
            },
        }
    }
}

/// An axis-aligned box and the resolution of the grid of Newton starts in it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchBox<T, const N: usize> {
    /// Lower corner.
    pub lo: [T; N],
    /// Upper corner (each side should be longer than zero).
    pub hi: [T; N],
    /// Grid points per dimension: starts are the `points_per_dim^N` cell centres
    /// `lo_i + (hi_i - lo_i) (k + 1/2) / points_per_dim`, `k = 0 .. points_per_dim - 1`.
    pub points_per_dim: usize,
}

/// The equilibria found by [`find_equilibria`].
#[derive(Clone, Debug)]
pub struct Equilibria<T, const N: usize, const CAP: usize> {
    /// Distinct equilibria in the box, sorted by `x[0]` (then `x[1]`, ...).
    pub points: heapless::Vec<Equilibrium<T, N>, CAP>,
    /// True when more than `CAP` distinct equilibria were found; the first `CAP` found are kept.
    pub truncated: bool,
    /// Number of Newton starts (`points_per_dim^N`).
    pub starts: usize,
    /// Starts whose Newton iteration converged (inside the box or not).
    pub converged: usize,
}

impl<T, const N: usize, const CAP: usize> Equilibria<T, N, CAP> {
    /// Number of distinct equilibria kept.
    ///
    /// ```
    /// use nmm_core::equilibria::{find_equilibria, SearchBox};
    /// let b = SearchBox { lo: [-1.0], hi: [1.0], points_per_dim: 4 };
    /// let found = find_equilibria::<f64, 1, 2, _>(&mut |x: &[f64; 1]| [x[0]], &b, 1e-12);
    /// assert_eq!(found.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when no equilibrium was found.
    ///
    /// ```
    /// use nmm_core::equilibria::{find_equilibria, SearchBox};
    /// let b = SearchBox { lo: [-1.0], hi: [1.0], points_per_dim: 4 };
    /// let f = &mut |x: &[f64; 1]| [x[0] * x[0] + 1.0];
    /// assert!(find_equilibria::<f64, 1, 2, _>(f, &b, 1e-12).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// Lexicographic order on states (for sorting; NaN-free input).
fn cmp_states<T: Real, const N: usize>(a: &[T; N], b: &[T; N]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match x.partial_cmp(y) {
            Some(Ordering::Equal) | None => {}
            Some(o) => return o,
        }
    }
    Ordering::Equal
}

/// All equilibria of `dx/dt = f(x)` that Newton's method finds from a regular grid of starts in
/// a box.
///
/// Runs [`newton`] (tolerance `tol`, at most [`GRID_MAX_ITER`] iterations) from each of the
/// `points_per_dim^N` grid points of `search` (cell centres, visited by an index counter, no
/// allocation). A converged root is kept if it lies in the box enlarged by [`BOX_REL_TOL`] of
/// each side, and is merged with an earlier root if every coordinate `i` differs by at most
/// `max(BOX_REL_TOL (hi_i - lo_i), 2 sqrt(tol) max(1, |x_i|))` (the second term is twice the
/// error estimate that [`newton`] accepts; the root with the smaller residual is kept). Each kept root is
/// linearised by [`Equilibrium::at`]. The result is sorted by the first coordinate.
///
/// `tol` is the residual tolerance of [`newton`] (see there for choosing it). Up to `CAP`
/// distinct equilibria are returned; `truncated` tells when more were found. A grid
/// search is not a proof: roots whose basin of attraction for damped Newton misses every grid
/// point are not found, so choose `points_per_dim` to resolve the structure of `f`.
///
/// ```
/// use nmm_core::equilibria::{find_equilibria, SearchBox};
/// // Three roots of cos(x) in [0, 10].
/// let b = SearchBox { lo: [0.0], hi: [10.0], points_per_dim: 40 };
/// let r = find_equilibria::<f64, 1, 8, _>(&mut |x: &[f64; 1]| [x[0].cos()], &b, 1e-13);
/// assert_eq!(r.len(), 3);
/// let pi = core::f64::consts::PI;
/// assert!((r.points[1].x[0] - 1.5 * pi).abs() < 1e-12);
/// ```
pub fn find_equilibria<T: Real, const N: usize, const CAP: usize, F>(
    f: &mut F,
    search: &SearchBox<T, N>,
    tol: T,
) -> Equilibria<T, N, CAP>
where
    F: FnMut(&[T; N]) -> [T; N],
{
    let mut out = Equilibria {
        points: heapless::Vec::new(),
        truncated: false,
        starts: 0,
        converged: 0,
    };
    let n = search.points_per_dim;
    if n == 0 {
        return out;
    }
    let lo: [T; N] = core::array::from_fn(|i| search.lo[i].min(search.hi[i]));
    let width: [T; N] = core::array::from_fn(|i| (search.hi[i] - search.lo[i]).abs());
    let rel = T::from_f64(BOX_REL_TOL);
    // Newton's stopping test bounds the estimated error of a root by sqrt(tol) max(1, |x|);
    // two roots closer than twice that cannot be told apart.
    let merge = T::TWO * tol.sqrt();
    let inv_n = T::ONE / T::from_usize(n);
    let mut idx = [0_usize; N];
    loop {
        let x0: [T; N] =
            core::array::from_fn(|i| lo[i] + width[i] * (T::from_usize(idx[i]) + T::HALF) * inv_n);
        out.starts += 1;
        if let Ok(x) = newton(f, x0, tol, GRID_MAX_ITER) {
            out.converged += 1;
            let inside = (0..N).all(|i| {
                let m = rel * width[i];
                x[i] >= lo[i] - m && x[i] <= lo[i] + width[i] + m
            });
            if inside {
                let residual = norm_inf(&f(&x)).to_f64();
                let same = |p: &Equilibrium<T, N>| {
                    (0..N).all(|i| {
                        let d = (rel * width[i]).max(merge * T::ONE.max(x[i].abs()));
                        (p.x[i] - x[i]).abs() <= d
                    })
                };
                match out.points.iter_mut().find(|p| same(p)) {
                    Some(p) => {
                        if residual < p.residual {
                            *p = Equilibrium::at(f, x);
                        }
                    }
                    None => {
                        if out.points.push(Equilibrium::at(f, x)).is_err() {
                            out.truncated = true;
                        }
                    }
                }
            }
        }
        // Advance the index counter (odometer); stop after the last grid point.
        let mut d = 0;
        while d < N {
            idx[d] += 1;
            if idx[d] < n {
                break;
            }
            idx[d] = 0;
            d += 1;
        }
        if d == N {
            break;
        }
    }
    out.points.sort_unstable_by(|a, b| cmp_states(&a.x, &b.x));
    out
}

/// [`find_equilibria`] for a [`Model`] with a constant input: the vector field is
/// `x -> m.deriv(x, input)`.
///
/// ```
/// use nmm_core::equilibria::{equilibria_of_model, Kind, SearchBox};
/// use nmm_core::models::Mpr;
/// let m = Mpr::<f64>::default(); // eta = -5, J = 15, Delta = 1: bistable
/// let b = SearchBox { lo: [1e-4, -6.0], hi: [3.0, 2.0], points_per_dim: 16 };
/// let eq = equilibria_of_model::<f64, _, 2, 4>(&m, 0.0, &b, 1e-12);
/// assert_eq!(eq.points.len(), 3); // a fixed-capacity heapless::Vec, no allocation
/// assert_eq!(eq.points[1].kind, Kind::Saddle);
/// ```
pub fn equilibria_of_model<T: Real, M: Model<T, N>, const N: usize, const CAP: usize>(
    m: &M,
    input: T,
    search: &SearchBox<T, N>,
    tol: T,
) -> Equilibria<T, N, CAP> {
    find_equilibria(&mut |x: &[T; N]| m.deriv(x, input), search, tol)
}
