//! Models: derivatives against hand-written formulas, parameter tables, and the accuracy each
//! model keeps in f32 (and under the `fast-math` feature) against f64.

use nmm_core::integrate::OdeMethod;
use nmm_core::models::{ChenCampbell, Model, Mpr, ParamError, Rww, RwwGriffiths, rww::transfer};
use std::f64::consts::PI;

#[test]
fn mpr_derivative_matches_reference_formula() {
    let m = Mpr {
        tau: 2.0,
        delta: 0.7,
        eta: -3.0,
        j: 11.0,
    };
    let (r, v, i) = (0.31, -0.8, 1.5);
    let d = m.deriv(&[r, v], i);
    let tau = 2.0;
    let dr = (0.7 / (PI * tau) + 2.0 * r * v) / tau;
    let dv = (v * v - 3.0 + 11.0 * tau * r - (PI * tau * r).powi(2) + i) / tau;
    assert!((d[0] - dr).abs() < 1e-14 && (d[1] - dv).abs() < 1e-14);
}

#[test]
fn cc_derivative_matches_reference_formula() {
    let m = ChenCampbell::<f64>::default();
    let x = [0.05, -0.3, 0.01, 0.2];
    let i = 0.1;
    let d = m.deriv(&x, i);
    let [r, v, w, s] = x;
    let e = [
        0.02 / PI + 2.0 * r * v - r * (1.2308 * s + 0.6215),
        v * v - 0.6215 * v - w + 0.12 + i + 1.2308 * s * (1.0 - v) - PI * PI * r * r,
        0.0077 * (-0.0062 * v - w) + 0.0189 * r,
        -s / 2.6 + 1.2308 * r,
    ];
    for k in 0..4 {
        assert!(
            (d[k] - e[k]).abs() < 1e-14,
            "component {k}: {} vs {}",
            d[k],
            e[k]
        );
    }
}

#[test]
fn rww_transfer_is_smooth_through_its_removable_singularity() {
    let (a, b, d): (f64, f64, f64) = (310.0, 125.0, 0.16);
    let x0 = b / a;
    // Exact limit 1/d at the singularity; on either side of the series switch (|d y| = 1e-4)
    // the two branches agree to the series' truncation error (~(d y)^4/720/d ~ 1e-16) plus the
    // cancellation error of the direct form (~eps/(d y) ~ 2e-12).
    assert!((transfer(a, b, d, x0) - 1.0 / d).abs() < 1e-12);
    for dy in [0.99e-4, 1.01e-4, -0.99e-4, -1.01e-4] {
        let x = x0 + dy / (d * a);
        let y: f64 = a * x - b;
        let direct = y / (1.0 - (-d * y).exp());
        assert!((transfer(a, b, d, x) - direct).abs() < 1e-9, "dy {dy}");
    }
    // Far from threshold: H ~ y for large y, ~0 for very negative y.
    assert!((transfer(a, b, d, 1.0) - 185.0).abs() < 1e-6);
    assert!(transfer(a, b, d, 0.0) < 1e-6);
}

#[test]
fn griffiths_form_with_deco_gains_equals_deco_when_currents_are_small() {
    // With tanh(x) ~ x for small x the Griffiths form reduces to Deco's with g_EE = w_p J_N,
    // g_EI = J_N, g_IE = J_i (here only the structure is compared at a point where both
    // currents are positive: the difference is the tanh squash, x - tanh(x) ~ x^3/3).
    let d = Rww::<f64>::default();
    let g = RwwGriffiths::<f64>::default();
    assert!((g.g_ee - d.w_p * d.j_n).abs() < 1e-15);
    assert!((g.g_ei - d.j_n).abs() < 1e-15 && (g.g_ie - d.j_i).abs() < 1e-15);
    let x = [0.2, 0.1];
    let a = d.deriv(&x, 0.0);
    let b = g.deriv(&x, 0.0);
    assert!(
        a.iter()
            .zip(&b)
            .all(|(p, q)| p.is_finite() && q.is_finite())
    );
    assert_ne!(a, b); // the squash matters at these currents (x_E ~ 0.42)
}

