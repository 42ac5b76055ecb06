//! Model discovery (REFERENCE section 10): closed-form corrections to the exact mean fields
//! for sparse networks, learned from spiking-network runs.
//!
//! Two routes to the same kind of result, a sparse sum of candidate terms
//! ([`nmm_core::models::corrected`]) added to the untouched MPR or Chen-Campbell field:
//! - **direct**: the library fitted by STLSQ ([`stlsq`]) to the network data's derivatives
//!   (central differences of the runs' block means) minus the known field;
//! - **UDE**: a universal differential equation, the known MPR or Chen-Campbell field
//!   plus a small MLP term, trained as a neural ODE on rollouts with the trainer of
//!   [`crate::train`] (same loss, Adam, windows); then the library fitted by STLSQ to the
//!   learned term sampled at the training states.
//!
//! The threshold of each equation is chosen by cross-validation over runs (folds of whole runs,
//! one-standard-error rule). The result is a small versioned TOML file ([`ModelFile`]) that
//! loads as a [`Corrected`] model for `nmm mf`, `nmm bifurcation` and `nmm brain`.

pub mod stlsq;
mod ude;

pub use ude::{KnownCc, NetworkRecord, UdeBase, UdeModel};

use crate::error::{Context, Result, bail, input};
use crate::progress::Progress;
use crate::train::data::{list_runs, read_meta};
use ndarray::Array1;
use ndarray_npy::NpzReader;
use nmm_core::Model;
use nmm_core::models::corrected::{
    Corrected, FACTORS, Library, MAX_TERMS, library_row, term_count,
};
use nmm_core::models::{ChenCampbell, Mpr};
use nmm_core::real::Real;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use stlsq::{CvPoint, Gram};

/// The format tag of a discovered model file.
pub const FORMAT: &str = "nmm-discovered";
/// The version of that format this build writes and reads.
pub const VERSION: u32 = 1;

/// Which exact mean field is corrected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Base {
    /// Montbrio-Pazo-Roxin, for QIF networks.
    Mpr,
    /// Chen-Campbell, for Izhikevich networks with adaptation.
    Cc,
}

impl Base {
    /// `"mpr"` or `"cc"`.
    pub fn name(self) -> &'static str {
        match self {
            Base::Mpr => "mpr",
            Base::Cc => "cc",
        }
    }

    /// The spiking network the base describes (`"qif"` or `"izh"`, as `nmm spiking` names
    /// them).
    pub fn network(self) -> &'static str {
        match self {
            Base::Mpr => "qif",
            Base::Cc => "izh",
        }
    }

    /// Candidate terms per equation (connectivity factors times monomials).
    pub fn candidate_terms(self) -> usize {
        match self {
            Base::Mpr => term_count::<f64, Mpr<f64>, 2>(),
            Base::Cc => term_count::<f64, ChenCampbell<f64>, 4>(),
        }
    }

    /// The base with `n` state variables (2: MPR, else Chen-Campbell).
    pub(crate) fn of<const N: usize>() -> Self {
        if N == 2 { Base::Mpr } else { Base::Cc }
    }

    /// The inputs of the UDE's network term: the state, the run's constants, the drive `I`.
    pub fn ude_inputs(self) -> Vec<&'static str> {
        let constants = match self {
            Base::Mpr => <Mpr<f64> as ude::UdeBase<2, 6>>::CONSTANTS,
            Base::Cc => <ChenCampbell<f64> as ude::UdeBase<4, 8>>::CONSTANTS,
        };
        let mut v = self.state().to_vec();
        v.extend_from_slice(constants);
        v.push("I");
        v
    }

    /// The state variables.
    pub fn state(self) -> &'static [&'static str] {
        match self {
            Base::Mpr => &<Mpr<f64> as Model<f64, 2>>::STATE,
            Base::Cc => &<ChenCampbell<f64> as Model<f64, 4>>::STATE,
        }
    }
}

