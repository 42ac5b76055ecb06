//! Balloon-Windkessel BOLD (Friston et al. 2000; Stephan et al. 2007), with three parameter
//! presets and a streaming monitor that samples every repetition time (TR).
//!
//! Per region the state is `[s, f, v, q]`: vasodilatory signal, blood inflow, blood volume and
//! deoxyhaemoglobin content, the last three normalised to 1 at rest. Time is in **seconds**;
//! the input `z` is the neural activity driving the vasodilatory signal (usually a firing rate,
//! scaled as the caller chooses):
//!
//! ```text
//! ds/dt       = z - s/tau_s - (f - 1)/tau_f
//! df/dt       = s
//! tau_0 dv/dt = f - v^(1/alpha)
//! tau_0 dq/dt = f (1 - (1 - E_0)^(1/f)) / E_0 - v^(1/alpha) q / v
//! BOLD        = V_0 [k1 (1 - q) + k2 (1 - q/v) + k3 (1 - v)]
//! ```
//!
//! Rest is `s = 0, f = v = q = 1` ([`BoldParams::REST`]), where every derivative and the BOLD
//! signal vanish. Peers disagree on the numbers, so each set in use is a [`BoldPreset`]
//! (REFERENCE.md section 6), every value overridable by name ([`BoldParams::set`]):
//!
//! | preset | tau_s (s) | tau_f (s) | E_0 | V_0 | k1, k2, k3 |
//! |---|---|---|---|---|---|
//! | `stephan2007` (default) | 1.54 | 1.44 | 0.4 | 4 | 4.3 nu_0 E_0 TE, eps r_0 E_0 TE, 1 - eps |
//! | `friston2000` | 1/0.65 | 1/0.41 | 0.34 | 0.02 | 7 E_0, 2, 2 E_0 - 0.2 |
//! | `vbjax` | 0.65 | 0.41 | 0.4 | 4 | as `stephan2007` |
//!
//! `stephan2007` is TVB's Balloon model with the revised coefficients, `friston2000` is
//! neurolib's set, `vbjax` the one of the Deco-lab and vbjax code. All three share
//! `tau_0 = 0.98 s` and `alpha = 0.32`; `stephan2007` and `vbjax` use `TE = 0.04 s`,
//! `eps = 0.5`, `nu_0 = 40.3 Hz`, `r_0 = 25 Hz`. With `V_0 = 4` the signal is in percent; with
//! `V_0 = 0.02` (`friston2000`) it is a fractional change (0.01 = 1 %).
//!
//! Integration uses Heun's method ([`crate::integrate::heun`]) with the input held constant
//! over each step ([`BoldParams::step`]); [`BoldMonitor`] does this for many regions in a
//! caller-owned state buffer and returns one BOLD sample per region every TR.
//!
//! ```
//! use nmm_core::bold::{BoldParams, BoldPreset};
//! let p = BoldParams::<f64>::preset(BoldPreset::Stephan2007);
//! let mut x = BoldParams::<f64>::REST;
//! let dt = 0.01; // s
//! for _ in 0..100 {
//!     x = p.step(&x, 1.0, dt); // 1 s of unit input
//! }
//! for _ in 0..400 {
//!     x = p.step(&x, 0.0, dt); // 4 s later the response is near its peak
//! }
//! assert!(p.bold(&x) > 0.5); // percent signal change
//! ```

use crate::integrate::heun;
use crate::lanes::Lanes;
use crate::models::{INF, POS, ParamError, params};
use crate::real::Real;
use core::fmt;
use core::str::FromStr;

/// Resting oxygen extraction fraction of `stephan2007` and `vbjax`.
const E0_STEPHAN: f64 = 0.4;
/// Echo time (s) of `stephan2007` and `vbjax`.
const TE: f64 = 0.04;
/// Ratio of intra- to extravascular signal of `stephan2007` and `vbjax`.
const EPS: f64 = 0.5;
/// Frequency offset at the outer surface of magnetised vessels (Hz), `stephan2007`.
const NU_0: f64 = 40.3;
/// Slope of the intravascular relaxation rate against extraction (Hz), `stephan2007`.
const R_0: f64 = 25.0;

