//! Gradient-based fitting of a whole-brain model to an empirical FC, after Griffiths et al.
//! 2022 (REFERENCE section 9): reduced Wong-Wang nodes in the gain form
//! (`rww-griffiths`) on a connectome, Balloon-Windkessel BOLD, and the FC of windows of
//! simulated BOLD compared with the empirical FC.
//!
//! - **Objective** per window: `r` = Pearson correlation of the lower triangles of the window's
//!   simulated FC and the empirical FC; loss `-ln(0.5 + 0.5 r)` (the paper's), plus
//!   `mse_weight` times the mean squared difference of the window's FC from the empirical FC
//!   over windows of the same length ([`Target`]; 0 by default).
//!   A correlation does not see the FC's level, and a noisy simulated FC correlates better with
//!   any structured target the stronger its own structure: with the correlation alone the fit
//!   drifts to stronger coupling than the truth (validation/fit/landscape.txt: for a synthetic
//!   subject with G = 4 on the 66-region connectome, the expected r still rises at G = 6, while
//!   the mean squared difference is least at G = 4.5). The squared difference pins the level,
//!   though not well enough for the paper's recovery (README, validation/fit/recovery-*.txt).
//!   Optional Gaussian priors ([`Prior`]) add their terms.
//! - **Noise realisations** (`realisations = k`, 1 by default): a window's FC is a noisy
//!   estimate whose spread shrinks as coupling grows, and the squared difference of one
//!   noisy FC from a target is, on average, the expected FC's squared difference plus that
//!   spread, so it too is least at stronger coupling than the truth. With `k >= 2`
//!   independent realisations per window the correlation is of their mean FC, and the squared
//!   difference is the mean over pairs of distinct realisations `a != b` of
//!   `(fc_a - t)(fc_b - t)`, whose expectation is `(E fc - t)^2` exactly (it can be
//!   negative for one window).
//! - **Gradients** by forward mode for the named parameters: the run is written once over
//!   [`nmm_core::Real`] and evaluated in [`Dual`] numbers carrying the derivatives in up to
//!   [`MAX_PARAMS`] fitted parameters; by reverse mode ([`window_loss_reverse`], a hand-written
//!   adjoint) for one gain per connectome link (`connectome_gains`). The state is carried from
//!   one window to the next with its derivatives dropped (gradients truncated at window
//!   boundaries, as in the paper's code).
//! - **Updates**: Adam on the logarithms of the parameters (they stay positive, and a step is
//!   relative to the value: the gains span 0.15 to 1.4), on `b` for the links' gains
//!   `1 + tanh b` (which stay in (0, 2)).

mod adjoint;

pub use adjoint::Reverse;

use crate::brain::{BoldCfg, ConnectomeCfg, LinkTables, normalised_weights};
use crate::connectome::load;
use crate::error::{Context, Error, Result, bail, input};
use crate::progress::Progress;
use nmm_core::bold::BoldParams;
use nmm_core::brain::Brain;
use nmm_core::dual::Dual;
use nmm_core::models::RwwGriffiths;
use nmm_core::rng::{Gaussian, Streams};
use nmm_core::{Model, Real};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most parameters fitted at once (the tangents each dual number carries).
pub const MAX_PARAMS: usize = 4;

/// The most noise realisations per window (`FitConfig::realisations`).
pub const MAX_REALISATIONS: usize = 256;

type D = Dual<f64, MAX_PARAMS>;

/// A fit, as written in `FIT.toml`.
///
/// ```
/// let c: nmm::fit::FitConfig = toml::from_str("epochs = 5\nfit = [\"G\", \"g_EE\"]").unwrap();
/// assert_eq!((c.epochs, c.fit.len(), c.window_tr), (5, 2, 20));
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FitConfig {
    /// Connectome (default: the built-in one, `griffiths2022` normalisation, no delays).
    pub connectome: ConnectomeCfg,
    /// Integration step of the nodes, ms.
    pub dt_ms: f64,
    /// BOLD (preset, TR and step; default friston2000 as in the paper, TR 750 ms).
    pub bold: BoldCfg,
    /// Simulated time before the first window (not fitted), ms.
    pub transient_ms: f64,
    /// Window length in TRs: one Adam step per window.
    pub window_tr: usize,
    /// Passes over the windows of the empirical BOLD.
    pub epochs: usize,
    /// Adam's learning rate on the logarithm of each parameter.
    pub lr: f64,
    /// Adam's rate at the last window of the last epoch: the rate falls geometrically from
    /// `lr` at the first window to this (a fit of one window uses `lr`; default: `lr`, a
    /// constant rate as in the paper's code). At a constant rate Adam's steps keep a size of about `lr` in the logarithm near
    /// the optimum (5 % of the value at 0.05); a falling rate lets the values settle.
    pub lr_final: Option<f64>,
    /// Weight of the mean squared difference between the simulated and the empirical FC's lower
    /// triangles (correlation units squared) added to the correlation loss; 0 is the paper's
    /// objective.
    pub mse_weight: f64,
    /// Also fit one gain per connectome link (`W_ij = (1 + tanh b_ij) sc_ij`, `b` symmetric,
    /// renormalised, Laplacian coupling: the connectome's normalisation must end with
    /// `laplacian`, as `griffiths2022` does), by reverse mode.
    pub connectome_gains: bool,
    /// Seed of the noise (stream `k n + i + 1` for region `i` of realisation `k`, `n`
    /// regions).
    pub seed: u64,
    /// Independent noise realisations simulated side by side, each carrying its own state
    /// from window to window; each window's loss compares the mean of their FCs (an estimate
    /// of the model's expected FC, whose sampling variance falls as 1 / realisations) with the
    /// target, and the squared difference is the pairwise form, unbiased for the expected
    /// FC's (module docs). 1 (the default) is the paper's single run. Not with
    /// `connectome_gains`.
    pub realisations: usize,
    /// The fitted parameters: `G` (global coupling) and `rww-griffiths` parameter names.
    pub fit: Vec<String>,
    /// Starting values of fitted parameters and fixed values of others (default: the model's,
    /// and G = 0.5).
    pub params: BTreeMap<String, f64>,
    /// Gaussian priors on fitted parameters, by name.
    pub priors: BTreeMap<String, Prior>,
}

/// A Gaussian prior on a fitted parameter, as in the paper's code: the term
/// `(theta - mean)^2 precision - ln precision` is added to every window's loss (theta in the
/// parameter's own units; precision in 1/units^2). With `learn = true` the mean and the
/// precision are fitted too, by the same Adam (the precision on its logarithm, so it stays
/// positive); otherwise they are fixed and the prior is a plain penalty. As in the paper's
/// code, the learnt prior has no optimum of its own (the term falls without bound as the mean
/// reaches the value and the precision grows): only the finite number of Adam steps keeps the
/// precision finite, and the mean moves by about `lr` per window in the parameter's own units
/// (large for a parameter of order 0.1).
///
/// ```
/// let c: nmm::fit::FitConfig =
///     toml::from_str("[priors.G]\nmean = 4.0\nprecision = 2.0\nlearn = true").unwrap();
/// assert_eq!((c.priors["G"].mean, c.priors["G"].learn), (4.0, true));
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prior {
    /// Mean, in the parameter's units.
    pub mean: f64,
    /// Precision (1 / variance), in 1/units^2.
    pub precision: f64,
    /// Fit the mean and the precision as well.
    #[serde(default)]
    pub learn: bool,
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            connectome: ConnectomeCfg {
                normalise: vec!["griffiths2022".into()],
                delays: false,
                ..ConnectomeCfg::default()
            },
            dt_ms: 1.0,
            bold: BoldCfg {
                preset: "friston2000".into(),
                tr_ms: 750.0,
                ..BoldCfg::default()
            },
            transient_ms: 20_000.0,
            window_tr: 20,
            epochs: 20,
            lr: 0.05,
            lr_final: None,
            mse_weight: 0.0,
            connectome_gains: false,
            seed: 0,
            realisations: 1,
            fit: ["G", "g_EE", "g_EI", "g_IE"].map(String::from).to_vec(),
            params: BTreeMap::new(),
            priors: BTreeMap::new(),
        }
    }
}

