//! Numerical continuation (bifurcation analysis) of equilibria and of fold curves.
//!
//! Works on any smooth vector field `F(x, lambda)` on `R^N` (`N` small, in the type) with one
//! parameter (equilibrium branches) or two (fold curves). The caller passes the vector field as
//! a closure, so a [`Model`] with any named parameter, its input, or a network node can be
//! continued; [`parameter_field`] and [`parameter_field2`] build the closure from a model and
//! parameter names. Nothing allocates: each point of a branch is handed to the caller's
//! callback as soon as it is computed, and the callback can stop the run
//! (`ControlFlow::Break`).
//!
//! - [`continue_equilibria`]: the curve `F(x, lambda) = 0` in `(x, lambda)` by pseudo-arclength
//!   continuation (tangent predictor, Newton corrector on the hyperplane orthogonal to the
//!   tangent, adaptive step). Each point carries the eigenvalues of `D_x F`, its type and
//!   stability and three test functions; folds (limit points, [`Label::Fold`]) and Hopf points
//!   ([`Label::Hopf`]) are detected from sign changes and located by regula falsi (Illinois)
//!   along the curve, then refined by Newton's method on the extended system
//!   `F = 0, psi(D_x F) = 0` (`psi` the fold test function `g` below for folds, the real part
//!   of the critical complex pair for Hopf points).
//! - [`continue_folds`]: the fold curve `F(x, l1, l2) = 0, g(D_x F) = 0` in `(x, l1, l2)`
//!   (codimension-2 analysis), with cusp points ([`Label::Cusp`]: the normal-form coefficient
//!   `a = p . D^2_x F(q, q)` changes sign) and Bogdanov-Takens points
//!   ([`Label::BogdanovTakens`]: `p . q` changes sign, i.e. the zero eigenvalue becomes double).
//!
//! # Units and scaling
//!
//! `x` and `lambda` carry the units of the model's state and parameter. The arclength `s`
//! (and so the step sizes in [`Settings`]) is the Euclidean length `||(dx, dlambda)||_2` in
//! those units, unweighted: choose `ds_max` well below the scale on which the branch bends, in
//! the units of the largest of the state and the parameter. Eigenvalues are rates in 1/(time
//! unit of the model); the determinant test `det` has units 1/(time unit)^N.
//!
//! # Fold test function
//!
//! Folds are where `A = D_x F` is singular. Instead of `det A`, whose size scales with the
//! product of all eigenvalues, the extended systems use
//! `g(A) = det A / (||adj A||_F sqrt(1 + ||A||_F^2))`: since `adj A = det(A) A^-1`, the
//! first factor is `+-1/||A^-1||_F`, between `sigma_min/sqrt(N)` and `sigma_min` in magnitude
//! with the sign of `det A`, smooth wherever the rank of `A` is at least `N - 1` (also at a
//! Bogdanov-Takens point, and for `N = 1`); the second makes `g` dimensionless. The adjugate
//! costs `N^2` determinants, which is nothing for the small `N` this module is meant for.
//!
//! # Derivatives
//!
//! All derivatives are finite differences with steps relative to `max(1, |y_j|)`: central
//! differences of `F` with `h = cbrt(eps)` (as [`equilibria::jacobian`]; error
//! `~eps^(2/3)`, 4e-11 in `f64`), of the difference-based test functions with
//! `h = eps^(2/9)` (`3e-4` in `f64`: balances their `eps^(2/3)` noise against the `h^2`
//! truncation, so the Newton matrix is accurate to `~eps^(4/9)`, `1e-7`), and the second
//! derivative `D^2 F(q, q)` with `h = eps^(1/4)` (`(F(x + hq) - 2F(x) + F(x - hq))/h^2`, error
//! `~eps^(1/2)`, `1e-8`). The noise in the Newton matrices only slows Newton's method down;
//! the accuracy of a located point is set by the noise of the test function that vanishes
//! there (about `1e-10` relative in `f64`).
//!
//! Eigenvalues and test functions are computed and reported in `f64` (through
//! [`Real::to_f64`]), as in [`equilibria`]; they are analysis output.
//!
//! ```
//! use core::ops::ControlFlow;
//! use nmm_core::continuation::{continue_equilibria, parameter_field, Label, Settings};
//! use nmm_core::models::{mpr, Mpr};
//! // MPR with J = 15, Delta = 1, tau = 1: the low-activity branch from eta = -10 folds back
//! // at eta ~ -3.136 and again at eta ~ -5.744 (bistability in between).
//! let m = Mpr::<f64>::default();
//! let mut f = parameter_field(&m, "eta", 0.0).unwrap();
//! let x0 = mpr::fixed_points(&Mpr { eta: -10.0, ..m }, 0.0)[0];
//! let mut folds = Vec::new();
//! let summary = continue_equilibria(&mut f, x0, -10.0, [-10.0, 0.0], &Settings::default(),
//!     &mut |p| {
//!         if p.label == Label::Fold {
//!             folds.push(p.lambda);
//!         }
//!         ControlFlow::Continue(())
//!     })
//!     .unwrap();
//! assert_eq!(folds.len(), 2);
//! assert!((folds[0] + 3.136).abs() < 1e-3 && (folds[1] + 5.744).abs() < 1e-3);
//! assert_eq!(summary.stop, nmm_core::continuation::Stop::Bound); // reached eta = 0
//! ```

use crate::equilibria::{self, Kind, NewtonError, Stability};
use crate::models::{Model, ParamError};
use crate::real::Real;
use core::cmp::Ordering;
use core::fmt;
use core::ops::ControlFlow;

/// Cosine of the largest angle allowed between the tangents of two consecutive points (about
/// 26 degrees); a larger turn halves the step, so the branch is resolved where it bends.
const MIN_TANGENT_COS: f64 = 0.9;

/// Regula-falsi iterations allowed to locate one special point.
const MAX_LOCATE: usize = 60;

/// Newton iterations allowed for the start point and for refining a special point.
const MAX_REFINE: usize = 30;

/// Growth factor of the step after an easy corrector (at most 3 Newton iterations).
const GROW: f64 = 1.5;

// ---------------------------------------------------------------------------------------------
// Public types

/// Initial direction of the continuation parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    /// Start towards larger values (of `lambda`; of the second parameter for fold curves).
    #[default]
    Increasing,
    /// Start towards smaller values.
    Decreasing,
}

/// Step control and tolerances of a continuation run.
///
/// Step sizes are arclengths `||(dx, dlambda)||_2` in the units of the state and the
/// parameter(s) (see the [module docs](self)).
///
/// ```
/// use nmm_core::continuation::Settings;
/// let s = Settings::<f64> { ds_max: 0.05, max_steps: 2000, ..Settings::default() };
/// assert!(s.check().is_ok());
/// assert!(Settings::<f64> { ds_min: 1.0, ..s }.check().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings<T> {
    /// First step.
    pub ds: T,
    /// Smallest step: when the corrector fails at this step the run ends with
    /// [`ContinuationError::StepTooSmall`].
    pub ds_min: T,
    /// Largest step.
    pub ds_max: T,
    /// Largest number of continuation steps (points after the start, special points not
    /// counted).
    pub max_steps: usize,
    /// Residual tolerance of the Newton corrector: `||F||_inf <= tol` (in the units of `dx/dt`),
    /// together with a last Newton step `<= sqrt(tol) max(1, ||y||_inf)`. Must lie above the
    /// rounding level of `F` (about `eps` times its largest terms).
    pub tol: T,
    /// Newton iterations per corrector before the step is halved.
    pub max_corrector: usize,
    /// Initial direction.
    pub direction: Direction,
}

impl<T: Real> Default for Settings<T> {
    /// `ds = 0.01`, `ds_min = 1e-8`, `ds_max = 0.1`, 1000 steps, `tol = max(1e-10, 1000 eps)`
    /// (1e-10 in `f64`, 1.2e-4 in `f32`), 8 corrector iterations, increasing.
    fn default() -> Self {
        let eps = T::EPSILON.to_f64();
        Self {
            ds: T::from_f64(0.01),
            ds_min: T::from_f64(1e-8),
            ds_max: T::from_f64(0.1),
            max_steps: 1000,
            tol: T::from_f64(f64::max(1e-10, 1e3 * eps)),
            max_corrector: 8,
            direction: Direction::Increasing,
        }
    }
}

