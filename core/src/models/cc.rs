//! Chen-Campbell exact mean field of an Izhikevich network with spike-frequency adaptation
//! (Chen and Campbell, J. Comput. Neurosci. 50, 2022; dimensionless form of their public code).
//!
//! ```text
//! r' = Delta/pi + 2 r v - r (g s + alpha)
//! v' = v^2 - alpha v - w + eta + I + g s (e_r - v) - pi^2 r^2
//! w' = a (b v - w) + w_jump r
//! s' = -s/tau_s + s_jump r
//! ```
//!
//! All quantities are dimensionless (voltage rescaled as `v = 1 + V/|V_R|`, time in units of
//! `C/(k |V_R|)`); `r` is the population rate, `w` the mean adaptation current and `s` the
//! synaptic gating. The input of [`Model::deriv`] is `I(t)`, added to the `v` equation.
//! Between two Hopf points in `eta` the population bursts; outside it fires tonically
//! (REFERENCE section 3: bursting at `eta = 0.12`, tonic at `eta = 0.25`).
//!
//! ```
//! use nmm_core::models::{ChenCampbell, Model};
//! let m = ChenCampbell::<f64>::default();
//! let d = m.deriv(&m.initial_state(), 0.0);
//! assert!(d.iter().all(|x| x.is_finite()));
//! ```

use super::{INF, Model, POS, forward_params, params};
use crate::real::Real;

params! {
    /// Parameters of the Chen-Campbell mean field (values of REFERENCE section 3).
    pub struct ChenCampbell {
        /// Leak/threshold term of the Izhikevich neuron (from alpha = 1 + V_T/|V_R|).
        alpha: "alpha" ["1"] = 0.6215, -INF => INF;
        /// Maximal synaptic conductance.
        g: "g" ["1"] = 1.2308, 0.0 => INF;
        /// Synaptic reversal potential.
        e_r: "e_r" ["1"] = 1.0, -INF => INF;
        /// Adaptation rate.
        a: "a" ["1"] = 0.0077, POS => INF;
        /// Adaptation sensitivity to v.
        b: "b" ["1"] = -0.0062, -INF => INF;
        /// Adaptation jump per spike.
        w_jump: "w_jump" ["1"] = 0.0189, 0.0 => INF;
        /// Synaptic jump per spike.
        s_jump: "s_jump" ["1"] = 1.2308, 0.0 => INF;
        /// Synaptic decay time.
        tau_s: "tau_s" ["1"] = 2.6, POS => INF;
        /// Half-width of the Lorentzian distribution of excitabilities.
        delta: "delta" ["1"] = 0.02, 0.0 => INF;
        /// Centre of the Lorentzian distribution of excitabilities (eta_bar); 0.12 bursts.
        eta: "eta" ["1"] = 0.12, -INF => INF;
    }
}

impl<T: Real> Model<T, 4> for ChenCampbell<T> {
    const NAME: &'static str = "cc";
    const STATE: [&'static str; 4] = ["r", "v", "w", "s"];
    const COUPLING_VAR: usize = 0;
    forward_params!();

    #[inline]
    fn deriv(&self, x: &[T; 4], input: T) -> [T; 4] {
        let [r, v, w, s] = *x;
        let gs = self.g * s;
        let dr = self.delta / T::PI + T::TWO * r * v - r * (gs + self.alpha);
        let pr = T::PI * r;
        let dv = v * v - self.alpha * v - w + self.eta + input + gs * (self.e_r - v) - pr * pr;
        let dw = self.a * (self.b * v - w) + self.w_jump * r;
        let ds = -s / self.tau_s + self.s_jump * r;
        [dr, dv, dw, ds]
    }

    fn initial_state(&self) -> [T; 4] {
        [T::ZERO; 4]
    }

    /// `r >= 0` and `s >= 0`.
    #[inline]
    fn project(&self, x: [T; 4]) -> [T; 4] {
        [x[0].max(T::ZERO), x[1], x[2], x[3].max(T::ZERO)]
    }
}
