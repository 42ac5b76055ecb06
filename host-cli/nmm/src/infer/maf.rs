//! A conditional masked autoregressive flow (Papamakarios et al. 2017), built as sbi's default
//! density estimator builds it (nflows' `MaskedAffineAutoregressiveTransform` with a MADE of
//! two tanh blocks, no residual blocks, no batch norm, sequential degrees, then a random
//! permutation), with its log-density gradient written out by hand.
//!
//! Transform `t` maps `x` (dimension `D`) to `z = s(x) * x + m(x)`, where for feature `i` the
//! scale `s_i = softplus(a_i) + 1e-3` and the shift `m_i` depend on `x_<i` and the context `c`
//! (the z-scored observation, dimension `C`) through the MADE
//!
//! ```text
//! h0 = W0 x + Wc c + b0            (W0 masked; no activation, as nflows' initial layer)
//! h1 = tanh(W1 h0 + b1)            (W1 masked)
//! h2 = tanh(W2 h1 + b2)            (W2 masked)
//! (a_0, m_0, a_1, m_1, ...) = Wf h2 + bf   (Wf masked: outputs of feature i see degree < i+1)
//! ```
//!
//! then permutes the features (`y_j = z_perm[j]`). After `T` transforms the base is a standard
//! normal, so `log q(x | c) = log N(y; 0, I) + sum_t sum_i log s_i`.
//!
//! Why by hand and not candle (the issue's first candidate): the networks are small
//! (`50`-wide, a few thousand weights per layer), so a general tensor library's per-operation
//! overhead dominates; here a step is a handful of `matrixmultiply` calls (through ndarray)
//! on row blocks and one elementwise pass per layer. Measured on the same training data, one
//! thread (`benches/peers/candle_maf`): candle 0.9 took 0.22 s per epoch in f64 and 0.16 to
//! 0.18 s in f32, this code 0.048 to 0.064 s in f32 with its validation pass. The gradient is
//! checked against central differences in the tests below.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, s};
use nmm_core::rng::{Rng, Xoshiro256PlusPlus, uniform_open0};

/// Added to softplus so that a scale never reaches 0 (nflows' `_epsilon`).
const SCALE_EPS: f64 = 1e-3;
/// `0.5 ln(2 pi)`.
pub(super) const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// The precision a flow computes in: `f64` (the default, and what sampling uses) or `f32`
/// (training, as sbi trains: twice the matrix-product throughput).
pub trait Float:
    num_traits::Float
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + std::ops::AddAssign
    + std::ops::MulAssign
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
{
    /// In-place tanh of every element (the core's vectorised kernels, lanes of 8).
    fn tanh_slice(v: &mut [Self]);
    /// From f64 (rounded to nearest).
    fn cast(x: f64) -> Self;
    /// To f64 (exact).
    fn wide(self) -> f64;
}

/// The same implementation for both precisions, with the core's tanh kernels of each.
macro_rules! float_impl {
    ($t:ty, $lanes:path, $one:path) => {
        impl Float for $t {
            fn tanh_slice(v: &mut [$t]) {
                let mut chunks = v.chunks_exact_mut(8);
                for c in &mut chunks {
                    let x: [$t; 8] = (&*c).try_into().expect("chunks of 8");
                    c.copy_from_slice(&$lanes(x));
                }
                for x in chunks.into_remainder() {
                    *x = $one(*x);
                }
            }
            fn cast(x: f64) -> Self {
                x as $t
            }
            fn wide(self) -> f64 {
                f64::from(self)
            }
        }
    };
}

float_impl!(
    f64,
    nmm_core::mlp::tanh::tanh_f64_lanes,
    nmm_core::mlp::tanh::tanh_f64
);
float_impl!(
    f32,
    nmm_core::mlp::tanh::tanh_f32_lanes,
    nmm_core::mlp::tanh::tanh_f32
);

/// Sizes of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// Parameters (`D`).
    pub dim: usize,
    /// Features of the observation (`C`).
    pub context: usize,
    /// Width of every hidden layer (sbi: 50).
    pub hidden: usize,
    /// Autoregressive transforms (sbi: 5).
    pub transforms: usize,
}

