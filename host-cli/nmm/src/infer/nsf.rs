//! A conditional neural spline flow (Durkan et al. 2019), built as sbi's `build_nsf` builds it
//! (nflows' `PiecewiseRationalQuadraticCouplingTransform` with linear tails, each followed by
//! an `LULinear` when there is more than one parameter), with its log-density gradient written
//! out by hand like the MAF's ([`super::maf`], which says why not a tensor crate).
//!
//! Transform `t` maps `x` (dimension `D`) to the next variable in two steps.
//!
//! 1. **Coupling.** The features split alternately (sbi's `create_alternating_binary_mask`):
//!    for even `t` the features `0, 2, 4, ...` are transformed and the others pass unchanged;
//!    for odd `t` the reverse. A residual net (nflows' `ResidualNet`, ReLU, `blocks` residual
//!    blocks of width `hidden`, the context gating each block through a GLU) maps the
//!    unchanged features and the context `c` (the z-scored observation) to `3K - 1` numbers
//!    per transformed feature: `K` bin widths and `K` heights (softmax of the outputs over
//!    `sqrt(hidden)`, floors of 1e-3) and the `K - 1` interior knot slopes (softplus plus
//!    1e-3), for a monotone rational-quadratic spline on `[-B, B]` with slope 1 at both ends;
//!    outside `[-B, B]` the transform is the identity (linear tails). `K` is `bins` (sbi: 10),
//!    `B` is `tail_bound` (sbi: 3).
//!
//!    ```text
//!    h  = Wx x_id + Wc c + b                      (x_id: the unchanged features)
//!    h += (Wb relu(Wa relu(h) + ba) + bb) * sigmoid(Wg c + bg)     (per block)
//!    spline parameters = Wf h + bf
//!    ```
//!
//!    With one parameter nothing is unchanged and the net sees only the context (sbi uses a
//!    plain one-hidden-layer net there, `ContextSplineMap`; here it is the same residual net).
//! 2. **LU.** `y = L U x + b` with `L` unit lower-triangular and `U` upper-triangular with
//!    diagonal `softplus(u_ii) + 1e-3`, starting at the identity (nflows' `LULinear` with
//!    `identity_init`); left out when `D = 1`.
//!
//! After `T` transforms the base is a standard normal, so
//! `log q(x | c) = log N(y; 0, I) + sum of the log-derivatives of the splines + sum_t sum_i
//! log U_ii`.
//!
//! Sampling inverts each transform in one pass: the unchanged features give the spline
//! parameters, and each spline is inverted in closed form (a quadratic per bin).

use super::maf::{
    Float, Shape, add_col_sums, affine, base_log_prob, sigmoid, softplus, view, view_mut,
};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use nmm_core::rng::{Xoshiro256PlusPlus, uniform_open0};
use serde::{Deserialize, Serialize};

/// Smallest bin width and height, as fractions of `2B` (nflows' `DEFAULT_MIN_BIN_WIDTH`).
const MIN_BIN: f64 = 1e-3;
/// Smallest knot slope (nflows' `DEFAULT_MIN_DERIVATIVE`).
const MIN_SLOPE: f64 = 1e-3;
/// Added to softplus on the LU diagonal (nflows' `LULinear` `eps`).
const LU_EPS: f64 = 1e-3;
/// Added to the last knot when locating a bin (nflows' `searchsorted` `eps`).
const BIN_EPS: f64 = 1e-6;
/// The tail bounds accepted (standardised units): far beyond any use (sbi: 3), and inside
/// the range where `2B` and the knots stay finite and distinct in f32.
pub const TAIL_BOUNDS: (f64, f64) = (1e-3, 1e3);

/// The spline's sizes (the rest of a flow's sizes are its [`Shape`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spline {
    /// Bins of each rational-quadratic spline (sbi: 10).
    pub bins: usize,
    /// Residual blocks of each conditioner (sbi: 2).
    pub blocks: usize,
    /// The splines act on `[-tail_bound, tail_bound]` (standardised units; sbi: 3); outside it
    /// each transform is the identity.
    pub tail_bound: f64,
}

impl Default for Spline {
    fn default() -> Self {
        Self {
            bins: 10,
            blocks: 2,
            tail_bound: 3.0,
        }
    }
}

/// Offsets of one transform's weights in the flat parameter vector (row-major matrices, one
/// row per output unit), and its feature split.
#[derive(Clone, Debug)]
struct Off {
    /// Features the spline transforms (`x_tf`).
    tf: Vec<usize>,
    /// Features that pass unchanged and feed the conditioner (`x_id`).
    id: Vec<usize>,
    /// `Wx` (`H x |id|`), `Wc` (`H x C`), `b` (`H`).
    wx: usize,
    wc: usize,
    b: usize,
    /// Start of the residual blocks, each `Wa` (`H x H`), `ba`, `Wb` (`H x H`), `bb`, `Wg`
    /// (`H x C`), `bg`.
    blocks: usize,
    /// `Wf` (`|tf| (3K - 1) x H`; the rows of feature `tf[j]` are `j (3K-1) ..`: widths,
    /// heights, slopes), `bf`.
    wf: usize,
    bf: usize,
    /// The LU matrix (`D x D`: below the diagonal `L`, above it `U`, on it `u_ii`) and its
    /// bias `b` (`D`); absent (0 weights) when `D = 1`.
    lu: usize,
    lb: usize,
    /// One past the last weight.
    end: usize,
}

/// Offsets of block `k`'s weights from `Off::blocks`.
#[derive(Clone, Copy)]
struct BlockOff {
    wa: usize,
    ba: usize,
    wb: usize,
    bb: usize,
    wg: usize,
    bg: usize,
}

