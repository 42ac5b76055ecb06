//! `nmm brain` and `nmm brain batch`: arguments, the printed summary and the figure over
//! [`nmm::brain`].

use crate::args::float_arg;
use crate::progress::Bar;
use crate::{plot, say};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use nmm::brain::{
    Config, ParamValue, Prepared, Rows, default_dt_ms, features, run_batch, write_run,
};
use nmm::sweep::{parse_shard, slurm_shard};
use std::path::PathBuf;

/// The command and its `batch` and `merge` subcommands.
pub fn command() -> Command {
    let d = Config::default();
    let common = |c: Command| {
        c.arg(
            Arg::new("config")
                .long("config")
                .value_name("RUN.toml")
                .value_parser(value_parser!(PathBuf))
                .help("Run configuration (TOML; see README). Flags override it"),
        )
        .arg(
            Arg::new("model")
                .long("model")
                .value_parser(["mpr", "cc", "rww", "rww-griffiths", "mlp", "corrected"])
                .help("Node model [default: mpr]; mlp and corrected need --model-file"),
        )
        .arg(
            Arg::new("model-file")
                .long("model-file")
                .value_name("MODEL")
                .value_parser(value_parser!(PathBuf))
                .help("Trained MLP mean field (.nmmw, nmm train) for --model mlp; discovered model (.toml, nmm discover) for --model corrected"),
        )
        .arg(
            Arg::new("connectome")
                .long("connectome")
                .value_name("SPEC")
                .help("builtin, builtin:N, a TVB connectivity .zip, a .npy or CSV matrix [default: builtin = builtin:68]"),
        )
        .arg(
            Arg::new("tract-lengths")
                .long("tract-lengths")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help("Tract lengths in mm (.npy or CSV) for a plain weight matrix"),
        )
        .arg(
            Arg::new("normalise")
                .long("normalise")
                .value_name("STEPS")
                .help("Comma-separated normalisation steps: max, log1p, rowsum, frobenius, zero-diagonal, laplacian, griffiths2022 [default: max]"),
        )
        .arg(float_arg("speed", "Conduction speed [mm/ms] for delays from tract lengths [default: 3]".into()))
        .arg(
            Arg::new("no-delays")
                .long("no-delays")
                .action(ArgAction::SetTrue)
                .help("Ignore tract lengths: no conduction delays"),
        )
        .arg(float_arg("G", format!("Global coupling G [model input per unit of coupling variable] [default: {}, the working point of MPR on the built-in connectome]", d.coupling)))
        .arg(float_arg("duration", format!("Simulated time [ms] [default: {}]", d.duration_ms)))
        .arg(float_arg("dt", format!("Integration step [ms] [default: {} for mpr and mlp, {} for the others]", default_dt_ms("mpr"), default_dt_ms("rww"))))
        .arg(float_arg("tr", "BOLD repetition time [ms] [default: 2000]".into()))
        .arg(float_arg("bold-dt", "Step of the BOLD integration [ms], a multiple of --dt; the drive is averaged over it [default: 5]".into()))
        .arg(
            Arg::new("bold-preset")
                .long("bold-preset")
                .value_parser(["stephan2007", "friston2000", "vbjax"])
                .help("Balloon-Windkessel parameter set [default: stephan2007]"),
        )
        .arg(
            Arg::new("empirical-fc")
                .long("empirical-fc")
                .value_name("FC.npy")
                .value_parser(value_parser!(PathBuf))
                .help("Empirical FC (regions x regions, .npy or CSV): adds the feature fc_emp_corr, its correlation with the simulated FC"),
        )
        .arg(float_arg("transient", format!("BOLD before this time is left out of FC and FCD [ms] [default: {}]", d.fc.transient_ms)))
        .arg(float_arg("record-every", "Record block means of every state variable every this many ms [default: 0 = off]".into()))
        .arg(
            Arg::new("precision")
                .long("precision")
                .value_parser(["f64", "f32"])
                .help("Node arithmetic [default: f64]"),
        )
        .arg(
            Arg::new("param")
                .long("param")
                .value_name("NAME=VALUE")
                .action(ArgAction::Append)
                .help("Set a model parameter in every region (repeatable), e.g. --param eta=-4.4; for mpr eta is -4.6 unless set"),
        )
        .arg(
            Arg::new("seed")
                .long("seed")
                .value_name("U64")
                .value_parser(value_parser!(u64))
                .help("Seed of every random draw; recorded in the output [default: 0]"),
        )
    };
    let single = common(Command::new("brain"))
        .about("Whole-brain simulation: mean-field nodes on a connectome, observed as BOLD, FC and FCD")
        .args_conflicts_with_subcommands(true)
        .arg(crate::args::out_arg("Output .npz: bold, t_ms, fc, fcd, weights, config, meta [default: brain.npz]"))
        .arg(
            Arg::new("plot")
                .long("plot")
                .value_name("FILE.svg")
                .value_parser(value_parser!(PathBuf))
                .help("Figure: FC matrix, BOLD carpet, FCD matrix"),
        );
    let batch = common(Command::new("batch"))
        .about("Runs many parameter sets (rows of a CSV, or a sweep of one parameter) and collects FC/FCD features into one table")
        .arg(
            Arg::new("rows")
                .long("rows")
                .value_name("ROWS.csv")
                .required_unless_present("vary")
                .conflicts_with("vary")
                .value_parser(value_parser!(PathBuf))
                .help("CSV: a header of parameter names (model parameters, G, seed), one run per row"),
        )
        .arg(
            Arg::new("vary")
                .long("vary")
                .value_name("NAME=LO:HI:NUM")
                .allow_hyphen_values(true)
                .help("Sweep one parameter instead of --rows: G (global coupling) or a model parameter, NUM values from LO to HI, e.g. G=0:0.6:13; with --plot, the features against it"),
        )
        .arg(
            Arg::new("plot")
                .long("plot")
                .value_name("FILE.svg")
                .value_parser(value_parser!(PathBuf))
                .help("With --vary: FC-connectome correlation (and fit to --empirical-fc), FC mean and spread, FCD spread and BOLD spread against the parameter, diverged runs marked"),
        )
        .arg(
            Arg::new("out")
                .long("out")
                .value_name("DIR")
                .required(true)
                .value_parser(value_parser!(PathBuf))
                .help("Output directory: features.csv (or features-shard-K-of-N.csv), config.toml"),
        )
        .arg(
            Arg::new("shard")
                .long("shard")
                .value_name("K/N")
                .help("Run only shard K of N (1-based; rows K, K+N, ...); default from SLURM_ARRAY_TASK_* when set"),
        )
        .arg(
            Arg::new("jobs")
                .long("jobs")
                .value_name("J")
                .value_parser(value_parser!(usize))
                .help("Parallel runs [default: all cores]"),
        )
        .arg(
            Arg::new("save-runs")
                .long("save-runs")
                .action(ArgAction::SetTrue)
                .help("Also write each row's .npz (row-K.npz)"),
        );
    let merge = Command::new("merge")
        .about("Merges the shard tables of a batch (features-shard-K-of-N.csv, e.g. from a Slurm array) into features.csv")
        .arg(
            Arg::new("dir")
                .value_name("DIR")
                .required(true)
                .value_parser(value_parser!(PathBuf))
                .help("The batch directory (--out of brain batch --shard K/N)"),
        );
    single.subcommand(batch).subcommand(merge)
}