/// Offsets of one transform's weights in the flat parameter vector (row-major matrices, one
/// row per output unit).
#[derive(Clone, Copy, Debug)]
struct Off {
    w0: usize,
    wc: usize,
    b0: usize,
    w1: usize,
    b1: usize,
    w2: usize,
    b2: usize,
    wf: usize,
    bf: usize,
}

impl Shape {
    /// Weights of one transform.
    pub fn per_transform(&self) -> usize {
        let (d, c, h) = (self.dim, self.context, self.hidden);
        h * d + h * c + h + 2 * (h * h + h) + 2 * d * h + 2 * d
    }

    /// All weights.
    pub fn len(&self) -> usize {
        self.per_transform() * self.transforms
    }

    /// All weights, or `None` when there would be more than 2^32 (sizes from a file or a
    /// command line: refused rather than overflowed).
    pub fn len_checked(&self) -> Option<usize> {
        let sizes = [self.dim, self.context, self.hidden, self.transforms];
        if sizes.iter().any(|&v| v as u128 >= 1 << 32) {
            return None;
        }
        let (d, c, h) = (self.dim as u128, self.context as u128, self.hidden as u128);
        // Under 2^32 each, the products stay below 2^70.
        let per = h * d + h * c + h + 2 * (h * h + h) + 2 * d * h + 2 * d;
        if per * self.transforms as u128 > 1 << 32 {
            return None;
        }
        Some(self.len())
    }

    /// Whether the flow has no weights (never, for a valid shape).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn off(&self, t: usize) -> Off {
        let (d, c, h) = (self.dim, self.context, self.hidden);
        let w0 = t * self.per_transform();
        let wc = w0 + h * d;
        let b0 = wc + h * c;
        let w1 = b0 + h;
        let b1 = w1 + h * h;
        let w2 = b1 + h;
        let b2 = w2 + h * h;
        let wf = b2 + h;
        let bf = wf + 2 * d * h;
        Off {
            w0,
            wc,
            b0,
            w1,
            b1,
            w2,
            b2,
            wf,
            bf,
        }
    }

    /// MADE degrees of the hidden units (nflows, sequential): `k mod max(1, D-1) + min(1, D-1)`.
    fn hidden_degree(&self, k: usize) -> usize {
        let d = self.dim;
        k % (d.saturating_sub(1)).max(1) + d.saturating_sub(1).min(1)
    }

    /// 1 where a weight exists, 0 where the MADE masks it, in the parameter layout.
    fn mask<T: Float>(&self) -> Vec<T> {
        let (d, h) = (self.dim, self.hidden);
        let bit = |b: bool| if b { T::one() } else { T::zero() };
        let mut m = vec![T::one(); self.len()];
        for t in 0..self.transforms {
            let o = self.off(t);
            for k in 0..h {
                let dk = self.hidden_degree(k);
                for i in 0..d {
                    // Input i has degree i + 1; hidden unit k sees it when dk >= i + 1.
                    m[o.w0 + k * d + i] = bit(dk > i);
                }
                for j in 0..h {
                    let dj = self.hidden_degree(j);
                    m[o.w1 + k * h + j] = bit(dk >= dj);
                    m[o.w2 + k * h + j] = bit(dk >= dj);
                }
            }
            for i in 0..d {
                for r in [2 * i, 2 * i + 1] {
                    for j in 0..h {
                        // Output of feature i (degree i + 1) sees hidden units of degree <= i.
                        m[o.wf + r * h + j] = bit(self.hidden_degree(j) <= i);
                    }
                }
            }
        }
        m
    }
}

/// The flow: weights, masks and permutations.
#[derive(Clone, Debug)]
pub struct Maf<T: Float = f64> {
    shape: Shape,
    /// Flat weights (masked entries are 0 and stay 0).
    pub(crate) params: Vec<T>,
    mask: Vec<T>,
    /// `perms[t][j]`: the feature of `z` that becomes feature `j` after transform `t`.
    perms: Vec<Vec<usize>>,
}

