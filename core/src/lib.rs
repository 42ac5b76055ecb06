//! # nmm-core
//!
//! The numerical core of nmm: `#![no_std]`, no `alloc`, every kernel on fixed-size arrays or
//! caller-owned slices, generic over one scalar trait ([`Real`]) implemented for `f32` and
//! `f64`. The same code runs in the `nmm` command-line tool, in Cortex-M4F firmware and in a
//! WASM module.
//!
//! - [`real`]: the scalar trait.
//! - [`dual`]: forward-mode dual numbers (a `Real` with `N` derivatives) for gradients.
//! - [`lanes`]: `L` simulations in one `Real` (lane-wise arithmetic) for batched runs.
//! - [`integrate`]: Euler, Heun, RK4; Euler-Maruyama and stochastic Heun (additive noise).
//! - [`rng`]: xoshiro256++ streams and Gaussian draws.
//! - [`models`]: MPR, Chen-Campbell, reduced Wong-Wang (Deco 2014, Griffiths 2022).
//! - [`sim`]: single-node runs on a time grid with a drive and noise.
//! - [`spiking`]: QIF and Izhikevich single-neuron updates and Lorentzian heterogeneity.
//! - [`stim`]: constant, step, sine and coloured-noise drives.
//! - [`bold`]: Balloon-Windkessel BOLD with three parameter presets, and a TR monitor.
//! - [`fc`]: streaming mean, covariance, Pearson FC and FCD in caller buffers.
//! - [`equilibria`]: fixed points, Jacobians, eigenvalues and stability of small systems.
//! - [`mlp`]: the compact MLP mean field, its NMMW weight file and fixed-point evaluation.
//! - [`continuation`]: pseudo-arclength continuation of equilibria (folds, Hopf points) and
//!   of fold curves in two parameters (cusps, Bogdanov-Takens points).
//! - [`brain`]: whole-brain networks of mean-field nodes with delays and noise.
//! - [`connectome`]: connectome normalisations and a built-in synthetic connectome.
//! - [`realtime`]: one node stepped at a fixed tick with a PI controller, and the golden
//!   scenarios that host, firmware and WASM must reproduce bit for bit.
//!
//! ```
//! use nmm_core::{Model, integrate::OdeMethod, models::Mpr};
//! let m = Mpr::<f64>::default();
//! let mut x = m.initial_state();
//! for k in 0..1000 {
//!     let t = k as f64 * 0.01;
//!     x = OdeMethod::Rk4.step(&mut |_t, x: &[f64; 2]| m.deriv(x, 3.0), t, &x, 0.01);
//! }
//! assert!(x[0] > 0.5); // the drive I = 3 pushes MPR to its high-activity focus
//! ```
#![no_std]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod bold;
pub mod brain;
pub mod connectome;
pub mod continuation;
pub mod dual;
pub mod equilibria;
pub mod fc;
pub mod integrate;
pub mod lanes;
pub mod mlp;
pub mod models;
pub mod real;
pub mod realtime;
pub mod rng;
pub mod sim;
pub mod spiking;
pub mod stim;
pub mod vecmath;
mod ziggurat;

pub use models::{Model, ParamError, ParamSpec};
pub use real::Real;
