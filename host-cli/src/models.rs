//! The models the commands know, their per-command defaults, and name-based parameter handling.

use crate::float_arg;
use anyhow::{Context, Result, bail};
use clap::{ArgMatches, Command};
use nmm_core::Model;
use nmm_core::models::{ChenCampbell, Mpr, Rww, RwwGriffiths};
use serde_json::{Map, Value, json};

/// Defaults of a single-node run that depend on the model (its time unit and dynamics).
pub trait RunDefaults {
    /// Default end time (model time unit).
    const T_END: f64;
    /// Default step (model time unit).
    const DT: f64;
    /// Default stimulus.
    const STIM: &'static str;
    /// Time unit, for labels.
    const TIME_UNIT: &'static str;
    /// One-line description for `--help`.
    const ABOUT: &'static str;
}

impl RunDefaults for Mpr<f64> {
    const T_END: f64 = 80.0;
    const DT: f64 = 0.01;
    // The protocol of Montbrio et al. 2015, Fig. 2 (REFERENCE section 1).
    const STIM: &'static str = "step:3:0:30";
    const TIME_UNIT: &'static str = "ms";
    const ABOUT: &'static str = "Montbrio-Pazo-Roxin exact QIF mean field (r, v); defaults run the protocol of Montbrio et al. 2015, Fig. 2";
}

impl RunDefaults for ChenCampbell<f64> {
    const T_END: f64 = 500.0;
    const DT: f64 = 0.01;
    const STIM: &'static str = "none";
    const TIME_UNIT: &'static str = "1";
    const ABOUT: &'static str = "Chen-Campbell mean field of Izhikevich neurons with adaptation (r, v, w, s); eta = 0.12 bursts";
}

impl RunDefaults for Rww<f64> {
    const T_END: f64 = 5000.0;
    const DT: f64 = 0.1;
    const STIM: &'static str = "none";
    const TIME_UNIT: &'static str = "ms";
    const ABOUT: &'static str =
        "Reduced Wong-Wang, Deco et al. 2014 (S_E, S_I); noise sigma on both";
}

impl RunDefaults for RwwGriffiths<f64> {
    const T_END: f64 = 5000.0;
    const DT: f64 = 0.1;
    const STIM: &'static str = "none";
    const TIME_UNIT: &'static str = "ms";
    const ABOUT: &'static str =
        "Reduced Wong-Wang in the gain form of Griffiths et al. 2022 (tanh-squashed currents)";
}

impl<const H1: usize, const H2: usize> RunDefaults for nmm_core::mlp::MlpMeanField<f64, H1, H2> {
    const T_END: f64 = 80.0;
    const DT: f64 = 0.01;
    // The MPR protocol, for comparison with `nmm mf mpr`.
    const STIM: &'static str = "step:3:0:30";
    const TIME_UNIT: &'static str = "tau";
    const ABOUT: &'static str = "The trained compact MLP mean field (r, v) from a .nmmw file (nmm train); defaults run the MPR protocol";
}

/// Calls `$body` with `$M` bound to the model type named `$name` and `$N` to its state size.
#[macro_export]
macro_rules! with_model {
    ($name:expr, |$M:ident, $N:ident| $body:expr) => {{
        use nmm_core::models::{ChenCampbell, Mpr, Rww, RwwGriffiths};
        match $name {
            "mpr" => {
                type $M = Mpr<f64>;
                const $N: usize = 2;
                $body
            }
            "cc" => {
                type $M = ChenCampbell<f64>;
                const $N: usize = 4;
                $body
            }
            "rww" => {
                type $M = Rww<f64>;
                const $N: usize = 2;
                $body
            }
            "rww-griffiths" => {
                type $M = RwwGriffiths<f64>;
                const $N: usize = 2;
                $body
            }
            other => unreachable!("clap only accepts known models, got {other}"),
        }
    }};
}

