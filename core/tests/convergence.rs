//! Measured convergence orders of every stepper, and of the MPR energy drift (REFERENCE 4).
//!
//! Orders are estimated as the least-squares slope of log2(error) against log2(dt) over a
//! sequence of halved steps, and asserted within a band around the theoretical order. The band
//! (±0.25 for ODE orders, [0.8, 1.3] for the Monte-Carlo strong order) leaves room for the
//! pre-asymptotic regime and, for SDEs, for the sampling error of the path average, while still
//! failing if a method dropped an order (e.g. Heun coded as Euler gives 1, not 2).

use nmm_core::integrate::{OdeMethod, SdeMethod};
use nmm_core::models::{Model, Mpr};
use nmm_core::rng::Gaussian;

/// Least-squares slope of log2(err) vs log2(dt).
fn slope(dts: &[f64], errs: &[f64]) -> f64 {
    let xs: Vec<f64> = dts.iter().map(|d| d.log2()).collect();
    let ys: Vec<f64> = errs.iter().map(|e| e.log2()).collect();
    let n = xs.len() as f64;
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    sxy / sxx
}

/// Errors in scientific notation for the test log.
fn sci(v: &[f64]) -> String {
    v.iter()
        .map(|e| format!("{e:.3e}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Integrate from t0 = 0 to t_end with `n` steps.
fn solve<const N: usize>(
    m: OdeMethod,
    f: &mut impl FnMut(f64, &[f64; N]) -> [f64; N],
    x0: [f64; N],
    t_end: f64,
    n: usize,
) -> [f64; N] {
    let dt = t_end / n as f64;
    let mut x = x0;
    for k in 0..n {
        x = m.step(f, k as f64 * dt, &x, dt);
    }
    x
}

/// Non-autonomous scalar ODE x' = -2 t x, x(0) = 1, exact x(t) = exp(-t^2); and the nonlinear
/// pendulum-free oscillator x'' = -x as a 2-vector, exact (cos t, -sin t).
#[test]
fn ode_orders_match_theory() {
    for m in OdeMethod::ALL {
        let p = m.order() as f64;
        // Steps chosen so that the smallest error stays far above f64 rounding (RK4 at
        // dt = 1/320 has error ~1e-11).
        let ns = [20usize, 40, 80, 160, 320];
        let dts: Vec<f64> = ns.iter().map(|&n| 1.0 / n as f64).collect();
        let errs: Vec<f64> = ns
            .iter()
            .map(|&n| {
                let x = solve(m, &mut |t, x: &[f64; 1]| [-2.0 * t * x[0]], [1.0], 1.0, n);
                (x[0] - (-1.0f64).exp()).abs()
            })
            .collect();
        let s = slope(&dts, &errs);
        println!("{m}: x'=-2tx errors {} order {s:.3}", sci(&errs));
        assert!(
            (s - p).abs() < 0.25,
            "{m}: measured order {s}, expected {p}"
        );

        let t_end = 5.0;
        let errs2: Vec<f64> = ns
            .iter()
            .map(|&n| {
                let x = solve(
                    m,
                    &mut |_t, x: &[f64; 2]| [x[1], -x[0]],
                    [1.0, 0.0],
                    t_end,
                    n * 5,
                );
                (x[0] - t_end.cos()).abs().max((x[1] + t_end.sin()).abs())
            })
            .collect();
        let s2 = slope(&dts, &errs2);
        println!("{m}: oscillator errors {} order {s2:.3}", sci(&errs2));
        assert!(
            (s2 - p).abs() < 0.25,
            "{m}: oscillator order {s2}, expected {p}"
        );
    }
}

/// Same in f32: the orders hold until f32 rounding (~1e-7) dominates, so only Euler and Heun
/// on coarse steps are checked.
#[test]
fn ode_orders_in_f32() {
    for m in [OdeMethod::Euler, OdeMethod::Heun] {
        let ns = [10usize, 20, 40, 80];
        let dts: Vec<f64> = ns.iter().map(|&n| 1.0 / n as f64).collect();
        let errs: Vec<f64> = ns
            .iter()
            .map(|&n| {
                let dt = 1.0f32 / n as f32;
                let mut x = [1.0f32];
                for k in 0..n {
                    x = m.step(
                        &mut |t, x: &[f32; 1]| [-2.0 * t * x[0]],
                        k as f32 * dt,
                        &x,
                        dt,
                    );
                }
                (x[0] as f64 - (-1.0f64).exp()).abs()
            })
            .collect();
        let s = slope(&dts, &errs);
        assert!((s - m.order() as f64).abs() < 0.3, "{m} f32 order {s}");
    }
}

/// Ornstein-Uhlenbeck dX = -theta X dt + sigma dW: strong error at T = 1 against a reference
/// solution on a 64x finer grid driven by the same Brownian path (coarse increments are sums of
/// fine ones). For additive noise both Euler-Maruyama and stochastic Heun have strong order 1.
#[test]
fn sde_strong_order_on_ou() {
    let (theta, sigma, x0, t_end) = (1.5, 0.8, 1.0, 1.0);
    let n_fine = 4096usize; // reference grid
    let coarse = [16usize, 32, 64, 128];
    let paths = 400;
    for method in [SdeMethod::EulerMaruyama, SdeMethod::Heun] {
        let mut err = vec![0.0; coarse.len()];
        let mut g = Gaussian::<f64>::new(2024, 0);
        let mut dw = vec![0.0; n_fine];
        for _ in 0..paths {
            let h = t_end / n_fine as f64;
            for w in dw.iter_mut() {
                *w = g.next() * h.sqrt();
            }
            let f = &mut |_t: f64, x: &[f64; 1]| [-theta * x[0]];
            // Reference: stochastic Heun on the fine grid (its error is (64x smaller steps) well
            // below the coarsest errors measured).
            let mut xr = [x0];
            for (k, w) in dw.iter().enumerate() {
                let z = [w / h.sqrt()];
                xr = SdeMethod::Heun.step(f, k as f64 * h, &xr, h, &[sigma], &z);
            }
            for (ci, &n) in coarse.iter().enumerate() {
                let dt = t_end / n as f64;
                let per = n_fine / n;
                let mut x = [x0];
                for k in 0..n {
                    let inc: f64 = dw[k * per..(k + 1) * per].iter().sum();
                    let z = [inc / dt.sqrt()];
                    x = method.step(f, k as f64 * dt, &x, dt, &[sigma], &z);
                }
                err[ci] += (x[0] - xr[0]).abs() / paths as f64;
            }
        }
        let dts: Vec<f64> = coarse.iter().map(|&n| t_end / n as f64).collect();
        let s = slope(&dts, &err);
        println!(
            "{}: OU strong errors {} order {s:.3}",
            method.name(),
            sci(&err)
        );
        assert!(
            (0.8..1.3).contains(&s),
            "{}: strong order {s}",
            method.name()
        );
    }
}

/// With sigma = 0 the SDE steppers reduce to their ODE counterparts exactly.
#[test]
fn sde_steppers_without_noise_are_ode_steppers() {
    let f = &mut |t: f64, x: &[f64; 2]| [x[1] * t, -x[0]];
    let x = [0.3, -0.7];
    let (t, dt) = (0.4, 0.05);
    let z = [1.3, -0.2];
    assert_eq!(
        SdeMethod::EulerMaruyama.step(f, t, &x, dt, &[0.0; 2], &z),
        OdeMethod::Euler.step(f, t, &x, dt)
    );
    assert_eq!(
        SdeMethod::Heun.step(f, t, &x, dt, &[0.0; 2], &z),
        OdeMethod::Heun.step(f, t, &x, dt)
    );
}

/// MPR with Delta = 0 conserves H(r, v); the numerical drift of H over a fixed time shrinks at
/// the integrator's order.
#[test]
fn mpr_energy_drift_shrinks_at_integrator_order() {
    let m = Mpr {
        delta: 0.0,
        eta: -5.0,
        j: 15.0,
        tau: 1.0,
    };
    let input = 3.0; // total drive -2: a centre near r = 1.37 surrounded by closed orbits
    let x0 = [1.0, 0.0];
    let h0 = m.energy(&x0, input);
    for method in [OdeMethod::Heun, OdeMethod::Rk4] {
        let dts = [0.01, 0.005, 0.0025, 0.00125, 0.000625];
        let drifts: Vec<f64> = dts
            .iter()
            .map(|&dt| {
                let n = (20.0 / dt) as usize; // several orbits
                let mut x = x0;
                let mut worst: f64 = 0.0;
                for k in 0..n {
                    x = method.step(
                        &mut |_t, x: &[f64; 2]| m.deriv(x, input),
                        k as f64 * dt,
                        &x,
                        dt,
                    );
                    worst = worst.max((m.energy(&x, input) - h0).abs());
                }
                worst
            })
            .collect();
        let s = slope(&dts, &drifts);
        println!(
            "{method}: max |H - H0| over t in [0, 20] for dt {dts:?}: {}, order {s:.3}",
            sci(&drifts)
        );
        let p = method.order() as f64;
        let k = dts.len() - 1;
        let local = (drifts[k - 1] / drifts[k]).log2();
        println!("{method}: local order on the two finest steps {local:.3}");
        // The drift must shrink at least at the integrator's order. Heun's energy error here has
        // a dt^3 term that dominates at coarse steps (the measured local order falls from 2.9
        // towards 2 as dt shrinks), so the upper side of the band is wider.
        assert!(
            s > p - 0.25,
            "{method}: energy drift order {s}, expected >= {p}"
        );
        assert!(
            local > p - 0.25 && local < p + 1.0,
            "{method}: local order {local}"
        );
    }
}
