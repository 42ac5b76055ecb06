//! Many simulations in one: [`Lanes`] holds `L` independent values of a scalar and implements
//! [`Real`] lane by lane, so every model, integrator, whole-brain network and observer written
//! over `Real` advances `L` simulations at once, unchanged; `Lanes` is also an [`MlpScalar`], so
//! the MLP mean field batches the same way.
//!
//! Each arithmetic operation is the scalar operation applied to each lane, so lane `k` of a
//! batched run computes exactly what a run on `T` would, bit for bit, and the per-lane work
//! compiles to vector instructions (four `f64` or eight `f32` lanes per AVX2 instruction, eight
//! and sixteen with AVX-512). Transcendental functions call the scalar `libm` function per lane
//! (the same numbers as a scalar run; they are not vectorised), except the branch-free ones,
//! which vectorise: [`Real::exp_branch_free`] and [`Real::ln_branch_free`] in `f64` (BOLD)
//! and the MLP's `tanh` ([`crate::mlp::tanh`]).
//!
//! Lanes do not share anything but the code path: a lane that overflows or turns NaN leaves
//! the others as they would be alone. What has no lane-wise meaning:
//!
//! - Ordering. `a < b` holds when it holds in every lane ([`PartialOrd::partial_cmp`] gives an
//!   order only when all lanes agree, `None` otherwise). [`Real::max`], [`Real::min`] and
//!   [`Real::abs`] are lane-wise, so clamps such as MPR's `r >= 0` are exact; a model that
//!   *branches* on a comparison (reduced Wong-Wang's series near its threshold) runs one branch
//!   for all lanes and is not bit-identical to its scalar runs. Batch only models whose
//!   right-hand side does not branch (MPR, Chen-Campbell, the MLP), as the library does.
//! - [`Real::is_finite`] is true when every lane is finite: a network step reports a
//!   non-finite state if any lane has one, and the caller finds which.
//! - [`Real::to_f64`] gives lane 0; read lanes with [`Lanes::lane`] or the public array.
//! - A model on lanes checks a parameter's range on lane 0 only ([`Model::set`] converts with
//!   `to_f64`), and its [`Model::initial_state`] (a root search that branches) is not
//!   lane-wise. Build and check one scalar model per lane, then gather them with
//!   [`set_params`] and [`gather_state`].
//!
//! ```
//! use nmm_core::lanes::Lanes;
//! use nmm_core::models::Mpr;
//! use nmm_core::{Model, Real};
//! // Two MPR nodes with different eta in one evaluation.
//! let mut m = Mpr::<Lanes<f64, 2>>::default();
//! m.set("eta", Lanes([-5.0, -4.0])).unwrap();
//! let x = [Lanes::splat(0.5), Lanes::splat(-1.0)];
//! let d = m.deriv(&x, Lanes::ZERO);
//! for k in 0..2 {
//!     let mut s = Mpr::<f64>::default();
//!     s.set("eta", [-5.0, -4.0][k]).unwrap();
//!     let ds = s.deriv(&[0.5, -1.0], 0.0);
//!     assert_eq!([d[0].lane(k), d[1].lane(k)], ds); // bit for bit
//! }
//! ```

use crate::mlp::{Mlp, MlpMeanField, MlpScalar, Normalisation};
use crate::models::{ChenCampbell, Model, Mpr, ParamError};
use crate::real::Real;
use core::cmp::Ordering;
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// `L` values of `T`, one per simulation, operated on lane by lane.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(transparent)]
pub struct Lanes<T, const L: usize>(pub [T; L]);

impl<T: Copy, const L: usize> Lanes<T, L> {
    /// The same value in every lane.
    #[inline(always)]
    pub const fn splat(x: T) -> Self {
        Self([x; L])
    }

    /// Lane `k`'s value.
    ///
    /// # Panics
    /// If `k >= L`.
    #[inline(always)]
    pub fn lane(self, k: usize) -> T {
        self.0[k]
    }

    /// `f` applied to every lane.
    #[inline(always)]
    pub fn map(self, f: impl Fn(T) -> T) -> Self {
        // Plain loops, not `array::map`/`from_fn`: those left closure calls un-inlined per
        // lane (perf showed `Wrapped::call_mut` frames) and halved the batched step's speed.
        let mut out = self.0;
        for v in &mut out {
            *v = f(*v);
        }
        Self(out)
    }

