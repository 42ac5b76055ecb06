//! `nmm spiking qif|izh|sweep`: spiking-network runs and parameter sweeps.

use crate::args::{float_arg, get_f64, out_arg, seed_arg};
use crate::models::model_from_args;
use crate::progress::Bar;
use crate::{plot, say};
use anyhow::{Context, Result, bail};
use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use nmm::models::{params_json, parse_state};
use nmm::network::{
    Common, Connectivity, Heterogeneity, IzhParams, Output, QifParams, Synapse, run_izh, run_qif,
};
use nmm::spiking::{quiescent_state, run_meta, write_output};

use nmm_core::Model;
use nmm_core::models::{ChenCampbell, Mpr};
use nmm_core::stim::StimSpec;
use serde_json::{Value, json};
use std::path::PathBuf;

/// The `spiking` command.
pub fn command() -> Command {
    Command::new("spiking")
        .about("Spiking-network simulations (QIF, Izhikevich with adaptation) and parameter sweeps")
        .subcommand_required(true)
        .subcommand(with_common(param_flags::<Mpr<f64>, 2>(Command::new("qif")).about(
            "QIF network (Montbrio 2015; sparse setup of the 2025 paper); parameters as for `nmm mf mpr`",
        ))
        .arg(float_arg("v-peak", "Threshold V_peak (default 100)".into()))
        .arg(float_arg("v-reset", "Reset V_reset (default -V_peak)".into()))
        .arg(
            Arg::new("synapse")
                .long("synapse")
                .value_parser(["instant", "pulse"])
                .default_value("instant")
                .help("instant: each spike adds J/N to v of non-refractory targets (Montbrio 2015); pulse: a current pulse of unit area (2025 paper)"),
        )
        .arg(float_arg("delay", "Pulse delay after the threshold crossing [time unit] (default 0.01; at least tau/V_peak)".into()))
        .arg(float_arg("width", "Pulse width [time unit] (default 0.001)".into())))
        .subcommand(with_common(param_flags::<ChenCampbell<f64>, 4>(Command::new("izh")).about(
            "Izhikevich network with adaptation (Chen-Campbell 2022, dimensionless); parameters as for `nmm mf cc`",
        ))
        .arg(float_arg("v-peak", "Threshold v_peak (default 200)".into()))
        .arg(float_arg("v-reset", "Reset v_reset (default -v_peak)".into())))
        .subcommand(crate::cmd::sweep::command())
}

fn param_flags<M: Model<f64, N>, const N: usize>(mut c: Command) -> Command {
    for p in M::PARAMS {
        c = c.arg(float_arg(
            p.name,
            format!("{} [{}] (default {})", p.doc, p.unit, p.default),
        ));
    }
    c
}

fn with_common(c: Command) -> Command {
    c.arg(
        Arg::new("N")
            .long("N")
            .value_parser(value_parser!(u64).range(1..=4_000_000_000))
            .default_value("10000")
            .help("Number of neurons"),
    )
    .arg(float_arg("p", "Erdos-Renyi connection probability (default 1: all-to-all)".into()))
    .arg(Arg::new("procedural").long("procedural").action(ArgAction::SetTrue).help(
        "Regenerate each source's targets at every spike instead of storing p N^2 synapse indices (for N >= 1e5)",
    ))
    .arg(Arg::new("normalise").long("normalise").action(ArgAction::SetTrue).help(
        "Divide weights by p (J/(pN)); default: no normalisation (mean drive ~ J p r, as in the 2025 paper)",
    ))
    .arg(
        Arg::new("hetero")
            .long("hetero")
            .value_parser(["quantiles", "random"])
            .default_value("quantiles")
            .help("Lorentzian excitabilities: deterministic quantiles or random draws from the seed"),
    )
    .arg(float_arg("dt", "Euler step [time unit] (default 0.001)".into()))
    .arg(float_arg("t0", "Start time [time unit] (default 0)".into()))
    .arg(float_arg("t-end", "End time [time unit] (default 80 for qif, 300 for izh)".into()))
    .arg(float_arg("bin", "Rate bin width [time unit] (default 0.01 for qif, 0.1 for izh)".into()))
    .arg(Arg::new("stim").long("stim").value_name("SPEC").allow_hyphen_values(true).help(
        "Drive I(t) common to all neurons, as for `nmm mf` (default: step:3:0:30 for qif, none for izh)",
    ))
    .arg(seed_arg())
    .arg(
        Arg::new("stim-seed")
            .long("stim-seed")
            .value_name("U64")
            .value_parser(value_parser!(u64))
            .help("Seed of the stimulus noise (default: --seed; the same seed gives `nmm mf` the same drive)"),
    )
    .arg(Arg::new("init").long("init").value_name("r=R,v=V").help(
        "Initial population state: potentials drawn from a Lorentzian of centre v and half-width pi tau r (default: qif, MPR's quiescent fixed point; izh, r = 0, v = 0)",
    ))
    .arg(
        Arg::new("record")
            .long("record")
            .value_name("K")
            .value_parser(value_parser!(u64))
            .default_value("0")
            .help("Record the spike times of neurons 0..K (with quantile heterogeneity, index order is excitability order: neuron 0 is the least excitable)"),
    )
    .arg(
        Arg::new("threads")
            .long("threads")
            .value_parser(value_parser!(u64))
            .default_value("0")
            .help("Worker threads (0: all cores); the output does not depend on it"),
    )
    .arg(out_arg("Write .npz: t, r, v (and w, s for izh), input, spike_t, spike_i, parameters, seed"))
    .arg(Arg::new("plot").long("plot").value_name("FILE.svg").value_parser(value_parser!(PathBuf)).help("Also draw r(t), v(t)"))
}

