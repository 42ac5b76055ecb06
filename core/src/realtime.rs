//! Real-time stepping of one mean-field node, for the firmware and WASM hosts.
//!
//! A real-time host does, at a fixed tick: read an input sample, step the node once, write the
//! rate out, and optionally close the loop with a controller that drives the node's
//! stimulation toward a rate set-point. Everything here is that computation without the I/O,
//! so the Cortex-M4F firmware, the WASM module and host tests run the same code and produce the
//! same numbers (bitwise in `f32`: only IEEE-754 `+ - * /` and libm's pure-Rust functions,
//! no fused multiply-adds).
//!
//! - [`Node`]: MPR, Chen-Campbell or the MLP mean field, chosen at run time, stepped by Heun
//!   (stochastic Heun when noise is on) with the model's projection after each stage.
//! - [`Pi`]: a PI controller with output limits and anti-windup.
//! - [`RealTime`]: node + controller + noise stream; [`RealTime::tick`] is one loop iteration.
//! - [`scripted_input`], [`Scenario`], [`Digest`]: the fixed golden scenarios that every target
//!   runs and compares (the "cross-target contract" of DESIGN.md).
//!
//! ```
//! use nmm_core::realtime::{Node, Pi, RealTime};
//! use nmm_core::models::Mpr;
//! // MPR (tau = 1 ms) stepped at dt = 0.01 ms, PI control of the rate from its low state
//! // (0.081 kHz) up to 0.15 kHz.
//! let mut rt = RealTime::new(Node::Mpr(Mpr::default()), 0.01f32);
//! rt.controller = Some(Pi::new(1.0, 5.0, 0.15, -10.0, 10.0));
//! for _ in 0..20_000 {
//!     rt.tick(0.0);
//! }
//! assert!((rt.rate() - 0.15).abs() < 1e-4);
//! ```

use crate::integrate::stochastic_heun_in;
use crate::mlp::{MlpMeanField, MlpScalar};
use crate::models::{ChenCampbell, Corrected, Model, Mpr, ParamError};
use crate::real::Real;
use crate::rng::Gaussian;

/// Largest state dimension of a [`Node`] (Chen-Campbell's `r, v, w, s`).
pub const MAX_STATE: usize = 4;

/// One mean-field node whose model is chosen at run time.
///
/// Time is in each model's unit (ms for MPR with `tau` in ms; dimensionless for
/// Chen-Campbell and the MLP, whose time unit is the membrane time constant); the input is the
/// model's `I(t)`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // one node per host; boxing is not available without alloc
pub enum Node<T> {
    /// Montbrio-Pazo-Roxin, state `(r, v)`.
    Mpr(Mpr<T>),
    /// Chen-Campbell with adaptation, state `(r, v, w, s)`.
    Cc(ChenCampbell<T>),
    /// The compact MLP mean field, state `(r, v)`.
    Mlp(MlpMeanField<T>),
    /// MPR plus a closed-form correction for sparse networks (`nmm discover`), state `(r, v)`.
    MprCorrected(Corrected<T, Mpr<T>, 2>),
    /// Chen-Campbell plus a closed-form correction for sparse networks (`nmm discover --base
    /// cc`), state `(r, v, w, s)`.
    CcCorrected(Corrected<T, ChenCampbell<T>, 4>),
}

/// Applies `$body` to the concrete model of a [`Node`] with its state length as const `$n`.
macro_rules! with_model {
    ($node:expr, $m:ident, $n:ident => $body:expr) => {
        match $node {
            Node::Mpr($m) => {
                const $n: usize = 2;
                $body
            }
            Node::Cc($m) => {
                const $n: usize = 4;
                $body
            }
            Node::MprCorrected($m) => {
                const $n: usize = 2;
                $body
            }
            Node::CcCorrected($m) => {
                const $n: usize = 4;
                $body
            }
            Node::Mlp($m) => {
                const $n: usize = 2;
                $body
            }
        }
    };
}