/// A uniform integer in `0..n` (n >= 1), by rejection so it is exact.
fn below(rng: &mut Xoshiro256PlusPlus, n: usize) -> usize {
    let n = n as u64;
    let zone = u64::MAX - u64::MAX % n;
    loop {
        let v = rng.next_u64();
        if v < zone {
            return (v % n) as usize;
        }
    }
}

/// A seeded random permutation of `0..n` (Fisher-Yates).
pub(crate) fn permutation(rng: &mut Xoshiro256PlusPlus, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        p.swap(i, below(rng, i + 1));
    }
    p
}

pub(super) fn view<T: Float>(p: &[T], off: usize, rows: usize, cols: usize) -> ArrayView2<'_, T> {
    ArrayView2::from_shape((rows, cols), &p[off..off + rows * cols])
        .expect("the layouts' offsets (Shape::off, nsf's layout) lie inside the weights")
}

pub(super) fn view_mut<T: Float>(
    p: &mut [T],
    off: usize,
    rows: usize,
    cols: usize,
) -> ArrayViewMut2<'_, T> {
    ArrayViewMut2::from_shape((rows, cols), &mut p[off..off + rows * cols])
        .expect("the layouts' offsets (Shape::off, nsf's layout) lie inside the weights")
}

/// `x W^T + b` (rows of `x` are samples).
pub(super) fn affine<T: Float>(x: ArrayView2<T>, w: ArrayView2<T>, b: ArrayView1<T>) -> Array2<T> {
    let mut y = Array2::from_shape_fn((x.nrows(), w.nrows()), |(_, j)| b[j]);
    general_mat_mul(T::one(), &x, &w.t(), T::one(), &mut y);
    y
}

/// In-place tanh through the core's vectorised kernels ([`Float::tanh_slice`]).
fn tanh_inplace<T: Float>(a: &mut Array2<T>) {
    T::tanh_slice(
        a.as_slice_mut()
            .expect("activations are standard-layout arrays"),
    );
}

pub(super) fn softplus<T: Float>(a: T) -> T {
    // log(1 + e^a) without overflow or loss for large |a|.
    a.max(T::zero()) + (-a.abs()).exp().ln_1p()
}

pub(super) fn sigmoid<T: Float>(a: T) -> T {
    if a >= T::zero() {
        T::one() / (T::one() + (-a).exp())
    } else {
        let e = a.exp();
        e / (T::one() + e)
    }
}

/// `log N(y_r; 0, I) + logdet_r` for each row `r` of the base variable `y`: a flow's
/// log-density from the end of its forward pass (shared by [`Maf`] and the spline flow).
pub(super) fn base_log_prob<T: Float>(y: &Array2<T>, logdet: &Array1<f64>) -> Array1<f64> {
    let d = y.ncols() as f64;
    Array1::from_shape_fn(y.nrows(), |r| {
        let q: f64 = y.row(r).iter().map(|v| v.wide() * v.wide()).sum();
        -0.5 * q - d * HALF_LN_2PI + logdet[r]
    })
}

/// What the backward pass needs from one transform.
struct Layer<T> {
    x: Array2<T>,
    h0: Array2<T>,
    h1: Array2<T>,
    h2: Array2<T>,
    a: Array2<T>,
    scale: Array2<T>,
}

impl<T: Float> Maf<T> {
    /// A new flow with nn.Linear's default initialisation (uniform in `±1/sqrt(fan_in)`, masked)
    /// and random permutations, all from `rng`.
    pub fn new(shape: Shape, rng: &mut Xoshiro256PlusPlus) -> Self {
        let mask: Vec<T> = shape.mask();
        let (d, c, h) = (shape.dim, shape.context, shape.hidden);
        let mut params = vec![T::zero(); shape.len()];
        let mut perms = Vec::with_capacity(shape.transforms);
        for t in 0..shape.transforms {
            let o = shape.off(t);
            let blocks = [
                (o.w0, h * d, d),
                (o.wc, h * c, c),
                (o.b0, h, d),
                (o.w1, h * h, h),
                (o.b1, h, h),
                (o.w2, h * h, h),
                (o.b2, h, h),
                (o.wf, 2 * d * h, h),
                (o.bf, 2 * d, h),
            ];
            for (off, n, fan_in) in blocks {
                let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
                for k in off..off + n {
                    let u = 1.0 - uniform_open0(rng); // [0, 1)
                    params[k] = T::cast((2.0 * u - 1.0) * bound) * mask[k];
                }
            }
            perms.push(permutation(rng, d));
        }
        Self {
            shape,
            params,
            mask,
            perms,
        }
    }

