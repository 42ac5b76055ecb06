//! `nmm spiking sweep` (to be written).
use anyhow::Result;
use clap::{ArgMatches, Command};
/// The command.
pub fn command() -> Command {
    Command::new("sweep")
}
/// Runs it.
pub fn run(_m: &ArgMatches) -> Result<()> {
    Ok(())
}
