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
    /// The largest new `v` in the block (minus infinity for an empty block): some neuron
    /// reached `V_peak` exactly when `max >= V_peak`.
    pub max: T,
}

/// The synaptic input of a block of neurons for one step (see [`Qif::advance_block`]).
#[derive(Debug)]
pub struct BlockInput<'a, T> {
    /// Spikes that reach each neuron this step (at most 255 per step; a host delivering more
    /// moves whole counts into `kick` first). Each adds `w` to `v`. Zeroed by the update.
    pub counts: &'a mut [u8],
    /// Jump of `v` per counted spike (dimensionless, as `v`).
    pub w: T,
    /// Further per-neuron jumps of `v` (empty for none). Zeroed by the update.
    pub kick: &'a mut [T],
    /// Jump of every neuron's `v` (all-to-all delivery).
    pub kick_all: T,
    /// Input current common to the block (added to `dv/dt`, as `eta`).
    pub current: T,
    /// Per-neuron synaptic current (empty for none), added to `dv/dt`.
    pub level: &'a [T],
}

impl<'a, T: Copy> BlockInput<'a, T> {
    /// The per-neuron arrays `(counts, kick, level)` and the scalars (with empty arrays).
    fn split(self) -> (&'a mut [u8], &'a mut [T], &'a [T], Self) {
        let BlockInput {
            counts,
            kick,
            level,
            ..
        } = self;
        let scalars = BlockInput {
            counts: &mut [],
            kick: &mut [],
            level: &[],
            ..self
        };
        (counts, kick, level, scalars)
    }
}

impl<T: Real> Qif<T> {
    /// The Euler step of every neuron of a block, as straight-line arithmetic that vectorises:
    /// `x = v[i] + (counts[i] w + kick[i]) + kick_all`,
    /// `v[i] = x + dt/tau (x^2 + eta[i] + current + level[i])`, `counts[i] = kick[i] = 0`, with
    /// four fixed partial sums (so the order of the reduction, and the result, do not depend on
    /// the machine). Without `kick` the jump is `counts[i] w` alone.
    ///
    /// Counting spikes as small integers and multiplying once keeps spike delivery an integer
    /// increment (vectorisable, order-free); the jump is the exact `counts[i] w` rounded once,
    /// rather than `w` added `counts[i]` times.
    ///
    /// Refractory neurons are stepped too and must be put back by the caller: it parks them at
    /// `V_reset` during their hold (so they never reach `V_peak` in one step), subtracts their
    /// stepped value from the sum and writes `V_reset` back; neurons found at or above `V_peak`
    /// start their hold. The host network does exactly this; per neuron the result is
    /// bit-identical to [`Qif::step`] with the kick `counts[i] w + kick[i]` (tested in the host).
    ///
    /// # Panics
    /// If `eta`, `counts` (and a non-empty `kick` or `level`) are not as long as `v`.
    ///
    /// ```
    /// use nmm_core::spiking::{BlockInput, Qif};
    /// let q = Qif::<f64>::new(1.0, 100.0, -100.0, 1e-3);
    /// let (mut v, eta, mut counts) = ([0.0, 99.9], [1.0; 2], [2, 0]);
    /// let input = BlockInput { counts: &mut counts, w: 0.25, kick: &mut [], kick_all: 0.0,
    ///                          current: 0.0, level: &[] };
    /// let s = q.advance_block(&mut v, &eta, input);
    /// assert!(s.max >= 100.0);
    /// assert_eq!(v[0], 0.5 + 1e-3 * (0.25 + 1.0));
    /// assert_eq!(counts, [0; 2]);
    /// ```
    #[inline]
    pub fn advance_block(&self, v: &mut [T], eta: &[T], input: BlockInput<'_, T>) -> BlockSums<T> {
        check_lengths(v.len(), eta, &input);
        match (input.kick.is_empty(), input.level.is_empty()) {
            (true, true) => self.lanes::<false, false>(v, eta, input),
            (true, false) => self.lanes::<false, true>(v, eta, input),
            (false, true) => self.lanes::<true, false>(v, eta, input),
            (false, false) => self.lanes::<true, true>(v, eta, input),
        }
    }

    /// One step of four neurons (`KICK`, `LEVEL`: whether those inputs are present).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)] // the four lanes' operands, kept in registers
    fn four<const KICK: bool, const LEVEL: bool>(
        &self,
        v: &mut [T],
        eta: &[T],
        counts: &mut [u8],
        kick: &mut [T],
        level: &[T],
        c: &BlockInput<'_, T>,
        acc: &mut [T; 4],
        top: &mut [T; 4],
    ) {
        let dtt = self.dt_over_tau;
        for l in 0..4 {
            let mut jump = T::from_f64(f64::from(counts[l])) * c.w;
            if KICK {
                jump += kick[l];
                kick[l] = T::ZERO;
            }
            counts[l] = 0;
            let x = v[l] + jump + c.kick_all;
            let cur = if LEVEL {
                c.current + level[l]
            } else {
                c.current
            };
            let xn = x + dtt * (x * x + eta[l] + cur);
            v[l] = xn;
            acc[l] += xn;
            // The largest new v per lane (a vector max; a per-lane count compiled to branches).
            top[l] = if xn > top[l] { xn } else { top[l] };
        }
    }