    #[inline(always)]
    fn zip(self, o: Self, f: impl Fn(T, T) -> T) -> Self {
        let mut out = self.0;
        for (v, b) in out.iter_mut().zip(o.0) {
            *v = f(*v, b);
        }
        Self(out)
    }
}

/// A model whose right-hand side, projection and coupling gain do not branch on the state or
/// the parameters (only lane-wise `max`/`min` clamps), so that its copy on [`Lanes`] computes
/// lane `k` exactly as the scalar model with lane `k`'s parameters: the models a batched run
/// may use. MPR, Chen-Campbell and the MLP mean field are; reduced Wong-Wang is not (its rate
/// function switches to a series near its threshold).
pub trait Batchable<T: Real, const N: usize>: Model<T, N> + Clone {
    /// The model on `L` lanes.
    type Batch<const L: usize>: Model<Lanes<T, L>, N> + Clone + PartialEq;

    /// The model on lanes whose lane `k` has `models[k]`'s parameters (models of one kind: an
    /// MLP batch takes lane 0's network, which must be every lane's).
    ///
    /// # Errors
    /// [`ParamError`] if a lane's parameter is rejected by the batch model (it is not, for
    /// models that were valid scalar models).
    fn batch<const L: usize>(models: &[Self; L]) -> Result<Self::Batch<L>, ParamError>;
}

impl<T: Real> Batchable<T, 2> for Mpr<T> {
    type Batch<const L: usize> = Mpr<Lanes<T, L>>;
    fn batch<const L: usize>(models: &[Self; L]) -> Result<Self::Batch<L>, ParamError> {
        let mut b = Mpr::default();
        set_params(&mut b, models)?;
        Ok(b)
    }
}

impl<T: Real> Batchable<T, 4> for ChenCampbell<T> {
    type Batch<const L: usize> = ChenCampbell<Lanes<T, L>>;
    fn batch<const L: usize>(models: &[Self; L]) -> Result<Self::Batch<L>, ParamError> {
        let mut b = ChenCampbell::default();
        set_params(&mut b, models)?;
        Ok(b)
    }
}

impl<T: Real + MlpScalar, const H1: usize, const H2: usize> Batchable<T, 2>
    for MlpMeanField<T, H1, H2>
{
    type Batch<const L: usize> = MlpMeanField<Lanes<T, L>, H1, H2>;
    fn batch<const L: usize>(models: &[Self; L]) -> Result<Self::Batch<L>, ParamError> {
        let first = models.first().ok_or(ParamError::Unknown)?;
        // Cannot fail: the network and normalisation are those of a valid model.
        let mut b = MlpMeanField::new(
            first.net().map(Lanes::splat),
            first.norm().map(Lanes::splat),
        )
        .map_err(|_| ParamError::Unknown)?;
        set_params(&mut b, models)?;
        Ok(b)
    }
}

/// Sets every parameter of `batch`, a model on lanes, so that lane `k` has `models[k]`'s
/// value ([`Model::PARAMS`] of the scalar model, by name).
///
/// # Errors
/// [`ParamError::Unknown`] if `batch` lacks one of the scalar model's parameters.
///
/// ```
/// use nmm_core::lanes::{Lanes, set_params};
/// use nmm_core::models::Mpr;
/// use nmm_core::Model;
/// let (a, b) = (Mpr { eta: -5.0, ..Mpr::default() }, Mpr { eta: -4.0, ..Mpr::default() });
/// let mut batch = Mpr::<Lanes<f64, 2>>::default();
/// set_params(&mut batch, &[a, b]).unwrap();
/// assert_eq!(batch.eta, Lanes([-5.0, -4.0]));
/// assert_eq!(batch.j, Lanes([15.0, 15.0]));
/// ```
pub fn set_params<T, M, B, const N: usize, const L: usize>(
    batch: &mut B,
    models: &[M; L],
) -> Result<(), ParamError>
where
    T: Real,
    M: Model<T, N>,
    B: Model<Lanes<T, L>, N>,
{
    for spec in M::PARAMS {
        let mut v = [T::ZERO; L];
        for (x, m) in v.iter_mut().zip(models) {
            *x = m.get(spec.name).ok_or(ParamError::Unknown)?;
        }
        batch.set(spec.name, Lanes(v))?;
    }
    Ok(())
}

