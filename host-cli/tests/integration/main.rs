//! The `nmm` binary end to end (one test binary, as ripgrep keeps it): each module runs the
//! commands as a user would and checks their files, printed output, exit codes and errors.

mod bad_input;
mod bifurcation;
mod brain;
mod cli;
mod cli_vs_core;
mod discover;
mod fit;
mod infer;
mod train;
mod util;
