//! Single-neuron updates of the spiking networks (QIF, Izhikevich with adaptation) and the
//! Lorentzian heterogeneity, shared by the host network simulator, the firmware and the tests.
//!
//! Both neurons are stepped by explicit Euler (the scheme of the published networks,
//! REFERENCE sections 1-3). Network input reaches a neuron in two forms:
//! - `kick`: an instantaneous jump of `v` (QIF with the synapse of Montbrio 2015: each spike adds
//!   `J/N` to `v` of every non-refractory target);
//! - `current`: a term added to `dv/dt` over the step (finite synaptic pulses, stimuli).

use crate::real::Real;

/// Excitability of neuron `j` (0-based) of `n` from the deterministic Lorentzian quantiles
/// `eta_j = eta_bar + Delta tan[(pi/2)(2j' - n - 1)/(n + 1)]`, `j' = j + 1` (REFERENCE 1).
///
/// ```
/// use nmm_core::spiking::lorentzian_quantile;
/// // Symmetric around the centre: the middle neuron of an odd population sits at eta_bar.
/// assert!((lorentzian_quantile(-5.0_f64, 1.0, 50, 101) + 5.0).abs() < 1e-12);
/// ```
#[inline]
pub fn lorentzian_quantile<T: Real>(eta_bar: T, delta: T, j: usize, n: usize) -> T {
    let num = T::from_f64((2 * (j + 1)) as f64 - n as f64 - 1.0);
    let den = T::from_f64(n as f64 + 1.0);
    eta_bar + delta * (T::PI * T::HALF * num / den).tan()
}

/// A Lorentzian draw `centre + width tan(pi (u - 1/2))` from a uniform `u` in (0, 1).
#[inline]
pub fn lorentzian_draw<T: Real>(centre: T, width: T, u: T) -> T {
    centre + width * (T::PI * (u - T::HALF)).tan()
}

/// Constants of the QIF update, derived once from `tau`, `V_peak`, `V_reset` and `dt`.
///
/// A neuron that crosses `V_peak` is held for `hold_steps = round(2 tau / (V_peak dt))` steps
/// (the time the exact QIF needs to go from `V_peak` to infinity and back from minus infinity
/// to `-V_peak`), emits its spike half-way, `tau / V_peak` after the crossing, and is
/// released at `V_reset`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Qif<T> {
    /// `dt / tau`.
    pub dt_over_tau: T,
    /// Threshold `V_peak`.
    pub v_peak: T,
    /// Reset value `V_reset`.
    pub v_reset: T,
    /// Refractory hold in steps (at least 2).
    pub hold_steps: u32,
    /// The spike is emitted when this many hold steps remain.
    pub emit_at: u32,
}

impl<T: Real> Qif<T> {
    /// Constants for membrane time `tau`, threshold and reset, and step `dt` (all in the same
    /// time unit).
    ///
    /// ```
    /// use nmm_core::spiking::Qif;
    /// let q = Qif::<f64>::new(1.0, 100.0, -100.0, 1e-4);
    /// assert_eq!((q.hold_steps, q.emit_at), (200, 100)); // 2 tau/V_peak = 0.02 = 200 steps
    /// ```
    pub fn new(tau: f64, v_peak: f64, v_reset: f64, dt: f64) -> Self {
        let hold = libm::round(2.0 * tau / (v_peak * dt)).max(2.0) as u32;
        Self {
            dt_over_tau: T::from_f64(dt / tau),
            v_peak: T::from_f64(v_peak),
            v_reset: T::from_f64(v_reset),
            hold_steps: hold,
            emit_at: hold / 2,
        }
    }

    /// One Euler step of `tau dv/dt = v^2 + eta + current`, after applying `kick` to a
    /// non-refractory neuron. `hold` counts the remaining refractory steps (0: active).
    /// Returns true on the step at which the neuron's spike is emitted.
    ///
    /// ```
    /// use nmm_core::spiking::Qif;
    /// let q = Qif::<f64>::new(1.0, 100.0, -100.0, 1e-3); // hold 20 steps, emit after 10
    /// let (mut v, mut hold) = (99.0, 0);
    /// let mut emitted = None;
    /// for k in 0..40 {
    ///     if q.step(&mut v, &mut hold, 5.0, 0.0, 0.0) { emitted = Some(k); }
    /// }
    /// assert_eq!(emitted, Some(10)); // crossed at step 0, spike 10 steps (tau/V_peak) later
    /// assert!(v < 0.0);              // released at V_reset and climbing again
    /// ```
    #[inline(always)]
    pub fn step(&self, v: &mut T, hold: &mut u32, eta: T, current: T, kick: T) -> bool {
        if *hold > 0 {
            *hold -= 1;
            if *hold == 0 {
                *v = self.v_reset;
            }
            return *hold == self.emit_at;
        }
        let x = *v + kick;
        let x = x + self.dt_over_tau * (x * x + eta + current);
        if x >= self.v_peak {
            *hold = self.hold_steps;
        }
        *v = x;
        false
    }
}

