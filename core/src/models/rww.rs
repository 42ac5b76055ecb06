//! Two-state reduced Wong-Wang model (Deco et al., J. Neurosci. 34, 2014), and the form of
//! Griffiths et al. (2022) with gains and tanh-squashed input currents.
//!
//! Deco 2014 (time in ms, currents in nA, rates H in Hz):
//! ```text
//! dS_E/dt = -S_E/tau_E + (1 - S_E) gamma_E H_E(x_E) + sigma xi
//! dS_I/dt = -S_I/tau_I + gamma_I H_I(x_I) + sigma xi
//! H(x)    = (a x - b) / (1 - exp(-d (a x - b)))
//! x_E     = W_E I_0 + w_p J_N S_E - J_i S_I + c
//! x_I     = W_I I_0 + J_N S_E - S_I + lambda c
//! ```
//! The input `c` of [`Model::deriv`] is an additive current (nA) into `x_E`; in a network it is
//! `G J_N sum_j C_ij S_E,j` (see [`Model::diffusion`] for the noise `sigma`).
//!
//! Griffiths 2022 ([`RwwGriffiths`]) writes the gains `g_EE = w_p J_N`, `g_EI = J_N`,
//! `g_IE = J_i` and `g = G J_N` (the global gain, applied by the network), and squashes the
//! currents: `x_E = tanh(max(0, W_E I_0 + g_EE S_E - g_IE S_I + c))`,
//! `x_I = tanh(max(0, W_I I_0 + g_EI S_E - S_I))`, with `c = g sum_j L_ij S_E,j` through the
//! Laplacian `L` of the log-normalised connectome. The rectification before the tanh is the
//! one of the paper's public code.

use super::{INF, Model, POS, forward_params, params};
use crate::real::Real;

/// The Wong-Wang transfer function `H(x) = y / (1 - exp(-d y))`, `y = a x - b` (Hz).
///
/// The removable singularity at `y = 0` (limit `1/d`) is handled by the series
/// `1/d + y/2 + d y^2/12` where `|d y| < 1e-4` (truncation error ~ (d y)^4/720 / d).
///
/// ```
/// use nmm_core::models::rww::transfer;
/// let at_threshold = transfer(310.0_f64, 125.0, 0.16, 125.0 / 310.0);
/// assert!((at_threshold - 1.0 / 0.16).abs() < 1e-9);
/// ```
#[inline]
pub fn transfer<T: Real>(a: T, b: T, d: T, x: T) -> T {
    let y = a * x - b;
    let dy = d * y;
    if dy.abs() < T::from_f64(1e-4) {
        T::ONE / d + y * T::HALF + d * y * y / T::from_f64(12.0)
    } else {
        y / (T::ONE - (-dy).exp())
    }
}

params! {
    /// Parameters of the reduced Wong-Wang model, Deco et al. 2014 values.
    pub struct Rww {
        /// Decay time of excitatory gating (NMDA).
        tau_e: "tau_E" ["ms"] = 100.0, POS => INF;
        /// Decay time of inhibitory gating (GABA).
        tau_i: "tau_I" ["ms"] = 10.0, POS => INF;
        /// Kinetic parameter of excitatory gating (0.641 per s).
        gamma_e: "gamma_E" ["1/ms"] = 0.641 / 1000.0, 0.0 => INF;
        /// Kinetic parameter of inhibitory gating (1 per s).
        gamma_i: "gamma_I" ["1/ms"] = 1.0 / 1000.0, 0.0 => INF;
        /// Gain of the excitatory transfer function.
        a_e: "a_E" ["1/nC"] = 310.0, POS => INF;
        /// Threshold of the excitatory transfer function.
        b_e: "b_E" ["Hz"] = 125.0, -INF => INF;
        /// Curvature of the excitatory transfer function.
        d_e: "d_E" ["s"] = 0.16, POS => INF;
        /// Gain of the inhibitory transfer function.
        a_i: "a_I" ["1/nC"] = 615.0, POS => INF;
        /// Threshold of the inhibitory transfer function.
        b_i: "b_I" ["Hz"] = 177.0, -INF => INF;
        /// Curvature of the inhibitory transfer function.
        d_i: "d_I" ["s"] = 0.087, POS => INF;
        /// Scale of the external input to the excitatory pool.
        w_e: "W_E" ["1"] = 1.0, 0.0 => INF;
        /// Scale of the external input to the inhibitory pool.
        w_i: "W_I" ["1"] = 0.7, 0.0 => INF;
        /// Effective external input current.
        i_0: "I_0" ["nA"] = 0.382, -INF => INF;
        /// Excitatory synaptic coupling.
        j_n: "J_N" ["nA"] = 0.15, 0.0 => INF;
        /// Local excitatory recurrence.
        w_p: "w_p" ["1"] = 1.4, 0.0 => INF;
        /// Local inhibitory-to-excitatory coupling (feedback inhibition).
        j_i: "J_i" ["nA"] = 1.0, 0.0 => INF;
        /// Fraction of the long-range input that reaches the inhibitory pool.
        lambda: "lambda" ["1"] = 0.0, 0.0 => 1.0;
        /// Amplitude of the additive noise on S_E and S_I.
        sigma: "sigma" ["1/sqrt(ms)"] = 0.01, 0.0 => INF;
    }
}

