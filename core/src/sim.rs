//! Single-node simulation: a model, a drive and (optionally) its noise, integrated on a fixed
//! grid, with every `every`-th state handed to the caller. Hosts store or stream what they get.
//!
//! Noise: when the model's [`Model::diffusion`] is non-zero the run is an SDE with additive
//! noise, stepped by Euler-Maruyama (`Stepper::Euler`) or stochastic Heun (`Stepper::Heun`);
//! its normal draws come from the caller's [`Gaussian`] stream, so a seed reproduces the run.
//!
//! ```
//! use nmm_core::{Model, models::Mpr, rng::Gaussian, sim::{simulate, Grid}, stim::Stimulus};
//! use nmm_core::integrate::OdeMethod;
//! let m = Mpr::<f64>::default();
//! let mut stim = Stimulus::<f64, 1>::new("step:3:0:30".parse().unwrap(), 0, 0.0);
//! let grid = Grid { t0: 0.0, dt: 0.01, steps: 3000, every: 100 };
//! let mut samples = 0;
//! let end = simulate(&m, m.initial_state(), &mut stim, &mut Gaussian::new(0, 1), OdeMethod::Heun, grid,
//!                    |_t, _x, _i| samples += 1).unwrap();
//! assert_eq!(samples, 31); // t = 0, 1, ..., 30
//! assert!(end[0] > 0.5);   // the drive moved MPR to its high-activity state
//! ```

use crate::integrate::{OdeMethod, SdeMethod};
use crate::models::Model;
use crate::real::{Real, all_finite};
use crate::rng::Gaussian;
use crate::stim::Stimulus;
use core::fmt;

/// A uniform time grid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid<T> {
    /// Start time.
    pub t0: T,
    /// Step.
    pub dt: T,
    /// Number of steps.
    pub steps: usize,
    /// Hand every `every`-th state to the sink (the initial state is always handed over).
    pub every: usize,
}

impl<T: Real> Grid<T> {
    /// Number of samples the sink receives: `1 + steps / every`.
    pub fn samples(&self) -> usize {
        1 + self.steps / self.every.max(1)
    }
}

/// The state became NaN or infinite (the step is too large, or the model diverges).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Diverged {
    /// Time of the last finite state.
    pub t: f64,
    /// Index of the first non-finite variable.
    pub var: usize,
}

impl fmt::Display for Diverged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the state became non-finite after t = {} (variable {}); reduce the step or check the parameters",
            self.t, self.var
        )
    }
}

impl core::error::Error for Diverged {}

/// Why a simulation stopped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SimError {
    /// The state became non-finite.
    Diverged(Diverged),
    /// RK4 was asked for a model with noise (only Euler-Maruyama and stochastic Heun apply).
    NoStochasticRk4,
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Diverged(d) => d.fmt(f),
            SimError::NoStochasticRk4 => f.write_str(
                "rk4 is not available for a model with noise: use euler (Euler-Maruyama) or heun (stochastic Heun), or set the noise to 0",
            ),
        }
    }
}

impl core::error::Error for SimError {}

/// Integrates `model` from `x0` on `grid` with input `stim(t)`. The sink receives
/// `(t, state, input at t)` at the start and after every `grid.every` steps. Noise (if the model
/// has any) is drawn from `noise`. `method` picks Euler, Heun or RK4 for a deterministic model;
/// with noise, Euler means Euler-Maruyama and Heun stochastic Heun, and RK4 is an error
/// ([`SimError::NoStochasticRk4`]) rather than a silent change of method.
pub fn simulate<T, M, const N: usize, const NT: usize, S>(
    model: &M,
    x0: [T; N],
    stim: &mut Stimulus<T, NT>,
    noise: &mut Gaussian<T>,
    method: OdeMethod,
    grid: Grid<T>,
    mut sink: S,
) -> Result<[T; N], SimError>
where
    T: Real,
    M: Model<T, N>,
    S: FnMut(T, &[T; N], T),
{
    let sigma = model.diffusion();
    let noisy = sigma.iter().any(|s| *s != T::ZERO);
    let sde = match method {
        OdeMethod::Euler => SdeMethod::EulerMaruyama,
        OdeMethod::Heun => SdeMethod::Heun,
        OdeMethod::Rk4 if noisy => return Err(SimError::NoStochasticRk4),
        OdeMethod::Rk4 => SdeMethod::Heun, // unused: deterministic runs use `method`
    };
    let every = grid.every.max(1);
    let mut x = x0;
    sink(grid.t0, &x, stim.value(grid.t0));
    for k in 0..grid.steps {
        let t = grid.t0 + T::from_usize(k) * grid.dt;
        let f = &mut |t: T, x: &[T; N]| model.deriv(x, stim.value(t));
        let next = if noisy {
            let z: [T; N] = noise.array();
            sde.step_in(f, t, &x, grid.dt, &sigma, &z, &|x| model.project(x))
        } else {
            method.step(f, t, &x, grid.dt)
        };
        if !all_finite(&next) {
            let var = next.iter().position(|v| !v.is_finite()).unwrap_or(0);
            return Err(SimError::Diverged(Diverged { t: t.to_f64(), var }));
        }
        x = next;
        if (k + 1) % every == 0 {
            let t1 = grid.t0 + T::from_usize(k + 1) * grid.dt;
            sink(t1, &x, stim.value(t1));
        }
    }
    Ok(x)
}
