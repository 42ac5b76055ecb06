//! `nmm brain`: whole-brain runs (mean-field nodes on a connectome, observed as BOLD, FC and
//! FCD) from a TOML configuration or flags, and `nmm brain batch` over a CSV of parameter rows.
//!
//! Time is in ms throughout (the models' time unit: TVB's MPR with `tau = 1 ms`, RWW in ms);
//! BOLD integrates the block mean of each region's coupling variable (`r` for MPR, CC and the
//! MLP, `S_E` for RWW) with its own step `bold.dt_ms`, and samples it every TR.

use crate::connectome::{ConnectomeData, load};
use crate::error::{Context, Error, Result, bail, input};
use crate::io::{NpzEntry, atomic_write, write_csv, write_npz};
use crate::progress::{Progress, Silent};
use crate::stats::{mean_sd, pearson};
use ndarray::{Array1, Array2};
use nmm_core::bold::{BoldMonitor, BoldParams, BoldPreset};
use nmm_core::brain::{Brain, Connectome, Link, count_links};
use nmm_core::connectome::{Normalise, delays_in_steps, normalise};
use nmm_core::fc::{SlidingFc, Welford, fc_upper, fcd, n_pairs, packed_len};
use nmm_core::rng::Gaussian;
use nmm_core::{Model, Real};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

mod lanes;
pub use lanes::{LANES_F32, LANES_F64};

/// Most values (samples x regions x variables) a run may record in memory.
const MAX_RECORDED: usize = 200_000_000;

/// A parameter value: one for every region, or one per region.
///
/// ```
/// use nmm::brain::{Config, ParamValue};
/// let cfg: Config = toml::from_str("[params]\neta = -4.6\nJ = [14.0, 15.0, 16.0, 15.0]").unwrap();
/// assert_eq!(cfg.params["eta"], ParamValue::Global(-4.6));
/// assert_eq!(cfg.params["J"], ParamValue::PerRegion(vec![14.0, 15.0, 16.0, 15.0]));
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ParamValue {
    /// The same value in every region.
    Global(f64),
    /// One value per region, in the connectome's region order.
    PerRegion(Vec<f64>),
}

/// Where the connectome comes from and how it is prepared.
///
/// ```
/// let c: nmm::brain::ConnectomeCfg = toml::from_str("path = \"builtin:8\"\ndelays = false").unwrap();
/// assert_eq!(c.normalise, ["max"]); // the default
/// assert!(!c.delays);
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectomeCfg {
    /// `builtin`, `builtin:N`, a TVB zip, a `.npy` or a CSV/text matrix.
    pub path: String,
    /// Tract lengths (mm) for a plain weight matrix.
    pub tract_lengths: Option<PathBuf>,
    /// Normalisation steps in order (`max`, `log1p`, `rowsum`, `frobenius`, `zero-diagonal`,
    /// `laplacian`, or the recipe `griffiths2022`).
    pub normalise: Vec<String>,
    /// Zero the diagonal before normalising.
    pub zero_diagonal: bool,
    /// Conduction delays from tract lengths (`false`: none, tract lengths ignored).
    pub delays: bool,
    /// Conduction speed in mm/ms (TVB's default 3); delays need tract lengths.
    pub speed_mm_per_ms: f64,
}

impl Default for ConnectomeCfg {
    fn default() -> Self {
        Self {
            path: "builtin".into(),
            tract_lengths: None,
            normalise: vec!["max".into()],
            zero_diagonal: true,
            delays: true,
            speed_mm_per_ms: 3.0,
        }
    }
}

/// BOLD observer settings.
///
/// ```
/// let b = nmm::brain::BoldCfg::default();
/// assert_eq!((b.preset.as_str(), b.tr_ms, b.dt_ms), ("stephan2007", 2000.0, 5.0));
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BoldCfg {
    /// `stephan2007`, `friston2000` or `vbjax`.
    pub preset: String,
    /// Repetition time in ms.
    pub tr_ms: f64,
    /// Step of the Balloon-Windkessel integration in ms (a multiple of the neural step); the
    /// neural input is averaged over it.
    pub dt_ms: f64,
    /// Overrides of preset values by name (`tau_s`, `E_0`, `V_0`, ...; units as the preset's).
    pub params: BTreeMap<String, f64>,
}

impl Default for BoldCfg {
    fn default() -> Self {
        Self {
            preset: "stephan2007".into(),
            tr_ms: 2000.0,
            // Balloon-Windkessel time constants are 0.4 s and more: on a 30 s run of the
            // built-in connectome, 5 ms and 1 ms steps give BOLD equal to 1.6e-5 of its range,
            // at a fifth of the cost (BOLD was 30 % of a 76-region MPR run at 1 ms).
            dt_ms: 5.0,
            params: BTreeMap::new(),
        }
    }
}

impl BoldCfg {
    /// The Balloon-Windkessel parameters: the preset with `params` set over it.
    ///
    /// ```
    /// let mut b = nmm::brain::BoldCfg::default();
    /// b.params.insert("tau_s".into(), 0.8);
    /// assert_eq!(b.balloon()?.tau_s, 0.8);
    /// b.preset = "nope".into();
    /// assert!(b.balloon().is_err());
    /// # Ok::<(), nmm::Error>(())
    /// ```
    pub fn balloon(&self) -> Result<BoldParams<f64>> {
        let preset: BoldPreset = self
            .preset
            .parse()
            .map_err(|e| input!("bold.preset {:?}: {e}", self.preset))?;
        let mut bold = BoldParams::<f64>::preset(preset);
        for (k, v) in &self.params {
            bold.set(k, *v)
                .map_err(|e| input!("bold.params.{k}: {e}"))?;
        }
        Ok(bold)
    }
}

/// FC and FCD settings.
///
/// ```
/// let f = nmm::brain::FcCfg::default();
/// assert_eq!((f.transient_ms, f.window_tr, f.step_tr), (20_000.0, 15, 2));
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FcCfg {
    /// BOLD samples before this time (ms) are left out of FC and FCD (haemodynamic transient).
    pub transient_ms: f64,
    /// FCD window length, in TRs.
    pub window_tr: usize,
    /// FCD window step, in TRs.
    pub step_tr: usize,
    /// An empirical FC (regions x regions, `.npy` or CSV) to compare with: adds the feature
    /// `fc_emp_corr`, the correlation of the two FCs' upper triangles (`--empirical-fc`).
    pub empirical: Option<PathBuf>,
}

impl Default for FcCfg {
    fn default() -> Self {
        Self {
            transient_ms: 20_000.0,
            window_tr: 15,
            step_tr: 2,
            empirical: None,
        }
    }
}

/// A whole-brain run, as written in `RUN.toml`.
///
/// ```
/// let cfg: nmm::brain::Config = toml::from_str("model = \"rww\"\ncoupling = 0.5").unwrap();
/// assert_eq!((cfg.model.as_str(), cfg.coupling, cfg.dt_ms), ("rww", 0.5, None));
/// // Unknown keys are refused, naming them.
/// let e = toml::from_str::<nmm::brain::Config>("couplng = 0.5").unwrap_err().to_string();
/// assert!(e.contains("couplng"));
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Node model: `mpr`, `cc`, `rww`, `rww-griffiths`, `mlp`, `corrected`.
    pub model: String,
    /// The trained MLP mean field (`.nmmw` from `nmm train`) for `model = "mlp"`, or the
    /// discovered model (`.toml` from `nmm discover`; set its `p` and `N` in `params`) for
    /// `model = "corrected"`.
    pub model_file: Option<PathBuf>,
    /// Seed of every random draw (noise per region, stream `i + 1` for region `i`).
    pub seed: u64,
    /// Simulated time, ms.
    pub duration_ms: f64,
    /// Integration step, ms; default: the model's, [`default_dt_ms`].
    pub dt_ms: Option<f64>,
    /// `f64` or `f32` arithmetic for the nodes (observers are always f64).
    pub precision: String,
    /// Global coupling G (unit: the model's input per unit of coupling variable).
    pub coupling: f64,
    /// Additive noise amplitude per state variable (variable per sqrt(ms)); default: for MPR
    /// and the MLP the 2025 paper's `nsig = (0.034, 0.068)` on (r, v) (amplitudes
    /// `sqrt(2 nsig)`), for RWW its `sigma`, for CC none.
    pub noise: Option<Vec<f64>>,
    /// TVB-style noise `nsig` per state variable: amplitude `sqrt(2 nsig)`. Exclusive with
    /// `noise`.
    pub nsig: Option<Vec<f64>>,
    /// Initial state (one value per state variable, all regions); default: the model's.
    pub initial: Option<Vec<f64>>,
    /// Model parameters by name: a number for all regions or an array of one per region.
    pub params: BTreeMap<String, ParamValue>,
    /// Connectome.
    pub connectome: ConnectomeCfg,
    /// BOLD.
    pub bold: BoldCfg,
    /// Record the block mean of every state variable every this many ms (0: no recording).
    pub record_every_ms: f64,
    /// FC and FCD.
    pub fc: FcCfg,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            model: "mpr".into(),
            model_file: None,
            seed: 0,
            duration_ms: 180_000.0,
            dt_ms: None,
            precision: "f64".into(),
            coupling: 0.08,
            noise: None,
            nsig: None,
            initial: None,
            params: BTreeMap::new(),
            connectome: ConnectomeCfg::default(),
            bold: BoldCfg::default(),
            record_every_ms: 0.0,
            fc: FcCfg::default(),
        }
    }
}

