//! Continuation of the models' equilibria (`nmm_core::continuation`) against closed forms and
//! direct simulation:
//! - MPR: folds in `eta` and the cusp in `(eta, J)` against `mpr::fold_point` / `mpr::cusp`
//!   (REFERENCE section 1), and the number of folds on either side of the cusp;
//! - Chen-Campbell: the Hopf points in `eta_bar` that bracket the bursting regime
//!   (REFERENCE section 3), checked against RK4 simulations and an independent bisection.
//!
//! Run with `--nocapture` to see the measured errors.

use core::f64::consts::PI;
use core::ops::ControlFlow;
use nmm_core::Real;
use nmm_core::continuation::{
    ContinuationError, Direction, FoldCurvePoint, Label, Point, Settings, Stop, Summary,
    continue_equilibria, continue_folds, parameter_field, parameter_field2,
};
use nmm_core::equilibria::{Equilibrium, Kind, Stability, newton};
use nmm_core::integrate::rk4;
use nmm_core::models::mpr::{FoldPoint, cusp, fixed_points, fold_point};
use nmm_core::models::{ChenCampbell, Model, Mpr};

/// Runs `continue_equilibria` and collects every point.
fn branch<T: Real, const N: usize>(
    f: &mut impl FnMut(&[T; N], T) -> [T; N],
    x0: [T; N],
    lambda0: T,
    bounds: [T; 2],
    settings: &Settings<T>,
) -> (Result<Summary, ContinuationError>, Vec<Point<T, N>>) {
    let mut pts = Vec::new();
    let r = continue_equilibria(f, x0, lambda0, bounds, settings, &mut |p| {
        pts.push(*p);
        ControlFlow::Continue(())
    });
    (r, pts)
}

/// Runs `continue_folds` and collects every point.
fn fold_curve<T: Real, const N: usize>(
    f: &mut impl FnMut(&[T; N], T, T) -> [T; N],
    x0: [T; N],
    lambda0: [T; 2],
    bounds: [[T; 2]; 2],
    settings: &Settings<T>,
) -> (
    Result<Summary, ContinuationError>,
    Vec<FoldCurvePoint<T, N>>,
) {
    let mut pts = Vec::new();
    let r = continue_folds(f, x0, lambda0, bounds, settings, &mut |p| {
        pts.push(*p);
        ControlFlow::Continue(())
    });
    (r, pts)
}

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}

/// The MPR folds at coupling `j` from the closed form: the roots of `J(r) = j` on the fold
/// curve of `mpr::fold_point`, one on each side of the cusp rate (where `J(r)` has its
/// minimum), by bisection to machine precision; ordered by `r`. Empty below the cusp.
fn closed_form_folds(delta: f64, tau: f64, j: f64) -> Vec<FoldPoint> {
    let rc = cusp(delta, tau).r;
    let g = |r: f64| fold_point(delta, tau, r).j - j;
    if g(rc) >= 0.0 {
        return Vec::new();
    }
    // J(r) -> +inf as r -> 0 and as r -> inf; decreasing below rc, increasing above.
    let root = |mut lo: f64, mut hi: f64| {
        let s = g(lo).signum();
        for _ in 0..200 {
            let m = 0.5 * (lo + hi);
            if g(m).signum() == s {
                lo = m;
            } else {
                hi = m;
            }
        }
        fold_point(delta, tau, 0.5 * (lo + hi))
    };
    vec![root(1e-6 * rc, rc), root(rc, 1e3 * rc)]
}

fn mpr(delta: f64, tau: f64, eta: f64, j: f64) -> Mpr<f64> {
    Mpr { delta, tau, eta, j }
}

// ---------------------------------------------------------------------------------------------
// MPR: folds in eta