impl std::str::FromStr for Base {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mpr" => Ok(Base::Mpr),
            "cc" => Ok(Base::Cc),
            other => bail!("base {other:?}: expected mpr or cc"),
        }
    }
}

/// One nonzero term of a closed form, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Term {
    /// The state variable whose derivative it enters (`r`, `v`, `w`, `s`).
    pub equation: String,
    /// The connectivity factor, one of [`FACTORS`].
    pub factor: String,
    /// The monomial, one of the base's [`Library::MONOMIALS`].
    pub monomial: String,
    /// Coefficient (units of `dx/dt` per unit of the term; time unit of the training data).
    pub coef: f64,
}

/// How one equation's fit went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EquationFit {
    /// The state variable.
    pub equation: String,
    /// Relative threshold used (chosen by cross-validation unless given).
    pub threshold: f64,
    /// Fraction of the target's sum of squares that the closed form explains (the target is
    /// the derivative minus the known field, or the learned term).
    pub r2: f64,
    /// Root-mean-square of the target (units of `dx/dt`).
    pub target_rms: f64,
    /// Samples fitted.
    pub samples: usize,
    /// The cross-validation curve (empty with a fixed threshold).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cv: Vec<CvRow>,
}

/// One point of a cross-validation curve, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CvRow {
    /// Relative threshold.
    pub threshold: f64,
    /// Held-out mean squared error (units of `(dx/dt)^2`).
    pub mse: f64,
    /// Its standard error over folds.
    pub se: f64,
    /// Terms kept at this threshold on all the data.
    pub terms: usize,
}

impl From<CvPoint> for CvRow {
    fn from(p: CvPoint) -> Self {
        CvRow {
            threshold: p.threshold,
            mse: p.mse,
            se: p.se,
            terms: p.terms,
        }
    }
}

/// A closed form and how it was fitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClosedForm {
    /// Nonzero terms.
    #[serde(default)]
    pub terms: Vec<Term>,
    /// One record per equation.
    #[serde(default)]
    pub fits: Vec<EquationFit>,
}

/// The trained universal differential equation, summarised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UdeSummary {
    /// Hidden width of the network term.
    pub hidden: usize,
    /// Epochs run.
    pub epochs: usize,
    /// Epoch (1-based) of the kept weights (lowest validation loss).
    pub best_epoch: usize,
    /// Training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Validation loss per epoch.
    pub val_loss: Vec<f64>,
    /// Runs trained on and validated on.
    pub runs: [usize; 2],
    /// Seed of the network's initial weights, shuffling and run split (the file's `meta.seed`
    /// is that of the fit's cross-validation folds, which may differ with `--network-from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// A discovered model file (TOML): the base, the closed form it loads as, and the record of
/// how it was found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] of the writer.
    pub version: u32,
    /// The corrected mean field.
    pub base: Base,
    /// Where the model's terms come from: `"ude"` or `"direct"`.
    pub source: String,
    /// Network size of the training data (the default `N` of the loaded model).
    pub network_size: f64,
    /// The base parameters the training networks shared (e.g. `delta`, `tau`), the defaults
    /// of the loaded model.
    #[serde(default)]
    pub base_params: std::collections::BTreeMap<String, f64>,
    /// The model: its terms and fits.
    pub model: ClosedForm,
    /// The library fitted straight to the network derivatives (for comparison; equal to
    /// `model` when `source` is `"direct"`).
    pub direct: ClosedForm,
    /// The UDE, when one was trained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ude: Option<UdeSummary>,
    /// The UDE's trained network (`nmm mf ude` runs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkRecord>,
    /// Fitting settings and provenance.
    pub meta: Meta,
}