impl Config {
    /// The configuration with the model's defaults written in: `dt_ms` ([`default_dt_ms`]) and
    /// the parameters of [`default_params`] that `params` does not set. Runs record this.
    ///
    /// ```
    /// let c = nmm::brain::Config::default().resolved();
    /// assert_eq!(c.dt_ms, Some(0.01));
    /// assert_eq!(c.params["eta"], nmm::brain::ParamValue::Global(-4.6));
    /// ```
    pub fn resolved(mut self) -> Self {
        self.dt_ms.get_or_insert(default_dt_ms(&self.model));
        for (name, v) in default_params(&self.model) {
            self.params
                .entry(name.to_string())
                .or_insert(ParamValue::Global(*v));
        }
        self
    }
}

/// Everything a run needs, checked and in steps.
///
/// ```
/// let mut cfg = nmm::brain::Config::default();
/// cfg.connectome.path = "builtin:4".into();
/// cfg.duration_ms = 4000.0;
/// cfg.bold.tr_ms = 100.0;
/// cfg.fc.transient_ms = 500.0;
/// let p = nmm::brain::Prepared::new(cfg)?;
/// assert_eq!(p.dt_ms, 0.01); // MPR's default step
/// assert_eq!(p.steps, 400_000);
/// assert_eq!(p.bold_every, 500); // 5 ms BOLD step over 0.01 ms steps
/// assert_eq!(p.cfg.dt_ms, Some(0.01)); // recorded with the run
/// assert_eq!(p.cfg.params["eta"], nmm::brain::ParamValue::Global(-4.6));
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Debug)]
pub struct Prepared {
    /// The configuration it came from.
    pub cfg: Config,
    /// The connectome as read.
    pub conn: ConnectomeData,
    /// Normalised weights.
    pub weights: Vec<f64>,
    /// Delays in steps (empty: none).
    pub delays: Vec<u32>,
    /// Integration step, ms (`cfg.dt_ms` or the model's default).
    pub dt_ms: f64,
    /// Neural steps.
    pub steps: usize,
    /// Neural steps per BOLD step.
    pub bold_every: usize,
    /// BOLD parameters.
    pub bold: BoldParams<f64>,
    /// Neural steps per recorded sample (0: none).
    pub record_every: usize,
    /// BOLD steps per TR.
    pub bold_per_tr: usize,
    /// The empirical FC of `fc.empirical`, regions x regions row-major.
    pub empirical_fc: Option<Vec<f64>>,
}

/// The connectome's weights as `cfg` prepares them: the diagonal zeroed (`zero_diagonal`), then
/// each `normalise` step or recipe in order.
///
/// ```
/// let conn = nmm::connectome::builtin(4)?;
/// let cfg = nmm::brain::ConnectomeCfg::default(); // zero diagonal, then W / max W
/// let w = nmm::brain::normalised_weights(&cfg, &conn)?;
/// assert_eq!(w.iter().cloned().fold(0.0, f64::max), 1.0);
/// assert!((0..4).all(|i| w[i * 4 + i] == 0.0));
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn normalised_weights(cfg: &ConnectomeCfg, conn: &ConnectomeData) -> Result<Vec<f64>> {
    let n = conn.n;
    let mut weights = conn.weights.clone();
    if cfg.zero_diagonal {
        normalise(n, &mut weights, Normalise::ZeroDiagonal)?;
    }
    for name in &cfg.normalise {
        let steps: Vec<Normalise> = match Normalise::recipe(name) {
            Some(r) => r.to_vec(),
            None => vec![
                name.parse()
                    .map_err(|e| input!("connectome.normalise {name:?}: {e}"))?,
            ],
        };
        for s in steps {
            normalise(n, &mut weights, s).map_err(|e| input!("{}: {e}", conn.source))?;
        }
    }
    Ok(weights)
}

fn whole_multiple(what: &str, a: f64, b: f64) -> Result<usize> {
    crate::stats::whole_multiple(a, b)
        .ok_or_else(|| input!("{what} = {a} must be a whole multiple (>= 1) of {b}"))
}

/// Refuses a run too short for FC and three FCD windows after the transient (it would give
/// NaN or empty results), naming the duration that would do.
fn check_fc_length(cfg: &Config, steps: usize, bold_every: usize, per_tr: usize) -> Result<()> {
    // FC needs BOLD after the transient, and FCD's mean and spread need three windows:
    // a shorter run would give NaN or empty results, so it is refused before it runs.
    let samples = steps / bold_every / per_tr;
    // Samples k = 1, 2, ... at k TR; those after the transient have k > transient / TR.
    // (Float-to-integer casts saturate, and the sums below saturate too, so a huge
    // transient is simply refused.)
    let first_after = ((cfg.fc.transient_ms / cfg.bold.tr_ms).floor() as usize).saturating_add(1);
    let after = samples.saturating_add(1).saturating_sub(first_after);
    let (w, s) = (cfg.fc.window_tr, cfg.fc.step_tr);
    let need = w.saturating_add(s.saturating_mul(2));
    if after < need {
        let min_ms = ((first_after - 1) as f64 + need as f64) * cfg.bold.tr_ms;
        bail!(
            "duration_ms (--duration) = {} ms gives {after} BOLD samples after the FC transient \
             of {} ms (fc.transient_ms, --transient); FC and the FCD's mean and spread need {need} \
             (three windows of {w} TRs, step {s}): give a duration of at least {min_ms} ms, \
             a shorter transient or TR (--tr), or smaller FCD windows (fc.window_tr, fc.step_tr)",
            cfg.duration_ms,
            cfg.fc.transient_ms
        );
    }
    Ok(())
}

/// The empirical FC of `fc.empirical` (`--empirical-fc`), checked to be `n x n`.
fn load_empirical_fc(cfg: &Config, n: usize) -> Result<Option<Vec<f64>>> {
    Ok(match &cfg.fc.empirical {
        None => None,
        Some(path) => {
            let (m, fc) =
                crate::connectome::read_matrix(path).context("fc.empirical (--empirical-fc)")?;
            if m != n {
                bail!(
                    "fc.empirical (--empirical-fc) {}: {m} x {m}, but the connectome has {n} regions",
                    path.display()
                );
            }
            if let Some(k) = fc.iter().position(|v| !v.is_finite()) {
                bail!(
                    "fc.empirical (--empirical-fc) {}: entry ({}, {}) is not finite",
                    path.display(),
                    k / n,
                    k % n
                );
            }
            // An FC is symmetric; only its upper triangle is compared, so say if it is not.
            for i in 0..n {
                for j in i + 1..n {
                    let (a, b) = (fc[i * n + j], fc[j * n + i]);
                    if (a - b).abs() > 1e-6 * (1.0 + a.abs()) {
                        bail!(
                            "fc.empirical (--empirical-fc) {}: not symmetric at ({i}, {j}): {a} vs {b}",
                            path.display()
                        );
                    }
                }
            }
            Some(fc)
        }
    })
}

impl Prepared {
    /// Longest delay of a link with non-zero weight, in steps (the one the run uses).
    ///
    /// ```
    /// let mut cfg = nmm::brain::Config::default();
    /// cfg.connectome.path = "builtin:4".into();
    /// cfg.duration_ms = 4000.0;
    /// cfg.bold.tr_ms = 100.0;
    /// cfg.fc.transient_ms = 500.0;
    /// let p = nmm::brain::Prepared::new(cfg)?;
    /// // Built-in tract lengths at 3 mm/ms and 0.1 ms steps.
    /// assert!(p.max_delay_steps() > 0);
    /// let used = p.delays.iter().zip(&p.weights).filter(|(_, w)| **w != 0.0);
    /// assert!(used.map(|(d, _)| *d).all(|d| d <= p.max_delay_steps()));
    /// # Ok::<(), nmm::Error>(())
    /// ```
    pub fn max_delay_steps(&self) -> u32 {
        self.delays
            .iter()
            .zip(&self.weights)
            .filter(|(_, w)| **w != 0.0)
            .map(|(d, _)| *d)
            .max()
            .unwrap_or(0)
    }

    /// Reads the connectome and checks every setting.
    ///
    /// ```
    /// let mut cfg = nmm::brain::Config::default();
    /// cfg.connectome.path = "builtin:4".into();
    /// cfg.duration_ms = 4000.0;
    /// cfg.bold.tr_ms = 100.0;
    /// cfg.fc.transient_ms = 500.0;
    /// assert!(nmm::brain::Prepared::new(cfg.clone()).is_ok());
    /// cfg.duration_ms = 1000.0; // too short for FC and three FCD windows
    /// let e = nmm::brain::Prepared::new(cfg).unwrap_err().to_string();
    /// assert!(e.contains("--duration"), "{e}");
    /// # Ok::<(), nmm::Error>(())
    /// ```
    pub fn new(cfg: Config) -> Result<Self> {
        let conn = load(
            &cfg.connectome.path,
            cfg.connectome.tract_lengths.as_deref(),
        )
        .context("connectome")?;
        Self::with_connectome(cfg, conn)
    }

