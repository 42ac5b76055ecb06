//! The compact MLP mean field: a small dense network learned from spiking-network data that
//! replaces the analytic MPR equations (Woodman, Breyton et al. 2025, REFERENCE section 2).
//!
//! ```text
//! (r, v, eta_bar, p, J, I) --normalise--> 6 --tanh--> H1 --tanh--> H2 --linear--> 2
//!                                                    --de-normalise--> (dr/dt, dv/dt)
//! ```
//!
//! The inputs are the population rate `r` (1/time unit), the mean membrane potential `v`
//! (dimensionless), the centre of the excitability distribution `eta_bar`, the connection
//! probability `p`, the synaptic weight `J` and the external input `I` (all dimensionless, as
//! in MPR); time is in units of the membrane time constant (`tau = 1` in the training
//! networks), so `dr/dt` is in 1/time unit^2 and `dv/dt` in 1/time unit. The default shape
//! 6 -> 6 -> 6 -> 2 has 98 weights.
//!
//! - [`MlpScalar`]: the scalar trait of the network evaluation (f32, f64, [`I16F16`]).
//! - [`Dense`], [`Mlp`]: the network, const-generic in its layer sizes, evaluated without
//!   allocation.
//! - [`MlpMeanField`]: the network plus its input/output normalisation as a
//!   [`Model`] (`mlp`), with parameters `eta`, `p`, `J`.
//! - [`format`]: the "NMMW" version 1 weight file (little-endian, CRC-32), read and written
//!   here so that the trainer and every target share one implementation.
//! - [`MlpFixed`]: the same weights evaluated in `I16F16` fixed point for firmware without
//!   an FPU (or with one that should not be used in an interrupt).
//!
//! ```
//! use nmm_core::Model;
//! use nmm_core::mlp::{Mlp, MlpMeanField, Normalisation};
//! // A network with all weights 0.1 and the identity normalisation (a trainer fills in
//! // its arrays: `Mlp { l1: Dense { w, b }, .. }` or `Mlp::from_flat`).
//! let net = Mlp::<f32>::splat(0.1);
//! let m = MlpMeanField::new(net, Normalisation::identity()).unwrap();
//! let d = m.deriv(&m.initial_state(), 0.0);
//! assert!(d.iter().all(|x| x.is_finite()));
//! // Round trip through the weight file (weights are stored as f32: exact for f32 models).
//! let mut buf = [0u8; 600];
//! let n = m.to_bytes(r#"{"seed": 1}"#, &mut buf).unwrap();
//! let back = MlpMeanField::<f32>::from_bytes(&buf[..n]).unwrap();
//! assert_eq!(back.net(), m.net());
//! ```

pub mod fixed_point;
pub mod format;
pub mod tanh;

use crate::models::{Model, POS, ParamError, params};
use crate::real::Real;
use core::fmt::Debug;

pub use fixed_point::{FixedRangeError, Fx, I16F16, MlpFixed, TANH_MAX_ERROR};
pub use format::FormatError;

/// Names of the network inputs, in input order.
pub const INPUTS: [&str; 6] = ["r", "v", "eta", "p", "J", "I"];
/// Names of the network outputs, in output order.
pub const OUTPUTS: [&str; 2] = ["dr/dt", "dv/dt"];

