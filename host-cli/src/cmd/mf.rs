//! `nmm mf <model>`: integrate one mean-field node and write its trajectory.

use crate::args::{check_outputs, get_f64, out_arg, seed_arg};
use crate::models::{RunDefaults, model_from_args, model_subcommands};
use crate::{plot, say, say_part};
use anyhow::{Context, Result, bail};
use clap::{Arg, ArgMatches, Command, value_parser};
use ndarray::Array1;
use nmm::io::{NpzEntry, write_npz};
use nmm::models::{params_json, parse_state};
use nmm::{with_mlp, with_model};
use nmm_core::Model;
use nmm_core::integrate::{OdeMethod, step_count};
use nmm_core::mlp::MlpMeanField;

use nmm_core::sim::Grid;
use nmm_core::stim::StimSpec;
use serde_json::json;
use std::path::PathBuf;

/// The `mf` command.
pub fn command() -> Command {
    Command::new("mf")
        .about("Integrate one mean-field node (parameters by flag, e.g. --eta -5 --J 15)")
        .subcommand_required(true)
        .subcommands(model_subcommands(mf_args))
        .subcommand(mf_args(crate::models::mlp_args(
            Command::new("mlp").about(<MlpMeanField<f64> as RunDefaults>::ABOUT),
        )))
        .subcommand(mf_args(crate::models::corrected_args(
            Command::new("corrected").about(
                "An exact mean field plus a closed-form correction for sparse networks (a model file from nmm discover; --p, --N and the base's parameters by flag)",
            ),
        )))
        .subcommand(mf_args(crate::models::corrected_args(
            Command::new("ude").about(
                "The trained universal differential equation of a model file from nmm discover --epochs: the exact mean field plus its MLP term (or the MLP alone, --network-only); --p and the base's parameters by flag",
            ),
        )))
}

/// The options every `mf` model takes.
fn mf_args(c: Command) -> Command {
    {
        c.arg(Arg::new("init").long("init").value_name("VAR=X,...").help(
                "Initial state, e.g. r=0.08,v=-1.96 (unnamed variables keep the model's default: its quiescent fixed point or rest)",
            ))
            .arg(crate::args::float_arg("t0", "Start time [model time unit] (default 0)".into()))
            .arg(crate::args::float_arg("t-end", "End time [model time unit] (default: per model, see below)".into()))
            .arg(crate::args::float_arg("dt", "Integration step [model time unit] (default: 0.01 for mpr/cc, 0.1 ms for rww)".into()))
            .arg(
                Arg::new("integrator")
                    .long("integrator")
                    .value_parser(["euler", "heun", "rk4"])
                    .default_value("heun")
                    .help("Stepper; with noise (rww sigma > 0) euler = Euler-Maruyama, heun = stochastic Heun"),
            )
            .arg(Arg::new("stim").long("stim").value_name("SPEC").allow_hyphen_values(true).help(
                "Drive I(t): const:A | step:A:T0:T1 (A on T0 <= t < T1) | sin:A:F (F in 1/time unit) | noise:SIGMA:BETA[:H] (1/f^BETA, sampled every H, default 0.01) | none. Default: step:3:0:30 for mpr (the Montbrio 2015 protocol), none otherwise",
            ))
            .arg(seed_arg())
            .arg(
                Arg::new("every")
                    .long("every")
                    .value_name("K")
                    .value_parser(value_parser!(u64).range(1..))
                    .default_value("1")
                    .help("Store every K-th step"),
            )
            .arg(out_arg("Write the trajectory as .npz: t, one array per state variable, input, parameters, seed, version"))
            .arg(
                Arg::new("plot")
                    .long("plot")
                    .value_name("FILE.svg")
                    .value_parser(value_parser!(PathBuf))
                    .help("Also draw the trajectory (SVG)"),
            )
    }
}

/// Runs `mf`.
pub fn run(m: &ArgMatches) -> Result<()> {
    let (name, sub) = m.subcommand().expect("clap requires a model");
    if name == "mlp" {
        let path = sub.get_one::<PathBuf>("model").expect("required");
        return with_mlp!(f64, path, |model| {
            let mut model = model;
            crate::models::set_mlp_flags(&mut model, sub)?;
            run_model::<_, 2>(model, sub)
        });
    }
    if name == "corrected" {
        let path = sub.get_one::<PathBuf>("model").expect("required");
        return crate::models::with_corrected!(path, sub, |model, N| run_model::<_, N>(model, sub));
    }
    if name == "ude" {
        let path = sub.get_one::<PathBuf>("model").expect("required");
        return crate::models::with_ude!(path, sub, |model, N| run_model::<_, N>(model, sub));
    }
    with_model!(name, |M, N| run_model::<M, N>(
        model_from_args::<M, N>(sub)?,
        sub
    ))
}