    /// As [`Prepared::new`] with a connectome already read (batch runs read it once).
    ///
    /// ```
    /// let mut cfg = nmm::brain::Config::default();
    /// cfg.connectome.path = "builtin:4".into();
    /// cfg.duration_ms = 4000.0;
    /// cfg.bold.tr_ms = 100.0;
    /// cfg.fc.transient_ms = 500.0;
    /// let conn = nmm::connectome::builtin(4)?;
    /// let p = nmm::brain::Prepared::with_connectome(cfg, conn)?;
    /// assert_eq!(p.weights.len(), 16);
    /// # Ok::<(), nmm::Error>(())
    /// ```
    pub fn with_connectome(cfg: Config, conn: ConnectomeData) -> Result<Self> {
        let n = conn.n;
        // The model's defaults, written into the configuration the run records.
        let cfg = cfg.resolved();
        let dt_ms = cfg.dt_ms.unwrap_or(default_dt_ms(&cfg.model));
        if !(dt_ms.is_finite() && dt_ms > 0.0) {
            bail!("dt_ms (--dt) must be positive, got {dt_ms}");
        }
        if !(cfg.duration_ms.is_finite() && cfg.duration_ms > 0.0) {
            bail!(
                "duration_ms (--duration) must be positive, got {}",
                cfg.duration_ms
            );
        }
        if !cfg.coupling.is_finite() {
            bail!("coupling (--G) must be finite, got {}", cfg.coupling);
        }
        let steps = (cfg.duration_ms / dt_ms).round() as usize;
        let bold_every = whole_multiple("bold.dt_ms (--bold-dt)", cfg.bold.dt_ms, dt_ms)?;
        let bold_per_tr = whole_multiple("bold.tr_ms (--tr)", cfg.bold.tr_ms, cfg.bold.dt_ms)?;
        let record_every = if cfg.record_every_ms > 0.0 {
            whole_multiple(
                "record_every_ms (--record-every)",
                cfg.record_every_ms,
                dt_ms,
            )?
        } else {
            0
        };
        let bold = cfg.bold.balloon()?;
        crate::bold::check_step(&bold, cfg.bold.dt_ms, "bold.dt_ms (--bold-dt)")?;
        if !(cfg.fc.transient_ms.is_finite() && cfg.fc.transient_ms >= 0.0) {
            bail!(
                "fc.transient_ms (--transient) must be finite and >= 0, got {}",
                cfg.fc.transient_ms
            );
        }
        if !(cfg.record_every_ms.is_finite() && cfg.record_every_ms >= 0.0) {
            bail!(
                "record_every_ms (--record-every) must be finite and >= 0 (0: no recording), got {}",
                cfg.record_every_ms
            );
        }
        if !(cfg.bold.tr_ms.is_finite() && cfg.bold.tr_ms > 0.0) {
            bail!("bold.tr_ms (--tr) must be positive, got {}", cfg.bold.tr_ms);
        }
        if cfg.fc.window_tr < 2 || cfg.fc.step_tr == 0 {
            bail!("fc.window_tr must be >= 2 and fc.step_tr >= 1");
        }
        check_fc_length(&cfg, steps, bold_every, bold_per_tr)?;
        let weights = normalised_weights(&cfg.connectome, &conn)?;
        let delays = match (cfg.connectome.delays, &conn.lengths_mm) {
            (true, Some(l)) => {
                let mut d = vec![0u32; n * n];
                delays_in_steps(n, l, cfg.connectome.speed_mm_per_ms, dt_ms, &mut d)
                    .map_err(|e| input!("{}: {e}", conn.source))?;
                // A region's link to itself (kept or made by `laplacian`) has no conduction
                // delay, whatever the diagonal of the tract lengths says.
                (0..n).for_each(|i| d[i * n + i] = 0);
                d
            }
            (true, None) => bail!(
                "{} has no tract lengths: give connectome.tract_lengths, or set \
                 connectome.delays = false (--no-delays) to run without delays",
                conn.source
            ),
            (false, _) => vec![],
        };
        let empirical_fc = load_empirical_fc(&cfg, n)?;
        let p = Self {
            cfg,
            conn,
            weights,
            delays,
            dt_ms,
            steps,
            bold_every,
            bold,
            record_every,
            bold_per_tr,
            empirical_fc,
        };
        // The model, its parameters, noise and initial state, before anything runs.
        if !matches!(p.cfg.precision.as_str(), "f64" | "f32") {
            bail!(
                "precision (--precision) must be f64 or f32, not {:?}",
                p.cfg.precision
            );
        }
        dispatch::<f64>(&p, None)?;
        Ok(p)
    }
}

/// What one run produces.
///
/// ```
/// let mut cfg = nmm::brain::Config::default();
/// cfg.connectome.path = "builtin:4".into();
/// cfg.duration_ms = 4000.0;
/// cfg.bold.tr_ms = 100.0;
/// cfg.fc.transient_ms = 500.0;
/// let p = nmm::brain::Prepared::new(cfg)?;
/// let out = nmm::brain::run(&p, &nmm::progress::Silent)?;
/// assert_eq!(out.bold.dim(), (40, 4));
/// assert_eq!(out.t_ms[0], 100.0);
/// assert_eq!(out.bold_input, "r");
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Debug)]
pub struct RunOutput {
    /// BOLD sample times, ms.
    pub t_ms: Vec<f64>,
    /// BOLD, samples x regions.
    pub bold: Array2<f64>,
    /// FC of the BOLD after the transient, regions x regions.
    pub fc: Array2<f64>,
    /// FCD, windows x windows.
    pub fcd: Array2<f64>,
    /// Recorded states: times (ms) and, per state variable, samples x regions.
    pub states: Option<(Vec<f64>, Vec<Array2<f64>>)>,
    /// State variable names.
    pub state_names: Vec<&'static str>,
    /// Name of the coupling variable (the BOLD input).
    pub bold_input: &'static str,
    /// Noise amplitudes used.
    pub sigma: Vec<f64>,
    /// Model parameters per region (name -> values).
    pub params: BTreeMap<String, Vec<f64>>,
    /// Wall time of the simulation loop, s.
    pub wall_s: f64,
}

/// Runs `p`, calling `progress(done, total)` every few thousand steps.
///
/// ```
/// let mut cfg = nmm::brain::Config::default();
/// cfg.connectome.path = "builtin:4".into();
/// cfg.duration_ms = 4000.0;
/// cfg.bold.tr_ms = 100.0;
/// cfg.fc.transient_ms = 500.0;
/// let p = nmm::brain::Prepared::new(cfg.clone())?;
/// let a = nmm::brain::run(&p, &nmm::progress::Silent)?;
/// let b = nmm::brain::run(&p, &nmm::progress::Silent)?;
/// assert_eq!(a.bold, b.bold); // the seed fixes every draw
/// // Far too large a step diverges, and says so.
/// cfg.dt_ms = Some(5.0);
/// cfg.coupling = 50.0;
/// let p = nmm::brain::Prepared::new(cfg)?;
/// let e = nmm::brain::run(&p, &nmm::progress::Silent).unwrap_err();
/// assert!(e.is_divergence(), "{e}");
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn run(p: &Prepared, progress: &dyn Progress) -> Result<RunOutput> {
    let out = match p.cfg.precision.as_str() {
        "f64" => dispatch::<f64>(p, Some(progress)),
        "f32" => dispatch::<f32>(p, Some(progress)),
        other => bail!("precision (--precision) must be f64 or f32, not {other:?}"),
    }?;
    out.ok_or_else(|| input!("internal: a run without output"))
}

/// Runs `p` in precision `T`; with `progress` `None`, only checks the model, its parameters,
/// noise and initial state (every row of a batch is checked so before any runs).
fn dispatch<T: Real + nmm_core::mlp::MlpScalar + Send + Sync>(
    p: &Prepared,
    progress: Option<&dyn Progress>,
) -> Result<Option<RunOutput>> {
    use nmm_core::models::{ChenCampbell, Mpr, Rww, RwwGriffiths};
    if p.cfg.model != "mlp" && p.cfg.model != "corrected" && p.cfg.model_file.is_some() {
        bail!(
            "model_file (--model-file) is only for model = \"mlp\" or \"corrected\" (--model mlp|corrected)"
        );
    }
    match p.cfg.model.as_str() {
        "mpr" => simulate::<T, Mpr<T>, 2>(Mpr::default(), p, progress),
        "cc" => simulate::<T, ChenCampbell<T>, 4>(ChenCampbell::default(), p, progress),
        "rww" => simulate::<T, Rww<T>, 2>(Rww::default(), p, progress),
        "rww-griffiths" => simulate::<T, RwwGriffiths<T>, 2>(RwwGriffiths::default(), p, progress),
        "mlp" => {
            let path = p.cfg.model_file.as_ref().ok_or_else(|| {
                input!("model = \"mlp\" needs model_file (a .nmmw from nmm train)")
            })?;
            (|| crate::with_mlp!(T, path, |m| simulate::<T, _, 2>(m, p, progress)))()
                .context("model_file")
        }
        "corrected" => {
            use crate::discover::{Base, ModelFile};
            let path = p.cfg.model_file.as_ref().ok_or_else(|| {
                input!("model = \"corrected\" needs model_file (a .toml from nmm discover)")
            })?;
            let file = ModelFile::read(path).context("model_file")?;
            let bad = |e: crate::Error| input!("model_file {}: {e}", path.display());
            match file.base {
                Base::Mpr => {
                    let mut b = Mpr::<T>::default();
                    file.apply_base_params(&mut b).map_err(bad)?;
                    let m = file.corrected::<T, Mpr<T>, 2>(b).map_err(bad)?;
                    simulate::<T, _, 2>(m, p, progress)
                }
                Base::Cc => {
                    let mut b = ChenCampbell::<T>::default();
                    file.apply_base_params(&mut b).map_err(bad)?;
                    let m = file.corrected::<T, ChenCampbell<T>, 4>(b).map_err(bad)?;
                    simulate::<T, _, 4>(m, p, progress)
                }
            }
        }
        other => bail!(
            "model (--model) {other:?}: expected mpr, cc, rww, rww-griffiths, mlp or corrected"
        ),
    }
}

