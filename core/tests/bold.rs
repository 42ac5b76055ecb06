//! Balloon-Windkessel BOLD: presets, rest, the haemodynamic response, Heun convergence, the TR
//! monitor and f32/f64 agreement.

use nmm_core::ParamError;
use nmm_core::bold::{BoldError, BoldMonitor, BoldParams, BoldPreset, UnknownPreset};
use nmm_core::real::Real;

/// BOLD after `n_total` Heun steps of `dt` seconds from rest, input `z = 1` during the first
/// `n_on` steps and 0 afterwards; returns the BOLD after every step (index k: t = (k+1) dt).
fn step_response<T: Real>(p: &BoldParams<T>, dt: f64, n_on: usize, n_total: usize) -> Vec<T> {
    let mut x = BoldParams::<T>::REST;
    let dt = T::from_f64(dt);
    (0..n_total)
        .map(|k| {
            let z = if k < n_on { T::ONE } else { T::ZERO };
            x = p.step(&x, z, dt);
            p.bold(&x)
        })
        .collect()
}

/// Peak (time, value) and following trough (time, value) of a response sampled every `dt`.
fn peak_and_trough(b: &[f64], dt: f64) -> ((f64, f64), (f64, f64)) {
    let argmax = (0..b.len()).max_by(|&i, &j| b[i].total_cmp(&b[j])).unwrap();
    let argmin = (argmax..b.len())
        .min_by(|&i, &j| b[i].total_cmp(&b[j]))
        .unwrap();
    let t = |k: usize| (k + 1) as f64 * dt;
    ((t(argmax), b[argmax]), (t(argmin), b[argmin]))
}

#[test]
fn preset_names_round_trip() {
    assert_eq!(BoldPreset::ALL[0], BoldPreset::default());
    for p in BoldPreset::ALL {
        assert_eq!(p.name().parse::<BoldPreset>(), Ok(p));
        assert_eq!(p.to_string(), p.name());
    }
    let names: Vec<_> = BoldPreset::ALL.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["stephan2007", "friston2000", "vbjax"]);
    assert_eq!("Stephan2007".parse::<BoldPreset>(), Err(UnknownPreset));
    assert_eq!("".parse::<BoldPreset>(), Err(UnknownPreset));
}

/// Every preset value recomputed here from the formulas of REFERENCE.md section 6. Both sides
/// evaluate the same f64 expressions, so equality is exact; `assert_close` with 1 ulp allows
/// for an algebraically equal but differently ordered product.
#[test]
fn preset_values_match_reference() {
    fn assert_close(name: &str, got: f64, want: f64) {
        assert!(
            (got - want).abs() <= f64::EPSILON * want.abs(),
            "{name}: got {got}, want {want}"
        );
    }
    let (te, eps, nu_0, r_0, e0) = (0.04, 0.5, 40.3, 25.0, 0.4);
    let stephan = |tau_s: f64, tau_f: f64| {
        [
            tau_s,
            tau_f,
            0.98,
            0.32,
            e0,
            4.0,
            4.3 * nu_0 * e0 * te,
            eps * r_0 * e0 * te,
            1.0 - eps,
        ]
    };
    let rho = 0.34;
    let friston = [
        1.0 / 0.65,
        1.0 / 0.41,
        0.98,
        0.32,
        rho,
        0.02,
        7.0 * rho,
        2.0,
        2.0 * rho - 0.2,
    ];
    let names = [
        "tau_s", "tau_f", "tau_0", "alpha", "E_0", "V_0", "k1", "k2", "k3",
    ];
    for (preset, want) in [
        (BoldPreset::Stephan2007, stephan(1.54, 1.44)),
        (BoldPreset::Friston2000, friston),
        (BoldPreset::Vbjax, stephan(0.65, 0.41)),
    ] {
        let p = BoldParams::<f64>::preset(preset);
        for (name, w) in names.iter().zip(want) {
            assert_close(name, p.get(name).unwrap(), w);
        }
        assert!(p.validate().is_ok(), "{preset}");
    }
    // Spot values: k1 = 4.3 * 40.3 * 0.4 * 0.04 = 2.77264, k2 = 0.2, friston k1 = 2.38.
    let s = BoldParams::<f64>::preset(BoldPreset::Stephan2007);
    assert_close("k1", s.k1, 2.77264);
    assert_close("k2", s.k2, 0.2);
    assert_close(
        "k1",
        BoldParams::<f64>::preset(BoldPreset::Friston2000).k1,
        2.38,
    );
    assert_eq!(BoldParams::<f64>::default(), s);
    // The table lists every field, in order, with the names above.
    let spec_names: Vec<_> = BoldParams::<f64>::SPECS.iter().map(|s| s.name).collect();
    assert_eq!(spec_names, names);
}

