//! `nmm train`: arguments, the printed summary and the figures over [`nmm::train`].

use crate::figures_train;
use crate::progress::Bar;
use crate::say;
use anyhow::{Context, Result};
use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use nmm::train::{Data, Job, Plan, Report, train};
use std::path::PathBuf;
use std::time::Instant;

/// The `train` command.
pub fn command() -> Command {
    let num = |id: &'static str, name: &'static str, default: &'static str, help: &'static str| {
        Arg::new(id)
            .long(id)
            .value_name(name)
            .default_value(default)
            .help(help)
    };
    Command::new("train")
        .about("Train the compact MLP mean field on spiking-network sweeps (neural ODE on Heun rollouts)")
        .arg(
            Arg::new("data")
                .long("data")
                .value_name("DIR")
                .required(true)
                .action(ArgAction::Append)
                .value_parser(value_parser!(PathBuf))
                .help("Output directory of `nmm spiking sweep` (manifest.csv, run_NNNNNN.npz); repeat for several"),
        )
        .arg(
            Arg::new("out")
                .long("out")
                .value_name("MODEL.nmmw")
                .required(true)
                .value_parser(value_parser!(PathBuf))
                .help("Weight file to write (NMMW format, f32 weights, JSON metadata)"),
        )
        .arg(
            num("seed", "U64", "0", "Seed of the initial weights, the run split and the shuffling; recorded in the model")
                .value_parser(value_parser!(u64)),
        )
        .arg(num("epochs", "E", "100", "Passes over the training windows").value_parser(value_parser!(usize)))
        .arg(num("lr", "LR", "0.003", "Adam learning rate at the first epoch (cosine decay to LR/20 at the last)").value_parser(value_parser!(f64)))
        .arg(num("batch", "B", "256", "Rollout windows per Adam step").value_parser(value_parser!(usize)))
        .arg(num("rollout", "K", "10", "Data intervals (samples of DT) per rollout window").value_parser(value_parser!(usize)))
        .arg(num("substeps", "S", "1", "Heun steps per data interval in the rollouts (step DT/S; the drive interpolated linearly)").value_parser(value_parser!(usize)))
        .arg(num("hidden", "H", "6", "Width of both hidden layers: 6, 16 or 32 (6 -> H -> H -> 2)").value_parser(value_parser!(usize)))
        .arg(num("dt", "DT", "0.1", "Resampling interval (time units; a whole multiple of the data's bin); the Heun step is DT/S").value_parser(value_parser!(f64)))
        .arg(num("val-fraction", "F", "0.2", "Fraction of runs held out for validation (by run, from the seed)").value_parser(value_parser!(f64)))
        .arg(num("v-weight", "LAMBDA", "0.25", "Weight of v's squared error relative to r's (each in units of its spread)").value_parser(value_parser!(f64)))
        .arg(num("rate-floor", "R0", "0", "Emphasise low-rate states: weight r errors by (mean r + R0)/(r_obs + R0) (R0 in 1/time unit, as r; 0: uniform weights)").value_parser(value_parser!(f64)))
        .arg(
            Arg::new("max-runs")
                .long("max-runs")
                .value_name("N")
                .value_parser(value_parser!(usize))
                .help("Use at most N runs (a seeded random subset of all runs found)"),
        )
        .arg(
            Arg::new("plot-dir")
                .long("plot-dir")
                .value_name("DIR")
                .value_parser(value_parser!(PathBuf))
                .help("Write figures here: loss.svg, heldout_1..3.svg (MLP vs network)"),
        )
        .arg(
            Arg::new("init")
                .long("init")
                .value_name("MODEL.nmmw")
                .value_parser(value_parser!(PathBuf))
                .help("Start from this model's weights and normalisation (its width must be --hidden; the normalisation also sets the loss's scales sd_r, sd_v) instead of random weights"),
        )
        .arg(
            num("prior-epochs", "E0", "0", "")
                .help(format!(
                    "Warm start: first fit the network for E0 epochs by regression to MPR's vector field with J -> J p (Delta and tau from the runs' metadata) at the training states, and at copies with eta, J, p moved by up to {}, {}, {} (half the shipped grids' spacing); batches of B (0: no warm start)",
                    nmm::train::JITTER[0], nmm::train::JITTER[1], nmm::train::JITTER[2]
                ))
                .value_parser(value_parser!(usize)),
        )
        .arg(num("jobs", "T", "0", "Threads (0: one per core); results do not depend on it").value_parser(value_parser!(usize)))
}

