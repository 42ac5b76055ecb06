//! The training objective: Heun rollouts of the MLP vector field from observed states, their
//! rate-weighted squared error against the data, and its gradient with respect to the weights
//! (98 for the default 6 -> 6 -> 6 -> 2) by hand-written reverse-mode differentiation (f64
//! throughout). Generic over the hidden width `H` (both hidden layers).
//!
//! One window starts at sample `s` of a trajectory, `x_0 = (r_s, v_s)`, and crosses `K` data
//! intervals of `dt`, each by `S` Heun steps of `h = dt / S` (`--substeps`, 1 by default) with
//! the observed drive interpolated linearly to the stage times (`S = 1`: `I_{s+n}` and
//! `I_{s+n+1}`, both on the training grid):
//!
//! ```text
//! k1 = f(x, I(t)),  x' = x + h k1,  k2 = f(x', I(t + h)),  x <- x + h (k1 + k2) / 2
//! ```
//!
//! with `f = denormalise(MLP(normalise(r, v, eta, p, J, I)))`. The window's loss is
//!
//! ```text
//! L = 1/K sum_{n=1..K} [ (r_n - r_{s+n})^2 / sd_r^2 + lambda (v_n - v_{s+n})^2 / sd_v^2 ] / (1 + lambda)
//! ```
//!
//! (with `--rate-floor r0`, each r term is further weighted by `(mean r + r0) / (r_obs + r0)`)
//! where `sd_r`, `sd_v` are the training data's standard deviations of `r` and `v` (the input
//! scales of the normalisation) and `lambda` the weight of `v` (`--v-weight`, 0.25 by
//! default: the rate counts four times as much as the potential, each in units of its own
//! spread). A batch's loss is the mean over its windows. Rollouts are not projected onto
//! `r >= 0` (the loss is smooth in the weights; negative rates are penalised by the data).
//!
//! The map over `dt` is what the loss sees, so with `S = 1` the fit absorbs Heun's error at
//! `dt`: where the field turns fast (the high-rate focus of MPR turns at about 7 rad per time
//! unit at r = 1.6, J = 17.5, i.e. 0.7 rad per step of 0.1) the learned field may differ from
//! the ODE that a fine-step integrator then runs. `S > 1` trains the field as an ODE. Between
//! samples the drive is the linear interpolation of the block-mean samples, not the raw binned
//! drive.

use super::data::Trajectory;
use nmm_core::mlp::{Mlp, MlpScalar, Normalisation};
use rayon::prelude::*;

/// The network being trained: 6 -> H tanh -> H tanh -> 2, in f64 (default H = 6); in general
/// `I` inputs (the state first, the drive last) and one output per state variable, `S`.
pub type Net<const H: usize = 6, const I: usize = 6, const S: usize = 2> = Mlp<f64, I, H, H, S>;

/// A data set the rollouts read: `len` samples of the state, the network's inputs and the drive.
pub trait Samples {
    /// Number of samples.
    fn len(&self) -> usize;
    /// Sample interval (time units).
    fn dt(&self) -> f64;
}

/// The observed series of a run with `S` state variables and `I` network inputs.
pub trait Series<const I: usize, const S: usize>: Samples + Sync {
    /// The network's inputs at sample `k`: the state in `0..S`, the drive at `I - 1`, the
    /// run's constants between.
    fn inputs(&self, k: usize) -> [f64; I];
    /// The observed state at sample `k`.
    fn state(&self, k: usize) -> [f64; S];
    /// The drive at sample `k`.
    fn drive(&self, k: usize) -> f64;
}

impl Samples for Trajectory {
    fn len(&self) -> usize {
        self.r.len()
    }
    fn dt(&self) -> f64 {
        self.dt
    }
}

impl Series<6, 2> for Trajectory {
    #[inline]
    fn inputs(&self, k: usize) -> [f64; 6] {
        Trajectory::inputs(self, k)
    }
    #[inline]
    fn state(&self, k: usize) -> [f64; 2] {
        [self.r[k], self.v[k]]
    }
    #[inline]
    fn drive(&self, k: usize) -> f64 {
        self.input[k]
    }
}

