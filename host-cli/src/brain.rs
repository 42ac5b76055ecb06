//! `nmm brain`: whole-brain runs (mean-field nodes on a connectome, observed as BOLD, FC and
//! FCD) from a TOML configuration or flags, and `nmm brain batch` over a CSV of parameter rows.
//!
//! Time is in ms throughout (the models' time unit: TVB's MPR with `tau = 1 ms`, RWW in ms);
//! BOLD integrates the block mean of each region's coupling variable (`r` for MPR, CC and the
//! MLP, `S_E` for RWW) with its own step `bold.dt_ms`, and samples it every TR.

use crate::connectome::{ConnectomeData, load};
use crate::io::{NpzEntry, atomic_write, write_csv, write_npz};
use crate::spiking::styled_bar;
use crate::sweep::{parse_shard, slurm_shard};
use crate::{command_line, plot};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use indicatif::ProgressBar;
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

/// Most values (samples x regions x variables) a run may record in memory.
const MAX_RECORDED: usize = 200_000_000;

/// A parameter value: one for every region, or one per region.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ParamValue {
    /// The same value in every region.
    Global(f64),
    /// One value per region, in the connectome's region order.
    PerRegion(Vec<f64>),
}

/// Where the connectome comes from and how it is prepared.
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

/// FC and FCD settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FcCfg {
    /// BOLD samples before this time (ms) are left out of FC and FCD (haemodynamic transient).
    pub transient_ms: f64,
    /// FCD window length, in TRs.
    pub window_tr: usize,
    /// FCD window step, in TRs.
    pub step_tr: usize,
}

impl Default for FcCfg {
    fn default() -> Self {
        Self {
            transient_ms: 10_000.0,
            window_tr: 15,
            step_tr: 2,
        }
    }
}

/// A whole-brain run, as written in `RUN.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Node model: `mpr`, `cc`, `rww`, `rww-griffiths`, `mlp`.
    pub model: String,
    /// The trained MLP mean field (`.nmmw` from `nmm train`) for `model = "mlp"`.
    pub model_file: Option<PathBuf>,
    /// Seed of every random draw (noise per region, stream `i + 1` for region `i`).
    pub seed: u64,
    /// Simulated time, ms.
    pub duration_ms: f64,
    /// Integration step, ms.
    pub dt_ms: f64,
    /// `f64` or `f32` arithmetic for the nodes (observers are always f64).
    pub precision: String,
    /// Global coupling G (unit: the model's input per unit of coupling variable).
    pub coupling: f64,
    /// Additive noise amplitude per state variable (variable per sqrt(ms)); default: for MPR
    /// and the MLP TVB's MPR `nsig = (0.01, 0.02)` on (r, v), for RWW its `sigma`, for CC none.
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
            duration_ms: 60_000.0,
            dt_ms: 0.1,
            precision: "f64".into(),
            coupling: 0.1,
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

/// Everything a run needs, checked and in steps.
pub struct Prepared {
    /// The configuration it came from.
    pub cfg: Config,
    /// The connectome as read.
    pub conn: ConnectomeData,
    /// Normalised weights.
    pub weights: Vec<f64>,
    /// Delays in steps (empty: none).
    pub delays: Vec<u32>,
    /// Neural steps.
    pub steps: usize,
    /// Neural steps per BOLD step.
    pub bold_every: usize,
    /// BOLD parameters.
    pub bold: BoldParams<f64>,
    /// Neural steps per recorded sample (0: none).
    pub record_every: usize,
}

fn whole_multiple(what: &str, a: f64, b: f64) -> Result<usize> {
    let k = (a / b).round();
    if !(a.is_finite() && b.is_finite() && b > 0.0 && k >= 1.0 && (a - k * b).abs() <= 1e-9 * a) {
        bail!("{what} = {a} must be a whole multiple (>= 1) of {b}");
    }
    Ok(k as usize)
}

impl Prepared {
    /// Longest delay of a link with non-zero weight, in steps (the one the run uses).
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
    pub fn new(cfg: Config) -> Result<Self> {
        let conn = load(
            &cfg.connectome.path,
            cfg.connectome.tract_lengths.as_deref(),
        )
        .context("connectome")?;
        Self::with_connectome(cfg, conn)
    }