impl<T: Real> Settings<T> {
    /// Checks that the steps are finite with `0 < ds_min <= ds <= ds_max`, that `tol` is
    /// finite and positive and that `max_corrector >= 1`.
    ///
    /// # Errors
    /// [`ContinuationError::InvalidSettings`] naming the first violated condition.
    pub fn check(&self) -> Result<(), ContinuationError> {
        let all_finite = [self.ds, self.ds_min, self.ds_max, self.tol]
            .iter()
            .all(|v| v.is_finite());
        if !all_finite {
            return Err(ContinuationError::InvalidSettings(
                "step sizes and tolerance must be finite",
            ));
        }
        if !(self.ds_min > T::ZERO && self.ds_min <= self.ds && self.ds <= self.ds_max) {
            return Err(ContinuationError::InvalidSettings(
                "steps must satisfy 0 < ds_min <= ds <= ds_max",
            ));
        }
        if self.tol <= T::ZERO {
            return Err(ContinuationError::InvalidSettings(
                "tolerance must be positive",
            ));
        }
        if self.max_corrector == 0 {
            return Err(ContinuationError::InvalidSettings(
                "max_corrector must be at least 1",
            ));
        }
        Ok(())
    }
}

/// What a point of a branch is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Label {
    /// The first point (the corrected starting point).
    Start,
    /// An ordinary continuation point.
    Regular,
    /// A fold (saddle-node, limit point) of equilibria: a real eigenvalue crosses zero and the
    /// branch turns back in `lambda`.
    Fold,
    /// A Hopf point: a complex pair of eigenvalues crosses the imaginary axis.
    Hopf,
    /// A cusp on a fold curve: the fold's quadratic normal-form coefficient vanishes.
    Cusp,
    /// A Bogdanov-Takens point on a fold curve: the zero eigenvalue is double.
    BogdanovTakens,
    /// The last point, on a parameter bound.
    End,
}

impl Label {
    /// Lower-case name, e.g. `"fold"`.
    ///
    /// ```
    /// assert_eq!(nmm_core::continuation::Label::Hopf.name(), "hopf");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Label::Start => "start",
            Label::Regular => "regular",
            Label::Fold => "fold",
            Label::Hopf => "hopf",
            Label::Cusp => "cusp",
            Label::BogdanovTakens => "bogdanov-takens",
            Label::End => "end",
        }
    }

    /// The abbreviation used by AUTO and MATCONT (`EP`, `LP`, `H`, `CP`, `BT`; empty for
    /// regular points).
    ///
    /// ```
    /// assert_eq!(nmm_core::continuation::Label::Fold.code(), "LP");
    /// ```
    pub const fn code(self) -> &'static str {
        match self {
            Label::Start | Label::End => "EP",
            Label::Regular => "",
            Label::Fold => "LP",
            Label::Hopf => "H",
            Label::Cusp => "CP",
            Label::BogdanovTakens => "BT",
        }
    }

    /// True for fold, Hopf, cusp and Bogdanov-Takens points.
    ///
    /// ```
    /// use nmm_core::continuation::Label;
    /// assert!(Label::Cusp.is_special() && !Label::End.is_special());
    /// ```
    pub const fn is_special(self) -> bool {
        matches!(
            self,
            Label::Fold | Label::Hopf | Label::Cusp | Label::BogdanovTakens
        )
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Test functions of an equilibrium branch at one point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tests {
    /// `lambda` component of the unit tangent `(dx/ds, dlambda/ds)`: changes sign at folds
    /// (the detection function for [`Label::Fold`]); its sign is the current direction.
    pub tangent_lambda: f64,
    /// `det D_x F` (units 1/(time unit)^N): changes sign at folds and branch points.
    pub det: f64,
    /// Real part of the complex eigenvalue pair closest to the imaginary axis (1/time unit);
    /// `None` without a complex pair. A sign change together with a change by two of the
    /// number of eigenvalues with positive real part marks a [`Label::Hopf`] point.
    pub hopf: Option<f64>,
}

/// One point of an equilibrium branch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point<T, const N: usize> {
    /// What the point is.
    pub label: Label,
    /// The equilibrium (model units).
    pub x: [T; N],
    /// The parameter value (its unit).
    pub lambda: T,
    /// `||F(x, lambda)||_inf`.
    pub residual: f64,
    /// Eigenvalues `(re, im)` of `D_x F`, largest real part first (NaN if they could not be
    /// computed, see [`equilibria::eigenvalues`]).
    pub eigenvalues: [(f64, f64); N],
    /// Local type, as in [`equilibria::Equilibrium`].
    pub kind: Kind,
    /// Linear stability.
    pub stability: Stability,
    /// Test functions.
    pub tests: Tests,
}

/// One point of a fold curve in the plane of two parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FoldCurvePoint<T, const N: usize> {
    /// What the point is ([`Label::Start`], [`Label::Regular`], [`Label::Cusp`],
    /// [`Label::BogdanovTakens`], [`Label::End`]).
    pub label: Label,
    /// The equilibrium at the fold (model units).
    pub x: [T; N],
    /// The two parameter values.
    pub lambda: [T; 2],
    /// Largest of `||F||_inf` and `|g|`, `g` the fold test function (the defining equations;
    /// see the [module docs](self)).
    pub residual: f64,
    /// Eigenvalues `(re, im)` of `D_x F`, largest real part first; one of them is zero.
    pub eigenvalues: [(f64, f64); N],
    /// Quadratic normal-form coefficient `a = p . D^2_x F(q, q)` with `q`, `p` the unit right
    /// and left null vectors of `D_x F` (orientation continued along the curve); zero at a
    /// cusp. Units: those of `dx/dt` per (state unit)^2.
    pub normal_form: f64,
    /// `p . q`: zero at a Bogdanov-Takens point.
    pub bt_test: f64,
}

/// Why a run ended without error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A parameter reached one of its bounds (the last point, [`Label::End`], lies on it; if
    /// landing on the bound failed the last point is the last one inside).
    Bound,
    /// [`Settings::max_steps`] steps were taken.
    MaxSteps,
    /// The callback returned `ControlFlow::Break`.
    Callback,
}

/// Outcome of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Points handed to the callback (start, regular, special and end points).
    pub points: usize,
    /// Of which special points (fold, Hopf, cusp, Bogdanov-Takens).
    pub special_points: usize,
    /// Why the run ended.
    pub stop: Stop,
}

/// A continuation run could not start or could not go on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ContinuationError {
    /// Settings or bounds are unusable; the text names the problem.
    InvalidSettings(&'static str),
    /// Newton's method from the given start did not converge to an equilibrium (or, for fold
    /// curves, to a fold).
    Start(NewtonError),
    /// The tangent at the start is undefined (the start is singular for this continuation:
    /// e.g. a fold given to [`continue_equilibria`]), or the null vectors of a fold curve's
    /// start could not be computed.
    Degenerate,
    /// The corrector failed even at [`Settings::ds_min`] (a singular point such as a branch
    /// point, a loss of smoothness, or a non-finite `F`); the points so far were delivered.
    StepTooSmall {
        /// Parameter value(s) of the last point delivered (the second is 0 for equilibrium
        /// branches).
        lambda: [f64; 2],
        /// Steps taken before the failure.
        steps: usize,
    },
}

impl fmt::Display for ContinuationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ContinuationError::InvalidSettings(why) => {
                write!(f, "continuation: invalid settings: {why}")
            }
            ContinuationError::Start(e) => write!(f, "continuation: start point: {e}"),
            ContinuationError::Degenerate => {
                f.write_str("continuation: singular start point (no tangent or null vector)")
            }
            ContinuationError::StepTooSmall { lambda, steps } => write!(
                f,
                "continuation: corrector failed at the smallest step after {steps} steps \
                 (last parameters {}, {})",
                lambda[0], lambda[1]
            ),
        }
    }
}

impl core::error::Error for ContinuationError {}

// ---------------------------------------------------------------------------------------------
// Closures from models

/// The vector field `(x, lambda) -> dx/dt` of `model` with its parameter `name` set to
/// `lambda` and a constant input, for [`continue_equilibria`].
///
/// The closure owns a copy of the model and sets the parameter on each call; a value outside
/// the parameter's valid range gives a NaN derivative, which the continuation treats as a
/// failed step. (To continue in the input itself, pass `|x, i| model.deriv(x, i)` instead.)
///
/// # Errors
/// [`ParamError::Unknown`] if the model has no parameter called `name`.
///
/// ```
/// use nmm_core::continuation::parameter_field;
/// use nmm_core::models::{Model, Mpr};
/// let m = Mpr::<f64>::default();
/// let mut f = parameter_field(&m, "J", 0.0).unwrap();
/// assert_eq!(f(&[0.5, -0.3], 10.0), Mpr { j: 10.0, ..m }.deriv(&[0.5, -0.3], 0.0));
/// assert!(parameter_field(&m, "nope", 0.0).is_err());
/// ```
pub fn parameter_field<'a, T, const N: usize, M>(
    model: &M,
    name: &'a str,
    input: T,
) -> Result<impl FnMut(&[T; N], T) -> [T; N] + use<'a, T, N, M>, ParamError>
where
    T: Real,
    M: Model<T, N> + Clone,
{
    model.get(name).ok_or(ParamError::Unknown)?;
    let mut m = model.clone();
    Ok(move |x: &[T; N], lambda: T| match m.set(name, lambda) {
        Ok(()) => m.deriv(x, input),
        Err(_) => [T::from_f64(f64::NAN); N],
    })
}