/// Everything a fit needs, checked.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The configuration.
    pub cfg: FitConfig,
    /// Regions.
    pub n: usize,
    /// Normalised weights, row-major.
    pub weights: Vec<f64>,
    /// Node steps per BOLD step.
    pub bold_every: usize,
    /// BOLD steps per TR.
    pub per_tr: usize,
    /// The BOLD parameters.
    pub bold: BoldParams<f64>,
    /// Every parameter's value: `G` and each model parameter.
    pub values: BTreeMap<String, f64>,
}

impl Setup {
    /// Reads the connectome and checks `cfg`.
    ///
    /// ```
    /// let mut cfg = nmm::fit::FitConfig::default();
    /// cfg.connectome.path = "builtin:4".into();
    /// let s = nmm::fit::Setup::new(cfg)?;
    /// assert_eq!((s.n, s.bold_every, s.per_tr), (4, 5, 150));
    /// assert_eq!(s.values["G"], 0.5);
    /// # Ok::<(), nmm::Error>(())
    /// ```
    pub fn new(cfg: FitConfig) -> Result<Self> {
        if cfg.connectome.delays {
            bail!("connectome.delays: fits run without delays (set delays = false)");
        }
        let conn = load(&cfg.connectome.path, None).context("connectome")?;
        let weights = normalised_weights(&cfg.connectome, &conn)?;
        if cfg.connectome_gains {
            let n = conn.n;
            if !(0..n * n).any(|k| k / n != k % n && weights[k] != 0.0) {
                bail!("connectome_gains: the connectome has no links to give gains to");
            }
        }
        let whole = |what: &str, a: f64, b: f64| {
            crate::stats::whole_multiple(a, b)
                .ok_or_else(|| input!("{what} = {a} must be a whole multiple (>= 1) of {b}"))
        };
        if !(cfg.dt_ms.is_finite() && cfg.dt_ms > 0.0) {
            bail!("dt_ms must be positive, got {}", cfg.dt_ms);
        }
        let bold_every = whole("bold.dt_ms", cfg.bold.dt_ms, cfg.dt_ms)?;
        let per_tr = whole("bold.tr_ms", cfg.bold.tr_ms, cfg.bold.dt_ms)?;
        let bold = cfg.bold.balloon()?;
        crate::bold::check_step(&bold, cfg.bold.dt_ms, "bold.dt_ms")?;
        if !(cfg.transient_ms.is_finite() && cfg.transient_ms >= 0.0) {
            bail!(
                "transient_ms must be finite and >= 0, got {}",
                cfg.transient_ms
            );
        }
        if cfg.window_tr < 3 {
            bail!(
                "window_tr must be at least 3 (an FC needs samples), got {}",
                cfg.window_tr
            );
        }
        if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
            bail!("lr must be positive, got {}", cfg.lr);
        }
        if let Some(f) = cfg.lr_final
            && !(f.is_finite() && f > 0.0 && f <= cfg.lr)
        {
            bail!(
                "lr_final must be positive and at most lr = {}, got {f}",
                cfg.lr
            );
        }
        if cfg.connectome_gains {
            let last = cfg.connectome.normalise.last().map(String::as_str);
            if !matches!(last, Some("laplacian" | "griffiths2022")) {
                bail!(
                    "connectome_gains: the gains act on Laplacian coupling; end \
                     connectome.normalise with \"laplacian\" or use \"griffiths2022\" (got {:?})",
                    cfg.connectome.normalise
                );
            }
        }
        if !(cfg.mse_weight.is_finite() && cfg.mse_weight >= 0.0) {
            bail!("mse_weight must be finite and >= 0, got {}", cfg.mse_weight);
        }
        if cfg.fit.is_empty() || cfg.fit.len() > MAX_PARAMS {
            bail!(
                "fit: 1 to {MAX_PARAMS} parameters, got {} ({:?})",
                cfg.fit.len(),
                cfg.fit
            );
        }
        let mut values: BTreeMap<String, f64> = RwwGriffiths::<f64>::PARAMS
            .iter()
            .map(|p| (p.name.to_string(), p.default))
            .collect();
        values.insert("G".into(), 0.5);
        for (k, v) in &cfg.params {
            if !values.contains_key(k) {
                bail!(
                    "params.{k}: not G or a parameter of {} ({})",
                    RwwGriffiths::<f64>::NAME,
                    values.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            values.insert(k.clone(), *v);
        }
        // Every value is checked against the model's table before any run.
        let mut m = RwwGriffiths::<f64>::default();
        for (k, v) in &values {
            if k != "G" {
                m.set(k, *v).map_err(|e| input!("params.{k}: {e}"))?;
            }
        }
        for (i, name) in cfg.fit.iter().enumerate() {
            if cfg.fit[..i].contains(name) {
                bail!("fit: {name} is listed twice");
            }
            match values.get(name) {
                None => bail!("fit: {name:?} is not G or a parameter of rww-griffiths"),
                Some(v) if !(*v > 0.0 && v.is_finite()) => bail!(
                    "fit: {name} starts at {v}; fitted parameters are positive (they are fitted \
                     as logarithms)"
                ),
                _ => {}
            }
        }
        for (name, p) in &cfg.priors {
            if !cfg.fit.contains(name) {
                bail!(
                    "priors.{name}: not a fitted parameter (fit = {:?})",
                    cfg.fit
                );
            }
            if !p.mean.is_finite() {
                bail!("priors.{name}.mean must be finite, got {}", p.mean);
            }
            if !(p.precision.is_finite() && p.precision > 0.0) {
                bail!(
                    "priors.{name}.precision must be positive, got {}",
                    p.precision
                );
            }
        }
        if !(1..=MAX_REALISATIONS).contains(&cfg.realisations) {
            bail!(
                "realisations must be 1 to {MAX_REALISATIONS}, got {}",
                cfg.realisations
            );
        }
        if cfg.connectome_gains && cfg.realisations > 1 {
            bail!(
                "connectome_gains with realisations = {}: the links' gains are fitted by the \
                 reverse mode of a single run (set realisations = 1)",
                cfg.realisations
            );
        }
        if cfg.connectome_gains && values["G"] == 0.0 {
            bail!("connectome_gains with G = 0: the links' gains would have no effect");
        }
        per_tr
            .checked_mul(bold_every)
            .and_then(|x| x.checked_mul(cfg.window_tr))
            .ok_or_else(|| input!("window_tr = {}: a window of that many steps", cfg.window_tr))?;
        Ok(Self {
            n: conn.n,
            weights,
            bold_every,
            per_tr,
            bold,
            values,
            cfg,
        })
    }
}

/// The state of a run carried from one window to the next, and the noise streams.
#[derive(Clone)]
struct Carry<T> {
    x: Vec<[T; 2]>,
    bold: Vec<[T; 4]>,
    zacc: Vec<T>,
    /// Node steps since the last BOLD step, BOLD steps since the last TR sample.
    phase: (usize, usize),
    noise: Vec<Gaussian<T>>,
}

impl<T: Real> Carry<T> {
    /// The fitted windows start here: the BOLD step and the TR clock restart (the transient
    /// need not be a whole number of either).
    fn restart_clocks(&mut self) {
        self.phase = (0, 0);
        self.zacc.fill(T::ZERO);
    }