/// Settings and provenance recorded in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// nmm's version.
    pub nmm_version: String,
    /// The command line.
    pub command: String,
    /// Seed of the UDE's weights, shuffling and split, and of the cross-validation folds
    /// (with `--network-from`, of the folds only: the network's is `ude.seed`).
    pub seed: u64,
    /// Sample interval of the fitted data (time units).
    pub dt: f64,
    /// Ridge of STLSQ.
    pub alpha: f64,
    /// Cross-validation folds.
    pub folds: usize,
    /// Cross-validation tolerance (R^2 within it of the best).
    pub cv_tolerance: f64,
    /// The training runs' files.
    pub runs: Vec<String>,
    /// Connection probabilities present in the data.
    pub p_values: Vec<f64>,
}

/// One network run on the fitting grid: block means over `dt`.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// Source file.
    pub file: PathBuf,
    /// Connection probability.
    pub p: f64,
    /// Network size.
    pub n: f64,
    /// The mean-field parameters the network was simulated with (name -> value).
    pub params: std::collections::BTreeMap<String, f64>,
    /// Sample interval (time units).
    pub dt: f64,
    /// One series per state variable of the base, in state order.
    pub x: Vec<Vec<f64>>,
    /// The drive `I(t)`.
    pub input: Vec<f64>,
}

/// Reads every run of the sweep directories `dirs` made by networks of `base`'s kind,
/// block-averaged onto `dt` (a whole multiple of each file's sample interval).
///
/// # Errors
/// Naming the file: a network of the other kind, missing arrays, non-finite values, uneven
/// times, a `dt` that is not a multiple of the sample interval, missing `p`, `N` or params in
/// the metadata; fewer than 3 runs in all.
pub fn load_runs(dirs: &[PathBuf], base: Base, dt: f64) -> Result<Vec<Run>> {
    if !(dt.is_finite() && dt > 0.0) {
        bail!("--dt must be a positive number of time units, got {dt}");
    }
    let mut runs = Vec::new();
    for dir in dirs {
        for file in run_files(dir)? {
            runs.push(load_run(&file, base, dt)?);
        }
    }
    if runs.len() < 3 {
        bail!(
            "{} runs in {:?}; discovery cross-validates over runs and needs at least 3",
            runs.len(),
            dirs
        );
    }
    Ok(runs)
}

/// The run files of a sweep directory: those its manifest lists (and that exist), or every
/// `.npz` in it, in name order.
fn run_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if dir.join("manifest.csv").is_file() {
        return Ok(list_runs(dir)?.0.into_iter().map(|e| e.file).collect());
    }
    if !dir.is_dir() {
        bail!(
            "--data {}: not a directory (expected the --out directory of `nmm spiking sweep`)",
            dir.display()
        );
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "npz") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn load_run(file: &Path, base: Base, dt: f64) -> Result<Run> {
    let meta = read_meta(file)?;
    let net = meta["network"].as_str().unwrap_or("qif");
    if net != base.network() {
        bail!(
            "{}: a {net:?} network; base {} is fitted to {:?} networks",
            file.display(),
            base.name(),
            base.network()
        );
    }
    let num = |v: &Value, what: &str| -> Result<f64> {
        v.as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| input!("{}: metadata lacks a finite {what}", file.display()))
    };
    let p = num(&meta["p"], "p")?;
    let n = num(&meta["N"], "N")?;
    let mut params = std::collections::BTreeMap::new();
    if let Some(obj) = meta["params"].as_object() {
        for (k, v) in obj {
            if let Some(x) = v.as_f64() {
                params.insert(k.clone(), x);
            }
        }
    } else {
        bail!("{}: metadata lacks the mean-field `params`", file.display());
    }
    let f = std::fs::File::open(file).map_err(|e| crate::Error::io(file, e))?;
    let mut npz =
        NpzReader::new(f).map_err(|e| input!("{}: not an .npz file ({e})", file.display()))?;
    let mut read = |name: &str| -> Result<Vec<f64>> {
        let a: Array1<f64> = npz
            .by_name(name)
            .map_err(|e| input!("{}: no float64 1-D array `{name}` ({e})", file.display()))?;
        let a = a.to_vec();
        if let Some(k) = a.iter().position(|x| !x.is_finite()) {
            bail!(
                "{}: non-finite value in `{name}` at index {k}",
                file.display()
            );
        }
        Ok(a)
    };
    let t = read("t")?;
    let raw: Vec<Vec<f64>> = base
        .state()
        .iter()
        .map(|s| read(s))
        .collect::<Result<_>>()?;
    let input = read("input")?;
    if t.len() < 3 || raw.iter().any(|x| x.len() != t.len()) || input.len() != t.len() {
        bail!(
            "{}: arrays of unequal length or fewer than 3 samples",
            file.display()
        );
    }
    let bin = (t[t.len() - 1] - t[0]) / (t.len() - 1) as f64;
    if bin.is_nan()
        || bin <= 0.0
        || t.windows(2)
            .any(|w| ((w[1] - w[0]) - bin).abs() > 1e-6 * bin)
    {
        bail!(
            "{}: `t` is not evenly spaced and increasing",
            file.display()
        );
    }
    let m = (dt / bin).round();
    if m < 1.0 || (m * bin - dt).abs() > 1e-6 * dt {
        bail!(
            "{}: --dt {dt} is not a whole multiple of the sample interval {bin}",
            file.display()
        );
    }
    let m = m as usize;
    let blocks = t.len() / m;
    let mean = |x: &[f64]| -> Vec<f64> {
        (0..blocks)
            .map(|b| x[b * m..(b + 1) * m].iter().sum::<f64>() / m as f64)
            .collect()
    };
    if blocks < 3 {
        bail!("{}: fewer than 3 samples of {dt}", file.display());
    }
    Ok(Run {
        file: file.to_path_buf(),
        p,
        n,
        params,
        dt: m as f64 * bin,
        x: raw.iter().map(|x| mean(x)).collect(),
        input: mean(&input),
    })
}