/// The vector field `(x, l1, l2) -> dx/dt` of `model` with its parameters `names[0]` and
/// `names[1]` set to `l1` and `l2` and a constant input, for [`continue_folds`]; see
/// [`parameter_field`].
///
/// # Errors
/// [`ParamError::Unknown`] if either name is not a parameter of the model.
///
/// ```
/// use nmm_core::continuation::parameter_field2;
/// use nmm_core::models::{Model, Mpr};
/// let m = Mpr::<f64>::default();
/// let mut f = parameter_field2(&m, ["eta", "J"], 0.0).unwrap();
/// let want = Mpr { eta: -3.0, j: 10.0, ..m }.deriv(&[0.5, -0.3], 0.0);
/// assert_eq!(f(&[0.5, -0.3], -3.0, 10.0), want);
/// ```
pub fn parameter_field2<'a, T, const N: usize, M>(
    model: &M,
    names: [&'a str; 2],
    input: T,
) -> Result<impl FnMut(&[T; N], T, T) -> [T; N] + use<'a, T, N, M>, ParamError>
where
    T: Real,
    M: Model<T, N> + Clone,
{
    for name in names {
        model.get(name).ok_or(ParamError::Unknown)?;
    }
    let mut m = model.clone();
    Ok(
        move |x: &[T; N], l1: T, l2: T| match (m.set(names[0], l1), m.set(names[1], l2)) {
            (Ok(()), Ok(())) => m.deriv(x, input),
            _ => [T::from_f64(f64::NAN); N],
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Public entry points

/// Follows the branch of equilibria `F(x, lambda) = 0` through `(x0, lambda0)` by
/// pseudo-arclength continuation, for `lambda` in `bounds = [lo, hi]`.
///
/// The start is first corrected by [`equilibria::newton`] at fixed `lambda0` (tolerance
/// `settings.tol`), so `x0` need only be close to an equilibrium. The run then leaves in
/// `settings.direction` and goes on until `lambda` reaches a bound (the last point is placed on
/// it, [`Label::End`]), `settings.max_steps` steps were taken, or `emit` breaks. The branch may
/// turn back at folds, so `lambda` is not monotone along it.
///
/// Each step predicts along the unit tangent `t` of the curve in `(x, lambda)`, corrects by
/// Newton's method on `F = 0` plus `t . (y - y_pred) = 0`, and adapts the step: halved when
/// the corrector fails, moves further than the step, or the tangent turns by more than about
/// 26 degrees; grown by 1.5 (up to `ds_max`) after a corrector of at most 3 iterations.
///
/// Special points between two points are detected by
/// - fold: a sign change of [`Tests::tangent_lambda`];
/// - Hopf: a sign change of [`Tests::hopf`] together with a change by two (or more) of the
///   number of eigenvalues with positive real part (which tells a Hopf crossing from the
///   jump of `Tests::hopf` when a complex pair turns into two real eigenvalues),
///
/// then located by regula falsi on that test function along the curve (arclength resolved to
/// `settings.tol`) and refined by Newton's method on `F = 0` with
/// `g = 0` (fold; `g` the fold test function of the [module docs](self)) or
/// `Re(critical pair) = 0` (Hopf). They are
/// handed to `emit` in order along the branch, before the point that follows them.
///
/// Eigenvalues need `N <=` [`equilibria::MAX_EIG_DIM`]; for larger `N` they are NaN, the
/// type is [`Kind::Unknown`] and Hopf points are not detected (folds still are).
///
/// # Errors
/// [`ContinuationError::InvalidSettings`] (also for bounds that are not finite, not
/// increasing, or do not contain `lambda0`), [`ContinuationError::Start`],
/// [`ContinuationError::Degenerate`] (start on a fold), [`ContinuationError::StepTooSmall`].
/// No input panics.
///
/// ```
/// use core::ops::ControlFlow;
/// use nmm_core::continuation::{continue_equilibria, Label, Settings};
/// // Saddle-node normal form dx/dt = lambda - x^2: the branch x = -sqrt(lambda) turns at
/// // (x, lambda) = (0, 0) into x = +sqrt(lambda).
/// let mut f = |x: &[f64; 1], lam: f64| [lam - x[0] * x[0]];
/// let settings = Settings { direction: nmm_core::continuation::Direction::Decreasing,
///                           ..Settings::default() };
/// let mut fold = None;
/// continue_equilibria(&mut f, [-1.0], 1.0, [-1.0, 1.0], &settings, &mut |p| {
///     if p.label == Label::Fold { fold = Some((p.x[0], p.lambda)); }
///     ControlFlow::Continue(())
/// }).unwrap();
/// let (x, lam) = fold.unwrap();
/// assert!(x.abs() < 1e-7 && lam.abs() < 1e-12);
/// ```
pub fn continue_equilibria<T, const N: usize, F, E>(
    f: &mut F,
    x0: [T; N],
    lambda0: T,
    bounds: [T; 2],
    settings: &Settings<T>,
    emit: &mut E,
) -> Result<Summary, ContinuationError>
where
    T: Real,
    F: FnMut(&[T; N], T) -> [T; N],
    E: FnMut(&Point<T, N>) -> ControlFlow<()>,
{
    settings.check()?;
    check_bounds(&bounds, lambda0)?;
    let c = Consts::new(settings.tol);
    let x = equilibria::newton(
        &mut |x: &[T; N]| f(x, lambda0),
        x0,
        settings.tol,
        MAX_REFINE,
    )
    .map_err(ContinuationError::Start)?;
    let y0 = Ext {
        x,
        p: [lambda0, T::ZERO],
    };
    let mut branch = EqBranch {
        sys: EqSys { f, c },
        emit,
        tol: settings.tol,
    };
    let dir = direction_vector(N, settings.direction);
    run(&mut branch, y0, dir, &[(N, bounds[0], bounds[1])], settings)
}

/// Follows the curve of folds of `F(x, l1, l2)` in the plane of the two parameters, from a
/// fold at `(x0, lambda0)` (e.g. a [`Label::Fold`] point of [`continue_equilibria`] in `l1`
/// at fixed `l2`), within `bounds = [[l1_lo, l1_hi], [l2_lo, l2_hi]]`.
///
/// The start is refined by Newton's method on `F = 0, det D_x F = 0` in `(x, l1)` at fixed
/// `l2`. The curve is the solution set of the `N + 1` equations
/// `F(x, l1, l2) = 0`, `g(D_x F) = 0` (the fold test function) in the `N + 2` unknowns
/// `(x, l1, l2)`, continued by pseudo-arclength exactly as in [`continue_equilibria`]; the
/// run leaves the start in `settings.direction` of `l2`. The curve is smooth in
/// `(x, l1, l2)` through a cusp, where its projection onto the parameter plane has the cusp.
///
/// Along the curve the right and left null vectors `q`, `p` of `D_x F` are computed by
/// bordered linear systems whose borders are the previous point's null vectors (so their
/// orientation is continuous), and two test functions are followed:
/// - [`FoldCurvePoint::normal_form`] `a = p . D^2_x F(q, q)`: a sign change is a
///   [`Label::Cusp`];
/// - [`FoldCurvePoint::bt_test`] `p . q`: a sign change is a [`Label::BogdanovTakens`] point.
///
/// Both are located by regula falsi along the curve.
///
/// # Errors
/// As [`continue_equilibria`]; [`ContinuationError::Start`] when no fold is found near the
/// start.
///
/// ```
/// use core::ops::ControlFlow;
/// use nmm_core::continuation::{continue_folds, Direction, Label, Settings};
/// // Cusp normal form dx/dt = b + a x - x^3: folds where a = 3 x^2, b = -2 x^3; cusp at 0.
/// let mut f = |x: &[f64; 1], b: f64, a: f64| [b + a * x[0] - x[0] * x[0] * x[0]];
/// let settings = Settings { direction: Direction::Decreasing, ..Settings::default() };
/// let mut cusp = None;
/// // Start near the fold x = 0.5, a = 0.75, b = -0.25.
/// continue_folds(&mut f, [0.5], [-0.2, 0.75], [[-1.0, 1.0], [-1.0, 1.0]], &settings,
///     &mut |p| {
///         if p.label == Label::Cusp { cusp = Some(p.lambda); }
///         ControlFlow::Continue(())
///     }).unwrap();
/// let [b, a] = cusp.unwrap();
/// assert!(b.abs() < 1e-8 && a.abs() < 1e-6);
/// ```
pub fn continue_folds<T, const N: usize, F, E>(
    f: &mut F,
    x0: [T; N],
    lambda0: [T; 2],
    bounds: [[T; 2]; 2],
    settings: &Settings<T>,
    emit: &mut E,
) -> Result<Summary, ContinuationError>
where
    T: Real,
    F: FnMut(&[T; N], T, T) -> [T; N],
    E: FnMut(&FoldCurvePoint<T, N>) -> ControlFlow<()>,
{
    settings.check()?;
    check_bounds(&bounds[0], lambda0[0])?;
    check_bounds(&bounds[1], lambda0[1])?;
    let c = Consts::new(settings.tol);
    let l2 = lambda0[1];
    // Refine the start: F = 0, det = 0 in (x, l1) at fixed l2.
    let start = {
        let mut f2 = |x: &[T; N], l1: T| f(x, l1, l2);
        let mut sys = PolishSys {
            f: &mut f2,
            c,
            test: TestFn::Fold,
        };
        let y = Ext {
            x: x0,
            p: [lambda0[0], T::ZERO],
        };
        newton_sys(&mut sys, y, None, settings.tol, MAX_REFINE)
            .map_err(ContinuationError::Start)?
            .0
    };
    let y0 = Ext {
        x: start.x,
        p: [start.p[0], l2],
    };
    let jac = equilibria::jacobian(&mut |x: &[T; N]| f(x, y0.p[0], l2), &y0.x);
    let (q, p) = null_vectors_adjugate(&jac).ok_or(ContinuationError::Degenerate)?;
    let mut branch = FoldBranch {
        sys: FoldSys { f, c },
        emit,
        q,
        p,
    };
    let dir = direction_vector(N + 1, settings.direction);
    run(
        &mut branch,
        y0,
        dir,
        &[
            (N, bounds[0][0], bounds[0][1]),
            (N + 1, bounds[1][0], bounds[1][1]),
        ],
        settings,
    )
}

fn check_bounds<T: Real>(b: &[T; 2], start: T) -> Result<(), ContinuationError> {
    if !(b[0].is_finite() && b[1].is_finite() && start.is_finite()) {
        return Err(ContinuationError::InvalidSettings(
            "parameter bounds and start must be finite",
        ));
    }
    if b[0] >= b[1] {
        return Err(ContinuationError::InvalidSettings(
            "parameter bounds must satisfy lo < hi",
        ));
    }
    if start < b[0] || start > b[1] {
        return Err(ContinuationError::InvalidSettings(
            "start parameter lies outside its bounds",
        ));
    }
    Ok(())
}

fn direction_vector<T: Real, const N: usize>(i: usize, d: Direction) -> Ext<T, N> {
    let mut e = Ext::zero();
    e.set(
        i,
        match d {
            Direction::Increasing => T::ONE,
            Direction::Decreasing => -T::ONE,
        },
    );
    e
}

// ---------------------------------------------------------------------------------------------
// Small dense linear algebra on vectors of length N + 1 or N + 2

/// Constants of the finite differences and tolerances, computed once per run.
#[derive(Clone, Copy, Debug)]
struct Consts<T> {
    /// Machine epsilon.
    eps: T,
    /// Relative step for first derivatives of `F`: `eps^(1/3)`.
    c1: T,
    /// Relative step for first derivatives of difference-based test functions: `eps^(2/9)`.
    c2: T,
    /// Relative step for second derivatives of `F`: `eps^(1/4)`.
    c4: T,
    /// Residual tolerance of a difference-based test function: `max(tol, 1000 eps^(2/3))`
    /// (its noise level is `~eps^(2/3)` times its scale).
    g_tol: T,
    /// Machine epsilon as `f64`, for the eigenvalue tolerance.
    eps_f64: f64,
}

impl<T: Real> Consts<T> {
    fn new(tol: T) -> Self {
        let eps = T::EPSILON;
        let e = eps.to_f64();
        Self {
            eps,
            c1: T::from_f64(libm::cbrt(e)),
            c2: T::from_f64(libm::pow(e, 2.0 / 9.0)),
            c4: T::from_f64(libm::pow(e, 0.25)),
            g_tol: tol.max(T::from_f64(1e3 * libm::pow(e, 2.0 / 3.0))),
            eps_f64: e,
        }
    }
}

/// A vector `(x, p)` of length `N + 1` or `N + 2`: state and up to two parameters (or
/// extra equations). Entries past the length in use stay zero.
#[derive(Clone, Copy, Debug)]
struct Ext<T, const N: usize> {
    x: [T; N],
    p: [T; 2],
}

impl<T: Real, const N: usize> Ext<T, N> {
    fn zero() -> Self {
        Self {
            x: [T::ZERO; N],
            p: [T::ZERO; 2],
        }
    }
    fn unit(i: usize) -> Self {
        let mut e = Self::zero();
        e.set(i, T::ONE);
        e
    }
    #[inline]
    fn get(&self, i: usize) -> T {
        if i < N { self.x[i] } else { self.p[i - N] }
    }
    #[inline]
    fn set(&mut self, i: usize, v: T) {
        if i < N {
            self.x[i] = v;
        } else {
            self.p[i - N] = v;
        }
    }
    fn dot(&self, o: &Self, n: usize) -> T {
        (0..n).fold(T::ZERO, |s, i| s + self.get(i) * o.get(i))
    }
    /// `self + s o` on the first `n` entries.
    fn add_scaled(&self, s: T, o: &Self, n: usize) -> Self {
        let mut r = *self;
        for i in 0..n {
            r.set(i, self.get(i) + s * o.get(i));
        }
        r
    }
    fn sub(&self, o: &Self, n: usize) -> Self {
        self.add_scaled(-T::ONE, o, n)
    }
    fn norm_inf(&self, n: usize) -> T {
        (0..n).fold(T::ZERO, |m, i| m.max(self.get(i).abs()))
    }
    fn norm2(&self, n: usize) -> T {
        self.dot(self, n).sqrt()
    }
    fn finite(&self, n: usize) -> bool {
        (0..n).all(|i| self.get(i).is_finite())
    }
}

/// A square matrix of size up to `N + 2`, row by row.
#[derive(Clone, Copy, Debug)]
struct Mat<T, const N: usize> {
    top: [Ext<T, N>; N],
    bottom: [Ext<T, N>; 2],
}

impl<T: Real, const N: usize> Mat<T, N> {
    fn zero() -> Self {
        Self {
            top: [Ext::zero(); N],
            bottom: [Ext::zero(); 2],
        }
    }
    #[inline]
    fn row(&self, i: usize) -> &Ext<T, N> {
        if i < N {
            &self.top[i]
        } else {
            &self.bottom[i - N]
        }
    }
    #[inline]
    fn row_mut(&mut self, i: usize) -> &mut Ext<T, N> {
        if i < N {
            &mut self.top[i]
        } else {
            &mut self.bottom[i - N]
        }
    }
    fn swap_rows(&mut self, i: usize, j: usize) {
        if i != j {
            let a = *self.row(i);
            *self.row_mut(i) = *self.row(j);
            *self.row_mut(j) = a;
        }
    }
}

/// `a` and `b` of a bordered system, for [`equilibria::gauss_in_place`].
struct Bordered<'a, T, const N: usize> {
    a: &'a mut Mat<T, N>,
    b: &'a mut Ext<T, N>,
}

impl<T: Real, const N: usize> equilibria::LinearSystem<T> for Bordered<'_, T, N> {
    #[inline]
    fn a(&self, i: usize, j: usize) -> T {
        self.a.row(i).get(j)
    }
    #[inline]
    fn set_a(&mut self, i: usize, j: usize, v: T) {
        self.a.row_mut(i).set(j, v);
    }
    #[inline]
    fn b(&self, i: usize) -> T {
        self.b.get(i)
    }
    #[inline]
    fn set_b(&mut self, i: usize, v: T) {
        self.b.set(i, v);
    }
    #[inline]
    fn swap(&mut self, i: usize, j: usize) {
        self.a.swap_rows(i, j);
        let (bi, bj) = (self.b.get(i), self.b.get(j));
        self.b.set(i, bj);
        self.b.set(j, bi);
    }
}

/// Solves the leading `n x n` system `a y = b` (Gaussian elimination with partial pivoting,
/// [`equilibria::gauss_in_place`]); `None` for non-finite entries, a pivot below
/// `n eps max|a_ij|`, or a non-finite solution.
fn solve<T: Real, const N: usize>(
    mut a: Mat<T, N>,
    mut b: Ext<T, N>,
    n: usize,
    eps: T,
) -> Option<Ext<T, N>> {
    let mut sys = Bordered {
        a: &mut a,
        b: &mut b,
    };
    if !equilibria::gauss_in_place(&mut sys, n, eps) {
        return None;
    }
    // Entries past the system's size are zero, as in a fresh vector.
    for i in n..N + 2 {
        b.set(i, T::ZERO);
    }
    Some(b)
}

/// Determinant by LU with partial pivoting (0 for an exactly singular matrix).
fn det<T: Real, const N: usize>(mut a: [[T; N]; N]) -> T {
    let mut d = T::ONE;
    for k in 0..N {
        let mut p = k;
        for i in k + 1..N {
            if a[i][k].abs() > a[p][k].abs() {
                p = i;
            }
        }
        if a[p][k] == T::ZERO {
            return T::ZERO;
        }
        if p != k {
            a.swap(k, p);
            d = -d;
        }
        let pr = a[k];
        d *= pr[k];
        for row in a[k + 1..].iter_mut() {
            let m = row[k] / pr[k];
            for (v, &w) in row[k + 1..].iter_mut().zip(&pr[k + 1..]) {
                *v -= m * w;
            }
        }
    }
    d
}

/// Adjugate `adj(a) = det(a) a^-1`, entry `[j][i]` the determinant of `a` with row `i`
/// replaced by the unit row `e_j`; defined (and smooth) for singular `a`. `N^2`
/// determinants, for the small `N` this module is for.
fn adjugate<T: Real, const N: usize>(a: &[[T; N]; N]) -> [[T; N]; N] {
    core::array::from_fn(|j| {
        core::array::from_fn(|i| {
            let mut m = *a;
            m[i] = [T::ZERO; N];
            m[i][j] = T::ONE;
            det(m)
        })
    })
}

fn frobenius<T: Real, const N: usize>(a: &[[T; N]; N]) -> T {
    a.iter().flatten().fold(T::ZERO, |s, &v| s + v * v).sqrt()
}

/// The fold test `det(a) / (||adj(a)||_F sqrt(1 + ||a||_F^2))`.
///
/// `det(a) / ||adj(a)||_F = +-1 / ||a^-1||_F` lies between `sigma_min / sqrt(N)` and
/// `sigma_min` in magnitude and carries the sign of the determinant; unlike the determinant
/// itself it does not scale with the other singular values, and unlike a row-normalised
/// determinant it stays smooth where a whole row of `a` vanishes and for `N = 1`
/// (`adj = [1]`). It vanishes exactly where `a` is singular, and is smooth wherever the rank
/// is at least `N - 1` (so `adj(a) != 0`). The last factor makes it dimensionless for large
/// `||a||`. Zero when `adj(a) = 0` (rank `<= N - 2`).
fn fold_test<T: Real, const N: usize>(a: &[[T; N]; N]) -> T {
    let na = frobenius(&adjugate(a));
    if na == T::ZERO {
        return T::ZERO;
    }
    let fa = frobenius(a);
    det(*a) / (na * (T::ONE + fa * fa).sqrt())
}

/// Right and left null vectors (unit length) of a (nearly) singular matrix from its
/// adjugate, which is `~ q p^T` times the product of the other singular values: `q` is the
/// column and `p` the row of `adj(a)` through its largest entry.
fn null_vectors_adjugate<T: Real, const N: usize>(a: &[[T; N]; N]) -> Option<([T; N], [T; N])> {
    let adj = adjugate(a);
    let (mut jm, mut im, mut best) = (0, 0, T::ZERO);
    for (j, row) in adj.iter().enumerate() {
        for (i, v) in row.iter().enumerate() {
            if v.abs() > best {
                (jm, im, best) = (j, i, v.abs());
            }
        }
    }
    if !(best > T::ZERO && best.is_finite()) {
        return None;
    }
    let q: [T; N] = core::array::from_fn(|j| adj[j][im]);
    Some((unit(q)?, unit(adj[jm])?))
}

/// `v / ||v||_2`, or `None` for a zero or non-finite vector.
fn unit<T: Real, const N: usize>(v: [T; N]) -> Option<[T; N]> {
    let n = v.iter().fold(T::ZERO, |s, &x| s + x * x).sqrt();
    if n > T::ZERO && n.is_finite() {
        Some(v.map(|x| x / n))
    } else {
        None
    }
}

/// Null vectors of the (nearly) singular `a` by the bordered systems
/// `[[a, b], [c^T, 0]] [q; sigma] = [0; 1]` and `[[a^T, c], [b^T, 0]] [p; tau] = [0; 1]` with
/// `c = q_prev`, `b = p_prev`; the result is normalised, `q . q_prev > 0` and
/// `p . p_prev > 0`.
fn null_vectors_bordered<T: Real, const N: usize>(
    a: &[[T; N]; N],
    q_prev: &[T; N],
    p_prev: &[T; N],
    eps: T,
) -> Option<([T; N], [T; N])> {
    let mut m = Mat::<T, N>::zero();
    let mut mt = Mat::<T, N>::zero();
    for (i, (row, row_t)) in m.top.iter_mut().zip(mt.top.iter_mut()).enumerate() {
        row.x = a[i];
        row_t.x = core::array::from_fn(|j| a[j][i]);
        row.p[0] = p_prev[i];
        row_t.p[0] = q_prev[i];
    }
    m.bottom[0].x = *q_prev;
    mt.bottom[0].x = *p_prev;
    let q = solve(m, Ext::unit(N), N + 1, eps)?.x;
    let p = solve(mt, Ext::unit(N), N + 1, eps)?.x;
    Some((unit(q)?, unit(p)?))
}

fn norm_inf_arr<T: Real, const N: usize>(v: &[T; N]) -> f64 {
    v.iter().fold(0.0_f64, |m, x| m.max(x.to_f64().abs()))
}

/// Linearisation at a point: eigenvalues, type, stability and the Hopf test.
#[derive(Clone, Copy, Debug)]
struct Lin<const N: usize> {
    eigs: [(f64, f64); N],
    kind: Kind,
    stability: Stability,
    det: f64,
    hopf: Option<f64>,
    /// Eigenvalues with positive real part.
    unstable: usize,
}

/// Eigenvalues and classification with the tolerance of [`equilibria::Equilibrium::at`]
/// (`sqrt(eps) ||J||_inf`); the Hopf test is the real part of the complex pair (imaginary
/// part above that tolerance) closest to the imaginary axis.
fn linearize<T: Real, const N: usize>(jac: &[[T; N]; N], eps: f64) -> Lin<N> {
    let jnorm = jac.iter().fold(0.0_f64, |m, row| {
        m.max(row.iter().map(|v| v.to_f64().abs()).sum::<f64>())
    });
    let tol = libm::sqrt(eps) * jnorm;
    let d = det(*jac).to_f64();
    match equilibria::eigenvalues(jac) {
        Some(e) => Lin {
            eigs: e,
            kind: equilibria::classify(&e, tol),
            stability: equilibria::stability(&e, tol),
            det: d,
            hopf: e
                .iter()
                .filter(|z| z.1 > tol)
                .map(|z| z.0)
                .min_by(|a, b| a.abs().partial_cmp(&b.abs()).unwrap_or(Ordering::Equal)),
            unstable: e.iter().filter(|z| z.0 > 0.0).count(),
        },
        None => Lin {
            eigs: [(f64::NAN, f64::NAN); N],
            kind: Kind::Unknown,
            stability: Stability::Unknown,
            det: d,
            hopf: None,
            unstable: 0,
        },
    }
}

/// True when `b` lies on the other side of zero from `a` (a zero `b` counts as crossed, a zero
/// `a` does not: a test function that vanishes exactly at a point is reported once).
fn crossed(a: f64, b: f64) -> bool {
    (a < 0.0 && b >= 0.0) || (a > 0.0 && b <= 0.0)
}

// ---------------------------------------------------------------------------------------------
// Systems: F (N equations) and optionally one scalar equation g, in N + 1 or N + 2 unknowns

trait System<T: Real, const N: usize> {
    /// Number of unknowns, `N + 1` or `N + 2`.
    fn unknowns(&self) -> usize;
    /// True when the scalar equation `g = 0` follows `F = 0`.
    fn has_g(&self) -> bool;
    fn consts(&self) -> &Consts<T>;
    fn f(&mut self, y: &Ext<T, N>) -> [T; N];
    fn g(&mut self, y: &Ext<T, N>) -> T;
    fn equations(&self) -> usize {
        N + usize::from(self.has_g())
    }
}

fn residual<T: Real, const N: usize, S: System<T, N>>(s: &mut S, y: &Ext<T, N>) -> Ext<T, N> {
    let mut r = Ext {
        x: s.f(y),
        p: [T::ZERO; 2],
    };
    if s.has_g() {
        r.p[0] = s.g(y);
    }
    r
}

/// Central-difference Jacobian of `(F, g)`: rows `0..N` with step `c1`, row `N` (g) with `c2`.
fn jacobian<T: Real, const N: usize, S: System<T, N>>(s: &mut S, y: &Ext<T, N>) -> Mat<T, N> {
    let n = s.unknowns();
    let c = *s.consts();
    let mut a = Mat::zero();
    let mut yp = *y;
    for j in 0..n {
        let yj = y.get(j);
        let scale = T::ONE.max(yj.abs());
        let h = c.c1 * scale;
        let (hi, lo) = (yj + h, yj - h);
        let w = hi - lo;
        yp.set(j, hi);
        let fp = s.f(&yp);
        yp.set(j, lo);
        let fm = s.f(&yp);
        for (row, (a, b)) in a.top.iter_mut().zip(fp.iter().zip(&fm)) {
            row.set(j, (*a - *b) / w);
        }
        if s.has_g() {
            let h = c.c2 * scale;
            let (hi, lo) = (yj + h, yj - h);
            let w = hi - lo;
            yp.set(j, hi);
            let gp = s.g(&yp);
            yp.set(j, lo);
            let gm = s.g(&yp);
            a.bottom[0].set(j, (gp - gm) / w);
        }
        yp.set(j, yj);
    }
    a
}

/// Newton's method on `(F, g) = 0`, plus the linear equation `row . y = target` when the
/// system has one equation fewer than unknowns. Converged when `||F||_inf <= tol`,
/// `|g| <= g_tol` and the step is `<= sqrt(tol) max(1, ||y||_inf)`; the last step is applied.
/// Returns the point and the iterations used.
fn newton_sys<T: Real, const N: usize, S: System<T, N>>(
    s: &mut S,
    y0: Ext<T, N>,
    constraint: Option<(&Ext<T, N>, T)>,
    tol: T,
    max_iter: usize,
) -> Result<(Ext<T, N>, usize), NewtonError> {
    let n = s.unknowns();
    let m = s.equations();
    let c = *s.consts();
    let sqrt_tol = tol.sqrt();
    let mut y = y0;
    for it in 1..=max_iter {
        let r = residual(s, &y);
        if !r.finite(m) {
            return Err(NewtonError::NotFinite);
        }
        let mut a = jacobian(s, &y);
        let mut rhs = Ext::zero();
        for i in 0..m {
            rhs.set(i, -r.get(i));
        }
        if let Some((row, target)) = constraint {
            *a.row_mut(n - 1) = *row;
            rhs.set(n - 1, target - row.dot(&y, n));
        }
        let dy = solve(a, rhs, n, c.eps).ok_or(NewtonError::Singular)?;
        let small_f = r.x.iter().all(|v| v.abs() <= tol);
        let small_g = !s.has_g() || r.p[0].abs() <= c.g_tol;
        let small_step = dy.norm_inf(n) <= sqrt_tol * T::ONE.max(y.norm_inf(n));
        y = y.add_scaled(T::ONE, &dy, n);
        if !y.finite(n) {
            return Err(NewtonError::NotFinite);
        }
        if small_f && small_g && small_step {
            return Ok((y, it));
        }
    }
    Err(NewtonError::MaxIterations)
}

/// Unit tangent of the curve at `y`, oriented by `prev` (`t . prev > 0`): the solution of
/// `[D(F, g); prev^T] t = e_last`, normalised.
fn tangent<T: Real, const N: usize, S: System<T, N>>(
    s: &mut S,
    y: &Ext<T, N>,
    prev: &Ext<T, N>,
) -> Option<Ext<T, N>> {
    let n = s.unknowns();
    let eps = s.consts().eps;
    let mut a = jacobian(s, y);
    *a.row_mut(n - 1) = *prev;
    let t = solve(a, Ext::unit(n - 1), n, eps)?;
    let norm = t.norm2(n);
    if norm > T::ZERO && norm.is_finite() {
        Some(t.add_scaled(T::ONE / norm - T::ONE, &t, n))
    } else {
        None
    }
}

/// One predictor-corrector step of arclength `ds` from `(y, t)`: the corrected point, its
/// tangent and the corrector iterations.
fn step<T: Real, const N: usize, S: System<T, N>>(
    s: &mut S,
    y: &Ext<T, N>,
    t: &Ext<T, N>,
    ds: T,
    st: &Settings<T>,
) -> Option<(Ext<T, N>, Ext<T, N>, usize)> {
    let n = s.unknowns();
    let pred = y.add_scaled(ds, t, n);
    let target = t.dot(&pred, n);
    let (yc, it) = newton_sys(s, pred, Some((t, target)), st.tol, st.max_corrector).ok()?;
    let tc = tangent(s, &yc, t)?;
    Some((yc, tc, it))
}

/// Equilibria: `F(x, lambda)`, unknowns `(x, lambda)`.
struct EqSys<'a, T, F> {
    f: &'a mut F,
    c: Consts<T>,
}