    /// Realisation `k`: its noise streams are `k n + i + 1`.
    fn new(s: &Setup, k: usize) -> Self {
        Self {
            x: vec![[T::from_f64(0.1); 2]; s.n],
            bold: vec![BoldParams::<T>::REST; s.n],
            zacc: vec![T::ZERO; s.n],
            phase: (0, 0),
            // One jump per stream skipped or taken: `Gaussian::new` for each would jump
            // `k n + i + 1` times, about K^2 n^2 / 2 jumps over K realisations.
            noise: Streams::new(s.cfg.seed)
                .skip(k * s.n + 1)
                .take(s.n)
                .map(Gaussian::from_rng)
                .collect(),
        }
    }
}

/// The model with the values of `vals` (every name but `G`) and the coupling `G`.
fn model_of<T: Real>(vals: &BTreeMap<String, T>) -> Result<(RwwGriffiths<T>, T)> {
    let mut model = RwwGriffiths::<T>::default();
    for (k, v) in vals {
        if k != "G" {
            model.set(k, *v).map_err(|e| input!("params.{k}: {e}"))?;
        }
    }
    let g = *vals
        .get("G")
        .ok_or_else(|| input!("the parameter values have no G"))?;
    Ok((model, g))
}

/// The setup's BOLD parameters in `T`.
fn bold_params<T: Real>(s: &Setup) -> Result<BoldParams<T>> {
    let mut b = BoldParams::<T>::default();
    for spec in BoldParams::<f64>::SPECS {
        if let Some(v) = s.bold.get(spec.name) {
            b.set(spec.name, T::from_f64(v))
                .map_err(|e| input!("bold.params.{}: {e}", spec.name))?;
        }
    }
    Ok(b)
}

/// Runs `steps` node steps from `carry` with parameter values `vals` (G and the model's) on
/// the coupling matrix `weights` (row-major, `s.n` x `s.n`), and returns the BOLD samples
/// taken (time x regions). `on_step` sees each step's new state before the BOLD observer.
fn advance<T: Real>(
    s: &Setup,
    vals: &BTreeMap<String, T>,
    weights: &[f64],
    carry: &mut Carry<T>,
    steps: usize,
    mut on_step: impl FnMut(&[[T; 2]]),
) -> Result<Vec<Vec<T>>> {
    let n = s.n;
    let (model, g) = model_of(vals)?;
    let w: Vec<T> = weights.iter().map(|&x| T::from_f64(x)).collect();
    let delays = vec![0u32; n * n];
    let mut links = LinkTables::new(n, &w, &delays)?;
    let conn = links.connectome(n, &w, &delays)?;
    let models = vec![model; n];
    let mut hist = vec![T::ZERO; Brain::<T, RwwGriffiths<T>, 2>::history_len(&conn)];
    let mut work = vec![[T::ZERO; 2]; Brain::<T, RwwGriffiths<T>, 2>::work_len(n)];
    let mut coupling = vec![T::ZERO; Brain::<T, RwwGriffiths<T>, 2>::coupling_len(n)];
    let bold = bold_params::<T>(s)?;
    let bold_dt = T::from_f64(s.cfg.bold.dt_ms / 1000.0);
    let inv = T::from_f64(1.0 / s.bold_every as f64);
    let mut brain = Brain::new(
        conn,
        &models,
        g,
        model.diffusion(),
        T::from_f64(s.cfg.dt_ms),
        &mut carry.x,
        &mut hist,
        &mut work,
        &mut coupling,
        &mut carry.noise,
    )?;
    let mut samples = Vec::new();
    for k in 0..steps {
        if !brain.step() {
            return Err(Error::Diverged {
                at: (k + 1) as f64 * s.cfg.dt_ms,
                region: None,
                variable: "S_E".into(),
                message: format!(
                    "the fit's network diverged {} ms into this stretch of simulation (the \
                     transient or a window); try a smaller dt_ms or less noise (sigma)",
                    (k + 1) as f64 * s.cfg.dt_ms
                ),
            });
        }
        on_step(brain.state());
        for (z, x) in carry.zacc.iter_mut().zip(brain.state()) {
            *z += x[0];
        }
        carry.phase.0 += 1;
        if carry.phase.0 == s.bold_every {
            carry.phase.0 = 0;
            for (b, z) in carry.bold.iter_mut().zip(carry.zacc.iter_mut()) {
                *b = bold.step(b, *z * inv, bold_dt);
                *z = T::ZERO;
            }
            carry.phase.1 += 1;
            if carry.phase.1 == s.per_tr {
                carry.phase.1 = 0;
                samples.push(carry.bold.iter().map(|b| bold.bold(b)).collect());
            }
        }
    }
    Ok(samples)
}

/// The lower triangle (`i > j`, row by row) of the Pearson FC of `bold` (time x regions).
fn fc_lower<T: Real>(bold: &[Vec<T>]) -> Vec<T> {
    let n = bold.first().map_or(0, Vec::len);
    let t = T::from_usize(bold.len());
    let mean: Vec<T> = (0..n)
        .map(|i| bold.iter().fold(T::ZERO, |a, row| a + row[i]) / t)
        .collect();
    let dev: Vec<Vec<T>> = bold
        .iter()
        .map(|row| row.iter().zip(&mean).map(|(x, m)| *x - *m).collect())
        .collect();
    let ss: Vec<T> = (0..n)
        .map(|i| dev.iter().fold(T::ZERO, |a, row| a + row[i] * row[i]))
        .collect();
    let mut out = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in 0..i {
            let c = dev.iter().fold(T::ZERO, |a, row| a + row[i] * row[j]);
            out.push(c / (ss[i] * ss[j]).sqrt());
        }
    }
    out
}

/// The mean over realisations of each one's FC (lower triangle).
fn mean_fc(bolds: &[Vec<Vec<f64>>]) -> Vec<f64> {
    let mut mean = Vec::new();
    for bold in bolds {
        let fc = fc_lower(bold);
        mean.resize(fc.len(), 0.0);
        for (m, x) in mean.iter_mut().zip(fc) {
            *m += x / bolds.len() as f64;
        }
    }
    mean
}

/// Pearson correlation of `a` with the fixed `b`.
fn corr<T: Real>(a: &[T], b: &[f64]) -> T {
    let k = T::from_usize(a.len());
    let ma = a.iter().fold(T::ZERO, |s, x| s + *x) / k;
    let mb = b.iter().sum::<f64>() / b.len() as f64;
    let (mut sab, mut saa, mut sbb) = (T::ZERO, T::ZERO, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (*x - ma, y - mb);
        sab += dx * T::from_f64(dy);
        saa += dx * dx;
        sbb += dy * dy;
    }
    sab / (saa * T::from_f64(sbb)).sqrt()
}

/// Mean squared difference of `a` and the fixed `b`.
fn mse<T: Real>(a: &[T], b: &[f64]) -> T {
    let sum = a.iter().zip(b).fold(T::ZERO, |s, (x, y)| {
        let e = *x - T::from_f64(*y);
        s + e * e
    });
    sum / T::from_usize(a.len())
}

/// What a fit compares each window's simulated FC with (lower triangles, `i > j` row by row):
/// the empirical FC for the correlation `r`, and the mean of the empirical BOLD's FCs over
/// windows of the fit's length for the squared difference. An FC over a short window is
/// systematically weaker than over the whole recording (each window's mean removes the slow
/// fluctuations the regions share), so a window's simulated FC is compared in level with
/// empirical FCs over windows of the same length, which at the true parameters it matches on
/// average.
#[derive(Clone, Debug)]
pub struct Target {
    /// The empirical FC (whole recording, or given).
    pub fc: Vec<f64>,
    /// The mean empirical FC over windows of `window_tr` TRs.
    pub window_fc: Vec<f64>,
}