/// What [`Qif::advance_block`] saw in a block of neurons.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BlockSums<T> {
    /// Sum of the new `v` over every neuron of the block.
    pub v: T,
    /// Number of neurons whose new `v` is at or above `V_peak`.
    pub above: u32,
}

impl<T: Real> Qif<T> {
    /// The Euler step of every neuron of a block, as straight-line arithmetic that vectorises:
    /// `x = v[i] + kick[i] + kick_all`, `v[i] = x + dt/tau (x^2 + eta[i] + current + level[i])`,
    /// `kick[i] = 0`, with four fixed partial sums (so the order of the reduction, and the result,
    /// do not depend on the machine).
    ///
    /// Refractory neurons are stepped too and must be put back by the caller: it parks them at
    /// `V_reset` during their hold (so they never reach `V_peak` in one step), subtracts their
    /// stepped value from the sum and writes `V_reset` back; neurons found at or above `V_peak`
    /// start their hold. The host network does exactly this; per neuron the result is
    /// bit-identical to [`Qif::step`] (tested in the host).
    ///
    /// `level` is the per-neuron synaptic current (empty for none).
    ///
    /// # Panics
    /// If `eta`, `kick` (and a non-empty `level`) are not as long as `v`.
    ///
    /// ```
    /// use nmm_core::spiking::Qif;
    /// let q = Qif::<f64>::new(1.0, 100.0, -100.0, 1e-3);
    /// let (mut v, eta, mut kick) = ([0.0, 99.9], [1.0; 2], [0.5; 2]);
    /// let s = q.advance_block(&mut v, &eta, &mut kick, 0.0, 0.0, &[]);
    /// assert_eq!(s.above, 1);
    /// assert_eq!(v[0], 0.5 + 1e-3 * (0.25 + 1.0));
    /// assert_eq!(kick, [0.0; 2]);
    /// ```
    #[inline]
    pub fn advance_block(
        &self,
        v: &mut [T],
        eta: &[T],
        kick: &mut [T],
        kick_all: T,
        current: T,
        level: &[T],
    ) -> BlockSums<T> {
        let n = v.len();
        if eta.len() != n || kick.len() != n || !(level.is_empty() || level.len() == n) {
            block_length_mismatch();
        }
        if level.is_empty() {
            self.lanes::<false>(v, eta, kick, kick_all, current, level)
        } else {
            self.lanes::<true>(v, eta, kick, kick_all, current, level)
        }
    }

    #[inline(always)]
    fn lanes<const LEVEL: bool>(
        &self,
        v: &mut [T],
        eta: &[T],
        kick: &mut [T],
        kick_all: T,
        current: T,
        level: &[T],
    ) -> BlockSums<T> {
        const L: usize = 4;
        let (dtt, vp) = (self.dt_over_tau, self.v_peak);
        let mut acc = [T::ZERO; L];
        let mut above = [0u32; L];
        let zeros = [T::ZERO; L];
        let mut one = |l: usize, v: &mut T, e: T, k: &mut T, lv: T| {
            let x = *v + *k + kick_all;
            let c = current + lv;
            let xn = x + dtt * (x * x + e + c);
            *v = xn;
            *k = T::ZERO;
            acc[l] += xn;
            above[l] += (xn >= vp) as u32;
        };
        let mut vc = v.chunks_exact_mut(L);
        let mut ec = eta.chunks_exact(L);
        let mut kc = kick.chunks_exact_mut(L);
        let mut lc = level.chunks_exact(L);
        for ((vs, es), ks) in (&mut vc).zip(&mut ec).zip(&mut kc) {
            let ls: &[T] = if LEVEL {
                lc.next().unwrap_or(&zeros)
            } else {
                &zeros
            };
            for l in 0..L {
                one(l, &mut vs[l], es[l], &mut ks[l], ls[l]);
            }
        }
        let lr = lc.remainder();
        for (i, ((v, e), k)) in vc
            .into_remainder()
            .iter_mut()
            .zip(ec.remainder())
            .zip(kc.into_remainder())
            .enumerate()
        {
            let lv = if LEVEL { lr[i] } else { T::ZERO };
            one(0, v, *e, k, lv);
        }
        BlockSums {
            v: (acc[0] + acc[1]) + (acc[2] + acc[3]),
            above: above.iter().sum(),
        }
    }
}

