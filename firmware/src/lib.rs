//! # nmm-firmware
//!
//! A board-agnostic real-time loop for nmm's mean fields on microcontrollers (Cortex-M4F
//! first), over embedded-hal 1.0. At each tick the loop reads one input sample, optionally
//! runs a PI controller on the rate toward a set-point (its output is added to the input as
//! stimulation), steps the node once ([`nmm_core::realtime`]: MPR, Chen-Campbell or the MLP
//! mean field, in `f32`) and writes the rate to an output: a PWM duty cycle
//! ([`PwmOutput`]) or an SPI DAC ([`Mcp4921`]). Inputs come from any [`InputSource`]: an SPI
//! ADC ([`Mcp3201`]) or a board's own.
//!
//! No allocation and no panic paths in the loop: bus errors are counted and the loop goes on
//! (holding the last good input sample), a non-finite state resets the node and is counted,
//! and ticks that start late are counted as overruns ([`Stats`]). The numbers are nmm-core's,
//! so a run here equals the host's bit for bit (the QEMU board in `src/bin/qemu.rs` checks it).
//!
//! A new board implements [`Clock`] (a free-running counter) and picks an input and an output;
//! see `firmware/README.md`.
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use embedded_hal::pwm::SetDutyCycle;
use embedded_hal::spi::SpiDevice;
use nmm_core::realtime::{RealTime, rate_to_duty};

/// A source of one input sample per tick, in the model's input units.
pub trait InputSource {
    /// Bus or device error.
    type Error;
    /// The next sample.
    fn read(&mut self) -> Result<f32, Self::Error>;
}

/// Where the rate goes at each tick.
pub trait OutputSink {
    /// Bus or device error.
    type Error;
    /// Writes the rate (model rate unit).
    fn write(&mut self, rate: f32) -> Result<(), Self::Error>;
}

/// A free-running counter that wraps at `u32::MAX` (a timer, SysTick with a wrap count, or the
/// DWT cycle counter).
pub trait Clock {
    /// The counter now.
    fn now(&mut self) -> u32;

    /// Returns once the counter has reached `deadline` (wrapping comparison). The default
    /// polls; a board with a timer interrupt at the tick can sleep (`wfi`) instead.
    fn wait_until(&mut self, deadline: u32) {
        while (deadline.wrapping_sub(self.now()) as i32) > 0 {}
    }
}

/// A linear map from converter codes to model units and back: `value = offset + scale * code`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    /// Value at code 0 (model units).
    pub offset: f32,
    /// Model units per code step.
    pub scale: f32,
}

/// Microchip MCP3201, a 12-bit SPI ADC: one 16-clock transfer per sample.
///
/// The chip clocks out two sample bits, a null bit, then B11..B0 (datasheet DS21290, fig. 6-1),
/// so the code is the low five bits of the first byte and the top seven of the second.
pub struct Mcp3201<S> {
    spi: S,
    /// Code to model input units.
    pub scale: Scale,
}

impl<S: SpiDevice> Mcp3201<S> {
    /// The driver over an SPI device (mode 0 or 3, at most 1.6 MHz at 5 V).
    pub fn new(spi: S, scale: Scale) -> Self {
        Self { spi, scale }
    }

    /// One raw 12-bit code.
    pub fn read_code(&mut self) -> Result<u16, S::Error> {
        let mut buf = [0u8; 2];
        self.spi.read(&mut buf)?;
        Ok((u16::from(buf[0] & 0x1f) << 7) | u16::from(buf[1] >> 1))
    }

    /// The SPI device back.
    pub fn release(self) -> S {
        self.spi
    }
}

impl<S: SpiDevice> InputSource for Mcp3201<S> {
    type Error = S::Error;
    fn read(&mut self) -> Result<f32, S::Error> {
        let code = self.read_code()?;
        Ok(self.scale.offset + self.scale.scale * f32::from(code))
    }
}

/// Microchip MCP4921, a 12-bit SPI DAC: one 16-bit word per update (`0b0011` config: DAC A,
/// unbuffered, gain 1x, active, then the 12-bit code; datasheet DS21897, register 5-1). The
/// output updates when chip select rises, which assumes LDAC tied low.
pub struct Mcp4921<S> {
    spi: S,
    /// Rate that maps to the full-scale code 4095 (model rate unit, positive); lower rates
    /// scale linearly, negative or NaN rates (or an `r_max` that is not positive) give 0.
    pub r_max: f32,
}

impl<S: SpiDevice> Mcp4921<S> {
    /// The driver over an SPI device (mode 0 or 3, at most 20 MHz).
    pub fn new(spi: S, r_max: f32) -> Self {
        Self { spi, r_max }
    }

    /// Writes a raw code (values above 4095 are clamped).
    pub fn write_code(&mut self, code: u16) -> Result<(), S::Error> {
        let word = 0x3000 | code.min(4095);
        self.spi.write(&word.to_be_bytes())
    }

    /// The SPI device back.
    pub fn release(self) -> S {
        self.spi
    }
}

impl<S: SpiDevice> OutputSink for Mcp4921<S> {
    type Error = S::Error;
    fn write(&mut self, rate: f32) -> Result<(), S::Error> {
        self.write_code(rate_to_duty(rate, self.r_max, 4095))
    }
}

