//! Neural posterior estimation: training a conditional flow `q(theta | x)` on simulated pairs
//! with sbi's rules, and sampling it with the prior's bounds enforced.

use super::flow::{Estimator, Flow};
use super::maf::{Float, Maf, Shape, permutation};
use super::nsf::{Nsf, Spline};
use super::prior::{Prior, standard_normal};
use crate::error::{Error, Result, bail};
use crate::progress::Progress;
use crate::train::rollout::Adam;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, concatenate};
use nmm_core::rng::stream;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Rows per task when a batch's gradient is split across threads; chunk sums are added in
/// order, so results do not depend on the number of threads.
const CHUNK: usize = 50;
/// Rows per task when evaluating or sampling.
const EVAL_CHUNK: usize = 1000;
/// Seed streams.
const STREAM_INIT: u64 = 0;
const STREAM_SPLIT: u64 = 1;
const STREAM_SHUFFLE: u64 = 2;

/// Training settings; the defaults are sbi's (`SNPE_C.train` with `density_estimator="maf"`,
/// and for `"nsf"` sbi's spline settings). A stored file without `estimator` or `spline`
/// (written before neural spline flows) reads as a MAF with these spline defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The flow (sbi's default: MAF).
    #[serde(default)]
    pub estimator: Estimator,
    /// Width of the hidden layers: the MADE's, or the spline conditioner's residual net's
    /// (sbi: 50).
    pub hidden: usize,
    /// Transforms: MADE blocks, or spline couplings each followed by an LU layer (sbi: 5).
    pub transforms: usize,
    /// Bins, residual blocks and tail bound of the splines (neural spline flows only; sbi:
    /// 10, 2 and 3).
    #[serde(default)]
    pub spline: Spline,
    /// Pairs per Adam step (sbi: 200).
    pub batch: usize,
    /// Adam learning rate (sbi: 5e-4).
    pub lr: f64,
    /// Fraction of the pairs held out for validation (sbi: 0.1).
    pub val_fraction: f64,
    /// Stop after this many epochs without a lower validation loss (sbi: 20).
    pub stop_after: usize,
    /// Stop after this many epochs in any case (sbi: 2^31 - 1).
    pub max_epochs: usize,
    /// Clip the gradient's Euclidean norm to this (sbi: 5).
    pub clip: f64,
    /// Seed of the initial weights, the permutations, the split and the shuffling.
    pub seed: u64,
    /// Precision of the training's arithmetic (sbi trains in f32); the weights, Adam's state
    /// and sampling are f64 in both.
    pub precision: Precision,
}

/// Precision of the training's arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Single precision (sbi's): about twice the throughput of the matrix products.
    F32,
    /// Double precision.
    F64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            estimator: Estimator::Maf,
            hidden: 50,
            transforms: 5,
            spline: Spline::default(),
            batch: 200,
            lr: 5e-4,
            val_fraction: 0.1,
            stop_after: 20,
            max_epochs: 100_000,
            clip: 5.0,
            seed: 0,
            precision: Precision::F32,
        }
    }
}

/// Per-column affine standardisation `(v - mean) / std`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standardise {
    /// Column means.
    pub mean: Vec<f64>,
    /// Column scales (standard deviations; 1 for a constant column).
    pub std: Vec<f64>,
}