impl<T: Real> Model<T, 2> for Rww<T> {
    const NAME: &'static str = "rww";
    const STATE: [&'static str; 2] = ["S_E", "S_I"];
    const COUPLING_VAR: usize = 0;
    forward_params!();

    #[inline]
    fn deriv(&self, x: &[T; 2], input: T) -> [T; 2] {
        let [se, si] = *x;
        let xe = self.w_e * self.i_0 + self.w_p * self.j_n * se - self.j_i * si + input;
        let xi = self.w_i * self.i_0 + self.j_n * se - si + self.lambda * input;
        let he = transfer(self.a_e, self.b_e, self.d_e, xe);
        let hi = transfer(self.a_i, self.b_i, self.d_i, xi);
        [
            -se / self.tau_e + (T::ONE - se) * self.gamma_e * he,
            -si / self.tau_i + self.gamma_i * hi,
        ]
    }

    /// `J_N`: the long-range current is `G J_N sum_j C_ij S_E,j`.
    #[inline]
    fn coupling_gain(&self) -> T {
        self.j_n
    }

    fn diffusion(&self) -> [T; 2] {
        [self.sigma; 2]
    }

    fn initial_state(&self) -> [T; 2] {
        [T::from_f64(0.1); 2]
    }

    /// Gating variables in `[0, 1]`.
    #[inline]
    fn project(&self, x: [T; 2]) -> [T; 2] {
        x.map(|s| s.max(T::ZERO).min(T::ONE))
    }
}

params! {
    /// Parameters of the Griffiths et al. 2022 form of reduced Wong-Wang (gains, squashed currents).
    pub struct RwwGriffiths {
        /// Decay time of excitatory gating (NMDA).
        tau_e: "tau_E" ["ms"] = 100.0, POS => INF;
        /// Decay time of inhibitory gating (GABA).
        tau_i: "tau_I" ["ms"] = 10.0, POS => INF;
        /// Kinetic parameter of excitatory gating (0.641 per s).
        gamma_e: "gamma_E" ["1/ms"] = 0.641 / 1000.0, 0.0 => INF;
        /// Kinetic parameter of inhibitory gating (1 per s).
        gamma_i: "gamma_I" ["1/ms"] = 1.0 / 1000.0, 0.0 => INF;
        /// Gain of the excitatory transfer function.
        a_e: "a_E" ["1/nC"] = 310.0, POS => INF;
        /// Threshold of the excitatory transfer function.
        b_e: "b_E" ["Hz"] = 125.0, -INF => INF;
        /// Curvature of the excitatory transfer function.
        d_e: "d_E" ["s"] = 0.16, POS => INF;
        /// Gain of the inhibitory transfer function.
        a_i: "a_I" ["1/nC"] = 615.0, POS => INF;
        /// Threshold of the inhibitory transfer function.
        b_i: "b_I" ["Hz"] = 177.0, -INF => INF;
        /// Curvature of the inhibitory transfer function.
        d_i: "d_I" ["s"] = 0.087, POS => INF;
        /// Scale of the external input to the excitatory pool.
        w_e: "W_E" ["1"] = 1.0, 0.0 => INF;
        /// Scale of the external input to the inhibitory pool.
        w_i: "W_I" ["1"] = 0.7, 0.0 => INF;
        /// Effective external input current.
        i_0: "I_0" ["nA"] = 0.382, -INF => INF;
        /// Local excitatory gain g_EE = w_p J_N.
        g_ee: "g_EE" ["nA"] = 1.4 * 0.15, 0.0 => INF;
        /// Inhibitory-to-excitatory gain g_IE = J_i.
        g_ie: "g_IE" ["nA"] = 1.0, 0.0 => INF;
        /// Excitatory-to-inhibitory gain g_EI = J_N.
        g_ei: "g_EI" ["nA"] = 0.15, 0.0 => INF;
        /// Amplitude of the additive noise on S_E and S_I.
        sigma: "sigma" ["1/sqrt(ms)"] = 0.01, 0.0 => INF;
    }
}

impl<T: Real> Model<T, 2> for RwwGriffiths<T> {
    const NAME: &'static str = "rww-griffiths";
    const STATE: [&'static str; 2] = ["S_E", "S_I"];
    const COUPLING_VAR: usize = 0;
    forward_params!();

    #[inline]
    fn deriv(&self, x: &[T; 2], input: T) -> [T; 2] {
        let [se, si] = *x;
        let xe = (self.w_e * self.i_0 + self.g_ee * se - self.g_ie * si + input)
            .max(T::ZERO)
            .tanh();
        let xi = (self.w_i * self.i_0 + self.g_ei * se - si)
            .max(T::ZERO)
            .tanh();
        let he = transfer(self.a_e, self.b_e, self.d_e, xe);
        let hi = transfer(self.a_i, self.b_i, self.d_i, xi);
        [
            -se / self.tau_e + (T::ONE - se) * self.gamma_e * he,
            -si / self.tau_i + self.gamma_i * hi,
        ]
    }

    fn diffusion(&self) -> [T; 2] {
        [self.sigma; 2]
    }

    fn initial_state(&self) -> [T; 2] {
        [T::from_f64(0.1); 2]
    }

    /// Gating variables in `[0, 1]`.
    #[inline]
    fn project(&self, x: [T; 2]) -> [T; 2] {
        x.map(|s| s.max(T::ZERO).min(T::ONE))
    }
}
