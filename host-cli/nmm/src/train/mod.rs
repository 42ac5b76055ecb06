//! `nmm train`: learns the compact MLP mean field (REFERENCE section 2) from the outputs of
//! `nmm spiking sweep`, as a neural ODE on short rollouts.
//!
//! ```text
//! nmm train --data DIR [--data DIR2 ...] --out MODEL.nmmw [--seed S] [--epochs E] [--lr LR]
//!           [--batch B] [--rollout K] [--dt 0.1] [--substeps 1] [--hidden 6]
//!           [--val-fraction 0.2] [--v-weight 0.25] [--rate-floor 0] [--max-runs N]
//!           [--prior-epochs 0] [--init MODEL.nmmw] [--plot-dir DIR] [--jobs T]
//! ```
//!
//! 1. **Data** (`data`): each directory's `manifest.csv` lists the runs and their `J`,
//!    `eta`, `p` (runs whose file is missing, as in a sweep still running, are left out and
//!    counted; a directory without a manifest is read as a set of `*.npz` runs with their
//!    parameters from each file's metadata); each `run_NNNNNN.npz` holds `t`, `r`, `v`,
//!    `input` sampled every `bin` time units. Runs are resampled onto the training step `dt`
//!    by block means (see `data::load_trajectory`).
//! 2. **Split** by run, from the seed: a seeded permutation of every run found; with
//!    `--max-runs N` its first `N` are kept; of those, the first `round(f N)` (at least one
//!    when `f > 0` and there are two runs or more) are held out for validation.
//! 3. **Normalisation** from the training runs (`data::normalisation`), or that of the
//!    `--init` model, whose weights are then the starting point. With `--prior-epochs E0`
//!    the network is first fitted by regression to MPR's vector field with `J -> J p` at the
//!    training states (`prior`), so the rollouts start from the theory and learn how the
//!    networks depart from it.
//! 4. **Objective** (`rollout`): windows of `K` data intervals of `dt` (each crossed by
//!    `--substeps` Heun steps) from every observed state of a 6 -> H -> H -> 2 network
//!    (`--hidden H`: 6, 16 or 32), driven by the observed `I(t)`, compared with the data at
//!    each sample; squared
//!    errors of `r` and `v` in units of their spreads, `v` weighted by `lambda` relative to
//!    `r` (rate-weighted), averaged.
//! 5. **Optimisation**: Adam (beta 0.9, 0.999, eps 1e-8) on minibatches of windows, shuffled
//!    each epoch from the seed; learning rate on a cosine from `LR` at the first epoch down to
//!    `LR / 20` at the last; gradients by reverse-mode differentiation through the rollout and
//!    the network, written out by hand in f64. Batches are split into fixed chunks whose sums
//!    are added in order, so the result is the same for every `--jobs`. A batch whose loss or
//!    gradient is not finite is skipped (and counted).
//!    A progress bar shows the epoch and the latest training and validation losses; the
//!    training time is printed at the end.
//! 6. **Model**: the weights with the lowest validation loss at the end of an epoch (the last
//!    epoch's without a validation set), rounded to f32 as the file stores them, written as
//!    NMMW ([`nmm_core::mlp::format`]) with JSON metadata: version, command line, seed, data
//!    directories, runs, parameter ranges, settings, loss history and final losses (of the
//!    f32 weights), training time.
//!
//! Units: time in units of the membrane time constant of the training networks (`tau = 1`);
//! `dt` in those units; `r` in 1/time unit; `v`, `eta`, `J`, `I` dimensionless; `p` a
//! probability. Losses are dimensionless.

pub(crate) mod data;
pub(crate) mod prior;
pub(crate) mod rollout;

pub use prior::{FIELD, JITTER};

use crate::error::{Context, Error, Result, bail, input};
use crate::io::atomic_write;
use crate::models::HIDDEN;
use crate::progress::Progress;
use crate::with_hidden;
use data::{RunEntry, Trajectory};
use nmm_core::mlp::{MlpMeanField, Normalisation};
use nmm_core::rng::{Rng, Xoshiro256PlusPlus, stream, uniform_open0};
use rayon::prelude::*;
use rollout::{Adam, Net, Objective, batch_loss, windows};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Stream of the seed that initialises the weights.
const STREAM_INIT: u64 = 0;
/// Stream of the seed that shuffles the windows each epoch.
const STREAM_SHUFFLE: u64 = 1;
/// Stream of the seed that selects and splits the runs.
const STREAM_SPLIT: u64 = 2;
/// Stream of the seed that jitters and shuffles the warm start's samples.
const STREAM_PRIOR: u64 = 3;
/// Final learning rate as a fraction of `--lr`.
const LR_FLOOR: f64 = 0.05;
/// Held-out runs drawn in `--plot-dir`.
///
/// ```
/// assert_eq!(nmm::train::PLOT_RUNS, 3);
/// ```
pub const PLOT_RUNS: usize = 3;

/// Optimisation settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Settings {
    /// Passes over the training windows.
    pub epochs: usize,
    /// Adam learning rate at the first epoch.
    pub lr: f64,
    /// Windows per Adam step.
    pub batch: usize,
    /// Seed of the initial weights and the shuffling.
    pub seed: u64,
}

/// What [`fit`] returns.
#[derive(Clone, Debug)]
pub(crate) struct Fit<const H: usize = 6, const I: usize = 6, const S: usize = 2> {
    /// The chosen weights (lowest validation loss, or the last epoch's).
    pub net: Net<H, I, S>,
    /// Epoch (1-based) of the chosen weights.
    pub best_epoch: usize,
    /// Mean training loss of each epoch's batches (before their updates).
    pub train_loss: Vec<f64>,
    /// Validation loss at the end of each epoch (empty without validation data).
    pub val_loss: Vec<f64>,
    /// Batches skipped because their loss or gradient was not finite.
    pub skipped: usize,
}

/// A uniform integer in `0..n` (multiply-shift; bias below 2^-40 for any `n` used here).
fn below(rng: &mut Xoshiro256PlusPlus, n: usize) -> usize {
    ((rng.next_u64() as u128 * n as u128) >> 64) as usize
}

/// Fisher-Yates shuffle.
fn shuffle<T>(rng: &mut Xoshiro256PlusPlus, x: &mut [T]) {
    for i in (1..x.len()).rev() {
        x.swap(i, below(rng, i + 1));
    }
}

/// Initial weights from the seed: Glorot-uniform hidden layers
/// (`U[-a, a]`, `a = sqrt(6 / (fan_in + fan_out))`), the output layer the same scaled by 0.1
/// (a nearly still vector field to start from), biases zero.
pub(crate) fn init_net<const H: usize>(seed: u64) -> Net<H> {
    init_net_sized(seed)
}

/// [`init_net`] for `I` inputs and `S` outputs.
pub(crate) fn init_net_sized<const H: usize, const I: usize, const S: usize>(
    seed: u64,
) -> Net<H, I, S> {
    let mut rng = stream(seed, STREAM_INIT);
    let mut u = |a: f64| a * (2.0 * uniform_open0(&mut rng) - 1.0);
    let mut net = Net::<H, I, S>::splat(0.0);
    let glorot = |fan_in: usize, fan_out: usize| (6.0 / (fan_in + fan_out) as f64).sqrt();
    let (a1, a2, a3) = (glorot(I, H), glorot(H, H), 0.1 * glorot(H, S));
    net.l1.w = net.l1.w.map(|row| row.map(|_| u(a1)));
    net.l2.w = net.l2.w.map(|row| row.map(|_| u(a2)));
    net.l3.w = net.l3.w.map(|row| row.map(|_| u(a3)));
    net
}