fn layout(shape: &Shape, spline: &Spline) -> Vec<Off> {
    let (d, c, h) = (shape.dim, shape.context, shape.hidden);
    let m = 3 * spline.bins - 1;
    let mut offs = Vec::with_capacity(shape.transforms);
    let mut at = 0;
    for t in 0..shape.transforms {
        let first = t % 2;
        let tf: Vec<usize> = if d == 1 {
            vec![0]
        } else {
            (first..d).step_by(2).collect()
        };
        let id: Vec<usize> = (0..d).filter(|i| !tf.contains(i)).collect();
        let wx = at;
        let wc = wx + h * id.len();
        let b = wc + h * c;
        let blocks = b + h;
        let wf = blocks + spline.blocks * (2 * h * h + h * c + 3 * h);
        let bf = wf + tf.len() * m * h;
        let lu = bf + tf.len() * m;
        let lu_len = if d > 1 { d * d + d } else { 0 };
        let lb = lu + if d > 1 { d * d } else { 0 };
        let end = lu + lu_len;
        offs.push(Off {
            tf,
            id,
            wx,
            wc,
            b,
            blocks,
            wf,
            bf,
            lu,
            lb,
            end,
        });
        at = end;
    }
    offs
}

impl Off {
    fn block(&self, k: usize, h: usize, c: usize) -> BlockOff {
        let wa = self.blocks + k * (2 * h * h + h * c + 3 * h);
        let ba = wa + h * h;
        let wb = ba + h;
        let bb = wb + h * h;
        let wg = bb + h;
        let bg = wg + h * c;
        BlockOff {
            wa,
            ba,
            wb,
            bb,
            wg,
            bg,
        }
    }
}

/// The flow: sizes, layout and weights.
#[derive(Clone, Debug)]
pub struct Nsf<T: Float = f64> {
    shape: Shape,
    spline: Spline,
    offs: Vec<Off>,
    /// Flat weights, transform by transform in the order of `Off`.
    pub(crate) params: Vec<T>,
}

/// The knots of one spline, with the softmaxes its gradient needs.
struct Knots<T> {
    /// Knot positions `x_0 = -B < ... < x_K = B`.
    cw: Vec<T>,
    /// Knot values `y_0 = -B < ... < y_K = B`.
    ch: Vec<T>,
    /// Slopes at the knots (`d_0 = d_K = 1`).
    d: Vec<T>,
    /// Softmaxes of the width and height outputs.
    sw: Vec<T>,
    sh: Vec<T>,
    /// Scratch for the gradient onto a softmax.
    gs: Vec<T>,
}

/// Softmax of `raw * scale` into `out`.
fn softmax<T: Float>(raw: &[T], scale: T, out: &mut [T]) {
    let top = raw.iter().fold(T::neg_infinity(), |a, &v| a.max(v * scale));
    let mut sum = T::zero();
    for (o, &r) in out.iter_mut().zip(raw) {
        *o = (r * scale - top).exp();
        sum += *o;
    }
    out.iter_mut().for_each(|o| *o = *o / sum);
}

/// Knot positions from a softmax, as nflows computes them: cumulative sums of the floored
/// widths, scaled to `[-B, B]`, the ends set exactly.
fn knots_from<T: Float>(s: &[T], bound: T, out: &mut [T]) {
    let k = s.len();
    let floor = T::cast(MIN_BIN);
    let spread = T::one() - floor * T::cast(k as f64);
    let two_b = bound + bound;
    let mut acc = T::zero();
    out[0] = -bound;
    for i in 0..k - 1 {
        acc += floor + spread * s[i];
        out[i + 1] = two_b * acc - bound;
    }
    out[k] = bound;
}

impl<T: Float> Knots<T> {
    fn new(k: usize) -> Self {
        Self {
            cw: vec![T::zero(); k + 1],
            ch: vec![T::zero(); k + 1],
            d: vec![T::one(); k + 1],
            sw: vec![T::zero(); k],
            sh: vec![T::zero(); k],
            gs: vec![T::zero(); k],
        }
    }

    /// The knots from one feature's `3K - 1` conditioner outputs.
    fn set(&mut self, raw: &[T], bound: T, scale: T) {
        let k = self.sw.len();
        softmax(&raw[..k], scale, &mut self.sw);
        softmax(&raw[k..2 * k], scale, &mut self.sh);
        knots_from(&self.sw, bound, &mut self.cw);
        knots_from(&self.sh, bound, &mut self.ch);
        for i in 1..k {
            self.d[i] = T::cast(MIN_SLOPE) + softplus(raw[2 * k + i - 1]);
        }
    }
}

/// The bin of `v` among the knots `loc` (nflows' `searchsorted`: the last knot moved up by
/// 1e-6), clamped to `0..K`.
fn bin<T: Float>(loc: &[T], v: T) -> usize {
    let k = loc.len() - 1;
    let last = loc[k] + T::cast(BIN_EPS);
    let count = loc[..k].iter().filter(|&&l| v >= l).count() + usize::from(v >= last);
    count.saturating_sub(1).min(k - 1)
}

/// The pieces of the spline inside bin `k` at `x`.
struct Piece<T> {
    k: usize,
    w: T,
    h: T,
    s: T,
    xi: T,
    d0: T,
    d1: T,
}

impl<T: Float> Piece<T> {
    fn at(kn: &Knots<T>, k: usize, x: T) -> Self {
        let w = kn.cw[k + 1] - kn.cw[k];
        let h = kn.ch[k + 1] - kn.ch[k];
        Self {
            k,
            w,
            h,
            s: h / w,
            xi: (x - kn.cw[k]) / w,
            d0: kn.d[k],
            d1: kn.d[k + 1],
        }
    }
}

/// The spline at `x` and its log-derivative (`x` inside `[-B, B]`).
fn rq_forward<T: Float>(kn: &Knots<T>, x: T) -> (T, T) {
    let p = Piece::at(kn, bin(&kn.cw, x), x);
    let one = T::one();
    let two = one + one;
    let t = p.xi * (one - p.xi);
    let num = p.h * (p.s * p.xi * p.xi + p.d0 * t);
    let den = p.s + (p.d0 + p.d1 - two * p.s) * t;
    let y = kn.ch[p.k] + num / den;
    let dnum =
        p.s * p.s * (p.d1 * p.xi * p.xi + two * p.s * t + p.d0 * (one - p.xi) * (one - p.xi));
    (y, dnum.ln() - two * den.ln())
}

