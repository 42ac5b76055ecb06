//! `nmm discover`: arguments and the printed equations over [`nmm::discover`].

use crate::progress::Bar;
use crate::say;
use anyhow::Result;
use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use nmm::discover::{Base, ClosedForm, Job, discover, equations};
use std::path::PathBuf;
use std::time::Instant;

/// The `discover` command.
pub fn command() -> Command {
    let num = |id: &'static str, name: &'static str, default: &'static str, help: &'static str| {
        Arg::new(id)
            .long(id)
            .value_name(name)
            .default_value(default)
            .help(help)
    };
    Command::new("discover")
        .about("Discover a closed-form correction to MPR or Chen-Campbell for sparse networks (UDE + STLSQ)")
        .arg(
            Arg::new("data")
                .long("data")
                .value_name("DIR")
                .required(true)
                .action(ArgAction::Append)
                .value_parser(value_parser!(PathBuf))
                .help("Output directory of `nmm spiking sweep` (QIF runs for mpr, Izhikevich runs for cc); repeat for several"),
        )
        .arg(
            Arg::new("base")
                .long("base")
                .value_parser(["mpr", "cc"])
                .default_value("mpr")
                .help("The exact mean field kept untouched: mpr (QIF networks) or cc (Chen-Campbell, Izhikevich networks)"),
        )
        .arg(
            Arg::new("out")
                .long("out")
                .value_name("MODEL.toml")
                .required(true)
                .value_parser(value_parser!(PathBuf))
                .help("The discovered model (TOML, format nmm-discovered v1); load it with `nmm mf corrected --model` (the closed form) or `nmm mf ude --model` (the trained network, with --epochs)"),
        )
        .arg(num("dt", "DT", "0.05", "Sample interval of the fitted data (time units; block means of the runs' bins, a whole multiple of them)").value_parser(value_parser!(f64)))
        .arg(
            Arg::new("threshold")
                .long("threshold")
                .value_name("T")
                .value_parser(value_parser!(f64))
                .help("STLSQ threshold, as a fraction of each equation's rms dx/dt (default: chosen by cross-validation over runs, one-standard-error rule)"),
        )
        .arg(num("alpha", "A", "0.05", "STLSQ ridge on the Gram matrix of unit-rms library columns (pysindy's default 0.05)").value_parser(value_parser!(f64)))
        .arg(num("folds", "K", "5", "Cross-validation folds (whole runs per fold)").value_parser(value_parser!(usize)))
        .arg(num("cv-tolerance", "D", "0.02", "Keep the sparsest fit whose held-out R^2 is within D of the best (or within one standard error over folds, if larger)").value_parser(value_parser!(f64)))
        .arg(num("epochs", "E", "0", "Epochs of the universal differential equation (the base field + an MLP term); 0 fits the library to the data's derivatives only").value_parser(value_parser!(usize)))
        .arg(num("hidden", "H", "6", "Hidden width of the UDE's network term: 6, 16 or 32").value_parser(value_parser!(usize)))
        .arg(num("lr", "LR", "0.003", "Adam learning rate of the UDE (cosine decay)").value_parser(value_parser!(f64)))
        .arg(num("rollout", "K", "20", "Data intervals per UDE rollout window").value_parser(value_parser!(usize)))
        .arg(num("substeps", "S", "4", "Heun steps per data interval in the UDE's rollouts (MPR's fast high-rate focus needs steps of about 0.02 time units)").value_parser(value_parser!(usize)))
        .arg(num("batch", "B", "256", "UDE rollout windows per Adam step").value_parser(value_parser!(usize)))
        .arg(num("val-fraction", "F", "0.2", "Fraction of runs held out to validate the UDE").value_parser(value_parser!(f64)))
        .arg(
            Arg::new("network-from")
                .long("network-from")
                .value_name("MODEL.toml")
                .value_parser(value_parser!(PathBuf))
                .conflicts_with("epochs")
                .help("Fit the closed form to the trained network of an earlier model file (same base and runs) instead of training one: another --threshold without retraining (the training flags --hidden, --lr, --rollout, --substeps, --batch and --val-fraction are then unused; --seed sets the cross-validation folds)"),
        )
        .arg(
            Arg::new("network-only")
                .long("network-only")
                .action(ArgAction::SetTrue)
                .help("Train the network as the whole field (the data-driven MLP mean field, no known part); the closed form is then fitted to network minus base. `nmm mf ude --model` runs the network"),
        )
        .arg(num("seed", "U64", "1", "Seed of the UDE's weights, run split and shuffling; recorded in the model").value_parser(value_parser!(u64)))
        .arg(num("jobs", "T", "0", "Threads (0: one per core); results do not depend on it").value_parser(value_parser!(usize)))
}