/// Learning rate of epoch `e` (0-based) of `n`: cosine from `lr` to `LR_FLOOR lr`.
fn lr_at(lr: f64, e: usize, n: usize) -> f64 {
    let frac = if n > 1 {
        e as f64 / (n - 1) as f64
    } else {
        0.0
    };
    lr * (LR_FLOOR + (1.0 - LR_FLOOR) * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos()))
}

/// Trains from `net` on the windows of `train`, validating on every window of `val` after
/// each epoch; `progress` counts batches, and gets each epoch's losses as its message and
/// about twenty of them as log lines.
///
/// # Errors
/// When every batch of an epoch is skipped for a non-finite loss or gradient (divergence).
pub(crate) fn fit<const H: usize, const I: usize, const S: usize, K, T>(
    mut net: Net<H, I, S>,
    norm: &Normalisation<f64, I, S>,
    obj: &Objective<S, K>,
    train: &[T],
    val: &[T],
    s: &Settings,
    progress: &dyn Progress,
) -> Result<Fit<H, I, S>>
where
    K: rollout::KnownField<I, S>,
    T: rollout::Series<I, S>,
{
    let mut train_windows = windows(train, obj.steps, 1);
    let val_windows = windows(val, obj.steps, 1);
    if train_windows.is_empty() {
        bail!("no training windows: every training run is shorter than --rollout + 1 samples");
    }
    let mut rng = stream(s.seed, STREAM_SHUFFLE);
    let mut adam = Adam::new(Net::<H, I, S>::N_WEIGHTS);
    let mut out = Fit {
        net,
        best_epoch: 0,
        train_loss: Vec::with_capacity(s.epochs),
        val_loss: Vec::with_capacity(s.epochs),
        skipped: 0,
    };
    let mut best = f64::INFINITY;
    let total = (train_windows.len().div_ceil(s.batch.max(1)) * s.epochs) as u64;
    let mut done = 0u64;
    for e in 0..s.epochs {
        let lr = lr_at(s.lr, e, s.epochs);
        shuffle(&mut rng, &mut train_windows);
        let (mut sum, mut count, mut skipped) = (0.0, 0usize, 0usize);
        for b in train_windows.chunks(s.batch.max(1)) {
            let (loss, grad) = batch_loss(&net, norm, obj, train, b, true);
            if loss.is_finite() && grad.iter().all(f64::is_finite) {
                adam.step(&mut net, &grad, lr);
                sum += loss * b.len() as f64;
                count += b.len();
            } else {
                skipped += 1;
            }
            done += 1;
            progress.set(done, total);
        }
        out.skipped += skipped;
        if count == 0 {
            return Err(Error::Diverged {
                at: (e + 1) as f64,
                region: None,
                variable: "loss".into(),
                message: format!(
                    "training diverged at epoch {}: every batch gave a non-finite loss (try a smaller --lr)",
                    e + 1
                ),
            });
        }
        let tl = sum / count as f64;
        out.train_loss.push(tl);
        let msg = if val_windows.is_empty() {
            out.net = net;
            out.best_epoch = e + 1;
            format!("{}/{}  train {tl:.3e}", e + 1, s.epochs)
        } else {
            let vl = batch_loss(&net, norm, obj, val, &val_windows, false).0;
            out.val_loss.push(vl);
            if vl < best || out.best_epoch == 0 {
                best = vl;
                out.net = net;
                out.best_epoch = e + 1;
            }
            format!("{}/{}  train {tl:.3e}  val {vl:.3e}", e + 1, s.epochs)
        };
        // About 20 lines for a log (a live display shows every epoch's message).
        if (e + 1) % s.epochs.div_ceil(20) == 0 || e + 1 == s.epochs {
            progress.log(&format!("epoch {msg}"));
        }
        progress.message(&msg);
    }
    Ok(out)
}

/// Runs kept for training and for validation, as indices into `n` runs (each sorted).
pub(crate) fn split(
    n: usize,
    val_fraction: f64,
    max_runs: Option<usize>,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    shuffle(&mut stream(seed, STREAM_SPLIT), &mut idx);
    idx.truncate(max_runs.unwrap_or(n).min(n));
    let m = idx.len();
    let mut n_val = (val_fraction * m as f64).round() as usize;
    if val_fraction > 0.0 && m >= 2 {
        n_val = n_val.max(1);
    }
    n_val = n_val.min(m.saturating_sub(1));
    let mut val = idx[..n_val].to_vec();
    let mut train = idx[n_val..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    (train, val)
}

/// The MLP integrated by Heun's method, `substeps` steps per sample interval `tr.dt` (the drive
/// interpolated linearly), from `tr`'s first sample, driven by `tr`'s `I(t)`, keeping `r >= 0`
/// (as [`nmm_core::Model::project`] does in deployment); the state at `tr`'s samples.
pub(crate) fn free_run<const H: usize>(
    model: &MlpMeanField<f64, H, H>,
    tr: &Trajectory,
    substeps: usize,
) -> [Vec<f64>; 2] {
    let n = tr.len();
    let (mut r, mut v) = (Vec::with_capacity(n), Vec::with_capacity(n));
    if n == 0 {
        return [r, v];
    }
    let sub = substeps.max(1);
    let h = tr.dt / sub as f64;
    let mut x = [tr.r[0], tr.v[0]];
    let mut u = tr.inputs(0);
    let f = |u: &[f64; 6]| model.deriv_with(&[u[0], u[1]], u[2], u[3], u[4], u[5]);
    for k in 0..n {
        r.push(x[0]);
        v.push(x[1]);
        if k + 1 < n {
            let drive = (tr.input[k], tr.input[k + 1]);
            for j in 0..sub {
                let (_, _, next) = rollout::heun_substep(x, &mut u, drive, (j, sub), h, f, |d| *d);
                x = [next[0].max(0.0), next[1]];
            }
        }
    }
    [r, v]
}

/// Root-mean-square difference of two series.
fn rms(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()).max(1);
    (a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / n as f64).sqrt()
}

/// `[min, max]` of `f` over the trajectories' samples.
fn range(data: &[Trajectory], f: impl Fn(&Trajectory, usize) -> f64) -> [f64; 2] {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for tr in data {
        for k in 0..tr.len() {
            let x = f(tr, k);
            lo = lo.min(x);
            hi = hi.max(x);
        }
    }
    [lo, hi]
}

/// Everything a training needs (the flags of `nmm train`, same names and units).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let grid = dir.path().join("grid.toml");
/// std::fs::write(&grid, "network = \"qif\"\nN = 100\nt_end = 2.0\nstim = \"noise:1:1.1\"\n[grid]\nJ = [10.0, 15.0]\neta = [-5.0]\np = [1.0]\n").unwrap();
/// let runs = dir.path().join("runs");
/// nmm::sweep::Sweep::prepare(&grid, &runs, (1, 1))?.execute(&nmm::progress::Silent)?;
/// let job = nmm::train::Job {
///     dirs: vec![runs],
///     out: dir.path().join("m.nmmw"),
///     seed: 1,
///     epochs: 2,
///     batch: 16,
///     steps: 5,
///     substeps: 1,
///     hidden: 6,
///     lr: 5e-3,
///     dt: 0.1,
///     val_fraction: 0.5,
///     v_weight: 0.25,
///     rate_floor: 0.0,
///     prior_epochs: 0,
///     init: None,
///     max_runs: None,
/// };
/// job.check()?;
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Job {
    /// Sweep directories (`--data`).
    pub dirs: Vec<PathBuf>,
    /// The `.nmmw` file to write (`--out`).
    pub out: PathBuf,
    /// Seed of the split, the initial weights and the shuffling (`--seed`).
    pub seed: u64,
    /// Passes over the training windows (`--epochs`).
    pub epochs: usize,
    /// Windows per Adam step (`--batch`).
    pub batch: usize,
    /// Data intervals per rollout window (`--rollout`).
    pub steps: usize,
    /// Heun steps per data interval (`--substeps`).
    pub substeps: usize,
    /// Width of both hidden layers (`--hidden`, one of [`crate::models::HIDDEN`]).
    pub hidden: usize,
    /// Adam learning rate at the first epoch (`--lr`).
    pub lr: f64,
    /// Training step, in time units of the networks (`--dt`).
    pub dt: f64,
    /// Fraction of runs held out for validation (`--val-fraction`).
    pub val_fraction: f64,
    /// Weight of the v errors relative to r (`--v-weight`).
    pub v_weight: f64,
    /// Low-rate emphasis `R0` (`--rate-floor`; 0: off).
    pub rate_floor: f64,
    /// Epochs of regression to MPR with `J -> J p` before the rollouts (`--prior-epochs`; 0:
    /// off).
    pub prior_epochs: usize,
    /// A model to start from, weights and normalisation (`--init`).
    pub init: Option<PathBuf>,
    /// Use at most this many runs (`--max-runs`).
    pub max_runs: Option<usize>,
}