/// Largest `f64` below 1: the upper end of the open interval (0, 1) for `E_0`.
const BELOW_ONE: f64 = 1.0 - f64::EPSILON / 2.0;

/// Floor applied to inflow `f` and volume `v` where they enter powers and divisions.
///
/// Under any physiological input `f` and `v` stay within a factor of a few of 1 and the
/// floor never acts; it only keeps `v^(1/alpha)`, `q/v` and `(1 - E_0)^(1/f)` defined (and
/// the derivative continuous) if an extreme input drives them towards zero or below.
pub const POSITIVE_FLOOR: f64 = 1e-6;

/// A named Balloon-Windkessel parameter set (REFERENCE.md section 6).
///
/// ```
/// use nmm_core::bold::BoldPreset;
/// let p: BoldPreset = "friston2000".parse().unwrap();
/// assert_eq!(p, BoldPreset::Friston2000);
/// assert_eq!(p.to_string(), "friston2000");
/// assert_eq!(BoldPreset::default(), BoldPreset::Stephan2007);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BoldPreset {
    /// Stephan et al. 2007 revised coefficients, as TVB's Balloon model (output in percent).
    #[default]
    Stephan2007,
    /// Friston et al. 2000, as neurolib (output as a fraction).
    Friston2000,
    /// As `Stephan2007` with `tau_s = 0.65 s`, `tau_f = 0.41 s` (Deco-lab and vbjax code).
    Vbjax,
}

impl BoldPreset {
    /// Every preset, the default first.
    pub const ALL: [BoldPreset; 3] = [
        BoldPreset::Stephan2007,
        BoldPreset::Friston2000,
        BoldPreset::Vbjax,
    ];

    /// Name as used on the command line and in outputs (`stephan2007`, `friston2000`, `vbjax`).
    ///
    /// ```
    /// use nmm_core::bold::BoldPreset;
    /// assert_eq!(BoldPreset::Vbjax.name(), "vbjax");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            BoldPreset::Stephan2007 => "stephan2007",
            BoldPreset::Friston2000 => "friston2000",
            BoldPreset::Vbjax => "vbjax",
        }
    }
}

impl fmt::Display for BoldPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A BOLD preset name that is not one of `stephan2007`, `friston2000`, `vbjax`.
///
/// ```
/// use nmm_core::bold::{BoldPreset, UnknownPreset};
/// assert_eq!("tvb".parse::<BoldPreset>(), Err(UnknownPreset));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownPreset;

impl fmt::Display for UnknownPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown BOLD preset (expected one of: stephan2007, friston2000, vbjax)")
    }
}

impl core::error::Error for UnknownPreset {}

impl FromStr for BoldPreset {
    type Err = UnknownPreset;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BoldPreset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or(UnknownPreset)
    }
}