#[cold]
#[inline(never)]
fn block_length_mismatch() -> ! {
    panic!("Qif::advance_block: eta, kick and level must be as long as v")
}

#[cfg(target_arch = "x86_64")]
impl Qif<f64> {
    /// [`Qif::advance_block`] compiled for AVX2 (four f64 lanes instead of SSE2's two). The
    /// results are bit-identical: the same IEEE operations in the same order, and no fused
    /// multiply-adds (FMA is not enabled).
    ///
    /// # Safety
    /// The CPU must support AVX2 (check with `is_x86_feature_detected!("avx2")` on a host).
    #[target_feature(enable = "avx2")]
    pub fn advance_block_avx2(
        &self,
        v: &mut [f64],
        eta: &[f64],
        kick: &mut [f64],
        kick_all: f64,
        current: f64,
        level: &[f64],
    ) -> BlockSums<f64> {
        self.advance_block(v, eta, kick, kick_all, current, level)
    }
}

/// Parameters of the dimensionless Izhikevich neuron of Chen and Campbell (REFERENCE 3):
/// `v' = v (v - alpha) - w + eta + I + g (e_r - v) s`, `w' = a (b v - w)`; at `v >= v_peak`:
/// `v <- v_reset`, `w <- w + w_jump`; synaptic gating `s' = -s/tau_s` plus the jumps the network
/// delivers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Izhikevich<T> {
    /// `alpha`.
    pub alpha: T,
    /// Synaptic conductance `g`.
    pub g: T,
    /// Reversal potential `e_r`.
    pub e_r: T,
    /// Adaptation rate `a`.
    pub a: T,
    /// Adaptation sensitivity `b`.
    pub b: T,
    /// Adaptation jump per spike.
    pub w_jump: T,
    /// Synaptic decay time `tau_s`.
    pub tau_s: T,
    /// Threshold.
    pub v_peak: T,
    /// Reset.
    pub v_reset: T,
    /// Step.
    pub dt: T,
}

impl<T: Real> Izhikevich<T> {
    /// Neuron constants from the Chen-Campbell mean-field parameters, threshold, reset and step.
    pub fn from_mean_field(
        m: &crate::models::ChenCampbell<T>,
        v_peak: f64,
        v_reset: f64,
        dt: f64,
    ) -> Self {
        Self {
            alpha: m.alpha,
            g: m.g,
            e_r: m.e_r,
            a: m.a,
            b: m.b,
            w_jump: m.w_jump,
            tau_s: m.tau_s,
            v_peak: T::from_f64(v_peak),
            v_reset: T::from_f64(v_reset),
            dt: T::from_f64(dt),
        }
    }

    /// One Euler step of neuron `(v, w)` with its synaptic gating `s` and external input
    /// `input`; `s` decays by one Euler step (the network adds spike jumps separately). Returns
    /// true if the neuron spiked (and was reset) in this step.
    ///
    /// ```
    /// use nmm_core::models::ChenCampbell;
    /// use nmm_core::spiking::Izhikevich;
    /// let n = Izhikevich::from_mean_field(&ChenCampbell::<f64>::default(), 200.0, -200.0, 1e-3);
    /// let (mut v, mut w, mut s) = (199.9, 0.0, 0.0);
    /// assert!(n.step(&mut v, &mut w, &mut s, 0.1, 0.0));
    /// assert_eq!(v, -200.0);
    /// assert!((w - 0.0189).abs() < 1e-3);
    /// ```
    #[inline(always)]
    pub fn step(&self, v: &mut T, w: &mut T, s: &mut T, eta: T, input: T) -> bool {
        let (x, y, z) = (*v, *w, *s);
        let dv = x * (x - self.alpha) - y + eta + input + self.g * (self.e_r - x) * z;
        let dw = self.a * (self.b * x - y);
        *s = z - self.dt * z / self.tau_s;
        let nv = x + self.dt * dv;
        let nw = y + self.dt * dw;
        if nv >= self.v_peak {
            *v = self.v_reset;
            *w = nw + self.w_jump;
            true
        } else {
            *v = nv;
            *w = nw;
            false
        }
    }
}