/// The configuration from `--config` and the flags.
pub fn config_from_args(m: &ArgMatches) -> Result<Config> {
    let mut cfg = match m.get_one::<PathBuf>("config") {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str::<Config>(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(v) = m.get_one::<String>("model") {
        cfg.model = v.clone();
    }
    if let Some(v) = m.get_one::<PathBuf>("model-file") {
        cfg.model_file = Some(v.clone());
    }
    if let Some(v) = m.get_one::<String>("connectome") {
        cfg.connectome.path = v.clone();
    }
    if let Some(v) = m.get_one::<PathBuf>("tract-lengths") {
        cfg.connectome.tract_lengths = Some(v.clone());
    }
    if let Some(v) = m.get_one::<String>("normalise") {
        cfg.connectome.normalise = v.split(',').map(|s| s.trim().to_string()).collect();
    }
    if let Some(v) = m.get_one::<f64>("speed") {
        cfg.connectome.speed_mm_per_ms = *v;
    }
    if m.get_flag("no-delays") {
        cfg.connectome.delays = false;
    }
    if let Some(v) = m.get_one::<f64>("G") {
        cfg.coupling = *v;
    }
    if let Some(v) = m.get_one::<f64>("duration") {
        cfg.duration_ms = *v;
    }
    if let Some(v) = m.get_one::<f64>("dt") {
        cfg.dt_ms = Some(*v);
    }
    if let Some(v) = m.get_one::<f64>("tr") {
        cfg.bold.tr_ms = *v;
    }
    if let Some(v) = m.get_one::<f64>("bold-dt") {
        cfg.bold.dt_ms = *v;
    }
    if let Some(v) = m.get_one::<String>("bold-preset") {
        cfg.bold.preset = v.clone();
    }
    if let Some(v) = m.get_one::<PathBuf>("empirical-fc") {
        cfg.fc.empirical = Some(v.clone());
    }
    if let Some(v) = m.get_one::<f64>("transient") {
        cfg.fc.transient_ms = *v;
    }
    if let Some(v) = m.get_one::<f64>("record-every") {
        cfg.record_every_ms = *v;
    }
    if let Some(v) = m.get_one::<String>("precision") {
        cfg.precision = v.clone();
    }
    if let Some(v) = m.get_one::<u64>("seed") {
        cfg.seed = *v;
    }
    for item in m.get_many::<String>("param").into_iter().flatten() {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| anyhow!("--param: expected NAME=VALUE, got {item:?}"))?;
        let v: f64 = v
            .trim()
            .parse()
            .map_err(|_| anyhow!("--param {k}: {v:?} is not a number"))?;
        cfg.params
            .insert(k.trim().to_string(), ParamValue::Global(v));
    }
    Ok(cfg)
}

/// Runs `nmm brain` or `nmm brain batch`.
pub fn run(m: &ArgMatches) -> Result<()> {
    match m.subcommand() {
        Some(("batch", b)) => return batch(b),
        Some(("merge", b)) => {
            let dir = b.get_one::<PathBuf>("dir").expect("required");
            let out = nmm::brain::merge_shards(dir)?;
            say!(
                "{} rows from the shards{}; wrote {}",
                out.table.len(),
                match out.diverged.len() {
                    0 => String::new(),
                    1..=20 => format!(
                        ", {} diverged (rows {:?})",
                        out.diverged.len(),
                        out.diverged
                    ),
                    k => format!(
                        ", {k} diverged (rows {:?} ...; the diverged column has all)",
                        &out.diverged[..20]
                    ),
                },
                out.path.display()
            );
            return Ok(());
        }
        _ => {}
    }
    let cfg = config_from_args(m)?;
    let out_path = m
        .get_one::<PathBuf>("out")
        .cloned()
        .unwrap_or_else(|| PathBuf::from("brain.npz"));
    let plot_path = m.get_one::<PathBuf>("plot");
    let mut outs = vec![out_path.as_path()];
    outs.extend(plot_path.map(PathBuf::as_path));
    nmm::io::check_outputs(&outs)?;
    let p = Prepared::new(cfg)?;
    say!(
        "{} regions ({}), {} links, {} delays, model {}, G = {}, {} ms at dt = {} ms ({} steps)",
        p.conn.n,
        p.conn.source,
        p.weights.iter().filter(|w| **w != 0.0).count(),
        if p.delays.is_empty() {
            "no".to_string()
        } else {
            format!("max {:.1} ms", p.max_delay_steps() as f64 * p.dt_ms)
        },
        p.cfg.model,
        p.cfg.coupling,
        p.cfg.duration_ms,
        p.dt_ms,
        p.steps
    );
    let bar = Bar::new(
        "{bar:40} {percent}%  {elapsed} (eta {eta})",
        "brain",
        "steps",
    );
    let out = nmm::brain::run(&p, &bar)?;
    bar.finish();
    let region_steps = p.steps as f64 * p.conn.n as f64;
    say!(
        "simulated {} s in {:.2} s wall ({:.3e} region-steps/s); {} BOLD samples, {} FCD windows",
        p.cfg.duration_ms / 1000.0,
        out.wall_s,
        region_steps / out.wall_s,
        out.t_ms.len(),
        out.fcd.nrows()
    );
    for (k, v) in features(&p, &out)? {
        say!("  {k:>14} = {v:.4}");
    }
    write_run(&out_path, &p, &out)?;
    say!("wrote {}", out_path.display());
    if let Some(path) = plot_path {
        let title = format!(
            "nmm brain: {} on {} (G = {}, {} s)",
            p.cfg.model,
            p.conn.source,
            p.cfg.coupling,
            p.cfg.duration_ms / 1000.0
        );
        plot::brain_figure(
            path,
            &title,
            &out.fc,
            &out.bold,
            &out.t_ms,
            p.cfg.fc.transient_ms,
            &out.fcd,
        )?;
        say!("wrote {}", path.display());
    }
    Ok(())
}

fn batch(m: &ArgMatches) -> Result<()> {
    let base = config_from_args(m)?;
    let dir = m.get_one::<PathBuf>("out").expect("required");
    let (rows, source) = match (m.get_one::<PathBuf>("rows"), m.get_one::<String>("vary")) {
        (Some(path), _) => (Rows::read(path)?, path.display().to_string()),
        (None, Some(spec)) => (vary(spec)?, format!("--vary {spec}")),
        (None, None) => bail!("give --rows ROWS.csv or --vary NAME=LO:HI:NUM"),
    };
    let plot_path = m.get_one::<PathBuf>("plot");
    if let Some(p) = plot_path {
        if rows.header.len() != 1 || m.get_one::<String>("vary").is_none() {
            bail!("--plot draws the features against one parameter: use it with --vary");
        }
        nmm::io::check_output(p)?;
    }
    let shard = match m.get_one::<String>("shard") {
        Some(s) => Some(parse_shard(s)?),
        None => slurm_shard(|k| std::env::var(k).ok())?,
    };
    if plot_path.is_some() && shard.is_some_and(|(_, of)| of > 1) {
        bail!("--plot draws the whole table: run without --shard (or outside a Slurm array)");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(m.get_one::<usize>("jobs").copied().unwrap_or(0))
        .build()?;
    let bar = Bar::new(
        "{bar:40} {pos}/{len} runs  {elapsed} (eta {eta})",
        "batch",
        "runs",
    );
    let start = std::time::Instant::now();
    let out = pool
        .install(|| {
            run_batch(
                &base,
                &rows,
                shard.unwrap_or((1, 1)),
                dir,
                m.get_flag("save-runs"),
                &bar,
            )
        })
        .with_context(|| source.clone())?;
    bar.finish();
    say!(
        "{} runs in {:.1} s{}; wrote {}",
        out.table.len(),
        start.elapsed().as_secs_f64(),
        if out.diverged.is_empty() {
            String::new()
        } else {
            format!(
                "; {} diverged (rows {:?}{}: NaN features, diverged = 1)",
                out.diverged.len(),
                &out.diverged[..out.diverged.len().min(20)],
                if out.diverged.len() > 20 { " ..." } else { "" }
            )
        },
        out.path.display()
    );
    if let Some(path) = plot_path {
        let conn = std::path::Path::new(&base.connectome.path)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| base.connectome.path.clone());
        let title = format!(
            "nmm brain: {} on {conn} ({} s per run, dt = {} ms)",
            base.model,
            base.duration_ms / 1000.0,
            base.dt_ms.unwrap_or(default_dt_ms(&base.model))
        );
        // The BOLD signal's unit is set by V_0: percent for stephan2007 and vbjax (V_0 = 4),
        // a fraction for friston2000; a V_0 of the user's own has the user's unit.
        let bold_unit = match (
            base.bold.params.contains_key("V_0"),
            base.bold.preset.as_str(),
        ) {
            (true, _) => "V_0 units",
            (false, "friston2000") => "1",
            _ => "%",
        };
        plot::exploration(path, &title, bold_unit, &out.header, &out.table)?;
        say!("wrote {}", path.display());
    }
    Ok(())
}

/// `NAME=LO:HI:NUM` as rows.
fn vary(spec: &str) -> Result<Rows> {
    let parsed = spec.split_once('=').and_then(|(n, r)| {
        let v: Vec<&str> = r.split(':').collect();
        (v.len() == 3).then(|| {
            (
                n.trim(),
                v[0].trim().parse::<f64>(),
                v[1].trim().parse::<f64>(),
                v[2].trim().parse::<usize>(),
            )
        })
    });
    let Some((name, Ok(lo), Ok(hi), Ok(num))) = parsed else {
        bail!("--vary: expected NAME=LO:HI:NUM, e.g. G=0:0.6:13, got {spec:?}");
    };
    Ok(Rows::vary(name, lo, hi, num)?)
}