params! {
    /// Balloon-Windkessel parameters; `Default` is the `stephan2007` preset.
    ///
    /// Fields are public; [`BoldParams::SPECS`] lists them with the names of REFERENCE.md
    /// (`tau_s`, `tau_f`, `tau_0`, `alpha`, `E_0`, `V_0`, `k1`, `k2`, `k3`), units and valid
    /// ranges, for [`BoldParams::get`] and [`BoldParams::set`].
    ///
    /// ```
    /// use nmm_core::bold::{BoldParams, BoldPreset};
    /// let mut p = BoldParams::<f64>::preset(BoldPreset::Friston2000);
    /// assert_eq!(p.get("E_0"), Some(0.34));
    /// p.set("tau_s", 0.8).unwrap();
    /// assert!(p.set("alpha", -1.0).is_err());
    /// assert!(p.validate().is_ok());
    /// ```
    pub struct BoldParams {
        /// Time constant of the decay of the vasodilatory signal (1/kappa).
        tau_s: "tau_s" ["s"] = 1.54, POS => INF;
        /// Time constant of the autoregulatory feedback of inflow (1/gamma).
        tau_f: "tau_f" ["s"] = 1.44, POS => INF;
        /// Haemodynamic transit time through the venous balloon.
        tau_0: "tau_0" ["s"] = 0.98, POS => INF;
        /// Grubb's exponent of the volume-outflow relation (outflow = v^(1/alpha)).
        alpha: "alpha" ["1"] = 0.32, POS => INF;
        /// Resting oxygen extraction fraction, in the open interval (0, 1).
        e_0: "E_0" ["1"] = 0.4, POS => BELOW_ONE;
        /// Resting venous blood volume fraction; scales the output (4: percent, 0.02: fraction).
        v_0: "V_0" ["1"] = 4.0, -INF => INF;
        /// Weight of the intravascular signal 1 - q (stephan2007: 4.3 nu_0 E_0 TE).
        k1: "k1" ["1"] = 4.3 * 40.3 * 0.4 * 0.04, -INF => INF;
        /// Weight of the concentration term 1 - q/v (stephan2007: eps r_0 E_0 TE).
        k2: "k2" ["1"] = 0.5 * 25.0 * 0.4 * 0.04, -INF => INF;
        /// Weight of the volume term 1 - v (stephan2007: 1 - eps).
        k3: "k3" ["1"] = 1.0 - 0.5, -INF => INF;
    }
}

impl<T: Real> BoldParams<T> {
    /// The resting state `[s, f, v, q] = [0, 1, 1, 1]`.
    ///
    /// ```
    /// use nmm_core::bold::BoldParams;
    /// let p = BoldParams::<f64>::default();
    /// assert_eq!(p.bold(&BoldParams::REST), 0.0);
    /// ```
    pub const REST: [T; 4] = [T::ZERO, T::ONE, T::ONE, T::ONE];

    /// The parameters of a named preset (formulas in the module docs).
    ///
    /// ```
    /// use nmm_core::bold::{BoldParams, BoldPreset};
    /// let p = BoldParams::<f64>::preset(BoldPreset::Vbjax);
    /// assert_eq!((p.tau_s, p.tau_f), (0.65, 0.41));
    /// assert_eq!(BoldParams::<f64>::preset(BoldPreset::Stephan2007), BoldParams::default());
    /// ```
    pub fn preset(preset: BoldPreset) -> Self {
        match preset {
            BoldPreset::Stephan2007 => Self::stephan(1.54, 1.44),
            BoldPreset::Vbjax => Self::stephan(0.65, 0.41),
            BoldPreset::Friston2000 => {
                let rho = 0.34;
                Self {
                    tau_s: T::from_f64(1.0 / 0.65),
                    tau_f: T::from_f64(1.0 / 0.41),
                    tau_0: T::from_f64(0.98),
                    alpha: T::from_f64(0.32),
                    e_0: T::from_f64(rho),
                    v_0: T::from_f64(0.02),
                    k1: T::from_f64(7.0 * rho),
                    k2: T::from_f64(2.0),
                    k3: T::from_f64(2.0 * rho - 0.2),
                }
            }
        }
    }

    /// The Stephan 2007 coefficients with the given signal and feedback time constants.
    fn stephan(tau_s: f64, tau_f: f64) -> Self {
        Self {
            tau_s: T::from_f64(tau_s),
            tau_f: T::from_f64(tau_f),
            tau_0: T::from_f64(0.98),
            alpha: T::from_f64(0.32),
            e_0: T::from_f64(E0_STEPHAN),
            v_0: T::from_f64(4.0),
            k1: T::from_f64(4.3 * NU_0 * E0_STEPHAN * TE),
            k2: T::from_f64(EPS * R_0 * E0_STEPHAN * TE),
            k3: T::from_f64(1.0 - EPS),
        }
    }