/// The scalar type an [`Mlp`] is evaluated in: `f32`, `f64` or the fixed-point [`I16F16`].
///
/// Only what a dense tanh network needs. The floating-point implementations use
/// [`Real::tanh`] (so the `fast-math` feature applies to `f32`) and an unfused multiply-add,
/// so results are identical on x86-64, wasm32 and the Cortex-M4F. The fixed-point one
/// saturates instead of overflowing and never panics (see [`fixed_point`]).
///
/// ```
/// use nmm_core::mlp::MlpScalar;
/// let y = <f64 as MlpScalar>::dot(&[1.0, 2.0], &[3.0, 4.0], 0.5);
/// assert_eq!(y, 11.5);
/// ```
pub trait MlpScalar: Copy + Debug + PartialEq {
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// Nearest value of this type to `x` (saturating for fixed point; NaN maps to 0 there).
    fn from_f32(x: f32) -> Self;
    /// The value as `f32` (rounded to nearest).
    fn to_f32(self) -> f32;
    /// `self * a + b`, not fused for floats (the same result on every target).
    fn madd(self, a: Self, b: Self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// [`MlpScalar::tanh`] of every element (a batch's lanes), element by element the same
    /// numbers; floats override it with a form that vectorises.
    #[inline(always)]
    fn tanh_lanes<const L: usize>(x: [Self; L]) -> [Self; L] {
        x.map(Self::tanh)
    }
    /// The mean field's network on physical inputs `u = (r, v, eta, p, J, I)`:
    /// `denormalise(net(normalise(u)))`, [`MlpMeanField::deriv_with`]'s whole evaluation.
    /// [`Lanes`](crate::lanes::Lanes) override it with the same operations in one
    /// out-of-line, lane-major function (see there).
    #[inline(always)]
    fn mean_field<const H1: usize, const H2: usize>(
        net: &Mlp<Self, 6, H1, H2, 2>,
        norm: &Normalisation<Self>,
        u: &[Self; 6],
    ) -> [Self; 2]
    where
        Self: Real,
    {
        norm.denormalise(&net.forward(&norm.normalise(u)))
    }
    /// `bias + sum_i w[i] x[i]`, accumulated from the bias in index order. Fixed point
    /// overrides this with an exact 64-bit accumulation and a single rounding.
    #[inline]
    fn dot<const N: usize>(w: &[Self; N], x: &[Self; N], bias: Self) -> Self {
        let mut acc = bias;
        for (wi, xi) in w.iter().zip(x) {
            acc = wi.madd(*xi, acc);
        }
        acc
    }
}

macro_rules! impl_mlp_scalar_float {
    ($t:ty, $tanh:path, $tanh_lanes:path) => {
        impl MlpScalar for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline]
            fn from_f32(x: f32) -> Self {
                x as $t
            }
            #[inline]
            fn to_f32(self) -> f32 {
                self as f32
            }
            #[inline]
            fn madd(self, a: Self, b: Self) -> Self {
                self * a + b
            }
            /// [`tanh::tanh_f64`] / [`tanh::tanh_f32`]: branch-free, so a loop over a batch's
            /// lanes vectorises it (libm's was a call per lane).
            #[inline(always)]
            fn tanh(self) -> Self {
                $tanh(self)
            }
            #[inline(always)]
            fn tanh_lanes<const L: usize>(x: [Self; L]) -> [Self; L] {
                $tanh_lanes(x)
            }
        }
    };
}
impl_mlp_scalar_float!(f64, tanh::tanh_f64, tanh::tanh_f64_lanes);
#[cfg(not(feature = "fast-math"))]
impl_mlp_scalar_float!(f32, tanh::tanh_f32, tanh::tanh_f32_lanes);
// Under `fast-math` f32 keeps micromath's approximation (what that feature is for).
#[cfg(feature = "fast-math")]
impl_mlp_scalar_float!(f32, f32_tanh, f32_tanh_lanes);
#[cfg(feature = "fast-math")]
#[inline(always)]
fn f32_tanh(x: f32) -> f32 {
    <f32 as Real>::tanh(x)
}
#[cfg(feature = "fast-math")]
#[inline(always)]
fn f32_tanh_lanes<const L: usize>(x: [f32; L]) -> [f32; L] {
    x.map(<f32 as Real>::tanh)
}

/// A dense layer `y = W x + b` with `I` inputs and `O` outputs (no activation).
///
/// ```
/// use nmm_core::mlp::Dense;
/// let l = Dense { w: [[1.0, -1.0]], b: [0.5] };
/// assert_eq!(l.forward(&[2.0_f64, 1.0]), [1.5]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dense<S, const I: usize, const O: usize> {
    /// Weights, row-major: `w[o][i]` multiplies input `i` into output `o`.
    pub w: [[S; I]; O],
    /// Biases, one per output.
    pub b: [S; O],
}