/// The known, exact part of a universal differential equation in `S` state variables: its
/// field and Jacobian `d f_i / d x_j` at the network inputs `u` (state first).
pub trait KnownField<const I: usize, const S: usize>: Sync {
    /// The field and its Jacobian in the state at `u`.
    fn field(&self, u: &[f64; I]) -> ([f64; S], [[f64; S]; S]);
}

/// Windows per task when a batch is split across threads; sums are formed per chunk and the
/// chunks added in order, so results do not depend on the number of threads.
const CHUNK: usize = 16;

/// One evaluation of the vector field, with what the backward pass needs.
#[derive(Clone, Copy, Debug)]
pub struct Eval<const H: usize = 6, const I: usize = 6, const S: usize = 2> {
    /// Normalised inputs.
    z: [f64; I],
    /// First hidden layer (after tanh).
    h1: [f64; H],
    /// Second hidden layer (after tanh).
    h2: [f64; H],
    /// The state's derivatives (for the mean field `(dr/dt, dv/dt)`, 1/time unit^2 and
    /// 1/time unit).
    pub f: [f64; S],
    /// Jacobian `d(known field)/d(state)` of the known part of a universal differential
    /// equation ([`Objective::with_base`]); zero without one.
    jac: [[f64; S]; S],
}

/// The known, exact part of a universal differential equation: the all-to-all MPR field
/// (the nominal `J`, no `p`) with heterogeneity `delta` and time constant `tau` (time unit),
/// at inputs `u = (r, v, eta, p, J, I)`. The network is trained to learn only the rest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Known {
    /// Half-width of the Lorentzian excitabilities.
    pub delta: f64,
    /// Membrane time constant (time unit).
    pub tau: f64,
}

impl KnownField<6, 2> for Known {
    /// The MPR field and its Jacobian in `(r, v)` at `u`.
    #[inline]
    fn field(&self, u: &[f64; 6]) -> ([f64; 2], [[f64; 2]; 2]) {
        use nmm_core::Model;
        let m = nmm_core::models::Mpr {
            tau: self.tau,
            delta: self.delta,
            eta: u[2],
            j: u[4],
        };
        let f = m.deriv(&[u[0], u[1]], u[5]);
        let (r, v, t) = (u[0], u[1], self.tau);
        let pi2 = std::f64::consts::PI * std::f64::consts::PI;
        // tau dr/dt = Delta/(pi tau) + 2 r v; tau dv/dt = v^2 + eta + J tau r - (pi tau r)^2 + I.
        let jac = [
            [2.0 * v / t, 2.0 * r / t],
            [u[4] - 2.0 * pi2 * t * r, 2.0 * v / t],
        ];
        (f, jac)
    }
}

/// [`eval`] plus the known field when there is one.
#[inline]
pub fn eval_with<const H: usize, const I: usize, const S: usize, K: KnownField<I, S>>(
    net: &Net<H, I, S>,
    norm: &Normalisation<f64, I, S>,
    base: Option<&K>,
    u: &[f64; I],
) -> Eval<H, I, S> {
    let mut e = eval(net, norm, u);
    if let Some(k) = base {
        let (f, jac) = k.field(u);
        for (a, b) in e.f.iter_mut().zip(f) {
            *a += b;
        }
        e.jac = jac;
    }
    e
}

/// [`backward`] plus the known field's contribution `jac^T gf` to `dL/d(r, v)`.
#[inline]
pub fn backward_with<const H: usize, const I: usize, const S: usize, K>(
    net: &Net<H, I, S>,
    norm: &Normalisation<f64, I, S>,
    base: Option<&K>,
    e: &Eval<H, I, S>,
    gf: &[f64; S],
    grad: &mut Net<H, I, S>,
) -> [f64; S] {
    let mut g = backward(net, norm, e, gf, grad);
    if base.is_some() {
        for (j, gj) in g.iter_mut().enumerate() {
            for (row, gfi) in e.jac.iter().zip(gf) {
                *gj += row[j] * gfi;
            }
        }
    }
    g
}

