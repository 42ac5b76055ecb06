//! Exact mean fields with closed-form corrections for sparse networks (model discovery,
//! REFERENCE section 10): the known right-hand side of MPR or Chen-Campbell, untouched, plus a
//! sparse sum of candidate terms found by sequentially thresholded least squares
//! (`nmm discover`):
//!
//! ```text
//! dx_i/dt = f_i(x; base parameters, I) + sum_k c_ik F_k(p, N) m_k(x, parameters, I)
//! ```
//!
//! The candidate library is the product of a connectivity factor `F` (five, [`FACTORS`]: `1`,
//! `1 - p`, `(1 - p)/p`, the relative in-degree spread `sqrt((1 - p)/(p N))` of an Erdos-Renyi
//! network and `sqrt(p (1 - p)/N)`, the spread of the in-degree as a fraction of `N`) and a
//! monomial of the state, the coupling and the drive ([`Library::MONOMIALS`]). Why these:
//! without `1/p` normalisation the mean recurrent drive of a sparse network is `p` times the
//! all-to-all one, so the leading correction is `-(1 - p) J r` in MPR's `v` equation (and
//! `-(1 - p) s_jump r` in Chen-Campbell's `s` equation); in-degree fluctuations add an input
//! heterogeneity of standard deviation `J r sqrt(p (1 - p)/N)` (di Volo and Torcini 2018), which
//! a Lorentzian closure turns into an extra `Delta`, i.e. a term in the `r` equation; the
//! factor `1` lets finite-size effects at `p = 1` show.
//!
//! A model holds at most [`MAX_TERMS`] nonzero terms, stored as (equation, term, coefficient),
//! so a closed form costs only its own terms (no allocation, `no_std`): one Heun step of a
//! two-term MPR correction is a few dozen instructions more than MPR itself.
//!
//! Units: the coefficients carry the units of `dx/dt` in the training data's time unit (the
//! networks of REFERENCE sections 2 and 3 have `tau = 1`); the correction is not rescaled when
//! `tau` is changed.
//!
//! ```
//! use nmm_core::models::{Model, Mpr};
//! use nmm_core::models::corrected::{Corrected, Library, term_index};
//! // MPR with J -> J p, written as the all-to-all MPR plus -1 (1 - p) J r in dv/dt.
//! let k = term_index::<f64, Mpr<f64>, 2>("(1-p)", "J r").unwrap();
//! let mut m = Corrected::new(Mpr::<f64>::default(), 0.6, 1e4).unwrap();
//! m.push(1, k, -1.0).unwrap();
//! let sparse = Mpr { j: 15.0 * 0.6, ..Mpr::default() };
//! let x = [0.4, -0.7];
//! let (a, b) = (m.deriv(&x, 0.3), sparse.deriv(&x, 0.3));
//! assert!((a[1] - b[1]).abs() < 1e-12 && a[0] == b[0]);
//! ```

use super::{ChenCampbell, INF, Model, Mpr, POS, ParamError, ParamSpec};
use crate::real::Real;

/// Most nonzero terms one corrected model holds (over all equations).
pub const MAX_TERMS: usize = 32;

/// The connectivity factors, as printed (`p` the connection probability, `N` the network
/// size).
pub const FACTORS: [&str; 5] = [
    "1",
    "(1-p)",
    "(1-p)/p",
    "sqrt((1-p)/(p N))",
    "sqrt(p (1-p)/N)",
];

/// The connectivity factors' values at `(p, n)`, in the order of [`FACTORS`].
#[inline]
pub fn factors<T: Real>(p: T, n: T) -> [T; 5] {
    let q = T::ONE - p;
    let spread = (q / (p * n)).sqrt();
    [T::ONE, q, q / p, spread, p * spread]
}

/// A base model with a library of candidate monomials for its correction.
pub trait Library<T: Real, const N: usize>: Model<T, N> {
    /// Name of the corrected model on the command line and in files.
    const CORRECTED_NAME: &'static str;
    /// The monomials, as printed (products written with spaces: `J r`, `r v`).
    const MONOMIALS: &'static [&'static str];
    /// The base's parameter table followed by `p` and `N` (the corrected model's
    /// [`Model::PARAMS`]).
    const CORRECTED_PARAMS: &'static [ParamSpec];
    /// Monomial `k` (an index into [`Self::MONOMIALS`]) at state `x` and input `input`.
    fn monomial(&self, k: usize, x: &[T; N], input: T) -> T;
}