impl<T: Real, const N: usize, F: FnMut(&[T; N], T) -> [T; N]> System<T, N> for EqSys<'_, T, F> {
    fn unknowns(&self) -> usize {
        N + 1
    }
    fn has_g(&self) -> bool {
        false
    }
    fn consts(&self) -> &Consts<T> {
        &self.c
    }
    fn f(&mut self, y: &Ext<T, N>) -> [T; N] {
        (self.f)(&y.x, y.p[0])
    }
    fn g(&mut self, _y: &Ext<T, N>) -> T {
        T::ZERO
    }
}

/// Which test function closes an extended system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TestFn {
    /// Normalised determinant of `D_x F` (folds).
    Fold,
    /// Real part of the complex pair closest to the imaginary axis (Hopf points).
    Hopf,
}

/// The square extended system `F(x, lambda) = 0`, `psi(D_x F) = 0` in `(x, lambda)`.
struct PolishSys<'a, T, F> {
    f: &'a mut F,
    c: Consts<T>,
    test: TestFn,
}

impl<T: Real, const N: usize, F: FnMut(&[T; N], T) -> [T; N]> System<T, N> for PolishSys<'_, T, F> {
    fn unknowns(&self) -> usize {
        N + 1
    }
    fn has_g(&self) -> bool {
        true
    }
    fn consts(&self) -> &Consts<T> {
        &self.c
    }
    fn f(&mut self, y: &Ext<T, N>) -> [T; N] {
        (self.f)(&y.x, y.p[0])
    }
    fn g(&mut self, y: &Ext<T, N>) -> T {
        let lam = y.p[0];
        let f = &mut *self.f;
        let jac = equilibria::jacobian(&mut |x: &[T; N]| f(x, lam), &y.x);
        match self.test {
            TestFn::Fold => fold_test(&jac),
            TestFn::Hopf => match linearize(&jac, self.c.eps_f64).hopf {
                Some(re) => T::from_f64(re),
                None => T::from_f64(f64::NAN),
            },
        }
    }
}