    #[inline(always)]
    fn lanes<const KICK: bool, const LEVEL: bool>(
        &self,
        v: &mut [T],
        eta: &[T],
        input: BlockInput<'_, T>,
    ) -> BlockSums<T> {
        const L: usize = 4;
        let n = v.len();
        let whole = n - n % L;
        let mut acc = [T::ZERO; L];
        let mut top = [T::from_f64(f64::NEG_INFINITY); L];
        let (counts, kick, level, c) = input.split();
        let mut i = 0;
        while i < whole {
            let kick: &mut [T] = if KICK { &mut kick[i..i + L] } else { &mut [] };
            let level: &[T] = if LEVEL { &level[i..i + L] } else { &[] };
            self.four::<KICK, LEVEL>(
                &mut v[i..i + L],
                &eta[i..i + L],
                &mut counts[i..i + L],
                kick,
                level,
                &c,
                &mut acc,
                &mut top,
            );
            i += L;
        }
        self.finish::<KICK, LEVEL>(whole, v, eta, counts, kick, level, &c, acc, top)
    }

    /// Completes [`Qif::advance_block`] for a vectorised version of it written elsewhere (the
    /// host's AVX2 kernel): given the four lanes' partial sums `acc` and maxima `top` over
    /// neurons `0..whole` (`whole` a multiple of four; lane `l` holding neurons `l, l + 4, ..`),
    /// steps neurons `whole..` as `advance_block` does and reduces the lanes in its order.
    ///
    /// # Panics
    /// As [`Qif::advance_block`].
    pub fn advance_tail(
        &self,
        whole: usize,
        v: &mut [T],
        eta: &[T],
        input: BlockInput<'_, T>,
        acc: [T; 4],
        top: [T; 4],
    ) -> BlockSums<T> {
        check_lengths(v.len(), eta, &input);
        if whole > v.len() {
            block_length_mismatch();
        }
        let (counts, kick, level, c) = input.split();
        match (kick.is_empty(), level.is_empty()) {
            (true, true) => {
                self.finish::<false, false>(whole, v, eta, counts, kick, level, &c, acc, top)
            }
            (true, false) => {
                self.finish::<false, true>(whole, v, eta, counts, kick, level, &c, acc, top)
            }
            (false, true) => {
                self.finish::<true, false>(whole, v, eta, counts, kick, level, &c, acc, top)
            }
            (false, false) => {
                self.finish::<true, true>(whole, v, eta, counts, kick, level, &c, acc, top)
            }
        }
    }

    /// The neurons from `whole` on (fewer than four), one at a time in lane 0 of a padded
    /// group, and the reduction of the four partial sums.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)] // the block's arrays and the lanes' partial sums
    fn finish<const KICK: bool, const LEVEL: bool>(
        &self,
        whole: usize,
        v: &mut [T],
        eta: &[T],
        counts: &mut [u8],
        kick: &mut [T],
        level: &[T],
        c: &BlockInput<'_, T>,
        mut acc: [T; 4],
        mut top: [T; 4],
    ) -> BlockSums<T> {
        const L: usize = 4;
        for j in whole..v.len() {
            let mut vj = [v[j], T::ZERO, T::ZERO, T::ZERO];
            let ej = [eta[j], T::ZERO, T::ZERO, T::ZERO];
            let mut cj = [counts[j], 0, 0, 0];
            let mut kj = [
                if KICK { kick[j] } else { T::ZERO },
                T::ZERO,
                T::ZERO,
                T::ZERO,
            ];
            let lj = [
                if LEVEL { level[j] } else { T::ZERO },
                T::ZERO,
                T::ZERO,
                T::ZERO,
            ];
            let (mut a1, mut b1) = ([T::ZERO; L], top);
            self.four::<KICK, LEVEL>(&mut vj, &ej, &mut cj, &mut kj, &lj, c, &mut a1, &mut b1);
            v[j] = vj[0];
            counts[j] = 0;
            if KICK {
                kick[j] = T::ZERO;
            }
            acc[0] += a1[0];
            top[0] = b1[0];
        }
        let max = |a: T, b: T| if b > a { b } else { a };
        BlockSums {
            v: (acc[0] + acc[1]) + (acc[2] + acc[3]),
            max: max(max(top[0], top[1]), max(top[2], top[3])),
        }
    }
}

/// Panics unless `eta` and `counts` (and a non-empty `kick` or `level`) have length `n`.
#[inline]
fn check_lengths<T>(n: usize, eta: &[T], input: &BlockInput<'_, T>) {
    let fits = |len: usize| len == 0 || len == n;
    if eta.len() != n
        || input.counts.len() != n
        || !fits(input.kick.len())
        || !fits(input.level.len())
    {
        block_length_mismatch();
    }
}

#[cold]
#[inline(never)]
fn block_length_mismatch() -> ! {
    panic!("Qif::advance_block: eta, counts (and a non-empty kick or level) must be as long as v")
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