#[test]
fn mpr_two_folds_in_eta_match_closed_form() {
    let (delta, tau, j) = (1.0, 1.0, 15.0);
    let m = mpr(delta, tau, -10.0, j);
    // The low-activity equilibrium at eta = -10 (closed-form fixed points, sorted by r).
    let x0 = fixed_points(&m, 0.0)[0];
    let mut f = parameter_field(&m, "eta", 0.0).unwrap();
    let (res, pts) = branch(&mut f, x0, -10.0, [-10.0, 0.0], &Settings::default());
    let sum = res.unwrap();
    assert_eq!(sum.stop, Stop::Bound);
    assert_eq!(sum.points, pts.len());
    let folds: Vec<_> = pts.iter().filter(|p| p.label == Label::Fold).collect();
    assert_eq!(folds.len(), 2, "{folds:?}");
    assert_eq!(sum.special_points, 2);
    assert!(pts.iter().all(|p| !matches!(p.label, Label::Hopf)));

    // Along the branch the low-rate fold (eta ~ -3.14) comes first, then the high-rate one.
    let want = closed_form_folds(delta, tau, j);
    for (p, w) in folds.iter().zip(&want) {
        let v = -delta / (2.0 * PI * tau * w.r);
        let (e_eta, e_r, e_v) = (rel(p.lambda, w.eta), rel(p.x[0], w.r), rel(p.x[1], v));
        let crit = p
            .eigenvalues
            .iter()
            .map(|z| z.0.abs())
            .fold(f64::MAX, f64::min);
        eprintln!(
            "MPR fold: eta {:.12} (closed form {:.12}, rel err {e_eta:.1e}), r {:.12} \
             (closed form {:.12}, rel err {e_r:.1e}), v rel err {e_v:.1e}, |F| {:.1e}, \
             |critical eigenvalue| {crit:.1e}",
            p.lambda, w.eta, p.x[0], w.r, p.residual
        );
        // The fold is the root of F = 0, g(D_x F) = 0 refined by Newton; g is computed from a
        // difference Jacobian with error ~eps^(2/3) ~ 4e-11 relative and changes by O(1) per
        // unit of r, so r is good to ~1e-10 and eta (quadratic in the r error at a fold) to
        // rounding. 1e-6 (the requested accuracy) keeps a wide margin, yet a fold reported at
        // the bracketing continuation step (ds up to 0.1) would miss it by 1e-2.
        assert!(e_eta < 1e-6 && e_r < 1e-6 && e_v < 1e-6);
        // A real eigenvalue through zero; the difference Jacobian's error is ~1e-10 here.
        assert!(crit < 1e-8, "{:?}", p.eigenvalues);
        assert!(p.residual < 1e-10);
    }

    // Stable node/focus before the first fold, saddle between the folds, stable after.
    let mut segment = 0;
    for p in &pts {
        match p.label {
            Label::Fold => segment += 1,
            Label::Regular | Label::Start | Label::End => {
                let ok = match segment {
                    1 => p.kind == Kind::Saddle,
                    _ => p.stability == Stability::Stable,
                };
                assert!(ok, "segment {segment}: {p:?}");
            }
            _ => {}
        }
    }

    // The last point lies exactly on the bound, on the high-activity equilibrium there.
    let last = pts.last().unwrap();
    assert_eq!((last.label, last.lambda), (Label::End, 0.0));
    let hi = *fixed_points(&mpr(delta, tau, 0.0, j), 0.0).last().unwrap();
    let d = (last.x[0] - hi[0]).abs().max((last.x[1] - hi[1]).abs());
    eprintln!("MPR end point at eta = 0: |x - closed form| = {d:.1e}");
    // Newton's tolerance 1e-10 on |F| with ||J^-1|| ~ 0.03 (|det J| = 46).
    assert!(d < 1e-9);
}