/// Fold curves: `F(x, l1, l2) = 0`, normalised `det D_x F = 0` in `(x, l1, l2)`.
struct FoldSys<'a, T, F> {
    f: &'a mut F,
    c: Consts<T>,
}

impl<T: Real, const N: usize, F: FnMut(&[T; N], T, T) -> [T; N]> System<T, N>
    for FoldSys<'_, T, F>
{
    fn unknowns(&self) -> usize {
        N + 2
    }
    fn has_g(&self) -> bool {
        true
    }
    fn consts(&self) -> &Consts<T> {
        &self.c
    }
    fn f(&mut self, y: &Ext<T, N>) -> [T; N] {
        (self.f)(&y.x, y.p[0], y.p[1])
    }
    fn g(&mut self, y: &Ext<T, N>) -> T {
        let (l1, l2) = (y.p[0], y.p[1]);
        let f = &mut *self.f;
        fold_test(&equilibria::jacobian(&mut |x: &[T; N]| f(x, l1, l2), &y.x))
    }
}

// ---------------------------------------------------------------------------------------------
// Branches: a system plus test functions and output

/// A curve being followed: its system, the data at each point, the special points it detects
/// and how points reach the caller.
trait Branch<T: Real, const N: usize> {
    type Sys: System<T, N>;
    type Info: Copy;
    /// The two kinds of special point, by test-function index.
    const KINDS: [Label; 2];
    fn sys(&mut self) -> &mut Self::Sys;
    /// Data (linearisation, test functions) at a curve point with tangent `t`.
    fn info(&mut self, y: &Ext<T, N>, t: &Ext<T, N>) -> Self::Info;
    /// Test function `k` (the one located by regula falsi).
    fn test(info: &Self::Info, k: usize) -> Option<f64>;
    /// True when a special point of kind `k` lies between two consecutive points.
    fn detect(a: &Self::Info, b: &Self::Info, k: usize) -> bool {
        match (Self::test(a, k), Self::test(b, k)) {
            (Some(x), Some(y)) => crossed(x, y),
            _ => false,
        }
    }
    /// A refined special point of kind `k` near `y` (extended system), if there is one.
    fn refine(&mut self, k: usize, y: &Ext<T, N>) -> Option<Ext<T, N>>;
    /// A point was accepted as the new current point.
    fn accepted(&mut self, info: &Self::Info);
    fn emit(&mut self, y: &Ext<T, N>, info: &Self::Info, label: Label) -> ControlFlow<()>;
}

