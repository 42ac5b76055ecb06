//! `nmm infer`: simulation-based inference over [`nmm::infer`]. `train` fits a neural posterior
//! estimator to `(theta, x)` pairs; `sample` draws from it for an observation.

use crate::progress::Bar;
use crate::say;
use anyhow::{Context, Result, bail};
use clap::{Arg, ArgMatches, Command, value_parser};
use nmm::infer::{Estimator, Posterior, Prior, Settings, Spline};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn path_arg(id: &'static str, name: &'static str, help: &'static str) -> Arg {
    Arg::new(id)
        .long(id)
        .value_name(name)
        .required(true)
        .value_parser(value_parser!(PathBuf))
        .help(help)
}

fn num(id: &'static str, name: &'static str, default: &'static str, help: &'static str) -> Arg {
    Arg::new(id)
        .long(id)
        .value_name(name)
        .default_value(default)
        .help(help)
}

/// The `infer` command and its subcommands.
pub fn command() -> Command {
    let train = Command::new("train")
        .about("Train a neural posterior estimator q(theta | x) (masked autoregressive or neural spline flow, sbi's defaults) on simulated pairs")
        .arg(path_arg("theta", "THETA.npy", "Parameters, (n, d) float32/float64, columns in the prior's order"))
        .arg(path_arg("x", "X.npy", "Features, (n, k); rows with a NaN or inf are left out and counted"))
        .arg(path_arg("prior", "PRIOR.toml", "One [[param]] table per parameter, in order: name and uniform = [low, high] or normal = [mean, std]"))
        .arg(path_arg("out", "POSTERIOR", "Posterior file to write (NMMP: versioned, CRC-checked; records the prior, the z-scoring, the settings, the seed and the loss history)"))
        .arg(num("seed", "S", "0", "Seed of the initial weights, the permutations, the validation split and the shuffling").value_parser(value_parser!(u64)))
        .arg(num("estimator", "FLOW", "maf", "The flow: maf (masked autoregressive, sbi's default) or nsf (rational-quadratic coupling splines with LU layers, sbi's nsf)").value_parser(["maf", "nsf"]))
        .arg(num("hidden", "H", "50", "Width of the hidden layers (the MADE's, or the spline conditioner's residual net's)").value_parser(value_parser!(usize)))
        .arg(num("transforms", "T", "5", "Transforms: MADE blocks each with a random permutation (maf), or spline couplings each with an LU layer (nsf)").value_parser(value_parser!(usize)))
        .arg(num("bins", "K", "10", "nsf: bins of each rational-quadratic spline (2 to 64)").value_parser(value_parser!(usize)))
        .arg(num("blocks", "N", "2", "nsf: residual blocks of each spline conditioner").value_parser(value_parser!(usize)))
        .arg(num("tail-bound", "B", "3", "nsf: the splines act on [-B, B] in z-scored units (theta standardised with the training pairs' mean and sd); identity outside").value_parser(value_parser!(f64)))
        .arg(num("batch", "B", "200", "Pairs per Adam step").value_parser(value_parser!(usize)))
        .arg(num("lr", "LR", "0.0005", "Adam learning rate").value_parser(value_parser!(f64)))
        .arg(num("val-fraction", "F", "0.1", "Fraction of pairs held out for validation and early stopping").value_parser(value_parser!(f64)))
        .arg(num("stop-after", "E", "20", "Stop after E epochs without a lower validation loss").value_parser(value_parser!(usize)))
        .arg(num("max-epochs", "E", "100000", "Stop after E epochs in any case").value_parser(value_parser!(usize)))
        .arg(num("clip", "NORM", "5", "Clip the gradient's Euclidean norm to NORM").value_parser(value_parser!(f64)))
        .arg(num("precision", "P", "f32", "Arithmetic of the training steps: f32 (as sbi; about twice as fast) or f64; weights, Adam and sampling are f64 either way").value_parser(["f32", "f64"]))
        .arg(num("jobs", "T", "0", "Threads (0: one per core); results do not depend on it").value_parser(value_parser!(usize)));
    let sample = Command::new("sample")
        .about("Draw from a trained posterior for an observation (draws outside the prior's support are rejected)")
        .arg(path_arg("posterior", "POSTERIOR", "Posterior file from `nmm infer train`"))
        .arg(path_arg("observed", "XO.npy", "The observation's features, (k,) or (1, k), in training order"))
        .arg(num("n", "N", "10000", "Number of draws").value_parser(value_parser!(usize)))
        .arg(num("seed", "S", "0", "Seed of the draws").value_parser(value_parser!(u64)))
        .arg(path_arg("out", "SAMPLES.npy", "Draws, (N, d) float64, columns in the prior's order; a JSON record of the run is written beside it (SAMPLES.json)"))
        .arg(num("min-acceptance", "A", "0.001", "Refuse when fewer than this fraction of the flow's proposals fall inside the prior's support").value_parser(value_parser!(f64)))
        .arg(Arg::new("plot").long("plot").value_name("PAIRS.svg").value_parser(value_parser!(PathBuf)).help("Also draw a pair plot (corner plot) of the draws"))
        .arg(Arg::new("truth").long("truth").value_name("THETA.npy").value_parser(value_parser!(PathBuf)).help("True parameters, (d,) or (1, d), marked on the pair plot"))
        .arg(num("jobs", "T", "0", "Threads (0: one per core); results do not depend on it").value_parser(value_parser!(usize)));
    let log_prob = Command::new("log-prob")
        .about("Posterior log-density of given parameters at an observation (sbi's posterior.log_prob)")
        .arg(path_arg("posterior", "POSTERIOR", "Posterior file from `nmm infer train`"))
        .arg(path_arg("observed", "XO.npy", "The observation's features, (k,) or (1, k), in training order"))
        .arg(path_arg("theta", "THETA.npy", "Parameters to evaluate, (m, d) (or (d,) for one), columns in the prior's order"))
        .arg(path_arg("out", "LOGPROB.npy", "log q(theta | x_o) in nats per unit of each parameter, (m,) float64; -inf outside the prior's support"))
        .arg(Arg::new("flow-only").long("flow-only").action(clap::ArgAction::SetTrue).help("The flow's density on all of R^d, not renormalised to the prior's support (sbi's norm_posterior=False)"))
        .arg(num("jobs", "T", "0", "Threads (0: one per core); results do not depend on it").value_parser(value_parser!(usize)));
    let check = Command::new("check")
        .about("Calibration on held-out simulations: SBC rank histograms, expected coverage, posterior z-score against shrinkage, and a pair plot")
        .arg(path_arg("posterior", "POSTERIOR", "Posterior file from `nmm infer train`"))
        .arg(path_arg("theta", "THETA.npy", "Held-out parameters, (n, d), drawn from the prior (not used in training)"))
        .arg(path_arg("x", "X.npy", "Their features, (n, k); rows with a non-finite value are left out and counted"))
        .arg(Arg::new("theta-names").long("theta-names").value_name("NAMES").help("Names of THETA.npy's columns, comma-separated (as in the simulate directory's manifest.json): the posterior's parameters are picked by name, so a posterior can be checked on simulations of a model with more parameters (default: the columns are the posterior's, in order)"))
        .arg(path_arg("out", "DIR", "Directory for check.csv, ranks.svg, coverage.svg, zscore_shrinkage.svg and pairs.svg (created)"))
        .arg(num("draws", "L", "1000", "Posterior draws per held-out simulation").value_parser(value_parser!(usize)))
        .arg(Arg::new("max").long("max").value_name("N").value_parser(value_parser!(usize)).help("Use only the first N held-out simulations"))
        .arg(num("seed", "S", "0", "Seed of the draws").value_parser(value_parser!(u64)))
        .arg(num("jobs", "T", "0", "Threads (0: one per core); results do not depend on it").value_parser(value_parser!(usize)));
    let compare = Command::new("compare")
        .about("Compare posteriors checked on held-out simulations (the same ones, typically: a posterior of the right model and one of another on one data set): z-score against shrinkage and posterior mean against truth, one colour per posterior, and a table of bias, error and interval hits")
        .arg(Arg::new("checks").value_name("CHECK_DIR").required(true).num_args(1..=4).value_parser(value_parser!(PathBuf)).help("Output directories of `nmm infer check` (their check.csv), 1 to 4"))
        .arg(Arg::new("labels").long("labels").value_name("A,B,...").help("Labels for the legends and the table, comma-separated, one per directory (default: the directories' names)"))
        .arg(path_arg("out", "DIR", "Directory for compare.csv, zscore_shrinkage.svg and recovery.svg (created)"));
    let c2st = Command::new("c2st")
        .about("Classifier two-sample test: the cross-validated accuracy of a k-nearest-neighbour classifier telling two samples apart (0.5: indistinguishable), e.g. posterior draws against a reference posterior's")
        .arg(Arg::new("samples").value_name("SAMPLES.npy").num_args(2).required(true).value_parser(value_parser!(PathBuf)).help("The two samples, (n, d) each, the same d; the larger is cut to the smaller's size (seeded), so that chance is 0.5"))
        .arg(num("seed", "S", "0", "Seed of the cross-validation split").value_parser(value_parser!(u64)));
    let simulate = Command::new("simulate")
        .about("Draw parameters from a prior, run whole-brain simulations (batched in vector lanes where that pays) and write theta.npy and x.npy (features); resumable and shardable")
        .arg(Arg::new("config").long("config").value_name("RUN.toml").value_parser(value_parser!(PathBuf)).help("Whole-brain configuration every simulation starts from (as for `nmm brain`; default: the built-in main job)"))
        .arg(path_arg("prior", "PRIOR.toml", "Parameters to draw: G (or coupling), model parameters (every region), NAME@K (a model parameter in region K alone, 0-based), nsig_1, nsig_2, ... (TVB-style noise per state variable)"))
        .arg(Arg::new("n").long("n").value_name("N").required(true).value_parser(value_parser!(usize)).help("Number of simulations"))
        .arg(path_arg("out", "DIR", "Directory for job.json, block-BBBBBB.npz (64 simulations each) and, once every block is done, theta.npy, x.npy, diverged.csv and manifest.json"))
        .arg(num("seed", "S", "0", "Seed of the parameter draws (draw i from stream i); simulation i runs with the configuration's seed + i").value_parser(value_parser!(u64)))
        .arg(Arg::new("shard").long("shard").value_name("K/N").help("Run only blocks K, K+N, ... (1-based); default from SLURM_ARRAY_TASK_* when set; merge with `nmm infer merge DIR` when all are done"))
        .arg(num("features", "SET", "paper", "Features written as x: paper (the 2025 paper's 51 statistics of FC, FCD and BOLD zero crossings) or batch (the 7 of `nmm brain batch`)").value_parser(["paper", "batch"]))
        .arg(num("jobs", "T", "0", "Threads (0: one per core); results do not depend on it").value_parser(value_parser!(usize)));
    let features = Command::new("features")
        .about("The paper's 51 features of recorded BOLD (empirical data or a synthetic subject), to give `infer sample --observed`: one row per file, in the order `infer simulate` writes x")
        .arg(Arg::new("bold").long("bold").value_name("BOLD.npy").required(true).num_args(1..).value_parser(value_parser!(PathBuf)).help("BOLD series, (time, regions) each, one row per TR, taken whole (no transient is cut: leave it out of the file); FC over all samples, FCD in the configuration's windows (fc.window_tr, fc.step_tr, in TRs)"))
        .arg(Arg::new("config").long("config").value_name("RUN.toml").value_parser(value_parser!(PathBuf)).help("The whole-brain configuration of the simulations these features will be compared with (its [fc] windows; default: the built-in main job's)"))
        .arg(path_arg("out", "XO.npy", "Features, (files, 51) float64, and a JSON record beside it"));
    let merge = Command::new("merge")
        .about("Join the blocks of `nmm infer simulate` (e.g. from a Slurm array) into theta.npy, x.npy, diverged.csv and manifest.json")
        .arg(Arg::new("dir").value_name("DIR").required(true).value_parser(value_parser!(PathBuf)).help("The --out of `nmm infer simulate`"));
    Command::new("infer")
        .about("Simulation-based inference: neural posterior estimation")
        .subcommand_required(true)
        .subcommand(train)
        .subcommand(sample)
        .subcommand(log_prob)
        .subcommand(check)
        .subcommand(compare)
        .subcommand(c2st)
        .subcommand(simulate)
        .subcommand(features)
        .subcommand(merge)
}

