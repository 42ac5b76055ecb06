//! Forward-mode automatic differentiation: [`Dual`] carries a value and its derivatives with
//! respect to `N` seeds at once, and implements [`Real`], so every model, integrator and
//! observer written over `Real` differentiates unchanged (no allocation, `no_std`).
//!
//! Each operation applies the chain rule to the `N` tangents: one pass of a model or of a whole
//! run gives the value and its gradient with respect to `N` parameters (or initial states),
//! at a cost that grows with `N` (each `*` costs `1 + 2N` multiplications) instead of the
//! `N + 1` or `2N` runs of finite differences, and without their truncation error.
//!
//! ```
//! use nmm_core::dual::Dual;
//! use nmm_core::real::Real;
//! // f(x, y) = x^2 y + sin(x) at (1.5, 2): df/dx = 2 x y + cos x, df/dy = x^2.
//! let [x, y] = Dual::<f64, 2>::variables([1.5, 2.0]);
//! let f = x * x * y + x.sin();
//! assert_eq!(f.v, 1.5 * 1.5 * 2.0 + 1.5f64.sin());
//! assert!((f.d[0] - (2.0 * 1.5 * 2.0 + 1.5f64.cos())).abs() < 1e-15);
//! assert_eq!(f.d[1], 1.5 * 1.5);
//! ```
//!
//! The values are computed by the same operations as with `T` itself, so a dual run's values
//! equal the plain run's bit for bit; only the derivatives are added.
//!
//! Orderings (`<`, `max`, `r >= 0` clamps) look at the value only, so a branch taken by a
//! model or an integrator is differentiated as the branch it is (a clamp at a bound has a zero
//! derivative there, as in any automatic differentiation). [`Real::is_finite`] asks for a
//! finite value and finite derivatives, so a run whose gradient overflows reports it as a
//! divergence instead of returning an infinite gradient.

use crate::mlp::MlpScalar;
use crate::real::Real;
use core::cmp::Ordering;
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A value `v` with its derivatives `d[k]` with respect to `N` seeds.
///
/// ```
/// use nmm_core::dual::Dual;
/// let x = Dual::<f64, 1>::new(3.0, [1.0]);
/// let c = Dual::<f64, 1>::constant(2.0);
/// let y = x * x * c; // 2 x^2
/// assert_eq!((y.v, y.d[0]), (18.0, 12.0));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Dual<T, const N: usize> {
    /// The value.
    pub v: T,
    /// The derivatives of the value with respect to the seeds.
    pub d: [T; N],
}

impl<T: Real, const N: usize> Dual<T, N> {
    /// A value with the given derivatives.
    #[inline]
    pub const fn new(v: T, d: [T; N]) -> Self {
        Self { v, d }
    }

    /// A value that depends on none of the seeds (a parameter held fixed).
    ///
    /// ```
    /// use nmm_core::dual::Dual;
    /// assert_eq!(Dual::<f64, 3>::constant(2.5).d, [0.0; 3]);
    /// ```
    #[inline]
    pub const fn constant(v: T) -> Self {
        Self { v, d: [T::ZERO; N] }
    }

    /// `N` independent variables at `values`: variable `k` has derivative 1 with respect to
    /// seed `k` and 0 with respect to the others.
    ///
    /// ```
    /// use nmm_core::dual::Dual;
    /// let [a, b] = Dual::<f64, 2>::variables([1.0, 2.0]);
    /// assert_eq!((a.d, b.d), ([1.0, 0.0], [0.0, 1.0]));
    /// ```
    #[inline]
    pub fn variables(values: [T; N]) -> [Self; N] {
        core::array::from_fn(|k| {
            let mut d = [T::ZERO; N];
            d[k] = T::ONE;
            Self { v: values[k], d }
        })
    }

    /// `f(self)` given `f(v)` and `f'(v)`: the chain rule on every tangent. A zero tangent stays
    /// zero even where `f'` is infinite (`sqrt` or `ln` of a constant 0), instead of 0 x inf.
    #[inline]
    fn chain(self, f: T, df: T) -> Self {
        Self {
            v: f,
            d: self.d.map(|x| if x == T::ZERO { T::ZERO } else { x * df }),
        }
    }
}

impl<T: Real, const N: usize> PartialEq for Dual<T, N> {
    /// Equal values and equal derivatives: the same quantity. Code that asks whether two
    /// numbers are the same (regions with the same model share one evaluation, a zero weight is
    /// skipped) must not drop a derivative: a region whose parameter is seeded differs from
    /// the others, and a weight of value 0 with a derivative is kept. Ordering ([`PartialOrd`])
    /// looks at the values only.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.v == other.v && self.d == other.d
    }
}

impl<T: Real, const N: usize> PartialOrd for Dual<T, N> {
    /// The values' order (derivatives do not order numbers).
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.v.partial_cmp(&other.v)
    }
}

impl<T: Real, const N: usize> Add for Dual<T, N> {
    type Output = Self;
    #[inline]
    fn add(self, o: Self) -> Self {
        Self {
            v: self.v + o.v,
            d: core::array::from_fn(|k| self.d[k] + o.d[k]),
        }
    }
}

impl<T: Real, const N: usize> Sub for Dual<T, N> {
    type Output = Self;
    #[inline]
    fn sub(self, o: Self) -> Self {
        Self {
            v: self.v - o.v,
            d: core::array::from_fn(|k| self.d[k] - o.d[k]),
        }
    }
}