    /// As [`Prepared::new`] with a connectome already read (batch runs read it once).
    pub fn with_connectome(cfg: Config, conn: ConnectomeData) -> Result<Self> {
        let n = conn.n;
        if !(cfg.dt_ms.is_finite() && cfg.dt_ms > 0.0) {
            bail!("dt_ms must be positive, got {}", cfg.dt_ms);
        }
        if !(cfg.duration_ms.is_finite() && cfg.duration_ms > 0.0) {
            bail!("duration_ms must be positive, got {}", cfg.duration_ms);
        }
        if !cfg.coupling.is_finite() {
            bail!("coupling must be finite");
        }
        let steps = (cfg.duration_ms / cfg.dt_ms).round() as usize;
        let bold_every = whole_multiple("bold.dt_ms", cfg.bold.dt_ms, cfg.dt_ms)?;
        whole_multiple("bold.tr_ms", cfg.bold.tr_ms, cfg.bold.dt_ms)?;
        let record_every = if cfg.record_every_ms > 0.0 {
            whole_multiple("record_every_ms", cfg.record_every_ms, cfg.dt_ms)?
        } else {
            0
        };
        let preset: BoldPreset = cfg
            .bold
            .preset
            .parse()
            .map_err(|e| anyhow!("bold.preset {:?}: {e}", cfg.bold.preset))?;
        let mut bold = BoldParams::<f64>::preset(preset);
        for (k, v) in &cfg.bold.params {
            bold.set(k, *v)
                .map_err(|e| anyhow!("bold.params.{k}: {e}"))?;
        }
        if !(cfg.fc.transient_ms.is_finite() && cfg.fc.transient_ms >= 0.0) {
            bail!("fc.transient_ms must be finite and >= 0");
        }
        if !(cfg.record_every_ms.is_finite() && cfg.record_every_ms >= 0.0) {
            bail!("record_every_ms must be finite and >= 0 (0: no recording)");
        }
        if !(cfg.bold.tr_ms.is_finite() && cfg.bold.tr_ms > 0.0) {
            bail!("bold.tr_ms must be positive");
        }
        if cfg.fc.window_tr < 2 || cfg.fc.step_tr == 0 {
            bail!("fc.window_tr must be >= 2 and fc.step_tr >= 1");
        }
        let mut weights = conn.weights.clone();
        if cfg.connectome.zero_diagonal {
            normalise(n, &mut weights, Normalise::ZeroDiagonal)?;
        }
        for name in &cfg.connectome.normalise {
            let steps: Vec<Normalise> = match Normalise::recipe(name) {
                Some(r) => r.to_vec(),
                None => vec![
                    name.parse()
                        .map_err(|e| anyhow!("connectome.normalise {name:?}: {e}"))?,
                ],
            };
            for s in steps {
                normalise(n, &mut weights, s).map_err(|e| anyhow!("{}: {e}", conn.source))?;
            }
        }
        let delays = match (cfg.connectome.delays, &conn.lengths_mm) {
            (true, Some(l)) => {
                let mut d = vec![0u32; n * n];
                delays_in_steps(n, l, cfg.connectome.speed_mm_per_ms, cfg.dt_ms, &mut d)
                    .map_err(|e| anyhow!("{}: {e}", conn.source))?;
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
        Ok(Self {
            cfg,
            conn,
            weights,
            delays,
            steps,
            bold_every,
            bold,
            record_every,
        })
    }
}

/// What one run produces.
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
pub fn run(p: &Prepared, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<RunOutput> {
    match p.cfg.precision.as_str() {
        "f64" => dispatch::<f64>(p, progress),
        "f32" => dispatch::<f32>(p, progress),
        other => bail!("precision must be f64 or f32, not {other:?}"),
    }
}

fn dispatch<T: Real + nmm_core::mlp::MlpScalar + Send + Sync>(
    p: &Prepared,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<RunOutput> {
    use nmm_core::models::{ChenCampbell, Mpr, Rww, RwwGriffiths};
    if p.cfg.model != "mlp" && p.cfg.model_file.is_some() {
        bail!("model_file is only for model = \"mlp\"");
    }
    match p.cfg.model.as_str() {
        "mpr" => simulate::<T, Mpr<T>, 2>(Mpr::default(), p, progress),
        "cc" => simulate::<T, ChenCampbell<T>, 4>(ChenCampbell::default(), p, progress),
        "rww" => simulate::<T, Rww<T>, 2>(Rww::default(), p, progress),
        "rww-griffiths" => simulate::<T, RwwGriffiths<T>, 2>(RwwGriffiths::default(), p, progress),
        "mlp" => {
            let path = p.cfg.model_file.as_ref().ok_or_else(|| {
                anyhow!("model = \"mlp\" needs model_file (a .nmmw from nmm train)")
            })?;
            (|| crate::with_mlp!(T, path, |m| simulate::<T, _, 2>(m, p, progress)))()
                .context("model_file")
        }
        other => bail!("model {other:?}: expected mpr, cc, rww, rww-griffiths or mlp"),
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
                .map_err(|e| anyhow!("params.{name} (region {i}): {e}"))?;
        }
    }
    for (i, m) in models.iter().enumerate() {
        m.validate().map_err(|e| anyhow!("region {i}: {e}"))?;
    }
    Ok(models)
}

fn simulate<T, M, const N: usize>(
    base: M,
    p: &Prepared,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<RunOutput>
where
    T: Real,
    M: Model<T, N> + Clone + PartialEq,
{
    let cfg = &p.cfg;
    let n = p.conn.n;
    let models: Vec<M> = region_models(base, n, &cfg.params)?;
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
    let sigma: [f64; N] = match (&cfg.noise, &cfg.nsig) {
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
            if s.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
                bail!("noise amplitudes must be finite and >= 0");
            }
            core::array::from_fn(|k| {
                if cfg.noise.is_some() {
                    s[k]
                } else {
                    (2.0 * s[k]).sqrt()
                }
            })
        }
        // TVB's default MPR noise, nsig = (0.01, 0.02), i.e. amplitudes sqrt(2 nsig).
        (None, None) if M::NAME == "mpr" || M::NAME == "mlp" => {
            core::array::from_fn(|k| (2.0 * [0.01, 0.02][k]).sqrt())
        }
        (None, None) => models[0].diffusion().map(Real::to_f64),
    };
    let mut x: Vec<[T; N]> = match &cfg.initial {
        Some(v) if v.len() == N => vec![core::array::from_fn(|k| T::from_f64(v[k])); n],
        Some(v) => bail!("initial: {} values for {N} state variables", v.len()),
        None => models.iter().map(|m| m.initial_state()).collect(),
    };
    let wt: Vec<T> = p.weights.iter().map(|&w| T::from_f64(w)).collect();
    let counts = count_links(n, &wt, &p.delays)?;
    let (mut ir, mut il) = (
        vec![0u32; n + 1],
        vec![
            Link {
                w: T::ZERO,
                at: 0,
                lag: 0
            };
            counts.instant
        ],
    );
    let (mut dr, mut dl) = (
        vec![0u32; 2 * n + 1],
        vec![
            Link {
                w: T::ZERO,
                at: 0,
                lag: 0
            };
            counts.delayed
        ],
    );
    let conn = Connectome::build(n, &wt, &p.delays, &mut ir, &mut il, &mut dr, &mut dl)?;
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
        T::from_f64(cfg.dt_ms),
        &mut x,
        &mut hist,
        &mut work,
        &mut coupling,
        &mut noise,
    )?;

    // Observers, all streaming.
    let mut bold_state = vec![BoldParams::<f64>::REST; n];
    let mut bold_mon = BoldMonitor::new(
        p.bold,
        &mut bold_state,
        cfg.bold.dt_ms / 1000.0,
        cfg.bold.tr_ms / 1000.0,
    )?;
    let n_tr = p.steps / p.bold_every / bold_mon.steps_per_tr();
    let mut t_ms = Vec::with_capacity(n_tr);
    let mut bold = Vec::with_capacity(n_tr * n);
    let (mut mean, mut m2) = (vec![0.0; n], vec![0.0; packed_len(n)]);
    let mut welford = Welford::new(&mut mean, &mut m2)?;
    let (w, s) = (cfg.fc.window_tr, cfg.fc.step_tr);
    let mut scratch = vec![0.0; SlidingFc::<f64>::buffer_len(n, w, s)];
    let mut sliding = SlidingFc::new(n, w, s, &mut scratch)?;
    let mut fc_vectors: Vec<f64> = Vec::new();
    let mut zacc = vec![0.0f64; n];
    let mut y = vec![0.0f64; n];
    let rec_samples = p.steps.checked_div(p.record_every).unwrap_or(0);
    if rec_samples * n * N > MAX_RECORDED {
        bail!(
            "recording every {} ms would store {} values; record less often",
            cfg.record_every_ms,
            rec_samples * n * N
        );
    }
    let mut rec_t = Vec::with_capacity(rec_samples);
    let mut rec: Vec<Vec<f64>> = vec![Vec::with_capacity(rec_samples * n); N];
    let mut racc = vec![[0.0f64; N]; n];
    let cv = M::COUPLING_VAR;
    let total = p.steps as u64;
    let start = std::time::Instant::now();
    for k in 0..p.steps {
        if !brain.step() {
            let t = (k + 1) as f64 * cfg.dt_ms;
            let (i, v) = brain
                .state()
                .iter()
                .enumerate()
                .find_map(|(i, x)| x.iter().position(|v| !v.is_finite()).map(|v| (i, v)))
                .unwrap_or((0, 0));
            bail!(
                "the network diverged at t = {t} ms: {} of region {i} ({}) is not finite; \
                 reduce dt_ms, the coupling or the noise",
                M::STATE[v],
                p.conn.labels[i]
            );
        }
        let xs = brain.state();
        for (z, xi) in zacc.iter_mut().zip(xs) {
            *z += xi[cv].to_f64();
        }
        if (k + 1) % p.bold_every == 0 {
            let inv = 1.0 / p.bold_every as f64;
            zacc.iter_mut().for_each(|z| *z *= inv);
            if bold_mon.step(&zacc, &mut y) {
                let t = (k + 1) as f64 * cfg.dt_ms;
                t_ms.push(t);
                bold.extend_from_slice(&y);
                if t > cfg.fc.transient_ms {
                    welford.push(&y);
                    if let Some((_, v)) = sliding.push(&y) {
                        fc_vectors.extend_from_slice(v);
                    }
                }
            }
            zacc.fill(0.0);
        }
        if p.record_every > 0 {
            for (a, xi) in racc.iter_mut().zip(xs) {
                for v in 0..N {
                    a[v] += xi[v].to_f64();
                }
            }
            if (k + 1) % p.record_every == 0 {
                let inv = 1.0 / p.record_every as f64;
                rec_t.push((k + 1) as f64 * cfg.dt_ms);
                for (v, col) in rec.iter_mut().enumerate() {
                    col.extend(racc.iter().map(|a| a[v] * inv));
                }
                racc.iter_mut().for_each(|a| *a = [0.0; N]);
            }
        }
        if k % 8192 == 0 {
            progress(k as u64, total);
        }
    }
    progress(total, total);
    let wall_s = start.elapsed().as_secs_f64();
    let samples = t_ms.len();
    let mut fc = vec![0.0; n * n];
    if welford.count() >= 2 {
        welford.pearson(&mut fc);
    } else {
        fc.iter_mut().for_each(|v| *v = f64::NAN);
    }
    let windows = fc_vectors.len() / n_pairs(n).max(1);
    let mut fcd_m = vec![0.0; windows * windows];
    fcd(&fc_vectors, windows, n_pairs(n), &mut fcd_m)?;
    let params = M::PARAMS
        .iter()
        .map(|s| {
            let v = models
                .iter()
                .map(|m| m.get(s.name).map(Real::to_f64).unwrap_or(f64::NAN))
                .collect();
            (s.name.to_string(), v)
        })
        .collect();
    Ok(RunOutput {
        t_ms,
        bold: Array2::from_shape_vec((samples, n), bold)?,
        fc: Array2::from_shape_vec((n, n), fc)?,
        fcd: Array2::from_shape_vec((windows, windows), fcd_m)?,
        states: (p.record_every > 0).then(|| {
            let ns = rec_t.len();
            let arrays = rec
                .into_iter()
                .map(|c| Array2::from_shape_vec((ns, n), c).expect("samples x regions"))
                .collect();
            (rec_t, arrays)
        }),
        state_names: M::STATE.to_vec(),
        bold_input: M::STATE[cv],
        sigma: sigma.to_vec(),
        params,
        wall_s,
    })
}

/// Summary features of a run (FC and FCD statistics), as in inference studies.
pub fn features(p: &Prepared, out: &RunOutput) -> Vec<(&'static str, f64)> {
    let n = p.conn.n;
    let mut fcv = vec![0.0; n_pairs(n)];
    let fc_flat: Vec<f64> = out.fc.iter().copied().collect();
    let _ = fc_upper(&fc_flat, n, &mut fcv);
    let mut sc = vec![0.0; n_pairs(n)];
    let _ = fc_upper(&p.weights, n, &mut sc);
    let (m, sd) = mean_std(&fcv);
    let windows = out.fcd.nrows();
    // FCD: the strict upper triangle (as in the 2025 paper's summary statistics).
    let fcd_vals: Vec<f64> = (0..windows)
        .flat_map(|i| ((i + 1)..windows).map(move |j| (i, j)))
        .map(|(i, j)| out.fcd[[i, j]])
        .collect();
    let (fm, fsd) = mean_std(&fcd_vals);
    let bold_sd = (0..n)
        .map(|i| mean_std(&out.bold.column(i).to_vec()).1)
        .sum::<f64>()
        / n as f64;
    vec![
        ("fc_mean", m),
        ("fc_std", sd),
        ("fc_sc_corr", pearson(&fcv, &sc)),
        ("fcd_mean", fm),
        ("fcd_std", fsd),
        ("fcd_windows", windows as f64),
        ("bold_std_mean", bold_sd),
    ]
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.len() < 2 {
        return (v.first().copied().unwrap_or(f64::NAN), f64::NAN);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64;
    (m, var.sqrt())
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let (ma, _) = mean_std(a);
    let (mb, _) = mean_std(b);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 || sbb == 0.0 {
        return f64::NAN;
    }
    sab / (saa * sbb).sqrt()
}

fn meta(p: &Prepared, out: &RunOutput) -> serde_json::Value {
    json!({
        "nmm_version": crate::VERSION,
        "command": command_line(),
        "config": p.cfg,
        "connectome": {
            "source": p.conn.source,
            "regions": p.conn.n,
            "labels": p.conn.labels,
            "delays": !p.delays.is_empty(),
            "max_delay_ms": p.max_delay_steps() as f64 * p.cfg.dt_ms,
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

/// The command and its `batch` subcommand.
pub fn command() -> Command {
    let common = |c: Command| {
        c.arg(
            Arg::new("config")
                .long("config")
                .value_name("RUN.toml")
                .value_parser(value_parser!(PathBuf))
                .help("Run configuration (TOML; see README). Flags override it"),
        )
        .arg(
            Arg::new("model")
                .long("model")
                .value_parser(["mpr", "cc", "rww", "rww-griffiths", "mlp"])
                .help("Node model [default: mpr]; mlp needs --model-file"),
        )
        .arg(
            Arg::new("model-file")
                .long("model-file")
                .value_name("MODEL.nmmw")
                .value_parser(value_parser!(PathBuf))
                .help("Trained MLP mean field for --model mlp (nmm train)"),
        )
        .arg(
            Arg::new("connectome")
                .long("connectome")
                .value_name("SPEC")
                .help("builtin, builtin:N, a TVB connectivity .zip, a .npy or CSV matrix [default: builtin = builtin:68]"),
        )
        .arg(
            Arg::new("tract-lengths")
                .long("tract-lengths")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help("Tract lengths in mm (.npy or CSV) for a plain weight matrix"),
        )
        .arg(
            Arg::new("normalise")
                .long("normalise")
                .value_name("STEPS")
                .help("Comma-separated normalisation steps: max, log1p, rowsum, frobenius, zero-diagonal, laplacian, griffiths2022 [default: max]"),
        )
        .arg(crate::float_arg("speed", "Conduction speed [mm/ms] for delays from tract lengths [default: 3]".into()))
        .arg(
            Arg::new("no-delays")
                .long("no-delays")
                .action(ArgAction::SetTrue)
                .help("Ignore tract lengths: no conduction delays"),
        )
        .arg(crate::float_arg("G", "Global coupling G [model input per unit of coupling variable] [default: 0.1]".into()))
        .arg(crate::float_arg("duration", "Simulated time [ms] [default: 60000]".into()))
        .arg(crate::float_arg("dt", "Integration step [ms] [default: 0.1]".into()))
        .arg(crate::float_arg("tr", "BOLD repetition time [ms] [default: 2000]".into()))
        .arg(crate::float_arg("bold-dt", "Step of the BOLD integration [ms], a multiple of --dt; the drive is averaged over it [default: 5]".into()))
        .arg(
            Arg::new("bold-preset")
                .long("bold-preset")
                .value_parser(["stephan2007", "friston2000", "vbjax"])
                .help("Balloon-Windkessel parameter set [default: stephan2007]"),
        )
        .arg(crate::float_arg("record-every", "Record block means of every state variable every this many ms [default: 0 = off]".into()))
        .arg(
            Arg::new("precision")
                .long("precision")
                .value_parser(["f64", "f32"])
                .help("Node arithmetic [default: f64]"),
        )
        .arg(
            Arg::new("param")
                .long("param")
                .value_name("NAME=VALUE")
                .action(ArgAction::Append)
                .help("Set a model parameter in every region (repeatable), e.g. --param eta=-4.6"),
        )
        .arg(
            Arg::new("seed")
                .long("seed")
                .value_name("U64")
                .value_parser(value_parser!(u64))
                .help("Seed of every random draw; recorded in the output [default: 0]"),
        )
    };
    let single = common(Command::new("brain"))
        .about("Whole-brain simulation: mean-field nodes on a connectome, observed as BOLD, FC and FCD")
        .args_conflicts_with_subcommands(true)
        .arg(crate::out_arg("Output .npz: bold, t_ms, fc, fcd, weights, config, meta [default: brain.npz]"))
        .arg(
            Arg::new("plot")
                .long("plot")
                .value_name("FILE.svg")
                .value_parser(value_parser!(PathBuf))
                .help("Figure: FC matrix, BOLD carpet, FCD matrix"),
        );
    let batch = common(Command::new("batch"))
        .about("Runs many parameter sets (rows of a CSV) and collects FC/FCD features into one table")
        .arg(
            Arg::new("rows")
                .long("rows")
                .value_name("ROWS.csv")
                .required(true)
                .value_parser(value_parser!(PathBuf))
                .help("CSV: a header of parameter names (model parameters, G, seed), one run per row"),
        )
        .arg(
            Arg::new("out")
                .long("out")
                .value_name("DIR")
                .required(true)
                .value_parser(value_parser!(PathBuf))
                .help("Output directory: features.csv (or features-shard-K-of-N.csv), config.toml"),
        )
        .arg(
            Arg::new("shard")
                .long("shard")
                .value_name("K/N")
                .help("Run only shard K of N (1-based; rows K, K+N, ...); default from SLURM_ARRAY_TASK_* when set"),
        )
        .arg(
            Arg::new("jobs")
                .long("jobs")
                .value_name("J")
                .value_parser(value_parser!(usize))
                .help("Parallel runs [default: all cores]"),
        )
        .arg(
            Arg::new("save-runs")
                .long("save-runs")
                .action(ArgAction::SetTrue)
                .help("Also write each row's .npz (row-K.npz)"),
        );
    single.subcommand(batch)
}

/// The configuration from `--config` and the flags.
pub fn config_from_args(m: &ArgMatches) -> Result<Config> {
    let mut cfg = match m.get_one::<PathBuf>("config") {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str::<Config>(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(v) = m.get_one::<String>("model") {
        cfg.model = v.clone();
    }
    if let Some(v) = m.get_one::<PathBuf>("model-file") {
        cfg.model_file = Some(v.clone());
    }
    if let Some(v) = m.get_one::<String>("connectome") {
        cfg.connectome.path = v.clone();
    }
    if let Some(v) = m.get_one::<PathBuf>("tract-lengths") {
        cfg.connectome.tract_lengths = Some(v.clone());
    }
    if let Some(v) = m.get_one::<String>("normalise") {
        cfg.connectome.normalise = v.split(',').map(|s| s.trim().to_string()).collect();
    }
    if let Some(v) = m.get_one::<f64>("speed") {
        cfg.connectome.speed_mm_per_ms = *v;
    }
    if m.get_flag("no-delays") {
        cfg.connectome.delays = false;
    }
    if let Some(v) = m.get_one::<f64>("G") {
        cfg.coupling = *v;
    }
    if let Some(v) = m.get_one::<f64>("duration") {
        cfg.duration_ms = *v;
    }
    if let Some(v) = m.get_one::<f64>("dt") {
        cfg.dt_ms = *v;
    }
    if let Some(v) = m.get_one::<f64>("tr") {
        cfg.bold.tr_ms = *v;
    }
    if let Some(v) = m.get_one::<f64>("bold-dt") {
        cfg.bold.dt_ms = *v;
    }
    if let Some(v) = m.get_one::<String>("bold-preset") {
        cfg.bold.preset = v.clone();
    }
    if let Some(v) = m.get_one::<f64>("record-every") {
        cfg.record_every_ms = *v;
    }
    if let Some(v) = m.get_one::<String>("precision") {
        cfg.precision = v.clone();
    }
    if let Some(v) = m.get_one::<u64>("seed") {
        cfg.seed = *v;
    }
    for item in m.get_many::<String>("param").into_iter().flatten() {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| anyhow!("--param: expected NAME=VALUE, got {item:?}"))?;
        let v: f64 = v
            .trim()
            .parse()
            .map_err(|_| anyhow!("--param {k}: {v:?} is not a number"))?;
        cfg.params
            .insert(k.trim().to_string(), ParamValue::Global(v));
    }
    Ok(cfg)
}

/// Runs `nmm brain` or `nmm brain batch`.
pub fn run_cli(m: &ArgMatches) -> Result<()> {
    if let Some(("batch", b)) = m.subcommand() {
        return run_batch(b);
    }
    let cfg = config_from_args(m)?;
    let out_path = m
        .get_one::<PathBuf>("out")
        .cloned()
        .unwrap_or_else(|| PathBuf::from("brain.npz"));
    let p = Prepared::new(cfg)?;
    println!(
        "{} regions ({}), {} links, {} delays, model {}, G = {}, {} ms at dt = {} ms ({} steps)",
        p.conn.n,
        p.conn.source,
        p.weights.iter().filter(|w| **w != 0.0).count(),
        if p.delays.is_empty() {
            "no".to_string()
        } else {
            format!("max {:.1} ms", p.max_delay_steps() as f64 * p.cfg.dt_ms)
        },
        p.cfg.model,
        p.cfg.coupling,
        p.cfg.duration_ms,
        p.cfg.dt_ms,
        p.steps
    );
    let bar = styled_bar(p.steps as u64, "{bar:40} {percent}%  {elapsed} (eta {eta})");
    let out = run(&p, &|done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    let region_steps = p.steps as f64 * p.conn.n as f64;
    println!(
        "simulated {} s in {:.2} s wall ({:.3e} region-steps/s); {} BOLD samples, {} FCD windows",
        p.cfg.duration_ms / 1000.0,
        out.wall_s,
        region_steps / out.wall_s,
        out.t_ms.len(),
        out.fcd.nrows()
    );
    for (k, v) in features(&p, &out) {
        println!("  {k:>14} = {v:.4}");
    }
    write_run(&out_path, &p, &out)?;
    println!("wrote {}", out_path.display());
    if let Some(path) = m.get_one::<PathBuf>("plot") {
        let title = format!(
            "nmm brain: {} on {} (G = {}, {} s)",
            p.cfg.model,
            p.conn.source,
            p.cfg.coupling,
            p.cfg.duration_ms / 1000.0
        );
        plot::brain_figure(
            path,
            &title,
            &out.fc,
            &out.bold,
            &out.t_ms,
            p.cfg.fc.transient_ms,
            &out.fcd,
        )?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// One row of a batch: parameter overrides by column name.
fn apply_row(cfg: &mut Config, header: &[String], row: &[f64], index: usize) {
    cfg.seed = cfg.seed.wrapping_add(index as u64);
    for (k, v) in header.iter().zip(row) {
        match k.as_str() {
            "G" | "coupling" => cfg.coupling = *v,
            "seed" => cfg.seed = *v as u64,
            name => {
                cfg.params.insert(name.to_string(), ParamValue::Global(*v));
            }
        }
    }
}

fn run_batch(m: &ArgMatches) -> Result<()> {
    let base = config_from_args(m)?;
    let rows_path = m.get_one::<PathBuf>("rows").expect("required");
    let dir = m.get_one::<PathBuf>("out").expect("required");
    let mut rdr = csv::Reader::from_path(rows_path)
        .with_context(|| format!("cannot read {}", rows_path.display()))?;
    let header: Vec<String> = rdr
        .headers()
        .with_context(|| format!("{}: no header", rows_path.display()))?
        .iter()
        .map(|s| s.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    for (k, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {}", rows_path.display(), k + 1))?;
        let vals: Vec<f64> = rec
            .iter()
            .zip(&header)
            .map(|(s, h)| {
                s.trim().parse::<f64>().map_err(|_| {
                    anyhow!(
                        "{}: row {}, column {h}: {s:?} is not a number",
                        rows_path.display(),
                        k + 1
                    )
                })
            })
            .collect::<Result<_>>()?;
        if vals.len() != header.len() {
            bail!(
                "{}: row {} has {} values for {} columns",
                rows_path.display(),
                k + 1,
                vals.len(),
                header.len()
            );
        }
        rows.push(vals);
    }
    let shard = match m.get_one::<String>("shard") {
        Some(s) => Some(parse_shard(s)?),
        None => slurm_shard(|k| std::env::var(k).ok())?,
    };
    let (k, of) = shard.unwrap_or((1, 1));
    let mine: Vec<usize> = (0..rows.len()).filter(|i| i % of == k - 1).collect();
    let conn = load(
        &base.connectome.path,
        base.connectome.tract_lengths.as_deref(),
    )
    .context("connectome")?;
    // Check every row before running any.
    let prepared: Vec<Prepared> = mine
        .iter()
        .map(|&i| {
            let mut cfg = base.clone();
            apply_row(&mut cfg, &header, &rows[i], i);
            Prepared::with_connectome(cfg, conn.clone())
                .with_context(|| format!("{}: row {}", rows_path.display(), i + 1))
        })
        .collect::<Result<_>>()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cfg_path = dir.join("config.toml");
    if !cfg_path.exists() {
        let text = toml::to_string(&base)?;
        atomic_write(&cfg_path, |f| Ok(f.write_all(text.as_bytes())?))?;
    }
    let save = m.get_flag("save-runs");
    let bar = ProgressBar::new(mine.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs  {elapsed} (eta {eta})")
            .expect("valid template"),
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(m.get_one::<usize>("jobs").copied().unwrap_or(0))
        .build()?;
    let start = std::time::Instant::now();
    let results: Vec<Result<Vec<(&'static str, f64)>>> = pool.install(|| {
        prepared
            .par_iter()
            .zip(&mine)
            .map(|(p, &i)| {
                let out = run(p, &|_, _| {}).with_context(|| format!("row {}", i + 1))?;
                if save {
                    write_run(&dir.join(format!("row-{}.npz", i + 1)), p, &out)?;
                }
                bar.inc(1);
                Ok(features(p, &out))
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut table = Vec::new();
    let mut feat_names: Vec<String> = Vec::new();
    for ((res, &i), p) in results.into_iter().zip(&mine).zip(&prepared) {
        let f = res?;
        if feat_names.is_empty() {
            feat_names = f.iter().map(|(k, _)| k.to_string()).collect();
        }
        let mut line = vec![(i + 1).to_string(), p.cfg.seed.to_string()];
        line.extend(rows[i].iter().map(|v| v.to_string()));
        line.extend(f.iter().map(|(_, v)| format!("{v:.6}")));
        table.push(line);
    }
    let mut head = vec!["row".to_string(), "seed_used".to_string()];
    head.extend(header.iter().cloned());
    head.extend(feat_names);
    let name = if of > 1 {
        format!("features-shard-{k}-of-{of}.csv")
    } else {
        "features.csv".to_string()
    };
    let path = dir.join(name);
    write_csv(&path, &head, &table)?;
    println!(
        "{} runs in {:.1} s; wrote {}",
        mine.len(),
        start.elapsed().as_secs_f64(),
        path.display()
    );
    Ok(())
}