impl Standardise {
    /// Means and unbiased standard deviations of `a`'s columns; a column whose spread is
    /// below `1e-12 (1 + |mean|)` (constant up to rounding) gets scale 1, so it is centred but
    /// not blown up (sbi clamps such scales to 1e-14 instead, which turns rounding noise in
    /// an observation into huge inputs). Returns the indices of those columns.
    fn fit(a: ArrayView2<f64>) -> (Self, Vec<usize>) {
        let n = a.nrows() as f64;
        let mut mean = Vec::with_capacity(a.ncols());
        let mut std = Vec::with_capacity(a.ncols());
        let mut constant = Vec::new();
        for (j, col) in a.columns().into_iter().enumerate() {
            let m = col.sum() / n;
            let v = col.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0).max(1.0);
            let s = v.sqrt();
            mean.push(m);
            if s > 1e-12 * (1.0 + m.abs()) {
                std.push(s);
            } else {
                std.push(1.0);
                constant.push(j);
            }
        }
        (Self { mean, std }, constant)
    }

    fn apply(&self, a: ArrayView2<f64>) -> Array2<f64> {
        let mut z = a.to_owned();
        for (j, mut col) in z.columns_mut().into_iter().enumerate() {
            let (m, s) = (self.mean[j], self.std[j]);
            col.mapv_inplace(|v| (v - m) / s);
        }
        z
    }

    fn undo(&self, z: &mut Array2<f64>) {
        for (j, mut col) in z.columns_mut().into_iter().enumerate() {
            let (m, s) = (self.mean[j], self.std[j]);
            col.mapv_inplace(|v| v * s + m);
        }
    }

    /// `-sum log std`: the log-Jacobian of standardising.
    fn log_jacobian(&self) -> f64 {
        -self.std.iter().map(|s| s.ln()).sum::<f64>()
    }

    pub(crate) fn check_len(&self, what: &str, n: usize) -> Result<()> {
        if self.mean.len() != n || self.std.len() != n {
            bail!(
                "{what}: {} means and {} scales for {n} columns",
                self.mean.len(),
                self.std.len()
            );
        }
        if self.mean.iter().any(|m| !m.is_finite())
            || self.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            bail!("{what}: non-finite mean or non-positive scale");
        }
        Ok(())
    }
}

/// What training did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Mean training loss (`-log q(theta | x)`, nats, in theta's units) per epoch.
    pub train: Vec<f64>,
    /// Validation loss per epoch (same units).
    pub val: Vec<f64>,
    /// Wall time (s) from the start of training to the end of each epoch (its validation
    /// included).
    pub elapsed: Vec<f64>,
    /// The epoch (1-based) whose weights were kept: the lowest validation loss.
    pub best_epoch: usize,
    /// Whether training stopped because the validation loss stopped improving (otherwise it
    /// reached `max_epochs`).
    pub converged: bool,
    /// Training pairs.
    pub n_train: usize,
    /// Validation pairs.
    pub n_val: usize,
    /// Rows of `x` with a non-finite entry, left out (as sbi does).
    pub excluded_nonfinite: usize,
    /// Adam steps skipped because the loss or gradient was not finite.
    pub skipped_steps: usize,
    /// Columns of `x` that were constant in the training data (centred, not scaled).
    pub constant_features: Vec<usize>,
    /// Wall time (s).
    pub seconds: f64,
}

/// A trained posterior estimator with everything needed to use and reproduce it.
#[derive(Clone, Debug)]
pub struct Posterior {
    /// The prior (bounds are enforced when sampling).
    pub prior: Prior,
    /// Standardisation of theta (part of the flow: its Jacobian enters log-densities).
    pub theta_z: Standardise,
    /// Standardisation of x (the embedding).
    pub x_z: Standardise,
    /// The flow on standardised theta, conditioned on standardised x.
    pub flow: Flow,
    /// Settings used.
    pub settings: Settings,
    /// What training did.
    pub history: History,
    /// nmm version that trained it.
    pub version: String,
    /// Command line that trained it.
    pub command: String,
}

/// Posterior draws for one observation.
#[derive(Clone, Debug)]
pub struct Samples {
    /// Draws, `n x d`, columns in the prior's order.
    pub theta: Array2<f64>,
    /// Draws proposed by the flow (accepted and rejected).
    pub proposed: usize,
    /// Fraction of proposals inside the prior's support.
    pub acceptance: f64,
}

/// Rows per sampling round (sbi's `max_sampling_batch_size`).
const ROUND: usize = 10_000;