    /// Checks every parameter against its range in [`BoldParams::SPECS`]: finite, time
    /// constants and `alpha` positive, `0 < E_0 < 1`.
    ///
    /// ```
    /// use nmm_core::bold::BoldParams;
    /// let mut p = BoldParams::<f64>::default();
    /// assert!(p.validate().is_ok());
    /// p.e_0 = 1.0;
    /// assert!(p.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), ParamError> {
        for spec in Self::SPECS {
            let v = self.get(spec.name).map(Real::to_f64).unwrap_or(f64::NAN);
            spec.check(v)?;
        }
        Ok(())
    }

    /// `d[s, f, v, q]/dt` (per second) at state `x` with neural input `z`.
    ///
    /// `f` and `v` are floored at [`POSITIVE_FLOOR`] where they enter `v^(1/alpha)`, `q/v` and
    /// `(1 - E_0)^(1/f)`; the `ds/dt` term uses `f` as it is.
    ///
    /// ```
    /// use nmm_core::bold::BoldParams;
    /// let p = BoldParams::<f64>::default();
    /// let d = p.deriv(&BoldParams::REST, 1.0);
    /// assert_eq!(d, [1.0, 0.0, 0.0, 0.0]); // the input first raises s only
    /// ```
    #[inline]
    pub fn deriv(&self, x: &[T; 4], z: T) -> [T; 4] {
        self.deriv_with(x, z, (T::ONE - self.e_0).ln())
    }

    /// [`BoldParams::deriv`] with `ln(1 - E_0)` computed by the caller (once per step of many
    /// regions instead of twice per region). The other logarithm and exponentials are the
    /// branch-free ones ([`Real::exp_branch_free`]), which vectorise across regions in
    /// [`BoldMonitor::step`].
    #[inline]
    fn deriv_with(&self, x: &[T; 4], z: T, ln_1m_e0: T) -> [T; 4] {
        let [s, f, v, q] = *x;
        let floor = T::from_f64(POSITIVE_FLOOR);
        let fp = f.max(floor);
        let vp = v.max(floor);
        // a^b as exp(b ln a): the same value to a few ulp, at about half the cost of a general
        // power function; this is the hot spot of whole-brain runs with BOLD.
        let outflow = (vp.ln_branch_free() / self.alpha).exp_branch_free();
        let extraction = (T::ONE - (ln_1m_e0 / fp).exp_branch_free()) / self.e_0;
        [
            z - s / self.tau_s - (f - T::ONE) / self.tau_f,
            s,
            (fp - outflow) / self.tau_0,
            (fp * extraction - outflow * q / vp) / self.tau_0,
        ]
    }

    /// The BOLD signal of state `x` (unit set by `V_0`: percent for `stephan2007` and `vbjax`,
    /// a fraction for `friston2000`); `v` is floored at [`POSITIVE_FLOOR`] in `q/v`.
    ///
    /// ```
    /// use nmm_core::bold::BoldParams;
    /// let p = BoldParams::<f64>::default();
    /// // More deoxyhaemoglobin than at rest: negative BOLD.
    /// assert!(p.bold(&[0.0, 1.0, 1.0, 1.1]) < 0.0);
    /// ```
    #[inline]
    pub fn bold(&self, x: &[T; 4]) -> T {
        let [_, _, v, q] = *x;
        let vp = v.max(T::from_f64(POSITIVE_FLOOR));
        self.v_0 * (self.k1 * (T::ONE - q) + self.k2 * (T::ONE - q / vp) + self.k3 * (T::ONE - v))
    }

    /// One Heun step of `dt` seconds from `x`, with the input `z` held constant over the step.
    ///
    /// ```
    /// use nmm_core::bold::BoldParams;
    /// let p = BoldParams::<f64>::default();
    /// let x = p.step(&BoldParams::REST, 0.0, 0.1);
    /// assert_eq!(x, BoldParams::<f64>::REST); // rest is a fixed point
    /// ```
    #[inline]
    pub fn step(&self, x: &[T; 4], z: T, dt: T) -> [T; 4] {
        self.step_with(x, z, dt, (T::ONE - self.e_0).ln())
    }

    #[inline]
    fn step_with(&self, x: &[T; 4], z: T, dt: T, ln_1m_e0: T) -> [T; 4] {
        heun(
            &mut |_t, x: &[T; 4]| self.deriv_with(x, z, ln_1m_e0),
            T::ZERO,
            x,
            dt,
        )
    }
}