impl Job {
    /// Checks every setting (the flag named in each error) and that the output can be written.
    ///
    /// ```
    /// let job = nmm::train::Job {
    ///     dirs: vec!["runs".into()],
    ///     out: "m.nmmw".into(),
    ///     seed: 1,
    ///     epochs: 0,
    ///     batch: 16,
    ///     steps: 5,
    ///     substeps: 1,
    ///     hidden: 6,
    ///     lr: 5e-3,
    ///     dt: 0.1,
    ///     val_fraction: 0.2,
    ///     v_weight: 0.25,
    ///     rate_floor: 0.0,
    ///     prior_epochs: 0,
    ///     init: None,
    ///     max_runs: None,
    /// };
    /// assert_eq!(job.check().unwrap_err().to_string(), "--epochs must be at least 1");
    /// ```
    pub fn check(&self) -> Result<()> {
        if self.dirs.is_empty() {
            bail!("--data: give at least one sweep directory");
        }
        if self.substeps > MAX_SUBSTEPS {
            bail!("--substeps {}: at most {MAX_SUBSTEPS}", self.substeps);
        }
        for (id, v) in [
            ("epochs", self.epochs),
            ("batch", self.batch),
            ("rollout", self.steps),
            ("substeps", self.substeps),
        ] {
            if v == 0 {
                bail!("--{id} must be at least 1");
            }
        }
        if !HIDDEN.contains(&self.hidden) {
            bail!("--hidden {}: expected one of {HIDDEN:?}", self.hidden);
        }
        if self.init.is_some() && self.prior_epochs > 0 {
            bail!("--init and --prior-epochs both set the starting weights; give one of them");
        }
        if self.max_runs == Some(0) {
            bail!("--max-runs must be at least 1");
        }
        for (id, v) in [("lr", self.lr), ("dt", self.dt)] {
            if !(v.is_finite() && v > 0.0) {
                bail!("--{id} must be a positive number, got {v}");
            }
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            bail!(
                "--val-fraction must be in [0, 1), got {}",
                self.val_fraction
            );
        }
        if !(self.v_weight.is_finite() && self.v_weight >= 0.0) {
            bail!(
                "--v-weight must be a non-negative number, got {}",
                self.v_weight
            );
        }
        if !(self.rate_floor.is_finite() && self.rate_floor >= 0.0) {
            bail!(
                "--rate-floor must be a non-negative number, got {}",
                self.rate_floor
            );
        }
        // Fail before training, not after, when the output cannot be written.
        crate::io::check_output(&self.out).context("--out")
    }
}

/// A held-out (or training) run against the trained model run freely from its first state.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let grid = dir.path().join("grid.toml");
/// std::fs::write(&grid, "network = \"qif\"\nN = 100\nt_end = 2.0\nstim = \"noise:1:1.1\"\n[grid]\nJ = [10.0, 15.0]\neta = [-5.0]\np = [1.0]\n").unwrap();
/// let runs = dir.path().join("runs");
/// nmm::sweep::Sweep::prepare(&grid, &runs, (1, 1))?.execute(&nmm::progress::Silent)?;
/// let job = nmm::train::Job {
///     dirs: vec![runs],
///     out: dir.path().join("m.nmmw"),
///     seed: 1,
///     epochs: 2,
///     batch: 16,
///     steps: 5,
///     substeps: 1,
///     hidden: 6,
///     lr: 5e-3,
///     dt: 0.1,
///     val_fraction: 0.5,
///     v_weight: 0.25,
///     rate_floor: 0.0,
///     prior_epochs: 0,
///     init: None,
///     max_runs: None,
/// };
/// let data = nmm::train::Data::load(&job, &nmm::progress::Silent)?;
/// let report = nmm::train::train(&job, &data, &nmm::progress::Silent)?;
/// let c = &report.comparisons[0];
/// assert_eq!(c.which, "held-out");
/// assert_eq!(c.t.len(), c.model[0].len());
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Comparison {
    /// The run's file name.
    pub name: String,
    /// `held-out` or `training`.
    pub which: &'static str,
    /// The run's J, eta, p.
    pub params: [f64; 3],
    /// Sample times.
    pub t: Vec<f64>,
    /// The network's r and v.
    pub data: [Vec<f64>; 2],
    /// The model's r and v.
    pub model: [Vec<f64>; 2],
    /// Root-mean-square errors of r and v.
    pub rms: [f64; 2],
}

/// What [`train`] did.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let grid = dir.path().join("grid.toml");
/// std::fs::write(&grid, "network = \"qif\"\nN = 100\nt_end = 2.0\nstim = \"noise:1:1.1\"\n[grid]\nJ = [10.0, 15.0]\neta = [-5.0]\np = [1.0]\n").unwrap();
/// let runs = dir.path().join("runs");
/// nmm::sweep::Sweep::prepare(&grid, &runs, (1, 1))?.execute(&nmm::progress::Silent)?;
/// let job = nmm::train::Job {
///     dirs: vec![runs],
///     out: dir.path().join("m.nmmw"),
///     seed: 1,
///     epochs: 2,
///     batch: 16,
///     steps: 5,
///     substeps: 1,
///     hidden: 6,
///     lr: 5e-3,
///     dt: 0.1,
///     val_fraction: 0.5,
///     v_weight: 0.25,
///     rate_floor: 0.0,
///     prior_epochs: 0,
///     init: None,
///     max_runs: None,
/// };
/// let data = nmm::train::Data::load(&job, &nmm::progress::Silent)?;
/// let report = nmm::train::train(&job, &data, &nmm::progress::Silent)?;
/// assert_eq!(report.train_loss.len(), 2);
/// assert!(report.prior.is_none());
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Report {
    /// The warm start, if there was one.
    pub prior: Option<WarmStart>,
    /// Mean training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Validation loss per epoch (empty without validation runs).
    pub val_loss: Vec<f64>,
    /// Epoch of the kept weights (1-based).
    pub best_epoch: usize,
    /// Final losses (training, validation; NaN without validation) of the stored f32 weights.
    pub final_loss: [f64; 2],
    /// Batches skipped for a non-finite loss or gradient.
    pub skipped: usize,
    /// Seconds spent in the epochs.
    pub fit_seconds: f64,
    /// Free runs of the model on the first [`PLOT_RUNS`] validation runs (training runs without
    /// validation), for figures.
    pub comparisons: Vec<Comparison>,
}