/// Index of the candidate term `factor` x `monomial` (names as in [`FACTORS`] and
/// [`Library::MONOMIALS`]); `None` for an unknown name. Terms are numbered factor-major:
/// `factor_index * MONOMIALS.len() + monomial_index`.
pub fn term_index<T: Real, M: Library<T, N>, const N: usize>(
    factor: &str,
    monomial: &str,
) -> Option<usize> {
    let f = FACTORS.iter().position(|s| *s == factor)?;
    let m = M::MONOMIALS.iter().position(|s| *s == monomial)?;
    Some(f * M::MONOMIALS.len() + m)
}

/// Number of candidate terms per equation for the base `M`.
pub fn term_count<T: Real, M: Library<T, N>, const N: usize>() -> usize {
    FACTORS.len() * M::MONOMIALS.len()
}

/// Every candidate term of `M` at one state: `out[k]` for term `k` (numbered as in
/// [`term_index`]; `out` must hold [`term_count`] values, extra ones are left alone).
pub fn library_row<T: Real, M: Library<T, N>, const N: usize>(
    m: &M,
    p: T,
    n: T,
    x: &[T; N],
    input: T,
    out: &mut [T],
) {
    let f = factors(p, n);
    let nm = M::MONOMIALS.len();
    for k in 0..nm {
        let mk = m.monomial(k, x, input);
        for (fi, fv) in f.iter().enumerate() {
            if let Some(o) = out.get_mut(fi * nm + k) {
                *o = *fv * mk;
            }
        }
    }
}

/// Why a term could not be added to a [`Corrected`] model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TermError {
    /// The model already holds [`MAX_TERMS`] terms.
    Full,
    /// The equation index is not below the state size.
    Equation,
    /// The term index is not below [`term_count`].
    Term,
    /// The coefficient is NaN or infinite.
    NotFinite,
}

impl core::fmt::Display for TermError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TermError::Full => "too many terms (at most 32)",
            TermError::Equation => "equation index out of range",
            TermError::Term => "term index out of range",
            TermError::NotFinite => "coefficient not finite",
        })
    }
}

impl core::error::Error for TermError {}

/// One nonzero term of a correction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Active<T> {
    /// Equation (state variable index).
    pub eq: u8,
    /// Factor index into [`FACTORS`].
    pub factor: u8,
    /// Monomial index into [`Library::MONOMIALS`].
    pub monomial: u8,
    /// Coefficient (units of `dx_eq/dt` over those of the term).
    pub coef: T,
}

/// A base mean field plus a closed-form correction for connection probability `p` in
/// networks of `N` neurons.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Corrected<T, M, const N: usize> {
    /// The exact (all-to-all) mean field, untouched.
    pub base: M,
    p: T,
    n: T,
    factors: [T; 5],
    terms: [Active<T>; MAX_TERMS],
    len: usize,
}

const P_SPEC: ParamSpec = ParamSpec {
    name: "p",
    unit: "1",
    default: 1.0,
    min: POS,
    max: 1.0,
    doc: "Connection probability of the sparse (Erdos-Renyi) network.",
};
const N_SPEC: ParamSpec = ParamSpec {
    name: "N",
    unit: "neurons",
    default: 10000.0,
    min: 1.0,
    max: INF,
    doc: "Network size (enters the in-degree spread factors).",
};

impl<T: Real, M: Library<T, N>, const N: usize> Corrected<T, M, N> {
    /// `base` with no correction terms yet, at connection probability `p` (in `(0, 1]`) and
    /// network size `n` (`>= 1`).
    ///
    /// # Errors
    /// `p` or `n` out of range or not finite.
    pub fn new(base: M, p: T, n: T) -> Result<Self, ParamError> {
        P_SPEC.check(p.to_f64())?;
        N_SPEC.check(n.to_f64())?;
        Ok(Self {
            base,
            p,
            n,
            factors: factors(p, n),
            terms: [Active {
                eq: 0,
                factor: 0,
                monomial: 0,
                coef: T::ZERO,
            }; MAX_TERMS],
            len: 0,
        })
    }

    /// Adds `coef` times candidate term `term` (numbered as in [`term_index`]) to equation `eq`.
    ///
    /// # Errors
    /// See [`TermError`].
    pub fn push(&mut self, eq: usize, term: usize, coef: T) -> Result<(), TermError> {
        if eq >= N {
            return Err(TermError::Equation);
        }
        let nm = M::MONOMIALS.len();
        if term >= FACTORS.len() * nm {
            return Err(TermError::Term);
        }
        if !coef.to_f64().is_finite() {
            return Err(TermError::NotFinite);
        }
        if self.len == MAX_TERMS {
            return Err(TermError::Full);
        }
        self.terms[self.len] = Active {
            eq: eq as u8,
            factor: (term / nm) as u8,
            monomial: (term % nm) as u8,
            coef,
        };
        self.len += 1;
        Ok(())
    }

    /// The nonzero terms, in the order they were added.
    pub fn terms(&self) -> &[Active<T>] {
        self.terms.get(..self.len).unwrap_or(&[])
    }