/// The vector field at physical inputs `u = (r, v, eta, p, J, I)`, computed exactly as
/// [`nmm_core::mlp::MlpMeanField::deriv_with`] does (same operations, same order), keeping the
/// hidden activations.
#[inline]
pub fn eval<const H: usize, const I: usize, const S: usize>(
    net: &Net<H, I, S>,
    norm: &Normalisation<f64, I, S>,
    u: &[f64; I],
) -> Eval<H, I, S> {
    let z = norm.normalise(u);
    let h1 = net.l1.forward(&z).map(<f64 as MlpScalar>::tanh);
    let h2 = net.l2.forward(&h1).map(<f64 as MlpScalar>::tanh);
    let f = norm.denormalise(&net.l3.forward(&h2));
    Eval {
        z,
        h1,
        h2,
        f,
        jac: [[0.0; S]; S],
    }
}

/// Backward pass of [`eval`]: given `gf = dL/df`, adds `dL/dweights` into `grad` and returns
/// `dL/d(r, v)`.
#[inline]
// Index loops mirror the matrix algebra (w[o][i] against x[i] and g[o]) more plainly than
// zipped iterators.
#[allow(clippy::needless_range_loop)]
pub fn backward<const H: usize, const I: usize, const S: usize>(
    net: &Net<H, I, S>,
    norm: &Normalisation<f64, I, S>,
    e: &Eval<H, I, S>,
    gf: &[f64; S],
    grad: &mut Net<H, I, S>,
) -> [f64; S] {
    let gy: [f64; S] = core::array::from_fn(|o| gf[o] * norm.out_scale[o]);
    let mut gh2 = [0.0; H];
    for o in 0..S {
        grad.l3.b[o] += gy[o];
        for i in 0..H {
            grad.l3.w[o][i] += gy[o] * e.h2[i];
            gh2[i] += net.l3.w[o][i] * gy[o];
        }
    }
    let ga2: [f64; H] = core::array::from_fn(|i| gh2[i] * (1.0 - e.h2[i] * e.h2[i]));
    let mut gh1 = [0.0; H];
    for o in 0..H {
        grad.l2.b[o] += ga2[o];
        for i in 0..H {
            grad.l2.w[o][i] += ga2[o] * e.h1[i];
            gh1[i] += net.l2.w[o][i] * ga2[o];
        }
    }
    let ga1: [f64; H] = core::array::from_fn(|i| gh1[i] * (1.0 - e.h1[i] * e.h1[i]));
    let mut gz = [0.0; S];
    for o in 0..H {
        grad.l1.b[o] += ga1[o];
        for i in 0..I {
            grad.l1.w[o][i] += ga1[o] * e.z[i];
        }
        for (k, gk) in gz.iter_mut().enumerate() {
            *gk += net.l1.w[o][k] * ga1[o];
        }
    }
    core::array::from_fn(|k| gz[k] / norm.in_scale[k])
}

/// The rollout and its loss weighting.
#[derive(Clone, Copy, Debug)]
pub struct Objective<const S: usize = 2, K = Known> {
    /// Data interval (time units): the trajectories' sample interval (the Heun step is
    /// `dt / substeps`).
    pub dt: f64,
    /// Data intervals per window, `K`.
    pub steps: usize,
    /// Heun steps per data interval, `S` (step `dt / S`; the drive interpolated linearly
    /// between the interval's two samples).
    pub substeps: usize,
    /// Per-variable weights `lambda_k / sd_k^2 / sum(lambda)`, divided by `K` (for the mean
    /// field `[1/sd_r^2, lambda/sd_v^2] / (1 + lambda) / K`).
    weight: [f64; S],
    /// Low-rate emphasis `(r0, r_mean)`: the r error at a sample with observed rate `r` is
    /// weighted by `(r_mean + r0) / (max(r, 0) + r0)` (1 at the mean rate, up to
    /// `1 + r_mean / r0` at rest). `None`: uniform.
    rate_floor: Option<(f64, f64)>,
    /// The known part of a universal differential equation (`None`: the network is the whole
    /// field).
    pub base: Option<K>,
}

