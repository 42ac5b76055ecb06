//! The QEMU board: ARM MPS2 AN386 (Cortex-M4F), run by CI.
//!
//! ```text
//! qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic -icount shift=0 \
//!     -semihosting-config enable=on,target=native -kernel nmm-firmware-qemu
//! ```
//!
//! It runs every golden scenario of `nmm_core::realtime::Scenario::ALL` through the real-time
//! loop (scripted input, PWM output, timer 0 as the clock), prints each trajectory digest
//! and whether it equals the host's (computed by build.rs), then the cost of one step of each
//! model in retired instructions, and exits 0 only if every digest matched (and a run at a
//! period shorter than a step counted overruns).
//!
//! With `-icount shift=0` QEMU retires one instruction per virtual nanosecond and the
//! mps2-an386 timers count at 25 MHz, so one count is 40 instructions: costs are
//! averaged over many steps (not cycles: the M4F's pipeline and flash wait states are not
//! modelled; see firmware/README.md for measuring on hardware). The clock is the CMSDK timer 0.
//! (A `wfi` sleep until a SysTick one-shot was tried and dropped: under `-icount` QEMU 7.2
//! woke it after twice the programmed time, which read as overruns.)
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "nmm-firmware-qemu runs on the Cortex-M4F: \
         cargo build -p nmm-firmware --release --target thumbv7em-none-eabihf (firmware/README.md)"
    );
    std::process::exit(2);
}

#[cfg(target_os = "none")]
mod board {
    use core::convert::Infallible;

    use cortex_m_rt::entry;
    use cortex_m_semihosting::{debug, hprintln};
    use embedded_hal::pwm::{ErrorType, SetDutyCycle};
    use nmm_core::mlp::MlpMeanField;
    use nmm_core::realtime::{Digest, GOLDEN_R_MAX, MAX_STATE, Node, Scenario};
    use nmm_firmware::{Clock, PwmOutput, RealTimeLoop, ScriptedInput};

    include!(concat!(env!("OUT_DIR"), "/golden.rs"));

    /// The MLP weights (NMMW file), checked by CRC when parsed at start-up.
    static WEIGHTS: &[u8] = include_bytes!("../../../models/mlp_p06_1.nmmw");

    /// Retired instructions per clock count under `-icount shift=0` (25 MHz clocks).
    const INSTR_PER_COUNT: u32 = 40;
    /// Loop period in clock counts: 300 counts = 12 us of QEMU time = 12,000 instructions
    /// (the noisy MPR tick, with its soft-float f64 normal draws, takes ~8,000).
    const PERIOD: u32 = 300;

    /// CMSDK APB timer 0 of the MPS2 (32-bit down-counter at the 25 MHz system clock).
    const TIMER0_CTRL: *mut u32 = 0x4000_0000 as *mut u32;
    const TIMER0_VALUE: *mut u32 = 0x4000_0004 as *mut u32;
    const TIMER0_RELOAD: *mut u32 = 0x4000_0008 as *mut u32;

    /// Timer 0 as a free-running 32-bit up-counter (wraps after 171 s).
    struct Timer0Clock;

    impl Timer0Clock {
        fn start() -> Self {
            // SAFETY: MMIO writes to timer 0's documented registers (ARM DDI 0479, CMSDK APB
            // timer); nothing else in this program touches the timer.
            unsafe {
                core::ptr::write_volatile(TIMER0_RELOAD, u32::MAX);
                core::ptr::write_volatile(TIMER0_VALUE, u32::MAX);
                core::ptr::write_volatile(TIMER0_CTRL, 1); // enable, system clock, no interrupt
            }
            Self
        }
    }

    impl Clock for Timer0Clock {
        fn now(&mut self) -> u32 {
            // SAFETY: MMIO read of timer 0's current value register.
            u32::MAX - unsafe { core::ptr::read_volatile(TIMER0_VALUE) }
        }

        fn wait_until(&mut self, deadline: u32) {
            // Burn most of the wait in a register-only loop (one timer read per wait instead of
            // thousands: each read of a device register is slow to emulate), then poll.
            loop {
                let remaining = deadline.wrapping_sub(self.now()) as i32;
                if remaining <= 0 {
                    return;
                }
                cortex_m::asm::delay((remaining as u32).saturating_mul(INSTR_PER_COUNT * 3 / 4));
            }
        }
    }