impl Target {
    /// Both from empirical BOLD (time x regions), cut into windows of `window_tr` samples
    /// (a shorter remainder is left out, as the fit leaves it out).
    ///
    /// # Errors
    /// As [`fc_of_bold`] for the whole BOLD or a window, and for no whole window.
    ///
    /// ```
    /// let bold: Vec<Vec<f64>> =
    ///     (0..12).map(|t| vec![(t as f64).sin(), (t as f64 * 0.7).cos(), t as f64]).collect();
    /// let t = nmm::fit::Target::from_bold(&bold, 6)?;
    /// let halves = [nmm::fit::fc_of_bold(&bold[..6])?, nmm::fit::fc_of_bold(&bold[6..])?];
    /// assert_eq!(t.fc, nmm::fit::fc_of_bold(&bold)?);
    /// assert!((t.window_fc[1] - 0.5 * (halves[0][1] + halves[1][1])).abs() < 1e-15);
    /// # Ok::<(), nmm::Error>(())
    /// ```
    pub fn from_bold(bold: &[Vec<f64>], window_tr: usize) -> Result<Self> {
        let fc = fc_of_bold(bold)?;
        let windows = bold.len().checked_div(window_tr).unwrap_or(0);
        if windows == 0 {
            bail!(
                "BOLD of {} samples has no whole window of {window_tr} samples",
                bold.len()
            );
        }
        let mut window_fc = vec![0.0; fc.len()];
        for w in 0..windows {
            let f = fc_of_bold(&bold[w * window_tr..(w + 1) * window_tr])
                .with_context(|| format!("window {} of the empirical BOLD", w + 1))?;
            for (a, b) in window_fc.iter_mut().zip(f) {
                *a += b / windows as f64;
            }
        }
        Ok(Self { fc, window_fc })
    }
}

/// The window loss `-ln(0.5 + 0.5 r) + mse_weight * mse` of simulated FCs (lower triangles,
/// one per noise realisation) against `target`, and `r`: `r` is the correlation of their mean
/// with the empirical FC; `mse` is the mean squared difference from the target for one
/// realisation, and for several the mean over pairs of distinct realisations `a != b` of
/// `(fc_a - t) (fc_b - t)`, whose expectation is the squared difference of the model's
/// expected FC from the target exactly: the plain squared difference of one noisy FC also
/// holds its variance, which falls as coupling grows and so pulls a fit towards stronger
/// coupling (README, "Why the squared difference").
fn loss<T: Real>(fcs: &[Vec<T>], target: &Target, mse_weight: f64) -> (T, T) {
    let k = fcs.len();
    let mean: Vec<T> = if k == 1 {
        fcs[0].clone()
    } else {
        let inv = T::from_f64(1.0 / k as f64);
        (0..fcs[0].len())
            .map(|e| fcs.iter().fold(T::ZERO, |s, fc| s + fc[e]) * inv)
            .collect()
    };
    let r = corr(&mean, &target.fc);
    let mut l = -(T::HALF + T::HALF * r).ln();
    if mse_weight > 0.0 {
        let sq = if k == 1 {
            mse(&fcs[0], &target.window_fc)
        } else {
            pairwise_mse(fcs, &target.window_fc)
        };
        l += T::from_f64(mse_weight) * sq;
    }
    (l, r)
}

/// The mean over entries `e` and over ordered pairs of distinct realisations `a != b` of
/// `(a_e - t_e)(b_e - t_e)`: `((sum d)^2 - sum d^2) / (k (k - 1))` per entry, `d` the `k`
/// realisations' differences from `t`.
fn pairwise_mse<T: Real>(fcs: &[Vec<T>], t: &[f64]) -> T {
    let k = fcs.len() as f64;
    let mut total = T::ZERO;
    for (e, y) in t.iter().enumerate() {
        let (mut sum, mut sq) = (T::ZERO, T::ZERO);
        for fc in fcs {
            let d = fc[e] - T::from_f64(*y);
            sum += d;
            sq += d * d;
        }
        total += sum * sum - sq;
    }
    total / T::from_f64(k * (k - 1.0) * t.len() as f64)
}

/// The lower triangle of an FC matrix (regions x regions, row-major), `i > j` row by row.
///
/// # Errors
/// [`Error::Input`] if `fc` does not have `n * n` values.
///
/// ```
/// let fc = [1.0, 0.2, 0.3, 0.2, 1.0, 0.4, 0.3, 0.4, 1.0];
/// assert_eq!(nmm::fit::lower_triangle(&fc, 3)?, [0.2, 0.3, 0.4]);
/// assert!(nmm::fit::lower_triangle(&fc, 4).is_err());
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn lower_triangle(fc: &[f64], n: usize) -> Result<Vec<f64>> {
    if fc.len() != n * n {
        bail!("an FC of {} values is not {n} x {n}", fc.len());
    }
    Ok((0..n)
        .flat_map(|i| (0..i).map(move |j| fc[i * n + j]))
        .collect())
}

/// The lower triangle (`i > j`, row by row) of the Pearson FC of empirical BOLD (time x
/// regions), the target [`fit`] takes.
///
/// # Errors
/// [`Error::Input`] for fewer than 3 samples, rows of different lengths, a value that is not
/// finite, or a region whose BOLD does not vary (naming the region, 0-based).
///
/// ```
/// let bold = vec![vec![1.0, 2.0, 0.0], vec![2.0, 4.0, 1.0], vec![3.0, 5.0, 0.0]];
/// let fc = nmm::fit::fc_of_bold(&bold)?;
/// assert_eq!(fc.len(), 3);
/// assert!((fc[0] - 0.9820).abs() < 1e-4); // regions 1 and 0
/// assert!(nmm::fit::fc_of_bold(&[vec![1.0, 1.0], vec![1.0, 2.0], vec![1.0, 3.0]]).is_err());
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn fc_of_bold(bold: &[Vec<f64>]) -> Result<Vec<f64>> {
    let n = bold.first().map_or(0, Vec::len);
    if bold.len() < 3 || n < 2 {
        bail!(
            "BOLD of {} samples x {n} regions: an FC needs at least 3 samples of 2 regions",
            bold.len()
        );
    }
    if let Some(t) = bold.iter().position(|row| row.len() != n) {
        bail!(
            "BOLD sample {t} has {} regions, the first {n}",
            bold[t].len()
        );
    }
    if let Some(t) = bold
        .iter()
        .position(|row| row.iter().any(|v| !v.is_finite()))
    {
        bail!("BOLD sample {t} has a value that is not finite");
    }
    if let Some(i) = (0..n).find(|&i| bold.iter().all(|row| row[i] == bold[0][i])) {
        bail!("region {i}'s BOLD is constant: its correlations are undefined");
    }
    Ok(fc_lower(bold))
}

/// Checks both parts of a target.
fn check_target(s: &Setup, t: &Target) -> Result<()> {
    check_empirical(s, &t.fc).context("the empirical FC")?;
    check_empirical(s, &t.window_fc).context("the empirical FC over windows")
}

/// Checks an empirical FC's lower triangle against the setup: one value per pair, finite, not
/// all equal (a correlation with it must exist).
fn check_empirical(s: &Setup, emp_lower: &[f64]) -> Result<()> {
    let pairs = s.n * s.n.saturating_sub(1) / 2;
    if emp_lower.len() != pairs {
        bail!(
            "the empirical FC has {} pairs below the diagonal, the connectome {pairs} ({} regions)",
            emp_lower.len(),
            s.n
        );
    }
    if emp_lower.iter().any(|v| !v.is_finite()) {
        bail!("the empirical FC has values that are not finite");
    }
    if emp_lower.iter().all(|v| *v == emp_lower[0]) {
        bail!("the empirical FC has the same value for every pair: nothing to correlate with");
    }
    Ok(())
}

/// BOLD (time x regions, `trs` samples after the transient) of the fit's model with the given
/// parameter values: synthetic subjects for a recovery test, in the same code as the fit.
///
/// ```
/// let mut cfg = nmm::fit::FitConfig::default();
/// cfg.connectome.path = "builtin:4".into();
/// cfg.transient_ms = 1500.0;
/// let s = nmm::fit::Setup::new(cfg)?;
/// let bold = nmm::fit::simulate_bold(&s, &s.values, 10)?;
/// assert_eq!((bold.len(), bold[0].len()), (10, 4));
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn simulate_bold(
    s: &Setup,
    values: &BTreeMap<String, f64>,
    trs: usize,
) -> Result<Vec<Vec<f64>>> {
    let mut carry = Carry::<f64>::new(s, 0);
    let steps_tr = s.bold_every * s.per_tr;
    let transient = (s.cfg.transient_ms / s.cfg.dt_ms).round() as usize;
    advance(s, values, &s.weights, &mut carry, transient, |_| {})?;
    carry.restart_clocks();
    advance(s, values, &s.weights, &mut carry, trs * steps_tr, |_| {})
}