/// Runs `nmm infer ...`.
pub fn run(m: &ArgMatches) -> Result<()> {
    match m.subcommand() {
        Some(("train", t)) => train(t),
        Some(("features", f)) => features(f),
        Some(("sample", s)) => sample(s),
        Some(("log-prob", l)) => log_prob(l),
        Some(("check", c)) => check(c),
        Some(("compare", c)) => compare(c),
        Some(("c2st", c)) => {
            let p: Vec<&PathBuf> = c
                .get_many::<PathBuf>("samples")
                .expect("required")
                .collect();
            let (a, b) = (nmm::infer::read_rows(p[0])?, nmm::infer::read_rows(p[1])?);
            let seed = *c.get_one::<u64>("seed").expect("default");
            let acc = nmm::infer::c2st(a.view(), b.view(), seed)
                .with_context(|| format!("{} against {}", p[0].display(), p[1].display()))?;
            say!(
                "C2ST accuracy {acc:.4} ({} draws of each, {}-fold cross-validation, seed {seed}; 0.5: indistinguishable, 1: disjoint)",
                a.nrows().min(b.nrows()),
                nmm::infer::c2st::FOLDS
            );
            Ok(())
        }
        Some(("simulate", c)) => simulate(c),
        Some(("merge", c)) => {
            let dir = c.get_one::<PathBuf>("dir").expect("required");
            merged(&nmm::infer::simulate::merge(dir)?);
            Ok(())
        }
        _ => bail!(
            "nmm infer: a subcommand is required (train, sample, check, compare, c2st, simulate, merge)"
        ),
    }
}