impl Objective {
    /// The objective for rollouts over `steps` data intervals of `dt` (one Heun step each
    /// until [`Objective::with_substeps`]), with the spreads `sd` of
    /// `(r, v)` in the training data and the weight `v_weight` (lambda) of `v`.
    pub fn new(dt: f64, steps: usize, sd: [f64; 2], v_weight: f64) -> Self {
        Self::weighted(dt, steps, sd, [1.0, v_weight])
    }
}

impl<const S: usize, K> Objective<S, K> {
    /// The objective for rollouts over `steps` data intervals of `dt` of a state with spreads
    /// `sd` in the training data, variable `k` weighted by `lambda[k]` in units of its spread
    /// (the weights are normalised to sum to one).
    pub fn weighted(dt: f64, steps: usize, sd: [f64; S], lambda: [f64; S]) -> Self {
        let k = steps.max(1) as f64;
        let denom = lambda.iter().sum::<f64>() * k;
        Self {
            dt,
            steps,
            substeps: 1,
            weight: core::array::from_fn(|i| lambda[i] / (sd[i] * sd[i] * denom)),
            rate_floor: None,
            base: None,
        }
    }

    /// Trains a universal differential equation: the field is `known + network`, and the
    /// network learns only the difference.
    pub fn with_base(mut self, known: K) -> Self {
        self.base = Some(known);
        self
    }

    /// Takes `s >= 1` Heun steps of `dt / s` per data interval (the loss is still taken at the
    /// data's samples): a field that is accurate as an ODE, not only as a map over `dt`.
    pub fn with_substeps(mut self, s: usize) -> Self {
        self.substeps = s.max(1);
        self
    }

    /// Emphasises low-rate states (the first state variable): r errors weighted by `(r_mean + r0) / (r + r0)` at observed
    /// rate `r` (`r0 > 0`, same unit as r; `r_mean` the training data's mean rate).
    pub fn with_rate_floor(mut self, r0: f64, r_mean: f64) -> Self {
        self.rate_floor = Some((r0, r_mean));
        self
    }

    /// The weight of the squared r error at a sample whose observed rate is `r_obs`.
    #[inline]
    fn r_weight(&self, r_obs: f64) -> f64 {
        match self.rate_floor {
            Some((r0, mean)) => self.weight[0] * (mean + r0) / (r_obs.max(0.0) + r0),
            None => self.weight[0],
        }
    }
}

/// The drive at substep boundary `j` of `sub` between samples `ia` and `ib`: linear, and
/// exactly `ia` at 0 and `ib` at `sub` (so one substep uses the samples themselves).
#[inline]
pub fn drive_at(ia: f64, ib: f64, j: usize, sub: usize) -> f64 {
    match j {
        0 => ia,
        j if j == sub => ib,
        j => ia + (ib - ia) * (j as f64 / sub as f64),
    }
}

/// A rollout window: trajectory index and start sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Index of the trajectory.
    pub run: u32,
    /// First sample (the observed initial state).
    pub start: u32,
}

/// Every window of `steps` steps in `data`, starting every `stride` samples, in order.
pub fn windows<T: Samples>(data: &[T], steps: usize, stride: usize) -> Vec<Window> {
    let mut out = Vec::new();
    for (run, tr) in data.iter().enumerate() {
        let mut s = 0;
        while s + steps < tr.len() {
            out.push(Window {
                run: run as u32,
                start: s as u32,
            });
            s += stride.max(1);
        }
    }
    out
}

/// Per-Heun-step record of a rollout for the backward pass (scratch of [`window_loss`]).
#[derive(Clone, Copy, Debug)]
pub struct Step<const H: usize = 6, const I: usize = 6, const S: usize = 2> {
    k1: Eval<H, I, S>,
    k2: Eval<H, I, S>,
    /// State after the step.
    x: [f64; S],
}