/// Trains the MLP mean field on `data` as `job` says and writes `job.out`; progress counts
/// batches, with the epoch's losses as its message and about twenty log lines.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let grid = dir.path().join("grid.toml");
/// std::fs::write(&grid, "network = \"qif\"\nN = 100\nt_end = 2.0\nstim = \"noise:1:1.1\"\n[grid]\nJ = [10.0, 15.0]\neta = [-5.0]\np = [1.0]\n").unwrap();
/// let runs = dir.path().join("runs");
/// nmm::sweep::Sweep::prepare(&grid, &runs, (1, 1))?.execute(&nmm::progress::Silent)?;
/// let job = nmm::train::Job {
///     dirs: vec![runs],
///     out: dir.path().join("m.nmmw"),
///     seed: 1,
///     epochs: 2,
///     batch: 16,
///     steps: 5,
///     substeps: 1,
///     hidden: 6,
///     lr: 5e-3,
///     dt: 0.1,
///     val_fraction: 0.5,
///     v_weight: 0.25,
///     rate_floor: 0.0,
///     prior_epochs: 0,
///     init: None,
///     max_runs: None,
/// };
/// let data = nmm::train::Data::load(&job, &nmm::progress::Silent)?;
/// nmm::train::train(&job, &data, &nmm::progress::Silent)?;
/// // The weight file loads in core.
/// let bytes = std::fs::read(dir.path().join("m.nmmw")).unwrap();
/// assert!(nmm_core::mlp::MlpMeanField::<f64>::from_bytes(&bytes).is_ok());
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn train(job: &Job, data: &Data, progress: &dyn Progress) -> Result<Report> {
    job.check()?;
    with_hidden!(job.hidden, |H| train_sized::<H>(job, data, progress), {
        bail!("--hidden {}: expected one of {HIDDEN:?}", job.hidden)
    })
}

fn load(runs: &[RunEntry], idx: &[usize], dt: f64, steps: usize) -> Result<Vec<Trajectory>> {
    let data: Vec<Trajectory> = idx
        .par_iter()
        .map(|&i| data::load_trajectory(&runs[i], dt))
        .collect::<Result<_>>()?;
    for tr in &data {
        if tr.len() < steps + 1 {
            bail!(
                "{}: {} samples at dt = {} ({} time units), fewer than --rollout + 1 = {}",
                tr.file.display(),
                tr.len(),
                tr.dt,
                tr.len() as f64 * tr.dt,
                steps + 1
            );
        }
    }
    Ok(data)
}

/// Weights and normalisation of `--init` `path`, which must be a 6-H-H-2 network.
fn load_init<const H: usize>(path: &Path) -> Result<(Net<H>, Normalisation<f64>)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("--init: cannot read {}", path.display()))?;
    let info = nmm_core::mlp::format::inspect(&bytes)
        .map_err(|e| input!("--init {}: {e}", path.display()))?;
    let want = [6, H as u16, H as u16, 2];
    if info.sizes != want {
        let [i, h1, h2, o] = info.sizes;
        bail!(
            "--init {}: a {i}-{h1}-{h2}-{o} network; --hidden {H} trains 6-{H}-{H}-2",
            path.display()
        );
    }
    let m = MlpMeanField::<f64, H, H>::from_bytes(&bytes)
        .map_err(|e| input!("--init {}: {e}", path.display()))?;
    Ok((*m.net(), *m.norm()))
}

/// `(Delta, tau)` of the networks behind `train` (each run's metadata `params`); every run
/// must agree, since the warm start fits one MPR field.
fn network_constants(train: &[Trajectory]) -> Result<(f64, f64)> {
    let mut out: Option<(f64, f64, &Path)> = None;
    for tr in train {
        let meta = data::read_meta(&tr.file)?;
        let get = |k: &str| {
            meta["params"][k]
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    input!(
                        "{}: metadata has no finite params.{k} (needed by --prior-epochs)",
                        tr.file.display()
                    )
                })
        };
        let (delta, tau) = (get("delta")?, get("tau")?);
        // Runs with weights J/(pN) (`--normalise`) have a mean drive J r, not J p r.
        if let Some(n) = meta["normalisation"]
            .as_str()
            .filter(|n| !n.starts_with("J/N"))
        {
            bail!(
                "{}: synaptic weights {n}; --prior-epochs fits MPR with J -> J p, the theory of weights J/N",
                tr.file.display()
            );
        }
        match out {
            None => out = Some((delta, tau, &tr.file)),
            Some((d0, t0, f0)) if d0 != delta || t0 != tau => bail!(
                "--prior-epochs fits one MPR field, but {} has Delta = {delta}, tau = {tau} and {} has Delta = {d0}, tau = {t0}",
                tr.file.display(),
                f0.display()
            ),
            Some(_) => {}
        }
    }
    out.map(|(d, t, _)| (d, t))
        .ok_or_else(|| input!("no training runs"))
}

/// Regression samples per data sample in the warm start (the first at the run's own
/// parameters, the others moved by [`prior::JITTER`]).
const PRIOR_COPIES: usize = 8;
/// Learning rate of the warm start (cosine to `LR_FLOOR` of it).
const PRIOR_LR: f64 = 0.003;

/// Most `--substeps` (a Heun step of dt/1000 is already far below the data's bin).
const MAX_SUBSTEPS: usize = 1000;

/// The runs of a training, found, split and loaded onto the training step.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let grid = dir.path().join("grid.toml");
/// std::fs::write(&grid, "network = \"qif\"\nN = 100\nt_end = 2.0\n[grid]\nJ = [10.0, 15.0]\neta = [-5.0]\np = [1.0]\n").unwrap();
/// let runs = dir.path().join("runs");
/// nmm::sweep::Sweep::prepare(&grid, &runs, (1, 1))?.execute(&nmm::progress::Silent)?;
/// let job = nmm::train::Job {
///     dirs: vec![runs],
///     out: dir.path().join("m.nmmw"),
///     seed: 1,
///     epochs: 2,
///     batch: 4,
///     steps: 5,
///     substeps: 1,
///     hidden: 6,
///     lr: 5e-3,
///     dt: 0.1,
///     val_fraction: 0.5,
///     v_weight: 0.25,
///     rate_floor: 0.0,
///     prior_epochs: 0,
///     init: None,
///     max_runs: None,
/// };
/// let data = nmm::train::Data::load(&job, &nmm::progress::Silent)?;
/// let plan = data.plan(&job);
/// // 2 runs: one to train on, one held out; 20 samples of dt = 0.1 each, 15 windows of 5.
/// assert_eq!((plan.runs, plan.windows, plan.batches), ([2, 1, 1], [15, 15], 4));
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Data {
    found: usize,
    train: Vec<Trajectory>,
    val: Vec<Trajectory>,
}

/// What a training will work on (see [`Data::plan`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Runs found, used for training, held out.
    pub runs: [usize; 3],
    /// Training and validation windows.
    pub windows: [usize; 2],
    /// Batches per epoch.
    pub batches: usize,
}

impl Data {
    /// Finds the runs of `job.dirs`, splits them by run from the seed, and loads them onto
    /// the step `job.dt`; runs a manifest lists without their file yet are noted and left out.
    pub fn load(job: &Job, progress: &dyn Progress) -> Result<Self> {
        job.check()?;
        let mut runs = Vec::new();
        for dir in &job.dirs {
            let (found, missing) = data::list_runs(dir)?;
            if missing > 0 {
                progress.note(&format!(
                    "{}: {missing} runs of the manifest have no file yet; using the {} present",
                    dir.display(),
                    found.len()
                ));
            }
            runs.extend(found);
        }
        let (train_idx, val_idx) = split(runs.len(), job.val_fraction, job.max_runs, job.seed);
        let train = load(&runs, &train_idx, job.dt, job.steps)?;
        let val = load(&runs, &val_idx, job.dt, job.steps)?;
        if train.is_empty() {
            bail!("--data: no training runs (found {})", runs.len());
        }
        Ok(Self {
            found: runs.len(),
            train,
            val,
        })
    }