impl<S: MlpScalar, const I: usize, const O: usize> Dense<S, I, O> {
    /// `W x + b`.
    #[inline(always)]
    pub fn forward(&self, x: &[S; I]) -> [S; O] {
        // Loops, not `array::from_fn`: with a batch of lanes as `S` the closures stayed calls.
        let mut y = self.b;
        for (o, v) in y.iter_mut().enumerate() {
            *v = S::dot(&self.w[o], x, self.b[o]);
        }
        y
    }

    /// The same layer with every weight and bias mapped by `f` (e.g. a type conversion).
    pub fn map<U>(&self, mut f: impl FnMut(S) -> U) -> Dense<U, I, O> {
        Dense {
            w: self.w.map(|row| row.map(&mut f)),
            b: self.b.map(&mut f),
        }
    }
}

/// A dense network `I -> H1 -> H2 -> O` with tanh on both hidden layers and a linear output;
/// by default the 6 -> 6 -> 6 -> 2 shape of the MLP mean field.
///
/// Fields are plain arrays, so a network is built directly from a trainer's arrays (or with
/// [`Mlp::from_flat`] from one flat vector in file order).
///
/// ```
/// use nmm_core::mlp::Mlp;
/// let net = Mlp::<f32>::splat(0.0);
/// assert_eq!(Mlp::<f32>::N_WEIGHTS, 98);
/// assert_eq!(net.forward(&[1.0; 6]), [0.0, 0.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mlp<S, const I: usize = 6, const H1: usize = 6, const H2: usize = 6, const O: usize = 2>
{
    /// First hidden layer (tanh).
    pub l1: Dense<S, I, H1>,
    /// Second hidden layer (tanh).
    pub l2: Dense<S, H1, H2>,
    /// Output layer (linear).
    pub l3: Dense<S, H2, O>,
}

impl<S: MlpScalar, const I: usize, const H1: usize, const H2: usize, const O: usize>
    Mlp<S, I, H1, H2, O>
{
    /// Number of weights and biases.
    pub const N_WEIGHTS: usize = H1 * (I + 1) + H2 * (H1 + 1) + O * (H2 + 1);

    /// A network with every weight and bias equal to `v`.
    pub fn splat(v: S) -> Self {
        Self {
            l1: Dense {
                w: [[v; I]; H1],
                b: [v; H1],
            },
            l2: Dense {
                w: [[v; H1]; H2],
                b: [v; H2],
            },
            l3: Dense {
                w: [[v; H2]; O],
                b: [v; O],
            },
        }
    }

    /// The network output for input `x`: `l3(tanh(l2(tanh(l1(x)))))`.
    #[inline(always)]
    pub fn forward(&self, x: &[S; I]) -> [S; O] {
        let mut h1 = self.l1.forward(x);
        for h in &mut h1 {
            *h = h.tanh();
        }
        let mut h2 = self.l2.forward(&h1);
        for h in &mut h2 {
            *h = h.tanh();
        }
        self.l3.forward(&h2)
    }

    /// Every weight and bias in file order: `l1.w` row by row, `l1.b`, `l2.w`, `l2.b`,
    /// `l3.w`, `l3.b` ([`Self::N_WEIGHTS`] values).
    pub fn iter(&self) -> impl Iterator<Item = S> + '_ {
        let l1 = self.l1.w.iter().flatten().chain(self.l1.b.iter());
        let l2 = self.l2.w.iter().flatten().chain(self.l2.b.iter());
        let l3 = self.l3.w.iter().flatten().chain(self.l3.b.iter());
        l1.chain(l2).chain(l3).copied()
    }

    /// Mutable references to every weight and bias, in the order of [`Mlp::iter`] (for an
    /// optimiser that updates a flat parameter vector).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut S> + '_ {
        let l1 = self.l1.w.iter_mut().flatten().chain(self.l1.b.iter_mut());
        let l2 = self.l2.w.iter_mut().flatten().chain(self.l2.b.iter_mut());
        let l3 = self.l3.w.iter_mut().flatten().chain(self.l3.b.iter_mut());
        l1.chain(l2).chain(l3)
    }

    /// The network from a flat vector in the order of [`Mlp::iter`], or `None` unless
    /// `flat.len() == N_WEIGHTS`.
    ///
    /// ```
    /// use nmm_core::mlp::Mlp;
    /// let flat: [f64; 98] = core::array::from_fn(|k| k as f64);
    /// let net = Mlp::<f64>::from_flat(&flat).unwrap();
    /// assert_eq!(net.l1.w[0][1], 1.0);
    /// assert_eq!(net.l1.b[0], 36.0);
    /// assert!(net.iter().eq(flat.iter().copied()));
    /// ```
    pub fn from_flat(flat: &[S]) -> Option<Self> {
        if flat.len() != Self::N_WEIGHTS {
            return None;
        }
        let mut net = Self::splat(S::ZERO);
        for (dst, src) in net.iter_mut().zip(flat) {
            *dst = *src;
        }
        Some(net)
    }

    /// The same network with every weight mapped by `f` (e.g. `|w| w as f32`).
    pub fn map<U>(&self, mut f: impl FnMut(S) -> U) -> Mlp<U, I, H1, H2, O> {
        Mlp {
            l1: self.l1.map(&mut f),
            l2: self.l2.map(&mut f),
            l3: self.l3.map(&mut f),
        }
    }
}