/// Substep `j` of `sub` Heun steps of size `h` across a data interval whose drive goes from
/// `ia` to `ib` (linearly, [`drive_at`]), from `x`, with the field `f` of the inputs
/// `u = (r, v, eta, p, J, I)` (in general the state in `u[..S]`, the drive in `u[I - 1]`, the
/// rest as given; `u` is overwritten): the two stages (as `f` returns them, `deriv` reading
/// their derivatives) and the new state. The one Heun step of the trainer: rollouts
/// ([`window_loss`]) and free runs ([`super::free_run`]) both take it.
#[inline]
pub fn heun_substep<E, const I: usize, const S: usize>(
    x: [f64; S],
    u: &mut [f64; I],
    (ia, ib): (f64, f64),
    (j, sub): (usize, usize),
    h: f64,
    f: impl Fn(&[f64; I]) -> E,
    deriv: impl Fn(&E) -> [f64; S],
) -> (E, E, [f64; S]) {
    let half = 0.5 * h;
    u[..S].copy_from_slice(&x);
    u[I - 1] = drive_at(ia, ib, j, sub);
    let k1 = f(u);
    let d1 = deriv(&k1);
    for k in 0..S {
        u[k] = x[k] + h * d1[k];
    }
    u[I - 1] = drive_at(ia, ib, j + 1, sub);
    let k2 = f(u);
    let d2 = deriv(&k2);
    let next = core::array::from_fn(|k| x[k] + half * (d1[k] + d2[k]));
    (k1, k2, next)
}

/// Loss of one window; with `grad`, adds `scale * dL/dweights` into it. `scratch` is reused
/// between calls.
// Index loops over the state variables read as the loss's sums.
#[allow(clippy::needless_range_loop)]
pub fn window_loss<const H: usize, const I: usize, const S: usize, K, T>(
    net: &Net<H, I, S>,
    norm: &Normalisation<f64, I, S>,
    obj: &Objective<S, K>,
    tr: &T,
    start: usize,
    grad: Option<(&mut Net<H, I, S>, f64)>,
    scratch: &mut Vec<Step<H, I, S>>,
) -> f64
where
    K: KnownField<I, S>,
    T: Series<I, S>,
{
    let (k, sub) = (obj.steps, obj.substeps);
    // With one substep, exactly the operations of a plain Heun step of dt (h = dt, the drive
    // at the interval's ends), so models trained before substeps existed are reproduced.
    let h = obj.dt / sub as f64;
    let half = 0.5 * h;
    scratch.clear();
    let mut x = tr.state(start);
    let mut u = tr.inputs(start);
    let mut loss = 0.0;
    for n in 0..k {
        let (ia, ib) = (tr.drive(start + n), tr.drive(start + n + 1));
        for j in 0..sub {
            let (k1, k2, next) = heun_substep(
                x,
                &mut u,
                (ia, ib),
                (j, sub),
                h,
                |u| eval_with(net, norm, obj.base.as_ref(), u),
                |e| e.f,
            );
            x = next;
            scratch.push(Step { k1, k2, x });
        }
        let obs = tr.state(start + n + 1);
        let e: [f64; S] = core::array::from_fn(|i| x[i] - obs[i]);
        let mut term = obj.r_weight(obs[0]) * e[0] * e[0];
        for i in 1..S {
            term += obj.weight[i] * e[i] * e[i];
        }
        loss += term;
    }
    if let Some((grad, scale)) = grad {
        let mut g = [0.0; S];
        for n in (0..k).rev() {
            let obs = tr.state(start + n + 1);
            let x = scratch[(n + 1) * sub - 1].x;
            // Loss at the end of interval n.
            g[0] += scale * 2.0 * obj.r_weight(obs[0]) * (x[0] - obs[0]);
            for i in 1..S {
                g[i] += scale * 2.0 * obj.weight[i] * (x[i] - obs[i]);
            }
            for st in scratch[n * sub..(n + 1) * sub].iter().rev() {
                // x' = x + half (k1 + k2), k2 = f(x + h k1), k1 = f(x).
                let gk: [f64; S] = core::array::from_fn(|i| half * g[i]);
                let base = obj.base.as_ref();
                let gxp = backward_with(net, norm, base, &st.k2, &gk, grad);
                let gk1: [f64; S] = core::array::from_fn(|i| gk[i] + h * gxp[i]);
                let gx1 = backward_with(net, norm, base, &st.k1, &gk1, grad);
                g = core::array::from_fn(|i| g[i] + gxp[i] + gx1[i]);
            }
        }
    }
    loss
}

