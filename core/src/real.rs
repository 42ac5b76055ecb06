//! The scalar trait every algorithm in nmm-core is written over.
//!
//! [`Real`] carries arithmetic, a few constants and exactly the transcendental functions the
//! models use. It is implemented here for `f32` and `f64` through [`libm`], so results are the
//! same bit for bit on every target that does not fuse multiply-adds (x86-64, wasm32, the
//! Cortex-M4F). Under the `fast-math` feature the `f32` implementation routes `exp`, `tanh`,
//! `sin`, `cos`, `tan` and `atan` through `micromath`'s approximations; `ln`, `sqrt` and
//! `powf` stay on libm because micromath's versions are far off (`ln` by 0.12 absolute, `sqrt`
//! by 6 % relative), which breaks the MPR energy and the BOLD non-linearities.
//!
//! The trait asks only for what a fixed-point type (from `fixed`) or a forward-mode dual number
//! can also provide: constants come from [`Real::from_f64`], comparisons from `PartialOrd`,
//! and nothing needs bit-level access. Conversions back to `f64` ([`Real::to_f64`]) are for
//! output and analysis only, never inside a model's derivative.

use core::fmt::Debug;
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A real scalar: arithmetic, constants and the elementary functions used by the models.
///
/// ```
/// use nmm_core::Real;
/// fn logistic<T: Real>(x: T) -> T {
///     T::ONE / (T::ONE + (-x).exp())
/// }
/// assert!((logistic(0.0_f64) - 0.5).abs() < 1e-15);
/// assert!((logistic(0.0_f32) - 0.5).abs() < 1e-7);
/// ```
pub trait Real:
    Copy
    + Debug
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// 2.
    const TWO: Self;
    /// 1/2.
    const HALF: Self;
    /// pi.
    const PI: Self;
    /// Machine epsilon: the gap between 1 and the next representable value (2^-52 for `f64`,
    /// 2^-23 for `f32`); tolerances and finite-difference steps scale with it.
    const EPSILON: Self;

    /// Nearest representable value of `x` (constants, parameters, conversions from input).
    fn from_f64(x: f64) -> Self;
    /// The value as `f64`, for output and analysis (not for use inside models).
    fn to_f64(self) -> f64;
    /// `n` as a value of this type.
    #[inline]
    fn from_usize(n: usize) -> Self {
        Self::from_f64(n as f64)
    }

    /// Square root.
    fn sqrt(self) -> Self;
    /// e^self.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Sine (radians).
    fn sin(self) -> Self;
    /// Cosine (radians).
    fn cos(self) -> Self;
    /// Tangent (radians).
    fn tan(self) -> Self;
    /// Arc tangent (radians).
    fn atan(self) -> Self;
    /// self^y.
    fn powf(self, y: Self) -> Self;
    /// Largest integer not greater than self.
    fn floor(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// True unless NaN or infinite.
    fn is_finite(self) -> bool;

    /// The larger of two values (the other one if `self` is NaN).
    #[inline]
    fn max(self, other: Self) -> Self {
        if self >= other || other.partial_cmp(&other).is_none() {
            self
        } else {
            other
        }
    }
    /// The smaller of two values (the other one if `self` is NaN).
    #[inline]
    fn min(self, other: Self) -> Self {
        if self <= other || other.partial_cmp(&other).is_none() {
            self
        } else {
            other
        }
    }
    /// self * self.
    #[inline]
    fn sq(self) -> Self {
        self * self
    }
    /// e^self by a method without branches on the value, which vectorises when applied in a
    /// loop (`f64`: [`crate::vecmath::exp`], within 2 units in the last place of libm's);
    /// [`Real::exp`] for the other types. For loops over many values (the BOLD of every
    /// region); a type's two exponentials may differ in the last bit.
    #[inline(always)]
    fn exp_branch_free(self) -> Self {
        self.exp()
    }
    /// The natural logarithm as [`Real::exp_branch_free`] is e^x (`f64`:
    /// [`crate::vecmath::ln`]).
    #[inline(always)]
    fn ln_branch_free(self) -> Self {
        self.ln()
    }
}

