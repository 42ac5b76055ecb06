//! One module per command: parse the arguments, call the library, write, print and plot.

pub mod bifurcation;
pub mod bold;
pub mod brain;
pub mod discover;
pub mod fit;
pub mod fixed_points;
pub mod infer;
pub mod mf;
pub mod spiking;
pub mod sweep;
pub mod train;