    /// A flow from stored weights and permutations; `None` when the sizes do not match, a
    /// permutation is not one, a weight is not finite, or a masked weight is not zero.
    pub fn from_parts(shape: Shape, params: Vec<T>, perms: Vec<Vec<usize>>) -> Option<Self> {
        if shape.dim == 0 || shape.hidden == 0 || shape.transforms == 0 {
            return None;
        }
        // Sizes from a file: refuse any whose weight count overflows (or is absurd).
        let len = shape.len_checked()?;
        if params.len() != len || perms.len() != shape.transforms {
            return None;
        }
        for p in &perms {
            let mut seen = vec![false; shape.dim];
            if p.len() != shape.dim {
                return None;
            }
            for &j in p {
                if j >= shape.dim || std::mem::replace(&mut seen[j], true) {
                    return None;
                }
            }
        }
        let mask: Vec<T> = shape.mask();
        if params
            .iter()
            .zip(&mask)
            .any(|(w, m)| !w.is_finite() || (*m == T::zero() && *w != T::zero()))
        {
            return None;
        }
        Some(Self {
            shape,
            params,
            mask,
            perms,
        })
    }

    /// The same flow computing in another precision (weights rounded to nearest).
    pub fn cast<U: Float>(&self) -> Maf<U> {
        Maf {
            shape: self.shape,
            params: self.params.iter().map(|w| U::cast(w.wide())).collect(),
            mask: self.mask.iter().map(|m| U::cast(m.wide())).collect(),
            perms: self.perms.clone(),
        }
    }

    /// Sets the weights from f64 values (rounded to nearest), in the layout of [`Maf::params`].
    pub(crate) fn set_params(&mut self, w: &[f64]) {
        for (p, &v) in self.params.iter_mut().zip(w) {
            *p = T::cast(v);
        }
    }

    /// The sizes.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The permutations.
    pub fn perms(&self) -> &[Vec<usize>] {
        &self.perms
    }

    /// The flat weights.
    pub fn params(&self) -> &[T] {
        &self.params
    }

    /// `c Wc^T + b0` for transform `t` (`n x H`, or `1 x H` for one context shared by all rows).
    fn context_term(&self, t: usize, ctx: ArrayView2<T>) -> Array2<T> {
        let (c, h) = (self.shape.context, self.shape.hidden);
        let o = self.shape.off(t);
        let b0 = ArrayView1::from(&self.params[o.b0..o.b0 + h]);
        affine(ctx, view(&self.params, o.wc, h, c), b0)
    }

    /// The MADE of transform `t` at `x` (rows), with the context term `cb` (`n x H` or
    /// `1 x H`): `(h0, h1, h2, out)`, `out` interleaving `(a_i, m_i)`.
    fn made(
        &self,
        t: usize,
        x: ArrayView2<T>,
        cb: &Array2<T>,
    ) -> (Array2<T>, Array2<T>, Array2<T>, Array2<T>) {
        let (d, h) = (self.shape.dim, self.shape.hidden);
        let o = self.shape.off(t);
        let p = &self.params;
        let mut h0 = Array2::zeros((x.nrows(), h));
        h0.assign(&cb.broadcast((x.nrows(), h)).expect("1 x H or n x H"));
        general_mat_mul(T::one(), &x, &view(p, o.w0, h, d).t(), T::one(), &mut h0);
        let mut h1 = affine(
            h0.view(),
            view(p, o.w1, h, h),
            ArrayView1::from(&p[o.b1..o.b1 + h]),
        );
        tanh_inplace(&mut h1);
        let mut h2 = affine(
            h1.view(),
            view(p, o.w2, h, h),
            ArrayView1::from(&p[o.b2..o.b2 + h]),
        );
        tanh_inplace(&mut h2);
        let out = affine(
            h2.view(),
            view(p, o.wf, 2 * d, h),
            ArrayView1::from(&p[o.bf..o.bf + 2 * d]),
        );
        (h0, h1, h2, out)
    }