/// Trains `q(theta | x)` on pairs (`theta` `n x d` in the prior's order, `x` `n x k`).
///
/// Rows of `x` with a non-finite value are left out and counted; non-finite theta or theta
/// outside the prior's support is an error naming the row. The split, the initial weights,
/// the permutations and the shuffling come from `settings.seed`; the result is the same for
/// every thread count. Progress: one unit per epoch (total: `max_epochs`), a message with
/// the losses, log lines at epochs 1, 2, 5, 10, 20, 50 and every 50th.
///
/// ```
/// use ndarray::Array2;
/// use nmm::infer::{Prior, Settings, train};
/// // x = theta + small noise: the posterior concentrates around x.
/// let prior = Prior::from_toml_str("[[param]]\nname = \"a\"\nnormal = [0, 1]\n")?;
/// let mut rng = nmm_core::rng::stream(1, 0);
/// let n = 400;
/// let theta = Array2::from_shape_fn((n, 1), |_| nmm::infer::standard_normal(&mut rng));
/// let x = theta.mapv(|t| t + 0.1 * nmm::infer::standard_normal(&mut rng));
/// let s = Settings { hidden: 8, transforms: 1, max_epochs: 30, ..Settings::default() };
/// let post = train(theta.view(), x.view(), &prior, &s, &nmm::progress::Silent)?;
/// let draws = post.sample(&[0.5], 1000, 7)?;
/// let mean = draws.theta.mean().unwrap();
/// assert!((mean - 0.5).abs() < 0.2, "{mean}");
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn train(
    theta: ArrayView2<f64>,
    x: ArrayView2<f64>,
    prior: &Prior,
    settings: &Settings,
    progress: &dyn Progress,
) -> Result<Posterior> {
    let started = Instant::now();
    check_settings(settings)?;
    let d = prior.dim();
    if theta.ncols() != d {
        bail!(
            "theta has {} columns but the prior has {d} parameters ({})",
            theta.ncols(),
            prior.names().join(", ")
        );
    }
    if theta.nrows() != x.nrows() {
        bail!(
            "theta has {} rows but x has {}: one simulation per row in both",
            theta.nrows(),
            x.nrows()
        );
    }
    if x.ncols() == 0 {
        bail!("x has no columns (features)");
    }
    for (r, row) in theta.rows().into_iter().enumerate() {
        if let Some(j) = row.iter().position(|v| !v.is_finite()) {
            bail!(
                "theta row {r}, column {j} ({}): not finite",
                prior.params[j].name
            );
        }
        if let Some(j) = (0..d).find(|&j| !prior.params[j].marginal.contains(row[j])) {
            bail!(
                "theta row {r}, column {j} ({}): {} lies outside the prior's support",
                prior.params[j].name,
                row[j]
            );
        }
    }
    let keep: Vec<usize> = (0..x.nrows())
        .filter(|&r| x.row(r).iter().all(|v| v.is_finite()))
        .collect();
    let excluded = x.nrows() - keep.len();
    if excluded > 0 {
        progress.note(&format!(
            "{excluded} of {} simulations have non-finite features and are left out",
            x.nrows()
        ));
    }
    let n = keep.len();
    let mut order = keep;
    let mut rng = stream(settings.seed, STREAM_SPLIT);
    let p = permutation(&mut rng, n);
    order = p.iter().map(|&i| order[i]).collect();
    let n_val = (settings.val_fraction * n as f64).floor() as usize;
    let n_train = n - n_val;
    if n_train < 2 || (settings.val_fraction > 0.0 && n_val == 0) {
        bail!(
            "{n} usable simulations are too few to train on with {} held out for validation",
            settings.val_fraction
        );
    }
    let take = |a: ArrayView2<f64>, idx: &[usize]| a.select(Axis(0), idx);
    let (train_idx, val_idx) = order.split_at(n_train);
    // sbi z-scores with the statistics of the training pairs.
    let (theta_z, _) = Standardise::fit(take(theta, train_idx).view());
    let (x_z, constant) = Standardise::fit(take(x, train_idx).view());
    if !constant.is_empty() {
        progress.note(&format!(
            "{} features are constant in the training data (centred, not scaled): columns {:?}",
            constant.len(),
            constant
        ));
    }
    let t_train = theta_z.apply(take(theta, train_idx).view());
    let x_train = x_z.apply(take(x, train_idx).view());
    let t_val = theta_z.apply(take(theta, val_idx).view());
    let x_val = x_z.apply(take(x, val_idx).view());
    let jac = theta_z.log_jacobian();

    let shape = Shape {
        dim: d,
        context: x.ncols(),
        hidden: settings.hidden,
        transforms: settings.transforms,
    };
    let too_large = match settings.estimator {
        Estimator::Maf => shape.len_checked().is_none(),
        Estimator::Nsf => Nsf::<f64>::len_for(&shape, &settings.spline).is_none(),
    };
    if too_large {
        bail!(
            "training settings: a flow of {} transforms, {} hidden and {} features has more than 2^32 weights",
            shape.transforms,
            shape.hidden,
            shape.context
        );
    }
    let mut init = stream(settings.seed, STREAM_INIT);
    let mut flow = match settings.estimator {
        Estimator::Maf => Flow::Maf(Maf::new(shape, &mut init)),
        Estimator::Nsf => Flow::Nsf(Nsf::new(shape, settings.spline, &mut init)),
    };
    let mut hist = History {
        train: Vec::new(),
        val: Vec::new(),
        elapsed: Vec::new(),
        best_epoch: 0,
        converged: false,
        n_train,
        n_val,
        excluded_nonfinite: excluded,
        skipped_steps: 0,
        constant_features: constant,
        seconds: 0.0,
    };
    let data = [&t_train, &x_train, &t_val, &x_val];
    let ctx = Fit {
        settings,
        jac,
        started,
        progress,
    };
    let best = match settings.precision {
        Precision::F32 => ctx.run::<f32>(&mut flow, data, &mut hist)?,
        Precision::F64 => ctx.run::<f64>(&mut flow, data, &mut hist)?,
    };
    *flow.params_mut() = best.1;
    hist.best_epoch = best.2;
    hist.seconds = started.elapsed().as_secs_f64();
    Ok(Posterior {
        prior: prior.clone(),
        theta_z,
        x_z,
        flow,
        settings: settings.clone(),
        history: hist,
        version: crate::VERSION.into(),
        command: crate::command_line(),
    })
}