/// The rate as a PWM duty cycle: `r / r_max` of the channel's maximum duty, clamped.
pub struct PwmOutput<P> {
    pwm: P,
    /// Rate that maps to full duty (model rate unit, positive; otherwise the duty stays 0).
    pub r_max: f32,
    last: u16,
}

impl<P: SetDutyCycle> PwmOutput<P> {
    /// The output over a PWM channel.
    pub fn new(pwm: P, r_max: f32) -> Self {
        Self {
            pwm,
            r_max,
            last: 0,
        }
    }

    /// The duty written last.
    pub fn last_duty(&self) -> u16 {
        self.last
    }

    /// The channel back.
    pub fn release(self) -> P {
        self.pwm
    }
}

impl<P: SetDutyCycle> OutputSink for PwmOutput<P> {
    type Error = P::Error;
    fn write(&mut self, rate: f32) -> Result<(), P::Error> {
        let d = rate_to_duty(rate, self.r_max, self.pwm.max_duty_cycle());
        self.last = d;
        self.pwm.set_duty_cycle(d)
    }
}

/// Counters of what went wrong, and the worst tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Ticks run.
    pub ticks: u32,
    /// Ticks that started after their deadline (the previous tick took too long).
    pub overruns: u32,
    /// Input reads that failed (the last good sample was used).
    pub input_errors: u32,
    /// Output writes that failed.
    pub output_errors: u32,
    /// Resets of the node after a non-finite state.
    pub resets: u32,
    /// Longest tick body, in clock counts.
    pub max_tick: u32,
}

/// The real-time loop: a node, an input, an output and the counters.
pub struct RealTimeLoop<I, O> {
    /// The node, its controller and noise (public: a board may retune it between ticks).
    pub rt: RealTime<f32>,
    /// Where samples come from.
    pub input: I,
    /// Where the rate goes.
    pub output: O,
    stats: Stats,
    last_sample: f32,
}

impl<I: InputSource, O: OutputSink> RealTimeLoop<I, O> {
    /// A loop over `rt`, reading `input`, writing `output`.
    pub fn new(rt: RealTime<f32>, input: I, output: O) -> Self {
        Self {
            rt,
            input,
            output,
            stats: Stats::default(),
            last_sample: 0.0,
        }
    }

    /// One tick body: read, control, step, write. Returns the rate written.
    ///
    /// Never panics: a failed read reuses the last good sample, a failed write is counted, a
    /// non-finite state (a parameter pushed the model out of its domain) resets the node to
    /// its initial state and writes 0 instead.
    #[inline(never)]
    pub fn tick(&mut self) -> f32 {
        match self.input.read() {
            Ok(v) if v.is_finite() => self.last_sample = v,
            _ => self.stats.input_errors = self.stats.input_errors.wrapping_add(1),
        }
        let mut r = self.rt.tick(self.last_sample);
        if !self.rt.is_finite() {
            self.rt.reset();
            self.stats.resets = self.stats.resets.wrapping_add(1);
            r = 0.0;
        }
        if self.output.write(r).is_err() {
            self.stats.output_errors = self.stats.output_errors.wrapping_add(1);
        }
        self.stats.ticks = self.stats.ticks.wrapping_add(1);
        r
    }

    /// Runs `n` ticks at a fixed `period` (clock counts), the first one period from now. Before
    /// each tick the loop waits for its deadline; a tick that starts after its deadline is an
    /// overrun, and the schedule restarts from that moment (no burst of catch-up ticks). `each`
    /// runs after every tick body (a board logs or digests there); it is not part of
    /// [`Stats::max_tick`] but its time counts toward the period.
    pub fn run<C: Clock>(
        &mut self,
        clock: &mut C,
        period: u32,
        n: u32,
        mut each: impl FnMut(&mut Self),
    ) {
        let mut deadline = clock.now().wrapping_add(period);
        for _ in 0..n {
            let now = clock.now();
            if now.wrapping_sub(deadline) as i32 > 0 {
                self.stats.overruns = self.stats.overruns.wrapping_add(1);
                deadline = now;
            }
            clock.wait_until(deadline);
            let start = clock.now();
            self.tick();
            let spent = clock.now().wrapping_sub(start);
            self.stats.max_tick = self.stats.max_tick.max(spent);
            deadline = deadline.wrapping_add(period);
            each(self);
        }
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The last good input sample.
    pub fn last_sample(&self) -> f32 {
        self.last_sample
    }
}

/// The golden scenarios' scripted input as an [`InputSource`]: sample `k` is
/// `gain * scripted_input(k)`.
#[derive(Clone, Copy, Debug)]
pub struct ScriptedInput {
    /// Factor on the script.
    pub gain: f32,
    k: u32,
}

impl ScriptedInput {
    /// The script from tick 0.
    pub fn new(gain: f32) -> Self {
        Self { gain, k: 0 }
    }
}

impl InputSource for ScriptedInput {
    type Error = core::convert::Infallible;
    fn read(&mut self) -> Result<f32, Self::Error> {
        let v = self.gain * nmm_core::realtime::scripted_input(self.k);
        self.k = self.k.wrapping_add(1);
        Ok(v)
    }
}