fn pool(m: &ArgMatches) -> Result<rayon::ThreadPool> {
    Ok(rayon::ThreadPoolBuilder::new()
        .num_threads(*m.get_one::<usize>("jobs").expect("default"))
        .build()?)
}

fn train(m: &ArgMatches) -> Result<()> {
    let started = Instant::now();
    let path = |id: &str| m.get_one::<PathBuf>(id).expect("required").clone();
    let get = |id: &str| *m.get_one::<usize>(id).expect("default");
    let getf = |id: &str| *m.get_one::<f64>(id).expect("default");
    let out = path("out");
    nmm::io::check_output(&out)?;
    let estimator = match m.get_one::<String>("estimator").map(String::as_str) {
        Some("nsf") => Estimator::Nsf,
        _ => Estimator::Maf,
    };
    let settings = Settings {
        estimator,
        hidden: get("hidden"),
        transforms: get("transforms"),
        spline: Spline {
            bins: get("bins"),
            blocks: get("blocks"),
            tail_bound: getf("tail-bound"),
        },
        batch: get("batch"),
        lr: getf("lr"),
        val_fraction: getf("val-fraction"),
        stop_after: get("stop-after"),
        max_epochs: get("max-epochs"),
        clip: getf("clip"),
        seed: *m.get_one::<u64>("seed").expect("default"),
        precision: match m.get_one::<String>("precision").map(String::as_str) {
            Some("f64") => nmm::infer::Precision::F64,
            _ => nmm::infer::Precision::F32,
        },
    };
    let prior = Prior::read(&path("prior"))?;
    let (tp, xp) = (path("theta"), path("x"));
    let theta = nmm::infer::read_rows(&tp)?;
    let x = nmm::infer::read_rows(&xp)?;
    say!(
        "infer train: {} pairs, {} parameters ({}), {} features; {} of {} transforms, {} hidden{}; batch {}, lr {}, {} % validation, stop after {} epochs without improvement; {:?} steps",
        theta.nrows(),
        prior.dim(),
        prior.names().join(", "),
        x.ncols(),
        settings.estimator.name().to_uppercase(),
        settings.transforms,
        settings.hidden,
        match estimator {
            Estimator::Nsf => format!(
                ", {} bins, {} residual blocks, tail bound {}",
                settings.spline.bins, settings.spline.blocks, settings.spline.tail_bound
            ),
            Estimator::Maf => String::new(),
        },
        settings.batch,
        settings.lr,
        100.0 * settings.val_fraction,
        settings.stop_after,
        settings.precision
    );
    let bar = Bar::new("{spinner} {msg}  {elapsed}", "infer train", "epochs");
    let post = pool(m)?
        .install(|| nmm::infer::train(theta.view(), x.view(), &prior, &settings, &bar))
        .with_context(|| format!("training on {} and {}", tp.display(), xp.display()))?;
    bar.finish();
    let h = &post.history;
    post.write(&out)?;
    say!(
        "infer train: {} epochs in {:.1} s ({:.3} s/epoch){}; best epoch {}: validation loss {:.4} nats (training {:.4}); {} training and {} validation pairs{}{}",
        h.val.len(),
        h.seconds,
        h.seconds / h.val.len().max(1) as f64,
        if h.converged {
            ", stopped early"
        } else {
            ", reached --max-epochs"
        },
        h.best_epoch,
        h.val[h.best_epoch - 1],
        h.train[h.best_epoch - 1],
        h.n_train,
        h.n_val,
        if h.excluded_nonfinite > 0 {
            format!("; {} non-finite rows left out", h.excluded_nonfinite)
        } else {
            String::new()
        },
        if h.skipped_steps > 0 {
            format!("; {} non-finite steps skipped", h.skipped_steps)
        } else {
            String::new()
        }
    );
    say!(
        "wrote {} in {:.1} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `SAMPLES.json` beside `SAMPLES.npy`.
fn record_path(out: &Path) -> PathBuf {
    out.with_extension("json")
}

fn log_prob(m: &ArgMatches) -> Result<()> {
    let path = |id: &str| m.get_one::<PathBuf>(id).expect("required").clone();
    let out = path("out");
    nmm::io::check_output(&out)?;
    let pp = path("posterior");
    let post = Posterior::read(&pp)?;
    let op = path("observed");
    let xo = nmm::infer::read_observation(&op)?;
    let tp = path("theta");
    let one_d = nmm::io::read_npy_f64(&tp)?.ndim() == 1;
    let mut theta = nmm::infer::read_rows(&tp)?;
    if one_d {
        // A (d,) array: one parameter vector.
        theta = theta.t().to_owned();
    }
    if theta.ncols() != post.dim() {
        bail!(
            "--theta {}: {} columns, but the posterior has {} parameters ({})",
            tp.display(),
            theta.ncols(),
            post.dim(),
            post.prior.names().join(", ")
        );
    }
    if let Some((r, c)) = theta
        .indexed_iter()
        .find_map(|(i, v)| (!v.is_finite()).then_some(i))
    {
        bail!(
            "--theta {}: row {r}, column {c} is not finite ({})",
            tp.display(),
            theta[[r, c]]
        );
    }
    let flow_only = m.get_flag("flow-only");
    let lp = pool(m)?
        .install(|| {
            if flow_only {
                post.flow_log_prob(theta.view(), &xo)
            } else {
                post.log_prob(theta.view(), &xo)
            }
        })
        .with_context(|| format!("log-density of {} at {}", pp.display(), op.display()))?;
    nmm::io::write_npy_1d(&out, &lp)?;
    let finite: Vec<f64> = lp.iter().copied().filter(|v| v.is_finite()).collect();
    say!(
        "infer log-prob: {} values{}{}",
        lp.len(),
        if flow_only {
            ", the flow's density".to_string()
        } else {
            format!(" ({} outside the prior's support)", lp.len() - finite.len())
        },
        if finite.is_empty() {
            String::new()
        } else {
            format!(
                "; range {:.4} to {:.4} nats",
                finite.iter().fold(f64::INFINITY, |a, &b| a.min(b)),
                finite.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b))
            )
        }
    );
    Ok(())
}