#[derive(Clone, Copy, Debug)]
struct Node<T, I, const N: usize> {
    y: Ext<T, N>,
    t: Ext<T, N>,
    info: I,
}

/// The continuation loop shared by all branches.
fn run<T: Real, const N: usize, B: Branch<T, N>>(
    b: &mut B,
    y0: Ext<T, N>,
    dir: Ext<T, N>,
    bounds: &[(usize, T, T)],
    st: &Settings<T>,
) -> Result<Summary, ContinuationError> {
    let n = b.sys().unknowns();
    let t0 = tangent(b.sys(), &y0, &dir).ok_or(ContinuationError::Degenerate)?;
    let info0 = b.info(&y0, &t0);
    b.accepted(&info0);
    let mut cur = Node {
        y: y0,
        t: t0,
        info: info0,
    };
    let mut sum = Summary {
        points: 1,
        special_points: 0,
        stop: Stop::MaxSteps,
    };
    if b.emit(&cur.y, &cur.info, Label::Start).is_break() {
        sum.stop = Stop::Callback;
        return Ok(sum);
    }
    let min_cos = T::from_f64(MIN_TANGENT_COS);
    let mut ds = st.ds;
    let mut steps = 0;
    while steps < st.max_steps {
        let trial = step(b.sys(), &cur.y, &cur.t, ds, st).filter(|(y, t, _)| {
            let pred = cur.y.add_scaled(ds, &cur.t, n);
            cur.t.dot(t, n) >= min_cos && y.sub(&pred, n).norm2(n) <= ds
        });
        let Some((mut y, mut t, iters)) = trial else {
            ds *= T::HALF;
            if ds < st.ds_min {
                return Err(ContinuationError::StepTooSmall {
                    lambda: [cur.y.p[0].to_f64(), cur.y.p[1].to_f64()],
                    steps,
                });
            }
            continue;
        };
        let mut label = Label::Regular;
        if let Some((k, bound, frac)) = crossing(&cur.y, &y, bounds) {
            match land(b.sys(), &cur.y, &cur.t, &y, k, bound, frac, st) {
                Some((yb, tb)) => {
                    y = yb;
                    t = tb;
                    label = Label::End;
                }
                None => {
                    sum.stop = Stop::Bound;
                    return Ok(sum);
                }
            }
        }
        let info = b.info(&y, &t);
        let node = Node { y, t, info };
        if specials(b, &cur, &node, st, &mut sum).is_break() {
            sum.stop = Stop::Callback;
            return Ok(sum);
        }
        b.accepted(&node.info);
        steps += 1;
        sum.points += 1;
        if b.emit(&node.y, &node.info, label).is_break() {
            sum.stop = Stop::Callback;
            return Ok(sum);
        }
        cur = node;
        if label == Label::End {
            sum.stop = Stop::Bound;
            return Ok(sum);
        }
        if iters <= 3 {
            ds = (ds * T::from_f64(GROW)).min(st.ds_max);
        }
    }
    Ok(sum)
}