/// The inverse spline at `y` (inside `[-B, B]`): the root in `[0, 1]` of the bin's quadratic.
fn rq_inverse<T: Float>(kn: &Knots<T>, y: T) -> T {
    let k = bin(&kn.ch, y);
    let (w, h) = (kn.cw[k + 1] - kn.cw[k], kn.ch[k + 1] - kn.ch[k]);
    let s = h / w;
    let (d0, d1) = (kn.d[k], kn.d[k + 1]);
    let two = T::one() + T::one();
    let dy = y - kn.ch[k];
    let c2 = d0 + d1 - two * s;
    let a = dy * c2 + h * (s - d0);
    let b = h * d0 - dy * c2;
    let c = -s * dy;
    // Non-negative in exact arithmetic for a monotone spline; rounding can take it below 0.
    let disc = (b * b - two * two * a * c).max(T::zero());
    let root = (two * c) / (-b - disc.sqrt());
    root * w + kn.cw[k]
}

/// Back through the spline at `x` (inside `[-B, B]`): with `gy = dL/dy` and `gl = dL/d(log
/// derivative)`, adds `dL/d(raw outputs)` to `graw` (`3K - 1`) and returns `dL/dx`.
#[allow(clippy::too_many_arguments)] // the spline's inputs, its scales and two gradients
fn rq_backward<T: Float>(
    kn: &mut Knots<T>,
    raw: &[T],
    x: T,
    gy: T,
    gl: T,
    bound: T,
    scale: T,
    graw: &mut [T],
) -> T {
    let kb = kn.sw.len();
    let p = Piece::at(kn, bin(&kn.cw, x), x);
    let (one, zero) = (T::one(), T::zero());
    let two = one + one;
    let (s, xi, h, w, d0, d1) = (p.s, p.xi, p.h, p.w, p.d0, p.d1);
    let t = xi * (one - xi);
    let c = d0 + d1 - two * s;
    let a = s * xi * xi + d0 * t;
    let den = s + c * t;
    let den2 = den * den;
    let q = d1 * xi * xi + two * s * t + d0 * (one - xi) * (one - xi);
    let dt = one - two * xi;
    // y = y_k + h a / den; log-derivative = 2 ln s + ln q - 2 ln den.
    let dy_dxi = h * ((two * s * xi + d0 * dt) * den - a * c * dt) / den2;
    let dy_ds = h * (xi * xi * den - a * (one - two * t)) / den2;
    let dy_dd0 = h * t * (den - a) / den2;
    let dy_dd1 = -h * a * t / den2;
    let dl_ds = two / s + two * t / q - two * (one - two * t) / den;
    let dl_dd0 = (one - xi) * (one - xi) / q - two * t / den;
    let dl_dd1 = xi * xi / q - two * t / den;
    let dl_dxi = (two * d1 * xi + two * s * dt - two * d0 * (one - xi)) / q - two * c * dt / den;
    let g_xi = gy * dy_dxi + gl * dl_dxi;
    let g_s = gy * dy_ds + gl * dl_ds;
    // s = h / w and xi = (x - x_k) / w.
    let g_h = gy * a / den + g_s / w;
    let g_w = -(g_s * s + g_xi * xi) / w;
    let g_x = g_xi / w;
    // Onto the knots: w = x_{k+1} - x_k, h = y_{k+1} - y_k, x_k through xi, y_k directly.
    let k = p.k;
    let mut gcw = [zero; 2];
    let mut gch = [zero; 2];
    gcw[1] = g_w;
    gcw[0] = -g_w - g_xi / w;
    gch[1] = g_h;
    gch[0] = gy - g_h;
    // Knot j (0 < j < K) is -B + 2B sum_{i<j} (floor + spread s_i): onto the softmax, then
    // its logits (raw * scale).
    let spread = one - T::cast(MIN_BIN) * T::cast(kb as f64);
    for (g, off) in [(gcw, 0), (gch, kb)] {
        let sm = if off == 0 { &kn.sw } else { &kn.sh };
        // dL/ds_i = 2B spread * (sum of the knot gradients at j > i, j < K).
        let gs = &mut kn.gs;
        gs.iter_mut().for_each(|v| *v = zero);
        for (jj, &gj) in g.iter().enumerate() {
            let j = k + jj;
            if j == 0 || j >= kb {
                continue;
            }
            for gsi in gs.iter_mut().take(j) {
                *gsi += (bound + bound) * spread * gj;
            }
        }
        let dot = gs
            .iter()
            .zip(sm.iter())
            .fold(zero, |acc, (&a, &b)| acc + a * b);
        for i in 0..kb {
            graw[off + i] += sm[i] * (gs[i] - dot) * scale;
        }
    }
    // Interior slopes d_j = 1e-3 + softplus(raw_{2K + j - 1}).
    for (j, gd) in [
        (k, gy * dy_dd0 + gl * dl_dd0),
        (k + 1, gy * dy_dd1 + gl * dl_dd1),
    ] {
        if j > 0 && j < kb {
            graw[2 * kb + j - 1] += gd * sigmoid(raw[2 * kb + j - 1]);
        }
    }
    g_x
}

/// What the backward pass keeps of one transform.
struct Layer<T> {
    /// Input of the coupling (`n x D`).
    x: Array2<T>,
    /// The unchanged features (`n x |id|`).
    xid: Array2<T>,
    /// The net's state entering each block, and the final one (`blocks + 1` of `n x H`).
    hs: Vec<Array2<T>>,
    /// Each block's inner pre-activation (`n x H`).
    vs: Vec<Array2<T>>,
    /// Each block's output before the gate (`n x H`).
    qs: Vec<Array2<T>>,
    /// Each block's gate (`n x H`).
    gates: Vec<Array2<T>>,
    /// The spline parameters (`n x |tf| (3K - 1)`).
    out: Array2<T>,
    /// Output of the coupling, input of the LU (`n x D`).
    z: Array2<T>,
}

/// The net's intermediate values (see [`Layer`]).
type NetOut<T> = (
    Vec<Array2<T>>,
    Vec<Array2<T>>,
    Vec<Array2<T>>,
    Vec<Array2<T>>,
    Array2<T>,
);