#[test]
fn set_get_and_validate() {
    let mut p = BoldParams::<f64>::default();
    p.set("V_0", 0.02).unwrap();
    p.set("k3", -0.1).unwrap(); // the k's and V_0 may take any finite value
    assert_eq!((p.v_0, p.get("k3")), (0.02, Some(-0.1)));
    assert_eq!(p.set("kappa", 1.0), Err(ParamError::Unknown));
    assert_eq!(p.get("kappa"), None);
    assert!(matches!(
        p.set("tau_0", 0.0),
        Err(ParamError::OutOfRange { name: "tau_0", .. })
    ));
    assert!(matches!(
        p.set("E_0", 1.0),
        Err(ParamError::OutOfRange { name: "E_0", .. })
    ));
    assert!(matches!(
        p.set("E_0", 0.0),
        Err(ParamError::OutOfRange { name: "E_0", .. })
    ));
    assert!(matches!(
        p.set("k1", f64::NAN),
        Err(ParamError::NotFinite { name: "k1" })
    ));
    assert!(p.validate().is_ok());
    for bad in [
        BoldParams { tau_s: -1.0, ..p },
        BoldParams { alpha: 0.0, ..p },
        BoldParams { e_0: 1.5, ..p },
        BoldParams {
            k2: f64::INFINITY,
            ..p
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}

/// At rest every derivative vanishes: ds, df, dv exactly; dq up to the rounding of
/// `1 - exp(ln(1 - E_0))` against `E_0`. For the presets' `E_0` that is one ulp of 1, so
/// <= 2.3e-16 / tau_0 in f64, 1.2e-7 / tau_0 in f32, which this test checks (the f64
/// exponential's bound, 2 ulp, would allow twice that for another `E_0`). The BOLD signal at
/// rest is exactly 0 (every bracket is 1 - 1).
#[test]
fn rest_is_a_fixed_point_for_every_preset() {
    for preset in BoldPreset::ALL {
        let p = BoldParams::<f64>::preset(preset);
        let d = p.deriv(&BoldParams::REST, 0.0);
        assert_eq!(&d[..3], &[0.0; 3], "{preset}");
        assert!(d[3].abs() <= 1e-15, "{preset}: dq/dt = {}", d[3]);
        assert_eq!(p.bold(&BoldParams::REST), 0.0, "{preset}");
        let pf = BoldParams::<f32>::preset(preset);
        let d = pf.deriv(&BoldParams::REST, 0.0);
        assert_eq!(&d[..3], &[0.0; 3], "{preset}");
        assert!(
            d[3].abs() <= 2.0 * f32::EPSILON,
            "{preset}: dq/dt = {}",
            d[3]
        );
        assert_eq!(pf.bold(&BoldParams::REST), 0.0, "{preset}");
    }
}

/// A 1 s pulse of unit input gives the canonical haemodynamic response: a positive peak some
/// seconds after onset, then an undershoot below baseline. Measured at dt = 1 ms (times are
/// resolved to 1 ms, far finer than the bounds): stephan2007 peaks at 3.19 s (2.20 %) and
/// undershoots to -0.67 % at 7.87 s; friston2000 peaks at 3.38 s (0.0252, i.e. 2.5 %) and
/// undershoots to -0.0056 at 9.58 s; vbjax, with its shorter time constants, peaks at 2.44 s
/// (0.93 %) and undershoots to -0.052 % at 5.42 s. All three peak within 2-10 s.
#[test]
fn pulse_response_peaks_then_undershoots() {
    let dt = 1e-3;
    for preset in BoldPreset::ALL {
        let p = BoldParams::<f64>::preset(preset);
        let b = step_response(&p, dt, 1000, 30_000);
        let ((t_peak, peak), (t_min, min)) = peak_and_trough(&b, dt);
        eprintln!("{preset}: peak {peak:.6} at {t_peak:.3} s, trough {min:.6} at {t_min:.3} s");
        assert!(peak > 0.0, "{preset}");
        assert!(min < 0.0 && t_min > t_peak, "{preset}: no undershoot");
        if preset != BoldPreset::Vbjax {
            assert!(
                (2.0..=10.0).contains(&t_peak),
                "{preset}: peak at {t_peak} s"
            );
        }
        // Back near baseline after 30 s: the slowest time constants are a few seconds.
        assert!(b.last().unwrap().abs() < 0.05 * peak, "{preset}");
    }
}

/// Heun is second order: with the input switched on step boundaries (so it is exactly
/// piecewise constant for every dt), halving dt divides the BOLD error by about 4. The error at
/// dt is estimated by the difference to dt/2 (max over samples at t = 1, 2, .., 20 s); the ratio
/// of successive differences tends to 2^2 = 4 as dt -> 0. Measured for dt = 0.1, 0.05, 0.025,
/// 0.0125 s: differences 3.9e-3, 9.5e-4, 2.3e-4 (stephan2007, percent) with ratios 4.16 and
/// 4.08; 2.3e-5, 5.5e-6, 1.4e-6 (friston2000) with ratios 4.19 and 4.10. The band [3.6, 4.4]
/// rejects first order (2) and third order (8) alike.
#[test]
fn heun_converges_at_second_order() {
    for preset in [BoldPreset::Stephan2007, BoldPreset::Friston2000] {
        let p = BoldParams::<f64>::preset(preset);
        let samples = |dt: f64| -> Vec<f64> {
            let per_s = (1.0 / dt).round() as usize;
            let b = step_response(&p, dt, per_s, 20 * per_s);
            (1..=20).map(|s| b[s * per_s - 1]).collect()
        };
        let runs: Vec<Vec<f64>> = [0.1, 0.05, 0.025, 0.0125]
            .iter()
            .map(|&dt| samples(dt))
            .collect();
        let diff = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max)
        };
        let e: Vec<f64> = runs.windows(2).map(|w| diff(&w[0], &w[1])).collect();
        let ratios = [e[0] / e[1], e[1] / e[2]];
        eprintln!(
            "{preset}: differences {:.2e} {:.2e} {:.2e}, ratios {ratios:.3?}",
            e[0], e[1], e[2]
        );
        for r in ratios {
            assert!((3.6..=4.4).contains(&r), "{preset}: ratio {r}");
        }
    }
}