impl<T: Real + MlpScalar> Node<T> {
    /// Short model name (`mpr`, `cc`, `mlp`).
    pub fn name(&self) -> &'static str {
        match self {
            Node::Mpr(_) => <Mpr<T> as Model<T, 2>>::NAME,
            Node::Cc(_) => <ChenCampbell<T> as Model<T, 4>>::NAME,
            Node::Mlp(_) => <MlpMeanField<T> as Model<T, 2>>::NAME,
            Node::MprCorrected(_) => <Corrected<T, Mpr<T>, 2> as Model<T, 2>>::NAME,
            Node::CcCorrected(_) => <Corrected<T, ChenCampbell<T>, 4> as Model<T, 4>>::NAME,
        }
    }

    /// Number of state variables.
    pub fn n_state(&self) -> usize {
        with_model!(self, _m, N => N)
    }

    /// State variable names (the first [`Node::n_state`] entries are used).
    pub fn state_names(&self) -> &'static [&'static str] {
        match self {
            Node::Mpr(_) => &<Mpr<T> as Model<T, 2>>::STATE,
            Node::Cc(_) => &<ChenCampbell<T> as Model<T, 4>>::STATE,
            Node::Mlp(_) => &<MlpMeanField<T> as Model<T, 2>>::STATE,
            Node::MprCorrected(_) => &<Corrected<T, Mpr<T>, 2> as Model<T, 2>>::STATE,
            Node::CcCorrected(_) => &<Corrected<T, ChenCampbell<T>, 4> as Model<T, 4>>::STATE,
        }
    }

    /// The model's initial state, zero-padded to [`MAX_STATE`].
    pub fn initial_state(&self) -> [T; MAX_STATE] {
        with_model!(self, m, N => pad::<T, N>(m.initial_state()))
    }

    /// Sets a parameter by name (see each model's parameter table), checking its range.
    pub fn set(&mut self, name: &str, value: T) -> Result<(), ParamError> {
        with_model!(self, m, N => Model::<T, N>::set(m, name, value))
    }

    /// A parameter by name.
    pub fn get(&self, name: &str) -> Option<T> {
        with_model!(self, m, N => Model::<T, N>::get(m, name))
    }

    /// One Heun step of `dt` with input `input`, additive noise amplitudes `sigma` and standard
    /// normal draws `z` (both ignored beyond [`Node::n_state`]; pass zeros for an ODE step).
    /// The model's projection (`r >= 0`) is applied after each stage. Bit for bit the
    /// operations of [`crate::integrate::stochastic_heun_in`] on the model's own state size.
    #[inline]
    pub fn step(
        &self,
        x: &[T; MAX_STATE],
        input: T,
        dt: T,
        sigma: &[T; MAX_STATE],
        z: &[T; MAX_STATE],
    ) -> [T; MAX_STATE] {
        with_model!(self, m, N => {
            let xs: [T; N] = core::array::from_fn(|i| x[i]);
            let s: [T; N] = core::array::from_fn(|i| sigma[i]);
            let zs: [T; N] = core::array::from_fn(|i| z[i]);
            let out = stochastic_heun_in(
                &mut |_t, y: &[T; N]| m.deriv(y, input),
                <T as Real>::ZERO,
                &xs,
                dt,
                &s,
                &zs,
                &|y| m.project(y),
            );
            pad::<T, N>(out)
        })
    }
}

#[inline]
fn pad<T: Real, const N: usize>(x: [T; N]) -> [T; MAX_STATE] {
    core::array::from_fn(|i| if i < N { x[i] } else { <T as Real>::ZERO })
}

/// A PI controller: `u = kp e + ki integral(e) dt`, `e = setpoint - measured`, clamped to
/// `[u_min, u_max]`; the integral stops growing while the output is saturated in the
/// direction of the error (conditional-integration anti-windup). The limits must satisfy
/// `u_min <= u_max` (hosts check it where values come from users).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pi<T> {
    /// Proportional gain, input units per rate unit (for MPR: 1 per kHz).
    pub kp: T,
    /// Integral gain, input units per rate unit per time unit (for MPR: 1 per kHz per ms).
    pub ki: T,
    /// Rate set-point, in the node's rate unit (kHz for MPR in ms).
    pub setpoint: T,
    /// Smallest output (stimulation input, the model's `I` units).
    pub u_min: T,
    /// Largest output.
    pub u_max: T,
    integral: T,
}

