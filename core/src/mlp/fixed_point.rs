//! Fixed-point evaluation of the MLP mean field in `I16F16` (Q15.16: 32-bit words, 16
//! fractional bits, range ±32768, resolution 2^-16 ≈ 1.5e-5).
//!
//! **Why `I16F16`.** One 32-bit type covers every quantity on the path: the physical inputs
//! (`eta` in ±20, `J` up to 40, `r` up to ~10, `v` within ±50), the normalised activations
//! (|z| of a few units), the pre-activations (at most `6 * 2 * |z| + |b|`, tens) and the
//! de-normalised derivatives (`dv/dt` reaches hundreds during an up-swing, `v^2` alone is 144
//! at `v = -12`). `I8F24` would resolve 256 times finer but saturates at ±128, below those
//! derivatives, so it would need a second type and conversions. With 32-bit words each
//! product is one 32 x 32 -> 64-bit multiply, and a dot product accumulates exactly in 64 bits
//! before one rounding (one `SMLAL` per weight on a Cortex-M4). The quantisation of inputs
//! and weights (2^-17 ≈ 7.6e-6) and of tanh ([`TANH_MAX_ERROR`]) adds up, for random networks
//! with |w| <= 2 on normalised inputs in [-3, 3], to at most 6e-4 in network units (measured
//! in the `mlp_fixed` tests; [`Mlp::error_bound`] gives a guaranteed bound for given weights),
//! well below the error with which a 98-weight network reproduces a finite spiking network.
//!
//! Every operation saturates instead of overflowing and none can panic, for any input.
//!
//! ```
//! use nmm_core::mlp::{Fx, Mlp, MlpFixed, MlpMeanField, Normalisation};
//! use nmm_core::Model;
//! let m = MlpMeanField::new(Mlp::<f32>::splat(0.2), Normalisation::identity()).unwrap();
//! let fx = MlpFixed::from_model(&m).unwrap();
//! let x = [Fx::from_num(0.1), Fx::from_num(-2.0)];
//! let d = fx.deriv(&x, Fx::ZERO);
//! let d_float = m.deriv(&[0.1, -2.0], 0.0);
//! assert!((d[0].to_num::<f32>() - d_float[0]).abs() < 1e-3);
//! ```

use super::{Dense, Mlp, MlpMeanField, MlpScalar, locate};
use crate::real::Real;
use core::fmt;
use fixed::types::I8F24;
pub use fixed::types::I16F16;

/// The fixed-point scalar of the MLP (`I16F16`).
pub type Fx = I16F16;

/// One unit in the last place of [`Fx`] (2^-16).
const ULP: f64 = 1.0 / 65536.0;

/// Maximum absolute error of [`tanh`] against the exact `tanh` of its (representable) input,
/// over every `I16F16` value: the final rounding to 16 fractional bits (2^-17 = 7.63e-6) plus
/// the cubic-Hermite interpolation error `h^4 max|tanh''''| / 384 = 1.6e-7` (`h = 1/16`,
/// `max|tanh''''| = 4.09`) and below 1e-8 of table and intermediate rounding: 0.51 ulp.
/// Checked exhaustively on [-9, 9] (measured maximum 7.784e-6 at x = ±0.40742); beyond
/// |x| = 8 the result is exactly ±1, within `1 - tanh(8) = 2.3e-7`.
pub const TANH_MAX_ERROR: f64 = 7.8e-6;

/// `tanh(k / 16)` for `k = 0..=128` in Q2.30 (`round(tanh(k/16) * 2^30)`).
static TANH_Q30: [i32; 129] = [
    0, 67021619, 133523019, 199000008, 262979411, 325032097, 384783327, 441919982, 496194519,
    547425766, 595496917, 640351229, 681985995, 720445410, 755812887, 788203292, 817755498,
    844625518, 868980407, 890993016, 910837623, 928686409, 944706725, 959059047, 971895537,
    983359117, 993582944, 1002690226, 1010794288, 1017998824, 1024398298, 1030078428, 1035116732,
    1039583108, 1043540415, 1047045057, 1050147544, 1052893030, 1055321814, 1057469822, 1059369036,
    1061047900, 1062531689, 1063842843, 1065001270, 1066024621, 1066928539, 1067726879, 1068431906,
    1069054476, 1069604193, 1070089550, 1070518060, 1070896360, 1071230320, 1071525125, 1071785356,
    1072015063, 1072217818, 1072396782, 1072554741, 1072694159, 1072817210, 1072925813, 1073021665,
    1073106261, 1073180922, 1073246815, 1073304968, 1073356291, 1073401585, 1073441558, 1073476836,
    1073507970, 1073535446, 1073559694, 1073581093, 1073599978, 1073616644, 1073631353, 1073644333,
    1073655788, 1073665897, 1073674818, 1073682692, 1073689640, 1073695771, 1073701183, 1073705958,
    1073710172, 1073713891, 1073717174, 1073720070, 1073722626, 1073724882, 1073726873, 1073728629,
    1073730180, 1073731548, 1073732756, 1073733821, 1073734761, 1073735591, 1073736324, 1073736970,
    1073737540, 1073738044, 1073738488, 1073738880, 1073739226, 1073739531, 1073739801, 1073740038,
    1073740248, 1073740433, 1073740597, 1073740741, 1073740868, 1073740980, 1073741080, 1073741167,
    1073741244, 1073741312, 1073741373, 1073741426, 1073741472, 1073741514, 1073741550, 1073741582,
];