    /// Runs, windows of `job.steps` intervals, and batches of `job.batch` per epoch.
    pub fn plan(&self, job: &Job) -> Plan {
        let windows = [
            windows(&self.train, job.steps, 1).len(),
            windows(&self.val, job.steps, 1).len(),
        ];
        Plan {
            runs: [self.found, self.train.len(), self.val.len()],
            windows,
            batches: windows[0].div_ceil(job.batch.max(1)),
        }
    }
}

/// What the warm start did (see [`Job::prior_epochs`]).
///
/// ```
/// let w = nmm::train::WarmStart { delta: 1.0, tau: 1.0, samples: 800, loss: 0.01, seconds: 0.5 };
/// assert!(w.loss < 1.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarmStart {
    /// Delta of the fitted MPR field (from the runs' metadata).
    pub delta: f64,
    /// tau of the fitted MPR field (time unit).
    pub tau: f64,
    /// Regression samples.
    pub samples: usize,
    /// Final regression loss (dimensionless).
    pub loss: f64,
    /// Seconds it took.
    pub seconds: f64,
}

/// The warm start (regression to MPR with `J -> J p`, `prior`) of `net`: its metadata and
/// what it did.
fn warm_start<const H: usize>(
    job: &Job,
    train: &[Trajectory],
    norm: &Normalisation<f64>,
    net: &mut Net<H>,
    progress: &dyn Progress,
) -> Result<(serde_json::Value, Option<WarmStart>)> {
    let (delta, tau) = network_constants(train)?;
    let mut rng = stream(job.seed, STREAM_PRIOR);
    let mut samples = prior::samples(train, PRIOR_COPIES, delta, tau, &mut rng);
    let t0 = Instant::now();
    let every = job.prior_epochs.div_ceil(20);
    let loss = prior::fit(
        net,
        norm,
        &mut samples,
        job.prior_epochs,
        PRIOR_LR,
        job.batch,
        |s| shuffle(&mut rng, s),
        lr_at,
        |e, l| {
            progress.message(&format!("prior {e}/{}  loss {l:.3e}", job.prior_epochs));
            if e % every == 0 || e == job.prior_epochs {
                progress.log(&format!(
                    "prior epoch {e}/{}  loss {l:.3e}",
                    job.prior_epochs
                ));
            }
        },
    )?;
    let secs = t0.elapsed().as_secs_f64();
    let meta = json!({
        "field": prior::FIELD,
        "delta": delta,
        "tau": tau,
        "samples": samples.len(),
        "copies": PRIOR_COPIES,
        "jitter": {"eta": prior::JITTER[0], "J": prior::JITTER[1], "p": prior::JITTER[2]},
        "epochs": job.prior_epochs,
        "lr": PRIOR_LR,
        "batch": job.batch,
        "loss": loss,
        "seconds": secs,
    });
    Ok((
        meta,
        Some(WarmStart {
            delta,
            tau,
            samples: samples.len(),
            loss,
            seconds: secs,
        }),
    ))
}

/// The model run freely on the first [`PLOT_RUNS`] validation runs (training runs when there
/// are none).
fn compare<const H: usize>(
    model: &MlpMeanField<f64, H, H>,
    train: &[Trajectory],
    val: &[Trajectory],
    substeps: usize,
) -> Vec<Comparison> {
    let (runs_shown, which) = if val.is_empty() {
        (train, "training")
    } else {
        (val, "held-out")
    };
    runs_shown
        .iter()
        .take(PLOT_RUNS)
        .map(|tr| {
            let [r, v] = free_run(model, tr, substeps);
            Comparison {
                name: tr
                    .file
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                which,
                params: [tr.j, tr.eta, tr.p],
                t: (0..tr.len()).map(|i| tr.time(i)).collect(),
                rms: [rms(&r, &tr.r), rms(&v, &tr.v)],
                data: [tr.r.clone(), tr.v.clone()],
                model: [r, v],
            }
        })
        .collect()
}