fn relu<T: Float>(v: T) -> T {
    v.max(T::zero())
}

impl<T: Float> Nsf<T> {
    /// A new flow with nn.Linear's default initialisation (uniform in `±1/sqrt(fan_in)`), each
    /// block's last layer uniform in `±1e-3` (nflows' `zero_initialization`), and every LU at
    /// the identity, all from `rng`.
    pub fn new(shape: Shape, spline: Spline, rng: &mut Xoshiro256PlusPlus) -> Self {
        let offs = layout(&shape, &spline);
        let (d, c, h) = (shape.dim, shape.context, shape.hidden);
        let m = 3 * spline.bins - 1;
        let len = offs.last().map_or(0, |o| o.end);
        let mut params = vec![T::zero(); len];
        let mut fill = |off: usize, n: usize, bound: f64| {
            for p in &mut params[off..off + n] {
                let u = 1.0 - uniform_open0(rng); // [0, 1)
                *p = T::cast((2.0 * u - 1.0) * bound);
            }
        };
        let fan = |f: usize| 1.0 / (f.max(1) as f64).sqrt();
        for o in &offs {
            let (di, dt) = (o.id.len(), o.tf.len());
            fill(o.wx, h * di, fan(di + c));
            fill(o.wc, h * c, fan(di + c));
            fill(o.b, h, fan(di + c));
            for k in 0..spline.blocks {
                let b = o.block(k, h, c);
                fill(b.wa, h * h, fan(h));
                fill(b.ba, h, fan(h));
                fill(b.wb, h * h, 1e-3);
                fill(b.bb, h, 1e-3);
                fill(b.wg, h * c, fan(c));
                fill(b.bg, h, fan(c));
            }
            fill(o.wf, dt * m * h, fan(h));
            fill(o.bf, dt * m, fan(h));
        }
        // LU at the identity: softplus(u_ii) + eps = 1.
        let diag = ((1.0 - LU_EPS).exp() - 1.0).ln();
        if d > 1 {
            for o in &offs {
                for i in 0..d {
                    params[o.lu + i * d + i] = T::cast(diag);
                }
            }
        }
        Self {
            shape,
            spline,
            offs,
            params,
        }
    }

    /// Weights a flow of these sizes has (`None` when the count overflows or exceeds 2^32).
    pub fn len_for(shape: &Shape, spline: &Spline) -> Option<usize> {
        // Each size under 2^32 first, so that the products below fit in u128.
        let sizes = [
            shape.dim,
            shape.context,
            shape.hidden,
            shape.transforms,
            spline.bins,
            spline.blocks,
        ];
        if sizes.iter().any(|&v| v as u128 >= 1 << 32) {
            return None;
        }
        let (d, c, h, k) = (
            shape.dim as u128,
            shape.context as u128,
            shape.hidden as u128,
            spline.bins as u128,
        );
        let nb = spline.blocks as u128;
        let m = (3 * k).checked_sub(1)?;
        // Under 2^32 each, these products stay below 2^100: no overflow in u128.
        let per =
            h * d + h * c + h + nb * (2 * h * h + h * c + 3 * h) + d * m * h + d * m + d * d + d;
        if per > 1 << 32 || per * shape.transforms as u128 > 1 << 32 {
            return None;
        }
        Some(layout(shape, spline).last().map_or(0, |o| o.end))
    }

    /// A flow from stored weights; `None` when the sizes are invalid or do not match, or a
    /// weight is not finite.
    pub fn from_parts(shape: Shape, spline: Spline, params: Vec<T>) -> Option<Self> {
        if shape.dim == 0
            || shape.hidden == 0
            || shape.transforms == 0
            || !(2..=64).contains(&spline.bins)
            || !(TAIL_BOUNDS.0..=TAIL_BOUNDS.1).contains(&spline.tail_bound)
        {
            return None;
        }
        if Self::len_for(&shape, &spline)? != params.len() || params.iter().any(|w| !w.is_finite())
        {
            return None;
        }
        Some(Self {
            offs: layout(&shape, &spline),
            shape,
            spline,
            params,
        })
    }

    /// The same flow computing in another precision (weights rounded to nearest).
    pub fn cast<U: Float>(&self) -> Nsf<U> {
        Nsf {
            shape: self.shape,
            spline: self.spline,
            offs: self.offs.clone(),
            params: self.params.iter().map(|w| U::cast(w.wide())).collect(),
        }
    }

    /// Sets the weights from f64 values (rounded to nearest), in the layout of [`Nsf::params`].
    pub(crate) fn set_params(&mut self, w: &[f64]) {
        for (p, &v) in self.params.iter_mut().zip(w) {
            *p = T::cast(v);
        }
    }

    /// The sizes.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The spline's sizes.
    pub fn spline(&self) -> Spline {
        self.spline
    }

    /// The flat weights.
    pub fn params(&self) -> &[T] {
        &self.params
    }

    fn scale(&self) -> T {
        T::cast(1.0 / (self.shape.hidden as f64).sqrt())
    }