/// The monitor does exactly what a loop over `BoldParams::step` does (same operations in the
/// same order; it steps eight regions at a time in vector lanes and the rest one by one), so
/// its samples equal the direct integration bit for bit: 19 regions (two groups of eight and
/// three alone), in f64 and f32.
#[test]
fn monitor_matches_direct_integration() {
    monitor_matches::<f64>();
    monitor_matches::<f32>();
}

fn monitor_matches<T: Real>() {
    const N: usize = 19;
    let p = BoldParams::<T>::preset(BoldPreset::Friston2000);
    let mut buf = [[T::ZERO; 4]; N];
    let mut mon = BoldMonitor::new(p, &mut buf, 0.01, 0.72).unwrap();
    let dt = T::from_f64(0.01);
    assert_eq!(mon.steps_per_tr(), 72);
    let mut direct = [BoldParams::<T>::REST; N];
    let input =
        |k: usize, i: usize| T::from_f64(1.0 + (0.3 * (i + 1) as f64 * k as f64 * 0.01).sin());
    let mut y = [T::ZERO; N];
    let mut n_samples = 0;
    for k in 0..72 * 40 {
        let z: [T; N] = core::array::from_fn(|i| input(k, i));
        for (x, &zi) in direct.iter_mut().zip(&z) {
            *x = p.step(x, zi, dt);
        }
        let sampled = mon.step(&z, &mut y);
        assert_eq!(sampled, (k + 1) % 72 == 0, "step {k}");
        if sampled {
            n_samples += 1;
            let want: Vec<T> = direct.iter().map(|x| p.bold(x)).collect();
            assert_eq!(y.as_slice(), want.as_slice(), "sample {n_samples}");
        }
    }
    assert_eq!(n_samples, 40);
    assert_eq!(mon.state(), &direct);
    assert!(y.iter().all(|&b| b > T::ZERO)); // sustained positive input: positive BOLD
}