/// Why a [`BoldMonitor`] could not be built.
///
/// ```
/// use nmm_core::bold::{BoldError, BoldMonitor, BoldParams};
/// let mut buf = [BoldParams::<f64>::REST; 2];
/// let e = BoldMonitor::new(BoldParams::default(), &mut buf, 0.1, 2.05).err();
/// assert_eq!(e, Some(BoldError::TrNotMultipleOfStep));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BoldError {
    /// The step `dt` is not positive and finite.
    BadStep,
    /// The repetition time is not finite or is shorter than the step.
    TrShorterThanStep,
    /// The repetition time is not a whole multiple of the step (within 1e-9 relative).
    TrNotMultipleOfStep,
    /// A parameter is out of its range.
    Param(ParamError),
}

impl fmt::Display for BoldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoldError::BadStep => f.write_str("BOLD step dt must be positive and finite"),
            BoldError::TrShorterThanStep => {
                f.write_str("BOLD repetition time TR must be finite and at least the step dt")
            }
            BoldError::TrNotMultipleOfStep => f.write_str(
                "BOLD repetition time TR must be a whole multiple of dt (within 1e-9 relative)",
            ),
            BoldError::Param(e) => write!(f, "BOLD {e}"),
        }
    }
}

impl core::error::Error for BoldError {}

impl From<ParamError> for BoldError {
    fn from(e: ParamError) -> Self {
        BoldError::Param(e)
    }
}

/// Streaming Balloon-Windkessel over `R` regions, sampled every TR.
///
/// The state of every region lives in the caller's buffer (`R = state.len()`), which
/// [`BoldMonitor::new`] sets to rest. Each [`BoldMonitor::step`] advances all regions by `dt`
/// seconds with one Heun step ([`BoldParams::step`]), input held constant over the step.
///
/// Sampling convention: after steps `k n`, `k = 1, 2, ...` with `n = TR/dt`, i.e. at times
/// `t = k TR` from the start, `step` writes the instantaneous BOLD signal of each region
/// (no averaging over the TR) and returns `true`; the first sample is at `t = TR`, not at 0.
///
/// ```
/// use nmm_core::bold::{BoldMonitor, BoldParams};
/// let mut state = [BoldParams::<f64>::REST; 3];
/// let mut mon = BoldMonitor::new(BoldParams::default(), &mut state, 0.01, 2.0).unwrap();
/// assert_eq!(mon.steps_per_tr(), 200);
/// let (z, mut y) = ([1.0, 0.5, 0.0], [0.0; 3]);
/// let mut samples = 0;
/// for _ in 0..400 {
///     if mon.step(&z, &mut y) {
///         samples += 1;
///     }
/// }
/// assert_eq!(samples, 2); // t = 2 s and t = 4 s
/// assert!(y[0] > y[1] && y[1] > 0.0 && y[2] == 0.0);
/// ```
#[derive(Debug)]
pub struct BoldMonitor<'a, T> {
    params: BoldParams<T>,
    state: &'a mut [[T; 4]],
    dt: T,
    n_per_tr: usize,
    since_sample: usize,
}

