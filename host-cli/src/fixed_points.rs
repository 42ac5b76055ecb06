//! `nmm fixed-points` (to be written).
use anyhow::Result; use clap::{ArgMatches, Command};
/// The command.
pub fn command() -> Command { Command::new("fixed-points") }
/// Runs it.
pub fn run(_m: &ArgMatches) -> Result<()> { Ok(()) }
