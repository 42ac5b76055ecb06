//! Model flags: one subcommand per model with a `--NAME` flag per parameter, and the defaults
//! of single-node runs.

use crate::args::float_arg;
use crate::args::get_f64;
use anyhow::{Context, Result, anyhow};
use clap::{ArgMatches, Command};
use nmm::discover::{UdeBase, UdeModel};
use nmm_core::Model;
use nmm_core::models::corrected::Library;
use nmm_core::models::{ChenCampbell, Corrected, Mpr, Rww, RwwGriffiths};

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
    /// Unit of each state variable, in state order (`"1"`: dimensionless), for labels.
    const STATE_UNITS: &'static [&'static str];
    /// Unit of the input `I(t)` of `deriv` (the stimulus and, in a network, the coupling).
    const INPUT_UNIT: &'static str;
    /// One-line description for `--help`.
    const ABOUT: &'static str;
}

impl RunDefaults for Mpr<f64> {
    const T_END: f64 = 80.0;
    const DT: f64 = 0.01;
    // The protocol of Montbrio et al. 2015, Fig. 2 (REFERENCE section 1).
    const STIM: &'static str = "step:3:0:30";
    const TIME_UNIT: &'static str = "ms";
    // r is a rate per ms (tau in ms); v and the input are in units of the QIF voltage scale.
    const STATE_UNITS: &'static [&'static str] = &["kHz", "1"];
    const INPUT_UNIT: &'static str = "1";
    const ABOUT: &'static str = "Montbrio-Pazo-Roxin exact QIF mean field (r, v); defaults run the protocol of Montbrio et al. 2015, Fig. 2";
}

impl RunDefaults for ChenCampbell<f64> {
    const T_END: f64 = 500.0;
    const DT: f64 = 0.01;
    const STIM: &'static str = "none";
    const TIME_UNIT: &'static str = "1";
    const STATE_UNITS: &'static [&'static str] = &["1", "1", "1", "1"];
    const INPUT_UNIT: &'static str = "1";
    const ABOUT: &'static str = "Chen-Campbell mean field of Izhikevich neurons with adaptation (r, v, w, s); eta = 0.12 bursts";
}

impl RunDefaults for Rww<f64> {
    const T_END: f64 = 5000.0;
    const DT: f64 = 0.1;
    const STIM: &'static str = "none";
    const TIME_UNIT: &'static str = "ms";
    // S_E and S_I are gating fractions; the input is a current.
    const STATE_UNITS: &'static [&'static str] = &["1", "1"];
    const INPUT_UNIT: &'static str = "nA";
    const ABOUT: &'static str =
        "Reduced Wong-Wang, Deco et al. 2014 (S_E, S_I); noise sigma on both";
}

impl RunDefaults for RwwGriffiths<f64> {
    const T_END: f64 = 5000.0;
    const DT: f64 = 0.1;
    const STIM: &'static str = "none";
    const TIME_UNIT: &'static str = "ms";
    const STATE_UNITS: &'static [&'static str] = &["1", "1"];
    const INPUT_UNIT: &'static str = "nA";
    const ABOUT: &'static str =
        "Reduced Wong-Wang in the gain form of Griffiths et al. 2022 (tanh-squashed currents)";
}

impl<const H1: usize, const H2: usize> RunDefaults for nmm_core::mlp::MlpMeanField<f64, H1, H2> {
    const T_END: f64 = 80.0;
    const DT: f64 = 0.01;
    // The MPR protocol, for comparison with `nmm mf mpr`.
    const STIM: &'static str = "step:3:0:30";
    const TIME_UNIT: &'static str = "tau";
    // The MPR state in the units it was trained in (time in units of tau).
    const STATE_UNITS: &'static [&'static str] = &["1/tau", "1"];
    const INPUT_UNIT: &'static str = "1";
    const ABOUT: &'static str = "The trained compact MLP mean field (r, v) from a .nmmw file (nmm train); defaults run the MPR protocol";
}

/// An axis label: `name [unit]` (`[1]` for a dimensionless quantity, as every figure here).
pub fn label(name: &str, unit: &str) -> String {
    format!("{name} [{unit}]")
}

/// The label of state variable `k` of model `M`.
pub fn state_label<M: Model<f64, N> + RunDefaults, const N: usize>(k: usize) -> String {
    label(M::STATE[k], M::STATE_UNITS[k])
}

