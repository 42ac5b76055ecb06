//! Reverse mode for one window: the gradient of the window's loss with respect to every entry
//! of the coupling matrix (one gain per connectome link) and to `G`, at the cost of about
//! three forward runs whatever the number of links (forward mode would need one tangent per
//! link: 2,145 for 66 regions).
//!
//! The adjoint is written by hand over the discrete scheme the forward run uses (stochastic
//! Heun with the projection onto `[0, 1]`, the means of `S_E` over each BOLD step (`bold.dt_ms`) into Heun steps of the
//! Balloon model, the Pearson FC of the window's BOLD samples, the loss), so it is the gradient
//! of the computed loss (to rounding: the couplings are summed again in another order), not of
//! a continuous-time approximation:
//!
//! 1. The window is run forward in `f64` by the same [`super::advance`] as the fit, recording
//!    the state after every step; the noise is drawn again from copies of the streams (each
//!    region's stream gives step `k` its draws `2k` and `2k + 1`, as the run's blocks do).
//! 2. The loss's adjoint with respect to the BOLD samples (FC and correlation, by hand).
//! 3. Backwards over the BOLD steps: each step's Jacobians (state and input) from one
//!    evaluation of the model's own step in [`Dual`] numbers, so the Balloon equations are not
//!    written twice.
//! 4. Backwards over the node steps: the adjoint of the corrector, the predictor, both
//!    couplings (`c_i = G k sum_j W_ij S_E,j`, `k` the model's coupling gain), with the local Jacobians of the node model again
//!    from [`Dual`] numbers (seeds `S_E`, `S_I` and the input); the coupling matrix's gradient
//!    accumulates `G lambda_c,i S_E,j` over both stages of every step.
//!
//! Clamps (`max(0)` in the model, the projection) are differentiated as the branch taken, as
//! the forward mode does. Checked against the forward mode (for `G`) and central finite
//! differences (for links) in the tests.

use super::{Carry, Setup, Target, advance, bold_params, fc_lower, model_of};
use crate::error::Result;
use nmm_core::Model;
use nmm_core::bold::BoldParams;
use nmm_core::dual::Dual;
use nmm_core::rng::Gaussian;
use std::collections::BTreeMap;

/// A window's loss and its gradient by reverse mode.
#[derive(Clone, Debug)]
pub struct Reverse {
    /// The loss.
    pub loss: f64,
    /// The FC correlation `r` of the window.
    pub r: f64,
    /// d loss / d G.
    pub d_g: f64,
    /// d loss / d W_ij for every entry of the coupling matrix (row-major, diagonal included:
    /// with Laplacian coupling it holds minus the row sums).
    pub d_weights: Vec<f64>,
}

/// d loss / d (lower-triangle FC) for the loss `-ln(0.5 + 0.5 r) + w mse`, `r` the Pearson
/// correlation of `a` with the target's FC, `mse` the mean squared difference from its window
/// FC.
fn loss_adjoint(a: &[f64], target: &Target, mse_weight: f64) -> (f64, f64, Vec<f64>) {
    let (b, bw) = (&target.fc, &target.window_fc);
    let k = a.len() as f64;
    let ma = a.iter().sum::<f64>() / k;
    let mb = b.iter().sum::<f64>() / k;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    let r = sab / (saa * sbb).sqrt();
    let mse = a
        .iter()
        .zip(bw)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        / k;
    let loss = -(0.5 + 0.5 * r).ln() + mse_weight * mse;
    let dl_dr = -0.5 / (0.5 + 0.5 * r);
    // dr/da_k = ((b_k - mb) - r sqrt(sbb / saa) (a_k - ma)) / sqrt(saa sbb); the mean's
    // adjoint vanishes because both centred vectors sum to zero.
    let norm = (saa * sbb).sqrt();
    let ratio = r * (sbb / saa).sqrt();
    let grad = a
        .iter()
        .zip(b)
        .zip(bw)
        .map(|((x, y), yw)| {
            dl_dr * ((y - mb) - ratio * (x - ma)) / norm + mse_weight * 2.0 * (x - yw) / k
        })
        .collect();
    (loss, r, grad)
}