/// What the epochs need besides the flow and the data.
struct Fit<'a> {
    settings: &'a Settings,
    /// Log-Jacobian of theta's standardisation (losses are reported in theta's units).
    jac: f64,
    started: Instant,
    progress: &'a dyn Progress,
}

/// The best validation loss, its weights (f64) and its epoch.
type Best = (f64, Vec<f64>, usize);

impl Fit<'_> {
    /// The epochs, computing in `T`; the weights and Adam's state stay in f64 (`flow`), and
    /// the working copy in `T` takes them before every step (a cast of a few thousand values).
    fn run<T: Float>(
        &self,
        flow: &mut Flow<f64>,
        [t_train, x_train, t_val, x_val]: [&Array2<f64>; 4],
        hist: &mut History,
    ) -> Result<Best> {
        let s = self.settings;
        let (t_train, x_train) = (t_train.mapv(T::cast), x_train.mapv(T::cast));
        let (t_val, x_val) = (t_val.mapv(T::cast), x_val.mapv(T::cast));
        let (n_train, n_val) = (t_train.nrows(), t_val.nrows());
        let mut work: Flow<T> = flow.cast();
        let mut adam = Adam::new(flow.params().len());
        let mut shuffle = stream(s.seed, STREAM_SHUFFLE);
        let mut best = (f64::INFINITY, flow.params().to_vec(), 0usize);
        let mut since = 0;
        for epoch in 1..=s.max_epochs {
            let idx = permutation(&mut shuffle, n_train);
            let mut sum = 0.0;
            let mut counted = 0usize;
            for b in idx.chunks(s.batch) {
                let tb = t_train.select(Axis(0), b);
                let xb = x_train.select(Axis(0), b);
                work.set_params(flow.params());
                let (nll, mut g) = gradient(&work, tb.view(), xb.view());
                let inv = 1.0 / b.len() as f64;
                g.iter_mut().for_each(|v| *v *= inv);
                if !nll.is_finite() || g.iter().any(|v| !v.is_finite()) {
                    hist.skipped_steps += 1;
                    continue;
                }
                clip(&mut g, s.clip);
                adam.step_weights(flow.params_mut().iter_mut(), g.iter().copied(), s.lr);
                sum += nll;
                counted += b.len();
            }
            let train_loss = if counted > 0 {
                sum / counted as f64 - self.jac
            } else {
                f64::NAN
            };
            work.set_params(flow.params());
            let val_loss = if n_val > 0 {
                mean_nll(&work, t_val.view(), x_val.view()) - self.jac
            } else {
                train_loss
            };
            if !val_loss.is_finite() {
                return Err(Error::Diverged {
                    at: epoch as f64,
                    region: None,
                    variable: "validation loss".into(),
                    message: format!(
                        "training diverged at epoch {epoch}: the validation loss is {val_loss}; try a smaller --lr"
                    ),
                });
            }
            hist.train.push(train_loss);
            hist.val.push(val_loss);
            hist.elapsed.push(self.started.elapsed().as_secs_f64());
            if val_loss < best.0 {
                best = (val_loss, flow.params().to_vec(), epoch);
                since = 0;
            } else {
                since += 1;
            }
            // A log line at epochs 1, 2, 5, 10, 20, 50 and every 50th: about twenty per job.
            if epoch % 50 == 0 || [1, 2, 5, 10, 20].contains(&epoch) {
                self.progress.log(&format!(
                    "epoch {epoch}: validation loss {val_loss:.5}, training {train_loss:.5}; best {:.5} at epoch {}",
                    best.0, best.2
                ));
            }
            self.progress.set(epoch as u64, s.max_epochs as u64);
            self.progress.message(&format!(
                "epoch {epoch}  train {train_loss:.4}  val {val_loss:.4}  best {:.4} @ {}  ({since}/{} without improvement)",
                best.0, best.2, s.stop_after
            ));
            if n_val > 0 && since >= s.stop_after {
                hist.converged = true;
                break;
            }
        }
        Ok(best)
    }
}