#[test]
fn mpr_fold_count_changes_at_the_cusp() {
    // (Delta, J): J above the cusp coupling J_c(Delta) = 7.80 sqrt(Delta) (tau = 1) has a
    // bistable window bounded by two folds, J below it a monotone branch. 7.75 and 7.85
    // straddle J_c(1) = 7.796 closely: there the two folds lie within 0.02 of each other in r
    // and 2e-6 in eta, so the step must resolve them (ds_max = 0.005).
    let cases = [
        (1.0, 5.0),
        (1.0, 7.75),
        (1.0, 7.85),
        (1.0, 10.0),
        (1.0, 20.0),
        (4.0, 15.0), // J_c(4) = 15.59
        (0.25, 15.0),
    ];
    let settings = Settings {
        ds: 0.005,
        ds_max: 0.005,
        max_steps: 20_000,
        ..Settings::default()
    };
    for (delta, j) in cases {
        let m = mpr(delta, 1.0, -15.0, j);
        let x0 = fixed_points(&m, 0.0)[0];
        let mut f = parameter_field(&m, "eta", 0.0).unwrap();
        let (res, pts) = branch(&mut f, x0, -15.0, [-15.0, 0.0], &settings);
        assert_eq!(res.unwrap().stop, Stop::Bound);
        let folds: Vec<_> = pts.iter().filter(|p| p.label == Label::Fold).collect();
        let want = closed_form_folds(delta, 1.0, j);
        let jc = cusp(delta, 1.0).j;
        eprintln!(
            "MPR Delta = {delta}, J = {j} (J_c = {jc:.4}): {} folds, closed form {}",
            folds.len(),
            want.len()
        );
        assert_eq!(folds.len(), if j > jc { 2 } else { 0 });
        assert_eq!(folds.len(), want.len());
        for (p, w) in folds.iter().zip(&want) {
            let (e_eta, e_r) = (rel(p.lambda, w.eta), rel(p.x[0], w.r));
            eprintln!(
                "    fold eta {:.9} r {:.9}: rel err {e_eta:.1e}, {e_r:.1e}",
                w.eta, w.r
            );
            // As in `mpr_two_folds_in_eta_match_closed_form`.
            assert!(e_eta < 1e-6 && e_r < 1e-6);
        }
        if folds.is_empty() {
            // No fold: eta increases monotonically along the whole branch.
            assert!(pts.iter().all(|p| p.tests.tangent_lambda > 0.0));
            assert!(pts.windows(2).all(|w| w[1].lambda > w[0].lambda));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MPR: the fold curve in (eta, J) and its cusp

#[test]
fn mpr_fold_curve_has_the_closed_form_cusp() {
    let (delta, tau) = (1.0, 1.0);
    let m = mpr(delta, tau, -5.0, 15.0);
    let mut f = parameter_field2(&m, ["eta", "J"], 0.0).unwrap();
    // Start near (not on) the low-rate fold at J = 15: the start is refined at fixed J.
    let w = closed_form_folds(delta, tau, 15.0)[0];
    let x0 = [1.01 * w.r, -delta / (2.0 * PI * tau * w.r) * 0.99];
    let settings = Settings {
        direction: Direction::Decreasing, // towards smaller J: the cusp
        ..Settings::default()
    };
    let (res, pts) = fold_curve(
        &mut f,
        x0,
        [w.eta + 0.01, 15.0],
        [[-20.0, 0.0], [5.0, 20.0]],
        &settings,
    );
    let sum = res.unwrap();
    assert_eq!(sum.stop, Stop::Bound);
    let first = pts[0];
    assert_eq!(first.label, Label::Start);
    eprintln!(
        "MPR fold-curve start: eta rel err {:.1e}, r rel err {:.1e}",
        rel(first.lambda[0], w.eta),
        rel(first.x[0], w.r)
    );
    assert!(rel(first.lambda[0], w.eta) < 1e-6 && rel(first.x[0], w.r) < 1e-6);

    let cusps: Vec<_> = pts.iter().filter(|p| p.label == Label::Cusp).collect();
    assert_eq!(cusps.len(), 1, "{cusps:?}");
    assert!(pts.iter().all(|p| p.label != Label::BogdanovTakens));
    let c = cusps[0];
    let want = cusp(delta, tau);
    let (e_eta, e_j, e_r) = (
        rel(c.lambda[0], want.eta),
        rel(c.lambda[1], want.j),
        rel(c.x[0], want.r),
    );
    eprintln!(
        "MPR cusp: eta {:.12} (closed form {:.12}, rel err {e_eta:.1e}), J {:.12} (closed form \
         {:.12}, rel err {e_j:.1e}), r rel err {e_r:.1e}, normal form a = {:.1e}",
        c.lambda[0], want.eta, c.lambda[1], want.j, c.normal_form
    );
    // The cusp is the zero of a = p.D^2F(q,q) along the curve, located by regula falsi to an
    // arclength of 1e-10. a comes from a second difference with error ~eps^(1/2) ~ 1e-8 and
    // changes by O(1) per unit of arclength, so the cusp point is good to ~1e-8 in r; (eta, J)
    // are stationary along the curve at the cusp and so even better. 1e-5 is the requested
    // accuracy; a cusp taken from the bracketing step would be off by ~1e-2.
    assert!(e_eta < 1e-5 && e_j < 1e-5 && e_r < 1e-5);

    // Every point lies on the closed-form fold curve parametrised by its rate r, and the
    // normal-form coefficient changes sign exactly once, at the cusp.
    let mut worst = 0.0_f64;
    let mut before_cusp = true;
    for p in &pts {
        let cf = fold_point(delta, tau, p.x[0]);
        worst = worst
            .max(rel(p.lambda[0], cf.eta))
            .max(rel(p.lambda[1], cf.j));
        match p.label {
            Label::Cusp => before_cusp = false,
            _ if before_cusp => assert!(p.normal_form < 0.0, "{p:?}"),
            _ => assert!(p.normal_form > 0.0, "{p:?}"),
        }
    }
    eprintln!(
        "MPR fold curve: {} points, worst rel deviation from the closed form {worst:.1e}",
        pts.len()
    );
    // Each point solves F = 0 to 1e-10 and g = 0 to the noise of the difference Jacobian
    // (~1e-10 relative); the rate r then fixes (eta, J) through the closed form to about the
    // same relative accuracy.
    assert!(worst < 1e-8);

    // The curve passes the cusp onto the high-rate branch and ends on J = 20.
    let last = pts.last().unwrap();
    assert_eq!((last.label, last.lambda[1]), (Label::End, 20.0));
    let w20 = closed_form_folds(delta, tau, 20.0)[1];
    assert!(rel(last.x[0], w20.r) < 1e-8 && rel(last.lambda[0], w20.eta) < 1e-8);
}

#[test]
fn mpr_folds_and_cusp_in_f32() {
    let m = Mpr::<f32> {
        eta: -10.0,
        ..Default::default()
    };
    let x0 = fixed_points(&m, 0.0)[0];
    let mut f = parameter_field(&m, "eta", 0.0f32).unwrap();
    let (res, pts) = branch(&mut f, x0, -10.0, [-10.0, 0.0], &Settings::default());
    assert_eq!(res.unwrap().stop, Stop::Bound);
    let folds: Vec<_> = pts.iter().filter(|p| p.label == Label::Fold).collect();
    assert_eq!(folds.len(), 2);
    for (p, w) in folds.iter().zip(closed_form_folds(1.0, 1.0, 15.0)) {
        let (e_eta, e_r) = (rel(p.lambda as f64, w.eta), rel(p.x[0] as f64, w.r));
        eprintln!("MPR fold in f32: rel err eta {e_eta:.1e}, r {e_r:.1e}");
        // f32: eps = 1.2e-7, the difference Jacobian is good to eps^(2/3) = 2.4e-5 relative,
        // which bounds the fold's r to a few 1e-5 (measured 3e-6 and 1.3e-5); eta is
        // quadratic in that error.
        assert!(e_r < 2e-4 && e_eta < 1e-5);
    }
    let mut f2 = parameter_field2(&m, ["eta", "J"], 0.0f32).unwrap();
    let s = Settings {
        direction: Direction::Decreasing,
        ..Settings::default()
    };
    let x = folds[0].x;
    let (res, pts) = fold_curve(
        &mut f2,
        x,
        [folds[0].lambda, 15.0],
        [[-20.0, 0.0], [5.0, 20.0]],
        &s,
    );
    assert_eq!(res.unwrap().stop, Stop::Bound);
    let cusps: Vec<_> = pts.iter().filter(|p| p.label == Label::Cusp).collect();
    assert_eq!(cusps.len(), 1);
    let want = cusp(1.0, 1.0);
    let (e_eta, e_j) = (
        rel(cusps[0].lambda[0] as f64, want.eta),
        rel(cusps[0].lambda[1] as f64, want.j),
    );
    eprintln!("MPR cusp in f32: rel err eta {e_eta:.1e}, J {e_j:.1e}");
    // The normal-form coefficient is a second difference with error ~eps^(1/2) = 3.5e-4 in
    // f32; measured errors are ~4e-5.
    assert!(e_eta < 1e-3 && e_j < 1e-3);
}

// ---------------------------------------------------------------------------------------------
// Chen-Campbell: Hopf points in eta_bar

fn cc(eta: f64) -> ChenCampbell<f64> {
    ChenCampbell {
        eta,
        ..Default::default()
    }
}

/// Peak-to-peak amplitude of r in the third and fourth quarters of an RK4 run of 4000 time
/// units (dt = 0.01) from the equilibrium with r raised by 5 %.
fn cc_amplitudes(eta: f64, x_eq: [f64; 4]) -> [f64; 2] {
    let m = cc(eta);
    let dt = 0.01;
    let n = 400_000;
    let mut x = [1.05 * x_eq[0], x_eq[1], x_eq[2], x_eq[3]];
    let mut range = [(f64::MAX, f64::MIN); 2];
    for k in 0..n {
        x = rk4(
            &mut |_t, y: &[f64; 4]| m.deriv(y, 0.0),
            k as f64 * dt,
            &x,
            dt,
        );
        if k >= n / 2 {
            let q = (k - n / 2) / (n / 4);
            range[q] = (range[q].0.min(x[0]), range[q].1.max(x[0]));
        }
    }
    [range[0].1 - range[0].0, range[1].1 - range[1].0]
}

#[test]
fn cc_hopf_points_bracket_bursting_and_agree_with_simulation() {
    let m = cc(0.0);
    let x0 = newton(
        &mut |x: &[f64; 4]| m.deriv(x, 0.0),
        [0.01, 0.0, 0.0, 0.0],
        1e-13,
        100,
    )
    .unwrap();
    let mut f = parameter_field(&m, "eta", 0.0).unwrap();
    let settings = Settings {
        ds_max: 0.01,
        ..Settings::default()
    };
    let (res, pts) = branch(&mut f, x0, 0.0, [0.0, 0.4], &settings);
    assert_eq!(res.unwrap().stop, Stop::Bound);
    assert!(pts.iter().all(|p| p.label != Label::Fold));
    let hopf: Vec<_> = pts.iter().filter(|p| p.label == Label::Hopf).collect();
    assert_eq!(hopf.len(), 2, "{hopf:?}");
    let (h1, h2) = (hopf[0].lambda, hopf[1].lambda);
    // REFERENCE section 3: bursting at eta = 0.12, tonic firing at eta = 0.25.
    assert!(h1 < 0.12 && 0.12 < h2 && h2 < 0.25, "{h1} {h2}");

    for h in &hopf {
        // The critical pair: the complex pair closest to the imaginary axis.
        let crit = h
            .eigenvalues
            .iter()
            .filter(|z| z.1 > 0.0)
            .min_by(|a, b| a.0.abs().total_cmp(&b.0.abs()))
            .unwrap();
        // Independent location: bisection on the sign of the largest real part at fixed eta,
        // each equilibrium by damped Newton and linearised by `Equilibrium::at`.
        let (mut a, mut b) = (h.lambda - 2e-3, h.lambda + 2e-3);
        let mut x = h.x;
        let lead = |eta: f64, x: &mut [f64; 4]| {
            let m = cc(eta);
            let mut g = |y: &[f64; 4]| m.deriv(y, 0.0);
            *x = newton(&mut g, *x, 1e-14, 50).unwrap();
            Equilibrium::at(&mut g, *x).eigenvalues[0].0
        };
        let sa = lead(a, &mut x) > 0.0;
        assert_ne!(sa, lead(b, &mut x) > 0.0);
        for _ in 0..50 {
            let mid = 0.5 * (a + b);
            if (lead(mid, &mut x) > 0.0) == sa {
                a = mid;
            } else {
                b = mid;
            }
        }
        let d = (0.5 * (a + b) - h.lambda).abs();
        eprintln!(
            "CC Hopf at eta = {:.12}: critical pair {:.2e} +- {:.6} i, |F| {:.1e}, \
             bisection differs by {d:.1e}",
            h.lambda, crit.0, crit.1, h.residual
        );
        // Re is driven to zero by Newton on (F, Re) = 0 to the noise of the difference
        // Jacobian (~1e-11 here, |J| ~ 1); Im stays far from zero (a Hopf, not a fold).
        assert!(crit.0.abs() < 1e-8 && crit.1 > 1e-3);
        // Re changes by ~0.8 per unit eta, so both locations agree to ~1e-10.
        assert!(d < 1e-8);
    }

    // Linear stability along the branch: stable, unstable between the Hopf points, stable.
    let mut segment = 0;
    for p in &pts {
        if p.label == Label::Hopf {
            segment += 1;
        } else {
            let want = if segment == 1 {
                Stability::Unstable
            } else {
                Stability::Stable
            };
            assert_eq!(p.stability, want, "{p:?}");
        }
    }

    // Direct simulation: inside the Hopf interval the equilibrium gives way to sustained
    // oscillations (bursting; measured amplitude of r 0.13-0.15, constant over the last two
    // quarters), outside a 5 % perturbation decays (the slowest rate there is >= 0.01, so
    // over 3000 time units it shrinks below 1e-9). Test values 15 % of the interval width
    // inside and outside each Hopf point, the midpoint, and REFERENCE's tonic value.
    let w = h2 - h1;
    let x_at = |eta: f64| {
        pts.iter()
            .min_by(|a, b| (a.lambda - eta).abs().total_cmp(&(b.lambda - eta).abs()))
            .unwrap()
            .x
    };
    let eq_at = |eta: f64| {
        let m = cc(eta);
        newton(&mut |y: &[f64; 4]| m.deriv(y, 0.0), x_at(eta), 1e-14, 50).unwrap()
    };
    for eta in [h1 + 0.15 * w, 0.5 * (h1 + h2), h2 - 0.15 * w] {
        let [a3, a4] = cc_amplitudes(eta, eq_at(eta));
        eprintln!("CC eta = {eta:.4} (inside): amplitude of r {a3:.4}, then {a4:.4}");
        assert!(a4 > 0.05 && a4 > 0.9 * a3, "eta {eta}: {a3} {a4}");
    }
    for eta in [h1 - 0.15 * w, h2 + 0.15 * w, 0.25] {
        let [a3, a4] = cc_amplitudes(eta, eq_at(eta));
        eprintln!("CC eta = {eta:.4} (outside): amplitude of r {a3:.1e}, then {a4:.1e}");
        assert!(a4 < 1e-6, "eta {eta}: {a3} {a4}");
    }
}