#[test]
fn parameter_tables_defaults_and_errors() {
    fn check<T: Model<f64, N> + Default, const N: usize>() {
        let m = T::default();
        m.validate().unwrap();
        for p in T::PARAMS {
            assert_eq!(m.get(p.name), Some(p.default), "{}: {}", T::NAME, p.name);
            assert!(!p.unit.is_empty() && !p.doc.is_empty());
        }
        let mut m = T::default();
        assert_eq!(m.set("no_such_parameter", 1.0), Err(ParamError::Unknown));
        assert!(matches!(
            m.set(T::PARAMS[0].name, f64::NAN),
            Err(ParamError::NotFinite { .. })
        ));
    }
    check::<Mpr<f64>, 2>();
    check::<ChenCampbell<f64>, 4>();
    check::<Rww<f64>, 2>();
    check::<RwwGriffiths<f64>, 2>();
    let mut m = Mpr::<f64>::default();
    let e = m.set("tau", 0.0).unwrap_err();
    assert!(
        e.to_string().contains("tau") && e.to_string().contains("(0, inf]"),
        "{e}"
    );
    m.set("J", 20.0).unwrap();
    assert_eq!(m.j, 20.0);
}

/// Maximum relative deviation of an f32 trajectory from the f64 one over `steps` RK4 steps.
fn f32_vs_f64<M32, M64, const N: usize>(
    m32: &M32,
    m64: &M64,
    input: f64,
    dt: f64,
    steps: usize,
) -> f64
where
    M32: Model<f32, N>,
    M64: Model<f64, N>,
{
    let mut a = m64.initial_state();
    let mut b: [f32; N] = std::array::from_fn(|i| a[i] as f32);
    let mut worst: f64 = 0.0;
    let scale: Vec<f64> = (0..N).map(|_| 0.0).collect();
    let mut scale = scale;
    for k in 0..steps {
        a = OdeMethod::Rk4.step(
            &mut |_t, x: &[f64; N]| m64.deriv(x, input),
            k as f64 * dt,
            &a,
            dt,
        );
        b = OdeMethod::Rk4.step(
            &mut |_t, x: &[f32; N]| m32.deriv(x, input as f32),
            (k as f64 * dt) as f32,
            &b,
            dt as f32,
        );
        for i in 0..N {
            scale[i] = scale[i].max(a[i].abs());
            worst = worst.max((a[i] - b[i] as f64).abs() / scale[i].max(1e-3));
        }
    }
    worst
}

/// f32 tracks f64 on trajectories that converge to a stable state (errors do not grow
/// chaotically there). MPR and Chen-Campbell use only arithmetic, so fast-math does not touch
/// them; RWW uses exp (in H) and its Griffiths form tanh, which fast-math replaces.
#[test]
fn f32_accuracy_per_model() {
    let fast = cfg!(feature = "fast-math");
    // MPR, driven onto its high focus (I = 3) from the low state: 50 time units.
    let e = f32_vs_f64(
        &Mpr::<f32>::default(),
        &Mpr::<f64>::default(),
        3.0,
        0.01,
        5000,
    );
    println!("MPR f32 vs f64 max relative deviation {e:.2e}");
    // f32 rounding (6e-8) amplified through the transient; well below 1e-4.
    assert!(e < 1e-4, "MPR {e}");
    // Chen-Campbell, tonic regime (eta = 0.25), 200 time units.
    let m32 = ChenCampbell::<f32> {
        eta: 0.25,
        ..Default::default()
    };
    let m64 = ChenCampbell::<f64> {
        eta: 0.25,
        ..Default::default()
    };
    let e = f32_vs_f64(&m32, &m64, 0.0, 0.01, 20_000);
    println!("CC f32 vs f64 max relative deviation {e:.2e}");
    assert!(e < 1e-3, "CC {e}");
    // RWW to its fixed point: 2 s at dt = 0.5 ms.
    let e = f32_vs_f64(
        &Rww::<f32>::default(),
        &Rww::<f64>::default(),
        0.0,
        0.5,
        4000,
    );
    println!("RWW f32 vs f64 max relative deviation {e:.2e} (fast-math: {fast})");
    // fast-math: micromath exp has 2.4e-3 relative error, which H passes on near-linearly.
    assert!(e < if fast { 1e-2 } else { 1e-4 }, "RWW {e}");
    let e = f32_vs_f64(
        &RwwGriffiths::<f32>::default(),
        &RwwGriffiths::<f64>::default(),
        0.0,
        0.5,
        4000,
    );
    println!("RWW-Griffiths f32 vs f64 max relative deviation {e:.2e} (fast-math: {fast})");
    assert!(e < if fast { 1e-2 } else { 1e-4 }, "RWW-Griffiths {e}");
}