/// The state realisation `k` reaches with the setup's own values after the transient, where a
/// fit's first window starts.
fn after_transient<T: Real>(s: &Setup, k: usize) -> Result<Carry<T>> {
    let mut carry = Carry::<T>::new(s, k);
    let transient = (s.cfg.transient_ms / s.cfg.dt_ms).round() as usize;
    let constants: BTreeMap<String, T> = s
        .values
        .iter()
        .map(|(k, v)| (k.clone(), T::from_f64(*v)))
        .collect();
    advance(s, &constants, &s.weights, &mut carry, transient, |_| {}).context("transient")?;
    carry.restart_clocks();
    Ok(carry)
}

/// The `cfg.realisations` realisations after the transient, computed in parallel.
fn realisations_after_transient(s: &Setup) -> Result<Vec<Carry<D>>> {
    use rayon::prelude::*;
    let all: Vec<Result<Carry<D>>> = (0..s.cfg.realisations)
        .into_par_iter()
        .map(|k| after_transient::<D>(s, k))
        .collect();
    in_order(all)
}

/// The first error in realisation order (whatever the thread count), naming the realisation
/// when there are several.
fn in_order<X>(all: Vec<Result<X>>) -> Result<Vec<X>> {
    let several = all.len() > 1;
    all.into_iter()
        .enumerate()
        .map(|(k, r)| {
            if several {
                r.with_context(|| format!("noise realisation {}", k + 1))
            } else {
                r
            }
        })
        .collect()
}

/// BOLD samples, time x regions.
type Bold<T> = Vec<Vec<T>>;

/// Each realisation's window FC (lower triangle) and BOLD.
type PerRealisation = (Vec<Vec<D>>, Vec<Bold<D>>);

/// Runs one window in every realisation (in parallel, each alone, so the results do not
/// depend on the thread count) and returns each one's FC (lower triangle) and BOLD.
fn window_fc(
    s: &Setup,
    vals: &BTreeMap<String, D>,
    weights: &[f64],
    carries: &mut [Carry<D>],
    what: &str,
) -> Result<PerRealisation> {
    use rayon::prelude::*;
    let all: Vec<Result<(Vec<D>, Bold<D>)>> = carries
        .par_iter_mut()
        .map(|c| {
            let bold = advance(s, vals, weights, c, window_steps(s), |_| {})?;
            Ok((fc_lower(&bold), bold))
        })
        .collect();
    Ok(in_order(all)
        .with_context(|| what.to_string())?
        .into_iter()
        .unzip())
}

/// The loss of one window run with `values` on the coupling matrix `weights` (row-major;
/// `s.weights` is the setup's) from the state the setup's own values reach after the
/// transient, and its gradient in the parameters of `cfg.fit` by forward mode (the start state
/// does not depend on `values`, as in a fit's truncated gradients); for checks against finite
/// differences and the reverse mode.
///
/// ```
/// let mut cfg = nmm::fit::FitConfig::default();
/// cfg.connectome.path = "builtin:4".into();
/// cfg.transient_ms = 1500.0;
/// cfg.window_tr = 6;
/// let s = nmm::fit::Setup::new(cfg)?;
/// let fc = vec![0.3, 0.1, 0.2, 0.4, 0.1, 0.3];
/// let emp = nmm::fit::Target { fc: fc.clone(), window_fc: fc };
/// let (l, grad) = nmm::fit::window_loss(&s, &s.values, &s.weights, &emp)?;
/// assert!(l.is_finite() && grad.len() == 4);
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn window_loss(
    s: &Setup,
    values: &BTreeMap<String, f64>,
    weights: &[f64],
    target: &Target,
) -> Result<(f64, Vec<f64>)> {
    check_target(s, target)?;
    check_weights(s, weights)?;
    let mut carries = realisations_after_transient(s)?;
    let vals = seeded(s, values);
    let (fcs, _) = window_fc(s, &vals, weights, &mut carries, "the window")?;
    let (l, _) = loss(&fcs, target, s.cfg.mse_weight);
    Ok((l.v, l.d[..s.cfg.fit.len()].to_vec()))
}

/// The same window's loss with its gradient in `G` and in every entry of `weights` by reverse
/// mode ([`Reverse`]).
///
/// ```
/// let mut cfg = nmm::fit::FitConfig::default();
/// cfg.connectome.path = "builtin:4".into();
/// cfg.transient_ms = 1500.0;
/// cfg.window_tr = 6;
/// let s = nmm::fit::Setup::new(cfg)?;
/// let fc = vec![0.3, 0.1, 0.2, 0.4, 0.1, 0.3];
/// let emp = nmm::fit::Target { fc: fc.clone(), window_fc: fc };
/// let (l, grad) = nmm::fit::window_loss(&s, &s.values, &s.weights, &emp)?;
/// let rev = nmm::fit::window_loss_reverse(&s, &s.values, &s.weights, &emp)?;
/// assert_eq!(rev.loss, l);
/// assert!((rev.d_g - grad[0]).abs() < 1e-9 * grad[0].abs()); // cfg.fit[0] is G
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn window_loss_reverse(
    s: &Setup,
    values: &BTreeMap<String, f64>,
    weights: &[f64],
    target: &Target,
) -> Result<Reverse> {
    check_target(s, target)?;
    check_weights(s, weights)?;
    if s.cfg.realisations > 1 {
        bail!(
            "the reverse mode runs a single noise realisation (realisations = {})",
            s.cfg.realisations
        );
    }
    let carry = after_transient::<f64>(s, 0)?;
    let rev = adjoint::backward(s, values, weights, &carry, window_steps(s), target)?;
    let finite = rev.loss.is_finite() && rev.d_g.is_finite();
    if !finite || rev.d_weights.iter().any(|d| !d.is_finite()) {
        bail!("the window's loss or its gradient is not finite (a region without BOLD variance?)");
    }
    Ok(rev)
}

/// Node steps per window.
fn window_steps(s: &Setup) -> usize {
    s.cfg.window_tr * s.bold_every * s.per_tr
}

/// A coupling matrix must be `n` x `n` and finite.
fn check_weights(s: &Setup, weights: &[f64]) -> Result<()> {
    if weights.len() != s.n * s.n {
        bail!(
            "a coupling matrix of {} values for {} regions (expected {})",
            weights.len(),
            s.n,
            s.n * s.n
        );
    }
    if weights.iter().any(|w| !w.is_finite()) {
        bail!("the coupling matrix has values that are not finite");
    }
    Ok(())
}

/// The values as dual numbers, fitted parameter `k` of `cfg.fit` seeded with tangent `k`.
fn seeded(s: &Setup, values: &BTreeMap<String, f64>) -> BTreeMap<String, D> {
    values
        .iter()
        .map(|(k, v)| {
            let mut d = [0.0; MAX_PARAMS];
            if let Some(i) = s.cfg.fit.iter().position(|f| f == k) {
                d[i] = 1.0;
            }
            (k.clone(), D::new(*v, d))
        })
        .collect()
}

/// Drops the derivatives of the carried state: gradients are truncated at the window's end.
fn truncate(carry: &mut Carry<D>) {
    for x in carry.x.iter_mut() {
        *x = x.map(|v| D::constant(v.v));
    }
    for b in carry.bold.iter_mut() {
        *b = b.map(|v| D::constant(v.v));
    }
    for z in carry.zacc.iter_mut() {
        *z = D::constant(z.v);
    }
}

/// Adam's rate at step `t` (1-based) of `total`: `lr` falling geometrically to `lr_final`.
fn rate(cfg: &FitConfig, t: i32, total: u64) -> f64 {
    match cfg.lr_final {
        Some(f) if total > 1 => {
            let x = f64::from(t - 1) / (total - 1) as f64;
            cfg.lr * (f / cfg.lr).powf(x)
        }
        _ => cfg.lr,
    }
}