impl<'a, T: Real> BoldMonitor<'a, T> {
    /// A monitor over `state.len()` regions at rest, stepping `dt_s` seconds and sampling
    /// every `tr_s` seconds.
    ///
    /// `dt_s` and `tr_s` are configuration values in `f64` so that the check that TR is a
    /// whole multiple of dt (within 1e-9 relative) does not depend on the precision of `T`.
    ///
    /// # Errors
    /// [`BoldError::BadStep`] if `dt_s` is not positive and finite,
    /// [`BoldError::TrShorterThanStep`] if `tr_s` is not finite or `tr_s < dt_s`,
    /// [`BoldError::TrNotMultipleOfStep`] if `tr_s / dt_s` is not within 1e-9 relative of an
    /// integer (or exceeds 1e15 or `usize::MAX`), [`BoldError::Param`] if `params` fails [`BoldParams::validate`].
    ///
    /// ```
    /// use nmm_core::bold::{BoldError, BoldMonitor, BoldParams};
    /// let mut buf = [[0.0_f32; 4]; 4];
    /// assert_eq!(
    ///     BoldMonitor::new(BoldParams::default(), &mut buf, 0.0, 1.0).err(),
    ///     Some(BoldError::BadStep)
    /// );
    /// let mon = BoldMonitor::new(BoldParams::default(), &mut buf, 0.001, 0.72).unwrap();
    /// assert_eq!((mon.regions(), mon.steps_per_tr()), (4, 720));
    /// ```
    pub fn new(
        params: BoldParams<T>,
        state: &'a mut [[T; 4]],
        dt_s: f64,
        tr_s: f64,
    ) -> Result<Self, BoldError> {
        if !(dt_s.is_finite() && dt_s > 0.0) {
            return Err(BoldError::BadStep);
        }
        if !(tr_s.is_finite() && tr_s >= dt_s) {
            return Err(BoldError::TrShorterThanStep);
        }
        let n = libm::round(tr_s / dt_s);
        // Beyond 1e15 steps per TR the whole-multiple check is meaningless in f64.
        if (tr_s - n * dt_s).abs() > 1e-9 * tr_s || n > 1e15 || n > usize::MAX as f64 {
            return Err(BoldError::TrNotMultipleOfStep);
        }
        params.validate()?;
        let mut mon = Self {
            params,
            state,
            dt: T::from_f64(dt_s),
            n_per_tr: n as usize,
            since_sample: 0,
        };
        mon.reset();
        Ok(mon)
    }

    /// Puts every region back at rest and restarts the TR clock.
    ///
    /// ```
    /// use nmm_core::bold::{BoldMonitor, BoldParams};
    /// let mut buf = [[0.0_f64; 4]; 1];
    /// let mut mon = BoldMonitor::new(BoldParams::default(), &mut buf, 0.1, 0.2).unwrap();
    /// mon.step(&[5.0], &mut [0.0]);
    /// mon.reset();
    /// assert_eq!(mon.state(), &[BoldParams::<f64>::REST]);
    /// ```
    pub fn reset(&mut self) {
        self.state.fill(BoldParams::REST);
        self.since_sample = 0;
    }