/// The state whose lane `k` is `states[k]`.
///
/// ```
/// use nmm_core::lanes::{Lanes, gather_state};
/// assert_eq!(gather_state(&[[1.0, 2.0], [3.0, 4.0]]), [Lanes([1.0, 3.0]), Lanes([2.0, 4.0])]);
/// ```
pub fn gather_state<T: Copy, const N: usize, const L: usize>(
    states: &[[T; N]; L],
) -> [Lanes<T, L>; N] {
    core::array::from_fn(|v| Lanes(core::array::from_fn(|k| states[k][v])))
}

impl<T: Real, const L: usize> PartialOrd for Lanes<T, L> {
    /// The order all lanes agree on, `None` when they disagree (see the module docs).
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        let mut it = self.0.iter().zip(&other.0).map(|(a, b)| a.partial_cmp(b));
        let first = it.next()??;
        it.all(|o| o == Some(first)).then_some(first)
    }
}

macro_rules! lane_op {
    ($tr:ident, $f:ident, $atr:ident, $af:ident, $op:tt) => {
        impl<T: Real, const L: usize> $tr for Lanes<T, L> {
            type Output = Self;
            #[inline(always)]
            fn $f(self, o: Self) -> Self {
                self.zip(o, |a, b| a $op b)
            }
        }
        impl<T: Real, const L: usize> $atr for Lanes<T, L> {
            #[inline(always)]
            fn $af(&mut self, o: Self) {
                *self = *self $op o;
            }
        }
    };
}
lane_op!(Add, add, AddAssign, add_assign, +);
lane_op!(Sub, sub, SubAssign, sub_assign, -);
lane_op!(Mul, mul, MulAssign, mul_assign, *);
lane_op!(Div, div, DivAssign, div_assign, /);

impl<T: Real, const L: usize> Mul<T> for Lanes<T, L> {
    type Output = Self;
    /// Every lane times the same scalar (a link weight shared by a batch).
    #[inline(always)]
    fn mul(self, w: T) -> Self {
        self.map(|a| a * w)
    }
}

impl<T: Real, const L: usize> Neg for Lanes<T, L> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        self.map(|a| -a)
    }
}

impl<T: Real, const L: usize> Real for Lanes<T, L> {
    const ZERO: Self = Self([T::ZERO; L]);
    const ONE: Self = Self([T::ONE; L]);
    const TWO: Self = Self([T::TWO; L]);
    const HALF: Self = Self([T::HALF; L]);
    const PI: Self = Self([T::PI; L]);
    const EPSILON: Self = Self([T::EPSILON; L]);

    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        Self::splat(T::from_f64(x))
    }
    /// Lane 0 (see the module docs).
    #[inline]
    fn to_f64(self) -> f64 {
        self.0.first().map_or(0.0, |x| x.to_f64())
    }
    #[inline]
    fn sqrt(self) -> Self {
        self.map(T::sqrt)
    }
    #[inline]
    fn exp(self) -> Self {
        self.map(T::exp)
    }
    #[inline]
    fn ln(self) -> Self {
        self.map(T::ln)
    }
    /// Lane by lane; vectorises for `f64` (no calls or branches).
    #[inline(always)]
    fn exp_branch_free(self) -> Self {
        self.map(T::exp_branch_free)
    }
    /// Lane by lane; vectorises for `f64`.
    #[inline(always)]
    fn ln_branch_free(self) -> Self {
        self.map(T::ln_branch_free)
    }
    #[inline]
    fn tanh(self) -> Self {
        self.map(T::tanh)
    }
    #[inline]
    fn sin(self) -> Self {
        self.map(T::sin)
    }
    #[inline]
    fn cos(self) -> Self {
        self.map(T::cos)
    }
    #[inline]
    fn tan(self) -> Self {
        self.map(T::tan)
    }
    #[inline]
    fn atan(self) -> Self {
        self.map(T::atan)
    }
    #[inline]
    fn powf(self, y: Self) -> Self {
        self.zip(y, T::powf)
    }
    #[inline]
    fn floor(self) -> Self {
        self.map(T::floor)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        self.map(T::abs)
    }
    /// Every lane finite.
    #[inline]
    fn is_finite(self) -> bool {
        let mut all = true;
        for x in self.0 {
            all &= x.is_finite();
        }
        all
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        self.zip(o, T::max)
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        self.zip(o, T::min)
    }
}