/// The label of parameter `name` of model `M` (its unit from the parameter table).
pub fn param_label<M: Model<f64, N>, const N: usize>(name: &str) -> String {
    match M::PARAMS.iter().find(|p| p.name == name) {
        Some(p) => label(name, p.unit),
        None => name.to_string(),
    }
}

/// The [`RunDefaults`] of a model built on base `M`: `M`'s, with its own `--help` line.
macro_rules! base_run_defaults {
    ($about:expr) => {
        const T_END: f64 = M::T_END;
        const DT: f64 = M::DT;
        const STIM: &'static str = M::STIM;
        const TIME_UNIT: &'static str = M::TIME_UNIT;
        const STATE_UNITS: &'static [&'static str] = M::STATE_UNITS;
        const INPUT_UNIT: &'static str = M::INPUT_UNIT;
        const ABOUT: &'static str = $about;
    };
}

impl<M: RunDefaults + Library<f64, N>, const N: usize> RunDefaults for Corrected<f64, M, N> {
    base_run_defaults!(
        "An exact mean field plus a closed-form correction for sparse networks (a model file from nmm discover)"
    );
}

/// The flags of the `corrected` model: the model file, and a `--NAME` flag for every parameter
/// of either corrected base (MPR's and Chen-Campbell's, plus `p` and `N`); a flag the file's
/// base lacks is refused when the file is loaded.
pub fn corrected_args(c: Command) -> Command {
    let mut c = c.arg(
        clap::Arg::new("model")
            .long("model")
            .value_name("MODEL.toml")
            .required(true)
            .value_parser(clap::value_parser!(std::path::PathBuf))
            .help("Discovered model (nmm discover)"),
    );
    let mut seen: Vec<&str> = Vec::new();
    let specs = <Corrected<f64, Mpr<f64>, 2> as Model<f64, 2>>::PARAMS
        .iter()
        .chain(<Corrected<f64, ChenCampbell<f64>, 4> as Model<f64, 4>>::PARAMS);
    for p in specs {
        if seen.contains(&p.name) {
            continue;
        }
        seen.push(p.name);
        c = c.arg(float_arg(
            p.name,
            format!(
                "{} [{}] (default: the file's training value, else {})",
                p.doc, p.unit, p.default
            ),
        ));
    }
    c
}

/// The model of a discovered file on base `M`: the base's defaults, then the parameters the
/// training networks shared, then the `--NAME` flags present in `m` (`p` and `N` included).
///
/// # Errors
/// A bad file (naming it), a flag out of range, or a flag the base lacks.
pub fn corrected_from<M: Library<f64, N> + Default, const N: usize>(
    file: &nmm::discover::ModelFile,
    m: &ArgMatches,
) -> Result<Corrected<f64, M, N>> {
    let mut base = M::default();
    file.apply_base_params(&mut base)?;
    let mut c = file.corrected(base)?;
    set_corrected_flags(&mut c, m)?;
    Ok(c)
}

/// Sets the `--NAME` flags of [`corrected_args`] present in `m` on `x` (a model with the
/// parameters of a corrected base) and validates it.
///
/// # Errors
/// A flag out of range, or one that `x` lacks (the other base's).
fn set_corrected_flags<X: Model<f64, N>, const N: usize>(x: &mut X, m: &ArgMatches) -> Result<()> {
    let all = <Corrected<f64, Mpr<f64>, 2> as Model<f64, 2>>::PARAMS
        .iter()
        .chain(<Corrected<f64, ChenCampbell<f64>, 4> as Model<f64, 4>>::PARAMS);
    for p in all {
        if let Some(v) = get_f64(m, p.name) {
            if !X::PARAMS.iter().any(|q| q.name == p.name) {
                anyhow::bail!(
                    "--{}: not a parameter of {} (the file's base)",
                    p.name,
                    X::NAME
                );
            }
            x.set(p.name, v).with_context(|| format!("--{}", p.name))?;
        }
    }
    x.validate()?;
    Ok(())
}

impl<M, const N: usize, const I: usize, const H: usize> RunDefaults for UdeModel<M, N, I, H>
where
    M: RunDefaults + UdeBase<N, I>,
{
    base_run_defaults!(
        "A trained universal differential equation: an exact mean field plus its MLP term, or the MLP alone (a model file from nmm discover --epochs)"
    );
}