fn sample(m: &ArgMatches) -> Result<()> {
    let started = Instant::now();
    let path = |id: &str| m.get_one::<PathBuf>(id).expect("required").clone();
    let out = path("out");
    let record = record_path(&out);
    if record == out {
        bail!(
            "--out {}: give the samples a .npy name (the run's record is written beside it as .json)",
            out.display()
        );
    }
    let plot = m.get_one::<PathBuf>("plot").cloned();
    let mut outs = vec![out.as_path(), record.as_path()];
    if let Some(p) = &plot {
        outs.push(p);
    }
    nmm::io::check_outputs(&outs)?;
    let pp = path("posterior");
    let post = Posterior::read(&pp)?;
    let op = path("observed");
    let xo = nmm::infer::read_observation(&op)?;
    let n = *m.get_one::<usize>("n").expect("default");
    if n == 0 {
        bail!("--n: at least one draw");
    }
    let seed = *m.get_one::<u64>("seed").expect("default");
    let min_acc = *m.get_one::<f64>("min-acceptance").expect("default");
    if !(min_acc > 0.0 && min_acc <= 1.0) {
        bail!("--min-acceptance {min_acc}: must be in (0, 1]");
    }
    let s = pool(m)?
        .install(|| post.sample_checked(&xo, n, seed, min_acc))
        .with_context(|| format!("sampling {} at {}", pp.display(), op.display()))?;
    let names = post.prior.names();
    let json = serde_json::json!({
        "samples": out.display().to_string(),
        "posterior": pp.display().to_string(),
        "observed": op.display().to_string(),
        "parameters": names,
        "n": n,
        "seed": seed,
        "proposed": s.proposed,
        "acceptance": s.acceptance,
        "nmm_version": nmm::VERSION,
        "command": nmm::command_line(),
    });
    nmm::io::write_npy_2d(&out, &s.theta)?;
    nmm::io::write_json(&record, &json)?;
    say!(
        "infer sample: {n} draws ({} proposed, acceptance {:.4}) in {:.2} s",
        s.proposed,
        s.acceptance,
        started.elapsed().as_secs_f64()
    );
    say!(
        "{:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "parameter",
        "mean",
        "sd",
        "5 %",
        "50 %",
        "95 %"
    );
    for (j, name) in names.iter().enumerate() {
        let mut c: Vec<f64> = s.theta.column(j).to_vec();
        let (mean, sd) = nmm::stats::mean_sd(&c);
        c.sort_by(f64::total_cmp);
        let q = |p: f64| nmm::stats::quantile_sorted(&c, p);
        say!(
            "{name:>12} {mean:>12.5} {sd:>12.5} {:>12.5} {:>12.5} {:>12.5}",
            q(0.05),
            q(0.5),
            q(0.95)
        );
    }
    if let Some(p) = &plot {
        let truth = match m.get_one::<PathBuf>("truth") {
            Some(t) => {
                let v = nmm::infer::read_observation(t)?;
                if v.len() != names.len() {
                    bail!(
                        "{}: {} values for {} parameters",
                        t.display(),
                        v.len(),
                        names.len()
                    );
                }
                Some(v)
            }
            None => None,
        };
        let title = format!("{n} posterior draws at {} (red: true value)", op.display());
        crate::figures_infer::pairs(p, &title, &names, &s.theta, truth.as_deref())?;
        say!("pair plot in {}", p.display());
    }
    say!("wrote {} and {}", out.display(), record.display());
    Ok(())
}