macro_rules! impl_real_common {
    ($t:ty, $pi:expr) => {
        const ZERO: Self = 0.0;
        const ONE: Self = 1.0;
        const TWO: Self = 2.0;
        const HALF: Self = 0.5;
        const PI: Self = $pi;
        const EPSILON: Self = <$t>::EPSILON;
        #[inline]
        fn from_f64(x: f64) -> Self {
            x as $t
        }
        #[inline]
        fn to_f64(self) -> f64 {
            self as f64
        }
        #[inline]
        fn abs(self) -> Self {
            if self < 0.0 { -self } else { self }
        }
        #[inline]
        fn is_finite(self) -> bool {
            <$t>::is_finite(self)
        }
    };
}

impl Real for f64 {
    impl_real_common!(f64, core::f64::consts::PI);
    #[inline]
    fn sqrt(self) -> Self {
        libm::sqrt(self)
    }
    #[inline]
    fn exp(self) -> Self {
        libm::exp(self)
    }
    #[inline]
    fn ln(self) -> Self {
        libm::log(self)
    }
    #[inline]
    fn tanh(self) -> Self {
        libm::tanh(self)
    }
    #[inline]
    fn sin(self) -> Self {
        libm::sin(self)
    }
    #[inline]
    fn cos(self) -> Self {
        libm::cos(self)
    }
    #[inline]
    fn tan(self) -> Self {
        libm::tan(self)
    }
    #[inline]
    fn atan(self) -> Self {
        libm::atan(self)
    }
    #[inline]
    fn powf(self, y: Self) -> Self {
        libm::pow(self, y)
    }
    #[inline]
    fn floor(self) -> Self {
        libm::floor(self)
    }
    #[inline(always)]
    fn exp_branch_free(self) -> Self {
        crate::vecmath::exp(self)
    }
    #[inline(always)]
    fn ln_branch_free(self) -> Self {
        crate::vecmath::ln(self)
    }
}

impl Real for f32 {
    impl_real_common!(f32, core::f32::consts::PI);
    #[inline]
    fn sqrt(self) -> Self {
        libm::sqrtf(self)
    }
    #[inline]
    fn ln(self) -> Self {
        libm::logf(self)
    }
    #[inline]
    fn powf(self, y: Self) -> Self {
        libm::powf(self, y)
    }
    #[inline]
    fn floor(self) -> Self {
        libm::floorf(self)
    }
    #[inline]
    fn exp(self) -> Self {
        fast::exp(self)
    }
    #[inline]
    fn tanh(self) -> Self {
        fast::tanh(self)
    }
    #[inline]
    fn sin(self) -> Self {
        fast::sin(self)
    }
    #[inline]
    fn cos(self) -> Self {
        fast::cos(self)
    }
    #[inline]
    fn tan(self) -> Self {
        fast::tan(self)
    }
    #[inline]
    fn atan(self) -> Self {
        fast::atan(self)
    }
}

/// The f32 functions that `fast-math` may replace: libm by default.
#[cfg(not(feature = "fast-math"))]
mod fast {
    pub use libm::{
        atanf as atan, cosf as cos, expf as exp, sinf as sin, tanf as tan, tanhf as tanh,
    };
}

