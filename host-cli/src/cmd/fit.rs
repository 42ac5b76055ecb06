//! `nmm fit`: gradient-based fitting of a whole-brain model's gains to empirical BOLD's FC
//! (Griffiths et al. 2022; the engine is `nmm::fit`).

use crate::args::out_arg;
use crate::progress::Bar;
use crate::{plot, say};
use anyhow::{Context, Result, bail};
use clap::{Arg, ArgMatches, Command, value_parser};
use ndarray::{Array1, Array2};
use nmm::fit::{FitConfig, Setup};
use nmm::io::{NpzEntry, read_series, write_npz};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The `fit` command.
pub fn command() -> Command {
    let path = |id: &'static str, name: &'static str, help: &'static str| {
        Arg::new(id)
            .long(id)
            .value_name(name)
            .value_parser(value_parser!(PathBuf))
            .help(help)
    };
    Command::new("fit")
        .about("Fit a whole-brain model's gains (reduced Wong-Wang, gain form) to the FC of empirical BOLD by gradient descent through the simulation (Griffiths et al. 2022)")
        .arg(path("bold", "EMPIRICAL.npy", "Empirical BOLD, (time, regions) float32/float64, sampled at the configuration's TR (bold.tr_ms, default 750 ms); its length sets the windows per epoch (time / window_tr)").required(true))
        .arg(out_arg("Results (.npz): per-epoch loss, window and whole-run FC correlation, whole-run FC mean squared difference and fitted values, the final simulated and the empirical FC (with connectome_gains: the fitted connectome fitted_sc and its gains); a JSON record beside it (FIT.json)").required_unless_present("synthetic"))
        .arg(Arg::new("synthetic").long("synthetic").value_name("TRS").value_parser(value_parser!(usize)).conflicts_with_all(["out", "fc", "plot", "epochs"]).help("Instead of fitting, write TRS samples of BOLD simulated with the configuration's parameter values (params, after transient_ms) to --bold: a synthetic subject with known gains"))
        .arg(path("config", "FIT.toml", "Model and training (nmm::fit::FitConfig: connectome, dt_ms, bold, transient_ms, window_tr, epochs, lr, lr_final, mse_weight, realisations, connectome_gains, seed, [priors.NAME] mean/precision/learn, fit = [names], [params]); default: the built-in connectome, fitting G, g_EE, g_EI, g_IE"))
        .arg(path("connectome", "SC", "Connectome (overrides the configuration's): a TVB .zip, a weights .txt/.npy, or builtin:N"))
        .arg(path("fc", "FC.npy", "Empirical FC to fit, (regions, regions); default: the Pearson FC of --bold"))
        .arg(Arg::new("epochs").long("epochs").value_name("N").value_parser(value_parser!(usize)).help("Passes over the windows (overrides the configuration's)"))
        .arg(Arg::new("seed").long("seed").value_name("U64").value_parser(value_parser!(u64)).help("Seed of the model's noise (overrides the configuration's); recorded in the output"))
        .arg(path("plot", "FIT.svg", "Also draw the fitted values and the loss per epoch, and the simulated FC against the empirical one"))
}

/// A symmetric FC matrix with unit diagonal from its lower triangle (`i > j`, row by row).
fn from_lower(lower: &[f64], n: usize) -> Array2<f64> {
    let mut m = Array2::<f64>::eye(n);
    let mut k = 0;
    for i in 0..n {
        for j in 0..i {
            m[[i, j]] = lower[k];
            m[[j, i]] = lower[k];
            k += 1;
        }
    }
    m
}

/// `FIT.json` beside `FIT.npz`.
fn record_path(out: &Path) -> PathBuf {
    out.with_extension("json")
}

/// Runs `nmm fit`.
pub fn run(m: &ArgMatches) -> Result<()> {
    if let Some(&trs) = m.get_one::<usize>("synthetic") {
        return synthetic(m, trs);
    }
    let started = Instant::now();
    let out = m.get_one::<PathBuf>("out").expect("required").clone();
    let record = record_path(&out);
    if record == out {
        bail!(
            "--out {}: give the results a .npz name (the run's record is written beside it as .json)",
            out.display()
        );
    }
    let plot_path = m.get_one::<PathBuf>("plot").cloned();
    let mut outs = vec![out.as_path(), record.as_path()];
    if let Some(p) = &plot_path {
        outs.push(p);
    }
    nmm::io::check_outputs(&outs)?;
    let cfg = config(m)?;
    if cfg.epochs == 0 {
        bail!("--epochs (or epochs in the configuration): at least 1");
    }
    let s = Setup::new(cfg).context("the fit's configuration")?;
    fit_to(m, &s, started, out, record, plot_path)
}

/// The configuration with the command line's overrides.
fn config(m: &ArgMatches) -> Result<FitConfig> {
    let mut cfg = match m.get_one::<PathBuf>("config") {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading --config {}", p.display()))?;
            toml::from_str::<FitConfig>(&text)
                .with_context(|| format!("--config {}", p.display()))?
        }
        None => FitConfig::default(),
    };
    if let Some(c) = m.get_one::<PathBuf>("connectome") {
        cfg.connectome.path = c.display().to_string();
    }
    if let Some(e) = m.get_one::<usize>("epochs") {
        cfg.epochs = *e;
    }
    if let Some(s) = m.get_one::<u64>("seed") {
        cfg.seed = *s;
    }
    Ok(cfg)
}