/// The base model with the run's parameters.
fn base_model<M: Model<f64, N> + Default, const N: usize>(run: &Run) -> Result<M> {
    let mut m = M::default();
    for spec in M::PARAMS {
        if let Some(v) = run.params.get(spec.name) {
            m.set(spec.name, *v)
                .map_err(|e| input!("{}: params.{}: {e}", run.file.display(), spec.name))?;
        }
    }
    Ok(m)
}

/// Per-equation, per-run normal equations of the direct fit: the target is the central
/// difference of the block means minus the known field at the middle sample.
fn direct_grams<M: Library<f64, N> + Default, const N: usize>(
    runs: &[Run],
) -> Result<Vec<Vec<Gram>>> {
    let k = term_count::<f64, M, N>();
    let mut out = vec![Vec::new(); N];
    let mut row = vec![0.0; k];
    for run in runs {
        let m: M = base_model(run)?;
        let mut g = vec![Gram::new(k); N];
        let len = run.input.len();
        for t in 1..len - 1 {
            let x: [f64; N] = core::array::from_fn(|i| run.x[i][t]);
            let f = m.deriv(&x, run.input[t]);
            library_row(&m, run.p, run.n, &x, run.input[t], &mut row);
            for i in 0..N {
                let d = (run.x[i][t + 1] - run.x[i][t - 1]) / (2.0 * run.dt);
                g[i].add(&row, d - f[i], d);
            }
        }
        for (i, mut gi) in g.into_iter().enumerate() {
            gi.symmetrise();
            out[i].push(gi);
        }
    }
    Ok(out)
}