/// Per-region models from the defaults and `params`.
fn region_models<T: Real, M: Model<T, N> + Clone, const N: usize>(
    base: M,
    n: usize,
    params: &BTreeMap<String, ParamValue>,
) -> Result<Vec<M>> {
    let mut models = vec![base; n];
    for (name, v) in params {
        if !M::PARAMS.iter().any(|s| s.name == name) {
            let names: Vec<_> = M::PARAMS.iter().map(|s| s.name).collect();
            bail!(
                "params.{name}: {} has no parameter {name:?} (it has: {})",
                M::NAME,
                names.join(", ")
            );
        }
        for (i, m) in models.iter_mut().enumerate() {
            let x = match v {
                ParamValue::Global(x) => *x,
                ParamValue::PerRegion(xs) => {
                    if xs.len() != n {
                        bail!("params.{name}: {} values for {n} regions", xs.len());
                    }
                    xs[i]
                }
            };
            m.set(name, T::from_f64(x))
                .map_err(|e| input!("params.{name} (region {i}): {e}"))?;
        }
    }
    for (i, m) in models.iter().enumerate() {
        m.validate().map_err(|e| input!("region {i}: {e}"))?;
    }
    Ok(models)
}

/// The integration step a model gets when `dt_ms` is not given, in ms: 0.01 ms for MPR and
/// the MLP (TVB's, vbi's and the 2025 paper's step), 0.1 ms for the others.
///
/// MPR's up state oscillates at about `2 pi r` per ms, which stochastic Heun damps only for small
/// steps: on the built-in connectome, MPR with `J = 14.5, Delta = 0.7, eta = -4.6` (vbi's node)
/// at `G = 0.25` diverges at dt = 0.02 ms and runs at 0.01 ms, and on TVB's 76-region
/// connectome TVB's MPR diverges at dt = 0.1 ms from `G = 0.25` on.
///
/// ```
/// assert_eq!(nmm::brain::default_dt_ms("mpr"), 0.01);
/// assert_eq!(nmm::brain::default_dt_ms("rww"), 0.1);
/// ```
pub fn default_dt_ms(model: &str) -> f64 {
    match model {
        // A discovered model's base may be MPR: its step, to be safe for either base.
        "mpr" | "mlp" | "corrected" => 0.01,
        _ => 0.1,
    }
}

/// Parameters a whole-brain run of `model` gets unless `params` sets them (on top of the
/// model's own defaults): for MPR `eta = -4.6`, the excitability of Rabuffo et al. 2021 and
/// vbi's MPR, where each region is bistable (folds at `eta = -5.74` and `-3.14` for `J = 15`,
/// `Delta = 1`) and noise carries regions between the states. The MLP keeps the values of its
/// file (it gets MPR's step and noise, not this).
///
/// ```
/// assert_eq!(nmm::brain::default_params("mpr"), &[("eta", -4.6)]);
/// assert!(nmm::brain::default_params("rww").is_empty());
/// ```
pub fn default_params(model: &str) -> &'static [(&'static str, f64)] {
    match model {
        "mpr" => &[("eta", -4.6)],
        _ => &[],
    }
}

/// Noise amplitude per state variable (variable per sqrt(ms)) from `noise`, `nsig`, or the
/// model's default; `params.sigma` may not compete with them.
fn noise_amplitudes<T: Real, M: Model<T, N>, const N: usize>(
    cfg: &Config,
    model: &M,
) -> Result<[f64; N]> {
    if let Some(v) = cfg.params.get("sigma") {
        if matches!(v, ParamValue::PerRegion(_)) {
            bail!(
                "params.sigma: the noise amplitude is global; per-region values are not supported"
            );
        }
        if cfg.noise.is_some() || cfg.nsig.is_some() {
            bail!("params.sigma and noise/nsig both set the noise: give one");
        }
    }
    Ok(match (&cfg.noise, &cfg.nsig) {
        (Some(_), Some(_)) => bail!("give either noise or nsig, not both"),
        (Some(s), None) | (None, Some(s)) => {
            if s.len() != N {
                bail!(
                    "{}: {} values for the {N} state variables ({})",
                    if cfg.noise.is_some() { "noise" } else { "nsig" },
                    s.len(),
                    M::STATE.join(", ")
                );
            }
            if let Some(v) = s.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                bail!(
                    "{}: {v} is not an amplitude (finite and >= 0)",
                    if cfg.noise.is_some() { "noise" } else { "nsig" }
                );
            }
            core::array::from_fn(|k| {
                if cfg.noise.is_some() {
                    s[k]
                } else {
                    (2.0 * s[k]).sqrt()
                }
            })
        }
        // The 2025 paper's MPR noise (REFERENCE section 8), nsig = (0.034, 0.068), i.e.
        // amplitudes sqrt(2 nsig); vbi's MPR default is close (0.037, 0.074).
        (None, None) if matches!(M::NAME, "mpr" | "mlp" | "mpr-corrected") => {
            core::array::from_fn(|k| (2.0 * [0.034, 0.068][k]).sqrt())
        }
        (None, None) => model.diffusion().map(Real::to_f64),
    })
}

/// The caller-owned link tables of core's [`Connectome`], sized by [`count_links`].
pub(crate) struct LinkTables<T> {
    instant_rows: Vec<u32>,
    instant: Vec<Link<T>>,
    delayed_rows: Vec<u32>,
    delayed: Vec<Link<T>>,
}

impl<T: Real> LinkTables<T> {
    /// Tables for `n` regions with weights `w` and delays in steps (row-major).
    pub(crate) fn new(n: usize, w: &[T], delays: &[u32]) -> Result<Self> {
        let counts = count_links(n, w, delays)?;
        let empty = Link {
            w: T::ZERO,
            at: 0,
            lag: 0,
        };
        Ok(Self {
            instant_rows: vec![0; n + 1],
            instant: vec![empty; counts.instant],
            delayed_rows: vec![0; 2 * n + 1],
            delayed: vec![empty; counts.delayed],
        })
    }

    /// The connectome over these tables.
    pub(crate) fn connectome(
        &mut self,
        n: usize,
        w: &[T],
        delays: &[u32],
    ) -> Result<Connectome<'_, T>> {
        Ok(Connectome::build(
            n,
            w,
            delays,
            &mut self.instant_rows,
            &mut self.instant,
            &mut self.delayed_rows,
            &mut self.delayed,
        )?)
    }
}

/// Buffers of the streaming observers, owned here and lent to core's monitors.
struct ObserverBuffers {
    bold_state: Vec<[f64; 4]>,
    mean: Vec<f64>,
    m2: Vec<f64>,
    sliding: Vec<f64>,
}

impl ObserverBuffers {
    fn new(n: usize, cfg: &FcCfg) -> Self {
        Self {
            bold_state: vec![BoldParams::<f64>::REST; n],
            mean: vec![0.0; n],
            m2: vec![0.0; packed_len(n)],
            sliding: vec![0.0; SlidingFc::<f64>::buffer_len(n, cfg.window_tr, cfg.step_tr)],
        }
    }
}

/// What a run observes, step by step: BOLD of the block mean of the coupling variable, FC
/// and FCD windows of the BOLD after the transient, and block means of the states.
struct Observers<'a, const N: usize> {
    p: &'a Prepared,
    bold_mon: BoldMonitor<'a, f64>,
    welford: Welford<'a, f64>,
    sliding: SlidingFc<'a, f64>,
    t_ms: Vec<f64>,
    bold: Vec<f64>,
    fc_vectors: Vec<f64>,
    zacc: Vec<f64>,
    y: Vec<f64>,
    rec_t: Vec<f64>,
    rec: Vec<Vec<f64>>,
    racc: Vec<[f64; N]>,
}

impl<'a, const N: usize> Observers<'a, N> {
    fn new(p: &'a Prepared, buf: &'a mut ObserverBuffers) -> Result<Self> {
        let (n, cfg) = (p.conn.n, &p.cfg);
        // The TR as the whole number of BOLD steps accepted above (a TR typed within the
        // step tolerance, e.g. 2000.001 ms, samples every 400 steps of 5 ms).
        let bold_mon = BoldMonitor::new(
            p.bold,
            &mut buf.bold_state,
            cfg.bold.dt_ms / 1000.0,
            p.bold_per_tr as f64 * cfg.bold.dt_ms / 1000.0,
        )?;
        let n_tr = p.steps / p.bold_every / bold_mon.steps_per_tr();
        let rec_samples = p.steps.checked_div(p.record_every).unwrap_or(0);
        if rec_samples * n * N > MAX_RECORDED {
            return Err(Error::Resource {
                needed: (rec_samples * n * N) as u64,
                limit: MAX_RECORDED as u64,
                message: format!(
                    "recording every {} ms would store {} values (at most {MAX_RECORDED}); \
                     record less often (record_every_ms, --record-every)",
                    cfg.record_every_ms,
                    rec_samples * n * N
                ),
            });
        }
        Ok(Self {
            p,
            bold_mon,
            welford: Welford::new(&mut buf.mean, &mut buf.m2)?,
            sliding: SlidingFc::new(n, cfg.fc.window_tr, cfg.fc.step_tr, &mut buf.sliding)?,
            t_ms: Vec::with_capacity(n_tr),
            bold: Vec::with_capacity(n_tr * n),
            fc_vectors: Vec::new(),
            zacc: vec![0.0; n],
            y: vec![0.0; n],
            rec_t: Vec::with_capacity(rec_samples),
            rec: vec![Vec::with_capacity(rec_samples * n); N],
            racc: vec![[0.0; N]; n],
        })
    }