    /// Stack painting: the words below the stack pointer are filled with a pattern at start-up;
    /// the lowest overwritten word at the end gives the peak stack use.
    const PAINT: u32 = 0xa5a5_5a5a;
    const PAINT_BYTES: usize = 64 * 1024;

    unsafe extern "C" {
        /// Top of the stack (cortex-m-rt's linker script: the end of RAM).
        static _stack_start: u32;
    }

    fn stack_top() -> usize {
        // Only the address of the linker symbol is taken (no read).
        core::ptr::addr_of!(_stack_start) as usize
    }

    #[inline(never)]
    fn paint_stack() {
        let sp = cortex_m::register::msp::read() as usize;
        let mut p = stack_top() - PAINT_BYTES;
        // 256 bytes of margin below the current pointer for this function's own frame.
        while p < sp - 256 {
            // SAFETY: RAM below the live stack, above everything else in RAM (4 MiB of RAM,
            // 12 bytes of statics at its start), not in use by any frame.
            unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
            p += 4;
        }
    }

    fn stack_high_water() -> usize {
        let top = stack_top();
        let mut p = top - PAINT_BYTES;
        // SAFETY: reads of the painted RAM region.
        while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
            p += 4;
        }
        top - p
    }

    /// A PWM channel that only remembers its duty (QEMU has no pins to drive).
    struct NullPwm {
        duty: u16,
    }

    impl ErrorType for NullPwm {
        type Error = Infallible;
    }

    impl SetDutyCycle for NullPwm {
        fn max_duty_cycle(&self) -> u16 {
            u16::MAX
        }
        fn set_duty_cycle(&mut self, duty: u16) -> Result<(), Infallible> {
            self.duty = duty;
            Ok(())
        }
    }

    fn node_of(sc: &Scenario, mlp: &MlpMeanField<f32>) -> Node<f32> {
        sc.build(mlp).node
    }

    #[entry]
    fn main() -> ! {
        paint_stack();
        let mut clock = Timer0Clock::start();

        let mlp = match MlpMeanField::<f32>::from_bytes(WEIGHTS) {
            Ok(m) => m,
            Err(_) => fail("embedded MLP weights rejected"),
        };

        let mut all_ok = true;
        for sc in Scenario::ALL {
            let rt = sc.build(&mlp);
            let mut lp = RealTimeLoop::new(
                rt,
                ScriptedInput::new(sc.input_gain),
                PwmOutput::new(NullPwm { duty: 0 }, GOLDEN_R_MAX),
            );
            let mut d = Digest::new();
            lp.run(&mut clock, PERIOD, sc.ticks, |lp| {
                for v in lp.rt.state() {
                    d.f32(*v);
                }
                d.f32(lp.rt.stimulation());
                d.u16(lp.output.last_duty());
            });
            let golden = GOLDEN.iter().find(|g| g.0 == sc.name).map(|g| g.1);
            let ok = golden == Some(d.value());
            all_ok &= ok;
            let s = lp.stats();
            hprintln!(
                "golden {} digest=0x{:016x} host=0x{:016x} match={} ticks={} overruns={} resets={} max_tick_instr={}",
                sc.name,
                d.value(),
                golden.unwrap_or(0),
                ok,
                s.ticks,
                s.overruns,
                s.resets,
                s.max_tick * INSTR_PER_COUNT
            );
        }

        // Overrun detection: the MLP loop at a period shorter than one step must count them.
        {
            let sc = Scenario::ALL[2];
            let mut lp = RealTimeLoop::new(
                sc.build(&mlp),
                ScriptedInput::new(sc.input_gain),
                PwmOutput::new(NullPwm { duty: 0 }, GOLDEN_R_MAX),
            );
            lp.run(&mut clock, 25, 200, |_| {});
            let s = lp.stats();
            hprintln!(
                "overrun-check period_instr={} ticks={} overruns={}",
                25 * INSTR_PER_COUNT,
                s.ticks,
                s.overruns
            );
            all_ok &= s.overruns > 0;
        }

        // Cost of one deterministic step of each model (no controller, no noise), averaged.
        const STEPS: u32 = 2000;
        for sc in [Scenario::ALL[0], Scenario::ALL[1], Scenario::ALL[2]] {
            let node = node_of(&sc, &mlp);
            let mut x = node.initial_state();
            let zero = [0.0f32; MAX_STATE];
            let t0 = clock.now();
            for k in 0..STEPS {
                let input =
                    core::hint::black_box(sc.input_gain * nmm_core::realtime::scripted_input(k));
                x = node.step(core::hint::black_box(&x), input, sc.dt, &zero, &zero);
            }
            let counts = clock.now().wrapping_sub(t0);
            core::hint::black_box(x);
            // Loop overhead (black_box, input) is included: an upper bound on the step.
            let per_step = (counts as u64 * INSTR_PER_COUNT as u64) / STEPS as u64;
            hprintln!(
                "cost {} heun_step_instr={} steps={}",
                node.name(),
                per_step,
                STEPS
            );
        }

        // A discovered closed form (issue 19): MPR plus -1.014 (1-p) J r in dv/dt, the law
        // `nmm discover` finds on QIF networks (models/discover_mpr), at p = 0.6; and, as an
        // upper bound for larger corrections, MPR plus 24 library terms (the size of that
        // file's whole model with its small r-equation terms). The cost depends on the number
        // of terms, not on their values.
        {
            use nmm_core::models::Mpr;
            use nmm_core::models::corrected::{Corrected, term_count, term_index};
            let base = Mpr::<f32>::default();
            let mut one = match Corrected::new(base, 0.6f32, 1e4f32) {
                Ok(c) => c,
                Err(_) => fail("corrected model rejected"),
            };
            let k = term_index::<f32, Mpr<f32>, 2>("(1-p)", "J r").unwrap_or(0);
            let _ = one.push(1, k, -1.0142);
            let mut many = one;
            for t in 0..23 {
                let _ = many.push(t % 2, t % term_count::<f32, Mpr<f32>, 2>(), 1e-3);
            }
            // Chen-Campbell plus the law found on Izhikevich networks (models/discover_cc):
            // -1.2024 (1-p) r in ds/dt.
            use nmm_core::models::ChenCampbell;
            let mut cc_one = match Corrected::new(ChenCampbell::<f32>::default(), 0.4f32, 1e4f32) {
                Ok(c) => c,
                Err(_) => fail("corrected model rejected"),
            };
            let k = term_index::<f32, ChenCampbell<f32>, 4>("(1-p)", "r").unwrap_or(0);
            let _ = cc_one.push(3, k, -1.2024);
            // Each at its base's scenario (step and input), as the plain models above.
            for (label, node, sc) in [
                ("mpr-corrected-1", Node::MprCorrected(one), Scenario::ALL[0]),
                (
                    "mpr-corrected-24",
                    Node::MprCorrected(many),
                    Scenario::ALL[0],
                ),
                (
                    "cc-corrected-1",
                    Node::CcCorrected(cc_one),
                    Scenario::ALL[1],
                ),
            ] {
                let (dt, gain) = (sc.dt, sc.input_gain);
                let mut x = node.initial_state();
                let zero = [0.0f32; MAX_STATE];
                let t0 = clock.now();
                for k in 0..STEPS {
                    let input = core::hint::black_box(gain * nmm_core::realtime::scripted_input(k));
                    x = node.step(core::hint::black_box(&x), input, dt, &zero, &zero);
                }
                let counts = clock.now().wrapping_sub(t0);
                core::hint::black_box(x);
                let per_step = (counts as u64 * INSTR_PER_COUNT as u64) / STEPS as u64;
                hprintln!(
                    "cost {} heun_step_instr={} steps={}",
                    label,
                    per_step,
                    STEPS
                );
            }
        }

        hprintln!(
            "memory stack_peak_bytes={} (whole program, semihosting output included)",
            stack_high_water()
        );
        if all_ok {
            hprintln!("firmware: all golden digests match the host");
            debug::exit(debug::EXIT_SUCCESS);
        } else {
            hprintln!("firmware: MISMATCH");
            debug::exit(debug::EXIT_FAILURE);
        }
        loop {
            cortex_m::asm::wfi();
        }
    }

    fn fail(msg: &str) -> ! {
        hprintln!("firmware: {}", msg);
        debug::exit(debug::EXIT_FAILURE);
        loop {
            cortex_m::asm::wfi();
        }
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        hprintln!("firmware panic: {}", info);
        debug::exit(debug::EXIT_FAILURE);
        loop {
            cortex_m::asm::wfi();
        }
    }
}