/// Fits each equation's groups by STLSQ, the threshold by cross-validation (`threshold`
/// `None`) or given.
fn fit_equations<M: Library<f64, N>, const N: usize>(
    grams: &[Vec<Gram>],
    threshold: Option<f64>,
    settings: &stlsq::Settings,
    (folds, seed, tolerance): (usize, u64, f64),
) -> Result<ClosedForm> {
    let k = term_count::<f64, M, N>();
    let nm = M::MONOMIALS.len();
    let mut cf = ClosedForm {
        terms: Vec::new(),
        fits: Vec::new(),
    };
    for (i, groups) in grams.iter().enumerate() {
        let all = Gram::sum(k, groups);
        let scale = stlsq::column_rms(&all);
        let (t, cv) = match threshold {
            Some(t) => (t, Vec::new()),
            None => {
                let f = stlsq::round_robin(groups.len(), folds, seed);
                stlsq::cross_validate(groups, &f, settings, tolerance).ok_or_else(|| {
                    input!("equation {}: a singular least-squares system in cross-validation (collinear library columns: add runs at more connection probabilities)", M::STATE[i])
                })?
            }
        };
        let c = stlsq::fit(
            &all,
            &scale,
            &stlsq::Settings {
                threshold: t,
                ..*settings
            },
        )
        .ok_or_else(|| input!("equation {}: a singular least-squares system", M::STATE[i]))?;
        let sst = all.yty;
        let r2 = if sst > 0.0 {
            1.0 - all.mse(&c) * all.n as f64 / sst
        } else {
            0.0
        };
        for (j, &cj) in c.iter().enumerate() {
            if cj != 0.0 {
                cf.terms.push(Term {
                    equation: M::STATE[i].to_string(),
                    factor: FACTORS[j / nm].to_string(),
                    monomial: M::MONOMIALS[j % nm].to_string(),
                    coef: cj,
                });
            }
        }
        cf.fits.push(EquationFit {
            equation: M::STATE[i].to_string(),
            threshold: t,
            r2,
            target_rms: (sst / all.n.max(1) as f64).sqrt(),
            samples: all.n,
            cv: cv.into_iter().map(CvRow::from).collect(),
        });
    }
    Ok(cf)
}

/// What [`discover`] is asked to do (the flags of `nmm discover`, same names and units).
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Sweep directories of network runs (`--data`).
    pub dirs: Vec<PathBuf>,
    /// The corrected mean field (`--base`).
    pub base: Base,
    /// Sample interval of the fitted data (`--dt`, time units).
    pub dt: f64,
    /// Relative STLSQ threshold; `None` chooses it by cross-validation (`--threshold`).
    pub threshold: Option<f64>,
    /// Ridge (`--alpha`).
    pub alpha: f64,
    /// Cross-validation folds over runs (`--folds`).
    pub folds: usize,
    /// The sparsest fit is kept whose held-out R^2 is within this of the best
    /// (`--cv-tolerance`; see [`stlsq::cross_validate`]).
    pub cv_tolerance: f64,
    /// UDE epochs; 0 fits the library to the derivatives only (`--epochs`).
    pub epochs: usize,
    /// Hidden width of the UDE's network term (`--hidden`: 6, 16 or 32).
    pub hidden: usize,
    /// Adam learning rate (`--lr`).
    pub lr: f64,
    /// Data intervals per rollout window (`--rollout`).
    pub rollout: usize,
    /// Heun steps per data interval in the UDE's rollouts (`--substeps`): MPR's high-rate
    /// focus turns at up to ~9 rad per time unit (J = 20), beyond Heun's stability at a step of
    /// 0.1, so the known part needs steps of about 0.02.
    pub substeps: usize,
    /// Windows per Adam step (`--batch`).
    pub batch: usize,
    /// Fraction of runs held out for validation of the UDE (`--val-fraction`).
    pub val_fraction: f64,
    /// The UDE's known part is the base field (`true`), or the network is the whole field, the
    /// data-driven MLP mean field, and the closed form is fitted to network minus base
    /// (`false`, `--network-only`).
    pub known: bool,
    /// Fit the closed form to the network of this earlier model file (`--network-from`)
    /// instead of training one; `epochs`, `hidden` and the training settings are then unused.
    pub network_from: Option<PathBuf>,
    /// Seed (`--seed`).
    pub seed: u64,
}