/// d loss / d y for the BOLD samples `y` (time x regions), given d loss / d FC (lower
/// triangle, `i > j` row by row) of their Pearson FC.
fn fc_adjoint(y: &[Vec<f64>], d_fc: &[f64]) -> Vec<Vec<f64>> {
    let n = y[0].len();
    let t = y.len() as f64;
    let mean: Vec<f64> = (0..n)
        .map(|i| y.iter().map(|row| row[i]).sum::<f64>() / t)
        .collect();
    let dev: Vec<Vec<f64>> = y
        .iter()
        .map(|row| row.iter().zip(&mean).map(|(x, m)| x - m).collect())
        .collect();
    let ss: Vec<f64> = (0..n)
        .map(|i| dev.iter().map(|row| row[i] * row[i]).sum())
        .collect();
    // FC_ij = c_ij / sqrt(ss_i ss_j): d/dc_ij = 1/sqrt(ss_i ss_j), d/dss_i = -FC_ij / (2 ss_i).
    let mut d_c = vec![0.0; n * n];
    let mut d_ss = vec![0.0; n];
    let mut k = 0;
    for i in 0..n {
        for j in 0..i {
            let c: f64 = dev.iter().map(|row| row[i] * row[j]).sum();
            let s = (ss[i] * ss[j]).sqrt();
            let fc = c / s;
            d_c[i * n + j] = d_fc[k] / s;
            d_ss[i] -= d_fc[k] * fc / (2.0 * ss[i]);
            d_ss[j] -= d_fc[k] * fc / (2.0 * ss[j]);
            k += 1;
        }
    }
    // c_ij = sum_t dev_ti dev_tj, ss_i = sum_t dev_ti^2; then the demeaning's adjoint.
    let mut d_dev: Vec<Vec<f64>> = dev
        .iter()
        .map(|row| {
            (0..n)
                .map(|i| {
                    let mut g = 2.0 * d_ss[i] * row[i];
                    for j in 0..n {
                        let dc = if i > j {
                            d_c[i * n + j]
                        } else {
                            d_c[j * n + i]
                        };
                        if i != j {
                            g += dc * row[j];
                        }
                    }
                    g
                })
                .collect()
        })
        .collect();
    for i in 0..n {
        let m = d_dev.iter().map(|row| row[i]).sum::<f64>() / t;
        for row in d_dev.iter_mut() {
            row[i] -= m;
        }
    }
    d_dev
}

/// One BOLD step of the window: the state before it, its input (the mean `S_E` of its node
/// steps), and the index of the BOLD sample it gave, if any.
struct BoldStep {
    before: Vec<[f64; 4]>,
    u: Vec<f64>,
    sample: Option<usize>,
}

type D3 = Dual<f64, 3>;
type D5 = Dual<f64, 5>;