/// Runs `nmm train`.
pub fn run(m: &ArgMatches) -> Result<()> {
    let started = Instant::now();
    let get_usize = |id: &str| *m.get_one::<usize>(id).expect("default");
    let get_f = |id: &str| *m.get_one::<f64>(id).expect("default");
    let job = Job {
        dirs: m
            .get_many::<PathBuf>("data")
            .map(|v| v.cloned().collect())
            .unwrap_or_default(),
        out: m.get_one::<PathBuf>("out").expect("required").clone(),
        seed: *m.get_one::<u64>("seed").expect("default"),
        epochs: get_usize("epochs"),
        batch: get_usize("batch"),
        steps: get_usize("rollout"),
        substeps: get_usize("substeps"),
        hidden: get_usize("hidden"),
        lr: get_f("lr"),
        dt: get_f("dt"),
        val_fraction: get_f("val-fraction"),
        v_weight: get_f("v-weight"),
        rate_floor: get_f("rate-floor"),
        prior_epochs: get_usize("prior-epochs"),
        init: m.get_one::<PathBuf>("init").cloned(),
        max_runs: m.get_one::<usize>("max-runs").copied(),
    };
    job.check()?;
    let plot_dir = m.get_one::<PathBuf>("plot-dir").cloned();
    if let Some(d) = &plot_dir {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        // The figures are written after the training: check their paths now.
        let mut figs = vec![d.join("loss.svg")];
        figs.extend((1..=nmm::train::PLOT_RUNS).map(|k| d.join(format!("heldout_{k}.svg"))));
        nmm::io::check_outputs(&figs.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(get_usize("jobs"))
        .build()?;
    let bar = Bar::new(
        "{bar:30} {percent:>3}%  epoch {msg}  {elapsed} (eta {eta})",
        "train",
        "batches",
    );
    let data = pool.install(|| Data::load(&job, &bar))?;
    plan(&job, &data.plan(&job));
    let report = pool.install(|| train(&job, &data, &bar))?;
    bar.finish();
    summary(&job, &report, started);
    if let Some(dir) = &plot_dir {
        figures_train::loss_curves(
            &dir.join("loss.svg"),
            "nmm train: loss per epoch",
            &report.train_loss,
            &report.val_loss,
        )?;
        for (k, c) in report.comparisons.iter().enumerate() {
            let title = format!(
                "{} run {}: J = {}, eta = {}, p = {}; rms error r {:.3}, v {:.3}",
                c.which, c.name, c.params[0], c.params[1], c.params[2], c.rms[0], c.rms[1]
            );
            figures_train::mlp_vs_data(
                &dir.join(format!("heldout_{}.svg", k + 1)),
                &title,
                &c.t,
                [&c.data[0], &c.data[1]],
                [&c.model[0], &c.model[1]],
            )?;
        }
        say!("figures in {}", dir.display());
    }
    say!("wrote {}", job.out.display());
    Ok(())
}

fn plan(job: &Job, p: &Plan) {
    let h = job.hidden;
    say!(
        "train: {} runs ({} found), {} for training ({} windows of {} intervals of dt = {}, {} Heun steps each; 6-{h}-{h}-2 network), {} for validation ({} windows); {} batches of {} per epoch",
        p.runs[1] + p.runs[2],
        p.runs[0],
        p.runs[1],
        p.windows[0],
        job.steps,
        job.dt,
        job.substeps,
        p.runs[2],
        p.windows[1],
        p.batches,
        job.batch
    );
}

fn summary(job: &Job, r: &Report, started: Instant) {
    if let Some(w) = r.prior {
        say!(
            "train: warm start on MPR with J -> J p (Delta = {}, tau = {}): {} samples, {} epochs in {:.1} s, loss {:.3e}",
            w.delta,
            w.tau,
            w.samples,
            job.prior_epochs,
            w.seconds,
            w.loss
        );
    }
    let [final_train, final_val] = r.final_loss;
    let val_text = if final_val.is_finite() {
        format!("{final_val:.4e}")
    } else {
        "-".into()
    };
    say!(
        "train: {} epochs in {:.1} s ({:.2} s/epoch; {:.1} s in all); best epoch {}; final loss train {final_train:.4e}, validation {val_text}{}",
        job.epochs,
        r.fit_seconds,
        r.fit_seconds / job.epochs as f64,
        started.elapsed().as_secs_f64(),
        r.best_epoch,
        if r.skipped > 0 {
            format!("; {} non-finite batches skipped", r.skipped)
        } else {
            String::new()
        }
    );
}