/// Runs `spiking`.
pub fn run(m: &ArgMatches) -> Result<()> {
    match m.subcommand() {
        Some(("qif", sub)) => {
            let (c, p, meta) = qif_from_args(sub)?;
            check(sub, &c)?;
            let bar = Bar::new(
                "{bar:40} {pos}/{len} {msg}  {elapsed} (eta {eta})",
                "spiking",
                "",
            );
            let out = run_qif(&c, &p, &bar)?;
            bar.finish();
            finish(sub, "qif", &c, &out, meta)
        }
        Some(("izh", sub)) => {
            let (c, p, meta) = izh_from_args(sub)?;
            check(sub, &c)?;
            let bar = Bar::new(
                "{bar:40} {pos}/{len} {msg}  {elapsed} (eta {eta})",
                "spiking",
                "",
            );
            let out = run_izh(&c, &p, &bar)?;
            bar.finish();
            finish(sub, "izh", &c, &out, meta)
        }
        Some(("sweep", sub)) => crate::cmd::sweep::run(sub),
        _ => unreachable!("clap requires a subcommand"),
    }
}

fn common_from_args(
    m: &ArgMatches,
    t_end: f64,
    bin: f64,
    stim_default: &str,
    init: (f64, f64),
) -> Result<Common> {
    let n = *m.get_one::<u64>("N").expect("default") as usize;
    let p = get_f64(m, "p").unwrap_or(1.0);
    if !(p > 0.0 && p <= 1.0) {
        bail!("--p must be in (0, 1], got {p}");
    }
    let procedural = m.get_flag("procedural");
    let conn = if p >= 1.0 && !procedural {
        Connectivity::AllToAll
    } else {
        Connectivity::Random { p, procedural }
    };
    let stim_text = m
        .get_one::<String>("stim")
        .map(String::as_str)
        .unwrap_or(stim_default);
    let stim: StimSpec = stim_text
        .parse()
        .with_context(|| format!("--stim {stim_text}"))?;
    let init = match m.get_one::<String>("init") {
        Some(s) => {
            let x = parse_state(s, &["r", "v"], [init.0, init.1])?;
            if x[0] < 0.0 {
                bail!("--init: r must be >= 0");
            }
            (x[0], x[1])
        }
        None => init,
    };
    Ok(Common {
        n,
        dt: get_f64(m, "dt").unwrap_or(1e-3),
        t0: get_f64(m, "t0").unwrap_or(0.0),
        t_end: get_f64(m, "t-end").unwrap_or(t_end),
        bin: get_f64(m, "bin").unwrap_or(bin),
        conn,
        normalise: m.get_flag("normalise"),
        hetero: if m.get_one::<String>("hetero").map(String::as_str) == Some("random") {
            Heterogeneity::Random
        } else {
            Heterogeneity::Quantiles
        },
        stim,
        seed: *m.get_one::<u64>("seed").expect("default"),
        stim_seed: m
            .get_one::<u64>("stim-seed")
            .copied()
            .unwrap_or(*m.get_one::<u64>("seed").expect("default")),
        record: *m.get_one::<u64>("record").expect("default") as usize,
        threads: *m.get_one::<u64>("threads").expect("default") as usize,
        init,
    })
}