#[test]
fn monitor_rejects_bad_step_and_tr() {
    let p = BoldParams::<f64>::default();
    let mut buf = [[0.0; 4]; 2];
    for (dt, tr, want) in [
        (0.0, 1.0, BoldError::BadStep),
        (-0.1, 1.0, BoldError::BadStep),
        (f64::NAN, 1.0, BoldError::BadStep),
        (f64::INFINITY, 1.0, BoldError::BadStep),
        (0.1, 0.05, BoldError::TrShorterThanStep),
        (0.1, f64::NAN, BoldError::TrShorterThanStep),
        (0.1, f64::INFINITY, BoldError::TrShorterThanStep),
        (0.1, 2.05, BoldError::TrNotMultipleOfStep),
        (0.3, 1.0, BoldError::TrNotMultipleOfStep),
        (0.1, 2.0 * (1.0 + 1e-8), BoldError::TrNotMultipleOfStep),
    ] {
        let got = BoldMonitor::new(p, &mut buf, dt, tr).err();
        assert_eq!(got, Some(want), "dt {dt}, tr {tr}");
    }
    // Whole multiples up to rounding (0.72 / 0.01 = 71.99999999999999) are accepted.
    for (dt, tr, n) in [
        (0.1, 0.1, 1),
        (0.1, 2.0, 20),
        (0.01, 0.72, 72),
        (1e-4, 2.0, 20_000),
    ] {
        let mon = BoldMonitor::new(p, &mut buf, dt, tr).unwrap();
        assert_eq!(mon.steps_per_tr(), n);
    }
    let bad = BoldParams { e_0: 1.0, ..p };
    assert!(matches!(
        BoldMonitor::new(bad, &mut buf, 0.1, 1.0),
        Err(BoldError::Param(ParamError::OutOfRange { name: "E_0", .. }))
    ));
    assert!(
        BoldError::TrNotMultipleOfStep
            .to_string()
            .contains("whole multiple")
    );
}

#[test]
#[should_panic(expected = "BoldMonitor::step: z and out must have one element per region")]
fn monitor_panics_on_short_input() {
    let mut buf = [[0.0_f64; 4]; 2];
    let mut mon = BoldMonitor::new(BoldParams::default(), &mut buf, 0.1, 1.0).unwrap();
    mon.step(&[1.0], &mut [0.0; 2]);
}

#[test]
#[should_panic(expected = "BoldMonitor::step: z and out must have one element per region")]
fn monitor_panics_on_long_output() {
    let mut buf = [[0.0_f64; 4]; 2];
    let mut mon = BoldMonitor::new(BoldParams::default(), &mut buf, 0.1, 1.0).unwrap();
    mon.step(&[1.0; 2], &mut [0.0; 3]);
}

/// f32 and f64 integrate the same response to within f32 rounding. Each step rounds states of
/// order 1 to about eps_f32 = 1.2e-7; the dynamics are contracting with time constants of
/// ~1 s, so a rounding error persists for ~10^3 steps at dt = 1 ms, and even if every
/// rounding in that time went the same way the states would be off by 10^3 eps_f32. The BOLD
/// signal multiplies state errors by at most its gain |V_0| (|k1| + |k2| + |k3|), hence the
/// bound 10^3 eps_f32 |V_0| (|k1| + |k2| + |k3|) (1.7e-3 for stephan2007 and vbjax, 1.2e-5 for
/// friston2000). Measured max |b32 - b64|: 1.2e-4, 4.0e-7 and 3.3e-4 (5.3e-5, 1.6e-5 and
/// 3.5e-4 of the peak), 5 to 30 times below the bound.
#[test]
fn f32_agrees_with_f64() {
    for preset in BoldPreset::ALL {
        let b64 = step_response(&BoldParams::<f64>::preset(preset), 1e-3, 1000, 20_000);
        let b32 = step_response(&BoldParams::<f32>::preset(preset), 1e-3, 1000, 20_000);
        let p = BoldParams::<f64>::preset(preset);
        let gain = p.v_0.abs() * (p.k1.abs() + p.k2.abs() + p.k3.abs());
        let bound = 1e3 * f32::EPSILON as f64 * gain;
        let peak = b64.iter().fold(0.0, |m: f64, &b| m.max(b));
        let err = b64
            .iter()
            .zip(&b32)
            .map(|(&a, &b)| (a - b as f64).abs())
            .fold(0.0, f64::max);
        eprintln!(
            "{preset}: max |b32 - b64| = {err:.2e} ({:.2e} of the peak), bound {bound:.2e}",
            err / peak
        );
        assert!(err <= bound, "{preset}: {err} > {bound}");
    }
}

/// The floor on f and v keeps the derivative finite however far an input pushes them.
#[test]
fn floor_keeps_extreme_states_finite() {
    let p = BoldParams::<f64>::default();
    for x in [
        [0.0, 0.0, 0.0, 1.0],
        [-1.0, -0.5, -0.1, 2.0],
        [5.0, 1e-9, 1e-9, 0.0],
    ] {
        let d = p.deriv(&x, 0.0);
        assert!(d.iter().all(|v| v.is_finite()), "{x:?}: {d:?}");
        assert!(p.bold(&x).is_finite(), "{x:?}");
    }
}