fn check_settings(s: &Settings) -> Result<()> {
    let bad = |what: &str| Err(Error::input(format!("training settings: {what}")));
    if s.hidden == 0 || s.transforms == 0 || s.batch == 0 || s.max_epochs == 0 {
        return bad("hidden width, transforms, batch size and max epochs must be at least 1");
    }
    if !(s.lr.is_finite() && s.lr > 0.0) {
        return bad("the learning rate must be finite and > 0");
    }
    if !(0.0..1.0).contains(&s.val_fraction) {
        return bad("the validation fraction must be in [0, 1)");
    }
    if !(s.clip.is_finite() && s.clip > 0.0) {
        return bad("the gradient clip norm must be finite and > 0");
    }
    if !(2..=64).contains(&s.spline.bins) {
        return bad("the spline bins must be between 2 and 64");
    }
    let (lo, hi) = super::nsf::TAIL_BOUNDS;
    if !(lo..=hi).contains(&s.spline.tail_bound) {
        return bad(&format!(
            "the spline tail bound must be in [{lo:e}, {hi:e}] (standardised units; sbi: 3)"
        ));
    }
    Ok(())
}

/// `sum -log q` over the rows and its gradient, in fixed chunks added in order.
fn gradient<T: Float>(flow: &Flow<T>, t: ArrayView2<T>, x: ArrayView2<T>) -> (f64, Vec<f64>) {
    let n = t.nrows();
    let starts: Vec<usize> = (0..n).step_by(CHUNK).collect();
    let parts: Vec<(f64, Vec<T>)> = starts
        .par_iter()
        .map(|&s| {
            let e = (s + CHUNK).min(n);
            let mut g = vec![T::zero(); flow.params().len()];
            let nll = flow.nll_grad(
                t.slice(ndarray::s![s..e, ..]),
                x.slice(ndarray::s![s..e, ..]),
                &mut g,
            );
            (nll, g)
        })
        .collect();
    let mut total = 0.0;
    let mut g = vec![0.0; flow.params().len()];
    for (nll, gp) in parts {
        total += nll;
        g.iter_mut().zip(gp).for_each(|(a, b)| *a += b.wide());
    }
    (total, g)
}