/// The loss of one window run from `start` (the carried state, its derivatives dropped) with
/// `vals` on the coupling matrix `weights`, and its gradient in `G` and every entry of
/// `weights` by reverse mode.
pub(super) fn backward(
    s: &Setup,
    vals: &BTreeMap<String, f64>,
    weights: &[f64],
    start: &Carry<f64>,
    steps: usize,
    target: &Target,
) -> Result<Reverse> {
    let n = s.n;
    // The states and noise kept: 2 x (steps + 1) x n of [f64; 2]; refuse what cannot be
    // held (2^27 states = 2 GiB each) rather than abort on allocation.
    if (steps + 1).checked_mul(n).is_none_or(|x| x > 1 << 27) {
        return Err(crate::error::input!(
            "a window of {steps} steps x {n} regions is too long for reverse mode (at most \
             2^27 states); use a shorter window_tr"
        ));
    }
    // 1. Forward, recording every state (xs[t] before step t, xs[steps] at the end).
    let mut carry = start.clone();
    let mut xs: Vec<[f64; 2]> = Vec::with_capacity((steps + 1) * n);
    xs.extend_from_slice(&start.x);
    let bold = advance(s, vals, weights, &mut carry, steps, |x| {
        xs.extend_from_slice(x)
    })?;
    let (model, g) = model_of(vals)?;
    let sigma = model.diffusion();
    let cg = model.coupling_gain();
    let dt = s.cfg.dt_ms;
    let sq = dt.sqrt();
    let mut streams: Vec<Gaussian<f64>> = start
        .noise
        .iter()
        .map(|z| Gaussian::from_rng(z.clone().rng_mut().clone()))
        .collect();
    let mut dws = vec![[0.0; 2]; steps * n];
    for (i, z) in streams.iter_mut().enumerate() {
        for t in 0..steps {
            for (k, sg) in sigma.iter().enumerate() {
                dws[t * n + i][k] = *sg * sq * z.next();
            }
        }
    }

    // 2. The loss and its adjoint with respect to the samples.
    if bold.len() < 3 {
        return Err(crate::error::input!(
            "a window of {} BOLD samples: an FC needs at least 3",
            bold.len()
        ));
    }
    let fc = fc_lower(&bold);
    let (loss, r, d_fc) = loss_adjoint(&fc, target, s.cfg.mse_weight);
    let d_y = fc_adjoint(&bold, &d_fc);

    // 3. The BOLD steps, replayed forward for their inputs and states, then backwards. Step t
    // (0-based, giving xs[t + 1]) adds S_E to the mean of BOLD step `block[t]` (None: the
    // window ends before that BOLD step).
    let bp: BoldParams<f64> = bold_params(s)?;
    let bd: BoldParams<D5> = bold_params(s)?;
    let bold_dt = s.cfg.bold.dt_ms / 1000.0;
    let inv = 1.0 / s.bold_every as f64;
    let mut phase = start.phase;
    let mut zacc = start.zacc.clone();
    let mut b = start.bold.clone();
    let mut block = vec![None; steps];
    let mut bsteps: Vec<BoldStep> = Vec::new();
    let mut samples = 0;
    let mut open = Vec::new();
    for t in 0..steps {
        for (z, x) in zacc.iter_mut().zip(&xs[(t + 1) * n..(t + 2) * n]) {
            *z += x[0];
        }
        open.push(t);
        phase.0 += 1;
        if phase.0 == s.bold_every {
            phase.0 = 0;
            let u: Vec<f64> = zacc.iter().map(|z| z * inv).collect();
            let before = b.clone();
            for (bi, ui) in b.iter_mut().zip(&u) {
                *bi = bp.step(bi, *ui, bold_dt);
            }
            zacc.fill(0.0);
            for t in open.drain(..) {
                block[t] = Some(bsteps.len());
            }
            phase.1 += 1;
            let sample = if phase.1 == s.per_tr {
                phase.1 = 0;
                samples += 1;
                Some(samples - 1)
            } else {
                None
            };
            bsteps.push(BoldStep { before, u, sample });
        }
    }
    debug_assert_eq!(samples, bold.len());
    // lambda_b: adjoint of the BOLD state after the current step; d_u[k]: of step k's input.
    let mut lam_b = vec![[0.0; 4]; n];
    let mut d_u = vec![vec![0.0; n]; bsteps.len()];
    for (k, BoldStep { before, u, sample }) in bsteps.iter().enumerate().rev() {
        for i in 0..n {
            if let Some(m) = sample {
                // y = bold(x_after): its gradient in the state from one dual evaluation.
                let after = bp.step(&before[i], u[i], bold_dt);
                let xd: [D5; 4] = core::array::from_fn(|c| {
                    D5::new(after[c], core::array::from_fn(|e| f64::from(e == c)))
                });
                let y = bd.bold(&xd);
                for (lb, yd) in lam_b[i].iter_mut().zip(&y.d) {
                    *lb += d_y[*m][i] * yd;
                }
            }
            let xd: [D5; 4] = core::array::from_fn(|c| {
                D5::new(before[i][c], core::array::from_fn(|e| f64::from(e == c)))
            });
            let ud = D5::new(u[i], core::array::from_fn(|e| f64::from(e == 4)));
            let next = bd.step(&xd, ud, D5::constant(bold_dt));
            let mut prev = [0.0; 4];
            let mut du = 0.0;
            for (c, nx) in next.iter().enumerate() {
                for (e, p) in prev.iter_mut().enumerate() {
                    *p += lam_b[i][c] * nx.d[e];
                }
                du += lam_b[i][c] * nx.d[4];
            }
            lam_b[i] = prev;
            d_u[k][i] = du;
        }
    }

    // 4. The node steps backwards. lam[i]: adjoint of x_i at the current time.
    let w = weights;
    let (md, _) = model_of(
        &vals
            .iter()
            .map(|(k, v)| (k.clone(), D3::constant(*v)))
            .collect(),
    )?;
    let jac = |x: &[f64; 2], c: f64| -> [[f64; 3]; 2] {
        let xd = [
            D3::new(x[0], [1.0, 0.0, 0.0]),
            D3::new(x[1], [0.0, 1.0, 0.0]),
        ];
        let f = md.deriv(&xd, D3::new(c, [0.0, 0.0, 1.0]));
        [f[0].d, f[1].d]
    };
    let inside = |v: f64| (0.0..=1.0).contains(&v);
    let h = 0.5 * dt;
    let mut lam = vec![[0.0; 2]; n];
    let mut d_w = vec![0.0; n * n];
    let mut d_g = 0.0;
    // s1, s2: the summed input sum_j W_ij S_E,j of each stage; c = G s.
    let (mut s1, mut s2) = (vec![0.0; n], vec![0.0; n]);
    let (mut c1, mut c2) = (vec![0.0; n], vec![0.0; n]);
    let mut p = vec![[0.0; 2]; n];
    let (mut k1, mut k2) = (vec![[0.0; 2]; n], vec![[0.0; 2]; n]);
    let (mut lc1, mut lc2) = (vec![0.0; n], vec![0.0; n]);
    let mut lp = vec![[0.0; 2]; n];
    for t in (0..steps).rev() {
        let x = &xs[t * n..(t + 1) * n];
        let dw = &dws[t * n..(t + 1) * n];
        // The BOLD mean's adjoint reaches S_E of the state this step produced.
        if let Some(k) = block[t] {
            for i in 0..n {
                lam[i][0] += d_u[k][i] * inv;
            }
        }
        // Recompute the step: couplings, stages and the predictor.
        for i in 0..n {
            s1[i] = (0..n).map(|j| w[i * n + j] * x[j][0]).sum::<f64>();
            c1[i] = g * cg * s1[i];
            k1[i] = model.deriv(&x[i], c1[i]);
            let pre = [
                x[i][0] + dt * k1[i][0] + dw[i][0],
                x[i][1] + dt * k1[i][1] + dw[i][1],
            ];
            p[i] = model.project(pre);
            // The projection's derivative (1 inside [0, 1], 0 where it clamped).
            lp[i] = [f64::from(inside(pre[0])), f64::from(inside(pre[1]))];
        }
        for i in 0..n {
            s2[i] = (0..n).map(|j| w[i * n + j] * p[j][0]).sum::<f64>();
            c2[i] = g * cg * s2[i];
            k2[i] = model.deriv(&p[i], c2[i]);
        }
        // Corrector: x' = proj(x + h (k1 + k2) + dw).
        let mut lam_x = vec![[0.0; 2]; n];
        let mut lk1 = vec![[0.0; 2]; n];
        let mut lk2 = vec![[0.0; 2]; n];
        for i in 0..n {
            for v in 0..2 {
                let q = x[i][v] + h * (k1[i][v] + k2[i][v]) + dw[i][v];
                let lq = if inside(q) { lam[i][v] } else { 0.0 };
                lam_x[i][v] += lq;
                lk1[i][v] += h * lq;
                lk2[i][v] = h * lq;
            }
        }
        // k2 = f(p, c2).
        let mut lam_p = vec![[0.0; 2]; n];
        for i in 0..n {
            let j2 = jac(&p[i], c2[i]);
            for v in 0..2 {
                for u in 0..2 {
                    lam_p[i][u] += lk2[i][v] * j2[v][u];
                }
            }
            lc2[i] = lk2[i][0] * j2[0][2] + lk2[i][1] * j2[1][2];
            d_g += lc2[i] * cg * s2[i];
        }
        for i in 0..n {
            if lc2[i] != 0.0 {
                let a = g * cg * lc2[i];
                for j in 0..n {
                    lam_p[j][0] += a * w[i * n + j];
                    d_w[i * n + j] += a * p[j][0];
                }
            }
        }
        // p = proj(x + dt k1 + dw).
        for i in 0..n {
            for v in 0..2 {
                let lpre = lam_p[i][v] * lp[i][v];
                lam_x[i][v] += lpre;
                lk1[i][v] += dt * lpre;
            }
        }
        // k1 = f(x, c1).
        for i in 0..n {
            let j1 = jac(&x[i], c1[i]);
            for v in 0..2 {
                for u in 0..2 {
                    lam_x[i][u] += lk1[i][v] * j1[v][u];
                }
            }
            lc1[i] = lk1[i][0] * j1[0][2] + lk1[i][1] * j1[1][2];
            d_g += lc1[i] * cg * s1[i];
        }
        for i in 0..n {
            if lc1[i] != 0.0 {
                let a = g * cg * lc1[i];
                for j in 0..n {
                    lam_x[j][0] += a * w[i * n + j];
                    d_w[i * n + j] += a * x[j][0];
                }
            }
        }
        lam = lam_x;
    }
    Ok(Reverse {
        loss,
        r,
        d_g,
        d_weights: d_w,
    })
}