/// `acc / 2^shift` rounded to nearest (ties up), saturated to [`Fx`]. `shift` in 1..=62.
#[inline]
fn round_shift(acc: i64, shift: u32) -> Fx {
    let r = acc.saturating_add(1 << (shift - 1)) >> shift;
    Fx::from_bits(r.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
}

/// Hyperbolic tangent in `I16F16`, within [`TANH_MAX_ERROR`] of the exact value, odd,
/// non-decreasing, exactly ±1 for |x| >= 8.
///
/// Cubic Hermite interpolation on [0, 8) between knots `k/16` from a 129-entry Q2.30 table,
/// with the knot slopes `1 - tanh^2` computed from the table; evaluated in 64-bit integer
/// arithmetic, rounded once to 16 fractional bits.
///
/// ```
/// use nmm_core::mlp::{Fx, fixed_point::tanh};
/// let y = tanh(Fx::from_num(0.5));
/// assert!((y.to_num::<f64>() - 0.5f64.tanh()).abs() < 1e-5);
/// assert_eq!(tanh(Fx::MAX), Fx::ONE);
/// assert_eq!(tanh(Fx::MIN), -Fx::ONE);
/// ```
pub fn tanh(x: Fx) -> Fx {
    const LIMIT: i32 = 8 << 16;
    const ONE_Q30: i64 = 1 << 30;
    let bits = x.to_bits();
    if bits >= LIMIT {
        return Fx::ONE;
    }
    if bits <= -LIMIT {
        return -Fx::ONE;
    }
    let a = bits.unsigned_abs(); // < 2^19
    let k = ((a >> 12) & 127) as usize; // knot index, 0..=127
    let t = i64::from(a & 0xFFF); // position within the interval, Q0.12
    let y0 = i64::from(TANH_Q30[k]);
    let y1 = i64::from(TANH_Q30[k + 1]);
    // Slopes times the interval width h = 1/16: (1 - y^2) / 16.
    let m0 = (ONE_Q30 - ((y0 * y0) >> 30)) >> 4;
    let m1 = (ONE_Q30 - ((y1 * y1) >> 30)) >> 4;
    let c2 = 3 * (y1 - y0) - 2 * m0 - m1;
    let c3 = 2 * (y0 - y1) + m0 + m1;
    let mut acc = c3;
    acc = c2 + ((acc * t) >> 12);
    acc = m0 + ((acc * t) >> 12);
    acc = y0 + ((acc * t) >> 12);
    let mag = ((acc + (1 << 13)) >> 14).clamp(0, 1 << 16) as i32;
    Fx::from_bits(if bits < 0 { -mag } else { mag })
}

impl MlpScalar for I16F16 {
    const ZERO: Self = Fx::ZERO;
    const ONE: Self = Fx::ONE;

    /// Rounded to nearest, saturating at ±32768; NaN gives 0.
    #[inline]
    fn from_f32(x: f32) -> Self {
        if x.is_nan() {
            Fx::ZERO
        } else {
            Fx::saturating_from_num(x)
        }
    }

    #[inline]
    fn to_f32(self) -> f32 {
        self.to_num::<f32>()
    }

    /// Exact product plus `b`, one rounding to nearest, saturating.
    #[inline]
    fn madd(self, a: Self, b: Self) -> Self {
        Self::dot(&[self], &[a], b)
    }

    #[inline]
    fn tanh(self) -> Self {
        tanh(self)
    }

    /// Exact 64-bit accumulation of `bias + sum w x` (saturating), one rounding to nearest.
    #[inline]
    fn dot<const N: usize>(w: &[Self; N], x: &[Self; N], bias: Self) -> Self {
        let mut acc = i64::from(bias.to_bits()) << 16;
        for (wi, xi) in w.iter().zip(x) {
            acc = acc.saturating_add(i64::from(wi.to_bits()) * i64::from(xi.to_bits()));
        }
        round_shift(acc, 16)
    }
}

/// Sum of absolute weights of the largest row (the layer's infinity-norm gain).
fn max_row_sum<const I: usize, const O: usize>(l: &Dense<Fx, I, O>) -> f64 {
    l.w.iter()
        .map(|row| {
            row.iter()
                .map(|w| libm::fabs(w.to_num::<f64>()))
                .sum::<f64>()
        })
        .fold(0.0, f64::max)
}

/// Forward error bound of one fixed-point layer: input error `e_in`, exact inputs bounded by
/// `x_max`, weights within half an ulp of the exact ones.
fn layer_bound<const I: usize, const O: usize>(l: &Dense<Fx, I, O>, e_in: f64, x_max: f64) -> f64 {
    // sum |w_hat| |x_hat - x| + sum |w_hat - w| |x| + |b_hat - b| + final rounding
    max_row_sum(l) * e_in + 0.5 * ULP * (I as f64 * x_max + 2.0)
}

impl<const I: usize, const H1: usize, const H2: usize, const O: usize> Mlp<Fx, I, H1, H2, O> {
    /// Upper bound on `|forward(x_hat)[k] - exact(x)[k]|` for every output `k`, where
    /// `exact` is this network in exact arithmetic with the weights these were rounded from
    /// (to nearest, as [`MlpFixed::from_model`] does), `|x[i]| <= x_max` and
    /// `|x_hat[i] - x[i]| <= x_err`, as long as nothing saturates.
    ///
    /// Per layer, with `u = 2^-16`: `E_out = max_o sum_i |w_oi| E_in + u/2 (I x_max + 2)`
    /// (input error through the weights, weight rounding times the input, bias rounding and
    /// the single rounding of the exact 64-bit dot product); tanh adds [`TANH_MAX_ERROR`] and
    /// is 1-Lipschitz, and hidden activations are bounded by 1. For the default shape with
    /// |w| <= 2 and |x| <= 4 the bound is at most 0.045; for typical weights it is far smaller
    /// and the actual error smaller still (see the `mlp_fixed` tests).
    ///
    /// ```
    /// use nmm_core::mlp::{Fx, Mlp};
    /// let net = Mlp::<f64>::splat(0.5).map(Fx::from_num);
    /// let b = net.error_bound(3.0, 0.5 / 65536.0);
    /// assert!(b > 0.0 && b < 1e-2);
    /// ```
    pub fn error_bound(&self, x_max: f64, x_err: f64) -> f64 {
        let e1 = layer_bound(&self.l1, x_err, x_max) + TANH_MAX_ERROR;
        let e2 = layer_bound(&self.l2, e1, 1.0) + TANH_MAX_ERROR;
        layer_bound(&self.l3, e2, 1.0)
    }
}

/// A value does not fit the fixed-point type it must be converted to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FixedRangeError {
    /// The array (as in [`super::FormatError::NonFinite`], or `1/in_scale`, `eta`, `p`, `J`).
    pub array: &'static str,
    /// Index within the array.
    pub index: usize,
    /// The value.
    pub value: f64,
    /// Largest representable magnitude of the target type.
    pub max: f64,
}

