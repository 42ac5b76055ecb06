//! External drives shared by every command that takes one.
//!
//! A [`StimSpec`] is the plain description written on a command line; [`Stimulus`] evaluates
//! it at times `t` (in the model's time unit). Syntax (`StimSpec::from_str`):
//!
//! | spec | drive |
//! |---|---|
//! | `const:A` | `A` |
//! | `step:A:T0:T1` | `A` for `T0 <= t < T1`, else 0 |
//! | `sin:A:F` | `A sin(2 pi F t)`, `F` in 1/(time unit) |
//! | `noise:S:BETA[:H]` | coloured Gaussian noise, power ~ 1/f^BETA, standard deviation `S`, sampled every `H` time units (default 0.01) and linearly interpolated |
//!
//! Coloured noise uses Kasdin's fractional-integration filter (Proc. IEEE 83, 1995): white
//! normal samples `w` filtered by `h_0 = 1`, `h_k = h_{k-1} (BETA/2 + k - 1)/k`, truncated at
//! `M` taps, then scaled to unit variance and multiplied by `S`. The spectrum follows
//! `1/f^BETA` between `1/(M H)` and the Nyquist frequency `1/(2 H)`. Because samples live on
//! their own grid, the drive a seed produces does not depend on the integrator's step.
//! Evaluation is streaming (no allocation); times must not decrease by more than one sample
//! interval (every stepper satisfies this).
//!
//! ```
//! use nmm_core::stim::{StimSpec, Stimulus};
//! let spec: StimSpec = "step:3:0:30".parse().unwrap();
//! let mut s = Stimulus::<f64>::new(spec, 0, 0.0);
//! assert_eq!(s.value(-1.0), 0.0);
//! assert_eq!(s.value(10.0), 3.0);
//! assert_eq!(s.value(30.0), 0.0);
//! ```

use crate::real::Real;
use crate::rng::Gaussian;
use core::fmt;
use core::str::FromStr;

/// Default sampling interval of coloured noise (time units).
pub const DEFAULT_NOISE_INTERVAL: f64 = 0.01;

/// A drive as written on a command line.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum StimSpec {
    /// No drive.
    #[default]
    None,
    /// Constant `A`.
    Const(f64),
    /// `amp` on `start <= t < end`.
    Step {
        /// Amplitude.
        amp: f64,
        /// Onset (time units).
        start: f64,
        /// Offset (time units).
        end: f64,
    },
    /// `amp sin(2 pi freq t)`.
    Sin {
        /// Amplitude.
        amp: f64,
        /// Frequency, 1/(time unit).
        freq: f64,
    },
    /// Coloured Gaussian noise.
    Noise {
        /// Standard deviation.
        sigma: f64,
        /// Spectral exponent: power ~ 1/f^beta (0 white, 1 pink, 2 brown).
        beta: f64,
        /// Sample interval (time units).
        interval: f64,
    },
}

/// A drive specification that could not be parsed; says what was expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StimParseError(pub &'static str);

impl fmt::Display for StimParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl core::error::Error for StimParseError {}

impl FromStr for StimSpec {
    type Err = StimParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split(':');
        let kind = parts.next().unwrap_or("");
        let mut nums = [0.0f64; 4];
        let mut n = 0;
        for p in parts {
            if n == nums.len() {
                return Err(StimParseError("too many fields in stimulus"));
            }
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| StimParseError("stimulus fields must be numbers"))?;
            if !v.is_finite() {
                return Err(StimParseError("stimulus fields must be finite"));
            }
            nums[n] = v;
            n += 1;
        }
        match (kind, n) {
            ("none", 0) => Ok(StimSpec::None),
            ("const", 1) => Ok(StimSpec::Const(nums[0])),
            ("step", 3) => {
                if nums[2] < nums[1] {
                    return Err(StimParseError("step:A:T0:T1 needs T0 <= T1"));
                }
                Ok(StimSpec::Step {
                    amp: nums[0],
                    start: nums[1],
                    end: nums[2],
                })
            }
            ("sin", 2) => Ok(StimSpec::Sin {
                amp: nums[0],
                freq: nums[1],
            }),
            ("noise", 2 | 3) => {
                let interval = if n == 3 {
                    nums[2]
                } else {
                    DEFAULT_NOISE_INTERVAL
                };
                if nums[0] < 0.0 {
                    return Err(StimParseError("noise:SIGMA:BETA needs SIGMA >= 0"));
                }
                if !(0.0..=3.0).contains(&nums[1]) {
                    return Err(StimParseError("noise:SIGMA:BETA needs 0 <= BETA <= 3"));
                }
                if interval <= 0.0 {
                    return Err(StimParseError("noise:SIGMA:BETA:H needs H > 0"));
                }
                Ok(StimSpec::Noise {
                    sigma: nums[0],
                    beta: nums[1],
                    interval,
                })
            }
            ("none" | "const" | "step" | "sin" | "noise", _) => Err(StimParseError(
                "wrong number of fields: expected const:A, step:A:T0:T1, sin:A:F or noise:SIGMA:BETA[:H]",
            )),
            _ => Err(StimParseError(
                "unknown stimulus kind: expected none, const:A, step:A:T0:T1, sin:A:F or noise:SIGMA:BETA[:H]",
            )),
        }
    }
}