/// The first bound crossed on the way from `a` to `b` (inside to outside): component, bound
/// value and the fraction of the way where the secant meets it.
fn crossing<T: Real, const N: usize>(
    a: &Ext<T, N>,
    b: &Ext<T, N>,
    bounds: &[(usize, T, T)],
) -> Option<(usize, T, T)> {
    let mut best: Option<(usize, T, T)> = None;
    for &(k, lo, hi) in bounds {
        let (va, vb) = (a.get(k), b.get(k));
        let bound = if vb > hi {
            hi
        } else if vb < lo {
            lo
        } else {
            continue;
        };
        let frac = ((bound - va) / (vb - va)).max(T::ZERO).min(T::ONE);
        if best.is_none_or(|(_, _, f)| frac < f) {
            best = Some((k, bound, frac));
        }
    }
    best
}

/// The curve point with component `k` equal to `bound`, by Newton's method on the system plus
/// `y_k = bound` from the secant estimate, and its tangent.
#[allow(clippy::too_many_arguments)]
fn land<T: Real, const N: usize, S: System<T, N>>(
    s: &mut S,
    y: &Ext<T, N>,
    t: &Ext<T, N>,
    beyond: &Ext<T, N>,
    k: usize,
    bound: T,
    frac: T,
    st: &Settings<T>,
) -> Option<(Ext<T, N>, Ext<T, N>)> {
    let n = s.unknowns();
    let start = y.add_scaled(frac, &beyond.sub(y, n), n);
    let e = Ext::unit(k);
    let (mut yb, _) = newton_sys(s, start, Some((&e, bound)), st.tol, MAX_REFINE).ok()?;
    yb.set(k, bound);
    let tb = tangent(s, &yb, t)?;
    Some((yb, tb))
}

/// A located special point: arclength from the current point, the point, its label.
type Found<T, I, const N: usize> = Option<(T, Node<T, I, N>, Label)>;

/// Detects, locates, refines and emits the special points between `cur` and `next`.
fn specials<T: Real, const N: usize, B: Branch<T, N>>(
    b: &mut B,
    cur: &Node<T, B::Info, N>,
    next: &Node<T, B::Info, N>,
    st: &Settings<T>,
    sum: &mut Summary,
) -> ControlFlow<()> {
    let n = b.sys().unknowns();
    let s_end = cur.t.dot(&next.y.sub(&cur.y, n), n);
    let mut found: [Found<T, B::Info, N>; 2] = [None, None];
    for (k, slot) in found.iter_mut().enumerate() {
        if !B::detect(&cur.info, &next.info, k) {
            continue;
        }
        let mut node = locate(b, cur, next, s_end, k, st);
        if let Some(yr) = b.refine(k, &node.y) {
            let close = yr.sub(&node.y, n).norm_inf(n) <= s_end.abs();
            if close && let Some(tr) = tangent(b.sys(), &yr, &cur.t) {
                let info = b.info(&yr, &tr);
                node = Node { y: yr, t: tr, info };
            }
        }
        let s = cur.t.dot(&node.y.sub(&cur.y, n), n);
        *slot = Some((s, node, B::KINDS[k]));
    }
    if let [Some(a), Some(c)] = &found
        && c.0 < a.0
    {
        found.swap(0, 1);
    }
    for (_, node, label) in found.iter().flatten() {
        sum.points += 1;
        sum.special_points += 1;
        b.emit(&node.y, &node.info, *label)?;
    }
    ControlFlow::Continue(())
}