/// Mean `-log q` (standardised units) over the rows.
fn mean_nll<T: Float>(flow: &Flow<T>, t: ArrayView2<T>, x: ArrayView2<T>) -> f64 {
    let n = t.nrows();
    let starts: Vec<usize> = (0..n).step_by(EVAL_CHUNK).collect();
    let sums: Vec<f64> = starts
        .par_iter()
        .map(|&s| {
            let e = (s + EVAL_CHUNK).min(n);
            -flow
                .log_prob(
                    t.slice(ndarray::s![s..e, ..]),
                    x.slice(ndarray::s![s..e, ..]),
                )
                .sum()
        })
        .collect();
    sums.iter().sum::<f64>() / n as f64
}

/// PyTorch's `clip_grad_norm_`: scale by `max / (norm + 1e-6)` when that is below 1.
fn clip(g: &mut [f64], max: f64) {
    let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
    let c = max / (norm + 1e-6);
    if c < 1.0 {
        g.iter_mut().for_each(|v| *v *= c);
    }
}

impl Posterior {
    /// Parameter dimension.
    pub fn dim(&self) -> usize {
        self.prior.dim()
    }

    /// Number of features the observation must have.
    pub fn features(&self) -> usize {
        self.x_z.mean.len()
    }

    fn context(&self, xo: &[f64]) -> Result<Array1<f64>> {
        if xo.len() != self.features() {
            bail!(
                "the observation has {} features but the posterior was trained on {}",
                xo.len(),
                self.features()
            );
        }
        if let Some(j) = xo.iter().position(|v| !v.is_finite()) {
            bail!("the observation's feature {j} is not finite ({})", xo[j]);
        }
        let a = ArrayView2::from_shape((1, xo.len()), xo)?;
        Ok(self.x_z.apply(a).row(0).to_owned())
    }

    /// `m` flow proposals for the standardised observation `ctx`: standard-normal base draws
    /// taken from `rng` in order (so the result does not depend on the thread count), mapped
    /// through the inverse flow in parallel chunks, then un-standardised.
    fn propose(
        &self,
        ctx: ArrayView1<f64>,
        m: usize,
        rng: &mut nmm_core::rng::Xoshiro256PlusPlus,
    ) -> Array2<f64> {
        let d = self.dim();
        let y = Array2::from_shape_fn((m, d), |_| standard_normal(rng));
        let starts: Vec<usize> = (0..m).step_by(EVAL_CHUNK).collect();
        let parts: Vec<Array2<f64>> = starts
            .par_iter()
            .map(|&s| {
                let e = (s + EVAL_CHUNK).min(m);
                self.flow
                    .inverse(y.slice(ndarray::s![s..e, ..]).to_owned(), ctx)
            })
            .collect();
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        let mut theta = concatenate(Axis(0), &views).unwrap_or_else(|_| Array2::zeros((0, d)));
        self.theta_z.undo(&mut theta);
        theta
    }