    /// The conditioner of transform `t` on the unchanged features `xid` (`n x |id|`) and the
    /// context (`n x C` or `1 x C`).
    fn net(&self, t: usize, xid: ArrayView2<T>, ctx: ArrayView2<T>) -> NetOut<T> {
        let (c, h) = (self.shape.context, self.shape.hidden);
        let o = &self.offs[t];
        let p = &self.params;
        let n = xid.nrows();
        let cb = affine(ctx, view(p, o.wc, h, c), ArrayView1::from(&p[o.b..o.b + h]));
        let mut cur = Array2::zeros((n, h));
        cur.assign(&cb.broadcast((n, h)).expect("1 x H or n x H"));
        if !o.id.is_empty() {
            let wx = view(p, o.wx, h, o.id.len());
            general_mat_mul(T::one(), &xid, &wx.t(), T::one(), &mut cur);
        }
        let nb = self.spline.blocks;
        let (mut hs, mut vs, mut qs, mut gates) = (
            Vec::with_capacity(nb + 1),
            Vec::with_capacity(nb),
            Vec::with_capacity(nb),
            Vec::with_capacity(nb),
        );
        for k in 0..nb {
            let b = o.block(k, h, c);
            let u = cur.mapv(relu);
            let v = affine(
                u.view(),
                view(p, b.wa, h, h),
                ArrayView1::from(&p[b.ba..b.ba + h]),
            );
            let r = v.mapv(relu);
            let q = affine(
                r.view(),
                view(p, b.wb, h, h),
                ArrayView1::from(&p[b.bb..b.bb + h]),
            );
            let mut gate = affine(
                ctx,
                view(p, b.wg, h, c),
                ArrayView1::from(&p[b.bg..b.bg + h]),
            );
            gate.mapv_inplace(sigmoid);
            let gate = gate.broadcast((n, h)).expect("1 x H or n x H").to_owned();
            let next = &cur + &(&q * &gate);
            hs.push(std::mem::replace(&mut cur, next));
            vs.push(v);
            qs.push(q);
            gates.push(gate);
        }
        let m = 3 * self.spline.bins - 1;
        let rows = o.tf.len() * m;
        let out = affine(
            cur.view(),
            view(p, o.wf, rows, h),
            ArrayView1::from(&p[o.bf..o.bf + rows]),
        );
        hs.push(cur);
        (hs, vs, qs, gates, out)
    }

    /// `W = L U` of transform `t`, and the log of `U`'s diagonal.
    fn lu(&self, t: usize) -> (Array2<T>, Vec<T>) {
        let d = self.shape.dim;
        let o = &self.offs[t];
        let a = view(&self.params, o.lu, d, d);
        let eps = T::cast(LU_EPS);
        let l = Array2::from_shape_fn((d, d), |(i, j)| match i.cmp(&j) {
            std::cmp::Ordering::Greater => a[[i, j]],
            std::cmp::Ordering::Equal => T::one(),
            std::cmp::Ordering::Less => T::zero(),
        });
        let u = Array2::from_shape_fn((d, d), |(i, j)| match i.cmp(&j) {
            std::cmp::Ordering::Less => a[[i, j]],
            std::cmp::Ordering::Equal => softplus(a[[i, i]]) + eps,
            std::cmp::Ordering::Greater => T::zero(),
        });
        let logdiag = (0..d).map(|i| u[[i, i]].ln()).collect();
        (l.dot(&u), logdiag)
    }

    /// Runs `x` (rows) through every transform: the base variable and, per row, the log
    /// absolute Jacobian; with `keep`, the layers for the backward pass.
    fn forward(
        &self,
        x: ArrayView2<T>,
        ctx: ArrayView2<T>,
        mut keep: Option<&mut Vec<Layer<T>>>,
    ) -> (Array2<T>, Array1<f64>) {
        let (n, d) = (x.nrows(), self.shape.dim);
        let m = 3 * self.spline.bins - 1;
        let bound = T::cast(self.spline.tail_bound);
        let scale = self.scale();
        let mut kn = Knots::new(self.spline.bins);
        let mut cur = x.to_owned();
        let mut logdet = Array1::<f64>::zeros(n);
        for t in 0..self.shape.transforms {
            let o = &self.offs[t];
            let xid = cur.select(Axis(1), &o.id);
            let (hs, vs, qs, gates, out) = self.net(t, xid.view(), ctx);
            let mut z = cur.clone();
            let flat = out.as_slice().expect("standard layout");
            let rows = o.tf.len() * m;
            for r in 0..n {
                let mut ld = 0.0;
                for (j, &f) in o.tf.iter().enumerate() {
                    let v = cur[[r, f]];
                    if v.abs() <= bound {
                        let raw = &flat[r * rows + j * m..r * rows + (j + 1) * m];
                        kn.set(raw, bound, scale);
                        let (y, lad) = rq_forward(&kn, v);
                        z[[r, f]] = y;
                        ld += lad.wide();
                    }
                }
                logdet[r] += ld;
            }
            let next = if d > 1 {
                let (w, logdiag) = self.lu(t);
                let b = ArrayView1::from(&self.params[o.lb..o.lb + d]);
                let ld: f64 = logdiag.iter().map(|v| v.wide()).sum();
                logdet.mapv_inplace(|v| v + ld);
                affine(z.view(), w.view(), b)
            } else {
                z.clone()
            };
            let prev = std::mem::replace(&mut cur, next);
            if let Some(k) = keep.as_deref_mut() {
                k.push(Layer {
                    x: prev,
                    xid,
                    hs,
                    vs,
                    qs,
                    gates,
                    out,
                    z,
                });
            }
        }
        (cur, logdet)
    }

    /// `log q(x | c)` for each row of `x` (`n x D`), with `ctx` `n x C` or `1 x C`.
    pub fn log_prob(&self, x: ArrayView2<T>, ctx: ArrayView2<T>) -> Array1<f64> {
        let (y, logdet) = self.forward(x, ctx, None);
        base_log_prob(&y, &logdet)
    }

