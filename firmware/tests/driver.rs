//! Host tests of the firmware's drivers and loop with embedded-hal-mock: the bytes on the SPI
//! bus, the duty written to the PWM, error counting, divergence resets, overrun detection and
//! the digest of the loop against nmm-core's golden scenario.

use std::cell::Cell;
use std::rc::Rc;

use embedded_hal_mock::eh1::MockError;
use embedded_hal_mock::eh1::pwm::{Mock as PwmMock, Transaction as PwmT};
use embedded_hal_mock::eh1::spi::{Mock as SpiMock, Transaction as SpiT};
use nmm_core::mlp::{Mlp, MlpMeanField, Normalisation};
use nmm_core::models::Mpr;
use nmm_core::realtime::{Digest, GOLDEN_R_MAX, Node, RealTime, Scenario};
use nmm_firmware::{
    Clock, InputSource, Mcp3201, Mcp4921, OutputSink, PwmOutput, RealTimeLoop, Scale, ScriptedInput,
};

#[test]
fn mcp3201_decodes_the_datasheet_frame() {
    // Code 0xABC = 1010_1011_1100: the first byte carries 2 sample clocks, the null bit and
    // B11..B7 (10101), the second B6..B0 (0111100) then a repeated B1 (0, LSB-first start).
    let frame = vec![0b0001_0101, 0b0111_1000];
    let expect = [
        SpiT::transaction_start(),
        SpiT::read_vec(frame),
        SpiT::transaction_end(),
        SpiT::transaction_start(),
        SpiT::read_vec(vec![0b1111_1111, 0b1111_1111]), // junk high bits are masked off
        SpiT::transaction_end(),
    ];
    let spi = SpiMock::new(&expect);
    let mut adc = Mcp3201::new(
        spi,
        Scale {
            offset: -5.0,
            scale: 10.0 / 4095.0,
        },
    );
    let v = adc.read().unwrap();
    // 1e-6: a few f32 roundings of values of order 5 (ulp 4.8e-7) in either expression.
    assert!(
        (v - (-5.0 + 10.0 * 0xABC as f32 / 4095.0)).abs() < 1e-6,
        "{v}"
    );
    assert_eq!(adc.read_code().unwrap(), 4095);
    adc.release().done();
}

#[test]
fn mcp4921_writes_config_and_code() {
    let expect = [
        SpiT::transaction_start(),
        SpiT::write_vec(vec![0x30, 0x00]), // r = 0 -> code 0
        SpiT::transaction_end(),
        SpiT::transaction_start(),
        SpiT::write_vec(vec![0x37, 0xFF]), // r = r_max / 2 -> code 2047
        SpiT::transaction_end(),
        SpiT::transaction_start(),
        SpiT::write_vec(vec![0x3F, 0xFF]), // above r_max -> full scale 4095
        SpiT::transaction_end(),
        SpiT::transaction_start(),
        SpiT::write_vec(vec![0x30, 0x00]), // NaN -> 0
        SpiT::transaction_end(),
    ];
    let mut dac = Mcp4921::new(SpiMock::new(&expect), 2.0);
    dac.write(0.0).unwrap();
    dac.write(1.0).unwrap();
    dac.write(7.0).unwrap();
    dac.write(f32::NAN).unwrap();
    dac.release().done();
}

#[test]
fn pwm_output_scales_to_the_channels_max_duty() {
    let expect = [
        PwmT::max_duty_cycle(1000),
        PwmT::set_duty_cycle(250),
        PwmT::max_duty_cycle(1000),
        PwmT::set_duty_cycle(1000),
        PwmT::max_duty_cycle(1000),
        PwmT::set_duty_cycle(0).with_error(MockError::Io(std::io::ErrorKind::NotConnected)),
    ];
    let mut out = PwmOutput::new(PwmMock::new(&expect), 4.0);
    out.write(1.0).unwrap();
    assert_eq!(out.last_duty(), 250);
    out.write(9.0).unwrap();
    assert!(out.write(-1.0).is_err());
    out.release().done();
}

/// An input that fails on chosen reads.
struct Flaky {
    k: u32,
    fail_at: Vec<u32>,
    value: f32,
}

impl InputSource for Flaky {
    type Error = ();
    fn read(&mut self) -> Result<f32, ()> {
        self.k += 1;
        if self.fail_at.contains(&self.k) {
            Err(())
        } else {
            Ok(self.value * self.k as f32)
        }
    }
}

/// An output that records, and fails when asked.
#[derive(Default)]
struct Recorder {
    rates: Vec<f32>,
    fail: bool,
}

impl OutputSink for Recorder {
    type Error = ();
    fn write(&mut self, rate: f32) -> Result<(), ()> {
        self.rates.push(rate);
        if self.fail { Err(()) } else { Ok(()) }
    }
}