/// Name of the array and index within it of the `k`-th value of a weight file's float block
/// (normalisation first, then the network in [`Mlp::iter`] order), for error messages.
pub(crate) fn locate(sizes: [usize; 4], k: usize) -> (&'static str, usize) {
    let [i, h1, h2, o] = sizes;
    let blocks: [(&'static str, usize); 10] = [
        ("in_mean", i),
        ("in_scale", i),
        ("out_scale", o),
        ("out_offset", o),
        ("l1.w", h1.saturating_mul(i)),
        ("l1.b", h1),
        ("l2.w", h2.saturating_mul(h1)),
        ("l2.b", h2),
        ("l3.w", o.saturating_mul(h2)),
        ("l3.b", o),
    ];
    let mut rest = k;
    for (name, len) in blocks {
        if rest < len {
            return (name, rest);
        }
        rest -= len;
    }
    ("(past the end)", rest)
}

/// Affine maps between physical and network units, chosen by the trainer.
///
/// Network input `k` is `(u[k] - in_mean[k]) / in_scale[k]` for the physical inputs `u`
/// (`I` of them; the mean field's are `(r, v, eta, p, J, I)`); the derivative is
/// `y[k] * out_scale[k] + out_offset[k]` for the network output `y` (`O` of them; the mean
/// field's are `(dr/dt, dv/dt)`). Means and offsets carry the unit of their variable (see the
/// module docs); scales too (a scale of 2 in `r` means one network unit is 2 per time unit).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalisation<T, const I: usize = 6, const O: usize = 2> {
    /// Subtracted from each input (unit of the input).
    pub in_mean: [T; I],
    /// Divides each centred input (unit of the input); non-zero.
    pub in_scale: [T; I],
    /// Multiplies each network output (unit of the derivative).
    pub out_scale: [T; O],
    /// Added after scaling (unit of the derivative).
    pub out_offset: [T; O],
}

impl<T: Real, const I: usize, const O: usize> Normalisation<T, I, O> {
    /// Means and offsets 0, scales 1.
    pub fn identity() -> Self {
        Self {
            in_mean: [T::ZERO; I],
            in_scale: [T::ONE; I],
            out_scale: [T::ONE; O],
            out_offset: [T::ZERO; O],
        }
    }

