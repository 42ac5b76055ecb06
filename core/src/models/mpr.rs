//! Montbrio-Pazo-Roxin (MPR): the exact mean field of an all-to-all QIF network with
//! Lorentzian excitabilities (Montbrio, Pazo, Roxin, Phys. Rev. X 5, 021028, 2015).
//!
//! ```text
//! tau dr/dt = Delta / (pi tau) + 2 r v
//! tau dv/dt = v^2 + eta + J tau r - (pi tau r)^2 + I(t)
//! ```
//!
//! Time is in the unit of `tau` (ms for TVB's `tau = 1 ms`; the paper uses `tau = 1`
//! dimensionless); `r` is a rate in 1/(time unit) (kHz when time is in ms); `v`, `eta`,
//! `Delta`, `J` and the input `I` are dimensionless (the QIF voltage scale).
//!
//! The input of [`Model::deriv`] is `I(t)`; in a network it is the coupling `G sum_j W_ij r_j`.
//!
//! ```
//! use nmm_core::models::{Model, Mpr};
//! let m = Mpr::<f64>::default(); // eta = -5, Delta = 1, J = 15, tau = 1
//! // On the low fixed point of the paper's protocol the derivative vanishes.
//! let fps = nmm_core::models::mpr::fixed_points(&m, 0.0);
//! assert!(fps.len() >= 1);
//! let d = m.deriv(&fps[0], 0.0);
//! assert!(d[0].abs() < 1e-9 && d[1].abs() < 1e-9);
//! ```

use super::{INF, Model, POS, forward_params, params};
use crate::real::Real;

params! {
    /// Parameters of the MPR mean field (defaults: the bistable set of Fig. 2 of the paper).
    pub struct Mpr {
        /// Membrane time constant.
        tau: "tau" ["ms"] = 1.0, POS => INF;
        /// Half-width of the Lorentzian distribution of excitabilities.
        delta: "delta" ["1"] = 1.0, 0.0 => INF;
        /// Centre of the Lorentzian distribution of excitabilities (eta_bar).
        eta: "eta" ["1"] = -5.0, -INF => INF;
        /// Synaptic weight of the all-to-all coupling.
        j: "J" ["1"] = 15.0, -INF => INF;
    }
}

impl<T: Real> Model<T, 2> for Mpr<T> {
    const NAME: &'static str = "mpr";
    const STATE: [&'static str; 2] = ["r", "v"];
    const COUPLING_VAR: usize = 0;
    forward_params!();

    #[inline(always)] // in a batch of lanes the body is large enough to be left out of line
    fn deriv(&self, x: &[T; 2], input: T) -> [T; 2] {
        let [r, v] = *x;
        let inv_tau = T::ONE / self.tau;
        let pi_tau_r = T::PI * self.tau * r;
        let dr = (self.delta / (T::PI * self.tau) + T::TWO * r * v) * inv_tau;
        let dv = (v * v + self.eta + self.j * self.tau * r - pi_tau_r * pi_tau_r + input) * inv_tau;
        [dr, dv]
    }

    /// `r >= 0`.
    #[inline(always)]
    fn project(&self, x: [T; 2]) -> [T; 2] {
        [x[0].max(T::ZERO), x[1]]
    }

    /// The lowest-rate fixed point at zero input (the quiescent state that the protocol of
    /// REFERENCE section 1 starts from), or `(0.01, 0)` when there is none (`Delta = 0` with
    /// no positive-rate fixed point).
    fn initial_state(&self) -> [T; 2] {
        match fixed_points(self, T::ZERO).first() {
            Some(x) => *x,
            None => [T::from_f64(0.01), T::ZERO],
        }
    }
}

impl<T: Real> Mpr<T> {
    /// Energy of the MPR system for `Delta = 0` (REFERENCE section 4, arXiv 2509.10428):
    /// `H(r, v) = v^2/r + pi^2 tau^2 r + (eta + I)/r - J tau ln r`, conserved along
    /// trajectories with constant input `I` when `Delta = 0` (`dH/dt = 0` by direct
    /// differentiation). Defined for `r > 0`.
    ///
    /// ```
    /// use nmm_core::models::Mpr;
    /// let m = Mpr { delta: 0.0, ..Mpr::<f64>::default() };
    /// let h = m.energy(&[0.5, -0.3], 0.0);
    /// assert!(h.is_finite());
    /// ```
    pub fn energy(&self, x: &[T; 2], input: T) -> T {
        let [r, v] = *x;
        let pt = T::PI * self.tau;
        v * v / r + pt * pt * r + (self.eta + input) / r - self.j * self.tau * r.ln()
    }
}

/// A point of the saddle-node (fold) curve of MPR fixed points in the `(eta, J)` plane,
/// parametrised by the fixed-point rate `r`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FoldPoint {
    /// Fixed-point rate on the fold (1/time unit).
    pub r: f64,
    /// Total constant drive `eta + I` at the fold.
    pub eta: f64,
    /// Coupling `J` at the fold.
    pub j: f64,
}

