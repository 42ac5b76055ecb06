//! Gradient-based fitting of a whole-brain model to an empirical FC, after Griffiths et al.
//! 2022 (REFERENCE section 9): reduced Wong-Wang nodes in the gain form
//! (`rww-griffiths`) on a connectome, Balloon-Windkessel BOLD, and the FC of windows of
//! simulated BOLD compared with the empirical FC.
//!
//! - **Objective** per window: `r` = Pearson correlation of the lower triangles of the window's
//!   simulated FC and the empirical FC; loss `-ln(0.5 + 0.5 r)`.
//! - **Gradients** by forward mode: the run is written once over [`nmm_core::Real`] and
//!   evaluated in [`Dual`] numbers carrying the derivatives in up to [`MAX_PARAMS`] fitted
//!   parameters; the state is carried from one window to the next with its derivatives dropped
//!   (gradients truncated at window boundaries, as in the paper's code).
//! - **Updates**: Adam on the logarithms of the parameters (they stay positive, and a step is
//!   relative to the value: the gains span 0.15 to 1.4).
//!
//! Not yet here (issue 18): reverse mode for one gain per connectome link, the Gaussian priors
//! of the paper's code.

use crate::brain::{BoldCfg, ConnectomeCfg, LinkTables, normalised_weights};
use crate::connectome::load;
use crate::error::{Context, Error, Result, bail, input};
use crate::progress::Progress;
use nmm_core::bold::BoldParams;
use nmm_core::brain::Brain;
use nmm_core::dual::Dual;
use nmm_core::models::RwwGriffiths;
use nmm_core::rng::Gaussian;
use nmm_core::{Model, Real};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most parameters fitted at once (the tangents each dual number carries).
pub const MAX_PARAMS: usize = 4;

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
    /// Seed of the noise (stream `i + 1` for region `i`).
    pub seed: u64,
    /// The fitted parameters: `G` (global coupling) and `rww-griffiths` parameter names.
    pub fit: Vec<String>,
    /// Starting values of fitted parameters and fixed values of others (default: the model's,
    /// and G = 0.5).
    pub params: BTreeMap<String, f64>,
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
            seed: 0,
            fit: ["G", "g_EE", "g_EI", "g_IE"].map(String::from).to_vec(),
            params: BTreeMap::new(),
        }
    }
}

/// Everything a fit needs, checked.
#[derive(Debug)]
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
        (per_tr * bold_every)
            .checked_mul(cfg.window_tr)
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

    fn new(s: &Setup) -> Self {
        Self {
            x: vec![[T::from_f64(0.1); 2]; s.n],
            bold: vec![BoldParams::<T>::REST; s.n],
            zacc: vec![T::ZERO; s.n],
            phase: (0, 0),
            noise: (0..s.n)
                .map(|i| Gaussian::new(s.cfg.seed, i as u64 + 1))
                .collect(),
        }
    }
}