impl fmt::Display for StimSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StimSpec::None => f.write_str("none"),
            StimSpec::Const(a) => write!(f, "const:{a}"),
            StimSpec::Step { amp, start, end } => write!(f, "step:{amp}:{start}:{end}"),
            StimSpec::Sin { amp, freq } => write!(f, "sin:{amp}:{freq}"),
            StimSpec::Noise {
                sigma,
                beta,
                interval,
            } => write!(f, "noise:{sigma}:{beta}:{interval}"),
        }
    }
}

/// Streaming 1/f^beta Gaussian noise with `M` filter taps (see the module docs).
#[derive(Clone, Debug)]
pub struct ColoredNoise<T, const M: usize> {
    h: [T; M],
    ring: [T; M],
    pos: usize,
    gauss: Gaussian<T>,
    scale: T,
    t0: T,
    interval: T,
    k: i64,
    y0: T,
    y1: T,
}

impl<T: Real, const M: usize> ColoredNoise<T, M> {
    /// Noise with standard deviation `sigma` and exponent `beta`, samples every `interval`
    /// starting at `t0`, from stream 0 of `seed`.
    pub fn new(sigma: T, beta: T, interval: T, seed: u64, t0: T) -> Self {
        const { assert!(M > 0, "ColoredNoise needs at least one tap") };
        let mut h = [T::ZERO; M];
        h[0] = T::ONE;
        let half_beta = beta * T::HALF;
        let mut energy = T::ONE;
        for k in 1..M {
            let kf = T::from_usize(k);
            h[k] = h[k - 1] * (half_beta + kf - T::ONE) / kf;
            energy += h[k] * h[k];
        }
        let mut gauss = Gaussian::new(seed, 0);
        let mut ring = [T::ZERO; M];
        gauss.fill(&mut ring);
        let mut s = Self {
            h,
            ring,
            pos: 0,
            gauss,
            scale: sigma / energy.sqrt(),
            t0,
            interval,
            k: 0,
            y0: T::ZERO,
            y1: T::ZERO,
        };
        s.y0 = s.filter();
        s.y1 = s.advance();
        s
    }

    /// Filter output at the current ring position (newest sample at `pos`).
    fn filter(&self) -> T {
        let mut acc = T::ZERO;
        // Newest white sample pairs with h[0], the one before with h[1], ...
        let (newer, older) = self.ring.split_at(self.pos + 1);
        let taps = newer.iter().rev().chain(older.iter().rev());
        for (h, w) in self.h.iter().zip(taps) {
            acc += *h * *w;
        }
        acc * self.scale
    }

    /// Draws one new white sample and returns the next filtered value.
    fn advance(&mut self) -> T {
        self.pos = (self.pos + 1) % M;
        self.ring[self.pos] = self.gauss.next();
        self.filter()
    }

    /// The noise at time `t`, linearly interpolated between grid samples.
    pub fn value(&mut self, t: T) -> T {
        let s = (t - self.t0) / self.interval;
        let target = s.floor().to_f64() as i64;
        while self.k < target {
            self.y0 = self.y1;
            self.y1 = self.advance();
            self.k += 1;
        }
        let frac = (s - T::from_f64(self.k as f64)).max(T::ZERO).min(T::ONE);
        self.y0 + (self.y1 - self.y0) * frac
    }
}

/// A drive evaluated in time; `M` is the number of coloured-noise filter taps.
#[derive(Clone, Debug)]
pub enum Stimulus<T, const M: usize = 2048> {
    /// A deterministic drive.
    Deterministic(StimSpec),
    /// Coloured noise.
    Noise(ColoredNoise<T, M>),
}

impl<T: Real, const M: usize> Stimulus<T, M> {
    /// The drive described by `spec`; `seed` feeds the noise, whose sample grid starts at `t0`.
    pub fn new(spec: StimSpec, seed: u64, t0: f64) -> Self {
        match spec {
            StimSpec::Noise {
                sigma,
                beta,
                interval,
            } => Stimulus::Noise(ColoredNoise::new(
                T::from_f64(sigma),
                T::from_f64(beta),
                T::from_f64(interval),
                seed,
                T::from_f64(t0),
            )),
            other => Stimulus::Deterministic(other),
        }
    }

    /// The drive at time `t`.
    #[inline]
    pub fn value(&mut self, t: T) -> T {
        match self {
            Stimulus::Deterministic(spec) => match *spec {
                StimSpec::None => T::ZERO,
                StimSpec::Const(a) => T::from_f64(a),
                StimSpec::Step { amp, start, end } => {
                    if t >= T::from_f64(start) && t < T::from_f64(end) {
                        T::from_f64(amp)
                    } else {
                        T::ZERO
                    }
                }
                StimSpec::Sin { amp, freq } => {
                    T::from_f64(amp) * (T::TWO * T::PI * T::from_f64(freq) * t).sin()
                }
                StimSpec::Noise { .. } => T::ZERO, // unreachable: built as Stimulus::Noise
            },
            Stimulus::Noise(n) => n.value(t),
        }
    }
}