impl Default for Job {
    fn default() -> Self {
        Self {
            dirs: Vec::new(),
            base: Base::Mpr,
            dt: 0.05,
            threshold: None,
            alpha: 0.05,
            folds: 5,
            cv_tolerance: 0.02,
            epochs: 0,
            hidden: 6,
            lr: 3e-3,
            rollout: 20,
            substeps: 4,
            batch: 256,
            val_fraction: 0.2,
            known: true,
            network_from: None,
            seed: 1,
        }
    }
}

impl Job {
    /// Checks the settings.
    ///
    /// # Errors
    /// Naming the flag.
    pub fn check(&self) -> Result<()> {
        if self.dirs.is_empty() {
            bail!("--data: give at least one sweep directory");
        }
        if let Some(t) = self.threshold
            && !(t.is_finite() && t >= 0.0)
        {
            bail!("--threshold must be >= 0, got {t}");
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            bail!("--alpha must be >= 0, got {}", self.alpha);
        }
        if !(self.cv_tolerance.is_finite() && (0.0..1.0).contains(&self.cv_tolerance)) {
            bail!(
                "--cv-tolerance must be in [0, 1), got {}",
                self.cv_tolerance
            );
        }
        if self.folds < 2 {
            bail!("--folds must be at least 2, got {}", self.folds);
        }
        if self.network_from.is_some() {
            if self.epochs > 0 || !self.known {
                bail!(
                    "--network-from reuses a trained network: it takes neither --epochs nor --network-only"
                );
            }
        } else if !self.known && self.epochs == 0 {
            bail!("--network-only trains a network: give --epochs");
        }
        if self.epochs > 0 {
            if !crate::models::HIDDEN.contains(&self.hidden) {
                bail!(
                    "--hidden must be one of {:?}, got {}",
                    crate::models::HIDDEN,
                    self.hidden
                );
            }
            if !(self.lr.is_finite() && self.lr > 0.0) {
                bail!("--lr must be > 0, got {}", self.lr);
            }
            if self.rollout == 0 || self.batch == 0 || self.substeps == 0 {
                bail!("--rollout, --substeps and --batch must be at least 1");
            }
            if !(0.0..1.0).contains(&self.val_fraction) {
                bail!(
                    "--val-fraction must be in [0, 1), got {}",
                    self.val_fraction
                );
            }
        }
        Ok(())
    }
}

/// Discovers a closed-form correction from the network runs of `job` (see the module docs);
/// `progress` counts the UDE's batches and logs its epochs.
///
/// # Errors
/// Bad data or settings (naming the file or flag), a diverged UDE training, a singular fit.
pub fn discover(job: &Job, progress: &dyn Progress) -> Result<ModelFile> {
    job.check()?;
    let runs = load_runs(&job.dirs, job.base, job.dt)?;
    match job.base {
        Base::Mpr => discover_with::<Mpr<f64>, 2, 6>(job, &runs, progress),
        Base::Cc => discover_with::<ChenCampbell<f64>, 4, 8>(job, &runs, progress),
    }
}

