//! `nmm bold`: Balloon-Windkessel BOLD from any neural drive stored as `.npy`.

use crate::args::{check_outputs, get_f64, out_arg};
use crate::{plot, say};
use anyhow::{Context, Result, bail};
use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use ndarray::Array1;
use nmm::io::{NpzEntry, read_series, write_npz};
use nmm_core::bold::{BoldParams, BoldPreset};
use serde_json::{Map, Value, json};
use std::path::PathBuf;

/// Names of the overridable BOLD parameters (`--param NAME=VALUE`).
fn param_names() -> Vec<&'static str> {
    BoldParams::<f64>::SPECS.iter().map(|p| p.name).collect()
}

/// The `bold` command.
pub fn command() -> Command {
    Command::new("bold")
        .about("Turn a neural drive (1-D time series, or 2-D time x regions) into BOLD")
        .arg(
            Arg::new("input")
                .long("input")
                .value_name("Z.npy")
                .required(true)
                .value_parser(value_parser!(PathBuf))
                .help("Neural drive z (float32/float64 .npy, shape (time,) or (time, regions)), e.g. a firing rate; used as given"),
        )
        .arg(crate::args::float_arg("dt-ms", "Sampling step of the input [ms]".into()).required(true))
        .arg(
            Arg::new("preset")
                .long("preset")
                .value_parser(["stephan2007", "friston2000", "vbjax"])
                .default_value("stephan2007")
                .help("Balloon-Windkessel parameter set (REFERENCE section 6)"),
        )
        .arg(crate::args::float_arg("tr-ms", "Repetition time of the output [ms] (default 2000); a whole multiple of --dt-ms".into()))
        .arg(
            Arg::new("param")
                .long("param")
                .value_name("NAME=VALUE")
                .action(ArgAction::Append)
                .help(format!(
                    "Override one preset value (repeatable); names: {} (time constants in s)",
                    param_names().join(", ")
                )),
        )
        .arg(out_arg("Write .npz with bold (time x regions) and t_ms, the preset and its values").required(true))
        .arg(
            Arg::new("plot")
                .long("plot")
                .value_name("FILE.svg")
                .value_parser(value_parser!(PathBuf))
                .help("Also draw the BOLD of the first regions (SVG)"),
        )
}

/// Runs `bold`.
pub fn run(m: &ArgMatches) -> Result<()> {
    let input = m.get_one::<PathBuf>("input").expect("required");
    let out = m.get_one::<PathBuf>("out").expect("required");
    let dt_ms = get_f64(m, "dt-ms").expect("required");
    let tr_ms = get_f64(m, "tr-ms").unwrap_or(2000.0);
    let preset: BoldPreset = m
        .get_one::<String>("preset")
        .expect("has default")
        .parse()?;
    let mut params = BoldParams::<f64>::preset(preset);
    let mut overrides = Map::new();
    for item in m.get_many::<String>("param").into_iter().flatten() {
        let Some((k, v)) = item.split_once('=') else {
            bail!("--param: expected NAME=VALUE, got {item:?}");
        };
        let (k, v) = (k.trim(), v.trim());
        let value: f64 = v
            .parse()
            .with_context(|| format!("--param {k}: {v:?} is not a number"))?;
        params.set(k, value).map_err(|e| match e {
            nmm_core::ParamError::Unknown => {
                anyhow::anyhow!(
                    "--param: unknown BOLD parameter {k:?} (names: {})",
                    param_names().join(", ")
                )
            }
            other => anyhow::anyhow!("--param {k}: {other}"),
        })?;
        overrides.insert(k.into(), json!(value));
    }

    check_outputs(m, &["out", "plot"])?;
    let series = read_series(input)?;
    let (n_t, n_r) = series.data.dim();
    let bold = nmm::bold::of_series(&series.data, dt_ms, tr_ms, params)
        .with_context(|| input.display().to_string())?;
    let n_out = bold.nrows();
    let t_ms: Array1<f64> = (1..=n_out).map(|k| k as f64 * tr_ms).collect();

    let values: Map<String, Value> = BoldParams::<f64>::SPECS
        .iter()
        .map(|p| (p.name.to_string(), json!(params.get(p.name))))
        .collect();
    let meta = json!({
        "nmm_version": nmm::VERSION,
        "command": nmm::command_line(),
        "input": input.display().to_string(),
        "input_shape": if series.was_1d { vec![n_t] } else { vec![n_t, n_r] },
        "input_note": "neural drive z used as given (e.g. a firing rate)",
        "dt_ms": dt_ms,
        "tr_ms": tr_ms,
        "preset": preset.name(),
        "overrides": overrides,
        "params": values,
        "sampling": "instantaneous BOLD at t = k TR, k = 1, 2, ..., from rest at t = 0",
    });
    let mut entries = vec![
        ("bold".to_string(), NpzEntry::F2(bold.clone())),
        ("t_ms".to_string(), NpzEntry::F1(t_ms.clone())),
    ];
    for p in BoldParams::<f64>::SPECS {
        entries.push((
            format!("param_{}", p.name),
            NpzEntry::Scalar(params.get(p.name).unwrap_or(f64::NAN)),
        ));
    }
    entries.push((
        "meta".into(),
        NpzEntry::Text(serde_json::to_string_pretty(&meta)?),
    ));
    write_npz(out, &entries)?;
    say!(
        "BOLD ({} preset): {n_out} volumes x {n_r} regions at TR {tr_ms} ms; range {:.4} .. {:.4}; wrote {}",
        preset.name(),
        bold.iter().copied().fold(f64::INFINITY, f64::min),
        bold.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        out.display()
    );
    if let Some(path) = m.get_one::<PathBuf>("plot") {
        let shown = n_r.min(6);
        let series: Vec<(String, Vec<f64>)> = (0..shown)
            .map(|r| (format!("BOLD, region {r} [1]"), bold.column(r).to_vec()))
            .collect();
        let refs: Vec<(&str, Vec<f64>)> = series
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        let t_s: Vec<f64> = t_ms.iter().map(|t| t / 1000.0).collect();
        plot::time_series(
            path,
            &format!("BOLD ({}), first {shown} regions", preset.name()),
            "t [s]",
            &t_s,
            &refs,
        )?;
        say!("wrote {}", path.display());
    }
    Ok(())
}