fn train_sized<const H: usize>(job: &Job, d: &Data, progress: &dyn Progress) -> Result<Report> {
    let (train, val) = (d.train.as_slice(), d.val.as_slice());
    let (net_init, norm) = match &job.init {
        Some(path) => {
            let (net, norm) = load_init::<H>(path)?;
            (Some(net), norm)
        }
        None => (None, data::normalisation(train)),
    };
    let mut obj = Objective::new(
        train[0].dt,
        job.steps,
        [norm.in_scale[0], norm.in_scale[1]],
        job.v_weight,
    )
    .with_substeps(job.substeps);
    if job.rate_floor > 0.0 {
        obj = obj.with_rate_floor(job.rate_floor, norm.in_mean[0]);
    }
    let settings = Settings {
        epochs: job.epochs,
        lr: job.lr,
        batch: job.batch,
        seed: job.seed,
    };
    let mut net0 = net_init.unwrap_or_else(|| init_net::<H>(job.seed));
    let (prior_meta, prior_report) = if job.prior_epochs > 0 {
        warm_start(job, train, &norm, &mut net0, progress)?
    } else {
        (json!(null), None)
    };
    let t_fit = Instant::now();
    let fit = fit(net0, &norm, &obj, train, val, &settings, progress)?;
    let fit_s = t_fit.elapsed().as_secs_f64();

    // The model as stored: f32 weights and normalisation.
    let net32 = fit.net.map(|w| f64::from(w as f32));
    let norm32 = norm.map(|w| f64::from(w as f32));
    let model = MlpMeanField::new(net32, norm32)
        .map_err(|e| input!("trained network is not storable: {e}"))?;
    let final_train = batch_loss(
        model.net(),
        model.norm(),
        &obj,
        train,
        &windows(train, job.steps, 1),
        false,
    )
    .0;
    let final_val = batch_loss(
        model.net(),
        model.norm(),
        &obj,
        val,
        &windows(val, job.steps, 1),
        false,
    )
    .0;
    let finite = |x: f64| if x.is_finite() { json!(x) } else { json!(null) };
    let ranges = json!({
        "eta": range(train, |t, _| t.eta),
        "p": range(train, |t, _| t.p),
        "J": range(train, |t, _| t.j),
        "I": range(train, |t, k| t.input[k]),
        "r": range(train, |t, k| t.r[k]),
        "v": range(train, |t, k| t.v[k]),
    });
    let meta = json!({
        "nmm_version": crate::VERSION,
        "command": crate::command_line(),
        "model": format!("mlp mean field 6-{H}-{H}-2 (tanh, tanh, linear); inputs r, v, eta, p, J, I; outputs dr/dt, dv/dt"),
        "seed": job.seed,
        "data": job.dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
        "runs": {
            "found": d.found,
            "train": train.len(),
            "validation": val.len(),
            "validation_files": val.iter().map(|t| t.file.display().to_string()).collect::<Vec<_>>(),
        },
        "ranges": ranges,
        "p_range": range(train, |t, _| t.p),
        "dt": obj.dt,
        "rollout": job.steps,
        "substeps": job.substeps,
        "resampling": "block means over one interval dt (a whole multiple of the data's bin); drive I at the grid points, interpolated linearly to the stage times of the substeps",
        "loss": "mean over windows and steps of [(r - r_data)^2/sd_r^2 + v_weight (v - v_data)^2/sd_v^2] / (1 + v_weight); K data intervals (each by `substeps` Heun steps) from each observed state; with rate_floor R0 > 0 the r term is weighted by (mean r + R0)/(r_data + R0)",
        "v_weight": job.v_weight,
        "rate_floor": job.rate_floor,
        "sd": {"r": norm.in_scale[0], "v": norm.in_scale[1]},
        "optimiser": {"name": "adam", "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "lr": job.lr, "schedule": format!("cosine to {LR_FLOOR} lr"), "batch": job.batch},
        "init": match &job.init {
            Some(p) => json!(format!("weights and normalisation of {}", p.display())),
            None => json!("glorot uniform hidden layers, output layer x0.1, zero biases"),
        },
        "prior": prior_meta,
        "epochs": job.epochs,
        "best_epoch": fit.best_epoch,
        "skipped_batches": fit.skipped,
        "final_loss": {"train": finite(final_train), "validation": finite(final_val), "weights": "f32 as stored"},
        "loss_history": {"train": fit.train_loss, "validation": fit.val_loss},
        "train_seconds": fit_s,
    });
    let meta = serde_json::to_string(&meta)?;
    let mut bytes = vec![0u8; MlpMeanField::<f64, H, H>::encoded_len(meta.len())];
    let n = model
        .to_bytes(&meta, &mut bytes)
        .map_err(|e| input!("encoding {}: {e}", job.out.display()))?;
    atomic_write(&job.out, |w| Ok(w.write_all(&bytes[..n])?))?;

    let comparisons = compare(&model, train, val, job.substeps);
    Ok(Report {
        prior: prior_report,
        train_loss: fit.train_loss,
        val_loss: fit.val_loss,
        best_epoch: fit.best_epoch,
        final_loss: [final_train, final_val],
        skipped: fit.skipped,
        fit_seconds: fit_s,
        comparisons,
    })
}

#[cfg(test)]
mod tests {
    use super::data::{RunEntry, Trajectory, normalisation, resample};
    use super::rollout::{Objective, Window, batch_loss, eval, windows};
    use super::*;
    use nmm_core::Model;
    use nmm_core::models::Mpr;
    use nmm_core::stim::{StimSpec, Stimulus};

    /// An MPR run (tau = 1, Delta = 1) from `x0`, integrated by Heun with step 0.01 under
    /// coloured noise of standard deviation `sigma` (1/f^1.1, sampled every 0.05), recorded
    /// every 0.01 and resampled onto `dt = 0.1` by the training pipeline.
    fn mpr_run(eta: f64, j: f64, x0: [f64; 2], sigma: f64, seed: u64, t_end: f64) -> Trajectory {
        let mpr = Mpr {
            eta,
            j,
            ..Mpr::<f64>::default()
        };
        let spec = StimSpec::Noise {
            sigma,
            beta: 1.1,
            interval: 0.05,
        };
        let mut stim = Stimulus::<f64, 256>::new(spec, seed, 0.0);
        let h = 0.01;
        let n = (t_end / h).round() as usize;
        let (mut t, mut r, mut v, mut input) = (vec![], vec![], vec![], vec![]);
        let mut x = x0;
        for k in 0..n {
            let tk = k as f64 * h;
            let i0 = stim.value(tk);
            t.push(tk);
            r.push(x[0]);
            v.push(x[1]);
            input.push(i0);
            let i1 = stim.value(tk + h);
            let k1 = mpr.deriv(&x, i0);
            let xp = [x[0] + h * k1[0], x[1] + h * k1[1]];
            let k2 = mpr.deriv(&xp, i1);
            x = [
                x[0] + 0.5 * h * (k1[0] + k2[0]),
                x[1] + 0.5 * h * (k1[1] + k2[1]),
            ];
        }
        let run = RunEntry {
            file: format!("mpr_eta{eta}_J{j}").into(),
            eta,
            p: 1.0,
            j,
        };
        resample(&run, &t, &r, &v, &input, 0.1).unwrap()
    }

    /// Deterministic non-trivial weights: Glorot from a seed, with biases and a larger output
    /// layer so that every weight has a sizeable gradient.
    fn busy_net<const H: usize>(seed: u64) -> Net<H> {
        let mut net = init_net::<H>(seed);
        let mut rng = stream(seed, 99);
        for w in net.iter_mut() {
            *w += 0.3 * (2.0 * uniform_open0(&mut rng) - 1.0);
        }
        net
    }

    /// The trainer's forward pass is the core model's, bit for bit.
    /// One Heun step of dx/dt = -x (no drive): x (1 - h + h^2 / 2), exactly as written.
    #[test]
    fn heun_substep_is_heun() {
        let f = |u: &[f64; 6]| [-u[0], -u[1]];
        let mut u = [0.0; 6];
        let (_, _, x) =
            rollout::heun_substep([1.0, 2.0], &mut u, (0.0, 0.0), (0, 1), 0.1, f, |k| *k);
        // 1 - 0.1 + 0.005 = 0.905; rounding of three operations at most.
        assert!((x[0] - 0.905).abs() < 1e-15 && (x[1] - 1.81).abs() < 1e-15);
    }

    #[test]
    fn eval_matches_core_model() {
        let tr = mpr_run(-5.0, 15.0, [0.5, -1.0], 1.0, 1, 5.0);
        let norm = normalisation(std::slice::from_ref(&tr));
        let net = busy_net::<6>(4);
        let model = MlpMeanField::new(net, norm).unwrap();
        for k in 0..tr.len() {
            let u = tr.inputs(k);
            let want = model.deriv_with(&[u[0], u[1]], u[2], u[3], u[4], u[5]);
            assert_eq!(eval(&net, &norm, &u).f, want, "sample {k}");
        }
    }

    /// Block means: 10 samples of 0.01 per step of 0.1, centred; a trailing partial block is
    /// dropped; a step that is not a multiple of the bin is refused, naming the file.
    #[test]
    fn resampling_takes_block_means() {
        let run = RunEntry {
            file: "x.npz".into(),
            eta: -5.0,
            p: 1.0,
            j: 15.0,
        };
        let t: Vec<f64> = (0..25).map(|k| 0.005 + 0.01 * k as f64).collect();
        let r: Vec<f64> = (0..25).map(|k| k as f64).collect();
        let tr = resample(&run, &t, &r, &r, &r, 0.1).unwrap();
        assert_eq!(tr.r, [4.5, 14.5]);
        assert!((tr.t0 - 0.05).abs() < 1e-12 && (tr.dt - 0.1).abs() < 1e-12);
        let e = resample(&run, &t, &r, &r, &r, 0.025).unwrap_err();
        assert!(format!("{e:#}").contains("x.npz"), "{e:#}");
    }

    /// Reverse-mode gradient of the rollout loss against central differences, for every
    /// weight: K = 6 data intervals, 6 windows from two MPR runs (one with a transient); the
    /// default 6 -> 6 -> 6 -> 2 network with one Heun step per interval (98 weights) and a
    /// 6 -> 16 -> 16 -> 2 one with 3 substeps (418 weights), each with uniform weights and
    /// with the low-rate emphasis of --rate-floor, and as the network term of a universal
    /// differential equation (MPR + network). Step h = 1e-5 (the loss is O(1) and smooth):
    /// truncation ~h^2 |L'''| ~ 1e-10 and rounding ~1e-16/h ~ 1e-11, so the relative error
    /// should be ~1e-8 or below where the gradient is not tiny; relative errors are taken
    /// against max(|g|, 1e-3 max|g|).
    #[test]
    fn gradient_matches_central_differences() {
        check_gradient::<6>(1);
        check_gradient::<16>(3);
    }

    fn check_gradient<const H: usize>(substeps: usize) {
        let data = vec![
            mpr_run(-5.0, 15.0, [1.2, -1.5], 1.0, 1, 4.0),
            mpr_run(-4.0, 10.0, [0.2, -2.0], 1.0, 2, 4.0),
        ];
        let norm = normalisation(&data);
        let plain = Objective::new(0.1, 6, [norm.in_scale[0], norm.in_scale[1]], 0.25)
            .with_substeps(substeps);
        // Uniform weights, the low-rate emphasis of --rate-floor, and a universal differential
        // equation (the known MPR field plus the network; its Jacobian enters the adjoint).
        let ude = plain.with_base(rollout::Known {
            delta: 1.0,
            tau: 1.0,
        });
        for obj in [plain, plain.with_rate_floor(0.05, norm.in_mean[0]), ude] {
            let ws: Vec<Window> = windows(&data, 6, 5)
                .into_iter()
                .step_by(2)
                .take(6)
                .collect();
            assert_eq!(ws.len(), 6);
            let net = busy_net::<H>(7);
            let (loss, grad) = batch_loss(&net, &norm, &obj, &data, &ws, true);
            assert!(loss.is_finite() && loss > 0.0);
            let gmax = grad.iter().fold(0.0_f64, |a, g| a.max(g.abs()));
            let h = 1e-5;
            let mut worst = (0.0_f64, 0usize, 0.0, 0.0);
            for (k, g) in grad.iter().enumerate() {
                let at = |d: f64| {
                    let mut flat: Vec<f64> = net.iter().collect();
                    flat[k] += d;
                    let n = Net::<H>::from_flat(&flat).unwrap();
                    batch_loss(&n, &norm, &obj, &data, &ws, false).0
                };
                let fd = (at(h) - at(-h)) / (2.0 * h);
                let rel = (fd - g).abs() / g.abs().max(1e-3 * gmax);
                if rel > worst.0 {
                    worst = (rel, k, g, fd);
                }
            }
            eprintln!(
                "gradient check (H = {H}, {substeps} substeps): loss {loss:.4}, max |g| {gmax:.3e}, worst relative error {:.2e} at weight {} (analytic {:.6e}, central difference {:.6e})",
                worst.0, worst.1, worst.2, worst.3
            );
            assert!(worst.0 < 1e-6, "{worst:?}");
        }
    }

    /// Same seed, same result, whatever the number of threads.
    #[test]
    fn training_does_not_depend_on_threads() {
        let data = vec![
            mpr_run(-5.0, 15.0, [1.2, -1.5], 1.0, 1, 6.0),
            mpr_run(-4.0, 10.0, [0.2, -2.0], 1.0, 2, 6.0),
        ];
        let norm = normalisation(&data);
        let obj = Objective::new(0.1, 5, [norm.in_scale[0], norm.in_scale[1]], 0.25);
        let s = Settings {
            epochs: 3,
            lr: 1e-2,
            batch: 40,
            seed: 5,
        };
        let go = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                fit(
                    init_net::<6>(5),
                    &norm,
                    &obj,
                    &data[..1],
                    &data[1..],
                    &s,
                    &crate::progress::Silent,
                )
                .unwrap()
            })
        };
        let (a, b) = (go(1), go(3));
        assert_eq!(a.net, b.net);
        assert_eq!(a.train_loss, b.train_loss);
        assert_eq!(a.val_loss, b.val_loss);
    }

    /// The split is by run, deterministic, disjoint and covers the kept runs.
    #[test]
    fn split_is_seeded_and_disjoint() {
        let (t, v) = split(10, 0.2, None, 3);
        assert_eq!((t.len(), v.len()), (8, 2));
        assert_eq!(split(10, 0.2, None, 3), (t.clone(), v.clone()));
        let mut all: Vec<usize> = t.iter().chain(&v).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_ne!(split(10, 0.2, None, 4), (t, v));
        assert_eq!(split(1, 0.2, None, 0), (vec![0], vec![]));
        let (t, v) = split(10, 0.3, Some(4), 0);
        assert_eq!((t.len(), v.len()), (3, 1));
    }

    /// Loss of MPR itself on `data` under the objective's rollout (coarse Heun with the
    /// block-mean drive): the floor that resampling leaves for a perfect vector field.
    fn mpr_floor(data: &[Trajectory], steps: usize, sd: [f64; 2], v_weight: f64) -> f64 {
        let (mut sum, mut n) = (0.0, 0);
        for tr in data {
            let mpr = Mpr {
                eta: tr.eta,
                j: tr.j,
                ..Mpr::<f64>::default()
            };
            for s in 0..tr.len() - steps {
                let mut x = [tr.r[s], tr.v[s]];
                for q in 0..steps {
                    x = nmm_core::integrate::heun(
                        &mut |t, x: &[f64; 2]| mpr.deriv(x, tr.input[s + q + usize::from(t > 0.0)]),
                        0.0,
                        &x,
                        tr.dt,
                    );
                    let e = [
                        (x[0] - tr.r[s + q + 1]) / sd[0],
                        (x[1] - tr.v[s + q + 1]) / sd[1],
                    ];
                    sum += (e[0] * e[0] + v_weight * e[1] * e[1]) / (1.0 + v_weight);
                    n += 1;
                }
            }
        }
        sum / n as f64
    }

    /// RMS over the states of `runs` and both components of `a - b`, in units of the output
    /// scales, where `(a, b) = pair(inputs)`.
    fn field_gap(
        runs: &[Trajectory],
        norm: &Normalisation<f64>,
        pair: impl Fn(&[f64; 6]) -> ([f64; 2], [f64; 2]),
    ) -> f64 {
        let (mut sum, mut n) = (0.0, 0);
        for tr in runs {
            for i in 0..tr.len() {
                let (a, b) = pair(&tr.inputs(i));
                for c in 0..2 {
                    let e = (a[c] - b[c]) / norm.out_scale[c];
                    sum += e * e;
                    n += 1;
                }
            }
        }
        (sum / n as f64).sqrt()
    }

    /// The warm start's loss gradient is the derivative of its loss: central differences
    /// with step 1e-5 on every weight (truncation O(h^2) ~ 1e-10, rounding ~ 1e-16 / 1e-5 =
    /// 1e-11 relative), compared relative to |g| (at least 1e-3 of the largest |g|, as in
    /// the rollout check): an error above 1e-6 is a wrong derivative.
    #[test]
    fn prior_gradient_matches_central_differences() {
        let tr = mpr_run(-4.0, 12.0, [0.4, -1.0], 0.5, 3, 1.0);
        let mut rng = stream(5, 0);
        let samples = prior::samples(std::slice::from_ref(&tr), 3, 1.0, 1.0, &mut rng);
        let norm = normalisation(std::slice::from_ref(&tr));
        let net = busy_net::<16>(4);
        let (_, grad) = prior::regression_loss(&net, &norm, &samples, true);
        let gmax = grad.iter().fold(0.0_f64, |a, g| a.max(g.abs()));
        let h = 1e-5;
        let mut worst = 0.0f64;
        for (k, g) in grad.iter().enumerate() {
            let at = |d: f64| {
                let mut flat: Vec<f64> = net.iter().collect();
                flat[k] += d;
                let n = Net::<16>::from_flat(&flat).unwrap();
                prior::regression_loss(&n, &norm, &samples, false).0
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            worst = worst.max((fd - g).abs() / g.abs().max(1e-3 * gmax));
        }
        assert!(worst < 1e-6, "worst relative gradient error {worst}");
    }

    /// Warm-start samples: the first copy of each data sample is the data with MPR's field
    /// (J -> J p) as target; the others move (eta, J, p) by at most the jitter, inside the
    /// training ranges, and their targets follow.
    #[test]
    fn prior_samples_follow_the_data_and_the_theory() {
        let mut a = mpr_run(-5.0, 15.0, [0.3, -1.5], 0.5, 1, 2.0);
        let mut b = mpr_run(-3.0, 10.0, [0.3, -1.5], 0.5, 2, 2.0);
        a.p = 0.6;
        b.p = 1.0;
        let data = [a, b];
        let mut rng = stream(1, 0);
        let s = prior::samples(&data, 4, 0.7, 1.3, &mut rng);
        assert_eq!(s.len(), 4 * (data[0].len() + data[1].len()));
        let mut moved = 0;
        for (k, chunk) in s.chunks(4).enumerate() {
            let (tr, i) = if k < data[0].len() {
                (&data[0], k)
            } else {
                (&data[1], k - data[0].len())
            };
            assert_eq!(chunk[0].u, tr.inputs(i));
            for c in chunk {
                let m = Mpr {
                    tau: 1.3,
                    delta: 0.7,
                    eta: c.u[2],
                    j: c.u[4] * c.u[3],
                };
                assert_eq!(c.f, m.deriv(&[c.u[0], c.u[1]], c.u[5]));
                assert_eq!([c.u[0], c.u[1], c.u[5]], [tr.r[i], tr.v[i], tr.input[i]]);
                assert!((c.u[2] - tr.eta).abs() <= prior::JITTER[0]);
                assert!((c.u[4] - tr.j).abs() <= prior::JITTER[1]);
                assert!((c.u[3] - tr.p).abs() <= prior::JITTER[2]);
                assert!((-5.0..=-3.0).contains(&c.u[2]) && (10.0..=15.0).contains(&c.u[4]));
                assert!((0.6..=1.0).contains(&c.u[3]));
                moved += usize::from(c.u != tr.inputs(i));
            }
        }
        assert!(moved > s.len() / 2, "{moved} of {} moved", s.len());
        // Each of eta, p, J moves in some samples (in others it sits at a range's edge).
        for idx in [2, 3, 4] {
            let n = s
                .chunks(4)
                .filter(|c| c[1..].iter().any(|x| x.u[idx] != c[0].u[idx]));
            assert!(n.count() > s.len() / 8, "input {idx} never moves");
        }
    }

    /// The warm start learns MPR's field: on states of held-out MPR runs (other initial
    /// states, other drives, p = 0.7 between the training p = 0.6 and 0.8, so J p differs
    /// from every training value) the RMS error of the 16-wide network's field, in units of
    /// the output scales, falls from about 1 (untrained) below 0.1 and below a quarter of the
    /// error that the target J in place of J p would leave. 0.1 is loose for the regression
    /// itself (the training samples reach an RMS of 0.02 here; the shipped 32-wide warm start
    /// 0.008 on its own data): the test is that the fit learns the field and interpolates
    /// it in p, and it fails for a wrong target or gradient.
    #[test]
    fn warm_start_fits_mpr_with_j_times_p() {
        let mut data = vec![];
        let mut k = 0;
        for (eta, j) in [(-5.0, 15.0), (-4.0, 10.0), (-6.0, 12.0)] {
            for p in [0.6, 0.8] {
                for q in 0..3 {
                    k += 1;
                    let mut tr = mpr_run(eta, j * p, [0.1 + 0.3 * q as f64, -1.5], 0.5, k, 4.0);
                    tr.j = j;
                    tr.p = p;
                    data.push(tr);
                }
            }
        }
        let norm = normalisation(&data);
        let mut rng = stream(3, 0);
        let mut samples = prior::samples(&data, 4, 1.0, 1.0, &mut rng);
        let mut net = init_net::<16>(3);
        let held: Vec<Trajectory> = [(-5.0, 15.0), (-4.0, 10.0)]
            .into_iter()
            .map(|(eta, j)| {
                let mut tr = mpr_run(eta, j * 0.7, [0.5, -1.0], 0.5, 100 + j as u64, 4.0);
                tr.j = j;
                tr.p = 0.7;
                tr
            })
            .collect();
        let field_err = |net: &Net<16>| {
            field_gap(&held, &norm, |u| {
                (eval(net, &norm, u).f, prior::mpr_field(u, 1.0, 1.0))
            })
        };
        // What a wrong target would cost: MPR with J (not J p) against the right field.
        let wrong = field_gap(&held, &norm, |u| {
            let mut u1 = *u;
            u1[3] = 1.0;
            (
                prior::mpr_field(&u1, 1.0, 1.0),
                prior::mpr_field(u, 1.0, 1.0),
            )
        });
        let e0 = field_err(&net);
        let loss = prior::fit(
            &mut net,
            &norm,
            &mut samples,
            400,
            3e-3,
            64,
            |s| shuffle(&mut rng, s),
            lr_at,
            |_, _| {},
        )
        .unwrap();
        let e1 = field_err(&net);
        eprintln!(
            "warm start: field error {e0:.3} -> {e1:.4} (J in place of J p: {wrong:.3}), training loss {loss:.2e}"
        );
        assert!(
            e0 > 0.5 && e1 < 0.1 && e1 < 0.25 * wrong,
            "field error {e0} -> {e1}"
        );
    }

    /// Learning MPR from its own trajectories: p = 1, three (eta, J) pairs (bistable and
    /// monostable), 12 runs each of 4 time units (40 steps of 0.1) from random initial states
    /// in r in [0.05, 1.25], v in [-2.5, 0.5], under a coloured-noise drive of standard
    /// deviation 0.5; 10 runs per pair train, 2 are held out. After 300 epochs (K = 5,
    /// batches of 16, lr 1e-2) the loss falls by a large factor, and the MLP's vector field
    /// approaches MPR's on the held-out runs' states, measured as the RMS over states and
    /// both components of `(f_mlp - f_mpr) / out_scale`.
    #[test]
    fn learns_mpr_from_trajectories() {
        let started = Instant::now();
        let mut rng = stream(42, 0);
        let (mut data, mut held) = (vec![], vec![]);
        let mut k = 0;
        for (eta, j) in [(-5.0, 15.0), (-4.0, 10.0), (-6.0, 12.0)] {
            for q in 0..12 {
                let r0 = 0.05 + 1.2 * uniform_open0(&mut rng);
                let v0 = -2.5 + 3.0 * uniform_open0(&mut rng);
                k += 1;
                let tr = mpr_run(eta, j, [r0, v0], 0.5, k, 4.0);
                if q < 10 { data.push(tr) } else { held.push(tr) }
            }
        }
        let norm = normalisation(&data);
        let sd = [norm.in_scale[0], norm.in_scale[1]];
        let obj = Objective::new(0.1, 5, sd, 0.25);
        let s = Settings {
            epochs: 300,
            lr: 1e-2,
            batch: 16,
            seed: 1,
        };
        let all = windows(&data, obj.steps, 1);
        let net0 = init_net(s.seed);
        let before = batch_loss(&net0, &norm, &obj, &data, &all, false).0;
        let fit = fit(
            net0,
            &norm,
            &obj,
            &data,
            &held,
            &s,
            &crate::progress::Silent,
        )
        .unwrap();
        let after = batch_loss(&fit.net, &norm, &obj, &data, &all, false).0;
        // The runs are at p = 1, so MPR with J -> J p is MPR itself.
        let deriv_err = |net: &Net| {
            field_gap(&held, &norm, |u| {
                (eval(net, &norm, u).f, prior::mpr_field(u, 1.0, 1.0))
            })
        };
        let (e0, e1) = (deriv_err(&net0), deriv_err(&fit.net));
        eprintln!(
            "MPR training ({} windows): loss {before:.3e} -> {after:.3e} (/{:.0}; MPR itself {:.1e}); validation {:.3e} at best epoch {}; derivative error (RMS / out_scale) on held-out states {e0:.3} untrained -> {e1:.3} trained; {:.1} s",
            all.len(),
            before / after,
            mpr_floor(&data, obj.steps, sd, 0.25),
            fit.val_loss[fit.best_epoch - 1],
            fit.best_epoch,
            started.elapsed().as_secs_f64()
        );
        assert!(after < before / 100.0, "loss {before} -> {after}");
        assert!(e1 < 0.25 * e0, "derivative error {e0} -> {e1}");
    }
}