/// Regula falsi (Illinois variant) on test function `k` along the curve between `cur`
/// (arclength 0) and `next` (arclength `s_end`): each trial is a corrector step of arclength
/// `s` from `cur`. Ends when the bracket is shorter than `tol max(1, |s_end|)`, the test is
/// exactly zero, or a trial fails; returns the bracket end with the smaller `|test|`.
fn locate<T: Real, const N: usize, B: Branch<T, N>>(
    b: &mut B,
    cur: &Node<T, B::Info, N>,
    next: &Node<T, B::Info, N>,
    s_end: T,
    k: usize,
    st: &Settings<T>,
) -> Node<T, B::Info, N> {
    // (arclength, test value used by the secant (halved by Illinois), true test value, node)
    let fa = B::test(&cur.info, k).unwrap_or(f64::NAN);
    let fb = B::test(&next.info, k).unwrap_or(f64::NAN);
    let mut lo = (T::ZERO, fa, fa, *cur);
    let mut hi = (s_end, fb, fb, *next);
    let stol = st.tol * T::ONE.max(s_end.abs());
    let mut last_side = 0_i8;
    for _ in 0..MAX_LOCATE {
        if (hi.0 - lo.0).abs() <= stol || !(lo.1.is_finite() && hi.1.is_finite()) {
            break;
        }
        let (s0, s1) = (lo.0.to_f64(), hi.0.to_f64());
        let mut s = (s0 * hi.1 - s1 * lo.1) / (hi.1 - lo.1);
        let (smin, smax) = (s0.min(s1), s0.max(s1));
        if !(s > smin && s < smax) {
            s = 0.5 * (s0 + s1);
        }
        let s = T::from_f64(s);
        let Some((y, t, _)) = step(b.sys(), &cur.y, &cur.t, s, st) else {
            break;
        };
        let info = b.info(&y, &t);
        let Some(f) = B::test(&info, k) else {
            break;
        };
        let node = Node { y, t, info };
        if f == 0.0 {
            return node;
        }
        if (f < 0.0) == (lo.2 < 0.0) {
            lo = (s, f, f, node);
            if last_side == 1 {
                hi.1 *= 0.5;
            }
            last_side = 1;
        } else {
            hi = (s, f, f, node);
            if last_side == -1 {
                lo.1 *= 0.5;
            }
            last_side = -1;
        }
    }
    if lo.2.abs() <= hi.2.abs() { lo.3 } else { hi.3 }
}

/// Data at a point of an equilibrium branch.
#[derive(Clone, Copy, Debug)]
struct EqInfo<const N: usize> {
    lin: Lin<N>,
    residual: f64,
    t_lambda: f64,
}

struct EqBranch<'a, T, F, E> {
    sys: EqSys<'a, T, F>,
    emit: &'a mut E,
    tol: T,
}

impl<'a, T, const N: usize, F, E> Branch<T, N> for EqBranch<'a, T, F, E>
where
    T: Real,
    F: FnMut(&[T; N], T) -> [T; N],
    E: FnMut(&Point<T, N>) -> ControlFlow<()>,
{
    type Sys = EqSys<'a, T, F>;
    type Info = EqInfo<N>;
    const KINDS: [Label; 2] = [Label::Fold, Label::Hopf];

    fn sys(&mut self) -> &mut Self::Sys {
        &mut self.sys
    }

    fn info(&mut self, y: &Ext<T, N>, t: &Ext<T, N>) -> EqInfo<N> {
        let lam = y.p[0];
        let f = &mut *self.sys.f;
        let fx = f(&y.x, lam);
        let jac = equilibria::jacobian(&mut |x: &[T; N]| f(x, lam), &y.x);
        EqInfo {
            lin: linearize(&jac, self.sys.c.eps_f64),
            residual: norm_inf_arr(&fx),
            t_lambda: t.p[0].to_f64(),
        }
    }

    fn test(info: &EqInfo<N>, k: usize) -> Option<f64> {
        if k == 0 {
            Some(info.t_lambda)
        } else {
            info.lin.hopf
        }
    }

    fn detect(a: &EqInfo<N>, b: &EqInfo<N>, k: usize) -> bool {
        match (Self::test(a, k), Self::test(b, k)) {
            (Some(x), Some(y)) => {
                crossed(x, y) && (k == 0 || a.lin.unstable.abs_diff(b.lin.unstable) >= 2)
            }
            _ => false,
        }
    }

    fn refine(&mut self, k: usize, y: &Ext<T, N>) -> Option<Ext<T, N>> {
        let mut sys = PolishSys {
            f: &mut *self.sys.f,
            c: self.sys.c,
            test: if k == 0 { TestFn::Fold } else { TestFn::Hopf },
        };
        newton_sys(&mut sys, *y, None, self.tol, MAX_REFINE)
            .ok()
            .map(|r| r.0)
    }

    fn accepted(&mut self, _info: &EqInfo<N>) {}

    fn emit(&mut self, y: &Ext<T, N>, info: &EqInfo<N>, label: Label) -> ControlFlow<()> {
        (self.emit)(&Point {
            label,
            x: y.x,
            lambda: y.p[0],
            residual: info.residual,
            eigenvalues: info.lin.eigs,
            kind: info.lin.kind,
            stability: info.lin.stability,
            tests: Tests {
                tangent_lambda: info.t_lambda,
                det: info.lin.det,
                hopf: info.lin.hopf,
            },
        })
    }
}

/// Data at a point of a fold curve.
#[derive(Clone, Copy, Debug)]
struct FoldInfo<T, const N: usize> {
    lin: Lin<N>,
    residual: f64,
    q: [T; N],
    p: [T; N],
    a: f64,
    bt: f64,
}

struct FoldBranch<'a, T, F, E, const N: usize> {
    sys: FoldSys<'a, T, F>,
    emit: &'a mut E,
    /// Unit right and left null vectors at the current point (the borders).
    q: [T; N],
    p: [T; N],
}

impl<'a, T, const N: usize, F, E> Branch<T, N> for FoldBranch<'a, T, F, E, N>
where
    T: Real,
    F: FnMut(&[T; N], T, T) -> [T; N],
    E: FnMut(&FoldCurvePoint<T, N>) -> ControlFlow<()>,
{
    type Sys = FoldSys<'a, T, F>;
    type Info = FoldInfo<T, N>;
    const KINDS: [Label; 2] = [Label::Cusp, Label::BogdanovTakens];

    fn sys(&mut self) -> &mut Self::Sys {
        &mut self.sys
    }

    fn info(&mut self, y: &Ext<T, N>, _t: &Ext<T, N>) -> FoldInfo<T, N> {
        let (l1, l2) = (y.p[0], y.p[1]);
        let c = self.sys.c;
        let f = &mut *self.sys.f;
        let x = y.x;
        let f0 = f(&x, l1, l2);
        let jac = equilibria::jacobian(&mut |x: &[T; N]| f(x, l1, l2), &x);
        let lin = linearize(&jac, c.eps_f64);
        let residual = norm_inf_arr(&f0).max(fold_test(&jac).to_f64().abs());
        let Some((q, p)) = null_vectors_bordered(&jac, &self.q, &self.p, c.eps) else {
            return FoldInfo {
                lin,
                residual,
                q: self.q,
                p: self.p,
                a: f64::NAN,
                bt: f64::NAN,
            };
        };
        // D^2 F(q, q) by the central second difference along q (|q| = 1).
        let h = c.c4 * x.iter().fold(T::ONE, |m, v| m.max(v.abs()));
        let xp: [T; N] = core::array::from_fn(|i| x[i] + h * q[i]);
        let xm: [T; N] = core::array::from_fn(|i| x[i] - h * q[i]);
        let (fp, fm) = (f(&xp, l1, l2), f(&xm, l1, l2));
        let h2 = h * h;
        let a = (0..N).fold(0.0, |s, i| {
            s + p[i].to_f64() * ((fp[i] - T::TWO * f0[i] + fm[i]) / h2).to_f64()
        });
        let bt = (0..N).fold(0.0, |s, i| s + (p[i] * q[i]).to_f64());
        FoldInfo {
            lin,
            residual,
            q,
            p,
            a,
            bt,
        }
    }

    fn test(info: &FoldInfo<T, N>, k: usize) -> Option<f64> {
        let v = if k == 0 { info.a } else { info.bt };
        v.is_finite().then_some(v)
    }

    fn refine(&mut self, _k: usize, _y: &Ext<T, N>) -> Option<Ext<T, N>> {
        None
    }

    fn accepted(&mut self, info: &FoldInfo<T, N>) {
        self.q = info.q;
        self.p = info.p;
    }

    fn emit(&mut self, y: &Ext<T, N>, info: &FoldInfo<T, N>, label: Label) -> ControlFlow<()> {
        (self.emit)(&FoldCurvePoint {
            label,
            x: y.x,
            lambda: y.p,
            residual: info.residual,
            eigenvalues: info.lin.eigs,
            normal_form: info.a,
            bt_test: info.bt,
        })
    }
}
