//! Fixed-size ODE and SDE steppers.
//!
//! Every stepper maps `(t, x)` to the state one step `dt` later, for a state `[T; N]` whose size
//! the type carries. The vector field is any `FnMut(t, &x) -> dx/dt`, so a model, its input and
//! its coupling are closed over by the caller. Scratch stages live on the stack; nothing
//! allocates, nothing is cloned beyond the `N`-element stage arrays.
//!
//! SDEs have additive noise, `dx = f(t, x) dt + sigma dW`, with `sigma` per state variable
//! and the caller's standard-normal draws `z` (so `dW = sqrt(dt) z`). The caller owns the RNG;
//! runs are reproducible from a seed and identical on every target.
//!
//! Orders (tested in `tests/convergence.rs`): Euler 1, Heun 2, RK4 4; strong order for additive
//! noise: Euler-Maruyama 1, stochastic Heun 1 (weak order 2; with `sigma = 0` it is Heun).
//!
//! ```
//! use nmm_core::integrate::{OdeMethod, rk4};
//! // dx/dt = -x from x = 1: after t = 1, x = e^-1.
//! let mut x = [1.0_f64];
//! let dt = 0.01;
//! for k in 0..100 {
//!     x = rk4(&mut |_t, x: &[f64; 1]| [-x[0]], k as f64 * dt, &x, dt);
//! }
//! assert!((x[0] - (-1.0_f64).exp()).abs() < 1e-9);
//! assert_eq!(OdeMethod::Rk4.order(), 4);
//! ```

use crate::real::{Real, axpy};
use core::fmt;
use core::str::FromStr;

/// One explicit Euler step.
#[inline]
pub fn euler<T: Real, const N: usize, F>(f: &mut F, t: T, x: &[T; N], dt: T) -> [T; N]
where
    F: FnMut(T, &[T; N]) -> [T; N],
{
    axpy(x, dt, &f(t, x))
}

/// One step of Heun's method (explicit trapezoidal rule, RK2).
#[inline]
pub fn heun<T: Real, const N: usize, F>(f: &mut F, t: T, x: &[T; N], dt: T) -> [T; N]
where
    F: FnMut(T, &[T; N]) -> [T; N],
{
    let k1 = f(t, x);
    let xp = axpy(x, dt, &k1);
    let k2 = f(t + dt, &xp);
    let h = dt * T::HALF;
    core::array::from_fn(|i| x[i] + h * (k1[i] + k2[i]))
}

/// One step of the classical fourth-order Runge-Kutta method.
#[inline]
pub fn rk4<T: Real, const N: usize, F>(f: &mut F, t: T, x: &[T; N], dt: T) -> [T; N]
where
    F: FnMut(T, &[T; N]) -> [T; N],
{
    let h2 = dt * T::HALF;
    let k1 = f(t, x);
    let k2 = f(t + h2, &axpy(x, h2, &k1));
    let k3 = f(t + h2, &axpy(x, h2, &k2));
    let k4 = f(t + dt, &axpy(x, dt, &k3));
    let s = dt / T::from_f64(6.0);
    core::array::from_fn(|i| x[i] + s * (k1[i] + T::TWO * (k2[i] + k3[i]) + k4[i]))
}

/// One Euler-Maruyama step for additive noise: `x + f dt + sigma sqrt(dt) z`.
#[inline]
pub fn euler_maruyama<T: Real, const N: usize, F>(
    f: &mut F,
    t: T,
    x: &[T; N],
    dt: T,
    sigma: &[T; N],
    z: &[T; N],
) -> [T; N]
where
    F: FnMut(T, &[T; N]) -> [T; N],
{
    euler_maruyama_in(f, t, x, dt, sigma, z, &|x| x)
}

/// [`euler_maruyama`] followed by a projection onto the model's domain
/// ([`crate::Model::project`]).
#[inline]
pub fn euler_maruyama_in<T: Real, const N: usize, F, P>(
    f: &mut F,
    t: T,
    x: &[T; N],
    dt: T,
    sigma: &[T; N],
    z: &[T; N],
    project: &P,
) -> [T; N]
where
    F: FnMut(T, &[T; N]) -> [T; N],
    P: Fn([T; N]) -> [T; N],
{
    let d = f(t, x);
    let sq = dt.sqrt();
    project(core::array::from_fn(|i| {
        x[i] + dt * d[i] + sigma[i] * sq * z[i]
    }))
}

/// One stochastic Heun step for additive noise; the same increment enters predictor and corrector.
#[inline]
pub fn stochastic_heun<T: Real, const N: usize, F>(
    f: &mut F,
    t: T,
    x: &[T; N],
    dt: T,
    sigma: &[T; N],
    z: &[T; N],
) -> [T; N]
where
    F: FnMut(T, &[T; N]) -> [T; N],
{
    stochastic_heun_in(f, t, x, dt, sigma, z, &|x| x)
}