/// QIF settings from the command line; the default initial state is [`quiescent_state`].
pub fn qif_from_args(m: &ArgMatches) -> Result<(Common, QifParams, Value)> {
    let mf: Mpr<f64> = model_from_args(m)?;
    let p_conn = get_f64(m, "p").unwrap_or(1.0);
    let init = quiescent_state(&mf, p_conn.clamp(0.0, 1.0), m.get_flag("normalise"));
    let c = common_from_args(m, 80.0, 0.01, "step:3:0:30", init)?;
    let v_peak = get_f64(m, "v-peak").unwrap_or(100.0);
    let synapse = match m.get_one::<String>("synapse").map(String::as_str) {
        Some("pulse") => Synapse::Pulse {
            delay: get_f64(m, "delay").unwrap_or(0.01),
            width: get_f64(m, "width").unwrap_or(1e-3),
        },
        _ => Synapse::Instant,
    };
    let p = QifParams::from_mpr(
        &mf,
        v_peak,
        get_f64(m, "v-reset").unwrap_or(-v_peak),
        synapse,
    );
    let (params, units) = params_json(&mf);
    let syn = match synapse {
        Synapse::Instant => json!({"kind": "instant", "weight": "J/N per spike added to v"}),
        Synapse::Pulse { delay, width } => json!({"kind": "pulse", "delay": delay, "width": width}),
    };
    let meta = json!({"params": params, "units": units, "V_peak": p.v_peak, "V_reset": p.v_reset, "synapse": syn});
    Ok((c, p, meta))
}

/// Izhikevich settings from the command line.
pub fn izh_from_args(m: &ArgMatches) -> Result<(Common, IzhParams, Value)> {
    let mf: ChenCampbell<f64> = model_from_args(m)?;
    let c = common_from_args(m, 300.0, 0.1, "none", (0.0, 0.0))?;
    let v_peak = get_f64(m, "v-peak").unwrap_or(200.0);
    let p = IzhParams {
        mf,
        v_peak,
        v_reset: get_f64(m, "v-reset").unwrap_or(-v_peak),
    };
    let (params, units) = params_json(&mf);
    let meta = json!({"params": params, "units": units, "v_peak": p.v_peak, "v_reset": p.v_reset});
    Ok((c, p, meta))
}

fn finish(m: &ArgMatches, kind: &str, c: &Common, out: &Output, extra: Value) -> Result<()> {
    let meta = run_meta(kind, c, out, extra);
    let n = out.r.len();
    let mean_r = out.r.iter().sum::<f64>() / n.max(1) as f64;
    say!(
        "{kind}: N = {}, p = {}, {} bins of {}; mean rate {mean_r:.4}; {} spikes, {} synaptic events; connectivity {:.1} MB, state {:.1} MB",
        c.n,
        c.conn.p(),
        n,
        c.bin,
        out.spikes,
        out.events,
        out.conn_bytes as f64 / 1e6,
        out.state_bytes as f64 / 1e6
    );
    if let Some(path) = m.get_one::<PathBuf>("out") {
        write_output(path, kind, out, &meta)?;
        say!("wrote {}", path.display());
    }
    if let Some(path) = m.get_one::<PathBuf>("plot") {
        // Units: QIF time in membrane time constants tau, Izhikevich dimensionless.
        let (unit, r_label) = if kind == "izh" {
            ("t [1]", "r, rate [1]")
        } else {
            ("t [tau]", "r, rate [1/tau]")
        };
        let mut series = vec![
            (r_label, out.r.clone()),
            ("v, mean potential [1]", out.v.clone()),
        ];
        if kind == "izh" {
            series.push(("w, adaptation [1]", out.w.clone()));
        }
        series.push(("I, drive [1]", out.input.clone()));
        plot::time_series(
            path,
            &format!(
                "nmm spiking {kind}, N = {}, p = {}, rate in bins of {}",
                c.n,
                c.conn.p(),
                c.bin
            ),
            unit,
            &out.t,
            &series,
        )?;
        say!("wrote {}", path.display());
    }
    Ok(())
}

/// Every output path, before the run; the memory the connectivity will take, before it is
/// built.
fn check(m: &ArgMatches, c: &Common) -> Result<()> {
    crate::args::check_outputs(m, &["out", "plot"])?;
    let bytes = nmm::network::stored_bytes(c.n, c.conn);
    if bytes > 0 {
        crate::note!(
            "spiking: N = {}, p = {}: stored connectivity {:.1} MB (--procedural stores none)",
            c.n,
            c.conn.p(),
            bytes as f64 / 1e6
        );
    }
    Ok(())
}