impl<T: Real> Pi<T> {
    /// A controller with zero integral state.
    pub fn new(kp: T, ki: T, setpoint: T, u_min: T, u_max: T) -> Self {
        Self {
            kp,
            ki,
            setpoint,
            u_min,
            u_max,
            integral: <T as Real>::ZERO,
        }
    }

    /// The controller output for `measured` after a tick of length `dt`.
    #[inline]
    pub fn update(&mut self, measured: T, dt: T) -> T {
        let e = self.setpoint - measured;
        let candidate = self.integral + self.ki * e * dt;
        let u = self.kp * e + candidate;
        if u > self.u_max {
            if e < <T as Real>::ZERO {
                self.integral = candidate;
            }
            self.u_max
        } else if u < self.u_min {
            if e > <T as Real>::ZERO {
                self.integral = candidate;
            }
            self.u_min
        } else {
            self.integral = candidate;
            u
        }
    }

    /// The accumulated integral term (input units).
    pub fn integral(&self) -> T {
        self.integral
    }

    /// Clears the integral term.
    pub fn reset(&mut self) {
        self.integral = <T as Real>::ZERO;
    }
}

/// One node stepped in real time: the model, its state, the tick length, optional noise and
/// an optional controller.
#[derive(Clone, Debug)]
pub struct RealTime<T> {
    /// The model.
    pub node: Node<T>,
    /// Tick length, in the model's time unit.
    pub dt: T,
    /// Additive noise amplitude per state variable (units of the variable per square root of
    /// the time unit); all zero for a deterministic run.
    pub sigma: [T; MAX_STATE],
    /// Feedback controller; its output is added to the input sample.
    pub controller: Option<Pi<T>>,
    x: [T; MAX_STATE],
    noise: Gaussian<T>,
    seed: u64,
    last_stim: T,
    ticks: u64,
}

impl<T: Real + MlpScalar> RealTime<T> {
    /// A node at its initial state, no noise (seed 0), no controller.
    pub fn new(node: Node<T>, dt: T) -> Self {
        Self {
            x: node.initial_state(),
            node,
            dt,
            sigma: [<T as Real>::ZERO; MAX_STATE],
            controller: None,
            noise: Gaussian::new(0, 1),
            seed: 0,
            last_stim: <T as Real>::ZERO,
            ticks: 0,
        }
    }

    /// Turns noise on with amplitudes `sigma` drawn from stream 1 of `seed` (the same stream a
    /// single node uses in a whole-brain run with that seed).
    pub fn set_noise(&mut self, sigma: [T; MAX_STATE], seed: u64) {
        self.sigma = sigma;
        self.seed = seed;
        self.noise = Gaussian::new(seed, 1);
    }

    /// Back to the model's initial state with the controller's integral and the last
    /// stimulation cleared. The noise stream goes on (see [`RealTime::restart_noise`]).
    pub fn reset(&mut self) {
        self.x = self.node.initial_state();
        if let Some(pi) = &mut self.controller {
            pi.reset();
        }
        self.last_stim = <T as Real>::ZERO;
    }

    /// Restarts the noise stream from its seed, so that after [`RealTime::reset`] a run
    /// replays exactly.
    pub fn restart_noise(&mut self) {
        self.noise = Gaussian::new(self.seed, 1);
    }