// The product and quotient rules use + and - inside `*` and `/` by design.
#[allow(clippy::suspicious_arithmetic_impl)]
impl<T: Real, const N: usize> Mul for Dual<T, N> {
    type Output = Self;
    #[inline]
    fn mul(self, o: Self) -> Self {
        Self {
            v: self.v * o.v,
            d: core::array::from_fn(|k| self.d[k] * o.v + self.v * o.d[k]),
        }
    }
}

#[allow(clippy::suspicious_arithmetic_impl)]
impl<T: Real, const N: usize> Div for Dual<T, N> {
    type Output = Self;
    #[inline]
    fn div(self, o: Self) -> Self {
        // The value as `T` divides, so a dual run's values are the plain run's bit for bit.
        let q = self.v / o.v;
        Self {
            v: q,
            d: core::array::from_fn(|k| (self.d[k] - q * o.d[k]) / o.v),
        }
    }
}

impl<T: Real, const N: usize> Neg for Dual<T, N> {
    type Output = Self;
    #[inline]
    fn neg(self) -> Self {
        Self {
            v: -self.v,
            d: self.d.map(|x| -x),
        }
    }
}

macro_rules! assign_op {
    ($tr:ident, $f:ident, $op:tt) => {
        impl<T: Real, const N: usize> $tr for Dual<T, N> {
            #[inline]
            fn $f(&mut self, o: Self) {
                *self = *self $op o;
            }
        }
    };
}
assign_op!(AddAssign, add_assign, +);
assign_op!(SubAssign, sub_assign, -);
assign_op!(MulAssign, mul_assign, *);
assign_op!(DivAssign, div_assign, /);

impl<T: Real, const N: usize> Real for Dual<T, N> {
    const ZERO: Self = Self::constant(T::ZERO);
    const ONE: Self = Self::constant(T::ONE);
    const TWO: Self = Self::constant(T::TWO);
    const HALF: Self = Self::constant(T::HALF);
    const PI: Self = Self::constant(T::PI);
    const EPSILON: Self = Self::constant(T::EPSILON);

    #[inline]
    fn from_f64(x: f64) -> Self {
        Self::constant(T::from_f64(x))
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self.v.to_f64()
    }
    #[inline]
    fn sqrt(self) -> Self {
        let s = self.v.sqrt();
        self.chain(s, T::HALF / s)
    }
    #[inline]
    fn exp(self) -> Self {
        let e = self.v.exp();
        self.chain(e, e)
    }
    #[inline]
    fn ln(self) -> Self {
        self.chain(self.v.ln(), T::ONE / self.v)
    }
    /// The value part as `T`'s (so a dual run's values are its `T` run's, bit for bit).
    #[inline]
    fn exp_branch_free(self) -> Self {
        let e = self.v.exp_branch_free();
        self.chain(e, e)
    }
    /// The value part as `T`'s.
    #[inline]
    fn ln_branch_free(self) -> Self {
        self.chain(self.v.ln_branch_free(), T::ONE / self.v)
    }
    #[inline]
    fn tanh(self) -> Self {
        let t = self.v.tanh();
        self.chain(t, T::ONE - t * t)
    }
    #[inline]
    fn sin(self) -> Self {
        self.chain(self.v.sin(), self.v.cos())
    }
    #[inline]
    fn cos(self) -> Self {
        self.chain(self.v.cos(), -self.v.sin())
    }
    #[inline]
    fn tan(self) -> Self {
        let t = self.v.tan();
        self.chain(t, T::ONE + t * t)
    }
    #[inline]
    fn atan(self) -> Self {
        self.chain(self.v.atan(), T::ONE / (T::ONE + self.v * self.v))
    }
    /// `x^y = exp(y ln x)`: `d = y x^(y-1) dx + x^y ln(x) dy`; each term only where its tangent
    /// is not zero (a constant exponent on a negative or zero base stays finite).
    #[inline]
    fn powf(self, y: Self) -> Self {
        let p = self.v.powf(y.v);
        let dx = y.v * self.v.powf(y.v - T::ONE);
        let varies = y.d.iter().any(|&x| x != T::ZERO);
        let dy = if varies { p * self.v.ln() } else { T::ZERO };
        // Zero tangents contribute nothing, even where a factor is infinite or NaN.
        let term = |t: T, f: T| if t == T::ZERO { T::ZERO } else { t * f };
        Self {
            v: p,
            d: core::array::from_fn(|k| term(self.d[k], dx) + term(y.d[k], dy)),
        }
    }
    #[inline]
    fn floor(self) -> Self {
        Self::constant(self.v.floor())
    }
    #[inline]
    fn abs(self) -> Self {
        if self.v < T::ZERO { -self } else { self }
    }
    /// A finite value with finite derivatives.
    #[inline]
    fn is_finite(self) -> bool {
        self.v.is_finite() && self.d.iter().all(|x| x.is_finite())
    }
}

impl<T: Real + MlpScalar, const N: usize> MlpScalar for Dual<T, N> {
    const ZERO: Self = Self::constant(<T as Real>::ZERO);
    const ONE: Self = Self::constant(<T as Real>::ONE);
    #[inline]
    fn from_f32(x: f32) -> Self {
        Self::constant(<T as MlpScalar>::from_f32(x))
    }
    #[inline]
    fn to_f32(self) -> f32 {
        self.v.to_f32()
    }
    /// `self * a + b`, unfused as for the floats.
    #[inline]
    fn madd(self, a: Self, b: Self) -> Self {
        self * a + b
    }
    #[inline]
    fn tanh(self) -> Self {
        <Self as Real>::tanh(self)
    }
}
