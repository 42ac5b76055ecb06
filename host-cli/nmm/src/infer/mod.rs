//! Simulation-based inference: neural posterior estimation (NPE) with a conditional masked
//! autoregressive flow, trained on `(theta, x)` pairs from any simulator, with sbi's defaults
//! (REFERENCE section 8), and sampled with the prior's bounds enforced.
//!
//! - [`Prior`]: independent uniform or normal marginals, from a TOML file.
//! - [`train`]: `q(theta | x)` from pairs: theta and x z-scored with the training pairs'
//!   statistics, a MAF of `transforms` MADE blocks (`hidden` wide, tanh) with random
//!   permutations, Adam, gradient clipping, early stopping on a validation split; the weights
//!   with the lowest validation loss are kept.
//! - [`Posterior`]: draws for an observation ([`Posterior::sample`]), log-densities
//!   ([`Posterior::log_prob`]), and the NMMP file ([`mod@file`]).
//!
//! Everything random comes from `Settings::seed` (training) or the sampling seed, and results
//! do not depend on the thread count.

pub mod file;
pub mod maf;
pub mod npe;
pub mod prior;

pub use maf::{Maf, Shape};
pub use npe::{History, Posterior, Samples, Settings, Standardise, train};
pub use prior::{Marginal, Param, Prior};

/// A standard normal draw from `rng` (Box-Muller; two uniforms per draw), as the samplers
/// here use.
pub fn standard_normal(rng: &mut nmm_core::rng::Xoshiro256PlusPlus) -> f64 {
    prior::standard_normal(rng)
}