    /// Physical inputs (for the mean field `(r, v, eta, p, J, I)`) to network inputs.
    #[inline(always)]
    pub fn normalise(&self, u: &[T; I]) -> [T; I] {
        let mut z = *u;
        for (k, v) in z.iter_mut().enumerate() {
            *v = (u[k] - self.in_mean[k]) / self.in_scale[k];
        }
        z
    }

    /// Network outputs to derivatives (for the mean field `(dr/dt, dv/dt)`).
    #[inline(always)]
    pub fn denormalise(&self, y: &[T; O]) -> [T; O] {
        let mut d = *y;
        for (k, v) in d.iter_mut().enumerate() {
            *v = y[k] * self.out_scale[k] + self.out_offset[k];
        }
        d
    }

    /// The same normalisation with every value mapped by `f`.
    pub fn map<U>(&self, mut f: impl FnMut(T) -> U) -> Normalisation<U, I, O> {
        Normalisation {
            in_mean: self.in_mean.map(&mut f),
            in_scale: self.in_scale.map(&mut f),
            out_scale: self.out_scale.map(&mut f),
            out_offset: self.out_offset.map(&mut f),
        }
    }

    /// The `2 (I + O)` values (16 for the mean field) in file order: `in_mean`, `in_scale`,
    /// `out_scale`, `out_offset`.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.in_mean
            .iter()
            .chain(&self.in_scale)
            .chain(&self.out_scale)
            .chain(&self.out_offset)
            .copied()
    }

    /// Mutable references in the order of [`Normalisation::iter`].
    fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.in_mean
            .iter_mut()
            .chain(&mut self.in_scale)
            .chain(&mut self.out_scale)
            .chain(&mut self.out_offset)
    }
}

params! {
    /// Parameters of the MLP mean field (the network's inputs besides the state and `I`).
    /// Defaults follow MPR's bistable set at full connectivity; the ranges are what the
    /// inputs may be set to, the network is only trustworthy inside its training grid
    /// (REFERENCE section 2: `eta` in [-10, 0], `J` in [0, 20], `p` in [0.6, 1]), which the
    /// weight file's metadata records.
    pub struct MlpParams {
        /// Centre of the Lorentzian distribution of excitabilities (eta_bar).
        eta: "eta" ["1"] = -5.0, -20.0 => 20.0;
        /// Erdos-Renyi connection probability of the network the MLP was trained on.
        p: "p" ["1"] = 1.0, POS => 1.0;
        /// Synaptic weight (the mean drive is about `J p r`).
        j: "J" ["1"] = 15.0, 0.0 => 40.0;
    }
}

/// The MLP mean field: `(dr/dt, dv/dt) = denormalise(MLP(normalise(r, v, eta, p, J, I)))`.
///
/// `H1` and `H2` are the hidden sizes (6 and 6 by default). The network and normalisation
/// are fixed at construction ([`MlpMeanField::new`] or [`MlpMeanField::from_bytes`]) and
/// checked to be finite with non-zero input scales; the parameters are public and set by
/// name through [`Model::set`] like every model's. The input of [`Model::deriv`] is `I(t)`,
/// in a network the coupling `G sum_j W_ij r_j`. The model has no intrinsic noise
/// ([`Model::diffusion`] is zero); [`Model::project`] keeps `r >= 0`.
///
/// ```
/// use nmm_core::Model;
/// use nmm_core::mlp::{Mlp, MlpMeanField, Normalisation};
/// let mut net = Mlp::<f32>::splat(0.0);
/// net.l3.b = [0.5, -1.0]; // constant network output
/// let mut norm = Normalisation::identity();
/// norm.out_scale = [2.0, 3.0];
/// let mut m = MlpMeanField::new(net, norm).unwrap();
/// m.set("J", 10.0).unwrap();
/// assert_eq!(m.deriv(&[0.2, -1.0], 0.0), [1.0, -3.0]);
/// assert!(m.set("p", 0.0).is_err()); // p in (0, 1]
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MlpMeanField<T, const H1: usize = 6, const H2: usize = 6> {
    /// `eta`, `p` and `J`.
    pub params: MlpParams<T>,
    net: Mlp<T, 6, H1, H2, 2>,
    norm: Normalisation<T>,
}