    /// Takes the state after step `k` (0-based).
    fn push<T: Real>(&mut self, k: usize, xs: &[[T; N]], cv: usize) {
        let p = self.p;
        for (z, xi) in self.zacc.iter_mut().zip(xs) {
            *z += xi[cv].to_f64();
        }
        if (k + 1).is_multiple_of(p.bold_every) {
            let inv = 1.0 / p.bold_every as f64;
            self.zacc.iter_mut().for_each(|z| *z *= inv);
            let zacc = std::mem::take(&mut self.zacc);
            self.bold_block(k, &zacc);
            self.zacc = zacc;
            self.zacc.fill(0.0);
        }
        if p.record_every > 0 {
            for (a, xi) in self.racc.iter_mut().zip(xs) {
                for v in 0..N {
                    a[v] += xi[v].to_f64();
                }
            }
            if (k + 1).is_multiple_of(p.record_every) {
                let inv = 1.0 / p.record_every as f64;
                let racc = std::mem::take(&mut self.racc);
                self.record_block(k, racc.iter().map(|a| a.map(|v| v * inv)));
                self.racc = racc;
                self.racc.iter_mut().for_each(|a| *a = [0.0; N]);
            }
        }
    }

    /// Takes the mean coupling variable per region over the `bold_every` steps that end with
    /// step `k`: one BOLD step, and at a TR a BOLD sample for FC and FCD.
    fn bold_block(&mut self, k: usize, mean: &[f64]) {
        let (p, cfg) = (self.p, &self.p.cfg);
        if self.bold_mon.step(mean, &mut self.y) {
            let t = (k + 1) as f64 * p.dt_ms;
            self.t_ms.push(t);
            self.bold.extend_from_slice(&self.y);
            if t > cfg.fc.transient_ms {
                self.welford.push(&self.y);
                if let Some((_, v)) = self.sliding.push(&self.y) {
                    self.fc_vectors.extend_from_slice(v);
                }
            }
        }
    }

    /// Takes the mean state per region over the `record_every` steps that end with step `k`.
    fn record_block(&mut self, k: usize, means: impl Iterator<Item = [f64; N]> + Clone) {
        self.rec_t.push((k + 1) as f64 * self.p.dt_ms);
        for (v, col) in self.rec.iter_mut().enumerate() {
            col.extend(means.clone().map(|a| a[v]));
        }
    }

    /// BOLD, FC, FCD and the recorded states.
    #[allow(clippy::type_complexity)] // the four outputs, named at the one call
    fn finish(
        self,
    ) -> Result<(
        Vec<f64>,
        Array2<f64>,
        Array2<f64>,
        Array2<f64>,
        Option<(Vec<f64>, Vec<Array2<f64>>)>,
    )> {
        let n = self.p.conn.n;
        let samples = self.t_ms.len();
        let mut fc = vec![0.0; n * n];
        if self.welford.count() >= 2 {
            self.welford.pearson(&mut fc);
        } else {
            fc.iter_mut().for_each(|v| *v = f64::NAN);
        }
        let windows = self.fc_vectors.len() / n_pairs(n).max(1);
        let mut fcd_m = vec![0.0; windows * windows];
        fcd(&self.fc_vectors, windows, n_pairs(n), &mut fcd_m)?;
        let states = if self.p.record_every > 0 {
            let ns = self.rec_t.len();
            let arrays = self
                .rec
                .into_iter()
                .map(|c| Array2::from_shape_vec((ns, n), c))
                .collect::<std::result::Result<_, _>>()?;
            Some((self.rec_t, arrays))
        } else {
            None
        };
        Ok((
            self.t_ms,
            Array2::from_shape_vec((samples, n), self.bold)?,
            Array2::from_shape_vec((n, n), fc)?,
            Array2::from_shape_vec((windows, windows), fcd_m)?,
            states,
        ))
    }
}