/// The saddle-node curve in closed form.
///
/// Fixed points satisfy `v* = -Delta/(2 pi tau r*)` and
/// `eta(r) = pi^2 tau^2 r^2 - J tau r - Delta^2 / (4 pi^2 tau^2 r^2)`; a fold is where
/// `d eta/dr = 0`, which gives
/// `J(r) = 2 pi^2 tau r + Delta^2 / (2 pi^2 tau^3 r^3)` and
/// `eta(r) = -pi^2 tau^2 r^2 - 3 Delta^2 / (4 pi^2 tau^2 r^2)`.
///
/// ```
/// let f = nmm_core::models::mpr::fold_point(1.0, 1.0, 0.3);
/// assert!(f.j > 0.0 && f.eta < 0.0);
/// ```
pub fn fold_point(delta: f64, tau: f64, r: f64) -> FoldPoint {
    let pi2 = core::f64::consts::PI * core::f64::consts::PI;
    let j = 2.0 * pi2 * tau * r + delta * delta / (2.0 * pi2 * tau * tau * tau * r * r * r);
    let eta = -pi2 * tau * tau * r * r - 3.0 * delta * delta / (4.0 * pi2 * tau * tau * r * r);
    FoldPoint { r, eta, j }
}

/// The cusp where the two fold branches meet (`dJ/dr = 0` on the fold curve):
/// `r_c = (3/4)^(1/4) sqrt(Delta) / (pi tau)`, `eta_c = -sqrt(3) Delta`,
/// `J_c = 4^(5/4) pi sqrt(Delta) / 3^(3/4)` (about 7.80 for `Delta = 1`).
///
/// ```
/// let c = nmm_core::models::mpr::cusp(1.0, 1.0);
/// assert!((c.eta + 3f64.sqrt()).abs() < 1e-12);
/// ```
pub fn cusp(delta: f64, tau: f64) -> FoldPoint {
    let r = libm::pow(0.75, 0.25) * libm::sqrt(delta) / (core::f64::consts::PI * tau);
    fold_point(delta, tau, r)
}

/// The (one to three) fixed points of MPR with total drive `eta + input`, from the closed form:
/// positive roots of `pi^2 tau^2 r^2 - J tau r - Delta^2/(4 pi^2 tau^2 r^2) - (eta + I) = 0`,
/// i.e. of the quartic `a r^4 - b r^3 - c r^2 - d = 0` in `r`, found by bracketing on a
/// logarithmic grid and bisection; sorted by `r`. For `Delta = 0` the rate-zero fixed points
/// are not returned.
pub fn fixed_points<T: Real>(m: &Mpr<T>, input: T) -> heapless::Vec<[T; 2], 3> {
    let tau = m.tau.to_f64();
    let delta = m.delta.to_f64();
    let j = m.j.to_f64();
    let drive = m.eta.to_f64() + input.to_f64();
    let pi2 = core::f64::consts::PI * core::f64::consts::PI;
    // g(r) = r^2 * (right-hand side): a polynomial, sign changes bracket the roots.
    let g = |r: f64| {
        let r2 = r * r;
        pi2 * tau * tau * r2 * r2
            - j * tau * r2 * r
            - drive * r2
            - delta * delta / (4.0 * pi2 * tau * tau)
    };
    let mut out = heapless::Vec::new();
    // Roots lie in (0, r_max]: for r beyond r_max the quartic term dominates.
    let r_max = 10.0
        * (1.0 + j.abs() / (pi2 * tau) + libm::sqrt(drive.abs()) / (core::f64::consts::PI * tau));
    let n = 4000;
    let (lo, hi) = (1e-9_f64.ln(), r_max.ln());
    let mut a = libm::exp(lo);
    let mut ga = g(a);
    for k in 1..=n {
        let b = libm::exp(lo + (hi - lo) * k as f64 / n as f64);
        let gb = g(b);
        if ga == 0.0 || ga * gb < 0.0 {
            let (mut x0, mut x1, mut g0) = (a, b, ga);
            for _ in 0..200 {
                let xm = 0.5 * (x0 + x1);
                let gm = g(xm);
                if (gm < 0.0) == (g0 < 0.0) && gm != 0.0 {
                    x0 = xm;
                    g0 = gm;
                } else {
                    x1 = xm;
                }
            }
            let r = 0.5 * (x0 + x1);
            let v = -delta / (2.0 * core::f64::consts::PI * tau * r);
            // At most three roots exist; a fourth push (impossible) would be ignored.
            let _ = out.push([T::from_f64(r), T::from_f64(v)]);
        }
        a = b;
        ga = gb;
    }
    out
}