/// Runs `nmm discover`.
pub fn run(m: &ArgMatches) -> Result<()> {
    let started = Instant::now();
    let get_usize = |id: &str| *m.get_one::<usize>(id).expect("default");
    let get_f = |id: &str| *m.get_one::<f64>(id).expect("default");
    let base: Base = m.get_one::<String>("base").expect("default").parse()?;
    let job = Job {
        dirs: m
            .get_many::<PathBuf>("data")
            .map(|v| v.cloned().collect())
            .unwrap_or_default(),
        base,
        dt: get_f("dt"),
        threshold: m.get_one::<f64>("threshold").copied(),
        alpha: get_f("alpha"),
        folds: get_usize("folds"),
        cv_tolerance: get_f("cv-tolerance"),
        epochs: get_usize("epochs"),
        hidden: get_usize("hidden"),
        lr: get_f("lr"),
        rollout: get_usize("rollout"),
        substeps: get_usize("substeps"),
        batch: get_usize("batch"),
        val_fraction: get_f("val-fraction"),
        known: !m.get_flag("network-only"),
        network_from: m.get_one::<PathBuf>("network-from").cloned(),
        seed: *m.get_one::<u64>("seed").expect("default"),
    };
    job.check()?;
    let out = m.get_one::<PathBuf>("out").expect("required");
    nmm::io::check_outputs(&[out.as_path()])?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(get_usize("jobs"))
        .build()?;
    let bar = Bar::new(
        "{bar:30} {percent:>3}%  UDE epoch {msg}  {elapsed} (eta {eta})",
        "discover",
        "batches",
    );
    let file = pool.install(|| discover(&job, &bar))?;
    bar.finish();
    say!(
        "discover: {} runs at p in {:?}, dt = {}, {} candidate terms per equation",
        file.meta.runs.len(),
        file.meta.p_values,
        file.meta.dt,
        base.candidate_terms()
    );
    if let Some(u) = &file.ude {
        say!(
            "UDE ({}{}-{h}-{h}-{} network on ({})): {} epochs, best {} (validation loss {:.4e}), {} training and {} validation runs",
            if file.network.as_ref().is_none_or(|n| n.known) {
                format!("{} + ", base.name().to_uppercase())
            } else {
                "no known part, ".into()
            },
            base.ude_inputs().len(),
            base.state().len(),
            base.ude_inputs().join(", "),
            u.epochs,
            u.best_epoch,
            u.val_loss
                .get(u.best_epoch.saturating_sub(1))
                .copied()
                .unwrap_or(f64::NAN),
            u.runs[0],
            u.runs[1],
            h = u.hidden
        );
        let title = if file.network.as_ref().is_some_and(|n| !n.known) {
            "closed form of the network minus the base field"
        } else {
            "closed form of the UDE's learned term"
        };
        print_form(title, base, &file.model);
    }
    print_form(
        "library fitted to the network's derivatives",
        base,
        &file.direct,
    );
    file.write(out)?;
    say!(
        "wrote {} (model from the {}) in {:.1} s",
        out.display(),
        match (&file.network, file.source.as_str()) {
            (Some(n), _) if !n.known => "network trained alone (--network-only)",
            (_, "ude") => "UDE",
            _ => "direct fit",
        },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn print_form(title: &str, base: Base, cf: &ClosedForm) {
    say!("{title}:");
    for (line, fit) in equations(base, cf).iter().zip(&cf.fits) {
        say!(
            "  {line}\n      (threshold {:.2e} of rms d{}/dt, R^2 of the correction {:.3}, target rms {:.3e}, {} samples)",
            fit.threshold,
            fit.equation,
            fit.r2,
            fit.target_rms,
            fit.samples
        );
    }
}
