//! The command line: every command and the arguments they share.

use crate::cmd;
use anyhow::Result;
use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use std::ffi::OsString;

/// The full command-line interface.
pub fn cli() -> Command {
    Command::new("nmm")
        .version(nmm::VERSION)
        .about("Mean-field neural models: exact and learned mean fields, BOLD, FC")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(cmd::mf::command())
        .subcommand(cmd::bold::command())
        .subcommand(cmd::fixed_points::command())
        .subcommand(cmd::spiking::command())
        .subcommand(cmd::brain::command())
        .subcommand(cmd::bifurcation::command())
        .subcommand(cmd::train::command())
        .subcommand(cmd::discover::command())
        .subcommand(cmd::infer::command())
        .subcommand(cmd::fit::command())
}

/// Parses `args` (including the program name) and runs the chosen command.
///
/// Argument errors, help and version requests come back as `clap::Error` inside the
/// `anyhow::Error` so that `main` can print them with clap's formatting and exit codes.
pub fn run<I, S>(args: I) -> Result<()>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString> + Clone,
{
    let matches = cli().try_get_matches_from(args)?;
    match matches.subcommand() {
        Some(("mf", m)) => cmd::mf::run(m),
        Some(("bold", m)) => cmd::bold::run(m),
        Some(("fixed-points", m)) => cmd::fixed_points::run(m),
        Some(("spiking", m)) => cmd::spiking::run(m),
        Some(("brain", m)) => cmd::brain::run(m),
        Some(("bifurcation", m)) => cmd::bifurcation::run(m),
        Some(("train", m)) => cmd::train::run(m),
        Some(("discover", m)) => cmd::discover::run(m),
        Some(("infer", m)) => cmd::infer::run(m),
        Some(("fit", m)) => cmd::fit::run(m),
        _ => unreachable!("clap requires a subcommand"),
    }
}

/// `--seed`: shared by every command that draws random numbers.
pub(crate) fn seed_arg() -> Arg {
    Arg::new("seed")
        .long("seed")
        .value_name("U64")
        .value_parser(value_parser!(u64))
        .default_value("0")
        .help("Seed of every random draw (noise, stimulus); recorded in the output")
}

/// `--out FILE`.
pub(crate) fn out_arg(help: &'static str) -> Arg {
    Arg::new("out")
        .long("out")
        .value_name("FILE")
        .value_parser(value_parser!(std::path::PathBuf))
        .help(help)
}

/// A flag that takes one float, accepting negative numbers (`--eta -5`).
pub(crate) fn float_arg(id: &'static str, help: String) -> Arg {
    Arg::new(id)
        .long(id)
        .value_name("VALUE")
        .allow_negative_numbers(true)
        .value_parser(value_parser!(f64))
        .action(ArgAction::Set)
        .help(help)
}

/// Checks, before any work, the output paths given by the flags `ids` that are present
/// ([`nmm::io::check_outputs`]).
pub(crate) fn check_outputs(m: &ArgMatches, ids: &[&str]) -> Result<()> {
    let outs: Vec<&std::path::Path> = ids
        .iter()
        .filter_map(|id| m.get_one::<std::path::PathBuf>(id).map(|p| p.as_path()))
        .collect();
    Ok(nmm::io::check_outputs(&outs)?)
}

/// Value of an optional float flag.
pub(crate) fn get_f64(m: &ArgMatches, id: &str) -> Option<f64> {
    m.get_one::<f64>(id).copied()
}