    /// Runs `x` (rows) through every transform: the base variable `y` and, per row,
    /// `sum log s`; with `keep`, the layers for the backward pass.
    fn forward(
        &self,
        x: ArrayView2<T>,
        ctx: ArrayView2<T>,
        mut keep: Option<&mut Vec<Layer<T>>>,
    ) -> (Array2<T>, Array1<f64>) {
        let (n, d) = (x.nrows(), self.shape.dim);
        let mut cur = x.to_owned();
        let mut logdet = Array1::<f64>::zeros(n);
        for t in 0..self.shape.transforms {
            let cb = self.context_term(t, ctx);
            let (h0, h1, h2, out) = self.made(t, cur.view(), &cb);
            let a = out.slice(s![.., 0..;2]).to_owned();
            let eps = T::cast(SCALE_EPS);
            let scale = a.mapv(|v| softplus(v) + eps);
            let mut next = Array2::zeros((n, d));
            for r in 0..n {
                let mut ld = 0.0;
                for (j, &pj) in self.perms[t].iter().enumerate() {
                    next[[r, j]] = scale[[r, pj]] * cur[[r, pj]] + out[[r, 2 * pj + 1]];
                }
                for i in 0..d {
                    ld += scale[[r, i]].ln().wide();
                }
                logdet[r] += ld;
            }
            let prev = std::mem::replace(&mut cur, next);
            if let Some(k) = keep.as_deref_mut() {
                k.push(Layer {
                    x: prev,
                    h0,
                    h1,
                    h2,
                    a,
                    scale,
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
        let mut layers = Vec::with_capacity(self.shape.transforms);
        let (y, logdet) = self.forward(x, ctx, Some(&mut layers));
        let nll = -base_log_prob(&y, &logdet).sum();
        // d(-log N(y))/dy = y.
        let mut g = y;
        let p = &self.params;
        for t in (0..self.shape.transforms).rev() {
            let l = &layers[t];
            let o = self.shape.off(t);
            // Undo the permutation, then the affine map z = s x + m.
            let mut dout = Array2::zeros((n, 2 * d));
            let mut gx = Array2::zeros((n, d));
            for r in 0..n {
                for (j, &pj) in self.perms[t].iter().enumerate() {
                    let gz = g[[r, j]];
                    let s = l.scale[[r, pj]];
                    // d/ds of (gz s x) and of -log s.
                    let ds = gz * l.x[[r, pj]] - T::one() / s;
                    dout[[r, 2 * pj]] = ds * sigmoid(l.a[[r, pj]]);
                    dout[[r, 2 * pj + 1]] = gz;
                    gx[[r, pj]] = gz * s;
                }
            }
            // Final layer.
            general_mat_mul(
                T::one(),
                &dout.t(),
                &l.h2,
                T::one(),
                &mut view_mut(grad, o.wf, 2 * d, h),
            );
            add_col_sums(&dout, &mut grad[o.bf..o.bf + 2 * d]);
            let mut da = dout.dot(&view(p, o.wf, 2 * d, h));
            da.zip_mut_with(&l.h2, |g, &y| *g *= T::one() - y * y);
            general_mat_mul(
                T::one(),
                &da.t(),
                &l.h1,
                T::one(),
                &mut view_mut(grad, o.w2, h, h),
            );
            add_col_sums(&da, &mut grad[o.b2..o.b2 + h]);
            let mut da1 = da.dot(&view(p, o.w2, h, h));
            da1.zip_mut_with(&l.h1, |g, &y| *g *= T::one() - y * y);
            general_mat_mul(
                T::one(),
                &da1.t(),
                &l.h0,
                T::one(),
                &mut view_mut(grad, o.w1, h, h),
            );
            add_col_sums(&da1, &mut grad[o.b1..o.b1 + h]);
            let dh0 = da1.dot(&view(p, o.w1, h, h));
            general_mat_mul(
                T::one(),
                &dh0.t(),
                &l.x,
                T::one(),
                &mut view_mut(grad, o.w0, h, d),
            );
            general_mat_mul(
                T::one(),
                &dh0.t(),
                &ctx,
                T::one(),
                &mut view_mut(grad, o.wc, h, c),
            );
            add_col_sums(&dh0, &mut grad[o.b0..o.b0 + h]);
            general_mat_mul(T::one(), &dh0, &view(p, o.w0, h, d), T::one(), &mut gx);
            g = gx;
        }
        for (gi, m) in grad.iter_mut().zip(&self.mask) {
            *gi *= *m;
        }
        nll
    }

    /// Maps base draws `y` (`n x D`) to samples of `q(. | c)` for one context `ctx` (`C`):
    /// each transform is inverted feature by feature, `D` passes of its MADE.
    pub fn inverse(&self, y: Array2<T>, ctx: ArrayView1<T>) -> Array2<T> {
        let (n, d) = (y.nrows(), self.shape.dim);
        let ctx = ctx.insert_axis(Axis(0));
        let mut cur = y;
        for t in (0..self.shape.transforms).rev() {
            let cb = self.context_term(t, ctx);
            let mut z = Array2::zeros((n, d));
            for (j, &pj) in self.perms[t].iter().enumerate() {
                z.column_mut(pj).assign(&cur.column(j));
            }
            let mut x = Array2::zeros((n, d));
            for i in 0..d {
                let (_, _, _, out) = self.made(t, x.view(), &cb);
                for r in 0..n {
                    let s = softplus(out[[r, 2 * i]]) + T::cast(SCALE_EPS);
                    x[[r, i]] = (z[[r, i]] - out[[r, 2 * i + 1]]) / s;
                }
            }
            cur = x;
        }
        cur
    }
}

pub(super) fn add_col_sums<T: Float>(a: &Array2<T>, out: &mut [T]) {
    for row in a.rows() {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::prior::standard_normal;

    fn random(rng: &mut Xoshiro256PlusPlus, n: usize, d: usize) -> Array2<f64> {
        Array2::from_shape_fn((n, d), |_| standard_normal(rng))
    }

    fn flow(d: usize, c: usize) -> (Maf, Xoshiro256PlusPlus) {
        let mut rng = nmm_core::rng::stream(11, 0);
        let shape = Shape {
            dim: d,
            context: c,
            hidden: 7,
            transforms: 3,
        };
        let mut m = Maf::new(shape, &mut rng);
        // Larger weights than the initialisation, so that every term of the gradient matters.
        for (w, k) in m.params.iter_mut().zip(&m.mask) {
            *w = (*w * 3.0 + 0.2 * standard_normal(&mut rng)) * k;
        }
        (m, rng)
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // k indexes the weights, their mask and the gradient
    fn the_gradient_matches_central_differences() {
        for (d, c) in [(3, 2), (1, 4), (2, 1)] {
            let (mut m, mut rng) = flow(d, c);
            let x = random(&mut rng, 5, d);
            let ctx = random(&mut rng, 5, c);
            let mut g = vec![0.0; m.params.len()];
            m.nll_grad(x.view(), ctx.view(), &mut g);
            let nll = |m: &Maf| -m.log_prob(x.view(), ctx.view()).sum();
            let mut worst: f64 = 0.0;
            for k in 0..m.params.len() {
                if m.mask[k] == 0.0 {
                    assert_eq!(g[k], 0.0);
                    continue;
                }
                let w = m.params[k];
                // Step 1e-5: central-difference truncation ~ h^2 |f'''| ~ 1e-10 and rounding
                // ~ 1e-16 |f| / h ~ 1e-10 for these O(10) sums; tolerance 1e-6 relative to
                // max(1, |g|) leaves a factor 100 of margin.
                let h = 1e-5;
                m.params[k] = w + h;
                let up = nll(&m);
                m.params[k] = w - h;
                let down = nll(&m);
                m.params[k] = w;
                let fd = (up - down) / (2.0 * h);
                worst = worst.max((fd - g[k]).abs() / g[k].abs().max(1.0));
            }
            assert!(worst < 1e-6, "D={d}, C={c}: worst relative error {worst:e}");
        }
    }

    #[test]
    fn the_f32_gradient_is_the_f64_gradient_rounded() {
        let (m, mut rng) = flow(3, 4);
        let x = random(&mut rng, 50, 3);
        let ctx = random(&mut rng, 50, 4);
        let mut g = vec![0.0; m.params.len()];
        let nll = m.nll_grad(x.view(), ctx.view(), &mut g);
        let m32: Maf<f32> = m.cast();
        let mut g32 = vec![0.0f32; m.params.len()];
        let nll32 = m32.nll_grad(
            x.mapv(|v| v as f32).view(),
            ctx.mapv(|v| v as f32).view(),
            &mut g32,
        );
        // f32 carries 6e-8 relative rounding per operation; through 3 transforms of 7-wide
        // layers and sums over 50 rows, errors of a few 1e-5 of the gradient's scale.
        let scale = g.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let worst = g
            .iter()
            .zip(&g32)
            .fold(0.0f64, |a, (x, y)| a.max((x - f64::from(*y)).abs()));
        assert!(worst < 1e-4 * scale, "worst {worst:e} of {scale:e}");
        assert!((nll - nll32).abs() < 1e-5 * nll.abs(), "{nll} vs {nll32}");
    }

    #[test]
    fn nll_grad_returns_the_log_prob_sum() {
        let (m, mut rng) = flow(3, 2);
        let x = random(&mut rng, 9, 3);
        let ctx = random(&mut rng, 9, 2);
        let mut g = vec![0.0; m.params.len()];
        let nll = m.nll_grad(x.view(), ctx.view(), &mut g);
        let lp = m.log_prob(x.view(), ctx.view()).sum();
        assert!((nll + lp).abs() < 1e-12 * lp.abs().max(1.0));
    }

    #[test]
    fn inverse_undoes_forward_and_outputs_are_autoregressive() {
        let (m, mut rng) = flow(4, 3);
        let x = random(&mut rng, 6, 4);
        let ctx = random(&mut rng, 1, 3);
        let (y, _) = m.forward(x.view(), ctx.view(), None);
        let back = m.inverse(y, ctx.row(0));
        // Each feature is divided by a scale >= 1e-3 once per transform: errors grow by at
        // most ~1e3 per transform in the worst case; in practice ~1e-14.
        for (a, b) in x.iter().zip(&back) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
        // MADE: output pair i depends on inputs < i only.
        let cb = m.context_term(0, ctx.view());
        let (_, _, _, out) = m.made(0, x.view(), &cb);
        for j in 0..4 {
            let mut x2 = x.clone();
            x2.column_mut(j).mapv_inplace(|v| v + 1.0);
            let (_, _, _, out2) = m.made(0, x2.view(), &cb);
            for i in 0..=j {
                for r in 0..6 {
                    assert_eq!(out[[r, 2 * i]], out2[[r, 2 * i]]);
                    assert_eq!(out[[r, 2 * i + 1]], out2[[r, 2 * i + 1]]);
                }
            }
        }
    }

    #[test]
    fn the_density_integrates_to_one() {
        // D = 1: integrate q(x | c) on a fine grid (trapezoid on [-30, 30]).
        let (m, mut rng) = flow(1, 2);
        let ctx = random(&mut rng, 1, 2);
        let n = 60_001;
        let x = Array2::from_shape_fn((n, 1), |(i, _)| -30.0 + 60.0 * i as f64 / (n - 1) as f64);
        let lp = m.log_prob(x.view(), ctx.view());
        let dx = 60.0 / (n - 1) as f64;
        let total: f64 = lp.iter().map(|v| v.exp()).sum::<f64>() * dx;
        // The tails beyond ±30 carry nothing at these scales; the trapezoid's error on a smooth
        // density at this step is far below 1e-6.
        assert!((total - 1.0).abs() < 1e-6, "{total}");
    }
}
