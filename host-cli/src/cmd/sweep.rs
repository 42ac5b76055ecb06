//! `nmm spiking sweep`: arguments and printing over [`nmm::sweep`].

use crate::progress::Bar;
use crate::say;
use anyhow::{Result, bail};
use clap::{Arg, ArgMatches, Command, value_parser};
use nmm::sweep::{Sweep, parse_shard, slurm_shard};
use std::path::PathBuf;

/// The `sweep` command.
pub fn command() -> Command {
    Command::new("sweep")
        .about("Run a parameter grid of networks (J x eta x p x seeds x stimulus seeds): resumable, shardable")
        .arg(
            Arg::new("grid")
                .long("grid")
                .value_name("GRID.toml")
                .required(true)
                .value_parser(value_parser!(PathBuf))
                .help("Grid configuration (see `nmm spiking sweep --help` and the README)"),
        )
        .arg(
            Arg::new("out")
                .long("out")
                .value_name("DIR")
                .required(true)
                .value_parser(value_parser!(PathBuf))
                .help("Output directory: run_NNNNNN.npz files, manifest.csv, grid.toml"),
        )
        .arg(Arg::new("shard").long("shard").value_name("K/N").help(
            "Run only shard K of N (runs i with i mod N = K-1); default: from SLURM_ARRAY_TASK_ID/MIN/STEP/COUNT when set, else everything",
        ))
        .arg(
            Arg::new("jobs")
                .long("jobs")
                .value_parser(value_parser!(u64))
                .default_value("0")
                .help("Runs in parallel, one thread each (0: one per core)"),
        )
}

/// Runs `sweep`.
pub fn run(m: &ArgMatches) -> Result<()> {
    let path = m.get_one::<PathBuf>("grid").expect("required");
    let dir = m.get_one::<PathBuf>("out").expect("required");
    let shard = match m.get_one::<String>("shard") {
        Some(s) => Some(parse_shard(s)?),
        None => slurm_shard(|k| std::env::var(k).ok())?,
    };
    let (k, n) = shard.unwrap_or((1, 1));
    let sweep = Sweep::prepare(path, dir, (k, n))?;
    say!(
        "sweep: {} runs in the grid, {} in shard {k}/{n}, {} already done, {} to run",
        sweep.runs.len(),
        sweep.mine.len(),
        sweep.mine.len() - sweep.todo.len(),
        sweep.todo.len()
    );
    let bar = Bar::new(
        "{bar:40} {pos}/{len} runs  {elapsed} (eta {eta})  {msg}",
        "sweep",
        "runs",
    );
    let jobs = *m.get_one::<u64>("jobs").expect("default") as usize;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let failed = pool.install(|| sweep.execute(&bar))?;
    bar.finish();
    if !failed.is_empty() {
        let ids: Vec<usize> = failed.iter().map(|f| f.run.id).collect();
        bail!(
            "{} of {} runs failed (ids {ids:?}; reasons above, in run_NNNNNN.error and in \
             manifest.csv); fix the cause and rerun the same command to retry them",
            failed.len(),
            sweep.todo.len(),
        );
    }
    say!(
        "sweep: done; {} files in {}",
        sweep.mine.len(),
        dir.display()
    );
    Ok(())
}