/// The trained UDE of a discovered file on base `M` with hidden width `H`: parameters as in
/// [`corrected_from`].
///
/// # Errors
/// A file without a network (made without `--epochs`), a bad network record (naming the
/// field), a flag out of range or one the base lacks.
pub fn ude_from<M: UdeBase<N, I>, const N: usize, const I: usize, const H: usize>(
    path: &std::path::Path,
    file: &nmm::discover::ModelFile,
    m: &ArgMatches,
) -> Result<UdeModel<M, N, I, H>> {
    let rec = file.network.as_ref().ok_or_else(|| {
        anyhow!(
            "{}: no trained network in this model file (it was made without --epochs)",
            path.display()
        )
    })?;
    let mut base = M::default();
    file.apply_base_params(&mut base)
        .with_context(|| path.display().to_string())?;
    let mut u = UdeModel::new(base, rec, 1.0, file.network_size)
        .with_context(|| path.display().to_string())?;
    set_corrected_flags(&mut u, m)?;
    Ok(u)
}

/// Reads the discovered model file `$path` and calls `$body` with `$model` bound to its
/// trained UDE ([`UdeModel`], parameters from the flags in `$m`) and `$N` to its state size.
macro_rules! with_ude {
    ($path:expr, $m:expr, |$model:ident, $N:ident| $body:expr) => {{
        let path: &std::path::Path = $path;
        let file = nmm::discover::ModelFile::read(path)?;
        let hidden = match &file.network {
            None => anyhow::bail!(
                "{}: no trained network in this model file (it was made without --epochs)",
                path.display()
            ),
            Some(n) => n.hidden,
        };
        match file.base {
            nmm::discover::Base::Mpr => {
                const $N: usize = 2;
                nmm::with_hidden!(
                    hidden,
                    |H| {
                        let $model = crate::models::ude_from::<nmm_core::models::Mpr<f64>, 2, 6, H>(
                            path, &file, $m,
                        )?;
                        $body
                    },
                    anyhow::bail!(
                        "{}: network.hidden {hidden}: expected one of {:?}",
                        path.display(),
                        nmm::models::HIDDEN
                    )
                )
            }
            nmm::discover::Base::Cc => {
                const $N: usize = 4;
                nmm::with_hidden!(
                    hidden,
                    |H| {
                        let $model = crate::models::ude_from::<
                            nmm_core::models::ChenCampbell<f64>,
                            4,
                            8,
                            H,
                        >(path, &file, $m)?;
                        $body
                    },
                    anyhow::bail!(
                        "{}: network.hidden {hidden}: expected one of {:?}",
                        path.display(),
                        nmm::models::HIDDEN
                    )
                )
            }
        }
    }};
}
pub(crate) use with_ude;

/// Reads the discovered model file `$path` and calls `$body` with `$model` bound to its
/// [`Corrected`] model (parameters from the flags in `$m`) and `$N` to its state size.
macro_rules! with_corrected {
    ($path:expr, $m:expr, |$model:ident, $N:ident| $body:expr) => {{
        let file = nmm::discover::ModelFile::read($path)?;
        match file.base {
            nmm::discover::Base::Mpr => {
                const $N: usize = 2;
                let $model = crate::models::corrected_from::<nmm_core::models::Mpr<f64>, 2>(&file, $m)?;
                $body
            }
            nmm::discover::Base::Cc => {
                const $N: usize = 4;
                let $model =
                    crate::models::corrected_from::<nmm_core::models::ChenCampbell<f64>, 4>(&file, $m)?;
                $body
            }
        }
    }};
}
pub(crate) use with_corrected;

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

/// Applies the `--eta`, `--p`, `--J` flags to a loaded MLP mean field.
pub fn set_mlp_flags<const H1: usize, const H2: usize>(
    model: &mut nmm_core::mlp::MlpMeanField<f64, H1, H2>,
    m: &ArgMatches,
) -> Result<()> {
    for name in ["eta", "p", "J"] {
        if let Some(v) = get_f64(m, name) {
            model.set(name, v).map_err(|e| anyhow!("--{name}: {e}"))?;
        }
    }
    Ok(())
}

/// The flags of the `mlp` model: the weight file and the network parameters it takes as inputs.
pub fn mlp_args(c: Command) -> Command {
    c.arg(
        clap::Arg::new("model")
            .long("model")
            .value_name("MODEL.nmmw")
            .required(true)
            .value_parser(clap::value_parser!(std::path::PathBuf))
            .help("Trained MLP mean field (nmm train)"),
    )
    .arg(float_arg("eta", "eta_bar [1] (default -5)".into()))
    .arg(float_arg(
        "p",
        "Connection probability [1] (default 1)".into(),
    ))
    .arg(float_arg("J", "Coupling J [1] (default 15)".into()))
}