/// The divergence error of a run whose state stopped being finite after step `k`.
fn diverged<T: Real, const N: usize>(
    p: &Prepared,
    k: usize,
    xs: &[[T; N]],
    state: &[&'static str],
    sigma: &[f64],
) -> Error {
    // Rounded to the microsecond: 0.7 ms, not 0.7000000000000001.
    let t = ((k + 1) as f64 * p.dt_ms * 1e3).round() / 1e3;
    let (i, v) = xs
        .iter()
        .enumerate()
        .find_map(|(i, x)| x.iter().position(|v| !v.is_finite()).map(|v| (i, v)))
        .unwrap_or((0, 0));
    Error::Diverged {
        at: t,
        region: Some(i),
        variable: state[v].to_string(),
        message: format!(
            "the network diverged at t = {t} ms: {} of region {i} ({}) is not finite; \
             try half the step (dt_ms, --dt {}){}, or less noise (amplitudes now [{}]; \
             nsig or noise in the configuration)",
            state[v],
            p.conn.labels[i],
            p.dt_ms / 2.0,
            if p.cfg.coupling != 0.0 {
                format!(
                    " or of the coupling (coupling, --G {})",
                    p.cfg.coupling / 2.0
                )
            } else {
                String::new()
            },
            sigma
                .iter()
                .map(|v| format!("{v:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Every parameter's value per region, by name (the run output's `params`).
fn param_table<T: Real, M: Model<T, N>, const N: usize>(
    models: &[M],
) -> BTreeMap<String, Vec<f64>> {
    M::PARAMS
        .iter()
        .map(|s| {
            let v = models
                .iter()
                .map(|m| m.get(s.name).map(Real::to_f64).unwrap_or(f64::NAN))
                .collect();
            (s.name.to_string(), v)
        })
        .collect()
}

/// A run's per-region models, noise amplitudes and initial state, checked.
#[allow(clippy::type_complexity)] // the three parts of a run's setup, named at the two calls
fn setup<T, M, const N: usize>(base: M, p: &Prepared) -> Result<(Vec<M>, [f64; N], Vec<[T; N]>)>
where
    T: Real,
    M: Model<T, N> + Clone + PartialEq,
{
    let cfg = &p.cfg;
    let n = p.conn.n;
    let models: Vec<M> = region_models(base, n, &cfg.params)?;
    let sigma = noise_amplitudes::<T, M, N>(cfg, &models[0])?;
    let x: Vec<[T; N]> = match &cfg.initial {
        Some(v) if v.len() == N => vec![core::array::from_fn(|k| T::from_f64(v[k])); n],
        Some(v) => bail!("initial: {} values for {N} state variables", v.len()),
        None => {
            // A region with its predecessor's parameters gets its initial state: MPR's is a
            // root search over 4,000 exponentials, which per region took a tenth of a 10 s
            // batched run on workload W (perf, issue 20). (`PartialEq` takes -0.0 for 0.0, as
            // the uniform stepping path does. One model tells them apart: MPR's initial `v` is
            // -Delta/(2 pi tau r), so per-region Deltas of 0.0 then -0.0 give the second region
            // v = -0.0 instead of +0.0; the first step adds dt dv/dt, in which v enters
            // squared, and the noise, so the two starts take the same step.)
            let mut x: Vec<[T; N]> = Vec::with_capacity(n);
            for (i, m) in models.iter().enumerate() {
                let x0 = match i.checked_sub(1) {
                    Some(j) if models[j] == *m => x[j],
                    _ => m.initial_state(),
                };
                x.push(x0);
            }
            x
        }
    };
    Ok((models, sigma, x))
}

fn simulate<T, M, const N: usize>(
    base: M,
    p: &Prepared,
    progress: Option<&dyn Progress>,
) -> Result<Option<RunOutput>>
where
    T: Real,
    M: Model<T, N> + Clone + PartialEq,
{
    let cfg = &p.cfg;
    let n = p.conn.n;
    let (models, sigma, mut x) = setup::<T, M, N>(base, p)?;
    let Some(progress) = progress else {
        return Ok(None);
    };
    let wt: Vec<T> = p.weights.iter().map(|&w| T::from_f64(w)).collect();
    let mut links = LinkTables::new(n, &wt, &p.delays)?;
    let conn = links.connectome(n, &wt, &p.delays)?;
    let mut hist = vec![T::ZERO; Brain::<T, M, N>::history_len(&conn)];
    let mut work = vec![[T::ZERO; N]; Brain::<T, M, N>::work_len(n)];
    let mut coupling = vec![T::ZERO; Brain::<T, M, N>::coupling_len(n)];
    let mut noise: Vec<Gaussian<T>> = (0..n)
        .map(|i| Gaussian::new(cfg.seed, i as u64 + 1))
        .collect();
    let mut brain = Brain::new(
        conn,
        &models,
        T::from_f64(cfg.coupling),
        sigma.map(T::from_f64),
        T::from_f64(p.dt_ms),
        &mut x,
        &mut hist,
        &mut work,
        &mut coupling,
        &mut noise,
    )?;
    let mut buffers = ObserverBuffers::new(n, &cfg.fc);
    let mut obs = Observers::<N>::new(p, &mut buffers)?;
    let total = p.steps as u64;
    let start = std::time::Instant::now();
    for k in 0..p.steps {
        if !brain.step() {
            return Err(diverged(p, k, brain.state(), &M::STATE, &sigma));
        }
        obs.push(k, brain.state(), M::COUPLING_VAR);
        if k % 8192 == 0 {
            progress.set(k as u64, total);
        }
    }
    progress.set(total, total);
    let wall_s = start.elapsed().as_secs_f64();
    let (t_ms, bold, fc, fcd, states) = obs.finish()?;
    let params = param_table::<T, M, N>(&models);
    Ok(Some(RunOutput {
        t_ms,
        bold,
        fc,
        fcd,
        states,
        state_names: M::STATE.to_vec(),
        bold_input: M::STATE[M::COUPLING_VAR],
        sigma: sigma.to_vec(),
        params,
        wall_s,
    }))
}

/// Summary features of a run (FC and FCD statistics), as in inference studies: the names of
/// [`feature_names`], in that order.
///
/// ```
/// let mut cfg = nmm::brain::Config::default();
/// cfg.connectome.path = "builtin:4".into();
/// cfg.duration_ms = 4000.0;
/// cfg.bold.tr_ms = 100.0;
/// cfg.fc.transient_ms = 500.0;
/// let p = nmm::brain::Prepared::new(cfg)?;
/// let out = nmm::brain::run(&p, &nmm::progress::Silent)?;
/// let f = nmm::brain::features(&p, &out)?;
/// let names: Vec<_> = f.iter().map(|(k, _)| *k).collect();
/// assert_eq!(names, ["fc_mean", "fc_std", "fc_sc_corr", "fcd_mean", "fcd_std", "fcd_windows", "bold_std_mean"]);
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn features(p: &Prepared, out: &RunOutput) -> Result<Features> {
    let n = p.conn.n;
    let mut fcv = vec![0.0; n_pairs(n)];
    let fc_flat: Vec<f64> = out.fc.iter().copied().collect();
    fc_upper(&fc_flat, n, &mut fcv)?;
    let mut sc = vec![0.0; n_pairs(n)];
    fc_upper(&p.weights, n, &mut sc)?;
    let (m, sd) = mean_sd(&fcv);
    let windows = out.fcd.nrows();
    // FCD: the strict upper triangle (as in the 2025 paper's summary statistics).
    let fcd_vals: Vec<f64> = (0..windows)
        .flat_map(|i| ((i + 1)..windows).map(move |j| (i, j)))
        .map(|(i, j)| out.fcd[[i, j]])
        .collect();
    let (fm, fsd) = mean_sd(&fcd_vals);
    let bold_sd = (0..n)
        .map(|i| mean_sd(&out.bold.column(i).to_vec()).1)
        .sum::<f64>()
        / n as f64;
    let mut values = vec![m, sd, pearson(&fcv, &sc), fm, fsd, windows as f64, bold_sd];
    if let Some(emp) = &p.empirical_fc {
        let mut e = vec![0.0; n_pairs(n)];
        fc_upper(emp, n, &mut e)?;
        values.push(pearson(&fcv, &e));
    }
    // The names and their order live in one place, feature_names (batch headers use it too).
    let f: Features = feature_names(&p.cfg).into_iter().zip(values).collect();
    Ok(f)
}

/// Named features of a run ([`features`]).
pub type Features = Vec<(&'static str, f64)>;

/// The names of [`features`] for runs of `cfg`: FC mean and spread, FC-connectome correlation,
/// FCD mean and spread, FCD windows, mean BOLD spread, and `fc_emp_corr` with an empirical FC.
///
/// ```
/// let mut cfg = nmm::brain::Config::default();
/// assert_eq!(nmm::brain::feature_names(&cfg).len(), 7);
/// cfg.fc.empirical = Some("fc.npy".into());
/// assert_eq!(nmm::brain::feature_names(&cfg).last(), Some(&"fc_emp_corr"));
/// ```
pub fn feature_names(cfg: &Config) -> Vec<&'static str> {
    let mut v = vec![
        "fc_mean",
        "fc_std",
        "fc_sc_corr",
        "fcd_mean",
        "fcd_std",
        "fcd_windows",
        "bold_std_mean",
    ];
    if cfg.fc.empirical.is_some() {
        v.push("fc_emp_corr");
    }
    v
}

fn meta(p: &Prepared, out: &RunOutput) -> serde_json::Value {
    json!({
        "nmm_version": crate::VERSION,
        "command": crate::command_line(),
        "config": p.cfg,
        "connectome": {
            "source": p.conn.source,
            "regions": p.conn.n,
            "labels": p.conn.labels,
            "delays": !p.delays.is_empty(),
            "max_delay_ms": p.max_delay_steps() as f64 * p.dt_ms,
        },
        "seed": p.cfg.seed,
        "time_unit": "ms",
        "integrator": "stochastic heun (additive noise; states projected onto the model domain)",
        "noise_sigma": out.sigma,
        "noise_streams": "region i draws from stream i + 1 of the seed",
        "state": out.state_names,
        "bold_preset": p.cfg.bold.preset,
        "bold_params": {
            "tau_s": p.bold.tau_s, "tau_f": p.bold.tau_f, "tau_0": p.bold.tau_0,
            "alpha": p.bold.alpha, "E_0": p.bold.e_0, "V_0": p.bold.v_0,
            "k1": p.bold.k1, "k2": p.bold.k2, "k3": p.bold.k3,
        },
        "bold_input": format!("{} (block mean over bold.dt_ms)", out.bold_input),
        "params": out.params,
        "wall_s": out.wall_s,
    })
}

/// Writes the `.npz` of a run.
///
/// ```
/// let mut cfg = nmm::brain::Config::default();
/// cfg.connectome.path = "builtin:4".into();
/// cfg.duration_ms = 4000.0;
/// cfg.bold.tr_ms = 100.0;
/// cfg.fc.transient_ms = 500.0;
/// let p = nmm::brain::Prepared::new(cfg)?;
/// let out = nmm::brain::run(&p, &nmm::progress::Silent)?;
/// let dir = tempfile::tempdir().unwrap();
/// nmm::brain::write_run(&dir.path().join("b.npz"), &p, &out)?;
/// assert!(dir.path().join("b.npz").exists());
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn write_run(path: &Path, p: &Prepared, out: &RunOutput) -> Result<()> {
    let mut e = vec![
        ("bold".to_string(), NpzEntry::F2(out.bold.clone())),
        ("t_ms".into(), NpzEntry::F1(Array1::from(out.t_ms.clone()))),
        ("fc".into(), NpzEntry::F2(out.fc.clone())),
        ("fcd".into(), NpzEntry::F2(out.fcd.clone())),
        (
            "weights".into(),
            NpzEntry::F2(Array2::from_shape_vec(
                (p.conn.n, p.conn.n),
                p.weights.clone(),
            )?),
        ),
        ("seed".into(), NpzEntry::U64(p.cfg.seed)),
    ];
    if let Some((t, arrays)) = &out.states {
        e.push(("t_states_ms".into(), NpzEntry::F1(Array1::from(t.clone()))));
        for (name, a) in out.state_names.iter().zip(arrays) {
            e.push((format!("state_{name}"), NpzEntry::F2(a.clone())));
        }
    }
    e.push((
        "config".into(),
        NpzEntry::Text(toml::to_string(&p.cfg).context("config as TOML")?),
    ));
    e.push((
        "meta".into(),
        NpzEntry::Text(serde_json::to_string_pretty(&meta(p, out))?),
    ));
    write_npz(path, &e)
}

/// The parameter rows of a batch (`ROWS.csv`): column names and one row of values per run.
///
/// ```
/// let rows = nmm::brain::Rows { header: vec!["G".into(), "seed".into()], rows: vec![vec![0.2, 9.0]] };
/// let cfg = rows.apply(&nmm::brain::Config::default(), 0);
/// assert_eq!((cfg.coupling, cfg.seed), (0.2, 9));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    /// Column names: model parameters, `G` (or `coupling`), `seed`.
    pub header: Vec<String>,
    /// One row of values per run, as many as columns.
    pub rows: Vec<Vec<f64>>,
}

impl Rows {
    /// Reads a CSV with a header; every cell a number. Errors name the file, row and column.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let p = dir.path().join("rows.csv");
    /// std::fs::write(&p, "G,eta\n0.1,-5\n0.2,-4.5\n").unwrap();
    /// let rows = nmm::brain::Rows::read(&p).unwrap();
    /// assert_eq!(rows.header, ["G", "eta"]);
    /// assert_eq!(rows.rows[1], [0.2, -4.5]);
    /// std::fs::write(&p, "G\nx\n").unwrap();
    /// assert!(nmm::brain::Rows::read(&p).unwrap_err().to_string().contains("row 1, column G"));
    /// ```
    pub fn read(path: &Path) -> Result<Self> {
        let mut rdr = csv::Reader::from_path(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let header: Vec<String> = rdr
            .headers()
            .with_context(|| format!("{}: no header", path.display()))?
            .iter()
            .map(|s| s.trim().to_string())
            .collect();
        let mut rows = Vec::new();
        for (k, rec) in rdr.records().enumerate() {
            let rec = rec.with_context(|| format!("{}: row {}", path.display(), k + 1))?;
            let vals: Vec<f64> = rec
                .iter()
                .zip(&header)
                .map(|(s, h)| {
                    s.trim().parse::<f64>().map_err(|_| {
                        input!(
                            "{}: row {}, column {h}: {s:?} is not a number",
                            path.display(),
                            k + 1
                        )
                    })
                })
                .collect::<Result<_>>()?;
            if vals.len() != header.len() {
                bail!(
                    "{}: row {} has {} values for {} columns",
                    path.display(),
                    k + 1,
                    vals.len(),
                    header.len()
                );
            }
            rows.push(vals);
        }
        if rows.is_empty() {
            bail!("{}: no rows under the header", path.display());
        }
        Ok(Self { header, rows })
    }

    /// One column `name` with `num` values evenly spaced from `lo` to `hi` (inclusive): a
    /// sweep of one parameter (`G` or a model parameter).
    ///
    /// ```
    /// let rows = nmm::brain::Rows::vary("G", 0.0, 0.5, 6)?;
    /// assert_eq!(rows.rows.len(), 6);
    /// assert_eq!((rows.rows[1][0], rows.rows[3][0], rows.rows[5][0]), (0.1, 0.3, 0.5));
    /// assert!(nmm::brain::Rows::vary("G", 1.0, 0.0, 3).is_err());
    /// assert_eq!(nmm::brain::Rows::vary("eta", -0.7, 0.7, 7)?.rows[3], [0.0]);
    /// # Ok::<(), nmm::Error>(())
    /// ```
    pub fn vary(name: &str, lo: f64, hi: f64, num: usize) -> Result<Self> {
        if num > 100_000 {
            bail!("--vary {name}={lo}:{hi}:{num}: at most 100000 values");
        }
        if !(lo.is_finite() && hi.is_finite() && lo <= hi && num >= 1) || (num == 1 && lo != hi) {
            bail!(
                "--vary {name}={lo}:{hi}:{num}: need finite LO <= HI and NUM >= 1 (NUM = 1 only for LO = HI)"
            );
        }
        let rows = (0..num)
            .map(|k| {
                if num == 1 {
                    vec![lo]
                } else {
                    // Rounded to 12 significant digits: G = 0.05, not 0.049999999999999996.
                    // A value within rounding of zero is zero (G=-0.7:0.7:7 has G = 0).
                    let x = lo + (hi - lo) * k as f64 / (num - 1) as f64;
                    let x = if x.abs() <= 1e-12 * lo.abs().max(hi.abs()) {
                        0.0
                    } else {
                        x
                    };
                    vec![format!("{x:.11e}").parse().unwrap_or(x)]
                }
            })
            .collect();
        Ok(Self {
            header: vec![name.to_string()],
            rows,
        })
    }

    /// `cfg` with row `index` applied: `G`/`coupling` set the coupling, `seed` the seed
    /// (without a `seed` column row `k` uses the base seed + k), any other column a model
    /// parameter in every region.
    ///
    /// ```
    /// use nmm::brain::{Config, ParamValue, Rows};
    /// let rows = Rows { header: vec!["G".into(), "eta".into()], rows: vec![vec![0.3, -4.0]] };
    /// let cfg = rows.apply(&Config::default(), 0);
    /// assert_eq!(cfg.coupling, 0.3);
    /// assert_eq!(cfg.params["eta"], ParamValue::Global(-4.0));
    /// ```
    pub fn apply(&self, base: &Config, index: usize) -> Config {
        let mut cfg = base.clone();
        cfg.seed = cfg.seed.wrapping_add(index as u64);
        for (k, v) in self.header.iter().zip(&self.rows[index]) {
            match k.as_str() {
                "G" | "coupling" => cfg.coupling = *v,
                "seed" => cfg.seed = *v as u64,
                name => {
                    cfg.params.insert(name.to_string(), ParamValue::Global(*v));
                }
            }
        }
        cfg
    }
}

/// What [`run_batch`] produced: the feature table it wrote.
///
/// ```
/// let mut base = nmm::brain::Config::default();
/// base.connectome.path = "builtin:4".into();
/// base.duration_ms = 4000.0;
/// base.bold.tr_ms = 100.0;
/// base.fc.transient_ms = 500.0;
/// let rows = nmm::brain::Rows { header: vec!["G".into()], rows: vec![vec![0.1]] };
/// let dir = tempfile::tempdir().unwrap();
/// let out = nmm::brain::run_batch(&base, &rows, (1, 1), dir.path(), false, &nmm::progress::Silent)?;
/// assert_eq!(out.header[..3], ["row", "seed_used", "G"]);
/// assert_eq!(out.path, dir.path().join("features.csv"));
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct BatchOutput {
    /// The table's header: `row`, `seed_used`, the rows' columns, the features.
    pub header: Vec<String>,
    /// One line per run, in row order.
    pub table: Vec<Vec<String>>,
    /// Where the table was written.
    pub path: PathBuf,
    /// Rows (1-based) whose run diverged: NaN features and `diverged` = 1 in the table.
    pub diverged: Vec<usize>,
}

/// The feature table's file in `dir` for shard `k` of `of`.
///
/// ```
/// use std::path::Path;
/// assert_eq!(nmm::brain::features_file(Path::new("b"), (1, 1)), Path::new("b/features.csv"));
/// assert_eq!(nmm::brain::features_file(Path::new("b"), (2, 4)), Path::new("b/features-shard-2-of-4.csv"));
/// ```
pub fn features_file(dir: &Path, (k, of): (usize, usize)) -> PathBuf {
    if of > 1 {
        dir.join(format!("features-shard-{k}-of-{of}.csv"))
    } else {
        dir.join("features.csv")
    }
}

/// Merges the shard tables `features-shard-K-of-N.csv` of a batch directory (the shards of
/// one `N`, every `K` from 1 to `N`, one header) into `features.csv`, rows in order; the rows
/// must be `1, 2, ...` without a gap or a repeat. A merge of the shards of a batch equals the
/// table of the same batch run in one process, byte for byte.
///
/// # Errors
/// [`Error::Input`] naming the directory or file: no shard tables, shards of different `N`,
/// a missing shard, a header that differs, a row number that repeats or is missing, or an
/// existing `features.csv` (it is not replaced).
///
/// ```
/// use nmm::brain::{Config, Rows, merge_shards, run_batch};
/// let dir = tempfile::tempdir().unwrap();
/// let mut base = Config::default();
/// base.connectome.path = "builtin:4".into();
/// base.duration_ms = 4000.0;
/// base.bold.tr_ms = 100.0;
/// base.fc.transient_ms = 500.0;
/// let rows = Rows { header: vec!["G".into()], rows: vec![vec![0.0], vec![0.1], vec![0.2]] };
/// for k in 1..=2 {
///     run_batch(&base, &rows, (k, 2), dir.path(), false, &nmm::progress::Silent).unwrap();
/// }
/// let merged = merge_shards(dir.path()).unwrap();
/// assert_eq!(merged.table.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(), ["1", "2", "3"]);
/// assert!(merge_shards(dir.path()).is_err()); // features.csv exists now
/// ```
pub fn merge_shards(dir: &Path) -> Result<BatchOutput> {
    let out = dir.join("features.csv");
    if out.exists() {
        bail!(
            "{} exists: remove it to merge the shards again",
            out.display()
        );
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))
        .context("batch directory")?;
    // (K, N, path) of every shard table.
    let mut shards: Vec<(usize, usize, PathBuf)> = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some(kn) = name
            .strip_prefix("features-shard-")
            .and_then(|r| r.strip_suffix(".csv"))
        else {
            continue;
        };
        let parsed = kn
            .split_once("-of-")
            .and_then(|(k, n)| Some((k.parse().ok()?, n.parse().ok()?)));
        match parsed {
            Some((k, n)) if (1..=n).contains(&k) => shards.push((k, n, path)),
            _ => bail!(
                "{}: not a shard table name (features-shard-K-of-N.csv, 1 <= K <= N)",
                path.display()
            ),
        }
    }
    shards.sort();
    let Some(&(_, of, _)) = shards.first() else {
        bail!(
            "{}: no shard tables (features-shard-K-of-N.csv from brain batch --shard K/N)",
            dir.display()
        );
    };
    if let Some((_, n, p)) = shards.iter().find(|(_, n, _)| *n != of) {
        bail!(
            "{}: shards of {of} and of {n} in one directory ({})",
            dir.display(),
            p.display()
        );
    }
    let missing: Vec<usize> = (1..=of)
        .filter(|k| !shards.iter().any(|(j, _, _)| j == k))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{}: shards {missing:?} of {of} are missing (features-shard-K-of-{of}.csv)",
            dir.display()
        );
    }
    let mut header: Option<Vec<String>> = None;
    let mut table: Vec<(usize, Vec<String>)> = Vec::new();
    for (_, _, path) in &shards {
        let mut reader =
            csv::Reader::from_path(path).map_err(|e| input!("{}: {e}", path.display()))?;
        let h: Vec<String> = reader
            .headers()
            .map_err(|e| input!("{}: {e}", path.display()))?
            .iter()
            .map(String::from)
            .collect();
        match &header {
            Some(first) if *first != h => {
                bail!(
                    "{}: its header differs from the other shards'",
                    path.display()
                )
            }
            _ => header = Some(h),
        }
        for rec in reader.records() {
            let rec = rec.map_err(|e| input!("{}: {e}", path.display()))?;
            let line: Vec<String> = rec.iter().map(String::from).collect();
            let row = line
                .first()
                .and_then(|r| r.parse::<usize>().ok())
                .ok_or_else(|| input!("{}: a line without a row number", path.display()))?;
            table.push((row, line));
        }
    }
    let header = header.unwrap_or_default();
    table.sort_by_key(|(row, _)| *row);
    for (i, (row, _)) in table.iter().enumerate() {
        if *row < i + 1 {
            bail!(
                "{}: row {row} appears in more than one line (rows must be 1, 2, ... once each \
                 across the shards)",
                dir.display()
            );
        }
        if *row > i + 1 {
            bail!(
                "{}: row {} is missing (rows must be 1, 2, ... once each across the shards)",
                dir.display(),
                i + 1
            );
        }
    }
    let flag = header.iter().position(|h| h == "diverged");
    let diverged = table
        .iter()
        .filter(|(_, l)| flag.is_some_and(|c| l.get(c).is_some_and(|v| v == "1")))
        .map(|(row, _)| *row)
        .collect();
    let table: Vec<Vec<String>> = table.into_iter().map(|(_, l)| l).collect();
    write_csv(&out, &header, &table)?;
    Ok(BatchOutput {
        header,
        table,
        path: out,
        diverged,
    })
}

/// Runs every prepared run on the current rayon pool and returns their outputs in order.
/// Consecutive runs that differ only in model parameters, `G`, noise, seed or initial state
/// (and whose model is MPR, Chen-Campbell or the MLP) run together in vector lanes,
/// [`LANES_F64`] or [`LANES_F32`] at a time on one core, when that finishes sooner than running
/// them one per thread: without conduction delays, and when a group of lanes (as long as about
/// 3.3 f64 or 5.1 f32 single runs, measured on workload W, benches/benches/batch.rs) beats the
/// runs spread over the threads (three runs on two threads run alone).
/// Each output is, bit for bit, what [`run`] gives for that run alone, whatever the grouping
/// or the thread count. A run that diverges gets its divergence error and the others go on.
/// `progress` counts finished runs.
///
/// ```
/// let mut cfg = nmm::brain::Config::default();
/// cfg.connectome.path = "builtin:4".into();
/// cfg.duration_ms = 4000.0;
/// cfg.dt_ms = Some(0.05);
/// cfg.bold.tr_ms = 100.0;
/// cfg.fc.transient_ms = 500.0;
/// let ps: Vec<_> = [0.0, 0.1, 0.2]
///     .iter()
///     .map(|&g| nmm::brain::Prepared::new(nmm::brain::Config { coupling: g, ..cfg.clone() }))
///     .collect::<Result<_, _>>()?;
/// let outs = nmm::brain::run_many(&ps, &nmm::progress::Silent)?;
/// let alone = nmm::brain::run(&ps[1], &nmm::progress::Silent)?;
/// assert_eq!(outs[1].as_ref().unwrap().bold, alone.bold); // batched or not, the same run
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn run_many(ps: &[Prepared], progress: &dyn Progress) -> Result<Vec<Result<RunOutput>>> {
    run_each(ps, progress, Batching::Auto, |_, out| Ok(out))
}

/// [`run_many`] with every group of compatible runs in lanes, however few (for tests and
/// measurements of the lanes themselves).
pub fn run_many_in_lanes(
    ps: &[Prepared],
    progress: &dyn Progress,
) -> Result<Vec<Result<RunOutput>>> {
    run_each(ps, progress, Batching::Always, |_, out| Ok(out))
}

/// When [`run_each`] puts compatible runs in lanes.
#[derive(Clone, Copy, PartialEq)]
enum Batching {
    /// When it finishes sooner than one run per thread.
    Auto,
    /// Always.
    Always,
}

/// Time of a group of lanes in units of one run alone (see [`run_many`]).
fn lanes_cost(precision: &str) -> f64 {
    if precision == "f32" { 5.1 } else { 3.3 }
}

/// [`run_many`], handing each run's output to `finish` (with its index) as soon as its
/// group ends, so that outputs need not all be held at once.
fn run_each<R: Send>(
    ps: &[Prepared],
    progress: &dyn Progress,
    batching: Batching,
    finish: impl Fn(usize, Result<RunOutput>) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    // Blocks of consecutive runs that may share lanes.
    let mut blocks: Vec<Vec<usize>> = Vec::new();
    for (j, p) in ps.iter().enumerate() {
        match blocks.last_mut() {
            Some(b) if lanes::compatible(&ps[b[0]], p) => b.push(j),
            _ => blocks.push(vec![j]),
        }
    }
    // Each block in lanes (groups of at most the lane count, as even as can be) or alone.
    let threads = rayon::current_num_threads().max(1) as f64;
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for b in blocks {
        let precision = &ps[b[0]].cfg.precision;
        let n = b.len();
        let g = n.div_ceil(lanes::lanes_for(precision));
        let in_lanes = (g as f64 / threads).ceil() * lanes_cost(precision);
        let alone = (n as f64 / threads).ceil();
        // With delays the lanes lose: the history is L times larger and its blocked sums
        // spill (TVB's 76 regions, 46 ms at dt = 0.1 ms, f64: 8 runs in 6.4 s in lanes against
        // 3.6 s one by one; the built-in connectome at dt = 0.01 ms: 45 s against 15 s).
        let fast = in_lanes < alone && ps[b[0]].max_delay_steps() == 0;
        let batched = lanes::batchable(&ps[b[0]].cfg.model)
            && n > 1
            && (batching == Batching::Always || fast);
        if batched {
            let per = n.div_ceil(g);
            groups.extend(b.chunks(per).map(<[usize]>::to_vec));
        } else {
            groups.extend(b.into_iter().map(|j| vec![j]));
        }
    }
    let done = std::sync::atomic::AtomicU64::new(0);
    let total = ps.len() as u64;
    progress.set(0, total);
    let grouped: Vec<Result<Vec<R>>> = groups
        .par_iter()
        .map(|g| {
            let outs = if g.len() == 1 {
                vec![run(&ps[g[0]], &Silent)]
            } else {
                let members: Vec<&Prepared> = g.iter().map(|&j| &ps[j]).collect();
                lanes::run_lanes(&members)?
            };
            let res = g
                .iter()
                .zip(outs)
                .map(|(&j, out)| finish(j, out))
                .collect::<Result<Vec<R>>>()?;
            let d = done.fetch_add(g.len() as u64, std::sync::atomic::Ordering::Relaxed);
            progress.set(d + g.len() as u64, total);
            Ok(res)
        })
        .collect();
    let mut out = Vec::with_capacity(ps.len());
    for g in grouped {
        out.extend(g?);
    }
    Ok(out)
}

/// Runs the rows of `rows` in shard `(k, of)` (rows `k - 1, k - 1 + of, ...`, 0-based) on the
/// current rayon pool through [`run_many`]'s batching, each from `base` with its row applied, and writes `features.csv` (or
/// `features-shard-K-of-N.csv`) and the base `config.toml` into `dir`; with `save_runs`, each
/// row's `row-K.npz` too. Every row is checked before any runs, and every output path before
/// the work; each row's model, parameters and noise are checked before any run. A run that diverges is kept in the table (NaN features, `diverged` = 1) and its
/// reason goes to `progress.note`; the others go on. `progress` counts finished runs.
///
/// ```
/// use nmm::brain::{Config, Rows, run_batch};
/// let dir = tempfile::tempdir().unwrap();
/// let mut base = Config::default();
/// base.connectome.path = "builtin:4".into();
/// base.duration_ms = 4000.0;
/// base.bold.tr_ms = 100.0;
/// base.fc.transient_ms = 500.0;
/// let rows = Rows { header: vec!["G".into()], rows: vec![vec![0.0], vec![0.2]] };
/// let out = run_batch(&base, &rows, (1, 1), dir.path(), false, &nmm::progress::Silent).unwrap();
/// assert_eq!(out.table.len(), 2);
/// assert!(dir.path().join("features.csv").exists());
/// ```
pub fn run_batch(
    base: &Config,
    rows: &Rows,
    (k, of): (usize, usize),
    dir: &Path,
    save_runs: bool,
    progress: &dyn Progress,
) -> Result<BatchOutput> {
    if k == 0 || k > of {
        bail!("shard {k}/{of}: expected 1 <= K <= N");
    }
    let mine: Vec<usize> = (0..rows.rows.len()).filter(|i| i % of == k - 1).collect();
    let conn = load(
        &base.connectome.path,
        base.connectome.tract_lengths.as_deref(),
    )
    .context("connectome")?;
    // Check every row before running any.
    let prepared: Vec<Prepared> = mine
        .iter()
        .map(|&i| {
            Prepared::with_connectome(rows.apply(base, i), conn.clone())
                .with_context(|| format!("row {}", i + 1))
        })
        .collect::<Result<_>>()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = features_file(dir, (k, of));
    let cfg_path = dir.join("config.toml");
    let row_file = |i: usize| dir.join(format!("row-{}.npz", i + 1));
    let mut outputs = vec![path.clone(), cfg_path.clone()];
    if save_runs {
        outputs.extend(mine.iter().map(|&i| row_file(i)));
    }
    crate::io::check_outputs(&outputs.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
    if !cfg_path.exists() {
        // With the model's defaults written in, so the batch reproduces if they change.
        let text = toml::to_string(&base.clone().resolved())?;
        atomic_write(&cfg_path, |f| Ok(f.write_all(text.as_bytes())?))?;
    }
    // A diverged row is recorded (NaN features, `diverged` = 1, the reason noted) and the
    // others go on; any other failure stops the batch.
    let results: Vec<Option<Features>> =
        run_each(&prepared, progress, Batching::Auto, |j, out| {
            let (p, i) = (&prepared[j], mine[j]);
            Ok(match out {
                Ok(out) => {
                    if save_runs {
                        write_run(&row_file(i), p, &out)?;
                    }
                    Some(features(p, &out)?)
                }
                Err(e) if e.is_divergence() => {
                    progress.note(&format!("row {}: {}", i + 1, e.report()));
                    None
                }
                Err(e) => return Err(e).with_context(|| format!("row {}", i + 1)),
            })
        })?;
    // From the base configuration, so that every shard (an empty one too) has the same header.
    let names = feature_names(base);
    let mut table = Vec::new();
    let mut diverged = Vec::new();
    for ((res, &i), p) in results.into_iter().zip(&mine).zip(&prepared) {
        let mut line = vec![(i + 1).to_string(), p.cfg.seed.to_string()];
        line.extend(rows.rows[i].iter().map(|v| v.to_string()));
        match res {
            Some(f) => {
                line.extend(f.iter().map(|(_, v)| format!("{v:.6}")));
                line.push("0".into());
            }
            None => {
                line.extend(names.iter().map(|_| "NaN".to_string()));
                line.push("1".into());
                diverged.push(i + 1);
            }
        }
        table.push(line);
    }
    let mut header = vec!["row".to_string(), "seed_used".to_string()];
    header.extend(rows.header.iter().cloned());
    header.extend(names.iter().map(|s| s.to_string()));
    header.push("diverged".into());
    write_csv(&path, &header, &table)?;
    Ok(BatchOutput {
        header,
        table,
        path,
        diverged,
    })
}