impl<T: Real + MlpScalar, const H1: usize, const H2: usize> MlpMeanField<T, H1, H2> {
    /// Compile-time check of the hidden sizes: non-zero and storable as `u16` in the file.
    const SIZES_OK: () = assert!(
        H1 > 0 && H2 > 0 && H1 <= u16::MAX as usize && H2 <= u16::MAX as usize,
        "hidden sizes must be in 1..=65535"
    );

    /// The layer sizes `[6, H1, H2, 2]`.
    pub const SIZES: [usize; 4] = [6, H1, H2, 2];

    /// The model from a trained network and its normalisation, with default parameters.
    ///
    /// # Errors
    /// [`FormatError::NonFinite`] naming the first NaN or infinite value,
    /// [`FormatError::ZeroScale`] for an input scale of zero.
    ///
    /// ```
    /// use nmm_core::mlp::{FormatError, Mlp, MlpMeanField, Normalisation};
    /// let mut norm = Normalisation::<f64>::identity();
    /// norm.in_scale[3] = 0.0;
    /// let e = MlpMeanField::new(Mlp::<f64>::splat(0.1), norm).unwrap_err();
    /// assert_eq!(e, FormatError::ZeroScale { index: 3 });
    /// ```
    pub fn new(net: Mlp<T, 6, H1, H2, 2>, norm: Normalisation<T>) -> Result<Self, FormatError> {
        let () = Self::SIZES_OK;
        for (k, v) in norm.iter().chain(net.iter()).enumerate() {
            if !v.is_finite() {
                let (array, index) = locate(Self::SIZES, k);
                return Err(FormatError::NonFinite { array, index });
            }
        }
        if let Some(index) = norm.in_scale.iter().position(|s| *s == <T as Real>::ZERO) {
            return Err(FormatError::ZeroScale { index });
        }
        Ok(Self {
            params: MlpParams::default(),
            net,
            norm,
        })
    }

    /// The network.
    pub fn net(&self) -> &Mlp<T, 6, H1, H2, 2> {
        &self.net
    }

    /// The input/output normalisation.
    pub fn norm(&self) -> &Normalisation<T> {
        &self.norm
    }

    /// `(dr/dt, dv/dt)` at state `x = (r, v)` for explicit parameters and input, leaving
    /// [`MlpMeanField::params`] aside (for sweeps and bifurcation analysis).
    #[inline(always)]
    pub fn deriv_with(&self, x: &[T; 2], eta: T, p: T, j: T, input: T) -> [T; 2] {
        T::mean_field(&self.net, &self.norm, &[x[0], x[1], eta, p, j, input])
    }
}

impl<T: Real + MlpScalar, const H1: usize, const H2: usize> Model<T, 2>
    for MlpMeanField<T, H1, H2>
{
    const NAME: &'static str = "mlp";
    const STATE: [&'static str; 2] = ["r", "v"];
    const COUPLING_VAR: usize = 0;
    const PARAMS: &'static [crate::models::ParamSpec] = MlpParams::<T>::SPECS;

    #[inline(always)]
    fn deriv(&self, x: &[T; 2], input: T) -> [T; 2] {
        let p = &self.params;
        self.deriv_with(x, p.eta, p.p, p.j, input)
    }

    /// `(r, v) = (0.1, -2)`: a low-activity state inside the usual training data (the weight
    /// file stores no initial state).
    fn initial_state(&self) -> [T; 2] {
        [T::from_f64(0.1), T::from_f64(-2.0)]
    }

    /// `r >= 0`.
    #[inline]
    fn project(&self, x: [T; 2]) -> [T; 2] {
        [x[0].max(<T as Real>::ZERO), x[1]]
    }

    fn get(&self, name: &str) -> Option<T> {
        self.params.get(name)
    }

    fn set(&mut self, name: &str, value: T) -> Result<(), ParamError> {
        self.params.set(name, value)
    }
}