impl<T: Real + MlpScalar, const L: usize> MlpScalar for Lanes<T, L> {
    const ZERO: Self = Self([<T as MlpScalar>::ZERO; L]);
    const ONE: Self = Self([<T as MlpScalar>::ONE; L]);
    #[inline]
    fn from_f32(x: f32) -> Self {
        Self::splat(T::from_f32(x))
    }
    /// Lane 0.
    #[inline]
    fn to_f32(self) -> f32 {
        self.0.first().map_or(0.0, |x| x.to_f32())
    }
    #[inline(always)]
    fn madd(self, a: Self, b: Self) -> Self {
        let mut out = self.0;
        for (k, v) in out.iter_mut().enumerate() {
            *v = v.madd(a.0[k], b.0[k]);
        }
        Self(out)
    }
    /// Lane-wise, through [`MlpScalar::tanh_lanes`] (vectorised for floats), out of line.
    #[inline]
    fn tanh(self) -> Self {
        Self(out_of_line::tanh(self.0))
    }
    /// As the default, out of line.
    #[inline]
    fn dot<const N: usize>(w: &[Self; N], x: &[Self; N], bias: Self) -> Self {
        out_of_line::dot(w, x, bias)
    }
    /// The same operations as the default, lane by lane, in one out-of-line function over
    /// lane-major arrays (`[unit][lane]`).
    #[inline]
    fn mean_field<const H1: usize, const H2: usize>(
        net: &Mlp<Self, 6, H1, H2, 2>,
        norm: &Normalisation<Self>,
        u: &[Self; 6],
    ) -> [Self; 2]
    where
        Self: Real,
    {
        let mut x = out_of_line::Rows([[<T as MlpScalar>::ZERO; L]; 6]);
        for (a, b) in x.0.iter_mut().zip(u) {
            *a = b.0;
        }
        let mut y = out_of_line::Rows([[<T as MlpScalar>::ZERO; L]; 2]);
        out_of_line::mean_field(net, norm, &mut x, &mut y);
        let [y0, y1] = y.0;
        [Self(y0), Self(y1)]
    }
}

/// The MLP's evaluation on lanes, kept out of line. Inlined into the network's short loops
/// over units, the per-unit operations let the compiler vectorise those loops across units
/// instead of across lanes, with gathers and scatters between lanes (an evaluation on 16 f32
/// lanes took 585 ns). One call per evaluation on lane-major rows (`[unit][lane]`, 64-byte
/// aligned), with only the input normalisation and `tanh` called per row (inlined, they too
/// were vectorised across units), keeps every operation a whole-row vector instruction: the
/// MLP batch on workload W went from 16-18 to 30-32 simulations per minute on one core (f32,
/// 16 lanes; 6.4-6.9 to 15 in f64, 8 lanes; paired runs, `benches/benches/batch.rs`, on this
/// project's VM, AMD EPYC Zen 4). Before, 34 % of the time went to gathers in the input
/// normalisation and most of the rest to calls.
mod out_of_line {
    use super::Lanes;
    use crate::mlp::{Dense, Mlp, MlpScalar, Normalisation};
    use crate::real::Real;

    #[inline(never)]
    pub(super) fn tanh<T: MlpScalar, const L: usize>(x: [T; L]) -> [T; L] {
        T::tanh_lanes(x)
    }

    #[inline(never)]
    pub(super) fn dot<T: Real + MlpScalar, const L: usize, const N: usize>(
        w: &[Lanes<T, L>; N],
        x: &[Lanes<T, L>; N],
        bias: Lanes<T, L>,
    ) -> Lanes<T, L> {
        let mut acc = bias;
        for (wi, xi) in w.iter().zip(x) {
            acc = wi.madd(*xi, acc);
        }
        acc
    }

    /// `(z - m) / s` in every lane, one input at a time: in a loop over the inputs the
    /// compiler vectorised across inputs, with gathers and scatters.
    #[inline(never)]
    fn normalise<T: Real, const L: usize>(z: &mut [T; L], m: &[T; L], s: &[T; L]) {
        for k in 0..L {
            z[k] = (z[k] - m[k]) / s[k];
        }
    }

    /// Rows of lanes (`[unit][lane]`) on a 64-byte boundary, so that a row of 16 `f32` or 8
    /// `f64` is one aligned 512-bit load: with the alignment of `T` alone the evaluation's
    /// speed changed by up to 2x from one run to the next (rows split across cache lines or
    /// not, as the stack fell).
    #[derive(Clone, Copy)]
    #[repr(C, align(64))]
    pub(super) struct Rows<T, const L: usize, const N: usize>(pub(super) [[T; L]; N]);