/// One epoch's record.
#[derive(Clone, Debug)]
pub struct Epoch {
    /// Mean window loss (with the priors' terms).
    pub loss: f64,
    /// Mean window FC correlation with the empirical FC.
    pub window_r: f64,
    /// The FC correlation of the epoch's whole simulated BOLD with the empirical FC (the FC
    /// of each realisation's BOLD over the epoch, averaged over the realisations).
    pub fc_r: f64,
    /// The mean squared difference of the epoch's whole simulated FC (as for `fc_r`) and the
    /// empirical FC (lower triangles).
    pub fc_mse: f64,
    /// The fitted parameters' values at the epoch's end, in `cfg.fit` order.
    pub values: Vec<f64>,
}

/// A fit's result.
#[derive(Clone, Debug)]
pub struct FitResult {
    /// One record per epoch.
    pub epochs: Vec<Epoch>,
    /// Every parameter's final value.
    pub values: BTreeMap<String, f64>,
    /// The last epoch's simulated FC, lower triangle (averaged over the realisations).
    pub sim_fc_lower: Vec<f64>,
    /// With `connectome_gains`: the fitted connectome (row-major, `(1 + tanh b_ij) sc_ij`
    /// renormalised, before the Laplacian) and the gains `1 + tanh b_ij`.
    pub gains: Option<(Vec<f64>, Vec<f64>)>,
    /// The priors' final (mean, precision), by parameter (learnt or as given).
    pub priors: BTreeMap<String, (f64, f64)>,
}

/// One gain per connectome link (Griffiths et al. 2022): `W_ij = (1 + tanh b_ij) sc_ij` with
/// `b` symmetric, renormalised to the Frobenius norm of `sc`, and coupled through its
/// Laplacian `W - diag(row sums)`. `sc` is the off-diagonal part of the setup's (Laplacian)
/// coupling matrix, so `b = 0` is the setup's connectome. The gains stay in `(0, 2)`.
struct Gains {
    n: usize,
    sc: Vec<f64>,
    /// Frobenius norm of `sc`.
    norm: f64,
    /// The links `(i, j)`, `i > j`, with `sc_ij` or `sc_ji` nonzero.
    links: Vec<(usize, usize)>,
    /// `b` per link.
    b: Vec<f64>,
}

/// The coupling matrices of a set of gains.
struct GainWeights {
    gains: Vec<f64>,
    raw: Vec<f64>,
    normalised: Vec<f64>,
    laplacian: Vec<f64>,
}

impl Gains {
    fn new(s: &Setup) -> Self {
        let n = s.n;
        let sc: Vec<f64> = (0..n * n)
            .map(|k| if k / n == k % n { 0.0 } else { s.weights[k] })
            .collect();
        let norm = sc.iter().map(|w| w * w).sum::<f64>().sqrt();
        let links: Vec<(usize, usize)> = (0..n)
            .flat_map(|i| (0..i).map(move |j| (i, j)))
            .filter(|&(i, j)| sc[i * n + j] != 0.0 || sc[j * n + i] != 0.0)
            .collect();
        let b = vec![0.0; links.len()];
        Self {
            n,
            sc,
            norm,
            links,
            b,
        }
    }

    fn weights(&self) -> GainWeights {
        let n = self.n;
        let mut gains = vec![0.0; n * n];
        for (&(i, j), b) in self.links.iter().zip(&self.b) {
            let g = 1.0 + b.tanh();
            gains[i * n + j] = g;
            gains[j * n + i] = g;
        }
        let raw: Vec<f64> = gains.iter().zip(&self.sc).map(|(g, w)| g * w).collect();
        let f = raw.iter().map(|w| w * w).sum::<f64>().sqrt();
        let normalised: Vec<f64> = raw.iter().map(|w| w * (self.norm / f)).collect();
        let mut laplacian = normalised.clone();
        for i in 0..n {
            let row: f64 = normalised[i * n..(i + 1) * n].iter().sum();
            laplacian[i * n + i] = -row;
        }
        GainWeights {
            gains,
            raw,
            normalised,
            laplacian,
        }
    }

    /// d loss / d b per link from d loss / d (Laplacian coupling matrix) at `w`.
    fn chain(&self, w: &GainWeights, d_lap: &[f64]) -> Vec<f64> {
        let n = self.n;
        // L_ij = Wn_ij (i != j), L_ii = -sum_j Wn_ij.
        let d_wn: Vec<f64> = (0..n * n)
            .map(|k| {
                let (i, j) = (k / n, k % n);
                if i == j {
                    0.0
                } else {
                    d_lap[k] - d_lap[i * n + i]
                }
            })
            .collect();
        // Wn = norm W / |W|_F.
        let f = w.raw.iter().map(|x| x * x).sum::<f64>().sqrt();
        let dot: f64 = d_wn.iter().zip(&w.raw).map(|(d, x)| d * x).sum();
        let d_raw: Vec<f64> = d_wn
            .iter()
            .zip(&w.raw)
            .map(|(d, x)| self.norm / f * d - self.norm / (f * f * f) * x * dot)
            .collect();
        self.links
            .iter()
            .zip(&self.b)
            .map(|(&(i, j), b)| {
                let sech2 = 1.0 - b.tanh() * b.tanh();
                sech2
                    * (d_raw[i * n + j] * self.sc[i * n + j]
                        + d_raw[j * n + i] * self.sc[j * n + i])
            })
            .collect()
    }
}

/// The values of a dual run's carried state (its derivatives dropped), with its noise streams.
fn values_of(c: &Carry<D>) -> Carry<f64> {
    Carry {
        x: c.x.iter().map(|x| x.map(|v| v.v)).collect(),
        bold: c.bold.iter().map(|b| b.map(|v| v.v)).collect(),
        zacc: c.zacc.iter().map(|z| z.v).collect(),
        phase: c.phase,
        noise: c
            .noise
            .iter()
            .map(|z| Gaussian::from_rng(z.clone().rng_mut().clone()))
            .collect(),
    }
}

/// Adam's moments for a vector of parameters.
struct Adam {
    m: Vec<f64>,
    v: Vec<f64>,
}

impl Adam {
    const B1: f64 = 0.9;
    const B2: f64 = 0.999;
    const EPS: f64 = 1e-8;

    fn new(k: usize) -> Self {
        Self {
            m: vec![0.0; k],
            v: vec![0.0; k],
        }
    }

    /// The step for parameter `i` at update `t` (from 1) given its gradient `g`.
    fn step(&mut self, i: usize, g: f64, t: i32, lr: f64) -> f64 {
        self.m[i] = Self::B1 * self.m[i] + (1.0 - Self::B1) * g;
        self.v[i] = Self::B2 * self.v[i] + (1.0 - Self::B2) * g * g;
        let mh = self.m[i] / (1.0 - Self::B1.powi(t));
        let vh = self.v[i] / (1.0 - Self::B2.powi(t));
        -lr * mh / (vh.sqrt() + Self::EPS)
    }
}