/// Runs `steps` node steps from `carry` with parameter values `vals` (G and the model's), and
/// returns the BOLD samples taken (time x regions).
fn advance<T: Real>(
    s: &Setup,
    vals: &BTreeMap<String, T>,
    carry: &mut Carry<T>,
    steps: usize,
) -> Result<Vec<Vec<T>>> {
    let n = s.n;
    let mut model = RwwGriffiths::<T>::default();
    for (k, v) in vals {
        if k != "G" {
            model.set(k, *v).map_err(|e| input!("params.{k}: {e}"))?;
        }
    }
    let g = *vals
        .get("G")
        .ok_or_else(|| input!("the parameter values have no G"))?;
    let w: Vec<T> = s.weights.iter().map(|&x| T::from_f64(x)).collect();
    let delays = vec![0u32; n * n];
    let mut links = LinkTables::new(n, &w, &delays)?;
    let conn = links.connectome(n, &w, &delays)?;
    let models = vec![model; n];
    let mut hist = vec![T::ZERO; Brain::<T, RwwGriffiths<T>, 2>::history_len(&conn)];
    let mut work = vec![[T::ZERO; 2]; Brain::<T, RwwGriffiths<T>, 2>::work_len(n)];
    let mut coupling = vec![T::ZERO; Brain::<T, RwwGriffiths<T>, 2>::coupling_len(n)];
    let bold: BoldParams<T> = {
        let mut b = BoldParams::<T>::default();
        for spec in BoldParams::<f64>::SPECS {
            if let Some(v) = s.bold.get(spec.name) {
                b.set(spec.name, T::from_f64(v))
                    .map_err(|e| input!("bold.params.{}: {e}", spec.name))?;
            }
        }
        b
    };
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

/// The window loss `-ln(0.5 + 0.5 r)` of simulated BOLD against the empirical FC's lower
/// triangle, and `r`.
fn loss<T: Real>(bold: &[Vec<T>], emp_lower: &[f64]) -> (T, T) {
    let r = corr(&fc_lower(bold), emp_lower);
    (-(T::HALF + T::HALF * r).ln(), r)
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
    let mut carry = Carry::<f64>::new(s);
    let steps_tr = s.bold_every * s.per_tr;
    let transient = (s.cfg.transient_ms / s.cfg.dt_ms).round() as usize;
    advance(s, values, &mut carry, transient)?;
    carry.restart_clocks();
    advance(s, values, &mut carry, trs * steps_tr)
}

/// The loss of one window run with `values` from the state the setup's own values reach after
/// the transient, and its gradient in the parameters of `cfg.fit` by forward mode (the start
/// state does not depend on `values`, as in a fit's truncated gradients); for checks against
/// finite differences.
///
/// ```
/// let mut cfg = nmm::fit::FitConfig::default();
/// cfg.connectome.path = "builtin:4".into();
/// cfg.transient_ms = 1500.0;
/// cfg.window_tr = 6;
/// let s = nmm::fit::Setup::new(cfg)?;
/// let emp = [0.3, 0.1, 0.2, 0.4, 0.1, 0.3];
/// let (l, grad) = nmm::fit::window_loss(&s, &s.values, &emp)?;
/// assert!(l.is_finite() && grad.len() == 4);
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn window_loss(
    s: &Setup,
    values: &BTreeMap<String, f64>,
    emp_lower: &[f64],
) -> Result<(f64, Vec<f64>)> {
    check_empirical(s, emp_lower)?;
    let mut carry = Carry::<D>::new(s);
    let vals = seeded(s, values);
    let transient = (s.cfg.transient_ms / s.cfg.dt_ms).round() as usize;
    let constants: BTreeMap<String, D> = s
        .values
        .iter()
        .map(|(k, v)| (k.clone(), D::constant(*v)))
        .collect();
    advance(s, &constants, &mut carry, transient)?;
    carry.restart_clocks();
    let bold = advance(
        s,
        &vals,
        &mut carry,
        s.cfg.window_tr * s.bold_every * s.per_tr,
    )?;
    let (l, _) = loss(&bold, emp_lower);
    Ok((l.v, l.d[..s.cfg.fit.len()].to_vec()))
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

/// One epoch's record.
#[derive(Clone, Debug)]
pub struct Epoch {
    /// Mean window loss.
    pub loss: f64,
    /// Mean window FC correlation with the empirical FC.
    pub window_r: f64,
    /// The FC correlation of the epoch's whole simulated BOLD with the empirical FC.
    pub fc_r: f64,
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
    /// The last epoch's simulated FC, lower triangle.
    pub sim_fc_lower: Vec<f64>,
}

/// Fits `cfg.fit` to the empirical FC (lower triangle, see [`lower_triangle`]) over `windows`
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
/// let emp = [0.3, 0.1, 0.2, 0.4, 0.1, 0.3];
/// // Adam's first step moves ln G by the learning rate against the gradient's sign.
/// let (_, grad) = nmm::fit::window_loss(&s, &s.values, &emp)?;
/// let out = nmm::fit::fit(&s, &emp, 1, &nmm::progress::Silent)?;
/// assert_eq!(out.epochs.len(), 1);
/// let step = (out.values["G"] / 0.5).ln();
/// assert!((step + 0.05 * grad[0].signum()).abs() < 1e-6, "{step} {grad:?}");
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn fit(
    s: &Setup,
    emp_lower: &[f64],
    windows: usize,
    progress: &dyn Progress,
) -> Result<FitResult> {
    check_empirical(s, emp_lower)?;
    if windows == 0 {
        bail!("no windows to fit (the empirical BOLD is shorter than window_tr)");
    }
    let k = s.cfg.fit.len();
    let mut values = s.values.clone();
    // Adam on phi = ln(theta): moments per fitted parameter.
    let (b1, b2, eps) = (0.9, 0.999, 1e-8);
    let (mut m, mut v) = (vec![0.0; k], vec![0.0; k]);
    let mut t = 0i32;
    let mut carry = Carry::<D>::new(s);
    let transient = (s.cfg.transient_ms / s.cfg.dt_ms).round() as usize;
    let constants: BTreeMap<String, D> = values
        .iter()
        .map(|(k, v)| (k.clone(), D::constant(*v)))
        .collect();
    advance(s, &constants, &mut carry, transient).context("transient")?;
    carry.restart_clocks();
    let window_steps = s.cfg.window_tr * s.bold_every * s.per_tr;
    let total = (s.cfg.epochs as u64).saturating_mul(windows as u64);
    let mut epochs = Vec::with_capacity(s.cfg.epochs);
    let mut sim_fc_lower = Vec::new();
    for e in 0..s.cfg.epochs {
        let (mut sum_loss, mut sum_r) = (0.0, 0.0);
        let mut all_bold: Vec<Vec<f64>> = Vec::new();
        for w in 0..windows {
            truncate(&mut carry);
            let vals = seeded(s, &values);
            let bold = advance(s, &vals, &mut carry, window_steps)
                .with_context(|| format!("epoch {}, window {}", e + 1, w + 1))?;
            let (l, r) = loss(&bold, emp_lower);
            if !l.is_finite() {
                bail!(
                    "epoch {}, window {}: the loss or its gradient is not finite (a region \
                     without BOLD variance?)",
                    e + 1,
                    w + 1
                );
            }
            sum_loss += l.v;
            sum_r += r.v;
            all_bold.extend(bold.iter().map(|row| row.iter().map(|x| x.v).collect()));
            t += 1;
            for (i, name) in s.cfg.fit.iter().enumerate() {
                let theta = values[name];
                // d loss / d phi = d loss / d theta * theta.
                let g = l.d[i] * theta;
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                let mh = m[i] / (1.0 - b1.powi(t));
                let vh = v[i] / (1.0 - b2.powi(t));
                let phi = theta.ln() - s.cfg.lr * mh / (vh.sqrt() + eps);
                values.insert(name.clone(), phi.exp());
            }
            progress.set((e * windows + w + 1) as u64, total);
            progress.message(&format!("epoch {} loss {:.4} r {:.3}", e + 1, l.v, r.v));
        }
        sim_fc_lower = fc_lower(&all_bold);
        let fc_r = crate::stats::pearson(&sim_fc_lower, emp_lower);
        let rec = Epoch {
            loss: sum_loss / windows as f64,
            window_r: sum_r / windows as f64,
            fc_r,
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
    })
}