#[test]
fn failed_reads_hold_the_last_sample_and_are_counted() {
    let rt = RealTime::new(Node::Mpr(Mpr::default()), 0.01);
    let input = Flaky {
        k: 0,
        fail_at: vec![3, 4],
        value: 0.1,
    };
    let mut lp = RealTimeLoop::new(rt, input, Recorder::default());
    lp.tick();
    lp.tick();
    // 1e-7: the sample is 0.1 * k in f32 (one rounding, ulp ~1.5e-8 near 0.2).
    assert!((lp.last_sample() - 0.2).abs() < 1e-7);
    lp.tick();
    lp.tick();
    assert!(
        (lp.last_sample() - 0.2).abs() < 1e-7,
        "held through the failures"
    );
    lp.tick();
    assert!((lp.last_sample() - 0.5).abs() < 1e-7);
    assert_eq!(lp.stats().input_errors, 2);
    assert_eq!(lp.stats().ticks, 5);
    lp.output.fail = true;
    lp.tick();
    assert_eq!(lp.stats().output_errors, 1);
    assert_eq!(lp.output.rates.len(), 6);
}

#[test]
fn a_diverging_node_is_reset_and_outputs_zero() {
    // MPR with a huge input blows up in f32 within a few ticks at this dt.
    let rt = RealTime::new(Node::Mpr(Mpr::default()), 0.5);
    let input = Flaky {
        k: 0,
        fail_at: vec![],
        value: 1e6,
    };
    let mut lp = RealTimeLoop::new(rt, input, Recorder::default());
    for _ in 0..50 {
        lp.tick();
    }
    assert!(lp.stats().resets > 0);
    assert!(lp.rt.is_finite());
    assert!(lp.output.rates.iter().all(|r| r.is_finite()));
    assert!(lp.output.rates.contains(&0.0));
}

/// A clock that the test moves: each `now()` advances it by `per_read`, and the tick body can
/// be made slow by advancing it from the loop's `each` callback.
struct FakeClock {
    t: Rc<Cell<u32>>,
    per_read: u32,
}

impl Clock for FakeClock {
    fn now(&mut self) -> u32 {
        let v = self.t.get().wrapping_add(self.per_read);
        self.t.set(v);
        v
    }
}

#[test]
fn overruns_are_counted_and_the_schedule_recovers() {
    let t = Rc::new(Cell::new(u32::MAX - 500)); // also crosses the counter's wrap
    let mut clock = FakeClock {
        t: t.clone(),
        per_read: 1,
    };
    let rt = RealTime::new(Node::Mpr(Mpr::default()), 0.01);
    let mut lp = RealTimeLoop::new(rt, ScriptedInput::new(1.0), Recorder::default());
    // Ticks 10..20 take 150 counts (the callback advances the clock) against a period of 100.
    let mut k = 0;
    lp.run(&mut clock, 100, 40, |_| {
        k += 1;
        if (10..20).contains(&k) {
            t.set(t.get().wrapping_add(150));
        }
    });
    let s = lp.stats();
    assert_eq!(s.ticks, 40);
    assert_eq!(s.overruns, 10, "{s:?}");
    // A period that every tick meets: no overruns.
    let mut lp = RealTimeLoop::new(
        RealTime::new(Node::Mpr(Mpr::default()), 0.01),
        ScriptedInput::new(1.0),
        Recorder::default(),
    );
    lp.run(&mut clock, 100, 40, |_| {});
    assert_eq!(lp.stats().overruns, 0);
    assert!(lp.stats().max_tick >= 1 && lp.stats().max_tick < 100);
}

struct NullPwm(u16);
impl embedded_hal::pwm::ErrorType for NullPwm {
    type Error = core::convert::Infallible;
}
impl embedded_hal::pwm::SetDutyCycle for NullPwm {
    fn max_duty_cycle(&self) -> u16 {
        u16::MAX
    }
    fn set_duty_cycle(&mut self, d: u16) -> Result<(), Self::Error> {
        self.0 = d;
        Ok(())
    }
}

#[test]
fn the_loop_reproduces_the_golden_digests() {
    // The firmware's path (ScriptedInput -> loop -> PwmOutput) equals nmm-core's Scenario::run,
    // for every scenario: what the QEMU board compares against build.rs's digests.
    let flat: Vec<f32> = (0..Mlp::<f32>::N_WEIGHTS)
        .map(|k| ((k * 37 % 101) as f32 / 101.0 - 0.5) * 0.8)
        .collect();
    let mlp = MlpMeanField::new(Mlp::from_flat(&flat).unwrap(), Normalisation::identity()).unwrap();
    let t = Rc::new(Cell::new(0));
    let mut clock = FakeClock { t, per_read: 1 };
    for sc in Scenario::ALL {
        let want = sc.run(&mut sc.build(&mlp));
        let mut lp = RealTimeLoop::new(
            sc.build(&mlp),
            ScriptedInput::new(sc.input_gain),
            PwmOutput::new(NullPwm(0), GOLDEN_R_MAX),
        );
        let mut d = Digest::new();
        lp.run(&mut clock, 10, sc.ticks, |lp| {
            for v in lp.rt.state() {
                d.f32(*v);
            }
            d.f32(lp.rt.stimulation());
            d.u16(lp.output.last_duty());
        });
        assert_eq!(d.value(), want.digest, "{}", sc.name);
    }
    // The whole loop state with the largest node (the MLP) fits in 1 KB of stack.
    let size = std::mem::size_of::<RealTimeLoop<ScriptedInput, PwmOutput<NullPwm>>>();
    assert!(size < 1024, "{size} bytes");
}