    /// `n` draws from the posterior at the observation `xo` (its features, in training
    /// order), proposals outside the prior's support rejected (sbi's "leakage" correction).
    /// Refuses, with the acceptance rate in the message, when after at least 10^4 proposals
    /// fewer than `min_acceptance` of them are inside the support: the flow then puts most of
    /// its mass where the prior has none, which usually means `xo` is unlike every training
    /// simulation. The acceptance reported counts every proposal of the rounds drawn.
    /// Deterministic for a seed and independent of the thread count.
    pub fn sample_checked(
        &self,
        xo: &[f64],
        n: usize,
        seed: u64,
        min_acceptance: f64,
    ) -> Result<Samples> {
        if !(min_acceptance > 0.0 && min_acceptance <= 1.0) {
            bail!("the minimum acceptance must be in (0, 1], not {min_acceptance}");
        }
        let ctx = self.context(xo)?;
        let d = self.dim();
        let mut rng = stream(seed, 0);
        let total = n
            .checked_mul(d)
            .filter(|&t| t <= 1 << 31)
            .ok_or_else(|| Error::input(format!("{n} draws of {d} parameters are too many")))?;
        let mut kept: Vec<f64> = Vec::with_capacity(total);
        let (mut proposed, mut inside) = (0usize, 0usize);
        while kept.len() < n * d {
            let rate = if proposed == 0 {
                1.0
            } else {
                (inside as f64 / proposed as f64).max(min_acceptance)
            };
            let want = ((n - kept.len() / d) as f64 / rate * 1.1).ceil() as usize;
            let m = want.clamp(1, ROUND);
            let theta = self.propose(ctx.view(), m, &mut rng);
            proposed += m;
            for row in theta.rows() {
                if self.prior.contains_row(row) {
                    inside += 1;
                    if kept.len() < n * d {
                        kept.extend(row.iter());
                    }
                }
            }
            let acc = inside as f64 / proposed as f64;
            if proposed >= ROUND && acc < min_acceptance {
                bail!(
                    "only {inside} of {proposed} posterior proposals ({acc:.2e}) are finite and inside the prior's support, below the minimum acceptance {min_acceptance:.0e}: the observation is probably unlike the training simulations"
                );
            }
        }
        Ok(Samples {
            acceptance: inside as f64 / proposed.max(1) as f64,
            theta: Array2::from_shape_vec((n, d), kept)?,
            proposed,
        })
    }

    /// [`Posterior::sample_checked`] with a minimum acceptance of 1e-3.
    pub fn sample(&self, xo: &[f64], n: usize, seed: u64) -> Result<Samples> {
        self.sample_checked(xo, n, seed, 1e-3)
    }

    /// The flow's log-density at each row of `theta` (`m x d`) given `xo`, not renormalised to
    /// the prior's support (so it is a density on all of R^d; see [`Posterior::log_prob`]).
    pub fn flow_log_prob(&self, theta: ArrayView2<f64>, xo: &[f64]) -> Result<Array1<f64>> {
        if theta.ncols() != self.dim() {
            bail!(
                "theta has {} columns, the posterior {} parameters",
                theta.ncols(),
                self.dim()
            );
        }
        let ctx = self.context(xo)?;
        let z = self.theta_z.apply(theta);
        Ok(self
            .flow
            .log_prob(z.view(), ctx.view().insert_axis(Axis(0)))
            + self.theta_z.log_jacobian())
    }

    /// Posterior log-density at each row of `theta` (`m x d`) given `xo`: the flow's density
    /// renormalised to the prior's support (divided by the acceptance rate, estimated from
    /// 10^5 proposals of a fixed seed when the prior is bounded; relative error about
    /// `sqrt((1 - a) / (a 1e5))`), `-inf` outside it.
    pub fn log_prob(&self, theta: ArrayView2<f64>, xo: &[f64]) -> Result<Array1<f64>> {
        let mut lp = self.flow_log_prob(theta, xo)?;
        let ctx = self.context(xo)?;
        let log_acc = if self.prior.is_unbounded() {
            0.0
        } else {
            let m = 100_000;
            let mut rng = stream(0x5eed_acce, 0);
            let props = self.propose(ctx.view(), m, &mut rng);
            let inside = props
                .rows()
                .into_iter()
                .filter(|r| self.prior.contains_row(*r))
                .count();
            if inside == 0 {
                bail!("no posterior proposal out of {m} lies inside the prior's support");
            }
            (inside as f64 / m as f64).ln()
        };
        for (r, v) in lp.iter_mut().enumerate() {
            *v = if self.prior.contains_row(theta.row(r)) {
                *v - log_acc
            } else {
                f64::NEG_INFINITY
            };
        }
        Ok(lp)
    }
}