    /// One tick: controller (if any) on the current rate, then one step with input
    /// `sample + stimulation`. Returns the new rate.
    #[inline]
    pub fn tick(&mut self, sample: T) -> T {
        let stim = match &mut self.controller {
            Some(pi) => pi.update(self.x[0], self.dt),
            None => <T as Real>::ZERO,
        };
        self.last_stim = stim;
        let z = if self.sigma.iter().any(|s| *s != <T as Real>::ZERO) {
            let mut z = [<T as Real>::ZERO; MAX_STATE];
            self.noise.fill(&mut z[..self.node.n_state()]);
            z
        } else {
            [<T as Real>::ZERO; MAX_STATE]
        };
        self.x = self
            .node
            .step(&self.x, sample + stim, self.dt, &self.sigma, &z);
        self.ticks += 1;
        self.x[0]
    }

    /// The state (zero-padded beyond [`Node::n_state`]).
    pub fn state(&self) -> &[T; MAX_STATE] {
        &self.x
    }

    /// Replaces the state (values beyond [`Node::n_state`] are ignored by the step).
    pub fn set_state(&mut self, x: [T; MAX_STATE]) {
        self.x = x;
    }

    /// The rate `r` (state variable 0 of every node).
    pub fn rate(&self) -> T {
        self.x[0]
    }

    /// The controller output applied in the last tick (zero without a controller).
    pub fn stimulation(&self) -> T {
        self.last_stim
    }

    /// Ticks since construction.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Whether the state is finite (a host stops and reports when it is not).
    pub fn is_finite(&self) -> bool {
        self.x.iter().all(|v| v.is_finite())
    }
}

/// Maps a rate to a duty cycle in `0..=max_duty`: `r / r_max` clamped to `[0, 1]`, scaled and
/// rounded down. NaN rates, and an `r_max` that is not positive, map to 0 (the safe output).
#[inline]
pub fn rate_to_duty(r: f32, r_max: f32, max_duty: u16) -> u16 {
    if r_max.is_nan() || r_max <= 0.0 {
        return 0;
    }
    let f = r / r_max;
    if f.is_nan() || f <= 0.0 {
        0
    } else if f >= 1.0 {
        max_duty
    } else {
        (f * max_duty as f32) as u16
    }
}

/// The scripted input sample at tick `k` (model input units): silence, a step of +3 that
/// switches bistable MPR up, a triangle wave of amplitude 1 and period 400 ticks, a step of -3
/// that switches it down, silence again. Integer tick arithmetic and exact f32 operations only,
/// so every target computes the same bits.
pub fn scripted_input(k: u32) -> f32 {
    match k {
        0..500 => 0.0,
        500..1500 => 3.0,
        1500..2500 => {
            let phase = (k % 400) as f32 / 200.0;
            let tri = if phase < 1.0 { phase } else { 2.0 - phase };
            2.0 * tri - 1.0
        }
        2500..3000 => -3.0,
        _ => 0.0,
    }
}

/// FNV-1a (64-bit) over the bits of a trajectory: a short fingerprint that differs when any
/// value differs in any bit. Written here (a dozen lines) because the digest must be computed
/// identically by core on every target and by the JavaScript tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest(u64);

impl Default for Digest {
    fn default() -> Self {
        Self::new()
    }
}

impl Digest {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// The empty digest.
    pub const fn new() -> Self {
        Self(Self::OFFSET)
    }

    /// Adds bytes.
    pub fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(Self::PRIME);
        }
    }

    /// Adds the little-endian bits of an `f32` (so `0.0` and `-0.0` differ).
    pub fn f32(&mut self, v: f32) {
        self.bytes(&v.to_bits().to_le_bytes());
    }

    /// Adds a `u16` (little-endian).
    pub fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }

    /// The digest value.
    pub fn value(&self) -> u64 {
        self.0
    }
}

/// One golden scenario: a model, its tick, a run length, and the optional controller and
/// noise. Each target runs [`Scenario::ALL`] and compares [`Outcome::digest`] with the host's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scenario {
    /// Name printed by the targets.
    pub name: &'static str,
    /// Which model (the MLP with the weights the caller supplies).
    pub model: ScenarioModel,
    /// Tick length (model time unit).
    pub dt: f32,
    /// Number of ticks.
    pub ticks: u32,
    /// Factor on [`scripted_input`].
    pub input_gain: f32,
    /// PI controller `(kp, ki, setpoint, u_min, u_max)`, if closed loop.
    pub pi: Option<(f32, f32, f32, f32, f32)>,
    /// Noise amplitude on `r` and `v`, and the seed, if stochastic.
    pub noise: Option<(f32, f32, u64)>,
}