/// `--synthetic TRS`: BOLD of the configuration's values, written to `--bold`.
fn synthetic(m: &ArgMatches, trs: usize) -> Result<()> {
    let started = Instant::now();
    let bp = m.get_one::<PathBuf>("bold").expect("required").clone();
    let record = bp.with_extension("json");
    if record == bp {
        bail!("--bold {}: give the BOLD a .npy name", bp.display());
    }
    nmm::io::check_outputs(&[bp.as_path(), record.as_path()])?;
    if trs < 3 {
        bail!("--synthetic {trs}: at least 3 samples");
    }
    let s = Setup::new(config(m)?).context("the fit's configuration")?;
    let bold =
        nmm::fit::simulate_bold(&s, &s.values, trs).context("simulating the synthetic BOLD")?;
    let a = Array2::from_shape_fn((trs, s.n), |(t, i)| bold[t][i]);
    nmm::io::write_npy_2d(&bp, &a)?;
    let json = serde_json::json!({
        "bold": bp.display().to_string(),
        "config": s.cfg,
        "values": s.values,
        "samples": trs,
        "seed": s.cfg.seed,
        "nmm_version": nmm::VERSION,
        "command": nmm::command_line(),
    });
    nmm::io::write_json(&record, &json)?;
    say!(
        "fit --synthetic: {trs} BOLD samples x {} regions (TR {} ms) with {}; seed {}; wrote {} and {} in {:.1} s",
        s.n,
        s.cfg.bold.tr_ms,
        s.values
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        s.cfg.seed,
        bp.display(),
        record.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The fit itself.
fn fit_to(
    m: &ArgMatches,
    s: &Setup,
    started: Instant,
    out: PathBuf,
    record: PathBuf,
    plot_path: Option<PathBuf>,
) -> Result<()> {
    let bp = m.get_one::<PathBuf>("bold").expect("required");
    let series = read_series(bp)?;
    let (t, regions) = series.data.dim();
    if regions != s.n {
        bail!(
            "--bold {}: {regions} regions, but the connectome has {} (time must run down the rows)",
            bp.display(),
            s.n
        );
    }
    let windows = t / s.cfg.window_tr;
    if windows == 0 {
        bail!(
            "--bold {}: {t} samples are fewer than one window of {} TRs (window_tr)",
            bp.display(),
            s.cfg.window_tr
        );
    }
    let rows: Vec<Vec<f64>> = series.data.rows().into_iter().map(|r| r.to_vec()).collect();
    let emp_lower = match m.get_one::<PathBuf>("fc") {
        Some(fp) => {
            let fc = nmm::io::read_npy_f64(fp)?;
            if fc.shape() != [s.n, s.n] {
                bail!(
                    "--fc {}: shape {:?}, expected ({n}, {n}) for the connectome's {n} regions",
                    fp.display(),
                    fc.shape(),
                    n = s.n
                );
            }
            let flat: Vec<f64> = fc.iter().copied().collect();
            nmm::fit::lower_triangle(&flat, s.n)
                .with_context(|| format!("--fc {}", fp.display()))?
        }
        None => nmm::fit::fc_of_bold(&rows).with_context(|| format!("--bold {}", bp.display()))?,
    };
    // The squared difference's target: the BOLD's FC over windows of the fit's length.
    let target = nmm::fit::Target {
        fc: emp_lower.clone(),
        ..nmm::fit::Target::from_bold(&rows, s.cfg.window_tr)
            .with_context(|| format!("--bold {}", bp.display()))?
    };
    say!(
        "fit: {} regions, {t} BOLD samples = {windows} windows of {} TRs ({:.1} s each) per epoch, {} epochs; fitting {} from {}{}; Adam lr {}{} on their logarithms; loss -ln(0.5 + 0.5 r) + {} x FC mean squared difference{}; seed {}",
        s.n,
        s.cfg.window_tr,
        s.cfg.window_tr as f64 * s.cfg.bold.tr_ms / 1000.0,
        s.cfg.epochs,
        s.cfg.fit.join(", "),
        s.cfg
            .fit
            .iter()
            .map(|f| format!("{f} = {}", s.values[f]))
            .collect::<Vec<_>>()
            .join(", "),
        if s.cfg.connectome_gains {
            " and one gain per connectome link (reverse mode)"
        } else {
            ""
        },
        s.cfg.lr,
        s.cfg
            .lr_final
            .map_or(String::new(), |f| format!(" falling to {f}")),
        s.cfg.mse_weight,
        if s.cfg.realisations > 1 {
            format!(
                ", of the mean FC of {} noise realisations per window",
                s.cfg.realisations
            )
        } else {
            String::new()
        },
        s.cfg.seed
    );
    let bar = Bar::new(
        "{bar:30} {pos}/{len} windows  {msg}  {elapsed}",
        "fit",
        "windows",
    );
    let fit_started = Instant::now();
    let res = nmm::fit::fit(s, &target, windows, &bar)
        .with_context(|| format!("fitting to {}", bp.display()))?;
    let fit_seconds = fit_started.elapsed().as_secs_f64();
    bar.finish();
    let k = s.cfg.fit.len();
    let e = res.epochs.len();
    let values = Array2::from_shape_fn((e, k), |(i, j)| res.epochs[i].values[j]);
    let col = |f: &dyn Fn(&nmm::fit::Epoch) -> f64| Array1::from_iter(res.epochs.iter().map(f));
    let sim_fc = from_lower(&res.sim_fc_lower, s.n);
    let emp_fc = from_lower(&emp_lower, s.n);
    let start: Vec<f64> = s.cfg.fit.iter().map(|f| s.values[f]).collect();
    let mut entries = vec![
        ("names".into(), NpzEntry::Text(s.cfg.fit.join(","))),
        ("start".into(), NpzEntry::F1(Array1::from(start.clone()))),
        ("values".into(), NpzEntry::F2(values.clone())),
        ("loss".into(), NpzEntry::F1(col(&|x| x.loss))),
        ("window_r".into(), NpzEntry::F1(col(&|x| x.window_r))),
        ("fc_r".into(), NpzEntry::F1(col(&|x| x.fc_r))),
        ("fc_mse".into(), NpzEntry::F1(col(&|x| x.fc_mse))),
        ("sim_fc".into(), NpzEntry::F2(sim_fc.clone())),
        ("emp_fc".into(), NpzEntry::F2(emp_fc.clone())),
        ("seed".into(), NpzEntry::U64(s.cfg.seed)),
    ];
    let square = |v: &[f64]| Array2::from_shape_fn((s.n, s.n), |(i, j)| v[i * s.n + j]);
    let gains_matrix = res.gains.as_ref().map(|(_, g)| square(g));
    if let (Some((sc, _)), Some(g)) = (&res.gains, &gains_matrix) {
        entries.push(("fitted_sc".into(), NpzEntry::F2(square(sc))));
        entries.push(("gains".into(), NpzEntry::F2(g.clone())));
    }
    write_npz(&out, &entries)?;
    let json = serde_json::json!({
        "results": out.display().to_string(),
        "bold": bp.display().to_string(),
        "fc": m.get_one::<PathBuf>("fc").map(|p| p.display().to_string()),
        "config": s.cfg,
        "windows_per_epoch": windows,
        "fitted": s.cfg.fit,
        "start": start,
        "final": res.values,
        "per_epoch": res.epochs.iter().map(|e| serde_json::json!({
            "loss": e.loss, "window_r": e.window_r, "fc_r": e.fc_r, "fc_mse": e.fc_mse,
            "values": s.cfg.fit.iter().zip(&e.values).map(|(k, v)| (k.clone(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>(),
        "priors_final": res.priors.iter().map(|(k, (m, v))| (k.clone(), serde_json::json!({"mean": m, "precision": v}))).collect::<serde_json::Map<_, _>>(),
        "final_fc_r": res.epochs.last().map(|e| e.fc_r),
        "final_fc_mse": res.epochs.last().map(|e| e.fc_mse),
        "fit_seconds": fit_seconds,
        "seed": s.cfg.seed,
        "nmm_version": nmm::VERSION,
        "command": nmm::command_line(),
    });
    nmm::io::write_json(&record, &json)?;
    if let Some(p) = &plot_path {
        let title = format!(
            "nmm fit: {} regions, {windows} windows x {} epochs",
            s.n, s.cfg.epochs
        );
        let loss_label = if s.cfg.mse_weight > 0.0 {
            format!(
                "loss -ln(0.5 + 0.5 r) + {} x FC mean sq. difference, mean over windows",
                s.cfg.mse_weight
            )
        } else {
            "loss -ln(0.5 + 0.5 r), mean over windows [nats]".into()
        };
        plot::fit_figure(
            p,
            &plot::FitFigure {
                title: &title,
                names: &s.cfg.fit,
                start: &start,
                epochs: &res.epochs,
                emp: &emp_fc,
                sim: &sim_fc,
                loss_label: &loss_label,
                gains: gains_matrix.as_ref(),
            },
        )?;
    }
    say!(
        "{:>6} {:>9} {:>9} {:>9} {:>9}  {}",
        "epoch",
        "loss",
        "window r",
        "FC r",
        "FC mse",
        s.cfg
            .fit
            .iter()
            .map(|f| format!("{f:>9}"))
            .collect::<String>()
    );
    for (i, ep) in res.epochs.iter().enumerate() {
        say!(
            "{:>6} {:>9.4} {:>9.3} {:>9.3} {:>9.5}  {}",
            i + 1,
            ep.loss,
            ep.window_r,
            ep.fc_r,
            ep.fc_mse,
            ep.values
                .iter()
                .map(|v| format!("{v:>9.4}"))
                .collect::<String>()
        );
    }
    say!(
        "wrote {}, {}{} in {:.1} s",
        out.display(),
        record.display(),
        plot_path
            .as_ref()
            .map(|p| format!(" and {}", p.display()))
            .unwrap_or_default(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