/// The f32 functions that `fast-math` replaces: micromath approximations.
#[cfg(feature = "fast-math")]
mod fast {
    use micromath::F32Ext;
    #[inline]
    pub fn exp(x: f32) -> f32 {
        F32Ext::exp(x)
    }
    /// tanh from micromath's exp; saturates outside |x| > 9 where f32 tanh is +-1 anyway.
    #[inline]
    pub fn tanh(x: f32) -> f32 {
        if x > 9.0 {
            1.0
        } else if x < -9.0 {
            -1.0
        } else {
            let e = F32Ext::exp(2.0 * x);
            (e - 1.0) / (e + 1.0)
        }
    }
    #[inline]
    pub fn sin(x: f32) -> f32 {
        F32Ext::sin(x)
    }
    #[inline]
    pub fn cos(x: f32) -> f32 {
        F32Ext::cos(x)
    }
    #[inline]
    pub fn tan(x: f32) -> f32 {
        F32Ext::tan(x)
    }
    #[inline]
    pub fn atan(x: f32) -> f32 {
        F32Ext::atan(x)
    }
}

/// Element-wise `a + s * b` on fixed-size arrays (the building block of every stepper).
#[inline(always)]
pub fn axpy<T: Real, const N: usize>(a: &[T; N], s: T, b: &[T; N]) -> [T; N] {
    core::array::from_fn(|i| a[i] + s * b[i])
}

/// True when every element is finite.
#[inline]
pub fn all_finite<T: Real, const N: usize>(x: &[T; N]) -> bool {
    x.iter().all(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Edge cases of the generic helpers.
    #[test]
    fn max_min_nan_and_abs() {
        assert_eq!(Real::max(1.0_f64, f64::NAN), 1.0);
        assert_eq!(Real::min(f64::NAN, 2.0), 2.0);
        assert_eq!(Real::abs(-0.0_f32), 0.0);
        assert!(!Real::is_finite(f64::INFINITY));
        assert!(!Real::is_finite(f32::NAN));
    }

    /// The f64 functions are libm's; check a few against std as an independent implementation.
    #[test]
    fn f64_matches_std() {
        for &x in &[-3.7, -0.5, 0.0, 0.3, 1.0, 2.5, 10.0] {
            let tol = 4.0 * f64::EPSILON * (1.0 + x.abs());
            assert!((Real::exp(x) - f64::exp(x)).abs() <= tol * f64::exp(x).max(1.0));
            assert!((Real::tanh(x) - f64::tanh(x)).abs() <= tol);
            assert!((Real::sin(x) - f64::sin(x)).abs() <= tol);
            assert!((Real::atan(x) - f64::atan(x)).abs() <= tol);
        }
    }

    /// Accuracy of the f32 functions against f64 (libm: ~1 ulp; fast-math: micromath's budget).
    #[test]
    fn f32_accuracy() {
        // libm f32 is within a few ulp; micromath exp is ~2.4e-3 relative, sin/cos ~1.1e-3
        // absolute (EMBEDDED.md), and our tanh-from-exp inherits exp's relative error.
        let (rel_exp, abs_trig) = if cfg!(feature = "fast-math") {
            (3e-3, 2e-3)
        } else {
            (3e-7, 3e-7)
        };
        let mut x = -8.0_f64;
        while x < 8.0 {
            let xf = x as f32;
            let xd = xf as f64;
            let e = (Real::exp(xf) as f64 - xd.exp()).abs() / xd.exp();
            assert!(e < rel_exp, "exp({xf}) rel err {e}");
            let t = (Real::tanh(xf) as f64 - xd.tanh()).abs();
            assert!(t < 2.0 * rel_exp, "tanh({xf}) err {t}");
            let s = (Real::sin(xf) as f64 - xd.sin()).abs();
            assert!(s < abs_trig, "sin({xf}) err {s}");
            // ln and sqrt stay on libm even under fast-math.
            if xd > 0.0 {
                let l = (Real::ln(xf) as f64 - xd.ln()).abs();
                assert!(l < 3e-7 * (1.0 + xd.ln().abs()), "ln({xf}) err {l}");
                let q = (Real::sqrt(xf) as f64 - xd.sqrt()).abs() / xd.sqrt();
                assert!(q < 2e-7, "sqrt({xf}) rel err {q}");
            }
            x += 0.0137;
        }
    }
}