impl fmt::Display for FixedRangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{}] = {} does not fit fixed point (|x| < {})",
            self.array, self.index, self.value, self.max
        )
    }
}

impl core::error::Error for FixedRangeError {}

/// The MLP mean field in `I16F16`, built from a floating-point [`MlpMeanField`] with the same
/// weights (rounded to nearest), for firmware.
///
/// Normalisation multiplies by `1/in_scale`, stored in `I8F24` (2^-24 resolution) so that the
/// normalised input is accurate to about one `I16F16` ulp even for scales of tens; this needs
/// `|in_scale| > 1/128`. The network runs as [`Mlp::forward`] over [`I16F16`]; the output
/// `y * out_scale + out_offset` is one exact multiply-add with a single rounding.
///
/// ```
/// use nmm_core::mlp::{Fx, Mlp, MlpFixed, MlpMeanField, Normalisation};
/// let mut norm = Normalisation::<f32>::identity();
/// norm.in_scale[2] = 1e-3; // 1/in_scale = 1000 does not fit I8F24
/// let m = MlpMeanField::new(Mlp::<f32>::splat(0.1), norm).unwrap();
/// assert_eq!(MlpFixed::from_model(&m).unwrap_err().array, "1/in_scale");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MlpFixed<const H1: usize = 6, const H2: usize = 6> {
    /// `eta_bar` (dimensionless).
    pub eta: Fx,
    /// Connection probability.
    pub p: Fx,
    /// Synaptic weight `J` (dimensionless).
    pub j: Fx,
    net: Mlp<Fx, 6, H1, H2, 2>,
    in_mean: [Fx; 6],
    inv_scale: [I8F24; 6],
    out_scale: [Fx; 2],
    out_offset: [Fx; 2],
}