fn discover_with<M: ude::UdeBase<N, I>, const N: usize, const I: usize>(
    job: &Job,
    runs: &[Run],
    progress: &dyn Progress,
) -> Result<ModelFile> {
    let settings = stlsq::Settings {
        alpha: job.alpha,
        ..Default::default()
    };
    progress.log(&format!(
        "direct fit: {} runs, {} candidate terms per equation",
        runs.len(),
        term_count::<f64, M, N>()
    ));
    let direct = fit_equations::<M, N>(
        &direct_grams::<M, N>(runs)?,
        job.threshold,
        &settings,
        (job.folds, job.seed, job.cv_tolerance),
    )?;
    let prev = match &job.network_from {
        Some(p) => Some((p.as_path(), ModelFile::read(p)?)),
        None => None,
    };
    let (model, ude, network, source) = if job.epochs > 0 || prev.is_some() {
        let hidden = match &prev {
            Some((p, f)) => match &f.network {
                Some(n) if crate::models::HIDDEN.contains(&n.hidden) => n.hidden,
                Some(n) => bail!(
                    "{}: network.hidden {}: expected one of {:?}",
                    p.display(),
                    n.hidden,
                    crate::models::HIDDEN
                ),
                None => 0,
            },
            None => job.hidden,
        };
        let (grams, summary, net) = crate::with_hidden!(
            hidden,
            |H| ude::ude::<M, H, N, I>(job, runs, prev.as_ref().map(|(p, f)| (*p, f)), progress)?,
            match &prev {
                Some((p, _)) => bail!(
                    "{}: no trained network of a known width in this model file (made without --epochs?)",
                    p.display()
                ),
                None => bail!("--hidden {}", job.hidden),
            }
        );
        let cf = fit_equations::<M, N>(
            &grams,
            job.threshold,
            &settings,
            (job.folds, job.seed, job.cv_tolerance),
        )?;
        (cf, Some(summary), Some(net), "ude")
    } else {
        (direct.clone(), None, None, "direct")
    };
    let mut p_values: Vec<f64> = runs.iter().map(|r| r.p).collect();
    p_values.sort_by(f64::total_cmp);
    p_values.dedup();
    // The base parameters every run shares (those that differ, eta and J, are the grid's).
    let mut base_params = std::collections::BTreeMap::new();
    for spec in M::PARAMS {
        let vals: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.params.get(spec.name).copied())
            .collect();
        if vals.len() == runs.len() && vals.iter().all(|v| *v == vals[0]) {
            base_params.insert(spec.name.to_string(), vals[0]);
        }
    }
    if model.terms.len() > MAX_TERMS {
        bail!(
            "the fit kept {} terms; a model holds at most {MAX_TERMS}: raise --threshold (or --cv-tolerance)",
            model.terms.len()
        );
    }
    let n0 = runs[0].n;
    if runs.iter().any(|r| r.n != n0) {
        progress
            .log("note: the runs' network sizes differ; the model's default N is the first run's");
    }
    Ok(ModelFile {
        format: FORMAT.into(),
        version: VERSION,
        base: Base::of::<N>(),
        source: source.into(),
        network_size: n0,
        base_params,
        model,
        direct,
        ude,
        network,
        meta: Meta {
            nmm_version: crate::VERSION.into(),
            command: crate::command_line(),
            seed: job.seed,
            dt: runs[0].dt,
            alpha: job.alpha,
            folds: job.folds,
            cv_tolerance: job.cv_tolerance,
            runs: runs.iter().map(|r| r.file.display().to_string()).collect(),
            p_values,
        },
    })
}