/// The model of a [`Scenario`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScenarioModel {
    /// [`Mpr`] with its defaults (bistable set).
    Mpr,
    /// [`ChenCampbell`] with its defaults (bursting, `eta = 0.12`).
    Cc,
    /// [`MlpMeanField`] with the supplied weights and its default parameters.
    Mlp,
}

/// What a target reports for one scenario.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// FNV-1a over, per tick, the state, the stimulation and the PWM duty (`r_max = 4`,
    /// 16-bit duty).
    pub digest: u64,
    /// Final state.
    pub state: [f32; MAX_STATE],
    /// Whether the run stayed finite.
    pub finite: bool,
}

/// Rate (model rate unit) that maps to full duty in the golden scenarios.
pub const GOLDEN_R_MAX: f32 = 4.0;

impl Scenario {
    /// The scenarios every target runs: each model open loop on the scripted input, MPR under
    /// PI control, and MPR with noise.
    pub const ALL: [Scenario; 5] = [
        Scenario {
            name: "mpr",
            model: ScenarioModel::Mpr,
            dt: 0.01,
            ticks: 4000,
            input_gain: 1.0,
            pi: None,
            noise: None,
        },
        Scenario {
            name: "cc",
            model: ScenarioModel::Cc,
            dt: 0.01,
            ticks: 4000,
            input_gain: 0.05,
            pi: None,
            noise: None,
        },
        Scenario {
            name: "mlp",
            model: ScenarioModel::Mlp,
            dt: 0.01,
            ticks: 4000,
            input_gain: 1.0,
            pi: None,
            noise: None,
        },
        Scenario {
            name: "mpr-pi",
            model: ScenarioModel::Mpr,
            dt: 0.01,
            ticks: 4000,
            input_gain: 1.0,
            pi: Some((1.0, 5.0, 0.15, -10.0, 10.0)),
            noise: None,
        },
        Scenario {
            name: "mpr-noise",
            model: ScenarioModel::Mpr,
            dt: 0.01,
            ticks: 4000,
            input_gain: 1.0,
            pi: None,
            noise: Some((0.01, 0.1, 42)),
        },
    ];

    /// The real-time node of this scenario (`mlp`: the weights for [`ScenarioModel::Mlp`]).
    pub fn build(&self, mlp: &MlpMeanField<f32>) -> RealTime<f32> {
        let node = match self.model {
            ScenarioModel::Mpr => Node::Mpr(Mpr::default()),
            ScenarioModel::Cc => Node::Cc(ChenCampbell::default()),
            ScenarioModel::Mlp => Node::Mlp(*mlp),
        };
        let mut rt = RealTime::new(node, self.dt);
        if let Some((kp, ki, sp, lo, hi)) = self.pi {
            rt.controller = Some(Pi::new(kp, ki, sp, lo, hi));
        }
        if let Some((sr, sv, seed)) = self.noise {
            rt.set_noise([sr, sv, 0.0, 0.0], seed);
        }
        rt
    }

    /// Runs the scenario on `rt` (from [`Scenario::build`]), digesting every tick.
    pub fn run(&self, rt: &mut RealTime<f32>) -> Outcome {
        let mut d = Digest::new();
        for k in 0..self.ticks {
            let r = rt.tick(self.input_gain * scripted_input(k));
            for v in rt.state() {
                d.f32(*v);
            }
            d.f32(rt.stimulation());
            d.u16(rate_to_duty(r, GOLDEN_R_MAX, u16::MAX));
        }
        Outcome {
            digest: d.value(),
            state: *rt.state(),
            finite: rt.is_finite(),
        }
    }
}