/// [`stochastic_heun`] with predictor and corrector projected onto the model's domain
/// ([`crate::Model::project`]), as TVB applies state-variable boundaries after each stage.
///
/// The network stepper in [`crate::brain`] performs exactly these operations in this order, so a
/// network node without coupling reproduces a single-node run bit for bit.
#[inline]
pub fn stochastic_heun_in<T: Real, const N: usize, F, P>(
    f: &mut F,
    t: T,
    x: &[T; N],
    dt: T,
    sigma: &[T; N],
    z: &[T; N],
    project: &P,
) -> [T; N]
where
    F: FnMut(T, &[T; N]) -> [T; N],
    P: Fn([T; N]) -> [T; N],
{
    let sq = dt.sqrt();
    let dw: [T; N] = core::array::from_fn(|i| sigma[i] * sq * z[i]);
    let k1 = f(t, x);
    let xp = project(core::array::from_fn(|i| x[i] + dt * k1[i] + dw[i]));
    let k2 = f(t + dt, &xp);
    let h = dt * T::HALF;
    project(core::array::from_fn(|i| x[i] + h * (k1[i] + k2[i]) + dw[i]))
}

/// Choice of ODE stepper, for hosts that pick it at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OdeMethod {
    /// Explicit Euler, order 1.
    Euler,
    /// Heun (RK2), order 2.
    #[default]
    Heun,
    /// Classical Runge-Kutta, order 4.
    Rk4,
}

impl OdeMethod {
    /// All methods, in order of increasing accuracy.
    pub const ALL: [OdeMethod; 3] = [OdeMethod::Euler, OdeMethod::Heun, OdeMethod::Rk4];

    /// Global order of accuracy.
    pub const fn order(self) -> u32 {
        match self {
            OdeMethod::Euler => 1,
            OdeMethod::Heun => 2,
            OdeMethod::Rk4 => 4,
        }
    }

    /// Name as used on the command line (`euler`, `heun`, `rk4`).
    pub const fn name(self) -> &'static str {
        match self {
            OdeMethod::Euler => "euler",
            OdeMethod::Heun => "heun",
            OdeMethod::Rk4 => "rk4",
        }
    }

    /// One step of this method.
    #[inline]
    pub fn step<T: Real, const N: usize, F>(self, f: &mut F, t: T, x: &[T; N], dt: T) -> [T; N]
    where
        F: FnMut(T, &[T; N]) -> [T; N],
    {
        match self {
            OdeMethod::Euler => euler(f, t, x, dt),
            OdeMethod::Heun => heun(f, t, x, dt),
            OdeMethod::Rk4 => rk4(f, t, x, dt),
        }
    }
}

/// Choice of SDE stepper for additive noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SdeMethod {
    /// Euler-Maruyama, strong order 1 for additive noise.
    EulerMaruyama,
    /// Stochastic Heun, strong order 1, and order 2 in the drift.
    #[default]
    Heun,
}

impl SdeMethod {
    /// Name as used on the command line (`euler`, `heun`).
    pub const fn name(self) -> &'static str {
        match self {
            SdeMethod::EulerMaruyama => "euler",
            SdeMethod::Heun => "heun",
        }
    }

    /// One step of this method with the caller's standard-normal draws `z`.
    #[inline]
    pub fn step<T: Real, const N: usize, F>(
        self,
        f: &mut F,
        t: T,
        x: &[T; N],
        dt: T,
        sigma: &[T; N],
        z: &[T; N],
    ) -> [T; N]
    where
        F: FnMut(T, &[T; N]) -> [T; N],
    {
        self.step_in(f, t, x, dt, sigma, z, &|x| x)
    }

    /// [`SdeMethod::step`] with each stage projected onto a model's domain
    /// ([`crate::Model::project`]).
    #[inline]
    #[allow(clippy::too_many_arguments)] // the step's inputs, as in `step`, plus the projection
    pub fn step_in<T: Real, const N: usize, F, P>(
        self,
        f: &mut F,
        t: T,
        x: &[T; N],
        dt: T,
        sigma: &[T; N],
        z: &[T; N],
        project: &P,
    ) -> [T; N]
    where
        F: FnMut(T, &[T; N]) -> [T; N],
        P: Fn([T; N]) -> [T; N],
    {
        match self {
            SdeMethod::EulerMaruyama => euler_maruyama_in(f, t, x, dt, sigma, z, project),
            SdeMethod::Heun => stochastic_heun_in(f, t, x, dt, sigma, z, project),
        }
    }
}

/// An integrator name that is not one of `euler`, `heun`, `rk4`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownMethod;

impl fmt::Display for UnknownMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown integrator (expected one of: euler, heun, rk4)")
    }
}

impl core::error::Error for UnknownMethod {}

impl FromStr for OdeMethod {
    type Err = UnknownMethod;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "euler" => Ok(OdeMethod::Euler),
            "heun" | "rk2" => Ok(OdeMethod::Heun),
            "rk4" => Ok(OdeMethod::Rk4),
            _ => Err(UnknownMethod),
        }
    }
}

impl fmt::Display for OdeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Number of steps of size `dt` that cover `[t0, t_end]`, or `None` if the span or step is
/// not positive and finite or the count would not fit in `usize`.
///
/// The count is rounded to the nearest integer so that `t_end - t0 = 30, dt = 0.1` gives 300
/// steps despite rounding in `30 / 0.1`.
pub fn step_count(t0: f64, t_end: f64, dt: f64) -> Option<usize> {
    let span = t_end - t0;
    if !(span.is_finite() && dt.is_finite() && span > 0.0 && dt > 0.0) {
        return None;
    }
    let n = libm::round(span / dt);
    if !(1.0..=1e15).contains(&n) {
        return None;
    }
    Some(n as usize)
}
