//! `nmm fixed-points <model>`: equilibria in a box, printed and as CSV.

use crate::args::{get_f64, out_arg};
use crate::models::{model_from_args, model_subcommands};
use crate::say;
use anyhow::{Context, Result, bail};
use clap::{Arg, ArgMatches, Command, value_parser};
use nmm::fixed_points::{DefaultBox, search};
use nmm::io::write_csv;
use nmm::with_model;
use nmm_core::Model;
use std::path::PathBuf;

/// The `fixed-points` command.
pub fn command() -> Command {
    Command::new("fixed-points")
        .about("Equilibria of a model in a box (Newton from a grid), with eigenvalues and stability")
        .subcommand_required(true)
        .subcommands(model_subcommands(|c| {
            c.arg(crate::args::float_arg("input", "Constant input I (added as the model's drive) (default 0)".into()))
                .arg(Arg::new("box").long("box").value_name("VAR=LO:HI,...").help(
                    "Search box per state variable, e.g. r=0:3,v=-6:2 (unnamed variables keep the model's default box)",
                ))
                .arg(
                    Arg::new("grid")
                        .long("grid")
                        .value_name("K")
                        .value_parser(value_parser!(u64).range(1..=1000))
                        .help("Newton starts per dimension (default: 40 for 2-D models, 8 for cc)"),
                )
                .arg(out_arg("Also write the table as CSV"))
        }))
}

/// Runs `fixed-points`.
pub fn run(m: &ArgMatches) -> Result<()> {
    let (name, sub) = m.subcommand().expect("clap requires a model");
    with_model!(name, |M, N| run_model::<M, N>(sub))
}

fn parse_box<const N: usize>(
    spec: &str,
    names: &[&str; N],
    lo: &mut [f64; N],
    hi: &mut [f64; N],
) -> Result<()> {
    for item in spec.split(',').filter(|s| !s.trim().is_empty()) {
        let parsed = item
            .split_once('=')
            .and_then(|(k, r)| r.split_once(':').map(|(a, b)| (k.trim(), a, b)));
        let Some((k, a, b)) = parsed else {
            bail!("--box: expected VAR=LO:HI, got {item:?}");
        };
        let Some(i) = names.iter().position(|n| *n == k) else {
            bail!(
                "--box: unknown state variable {k:?} (variables: {})",
                names.join(", ")
            );
        };
        let a: f64 = a
            .trim()
            .parse()
            .with_context(|| format!("--box {k}: LO {a:?} is not a number"))?;
        let b: f64 = b
            .trim()
            .parse()
            .with_context(|| format!("--box {k}: HI {b:?} is not a number"))?;
        if !(a.is_finite() && b.is_finite() && a < b) {
            bail!("--box {k}: need finite LO < HI, got {a}:{b}");
        }
        (lo[i], hi[i]) = (a, b);
    }
    Ok(())
}

fn run_model<M, const N: usize>(m: &ArgMatches) -> Result<()>
where
    M: Model<f64, N> + Default + DefaultBox<N>,
{
    let model: M = model_from_args(m)?;
    let input = get_f64(m, "input").unwrap_or(0.0);
    let (mut lo, mut hi) = M::BOX;
    if let Some(spec) = m.get_one::<String>("box") {
        parse_box(spec, &M::STATE, &mut lo, &mut hi)?;
    }
    let grid = m
        .get_one::<u64>("grid")
        .map(|g| *g as usize)
        .unwrap_or(M::GRID);
    if let Some(out) = m.get_one::<PathBuf>("out") {
        nmm::io::check_output(out)?;
    }
    let found = search::<M, N>(&model, input, lo, hi, grid)?;
    say!(
        "{}: {} equilibri{} in the box ({} of {} Newton starts converged){}",
        M::NAME,
        found.len(),
        if found.len() == 1 { "um" } else { "a" },
        found.converged,
        found.starts,
        if found.truncated {
            "; more exist than are listed"
        } else {
            ""
        }
    );
    let mut header: Vec<String> = M::STATE.iter().map(|s| s.to_string()).collect();
    for k in 0..N {
        header.push(format!("eig{k}_re"));
        header.push(format!("eig{k}_im"));
    }
    header.extend(["kind".into(), "stability".into(), "residual".into()]);
    let mut rows = Vec::new();
    for (k, e) in found.points.iter().enumerate() {
        let state: Vec<String> = M::STATE
            .iter()
            .zip(e.x)
            .map(|(n, x)| format!("{n} = {x:.9}"))
            .collect();
        let eigs: Vec<String> = e
            .eigenvalues
            .iter()
            .map(|(re, im)| {
                if *im == 0.0 {
                    format!("{re:.6}")
                } else {
                    format!("{re:.6}{im:+.6}i")
                }
            })
            .collect();
        say!(
            "  #{k}: {}  {}  eigenvalues [{}]",
            state.join(", "),
            e.kind,
            eigs.join(", ")
        );
        let mut row: Vec<String> = e.x.iter().map(|x| format!("{x:.12e}")).collect();
        for (re, im) in e.eigenvalues {
            row.push(format!("{re:.12e}"));
            row.push(format!("{im:.12e}"));
        }
        row.extend([
            e.kind.to_string(),
            format!("{:?}", e.stability),
            format!("{:.3e}", e.residual),
        ]);
        rows.push(row);
    }
    if let Some(out) = m.get_one::<PathBuf>("out") {
        write_csv(out, &header, &rows)?;
        say!("wrote {}", out.display());
    }
    Ok(())
}