    /// `W x + b` in every lane, `x[i][k]` input `i` of lane `k`, accumulated from the bias
    /// in input order as [`MlpScalar::dot`] does.
    #[inline(always)]
    fn layer<T: MlpScalar, const L: usize, const I: usize, const O: usize>(
        d: &Dense<Lanes<T, L>, I, O>,
        x: &Rows<T, L, I>,
        y: &mut Rows<T, L, O>,
    ) {
        for (o, yo) in y.0.iter_mut().enumerate() {
            *yo = d.b[o].0;
            for (i, xi) in x.0.iter().enumerate() {
                let w = &d.w[o][i].0;
                for k in 0..L {
                    yo[k] = w[k].madd(xi[k], yo[k]);
                }
            }
        }
    }

    /// [`MlpScalar::tanh_lanes`] of a row, in place.
    #[inline(never)]
    fn tanh_row<T: MlpScalar, const L: usize>(x: &mut [T; L]) {
        *x = T::tanh_lanes(*x);
    }

    #[inline(never)]
    pub(super) fn mean_field<
        T: Real + MlpScalar,
        const L: usize,
        const H1: usize,
        const H2: usize,
    >(
        net: &Mlp<Lanes<T, L>, 6, H1, H2, 2>,
        norm: &Normalisation<Lanes<T, L>>,
        z: &mut Rows<T, L, 6>,
        y: &mut Rows<T, L, 2>,
    ) {
        for (i, zi) in z.0.iter_mut().enumerate() {
            normalise(zi, &norm.in_mean[i].0, &norm.in_scale[i].0);
        }
        let mut h1 = Rows([[<T as MlpScalar>::ZERO; L]; H1]);
        layer(&net.l1, z, &mut h1);
        for h in &mut h1.0 {
            tanh_row(h);
        }
        let mut h2 = Rows([[<T as MlpScalar>::ZERO; L]; H2]);
        layer(&net.l2, &h1, &mut h2);
        for h in &mut h2.0 {
            tanh_row(h);
        }
        layer(&net.l3, &h2, y);
        for (k, yk) in y.0.iter_mut().enumerate() {
            let (s, o) = (&norm.out_scale[k].0, &norm.out_offset[k].0);
            for l in 0..L {
                yk[l] = yk[l] * s[l] + o[l];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_hold_only_when_every_lane_agrees() {
        let a = Lanes([1.0, 2.0]);
        assert!(a < Lanes([2.0, 3.0]));
        assert_eq!(a.partial_cmp(&Lanes([2.0, 1.0])), None);
        assert!(a >= Lanes([1.0, 2.0]) && a <= Lanes([1.0, 2.0]));
        assert_eq!(a.partial_cmp(&Lanes([1.0, f64::NAN])), None);
        assert_eq!(a.max(Lanes([0.0, 5.0])), Lanes([1.0, 5.0]));
        assert_eq!(a.min(Lanes([0.0, 5.0])), Lanes([0.0, 2.0]));
        assert!(!Lanes([1.0, f64::INFINITY]).is_finite());
    }

    #[test]
    fn every_operation_is_the_scalar_one_per_lane() {
        let (xs, ys) = ([0.3f32, -1.7, 2.5, 1e-3], [1.1f32, 0.2, -0.4, 3.0]);
        let (x, y) = (Lanes(xs), Lanes(ys));
        type Case = (Lanes<f32, 4>, fn(f32, f32) -> f32);
        let ops: [Case; 8] = [
            (x + y, |a, b| a + b),
            (x - y, |a, b| a - b),
            (x * y, |a, b| a * b),
            (x / y, |a, b| a / b),
            (x.abs().powf(y), |a, b| Real::powf(Real::abs(a), b)),
            (Real::tanh(x) + y.exp(), |a, b| Real::tanh(a) + Real::exp(b)),
            (x.madd(y, x), |a, b| a.madd(b, a)),
            (-x.abs().sqrt().ln(), |a, _| {
                -Real::ln(Real::sqrt(Real::abs(a)))
            }),
        ];
        for (k, (got, f)) in ops.iter().enumerate() {
            for l in 0..4 {
                assert_eq!(
                    got.lane(l).to_bits(),
                    f(xs[l], ys[l]).to_bits(),
                    "op {k} lane {l}"
                );
            }
        }
    }
}