    /// Advances every region by one step with inputs `z` (one per region); when this step
    /// completes a TR, writes the BOLD signal of each region to `out` and returns `true`.
    ///
    /// # Panics
    /// With the message `BoldMonitor::step: z and out must have one element per region`
    /// if `z.len()` or `out.len()` differs from [`BoldMonitor::regions`].
    ///
    /// ```
    /// use nmm_core::bold::{BoldMonitor, BoldParams};
    /// let mut buf = [[0.0_f64; 4]; 2];
    /// let mut mon = BoldMonitor::new(BoldParams::default(), &mut buf, 0.5, 1.0).unwrap();
    /// let mut y = [f64::NAN; 2];
    /// assert!(!mon.step(&[0.0, 0.0], &mut y)); // t = 0.5 s: no sample, y untouched
    /// assert!(y[0].is_nan());
    /// assert!(mon.step(&[0.0, 0.0], &mut y)); // t = 1 s
    /// assert_eq!(y, [0.0, 0.0]);
    /// ```
    #[inline]
    pub fn step(&mut self, z: &[T], out: &mut [T]) -> bool {
        let r = self.state.len();
        if z.len() != r || out.len() != r {
            step_length_mismatch();
        }
        let ln_1m_e0 = (T::ONE - self.params.e_0).ln();
        // Eight regions at a time in vector lanes (each lane computes exactly what a region
        // alone would, so the result does not depend on the grouping), the rest one by one:
        // BOLD was a fifth of a batched MPR run's time region by region (workload W of
        // benches/benches/batch.rs, 16 f32 lanes).
        const W: usize = 8;
        let p = &self.params;
        let lanes = BoldParams::<Lanes<T, W>> {
            tau_s: Lanes::splat(p.tau_s),
            tau_f: Lanes::splat(p.tau_f),
            tau_0: Lanes::splat(p.tau_0),
            alpha: Lanes::splat(p.alpha),
            e_0: Lanes::splat(p.e_0),
            v_0: Lanes::splat(p.v_0),
            k1: Lanes::splat(p.k1),
            k2: Lanes::splat(p.k2),
            k3: Lanes::splat(p.k3),
        };
        let (dt, ln) = (Lanes::splat(self.dt), Lanes::splat(ln_1m_e0));
        let mut xs = self.state.chunks_exact_mut(W);
        let mut zs = z.chunks_exact(W);
        for (xc, zc) in (&mut xs).zip(&mut zs) {
            let mut x = [Lanes::<T, W>::ZERO; 4];
            let mut zl = Lanes::<T, W>::ZERO;
            for (k, (xk, zk)) in xc.iter().zip(zc).enumerate() {
                for (v, xv) in x.iter_mut().enumerate() {
                    xv.0[k] = xk[v];
                }
                zl.0[k] = *zk;
            }
            let y = lanes.step_with(&x, zl, dt, ln);
            for (k, xk) in xc.iter_mut().enumerate() {
                for (v, yv) in y.iter().enumerate() {
                    xk[v] = yv.0[k];
                }
            }
        }
        for (x, &zi) in xs.into_remainder().iter_mut().zip(zs.remainder()) {
            *x = p.step_with(x, zi, self.dt, ln_1m_e0);
        }
        self.since_sample += 1;
        if self.since_sample < self.n_per_tr {
            return false;
        }
        self.since_sample = 0;
        for (y, x) in out.iter_mut().zip(self.state.iter()) {
            *y = self.params.bold(x);
        }
        true
    }

    /// Number of regions.
    ///
    /// ```
    /// use nmm_core::bold::{BoldMonitor, BoldParams};
    /// let mut buf = [[0.0_f64; 4]; 5];
    /// let mon = BoldMonitor::new(BoldParams::default(), &mut buf, 0.1, 1.0).unwrap();
    /// assert_eq!(mon.regions(), 5);
    /// ```
    pub fn regions(&self) -> usize {
        self.state.len()
    }

    /// Steps per repetition time, `TR / dt`.
    ///
    /// ```
    /// use nmm_core::bold::{BoldMonitor, BoldParams};
    /// let mut buf = [[0.0_f64; 4]; 1];
    /// let mon = BoldMonitor::new(BoldParams::default(), &mut buf, 0.1, 2.0).unwrap();
    /// assert_eq!(mon.steps_per_tr(), 20);
    /// ```
    pub fn steps_per_tr(&self) -> usize {
        self.n_per_tr
    }

    /// The parameters in use.
    ///
    /// ```
    /// use nmm_core::bold::{BoldMonitor, BoldParams, BoldPreset};
    /// let p = BoldParams::<f64>::preset(BoldPreset::Friston2000);
    /// let mut buf = [[0.0; 4]; 1];
    /// let mon = BoldMonitor::new(p, &mut buf, 0.1, 2.0).unwrap();
    /// assert_eq!(mon.params(), &p);
    /// ```
    pub fn params(&self) -> &BoldParams<T> {
        &self.params
    }

    /// The current `[s, f, v, q]` of every region.
    ///
    /// ```
    /// use nmm_core::bold::{BoldMonitor, BoldParams};
    /// let mut buf = [[0.0_f64; 4]; 2];
    /// let mon = BoldMonitor::new(BoldParams::default(), &mut buf, 0.1, 2.0).unwrap();
    /// assert_eq!(mon.state(), &[BoldParams::<f64>::REST; 2]);
    /// ```
    pub fn state(&self) -> &[[T; 4]] {
        self.state
    }
}

#[cold]
#[inline(never)]
fn step_length_mismatch() -> ! {
    panic!("BoldMonitor::step: z and out must have one element per region")
}