impl ModelFile {
    /// Writes the file (TOML), atomically.
    ///
    /// # Errors
    /// I/O, naming the file.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self)
            .map_err(|e| input!("{}: cannot encode the model ({e})", path.display()))?;
        crate::io::atomic_write(path, |w| {
            use std::io::Write;
            w.write_all(text.as_bytes())?;
            Ok(())
        })
    }

    /// Reads and checks a model file.
    ///
    /// # Errors
    /// Naming the file and the field: not TOML, another format or a newer version, unknown
    /// equations, factors or monomials, non-finite coefficients, too many terms.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| crate::Error::io(path, e))?;
        let f: ModelFile = toml::from_str(&text)
            .map_err(|e| input!("{}: not a discovered model file ({e})", path.display()))?;
        if f.format != FORMAT {
            bail!(
                "{}: format {:?}, expected {FORMAT:?}",
                path.display(),
                f.format
            );
        }
        if f.version > VERSION {
            bail!(
                "{}: version {} is newer than this nmm reads ({VERSION})",
                path.display(),
                f.version
            );
        }
        if !(f.network_size.is_finite() && f.network_size >= 1.0) {
            bail!("{}: network_size must be >= 1", path.display());
        }
        let checked = match f.base {
            Base::Mpr => f.corrected::<f64, Mpr<f64>, 2>(Mpr::default()).map(|_| ()),
            Base::Cc => f
                .corrected::<f64, ChenCampbell<f64>, 4>(ChenCampbell::default())
                .map(|_| ()),
        };
        checked.map_err(|e| input!("{}: {e}", path.display()))?;
        Ok(f)
    }

    /// The model as a core [`Corrected`] on `base` (whose parameters are kept; set the file's
    /// `base_params` first with [`ModelFile::apply_base_params`] for the training defaults), at
    /// `p = 1` and `N = network_size`.
    ///
    /// # Errors
    /// A term naming an unknown equation, factor or monomial (naming the field), a non-finite
    /// coefficient, more than [`MAX_TERMS`] terms.
    pub fn corrected<T: Real, M: Library<T, N>, const N: usize>(
        &self,
        base: M,
    ) -> Result<Corrected<T, M, N>> {
        let want = Base::of::<N>();
        if self.base != want {
            bail!(
                "base {:?} where {:?} was expected",
                self.base.name(),
                want.name()
            );
        }
        let mut c = Corrected::new(base, T::ONE, T::from_f64(self.network_size))
            .map_err(|e| input!("network_size: {e}"))?;
        if self.model.terms.len() > MAX_TERMS {
            bail!(
                "model.terms: {} terms; a model holds at most {MAX_TERMS}",
                self.model.terms.len()
            );
        }
        let nm = M::MONOMIALS.len();
        for (i, t) in self.model.terms.iter().enumerate() {
            let eq = M::STATE
                .iter()
                .position(|s| *s == t.equation)
                .ok_or_else(|| {
                    input!(
                        "model.terms[{i}].equation {:?}: expected one of {:?}",
                        t.equation,
                        M::STATE
                    )
                })?;
            let f = FACTORS.iter().position(|s| *s == t.factor).ok_or_else(|| {
                input!(
                    "model.terms[{i}].factor {:?}: expected one of {FACTORS:?}",
                    t.factor
                )
            })?;
            let m = M::MONOMIALS
                .iter()
                .position(|s| *s == t.monomial)
                .ok_or_else(|| {
                    input!(
                        "model.terms[{i}].monomial {:?}: expected one of {:?}",
                        t.monomial,
                        M::MONOMIALS
                    )
                })?;
            c.push(eq, f * nm + m, T::from_f64(t.coef))
                .map_err(|e| input!("model.terms[{i}]: {e}"))?;
        }
        Ok(c)
    }

    /// Sets the parameters the training networks shared (`base_params`) on `m`.
    ///
    /// # Errors
    /// A value out of the parameter's range (naming it).
    pub fn apply_base_params<T: Real, M: Model<T, N>, const N: usize>(
        &self,
        m: &mut M,
    ) -> Result<()> {
        for (k, v) in &self.base_params {
            if M::PARAMS.iter().any(|s| s.name == k) {
                m.set(k, T::from_f64(*v))
                    .map_err(|e| input!("base_params.{k}: {e}"))?;
            }
        }
        Ok(())
    }
}

/// The closed form as equations, one line per equation with a correction, e.g.
/// `dv/dt = MPR_v - 1.002 (1-p) J r`.
pub fn equations(base: Base, cf: &ClosedForm) -> Vec<String> {
    let b = base.name().to_uppercase();
    base.state()
        .iter()
        .map(|s| {
            let mut line = format!("d{s}/dt = {b}_{s}");
            for t in cf.terms.iter().filter(|t| t.equation == *s) {
                let sign = if t.coef < 0.0 { '-' } else { '+' };
                let f = if t.factor == "1" {
                    String::new()
                } else {
                    format!(" {}", t.factor)
                };
                let m = if t.monomial == "1" {
                    String::new()
                } else {
                    format!(" {}", t.monomial)
                };
                line.push_str(&format!(" {sign} {:.4}{f}{m}", t.coef.abs()));
            }
            line
        })
        .collect()
}