impl<const H1: usize, const H2: usize> MlpFixed<H1, H2> {
    /// Converts a floating-point model (weights, normalisation and current parameters).
    ///
    /// # Errors
    /// [`FixedRangeError`] when a value exceeds ±32768 or `1/in_scale` exceeds ±128.
    pub fn from_model<T: Real + MlpScalar>(
        m: &MlpMeanField<T, H1, H2>,
    ) -> Result<Self, FixedRangeError> {
        fn fx(array: &'static str, index: usize, v: f64) -> Result<Fx, FixedRangeError> {
            Fx::checked_from_num(v).ok_or(FixedRangeError {
                array,
                index,
                value: v,
                max: 32768.0,
            })
        }
        let sizes = MlpMeanField::<T, H1, H2>::SIZES;
        let mut net = Mlp::splat(Fx::ZERO);
        for (k, (dst, v)) in net.iter_mut().zip(m.net().iter()).enumerate() {
            let (array, index) = locate(sizes, 16 + k);
            *dst = fx(array, index, v.to_f64())?;
        }
        let norm = m.norm();
        let mut in_mean = [Fx::ZERO; 6];
        let mut inv_scale = [I8F24::ZERO; 6];
        for k in 0..6 {
            in_mean[k] = fx("in_mean", k, norm.in_mean[k].to_f64())?;
            let inv = 1.0 / norm.in_scale[k].to_f64();
            inv_scale[k] = I8F24::checked_from_num(inv).ok_or(FixedRangeError {
                array: "1/in_scale",
                index: k,
                value: inv,
                max: 128.0,
            })?;
        }
        let mut out_scale = [Fx::ZERO; 2];
        let mut out_offset = [Fx::ZERO; 2];
        for k in 0..2 {
            out_scale[k] = fx("out_scale", k, norm.out_scale[k].to_f64())?;
            out_offset[k] = fx("out_offset", k, norm.out_offset[k].to_f64())?;
        }
        let p = &m.params;
        Ok(Self {
            eta: fx("eta", 0, p.eta.to_f64())?,
            p: fx("p", 0, p.p.to_f64())?,
            j: fx("J", 0, p.j.to_f64())?,
            net,
            in_mean,
            inv_scale,
            out_scale,
            out_offset,
        })
    }

    /// The network in fixed point.
    pub fn net(&self) -> &Mlp<Fx, 6, H1, H2, 2> {
        &self.net
    }

    /// `(r, v) = (0.1, -2)`, as [`MlpMeanField`]'s.
    pub fn initial_state(&self) -> [Fx; 2] {
        [Fx::from_bits(6554), Fx::from_bits(-2 << 16)] // 6554 / 65536 = 0.1000061
    }

    /// `(dr/dt, dv/dt)` at `x = (r, v)` with the stored parameters and input `I`.
    #[inline]
    pub fn deriv(&self, x: &[Fx; 2], input: Fx) -> [Fx; 2] {
        self.deriv_with(x, self.eta, self.p, self.j, input)
    }

    /// `(dr/dt, dv/dt)` at `x = (r, v)` for explicit `eta`, `p`, `J` and input `I`.
    #[inline]
    pub fn deriv_with(&self, x: &[Fx; 2], eta: Fx, p: Fx, j: Fx, input: Fx) -> [Fx; 2] {
        let u = [x[0], x[1], eta, p, j, input];
        let z: [Fx; 6] = core::array::from_fn(|k| {
            let d = u[k].saturating_sub(self.in_mean[k]);
            round_shift(
                i64::from(d.to_bits()) * i64::from(self.inv_scale[k].to_bits()),
                24,
            )
        });
        let y = self.net.forward(&z);
        core::array::from_fn(|k| Fx::dot(&[y[k]], &[self.out_scale[k]], self.out_offset[k]))
    }
}

#[cfg(test)]
mod tests {
    /// Every knot is libm's tanh rounded to nearest in Q2.30.
    #[test]
    fn tanh_table_is_libm_rounded() {
        for (k, &y) in super::TANH_Q30.iter().enumerate() {
            let want = libm::round(libm::tanh(k as f64 / 16.0) * (1u64 << 30) as f64) as i32;
            assert_eq!(y, want, "knot {k}");
        }
    }
}
