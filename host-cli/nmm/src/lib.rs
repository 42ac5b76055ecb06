//! # nmm: the engines behind the `nmm` tool
//!
//! What a Rust user calls to go from spiking networks to whole-brain BOLD: the spiking-network
//! simulator ([`network`], [`spiking`]), grids of network runs that shard and resume
//! ([`sweep`]), the trainer of the compact MLP mean field ([`train`]), single nodes
//! ([`mf`]), equilibria and continuation drivers ([`fixed_points`], [`bifurcation`]),
//! whole-brain runs with BOLD, FC, FCD and their features ([`brain`]), gradient fits of
//! whole-brain parameters to an empirical FC ([`fit`]), BOLD of any series ([`bold`]),
//! connectomes ([`connectome`]), neural posterior estimation ([`infer`]), closed-form
//! corrections discovered from sparse networks ([`discover`]) and the file formats
//! ([`io`]).
//!
//! Every numerical kernel lives in the `no_std` core ([`nmm_core`]); this crate holds what
//! needs the heap, threads or files. It never prints: long jobs report through a
//! [`Progress`], and failures are an [`Error`] whose variants tell bad input from divergence,
//! resource limits and I/O. It depends on none of the command line's crates (clap, indicatif,
//! plotters).
//!
//! ```
//! // A whole-brain run on a small built-in connectome, without delays, and its features.
//! let mut cfg = nmm::brain::Config::default();
//! cfg.connectome.path = "builtin:4".into();
//! cfg.connectome.delays = false;
//! cfg.duration_ms = 4000.0;
//! cfg.bold.tr_ms = 100.0;
//! cfg.fc.transient_ms = 500.0;
//! let prepared = nmm::brain::Prepared::new(cfg)?;
//! let out = nmm::brain::run(&prepared, &nmm::progress::Silent)?;
//! assert_eq!(out.fc.dim(), (4, 4));
//! let features = nmm::brain::features(&prepared, &out)?;
//! assert!(features.iter().all(|(_, v)| v.is_finite()));
//! # Ok::<(), nmm::Error>(())
//! ```
#![deny(missing_docs)]

pub mod bifurcation;
pub mod bold;
pub mod brain;
pub mod connectome;
pub mod discover;
pub mod error;
pub mod fit;
pub mod fixed_points;
pub mod infer;
pub mod io;
pub mod mf;
pub mod models;
pub mod network;
pub mod progress;
pub mod spiking;
pub mod stats;
pub mod sweep;
pub mod train;

pub use error::{Error, Result};
pub use progress::Progress;

/// nmm's version, recorded in every output.
///
/// ```
/// assert!(!nmm::VERSION.is_empty());
/// ```
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The command line of this process, as recorded in outputs' metadata.
///
/// ```
/// assert!(!nmm::command_line().is_empty());
/// ```
pub fn command_line() -> String {
    // `args_os`: an argument that is not UTF-8 (a file name) is shown lossily, not a panic.
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