/// Mean loss over `windows` and, with `want_grad`, its gradient (otherwise the zero network).
/// Parallel over fixed chunks of windows, reduced in order: the result does not depend on the
/// number of threads.
pub fn batch_loss<const H: usize, const I: usize, const S: usize, K, T>(
    net: &Net<H, I, S>,
    norm: &Normalisation<f64, I, S>,
    obj: &Objective<S, K>,
    data: &[T],
    windows: &[Window],
    want_grad: bool,
) -> (f64, Net<H, I, S>)
where
    K: KnownField<I, S>,
    T: Series<I, S>,
{
    let zero = Net::<H, I, S>::splat(0.0);
    if windows.is_empty() {
        return (f64::NAN, zero);
    }
    let scale = 1.0 / windows.len() as f64;
    let parts: Vec<(f64, Net<H, I, S>)> = windows
        .par_chunks(CHUNK)
        .map(|chunk| {
            let mut grad = zero;
            let mut loss = 0.0;
            let mut scratch = Vec::with_capacity(obj.steps * obj.substeps);
            for w in chunk {
                let g = want_grad.then_some((&mut grad, scale));
                loss += window_loss(
                    net,
                    norm,
                    obj,
                    &data[w.run as usize],
                    w.start as usize,
                    g,
                    &mut scratch,
                );
            }
            (loss, grad)
        })
        .collect();
    let (loss, grad) = add_in_order(&parts);
    (loss * scale, grad)
}

/// The sums of per-chunk `(loss, gradient)` parts, added in the parts' order (so a parallel
/// reduction gives the same bits for every number of threads).
pub fn add_in_order<const H: usize, const I: usize, const S: usize>(
    parts: &[(f64, Net<H, I, S>)],
) -> (f64, Net<H, I, S>) {
    let mut loss = 0.0;
    let mut grad = Net::<H, I, S>::splat(0.0);
    for (l, g) in parts {
        loss += l;
        for (a, b) in grad.iter_mut().zip(g.iter()) {
            *a += b;
        }
    }
    (loss, grad)
}

/// Adam (Kingma and Ba 2015) with beta1 = 0.9, beta2 = 0.999, eps = 1e-8 and bias correction.
#[derive(Clone, Debug)]
pub struct Adam {
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl Adam {
    const BETA1: f64 = 0.9;
    const BETA2: f64 = 0.999;
    const EPS: f64 = 1e-8;

    /// Zero moments for `n` weights.
    pub fn new(n: usize) -> Self {
        Self {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// One update of `net` with gradient `grad` and learning rate `lr`.
    pub fn step<const H: usize, const I: usize, const S: usize>(
        &mut self,
        net: &mut Net<H, I, S>,
        grad: &Net<H, I, S>,
        lr: f64,
    ) {
        self.step_weights(net.iter_mut(), grad.iter(), lr);
    }

    /// One update of the weights `w` with gradient `g` (the same order, as many as
    /// [`Adam::new`] was given) and learning rate `lr`; PyTorch's Adam without weight decay.
    pub fn step_weights<'a>(
        &mut self,
        w: impl Iterator<Item = &'a mut f64>,
        g: impl Iterator<Item = f64>,
        lr: f64,
    ) {
        self.t = self.t.saturating_add(1);
        let c1 = 1.0 - Self::BETA1.powi(self.t);
        let c2 = 1.0 - Self::BETA2.powi(self.t);
        for (((w, g), m), v) in w.zip(g).zip(&mut self.m).zip(&mut self.v) {
            *m = Self::BETA1 * *m + (1.0 - Self::BETA1) * g;
            *v = Self::BETA2 * *v + (1.0 - Self::BETA2) * g * g;
            *w -= lr * (*m / c1) / ((*v / c2).sqrt() + Self::EPS);
        }
    }
}
