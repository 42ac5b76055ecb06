//! Warm start (`--prior-epochs`): before the rollout training, the network is fitted by plain
//! regression to the vector field of MPR with `J -> J p` (REFERENCE sections 1 and 2), the
//! sparse-network theory's first approximation, at the states the training runs visit.
//!
//! The rollout training then starts from a network that already reproduces that field, so it
//! has only to learn how the networks differ from it (finite size, in-degree spread, the
//! synaptic delay and pulse width, finite `V_peak`) instead of the whole field from random
//! weights. The model that comes out is the same 6 -> H -> H -> 2 MLP; nothing of MPR is
//! stored with it.
//!
//! Samples: every sample `(r, v, I)` of every training run with its own `(eta, p, J)`, plus
//! `copies - 1` copies of it whose `(eta, J, p)` are moved uniformly within half the spacing
//! of a training grid (`JITTER`) and clipped to the training ranges, so the field is fitted
//! between the grid's points too. Loss: the mean over samples of the squared error of
//! `(dr/dt, dv/dt)` in units of the output scales of the normalisation.

use super::data::Trajectory;
use super::rollout::{Adam, Net, add_in_order, backward, eval};
use nmm_core::mlp::Normalisation;
use nmm_core::models::{Model, Mpr};
use nmm_core::rng::{Xoshiro256PlusPlus, uniform_open0};
use rayon::prelude::*;

/// Half-widths of the moves of `(eta, J, p)` in the jittered copies: half the spacing of the
/// shipped training grids (eta in steps of 2.5, J in steps of 5, p in steps of 0.2).
///
/// ```
/// let [eta, j, p] = nmm::train::JITTER;
/// assert!(eta > 0.0 && j > 0.0 && p > 0.0 && p < 1.0);
/// ```
pub const JITTER: [f64; 3] = [1.25, 2.5, 0.1];

/// Samples per task when a batch is split across threads (sums added in order: the result
/// does not depend on the number of threads).
const CHUNK: usize = 64;

/// One regression sample: inputs `(r, v, eta, p, J, I)` and the target `(dr/dt, dv/dt)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Inputs `(r, v, eta, p, J, I)`.
    pub u: [f64; 6],
    /// MPR's `(dr/dt, dv/dt)` there (1/time unit^2, 1/time unit).
    pub f: [f64; 2],
}

/// What the warm start fits, as recorded in the metadata of the models it starts.
///
/// ```
/// assert!(nmm::train::FIELD.contains("J -> J p"));
/// ```
pub const FIELD: &str = "MPR with J -> J p";

/// MPR's vector field with `J -> J p` at inputs `u = (r, v, eta, p, J, I)`, for
/// heterogeneity `delta` and time constant `tau` (time unit).
pub fn mpr_field(u: &[f64; 6], delta: f64, tau: f64) -> [f64; 2] {
    let m = Mpr {
        tau,
        delta,
        eta: u[2],
        j: u[4],
    };
    crate::models::mpr_with_j_p(&m, u[3]).deriv(&[u[0], u[1]], u[5])
}

/// The regression samples of `train` (see the module docs): `copies >= 1` per data sample,
/// the first unmoved.
pub fn samples(
    train: &[Trajectory],
    copies: usize,
    delta: f64,
    tau: f64,
    rng: &mut Xoshiro256PlusPlus,
) -> Vec<Sample> {
    let lo_hi = |f: &dyn Fn(&Trajectory) -> f64| {
        train
            .iter()
            .map(f)
            .fold([f64::INFINITY, f64::NEG_INFINITY], |[a, b], x| {
                [a.min(x), b.max(x)]
            })
    };
    let ranges = [lo_hi(&|t| t.eta), lo_hi(&|t| t.j), lo_hi(&|t| t.p)];
    let mut out = Vec::with_capacity(train.iter().map(Trajectory::len).sum::<usize>() * copies);
    for tr in train {
        for k in 0..tr.len() {
            let base = tr.inputs(k);
            for c in 0..copies.max(1) {
                let mut u = base;
                if c > 0 {
                    for (d, idx) in [2usize, 4, 3].into_iter().enumerate() {
                        let moved = u[idx] + JITTER[d] * (2.0 * uniform_open0(rng) - 1.0);
                        u[idx] = moved.clamp(ranges[d][0], ranges[d][1]);
                    }
                }
                out.push(Sample {
                    u,
                    f: mpr_field(&u, delta, tau),
                });
            }
        }
    }
    out
}

/// Mean squared error (in output-scale units) of the network on `batch`, and its gradient
/// with respect to the weights when `want_grad`.
pub fn regression_loss<const H: usize>(
    net: &Net<H>,
    norm: &Normalisation<f64>,
    batch: &[Sample],
    want_grad: bool,
) -> (f64, Net<H>) {
    let zero = Net::<H>::splat(0.0);
    if batch.is_empty() {
        return (f64::NAN, zero);
    }
    let scale = 1.0 / batch.len() as f64;
    let w = [
        1.0 / (norm.out_scale[0] * norm.out_scale[0]),
        1.0 / (norm.out_scale[1] * norm.out_scale[1]),
    ];
    let parts: Vec<(f64, Net<H>)> = batch
        .par_chunks(CHUNK)
        .map(|chunk| {
            let mut grad = zero;
            let mut loss = 0.0;
            for s in chunk {
                let e = eval(net, norm, &s.u);
                let d = [e.f[0] - s.f[0], e.f[1] - s.f[1]];
                loss += w[0] * d[0] * d[0] + w[1] * d[1] * d[1];
                if want_grad {
                    let gf = [2.0 * w[0] * d[0] * scale, 2.0 * w[1] * d[1] * scale];
                    backward(net, norm, &e, &gf, &mut grad);
                }
            }
            (loss, grad)
        })
        .collect();
    let (loss, grad) = add_in_order(&parts);
    (loss * scale, grad)
}

/// Adam on shuffled minibatches of `samples` for `epochs` passes, learning rate `lr` on a
/// cosine to `lr_floor * lr`; `shuffle` permutes the samples each epoch and `on_epoch`
/// receives the epoch (1-based) and its mean training loss. Returns the final loss over all
/// samples. Batches whose loss or gradient is not finite are skipped.
///
/// # Errors
/// When every batch of an epoch is skipped (divergence).
#[allow(clippy::too_many_arguments)]
pub fn fit<const H: usize>(
    net: &mut Net<H>,
    norm: &Normalisation<f64>,
    samples: &mut [Sample],
    epochs: usize,
    lr: f64,
    batch: usize,
    mut shuffle: impl FnMut(&mut [Sample]),
    lr_at: impl Fn(f64, usize, usize) -> f64,
    mut on_epoch: impl FnMut(usize, f64),
) -> crate::Result<f64> {
    let mut adam = Adam::new(Net::<H>::N_WEIGHTS);
    for e in 0..epochs {
        let lr_e = lr_at(lr, e, epochs);
        shuffle(samples);
        let (mut sum, mut count) = (0.0, 0usize);
        for b in samples.chunks(batch.max(1)) {
            let (loss, grad) = regression_loss(net, norm, b, true);
            if loss.is_finite() && grad.iter().all(f64::is_finite) {
                adam.step(net, &grad, lr_e);
                sum += loss * b.len() as f64;
                count += b.len();
            }
        }
        if count == 0 {
            crate::error::bail!(
                "warm start diverged at epoch {}: every batch gave a non-finite loss",
                e + 1
            );
        }
        on_epoch(e + 1, sum / count as f64);
    }
    Ok(regression_loss(net, norm, samples, false).0)
}