fn check(m: &ArgMatches) -> Result<()> {
    let started = Instant::now();
    let path = |id: &str| m.get_one::<PathBuf>(id).expect("required").clone();
    let dir = path("out");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let files = [
        "check.csv",
        "ranks.svg",
        "coverage.svg",
        "zscore_shrinkage.svg",
        "pairs.svg",
    ]
    .map(|f| dir.join(f));
    nmm::io::check_outputs(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
    let pp = path("posterior");
    let post = Posterior::read(&pp)?;
    let (tp, xp) = (path("theta"), path("x"));
    let mut theta = nmm::infer::read_rows(&tp)?;
    let mut x = nmm::infer::read_rows(&xp)?;
    if let Some(list) = m.get_one::<String>("theta-names") {
        theta = pick_columns(&theta, list, &post.prior.names(), &tp)?;
    }
    if theta.nrows() != x.nrows() {
        bail!(
            "{} has {} rows but {} has {}: one held-out simulation per row in both",
            tp.display(),
            theta.nrows(),
            xp.display(),
            x.nrows()
        );
    }
    // Row numbers of the input files, for check.csv (rows left out below do not appear).
    let finite: Vec<usize> = (0..x.nrows())
        .filter(|&r| x.row(r).iter().all(|v| v.is_finite()))
        .collect();
    let dropped = x.nrows() - finite.len();
    if dropped > 0 {
        crate::note!(
            "infer check: {dropped} held-out simulations with non-finite features left out"
        );
        theta = theta.select(ndarray::Axis(0), &finite);
        x = x.select(ndarray::Axis(0), &finite);
    }
    if let Some(&k) = m.get_one::<usize>("max") {
        let k = k.min(theta.nrows());
        theta = theta.slice(ndarray::s![..k, ..]).to_owned();
        x = x.slice(ndarray::s![..k, ..]).to_owned();
    }
    let draws = *m.get_one::<usize>("draws").expect("default");
    let seed = *m.get_one::<u64>("seed").expect("default");
    let bar = Bar::new(
        "{bar:30} {pos}/{len} held-out simulations  {elapsed} (eta {eta})",
        "infer check",
        "simulations",
    );
    let c = pool(m)?
        .install(|| nmm::infer::check(&post, theta.view(), x.view(), draws, seed, &bar))
        .with_context(|| {
            format!(
                "checking {} on {} and {}",
                pp.display(),
                tp.display(),
                xp.display()
            )
        })?;
    bar.finish();
    let d = c.names.len();
    let mut header: Vec<String> = vec!["row".into()];
    for q in ["true", "mean", "sd", "rank", "zscore", "shrinkage"] {
        header.extend(c.names.iter().map(|n| format!("{q}_{n}")));
    }
    header.push("hpd_level".into());
    header.push("acceptance".into());
    header.push("tarp".into());
    let rows: Vec<Vec<String>> = (0..c.len())
        .map(|i| {
            let mut r = vec![finite[i].to_string()];
            for a in [&c.truth, &c.mean, &c.sd] {
                r.extend((0..d).map(|j| format!("{:?}", a[[i, j]])));
            }
            r.extend((0..d).map(|j| c.ranks[[i, j]].to_string()));
            for a in [&c.zscore, &c.shrinkage] {
                r.extend((0..d).map(|j| format!("{:?}", a[[i, j]])));
            }
            r.push(format!("{:?}", c.hpd_level[i]));
            r.push(format!("{:?}", c.acceptance[i]));
            r.push(format!("{:?}", c.tarp[i]));
            r
        })
        .collect();
    nmm::io::write_csv(&files[0], &header, &rows)?;
    crate::figures_infer::ranks(&files[1], &c)?;
    crate::figures_infer::coverage(&files[2], &c)?;
    crate::figures_infer::zscore_shrinkage(&files[3], &c)?;
    let first = post.sample(&x.row(0).to_vec(), draws.max(2000), seed)?;
    crate::figures_infer::pairs(
        &files[4],
        &format!(
            "{} posterior draws for held-out simulation 0 (red: its true value)",
            first.theta.nrows()
        ),
        &c.names,
        &first.theta,
        Some(&theta.row(0).to_vec()),
    )?;
    say!(
        "infer check: {} held-out simulations, {draws} draws each, seed {seed}, in {:.1} s",
        c.len(),
        started.elapsed().as_secs_f64()
    );
    say!(
        "{:>12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "parameter",
        "SBC chi2",
        "cover 50%",
        "cover 90%",
        "cover 95%",
        "z-score",
        "shrinkage"
    );
    let [c99, c999] = nmm::infer::check::CHI2_9;
    for (j, name) in c.names.iter().enumerate() {
        say!(
            "{name:>12} {:>10.2} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3}",
            c.rank_chi2(j),
            c.marginal_coverage(j, 0.5),
            c.marginal_coverage(j, 0.9),
            c.marginal_coverage(j, 0.95),
            c.zscore.column(j).mean().unwrap_or(f64::NAN),
            c.shrinkage.column(j).mean().unwrap_or(f64::NAN)
        );
    }
    say!(
        "{:>12} {:>10} {:>10.3} {:>10.3} {:>10.3}",
        "joint (HPD)",
        "",
        c.joint_coverage(0.5),
        c.joint_coverage(0.9),
        c.joint_coverage(0.95)
    );
    let (ks, p) = c.tarp_ks();
    say!(
        "{:>12} {:>10} {:>10.3} {:>10.3} {:>10.3}   (KS distance {ks:.3}, p = {p:.3})",
        "TARP",
        "",
        c.tarp_coverage(0.5),
        c.tarp_coverage(0.9),
        c.tarp_coverage(0.95)
    );
    say!(
        "SBC chi2 (10 bins, 9 dof) above {c99} rejects calibration at significance 0.01, above {c999} at 0.001; z-score and shrinkage are means over the simulations"
    );
    say!("wrote check.csv and figures in {}", dir.display());
    Ok(())
}

/// Reads the check.csv of `nmm infer check` in `dir`.
fn read_checked(dir: &Path, label: String) -> Result<crate::figures_infer::Checked> {
    let path = dir.join("check.csv");
    let mut r = csv::Reader::from_path(&path).with_context(|| {
        format!(
            "cannot read {} (run `nmm infer check --out {}` first)",
            path.display(),
            dir.display()
        )
    })?;
    let header: Vec<String> = r
        .headers()
        .with_context(|| format!("{}: no header", path.display()))?
        .iter()
        .map(String::from)
        .collect();
    let names: Vec<String> = header
        .iter()
        .filter_map(|h| h.strip_prefix("true_").map(String::from))
        .collect();
    if names.is_empty() {
        bail!(
            "{}: no true_NAME column; is it a check.csv of `nmm infer check`?",
            path.display()
        );
    }
    let col = |q: &str, n: &str| {
        let h = format!("{q}_{n}");
        header
            .iter()
            .position(|c| *c == h)
            .with_context(|| format!("{}: no column {h}", path.display()))
    };
    let quantities = ["true", "mean", "sd", "zscore", "shrinkage"];
    let idx = quantities
        .iter()
        .map(|q| names.iter().map(|n| col(q, n)).collect::<Result<Vec<_>>>())
        .collect::<Result<Vec<_>>>()?;
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); quantities.len()];
    for (line, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {}", path.display(), line + 1))?;
        for (q, cols) in idx.iter().enumerate() {
            for &c in cols {
                let v: f64 = rec.get(c).unwrap_or("").parse().with_context(|| {
                    format!(
                        "{}: row {}, column {}: not a number",
                        path.display(),
                        line + 1,
                        header[c]
                    )
                })?;
                values[q].push(v);
            }
        }
    }
    let d = names.len();
    let n = values[0].len() / d;
    if n == 0 {
        bail!("{}: no rows", path.display());
    }
    let mut arrays = values
        .into_iter()
        .map(|v| ndarray::Array2::from_shape_vec((n, d), v).expect("n x d values"));
    let mut next = || arrays.next().expect("five quantities");
    Ok(crate::figures_infer::Checked {
        label,
        names,
        truth: next(),
        mean: next(),
        sd: next(),
        zscore: next(),
        shrinkage: next(),
    })
}