/// Fits `cfg.fit` (and with `connectome_gains` one gain per link) to `target` over `windows`
/// windows per epoch, one Adam step per window. `progress` counts windows and shows the loss.
///
/// ```
/// use std::collections::BTreeMap;
/// let mut cfg = nmm::fit::FitConfig::default();
/// cfg.connectome.path = "builtin:4".into();
/// cfg.transient_ms = 1500.0;
/// cfg.window_tr = 6;
/// cfg.epochs = 1;
/// cfg.fit = vec!["G".into()];
/// let s = nmm::fit::Setup::new(cfg)?;
/// let fc = vec![0.3, 0.1, 0.2, 0.4, 0.1, 0.3];
/// let emp = nmm::fit::Target { fc: fc.clone(), window_fc: fc };
/// // Adam's first step moves ln G by the learning rate against the gradient's sign.
/// let (_, grad) = nmm::fit::window_loss(&s, &s.values, &s.weights, &emp)?;
/// let out = nmm::fit::fit(&s, &emp, 1, &nmm::progress::Silent)?;
/// assert_eq!(out.epochs.len(), 1);
/// let step = (out.values["G"] / 0.5).ln();
/// assert!((step + 0.05 * grad[0].signum()).abs() < 1e-6, "{step} {grad:?}");
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn fit(
    s: &Setup,
    target: &Target,
    windows: usize,
    progress: &dyn Progress,
) -> Result<FitResult> {
    check_target(s, target)?;
    if windows == 0 {
        bail!("no windows to fit (the empirical BOLD is shorter than window_tr)");
    }
    let k = s.cfg.fit.len();
    let mut values = s.values.clone();
    // Adam on phi = ln(theta) for the parameters, on b for the connectome's gains.
    let mut adam = Adam::new(k);
    let mut gains = s.cfg.connectome_gains.then(|| Gains::new(s));
    let mut adam_gains = Adam::new(gains.as_ref().map_or(0, |g| g.links.len()));
    // Priors by fitted parameter: (mean, ln precision), with Adam moments for the learnt ones.
    let mut priors: Vec<Option<(f64, f64)>> = s
        .cfg
        .fit
        .iter()
        .map(|f| s.cfg.priors.get(f).map(|p| (p.mean, p.precision.ln())))
        .collect();
    let mut adam_priors = Adam::new(2 * k);
    let mut t = 0i32;
    let mut carries = realisations_after_transient(s)?;
    let total = (s.cfg.epochs as u64).saturating_mul(windows as u64);
    let mut epochs = Vec::with_capacity(s.cfg.epochs);
    let mut sim_fc_lower = Vec::new();
    for e in 0..s.cfg.epochs {
        let (mut sum_loss, mut sum_r) = (0.0, 0.0);
        // The epoch's BOLD, per realisation.
        let mut all_bold: Vec<Vec<Vec<f64>>> = vec![Vec::new(); carries.len()];
        for w in 0..windows {
            carries.iter_mut().for_each(truncate);
            // With connectome gains there is one realisation (Setup::new).
            let start = gains.as_ref().map(|_| values_of(&carries[0]));
            let weights = gains.as_ref().map(Gains::weights);
            let weights = weights
                .as_ref()
                .map_or(&s.weights[..], |w| &w.laplacian[..]);
            let vals = seeded(s, &values);
            let where_ = || format!("epoch {}, window {}", e + 1, w + 1);
            let (fcs, bolds) = window_fc(s, &vals, weights, &mut carries, &where_())?;
            let (l, r) = loss(&fcs, target, s.cfg.mse_weight);
            if !l.is_finite() {
                bail!(
                    "epoch {}, window {}: the loss or its gradient is not finite (a region \
                     without BOLD variance?)",
                    e + 1,
                    w + 1
                );
            }
            t += 1;
            let lr = rate(&s.cfg, t, total);
            if let (Some(gn), Some(start)) = (gains.as_mut(), start) {
                let plain: BTreeMap<String, f64> =
                    vals.iter().map(|(k, v)| (k.clone(), v.v)).collect();
                let rev = adjoint::backward(s, &plain, weights, &start, window_steps(s), target)
                    .with_context(where_)?;
                let d_b = gn.chain(&gn.weights(), &rev.d_weights);
                if d_b.iter().any(|d| !d.is_finite()) {
                    bail!("{}: the connectome gains' gradient is not finite", where_());
                }
                for (i, d) in d_b.iter().enumerate() {
                    gn.b[i] += adam_gains.step(i, *d, t, lr);
                }
            }
            let mut prior_loss = 0.0;
            for (i, name) in s.cfg.fit.iter().enumerate() {
                let theta = values[name];
                let mut d_theta = l.d[i];
                if let Some((mean, ln_prec)) = priors[i].as_mut() {
                    // (theta - m)^2 v - ln v and its derivatives in theta, m and ln v.
                    let (e, v) = (theta - *mean, ln_prec.exp());
                    prior_loss += e * e * v - *ln_prec;
                    d_theta += 2.0 * e * v;
                    if s.cfg.priors[name].learn {
                        *mean += adam_priors.step(2 * i, -2.0 * e * v, t, lr);
                        *ln_prec += adam_priors.step(2 * i + 1, e * e * v - 1.0, t, lr);
                    }
                }
                // d loss / d phi = d loss / d theta * theta.
                let phi = theta.ln() + adam.step(i, d_theta * theta, t, lr);
                values.insert(name.clone(), phi.exp());
            }
            sum_loss += l.v + prior_loss;
            sum_r += r.v;
            for (all, bold) in all_bold.iter_mut().zip(&bolds) {
                all.extend(
                    bold.iter()
                        .map(|row| row.iter().map(|x| x.v).collect::<Vec<_>>()),
                );
            }
            progress.set((e * windows + w + 1) as u64, total);
            progress.message(&format!("epoch {} loss {:.4} r {:.3}", e + 1, l.v, r.v));
        }
        sim_fc_lower = mean_fc(&all_bold);
        let fc_r = crate::stats::pearson(&sim_fc_lower, &target.fc);
        let rec = Epoch {
            loss: sum_loss / windows as f64,
            window_r: sum_r / windows as f64,
            fc_r,
            fc_mse: mse(&sim_fc_lower, &target.fc),
            values: s.cfg.fit.iter().map(|f| values[f]).collect(),
        };
        progress.log(&format!(
            "epoch {}: loss {:.4}, window r {:.3}, FC r {:.3}, {}",
            e + 1,
            rec.loss,
            rec.window_r,
            rec.fc_r,
            s.cfg
                .fit
                .iter()
                .zip(&rec.values)
                .map(|(n, v)| format!("{n} = {v:.4}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        epochs.push(rec);
    }
    Ok(FitResult {
        epochs,
        values,
        sim_fc_lower,
        gains: gains.map(|g| {
            let w = g.weights();
            (w.normalised, w.gains)
        }),
        priors: s
            .cfg
            .fit
            .iter()
            .zip(&priors)
            .filter_map(|(f, p)| p.map(|(m, lv)| (f.clone(), (m, lv.exp()))))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(mse_weight: f64) -> (Setup, Target) {
        let mut cfg = FitConfig::default();
        cfg.connectome.path = "builtin:6".into();
        cfg.transient_ms = 2000.0;
        cfg.window_tr = 6;
        cfg.mse_weight = mse_weight;
        cfg.params.insert("G".into(), 2.0);
        let fc: Vec<f64> = (0..15).map(|k| 0.1 + 0.05 * (k % 4) as f64).collect();
        let emp = Target {
            fc: fc.clone(),
            window_fc: fc.iter().map(|x| 0.8 * x).collect(),
        };
        (Setup::new(cfg).unwrap(), emp)
    }

    /// The pairwise squared difference against its definition, a double loop over ordered
    /// pairs of distinct realisations; for one pair it is the mean of `(a - t)(b - t)`.
    #[test]
    fn pairwise_squared_difference_by_its_definition() {
        let t = [0.1, -0.2, 0.3];
        let fcs: Vec<Vec<f64>> = (0..4)
            .map(|a| (0..3).map(|e| ((a * 3 + e) as f64 * 0.7).sin()).collect())
            .collect();
        let mut direct = 0.0;
        for a in 0..4 {
            for b in (0..4).filter(|&b| b != a) {
                for e in 0..3 {
                    direct += (fcs[a][e] - t[e]) * (fcs[b][e] - t[e]);
                }
            }
        }
        direct /= (4 * 3 * 3) as f64;
        assert!((pairwise_mse(&fcs, &t) - direct).abs() < 1e-15);
        let two = &fcs[..2];
        let pair: f64 = (0..3)
            .map(|e| (two[0][e] - t[e]) * (two[1][e] - t[e]))
            .sum::<f64>()
            / 3.0;
        assert!((pairwise_mse(two, &t) - pair).abs() < 1e-15);
        // Equal realisations: the plain squared difference.
        let same = vec![fcs[0].clone(), fcs[0].clone()];
        assert!((pairwise_mse(&same, &t) - mse(&fcs[0], &t)).abs() < 1e-15);
    }

    /// The rate falls geometrically from lr at the first step to lr_final at the last: the
    /// middle step of an odd count is their geometric mean.
    #[test]
    fn the_rate_falls_geometrically() {
        let mut cfg = FitConfig::default();
        assert_eq!(rate(&cfg, 7, 9), cfg.lr);
        cfg.lr_final = Some(0.005);
        assert_eq!(rate(&cfg, 1, 9), 0.05);
        assert!((rate(&cfg, 9, 9) - 0.005).abs() < 1e-15);
        assert!((rate(&cfg, 5, 9) - (0.05f64 * 0.005).sqrt()).abs() < 1e-15);
        assert!((1..9).all(|t| rate(&cfg, t + 1, 9) < rate(&cfg, t, 9)));
        assert_eq!(rate(&cfg, 1, 1), 0.05);
    }

    /// Reverse mode against forward mode (G) and central finite differences (links, the
    /// diagonal included), for both losses. 9,000 steps of the noisy network with its BOLD:
    /// the whole chain of the window.
    #[test]
    fn reverse_mode_matches_forward_mode_and_finite_differences() {
        for mse_weight in [0.0, 5.0] {
            let (s, emp) = small(mse_weight);
            let (l, grad) = window_loss(&s, &s.values, &s.weights, &emp).unwrap();
            let rev = window_loss_reverse(&s, &s.values, &s.weights, &emp).unwrap();
            // The same forward computation: the same loss to the last bit.
            assert_eq!(rev.loss, l);
            // Two exact derivatives of one computation, summed in different orders over
            // 9,000 steps: agreement to 1e-9 relative.
            assert!(
                (rev.d_g - grad[0]).abs() < 1e-9 * grad[0].abs(),
                "mse_weight {mse_weight}, d/dG: reverse {} forward {}",
                rev.d_g,
                grad[0]
            );
            let n = s.n;
            let scale = rev.d_weights.iter().fold(0.0f64, |m, d| m.max(d.abs()));
            for (i, j) in [(0, 1), (1, 0), (3, 2), (5, 0), (2, 2), (4, 4)] {
                let k = i * n + j;
                // An absolute step: entries are O(0.1); truncation ~h^2 and rounding
                // ~eps/h both stay below 1e-9 of the loss's O(1) derivatives.
                let h = 1e-6;
                let at = |d: f64| {
                    let mut w = s.weights.clone();
                    w[k] += d;
                    window_loss(&s, &s.values, &w, &emp).unwrap().0
                };
                let fd = (at(h) - at(-h)) / (2.0 * h);
                // 1e-6 of the largest entry of the gradient (FD's own error is about 1e-9).
                assert!(
                    (rev.d_weights[k] - fd).abs() < 1e-6 * scale,
                    "mse_weight {mse_weight}, d/dW[{i},{j}]: reverse {} FD {fd}",
                    rev.d_weights[k]
                );
            }
        }
    }

    /// The gains' chain rule (renormalisation, Laplacian, tanh) against finite differences of
    /// a linear function of the Laplacian coupling matrix.
    #[test]
    fn connectome_gains_chain_rule_matches_finite_differences() {
        let (s, _) = small(0.0);
        let mut g = Gains::new(&s);
        assert!(!g.links.is_empty());
        for (k, b) in g.b.iter_mut().enumerate() {
            *b = 0.3 * ((k as f64) * 1.7).sin();
        }
        // b = 0 reproduces the setup's weights (up to the renormalisation's rounding).
        let zero = Gains {
            b: vec![0.0; g.links.len()],
            ..Gains::new(&s)
        };
        for (a, b) in zero.weights().laplacian.iter().zip(&s.weights) {
            assert!((a - b).abs() < 1e-14, "{a} vs {b}");
        }
        let n = s.n;
        let r: Vec<f64> = (0..n * n).map(|k| ((k * 7 % 11) as f64) - 5.0).collect();
        let f = |g: &Gains| -> f64 {
            g.weights()
                .laplacian
                .iter()
                .zip(&r)
                .map(|(w, r)| w * r)
                .sum()
        };
        let d = g.chain(&g.weights(), &r);
        for (l, dl) in d.iter().enumerate() {
            let h = 1e-6;
            let mut up = Gains {
                b: g.b.clone(),
                ..Gains::new(&s)
            };
            up.b[l] += h;
            let mut down = Gains {
                b: g.b.clone(),
                ..Gains::new(&s)
            };
            down.b[l] -= h;
            let fd = (f(&up) - f(&down)) / (2.0 * h);
            // f is O(10); central differences with h = 1e-6 are good to about 1e-9.
            assert!((dl - fd).abs() < 1e-7, "link {l}: {dl} vs {fd}");
        }
    }

    /// A prior's pull: a tight fixed prior at the start keeps G there while the data term alone
    /// moves it; a learnt prior's mean follows the parameter.
    #[test]
    fn priors_pull_the_fitted_values() {
        let (mut s, _) = small(5.0);
        s.cfg.fit = vec!["G".into()];
        // A target made with G = 6: the data term pulls G up from 2 in every window.
        let mut truth = s.values.clone();
        truth.insert("G".into(), 6.0);
        let mut other = s.clone();
        other.cfg.seed = 99; // not the fit's noise
        let emp = Target::from_bold(&simulate_bold(&other, &truth, 60).unwrap(), 6).unwrap();
        s.cfg.epochs = 2;
        let free = fit(&s, &emp, 4, &crate::progress::Silent).unwrap();
        let moved = (free.values["G"] / 2.0).ln().abs();
        // 8 Adam steps of lr 0.05 in ln G: a free fit moves more than 0.1 if the gradient
        // keeps its sign for most of them.
        assert!(
            moved > 0.1,
            "the free fit barely moved ({moved}): pick another target"
        );
        let mut tight = s.clone();
        tight.cfg.priors.insert(
            "G".into(),
            Prior {
                mean: 2.0,
                precision: 1e6,
                learn: false,
            },
        );
        let held = fit(&tight, &emp, 4, &crate::progress::Silent).unwrap();
        // The prior's gradient (2e6 (G - 2)) outweighs the data's O(1) once G is off by
        // 1e-5; Adam's steps (about lr = 0.05 in ln G) then oscillate about the mean.
        let off = (held.values["G"] / 2.0).ln().abs();
        assert!(off < 0.5 * moved, "held {off} vs free {moved}");
        let (m, v) = held.priors["G"];
        assert!(
            m == 2.0 && (v / 1e6 - 1.0).abs() < 1e-12,
            "fixed prior changed: {m} {v}"
        );
        let mut learnt = tight.clone();
        learnt.cfg.priors.get_mut("G").unwrap().precision = 1.0;
        learnt.cfg.priors.get_mut("G").unwrap().learn = true;
        let out = fit(&learnt, &emp, 4, &crate::progress::Silent).unwrap();
        let (m, v) = out.priors["G"];
        // The mean moves towards G (it started at G's start, 2.0, and G moved).
        assert!(m != 2.0 && v != 1.0, "{m} {v}");
        assert!((m - out.values["G"]).abs() < (2.0 - out.values["G"]).abs() + 1e-12);
    }

    /// Connectome gains need coupling to act through, and a window the reverse mode can hold.
    #[test]
    fn connectome_gains_refuse_what_cannot_work() {
        let mut cfg = small(0.0).0.cfg;
        cfg.connectome_gains = true;
        cfg.params.insert("G".into(), 0.0);
        cfg.fit = vec!["g_EE".into()];
        let e = Setup::new(cfg.clone()).unwrap_err().to_string();
        assert!(e.contains("connectome_gains") && e.contains("G = 0"), "{e}");
        cfg.params.insert("G".into(), 2.0);
        cfg.connectome.normalise = vec!["max".into()];
        let e = Setup::new(cfg).unwrap_err().to_string();
        assert!(e.contains("laplacian"), "{e}");
    }
}