    /// Adds the gradient of `sum_rows -log q(x | c)` to `grad` (same layout as the weights)
    /// and returns that sum. `ctx` is `n x C`.
    pub fn nll_grad(&self, x: ArrayView2<T>, ctx: ArrayView2<T>, grad: &mut [T]) -> f64 {
        let (n, d, c, h) = (
            x.nrows(),
            self.shape.dim,
            self.shape.context,
            self.shape.hidden,
        );
        let m = 3 * self.spline.bins - 1;
        let bound = T::cast(self.spline.tail_bound);
        let scale = self.scale();
        let mut kn = Knots::new(self.spline.bins);
        let mut layers = Vec::with_capacity(self.shape.transforms);
        let (y, logdet) = self.forward(x, ctx, Some(&mut layers));
        let nll = -base_log_prob(&y, &logdet).sum();
        // d(-log N(y))/dy = y.
        let mut g = y;
        let p = &self.params;
        for t in (0..self.shape.transforms).rev() {
            let l = &layers[t];
            let o = &self.offs[t];
            // The LU: y = z W^T + b, minus n sum_i ln U_ii in the loss.
            let gz = if d > 1 {
                let (w, _) = self.lu(t);
                let gw = g.t().dot(&l.z);
                add_col_sums(&g, &mut grad[o.lb..o.lb + d]);
                let a = view(p, o.lu, d, d);
                let eps = T::cast(LU_EPS);
                // W = L U: dL/dL = gW U^T (below the diagonal), dL/dU = L^T gW (on and above).
                for i in 0..d {
                    for j in 0..d {
                        let v = match i.cmp(&j) {
                            std::cmp::Ordering::Greater => (j..d).fold(T::zero(), |acc, k| {
                                let ujk = if k == j {
                                    softplus(a[[j, j]]) + eps
                                } else {
                                    a[[j, k]]
                                };
                                acc + gw[[i, k]] * ujk
                            }),
                            _ => {
                                // (L^T gW)_{ij} = sum_{k >= i} L_ki gW_kj, L_ii = 1.
                                let gu = (i..d).fold(T::zero(), |acc, k| {
                                    let lki = if k == i { T::one() } else { a[[k, i]] };
                                    acc + lki * gw[[k, j]]
                                });
                                if i == j {
                                    let uii = softplus(a[[i, i]]) + eps;
                                    (gu - T::cast(n as f64) / uii) * sigmoid(a[[i, i]])
                                } else {
                                    gu
                                }
                            }
                        };
                        grad[o.lu + i * d + j] += v;
                    }
                }
                g.dot(&w)
            } else {
                g
            };
            // The coupling: unchanged features pass their gradient; the splines' go to x_tf
            // and to the net's outputs (log-derivatives enter the loss with -1).
            let mut gx = gz.clone();
            let rows = o.tf.len() * m;
            let mut gout = Array2::<T>::zeros((n, rows));
            let flat = l.out.as_slice().expect("standard layout");
            let gflat = gout.as_slice_mut().expect("standard layout");
            for r in 0..n {
                for (j, &f) in o.tf.iter().enumerate() {
                    let v = l.x[[r, f]];
                    if v.abs() <= bound {
                        let at = r * rows + j * m;
                        let raw = &flat[at..at + m];
                        kn.set(raw, bound, scale);
                        gx[[r, f]] = rq_backward(
                            &mut kn,
                            raw,
                            v,
                            gz[[r, f]],
                            -T::one(),
                            bound,
                            scale,
                            &mut gflat[at..at + m],
                        );
                    }
                }
            }
            // The net, backwards.
            let nb = self.spline.blocks;
            general_mat_mul(
                T::one(),
                &gout.t(),
                &l.hs[nb],
                T::one(),
                &mut view_mut(grad, o.wf, rows, h),
            );
            add_col_sums(&gout, &mut grad[o.bf..o.bf + rows]);
            let mut gh = gout.dot(&view(p, o.wf, rows, h));
            for k in (0..nb).rev() {
                let b = o.block(k, h, c);
                // h' = h + q * gate.
                let gq = &gh * &l.gates[k];
                let mut gpre = &gh * &l.qs[k];
                gpre.zip_mut_with(&l.gates[k], |g, &s| *g *= s * (T::one() - s));
                general_mat_mul(
                    T::one(),
                    &gpre.t(),
                    &ctx,
                    T::one(),
                    &mut view_mut(grad, b.wg, h, c),
                );
                add_col_sums(&gpre, &mut grad[b.bg..b.bg + h]);
                // q = relu(v) Wb^T + bb.
                let r = l.vs[k].mapv(relu);
                general_mat_mul(
                    T::one(),
                    &gq.t(),
                    &r,
                    T::one(),
                    &mut view_mut(grad, b.wb, h, h),
                );
                add_col_sums(&gq, &mut grad[b.bb..b.bb + h]);
                let mut gv = gq.dot(&view(p, b.wb, h, h));
                gv.zip_mut_with(&l.vs[k], |g, &v| {
                    if v <= T::zero() {
                        *g = T::zero();
                    }
                });
                // v = relu(h) Wa^T + ba.
                let u = l.hs[k].mapv(relu);
                general_mat_mul(
                    T::one(),
                    &gv.t(),
                    &u,
                    T::one(),
                    &mut view_mut(grad, b.wa, h, h),
                );
                add_col_sums(&gv, &mut grad[b.ba..b.ba + h]);
                let mut gu = gv.dot(&view(p, b.wa, h, h));
                gu.zip_mut_with(&l.hs[k], |g, &v| {
                    if v <= T::zero() {
                        *g = T::zero();
                    }
                });
                gh += &gu;
            }
            // h0 = x_id Wx^T + c Wc^T + b.
            general_mat_mul(
                T::one(),
                &gh.t(),
                &ctx,
                T::one(),
                &mut view_mut(grad, o.wc, h, c),
            );
            add_col_sums(&gh, &mut grad[o.b..o.b + h]);
            if !o.id.is_empty() {
                let di = o.id.len();
                general_mat_mul(
                    T::one(),
                    &gh.t(),
                    &l.xid,
                    T::one(),
                    &mut view_mut(grad, o.wx, h, di),
                );
                let gid = gh.dot(&view(p, o.wx, h, di));
                for (j, &f) in o.id.iter().enumerate() {
                    gx.column_mut(f)
                        .zip_mut_with(&gid.column(j), |a, &b| *a += b);
                }
            }
            g = gx;
        }
        nll
    }