fn compare(m: &ArgMatches) -> Result<()> {
    let dirs: Vec<PathBuf> = m
        .get_many::<PathBuf>("checks")
        .expect("required")
        .cloned()
        .collect();
    let labels: Vec<String> = match m.get_one::<String>("labels") {
        Some(l) => l.split(',').map(|s| s.trim().to_string()).collect(),
        None => dirs
            .iter()
            .map(|d| {
                d.file_name().map_or_else(
                    || d.display().to_string(),
                    |f| f.to_string_lossy().into_owned(),
                )
            })
            .collect(),
    };
    if labels.len() != dirs.len() {
        bail!(
            "--labels gives {} labels for {} directories",
            labels.len(),
            dirs.len()
        );
    }
    let out = m.get_one::<PathBuf>("out").expect("required");
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let files = ["compare.csv", "zscore_shrinkage.svg", "recovery.svg"].map(|f| out.join(f));
    nmm::io::check_outputs(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
    let sets = dirs
        .iter()
        .zip(labels)
        .map(|(d, l)| read_checked(d, l))
        .collect::<Result<Vec<_>>>()?;
    let header: Vec<String> = [
        "posterior",
        "parameter",
        "n",
        "bias",
        "rmse",
        "r2",
        "mean_sd",
        "zscore_mean",
        "zscore_median",
        "shrinkage_mean",
        "within_1sd",
        "within_2sd",
    ]
    .map(String::from)
    .to_vec();
    let mut rows = Vec::new();
    say!(
        "{:>14} {:>10} {:>6} {:>10} {:>10} {:>6} {:>10} {:>8} {:>8} {:>10} {:>8} {:>8}",
        "posterior",
        "parameter",
        "n",
        "bias",
        "RMSE",
        "R2",
        "mean sd",
        "z mean",
        "z median",
        "shrinkage",
        "in 1 sd",
        "in 2 sd"
    );
    for s in &sets {
        for (j, name) in s.names.iter().enumerate() {
            let n = s.truth.nrows() as f64;
            let err = &s.mean.column(j) - &s.truth.column(j);
            let bias = err.sum() / n;
            let rmse = (err.mapv(|e| e * e).sum() / n).sqrt();
            let mut z: Vec<f64> = s.zscore.column(j).to_vec();
            z.sort_by(f64::total_cmp);
            let within = |k: f64| z.iter().filter(|&&v| v <= k).count() as f64 / n;
            let truth_mean = s.truth.column(j).sum() / n;
            let truth_var = s.truth.column(j).mapv(|t| (t - truth_mean).powi(2)).sum() / n;
            let stats = [
                bias,
                rmse,
                1.0 - rmse * rmse / truth_var,
                s.sd.column(j).sum() / n,
                z.iter().sum::<f64>() / n,
                nmm::stats::quantile_sorted(&z, 0.5),
                s.shrinkage.column(j).sum() / n,
                within(1.0),
                within(2.0),
            ];
            say!(
                "{:>14} {name:>10} {:>6} {:>10.4} {:>10.4} {:>6.3} {:>10.4} {:>8.3} {:>8.3} {:>10.3} {:>8.3} {:>8.3}",
                s.label,
                s.truth.nrows(),
                stats[0],
                stats[1],
                stats[2],
                stats[3],
                stats[4],
                stats[5],
                stats[6],
                stats[7],
                stats[8]
            );
            let mut r = vec![s.label.clone(), name.clone(), s.truth.nrows().to_string()];
            r.extend(stats.iter().map(|v| format!("{v:?}")));
            rows.push(r);
        }
    }
    say!(
        "bias, RMSE and R2 (1 - MSE / variance of the true values) of the posterior mean against the truth: R2 measures what the data tell whatever the calibration, while shrinkage also counts overconfidence; a calibrated, near-Gaussian posterior has about 68 % of z-scores within 1 sd and 95 % within 2"
    );
    nmm::io::write_csv(&files[0], &header, &rows)?;
    let n: Vec<String> = sets
        .iter()
        .map(|s| format!("{} {}", s.label, s.truth.nrows()))
        .collect();
    crate::figures_infer::zscore_shrinkage_sets(
        &files[1],
        &format!(
            "Posterior z-score against shrinkage (held-out simulations: {})",
            n.join(", ")
        ),
        &sets,
    )?;
    crate::figures_infer::recovery(
        &files[2],
        &format!(
            "Posterior mean (+-1 sd) against the true value ({})",
            n.join(", ")
        ),
        &sets,
    )?;
    say!(
        "wrote compare.csv, zscore_shrinkage.svg and recovery.svg in {}",
        out.display()
    );
    Ok(())
}

/// The columns of `theta` (named by the comma-separated `list`) that `wanted` names, in
/// `wanted`'s order.
fn pick_columns(
    theta: &ndarray::Array2<f64>,
    list: &str,
    wanted: &[String],
    path: &Path,
) -> Result<ndarray::Array2<f64>> {
    let names: Vec<&str> = list.split(',').map(str::trim).collect();
    if let Some(dup) = names
        .iter()
        .enumerate()
        .find_map(|(i, n)| names[..i].contains(n).then_some(n))
    {
        bail!("--theta-names names {dup:?} twice ({list})");
    }
    if names.len() != theta.ncols() {
        bail!(
            "--theta-names gives {} names but {} has {} columns",
            names.len(),
            path.display(),
            theta.ncols()
        );
    }
    let idx = wanted
        .iter()
        .map(|w| {
            names.iter().position(|n| n == w).with_context(|| {
                format!("the posterior's parameter {w:?} is not among --theta-names ({list})")
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(theta.select(ndarray::Axis(1), &idx))
}

fn merged(m: &nmm::infer::simulate::Merged) {
    say!(
        "infer merge: {} simulations kept, {} left out (diverged or non-finite features; listed in diverged.csv); wrote {} and {}",
        m.kept,
        m.diverged,
        m.theta.display(),
        m.x.display()
    );
}

/// `--config RUN.toml`, or the built-in main job's configuration.
fn run_config(m: &ArgMatches) -> Result<nmm::brain::Config> {
    Ok(match m.get_one::<PathBuf>("config") {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str::<nmm::brain::Config>(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => nmm::brain::Config::default(),
    })
}

/// `nmm infer features`: the paper's features of recorded BOLD.
fn features(m: &ArgMatches) -> Result<()> {
    let out = m.get_one::<PathBuf>("out").expect("required").clone();
    let record = out.with_extension("json");
    if record == out {
        bail!("--out {}: give the features a .npy name", out.display());
    }
    nmm::io::check_outputs(&[out.as_path(), record.as_path()])?;
    let cfg = run_config(m)?;
    let files: Vec<&PathBuf> = m.get_many::<PathBuf>("bold").expect("required").collect();
    let mut x = ndarray::Array2::<f64>::zeros((files.len(), nmm::infer::features::COUNT));
    for (row, f) in files.iter().enumerate() {
        let series = nmm::io::read_series(f)?;
        let v = nmm::infer::features::of_bold(&cfg.fc, &series.data)
            .with_context(|| format!("--bold {}", f.display()))?;
        x.row_mut(row).assign(&ndarray::Array1::from(v));
    }
    nmm::io::write_npy_2d(&out, &x)?;
    let json = serde_json::json!({
        "features": nmm::infer::features::names(),
        "bold": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "fc_window_tr": cfg.fc.window_tr,
        "fc_step_tr": cfg.fc.step_tr,
        "nmm_version": nmm::VERSION,
        "command": nmm::command_line(),
    });
    nmm::io::write_json(&record, &json)?;
    say!(
        "infer features: {} x {} features (FCD windows of {} TRs every {}); wrote {} and {}",
        files.len(),
        nmm::infer::features::COUNT,
        cfg.fc.window_tr,
        cfg.fc.step_tr,
        out.display(),
        record.display()
    );
    Ok(())
}

fn simulate(m: &ArgMatches) -> Result<()> {
    let started = Instant::now();
    let base = run_config(m)?;
    let prior = Prior::read(m.get_one::<PathBuf>("prior").expect("required"))?;
    let job = nmm::infer::simulate::Job {
        base,
        prior,
        n: *m.get_one::<usize>("n").expect("required"),
        seed: *m.get_one::<u64>("seed").expect("default"),
        features: match m.get_one::<String>("features").map(String::as_str) {
            Some("batch") => nmm::infer::simulate::FeatureSet::Batch,
            _ => nmm::infer::simulate::FeatureSet::Paper,
        },
        features_version: nmm::infer::simulate::FEATURES_VERSION,
    };
    let dir = m.get_one::<PathBuf>("out").expect("required").clone();
    let shard = match m.get_one::<String>("shard") {
        Some(s) => Some(nmm::sweep::parse_shard(s)?),
        None => nmm::sweep::slurm_shard(|k| std::env::var(k).ok())?,
    };
    let (k, of) = shard.unwrap_or((1, 1));
    say!(
        "infer simulate: {} simulations ({} blocks of up to {}), parameters {} from seed {}; shard {k}/{of}; {} features: {}",
        job.n,
        job.blocks(),
        nmm::infer::simulate::BLOCK,
        job.prior.names().join(", "),
        job.seed,
        job.feature_names().len(),
        job.feature_names().join(", ")
    );
    let bar = Bar::new(
        "{bar:30} {pos}/{len} blocks  {elapsed} (eta {eta})",
        "infer simulate",
        "blocks",
    );
    let out = pool(m)?.install(|| nmm::infer::simulate::simulate(&job, (k, of), &dir, &bar))?;
    bar.finish();
    say!(
        "infer simulate: {} blocks run, {} already done, {} diverged simulations in {:.1} s",
        out.run,
        out.skipped,
        out.diverged,
        started.elapsed().as_secs_f64()
    );
    if of == 1 {
        merged(&nmm::infer::simulate::merge(&dir)?);
    } else {
        say!(
            "when every shard is done: nmm infer merge {}",
            dir.display()
        );
    }
    Ok(())
}