    /// The correction alone at state `x` and input `input`.
    #[inline]
    pub fn correction(&self, x: &[T; N], input: T) -> [T; N] {
        // `push` keeps `eq < N` and `factor < 5`; the `get`s restate that without a panic path
        // (the firmware's tick is checked to reach none).
        let mut d = [T::ZERO; N];
        for a in self.terms.iter().take(self.len) {
            let m = self.base.monomial(a.monomial as usize, x, input);
            if let (Some(di), Some(&f)) = (
                d.get_mut(a.eq as usize),
                self.factors.get(a.factor as usize),
            ) {
                *di += a.coef * f * m;
            }
        }
        d
    }
}

impl<T: Real, M: Library<T, N>, const N: usize> Model<T, N> for Corrected<T, M, N> {
    const NAME: &'static str = M::CORRECTED_NAME;
    const STATE: [&'static str; N] = M::STATE;
    const COUPLING_VAR: usize = M::COUPLING_VAR;
    const PARAMS: &'static [ParamSpec] = M::CORRECTED_PARAMS;

    #[inline]
    fn deriv(&self, x: &[T; N], input: T) -> [T; N] {
        let mut d = self.base.deriv(x, input);
        let c = self.correction(x, input);
        for i in 0..N {
            d[i] += c[i];
        }
        d
    }

    fn diffusion(&self) -> [T; N] {
        self.base.diffusion()
    }

    fn initial_state(&self) -> [T; N] {
        self.base.initial_state()
    }

    fn coupling_gain(&self) -> T {
        self.base.coupling_gain()
    }

    #[inline]
    fn project(&self, x: [T; N]) -> [T; N] {
        self.base.project(x)
    }

    fn get(&self, name: &str) -> Option<T> {
        match name {
            "p" => Some(self.p),
            "N" => Some(self.n),
            _ => self.base.get(name),
        }
    }

    fn set(&mut self, name: &str, value: T) -> Result<(), ParamError> {
        match name {
            "p" => {
                P_SPEC.check(value.to_f64())?;
                self.p = value;
            }
            "N" => {
                N_SPEC.check(value.to_f64())?;
                self.n = value;
            }
            _ => return self.base.set(name, value),
        }
        self.factors = factors(self.p, self.n);
        Ok(())
    }
}

const fn with_p_n<const K: usize>(base: &[ParamSpec]) -> [ParamSpec; K] {
    let mut out = [P_SPEC; K];
    let mut i = 0;
    while i < base.len() {
        out[i] = base[i];
        i += 1;
    }
    out[K - 1] = N_SPEC;
    out
}

const MPR_PARAMS: [ParamSpec; 6] = with_p_n::<6>(Mpr::<f64>::SPECS);
const CC_PARAMS: [ParamSpec; 12] = with_p_n::<12>(ChenCampbell::<f64>::SPECS);

impl<T: Real> Library<T, 2> for Mpr<T> {
    const CORRECTED_NAME: &'static str = "mpr-corrected";
    /// `eta` and `I` enter MPR's `v` equation the same way; both are listed so that a
    /// correction may tell a constant drive from a fluctuating one.
    const MONOMIALS: &'static [&'static str] =
        &["1", "r", "v", "r^2", "r v", "v^2", "J r", "J", "eta", "I"];
    const CORRECTED_PARAMS: &'static [ParamSpec] = &MPR_PARAMS;

    #[inline]
    fn monomial(&self, k: usize, x: &[T; 2], input: T) -> T {
        let [r, v] = *x;
        match k {
            0 => T::ONE,
            1 => r,
            2 => v,
            3 => r * r,
            4 => r * v,
            5 => v * v,
            6 => self.j * r,
            7 => self.j,
            8 => self.eta,
            9 => input,
            _ => T::ZERO,
        }
    }
}

impl<T: Real> Library<T, 4> for ChenCampbell<T> {
    const CORRECTED_NAME: &'static str = "cc-corrected";
    const MONOMIALS: &'static [&'static str] = &[
        "1", "r", "v", "w", "s", "r^2", "r v", "r s", "v s", "v^2", "g s", "g v s", "I",
    ];
    const CORRECTED_PARAMS: &'static [ParamSpec] = &CC_PARAMS;

    #[inline]
    fn monomial(&self, k: usize, x: &[T; 4], input: T) -> T {
        let [r, v, w, s] = *x;
        match k {
            0 => T::ONE,
            1 => r,
            2 => v,
            3 => w,
            4 => s,
            5 => r * r,
            6 => r * v,
            7 => r * s,
            8 => v * s,
            9 => v * v,
            10 => self.g * s,
            11 => self.g * v * s,
            12 => input,
            _ => T::ZERO,
        }
    }
}