    /// Maps base draws `y` (`n x D`) to samples of `q(. | c)` for one context `ctx` (`C`).
    pub fn inverse(&self, y: Array2<T>, ctx: ArrayView1<T>) -> Array2<T> {
        let (n, d) = (y.nrows(), self.shape.dim);
        let m = 3 * self.spline.bins - 1;
        let bound = T::cast(self.spline.tail_bound);
        let scale = self.scale();
        let mut kn = Knots::new(self.spline.bins);
        let ctx = ctx.insert_axis(Axis(0));
        let mut cur = y;
        for t in (0..self.shape.transforms).rev() {
            let o = &self.offs[t];
            let z = if d > 1 {
                // Solve L U z = y - b: forward substitution (unit diagonal), then backward.
                let a = view(&self.params, o.lu, d, d);
                let eps = T::cast(LU_EPS);
                let mut z = Array2::zeros((n, d));
                for r in 0..n {
                    let mut v: Vec<T> = (0..d)
                        .map(|i| cur[[r, i]] - self.params[o.lb + i])
                        .collect();
                    for i in 0..d {
                        for k in 0..i {
                            let l = a[[i, k]];
                            v[i] = v[i] - l * v[k];
                        }
                    }
                    for i in (0..d).rev() {
                        for k in i + 1..d {
                            v[i] = v[i] - a[[i, k]] * v[k];
                        }
                        v[i] = v[i] / (softplus(a[[i, i]]) + eps);
                    }
                    for i in 0..d {
                        z[[r, i]] = v[i];
                    }
                }
                z
            } else {
                cur
            };
            let xid = z.select(Axis(1), &o.id);
            let (_, _, _, _, out) = self.net(t, xid.view(), ctx);
            let mut x = z.clone();
            let flat = out.as_slice().expect("standard layout");
            let rows = o.tf.len() * m;
            for r in 0..n {
                for (j, &f) in o.tf.iter().enumerate() {
                    let v = z[[r, f]];
                    if v.abs() <= bound {
                        let raw = &flat[r * rows + j * m..r * rows + (j + 1) * m];
                        kn.set(raw, bound, scale);
                        x[[r, f]] = rq_inverse(&kn, v);
                    }
                }
            }
            cur = x;
        }
        cur
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::prior::standard_normal;

    fn random(rng: &mut Xoshiro256PlusPlus, n: usize, d: usize, sd: f64) -> Array2<f64> {
        Array2::from_shape_fn((n, d), |_| sd * standard_normal(rng))
    }

    fn flow(d: usize, c: usize) -> (Nsf, Xoshiro256PlusPlus) {
        flow_spread(d, c, 1.0)
    }

    /// A flow whose weights are the initialisation's times `1 + spread` plus `0.3 spread`
    /// standard normals.
    fn flow_spread(d: usize, c: usize, spread: f64) -> (Nsf, Xoshiro256PlusPlus) {
        let mut rng = nmm_core::rng::stream(12, 0);
        let shape = Shape {
            dim: d,
            context: c,
            hidden: 6,
            transforms: 3,
        };
        let spline = Spline {
            bins: 5,
            blocks: 2,
            tail_bound: 2.5,
        };
        let mut f = Nsf::new(shape, spline, &mut rng);
        // Larger weights than the initialisation (whose residual branches and LUs start near
        // zero and the identity), so that every term of the gradient matters.
        for w in f.params.iter_mut() {
            *w = *w * (1.0 + spread) + 0.3 * spread * standard_normal(&mut rng);
        }
        (f, rng)
    }

    #[test]
    fn the_spline_is_monotone_onto_its_interval_and_its_log_derivative_is_right() {
        let mut rng = nmm_core::rng::stream(3, 0);
        let k = 7;
        let raw: Vec<f64> = (0..3 * k - 1)
            .map(|_| 2.0 * standard_normal(&mut rng))
            .collect();
        let mut kn = Knots::new(k);
        let b = 3.0;
        kn.set(&raw, b, 0.5);
        assert_eq!(rq_forward(&kn, -b).0, -b);
        assert!((rq_forward(&kn, b).0 - b).abs() < 1e-12);
        let mut prev = -b;
        for i in 1..=3000 {
            let x = -b + 2.0 * b * i as f64 / 3000.0;
            let (y, lad) = rq_forward(&kn, x);
            assert!(y > prev, "not increasing at {x}");
            prev = y;
            // Central difference of y against exp(lad); away from knots the spline is smooth,
            // step 1e-6: error ~ 1e-12 |y'''| + 1e-16 / 1e-6, tolerance 1e-6 relative.
            let hh = 1e-6;
            let near_knot = kn.cw.iter().any(|&c| (c - x).abs() < 2.0 * hh);
            if !near_knot && x + hh < b && x - hh > -b {
                let fd = (rq_forward(&kn, x + hh).0 - rq_forward(&kn, x - hh).0) / (2.0 * hh);
                assert!(
                    (fd - lad.exp()).abs() < 1e-6 * fd.max(1.0),
                    "{x}: {fd} vs {}",
                    lad.exp()
                );
            }
            // The closed-form inverse: rounding of y (~1e-16) amplified by up to the inverse
            // of the smallest slope (these raw outputs make slopes down to ~1e-3), so 1e-11.
            assert!((rq_inverse(&kn, y) - x).abs() < 1e-11, "{x}");
        }
        // Slope 1 at both ends (linear tails join smoothly).
        assert!((rq_forward(&kn, -b).1).abs() < 1e-12);
        assert!((rq_forward(&kn, b - 1e-12).1).abs() < 1e-9);
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // k indexes the weights and the gradient
    fn the_gradient_matches_central_differences() {
        for (d, c) in [(3, 2), (1, 4), (2, 1), (4, 3)] {
            let (mut f, mut rng) = flow(d, c);
            // sd 1.5: about a tenth of the entries fall outside ±2.5 and take the linear tails.
            let x = random(&mut rng, 6, d, 1.5);
            let ctx = random(&mut rng, 6, c, 1.0);
            let mut g = vec![0.0; f.params.len()];
            f.nll_grad(x.view(), ctx.view(), &mut g);
            let nll = |f: &Nsf| -f.log_prob(x.view(), ctx.view()).sum();
            let mut worst: f64 = 0.0;
            let mut nonzero = 0;
            for k in 0..f.params.len() {
                let w = f.params[k];
                // Step 1e-5 and tolerance 1e-6 relative to max(1, |g|), as for the MAF; a step
                // that moves a point across a knot or a ReLU's kink would break it, and none
                // does for these draws.
                let h = 1e-5;
                f.params[k] = w + h;
                let up = nll(&f);
                f.params[k] = w - h;
                let down = nll(&f);
                f.params[k] = w;
                let fd = (up - down) / (2.0 * h);
                worst = worst.max((fd - g[k]).abs() / g[k].abs().max(1.0));
                nonzero += usize::from(g[k] != 0.0);
            }
            assert!(worst < 1e-6, "D={d}, C={c}: worst relative error {worst:e}");
            // Most weights matter (dead ReLUs and slopes of bins no point falls in do not).
            assert!(
                nonzero * 10 > f.params.len() * 7,
                "{nonzero} of {}",
                f.params.len()
            );
        }
    }

    #[test]
    fn nll_grad_returns_the_log_prob_sum_and_f32_agrees() {
        let (f, mut rng) = flow(3, 4);
        let x = random(&mut rng, 40, 3, 1.0);
        let ctx = random(&mut rng, 40, 4, 1.0);
        let mut g = vec![0.0; f.params.len()];
        let nll = f.nll_grad(x.view(), ctx.view(), &mut g);
        let lp = f.log_prob(x.view(), ctx.view()).sum();
        assert!((nll + lp).abs() < 1e-12 * lp.abs().max(1.0));
        let f32: Nsf<f32> = f.cast();
        let mut g32 = vec![0.0f32; f.params.len()];
        let nll32 = f32.nll_grad(
            x.mapv(|v| v as f32).view(),
            ctx.mapv(|v| v as f32).view(),
            &mut g32,
        );
        // f32 rounding (6e-8 per operation) through 3 transforms of splines and 6-wide nets,
        // sums over 40 rows: a few 1e-5 of the gradient's scale.
        let scale = g.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let worst = g
            .iter()
            .zip(&g32)
            .fold(0.0f64, |a, (x, y)| a.max((x - f64::from(*y)).abs()));
        assert!(worst < 1e-4 * scale, "worst {worst:e} of {scale:e}");
        assert!((nll - nll32).abs() < 1e-5 * nll.abs(), "{nll} vs {nll32}");
    }

    #[test]
    fn inverse_undoes_forward() {
        let (f, mut rng) = flow(4, 3);
        let x = random(&mut rng, 200, 4, 1.5);
        let ctx = random(&mut rng, 1, 3, 1.0);
        let (y, _) = f.forward(x.view(), ctx.view(), None);
        let back = f.inverse(y, ctx.row(0));
        let worst = x
            .iter()
            .zip(&back)
            .fold(0.0f64, |w, (a, b)| w.max((a - b).abs()));
        // Each spline's slope can be as small as 1e-3, so inverting it can amplify the
        // rounding of its input a thousandfold; these large test weights make such bins. Measured
        // 1.2e-9 at worst over the 800 entries; 1e-8 leaves a factor 8.
        assert!(worst < 1e-8, "{worst:e}");
    }

    #[test]
    fn the_density_integrates_to_one() {
        // D = 1 on a fine grid (trapezoid on [-30, 30]); D = 2 on a 2-D grid. Moderate
        // weights: the large ones of the gradient test make bins 1e-3 wide whose spikes a
        // grid cannot resolve.
        let (f, mut rng) = flow_spread(1, 2, 0.3);
        let ctx = random(&mut rng, 1, 2, 1.0);
        let n = 240_001;
        let x = Array2::from_shape_fn((n, 1), |(i, _)| -30.0 + 60.0 * i as f64 / (n - 1) as f64);
        let lp = f.log_prob(x.view(), ctx.view());
        let dx = 60.0 / (n - 1) as f64;
        let total: f64 = lp.iter().map(|v| v.exp()).sum::<f64>() * dx;
        // The density is continuous (slope 1 at the tail bounds) with kinks in its derivative
        // at the knots, so the rule converges irregularly: measured errors -6.6e-6, 9.6e-7,
        // 2.6e-8 and -5.7e-9 with 15,001, 60,001, 240,001 and 960,001 points. A wrong
        // log-determinant misses by far more (a dropped slope term: order 1).
        assert!((total - 1.0).abs() < 1e-6, "{total}");
        let (f, mut rng) = flow_spread(2, 2, 0.3);
        let ctx = random(&mut rng, 1, 2, 1.0);
        let (m, lim) = (1201, 15.0);
        let step = 2.0 * lim / (m - 1) as f64;
        let x = Array2::from_shape_fn((m * m, 2), |(i, j)| {
            let k = if j == 0 { i / m } else { i % m };
            -lim + step * k as f64
        });
        let total: f64 = f
            .log_prob(x.view(), ctx.view())
            .iter()
            .map(|v| v.exp())
            .sum::<f64>()
            * step
            * step;
        // Step 0.025 on [-15, 15]^2 (the LU moves some mass past the tail bounds, none past
        // 15): measured 1.4e-5; the 1-D rule at step 0.004 (15,001 points) erred by 6.6e-6,
        // so 1e-4 at a step six times coarser in two dimensions.
        assert!((total - 1.0).abs() < 1e-4, "{total}");
    }

    #[test]
    fn from_parts_refuses_bad_sizes_and_weights() {
        let (f, _) = flow(3, 2);
        let ok = Nsf::from_parts(f.shape, f.spline, f.params.clone());
        assert!(ok.is_some());
        let mut short = f.params.clone();
        short.pop();
        assert!(Nsf::from_parts(f.shape, f.spline, short).is_none());
        let mut nan = f.params.clone();
        nan[3] = f64::NAN;
        assert!(Nsf::from_parts(f.shape, f.spline, nan).is_none());
        let one_bin = Spline {
            bins: 1,
            ..f.spline
        };
        assert!(Nsf::from_parts(f.shape, one_bin, f.params.clone()).is_none());
        // Sizes from a damaged header: refused, not overflowed.
        let huge = Shape {
            hidden: usize::MAX,
            ..f.shape
        };
        assert!(Nsf::from_parts(huge, f.spline, f.params.clone()).is_none());
        let many = Spline {
            blocks: usize::MAX / 2,
            ..f.spline
        };
        assert!(Nsf::from_parts(f.shape, many, f.params.clone()).is_none());
    }
}