/// Reads the weight file `$path` (a `&Path`) and calls `$body` with `$m` bound to it as an
/// `MlpMeanField<$T, H, H>` for the file's hidden width `H`, one of
/// [`crate::train::HIDDEN`] (const generics need the sizes at compile time, so each width is a
/// separately compiled model). Errors (with `?`) name the file: unreadable, corrupt, or of
/// another shape.
#[macro_export]
macro_rules! with_mlp {
    ($T:ty, $path:expr, |$m:ident| $body:expr) => {{
        let path: &std::path::Path = $path;
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let info = nmm_core::mlp::format::inspect(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let bad = |e| anyhow::anyhow!("{}: {e}", path.display());
        match (info.sizes[0], info.sizes[1], info.sizes[2], info.sizes[3]) {
            (6, 6, 6, 2) => {
                let $m =
                    nmm_core::mlp::MlpMeanField::<$T, 6, 6>::from_bytes(&bytes).map_err(bad)?;
                $body
            }
            (6, 16, 16, 2) => {
                let $m =
                    nmm_core::mlp::MlpMeanField::<$T, 16, 16>::from_bytes(&bytes).map_err(bad)?;
                $body
            }
            (6, 32, 32, 2) => {
                let $m =
                    nmm_core::mlp::MlpMeanField::<$T, 32, 32>::from_bytes(&bytes).map_err(bad)?;
                $body
            }
            (i, h1, h2, o) => anyhow::bail!(
                "{}: layer sizes {i}-{h1}-{h2}-{o}; nmm loads 6-H-H-2 with H in {:?}",
                path.display(),
                $crate::train::HIDDEN
            ),
        }
    }};
}

/// One subcommand per model, with a `--NAME` flag for each of its parameters (help shows unit,
/// default and valid range), plus the arguments `common` adds.
pub fn model_subcommands(common: impl Fn(Command) -> Command) -> Vec<Command> {
    fn one<M: Model<f64, N> + RunDefaults, const N: usize>(
        common: &dyn Fn(Command) -> Command,
    ) -> Command {
        let mut c = Command::new(M::NAME).about(M::ABOUT);
        for p in M::PARAMS {
            let range = if p.min == f64::MIN_POSITIVE {
                format!("(0, {}]", p.max)
            } else {
                format!("[{}, {}]", p.min, p.max)
            };
            c = c.arg(float_arg(
                p.name,
                format!(
                    "{} [{}] (default {}; valid {range})",
                    p.doc, p.unit, p.default
                ),
            ));
        }
        common(c)
    }
    vec![
        one::<Mpr<f64>, 2>(&common),
        one::<ChenCampbell<f64>, 4>(&common),
        one::<Rww<f64>, 2>(&common),
        one::<RwwGriffiths<f64>, 2>(&common),
    ]
}

/// The model with defaults overridden by the `--NAME` flags present in `m`, validated.
pub fn model_from_args<M: Model<f64, N> + Default, const N: usize>(m: &ArgMatches) -> Result<M> {
    let mut model = M::default();
    for p in M::PARAMS {
        if let Some(v) = m.get_one::<f64>(p.name) {
            model
                .set(p.name, *v)
                .with_context(|| format!("--{}", p.name))?;
        }
    }
    model.validate()?;
    Ok(model)
}

/// Parameters as a JSON object (name -> value) and their units (name -> unit).
pub fn params_json<M: Model<f64, N>, const N: usize>(model: &M) -> (Value, Value) {
    let mut vals = Map::new();
    let mut units = Map::new();
    for p in M::PARAMS {
        vals.insert(p.name.into(), json!(model.get(p.name)));
        units.insert(p.name.into(), json!(p.unit));
    }
    (Value::Object(vals), Value::Object(units))
}

/// Parses `name=value,name=value` for the state variables `names`; unspecified ones keep
/// `default`.
pub fn parse_state<const N: usize>(
    spec: &str,
    names: &[&str; N],
    default: [f64; N],
) -> Result<[f64; N]> {
    let mut x = default;
    for item in spec.split(',').filter(|s| !s.trim().is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            bail!(
                "--init: expected NAME=VALUE, got {item:?} (variables: {})",
                names.join(", ")
            );
        };
        let k = k.trim();
        let Some(i) = names.iter().position(|n| *n == k) else {
            bail!(
                "--init: unknown state variable {k:?} (variables: {})",
                names.join(", ")
            );
        };
        let v: f64 = v
            .trim()
            .parse()
            .with_context(|| format!("--init: value of {k} is not a number: {v:?}"))?;
        if !v.is_finite() {
            bail!("--init: value of {k} must be finite");
        }
        x[i] = v;
    }
    Ok(x)
}