fn run_model<M, const N: usize>(model: M, m: &ArgMatches) -> Result<()>
where
    M: Model<f64, N> + RunDefaults,
{
    let t0 = get_f64(m, "t0").unwrap_or(0.0);
    let t_end = get_f64(m, "t-end").unwrap_or(M::T_END);
    let dt = get_f64(m, "dt").unwrap_or(M::DT);
    let method: OdeMethod = m
        .get_one::<String>("integrator")
        .expect("has default")
        .parse()?;
    let seed = *m.get_one::<u64>("seed").expect("has default");
    let every = *m.get_one::<u64>("every").expect("has default") as usize;
    let stim_text = m
        .get_one::<String>("stim")
        .map(String::as_str)
        .unwrap_or(M::STIM);
    let stim: StimSpec = stim_text
        .parse()
        .with_context(|| format!("--stim {stim_text}"))?;
    let x0 = match m.get_one::<String>("init") {
        Some(s) => parse_state(s, &M::STATE, model.initial_state())?,
        None => model.initial_state(),
    };
    let Some(steps) = step_count(t0, t_end, dt) else {
        bail!("need t0 < t-end and dt > 0, all finite (got t0 = {t0}, t-end = {t_end}, dt = {dt})");
    };
    let grid = Grid {
        t0,
        dt,
        steps,
        every,
    };

    check_outputs(m, &["out", "plot"])?;
    let traj = nmm::mf::integrate(&model, x0, stim, seed, method, grid)?;

    print_summary::<M, N>(&traj, stim);
    let (params, units) = params_json(&model);
    let meta = json!({
        "nmm_version": nmm::VERSION,
        "command": nmm::command_line(),
        "model": M::NAME,
        "state": M::STATE.to_vec(),
        "params": params,
        "units": units,
        "time_unit": M::TIME_UNIT,
        "seed": seed,
        "integrator": method.name(),
        "noise": model.diffusion().iter().any(|s| *s != 0.0),
        "t0": t0, "t_end": t_end, "dt": dt, "every": every,
        "stim": stim.to_string(),
        "init": x0.to_vec(),
    });
    if let Some(out) = m.get_one::<PathBuf>("out") {
        let mut entries = vec![("t".to_string(), NpzEntry::F1(Array1::from(traj.t.clone())))];
        for (i, v) in M::STATE.iter().enumerate() {
            entries.push((
                v.to_string(),
                NpzEntry::F1(traj.x.iter().map(|x| x[i]).collect()),
            ));
        }
        entries.push((
            "input".into(),
            NpzEntry::F1(Array1::from(traj.input.clone())),
        ));
        for p in M::PARAMS {
            entries.push((
                format!("param_{}", p.name),
                NpzEntry::Scalar(model.get(p.name).unwrap_or(f64::NAN)),
            ));
        }
        entries.push(("seed".into(), NpzEntry::U64(seed)));
        entries.push((
            "meta".into(),
            NpzEntry::Text(serde_json::to_string_pretty(&meta)?),
        ));
        write_npz(out, &entries)?;
        say!("wrote {}", out.display());
    }
    if let Some(path) = m.get_one::<PathBuf>("plot") {
        let title = format!("nmm mf {}  ({stim})", M::NAME);
        let labels: Vec<String> = (0..N)
            .map(crate::models::state_label::<M, N>)
            .chain([crate::models::label("input I", M::INPUT_UNIT)])
            .collect();
        let mut series: Vec<(&str, Vec<f64>)> = labels[..N]
            .iter()
            .enumerate()
            .map(|(i, v)| (v.as_str(), traj.x.iter().map(|x| x[i]).collect()))
            .collect();
        series.push((labels[N].as_str(), traj.input.clone()));
        plot::time_series(
            path,
            &title,
            &format!("t [{}]", M::TIME_UNIT),
            &traj.t,
            &series,
        )?;
        say!("wrote {}", path.display());
    }
    Ok(())
}

/// A readable summary: per variable its start, range and end, and for a step drive the values
/// just before the step ends (the plateau) and at the end of the run.
fn print_summary<M: Model<f64, N>, const N: usize>(traj: &nmm::mf::Trajectory<N>, stim: StimSpec) {
    let n = traj.t.len();
    say!(
        "{}: {} samples, t = {} .. {}",
        M::NAME,
        n,
        traj.t[0],
        traj.t[n - 1]
    );
    let plateau_idx = match stim {
        StimSpec::Step { end, start, .. } if end > traj.t[0] && start < traj.t[n - 1] => {
            traj.t.iter().rposition(|&t| t < end)
        }
        _ => None,
    };
    say_part!(
        "{:>8} {:>12} {:>12} {:>12} {:>12}",
        "var",
        "start",
        "min",
        "max",
        "end"
    );
    if let Some(k) = plateau_idx {
        say_part!(" {:>14}", format!("at t={:.4}", traj.t[k]));
    }
    say!();
    for (i, name) in M::STATE.iter().enumerate() {
        let col = traj.x.iter().map(|x| x[i]);
        let min = col.clone().fold(f64::INFINITY, f64::min);
        let max = col.fold(f64::NEG_INFINITY, f64::max);
        say_part!(
            "{name:>8} {:>12.6} {min:>12.6} {max:>12.6} {:>12.6}",
            traj.x[0][i],
            traj.x[n - 1][i]
        );
        if let Some(k) = plateau_idx {
            say_part!(" {:>14.6}", traj.x[k][i]);
        }
        say!();
    }
}
