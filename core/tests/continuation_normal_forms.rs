//! `nmm_core::continuation` on the normal forms of the bifurcations it detects, whose special
//! points are known exactly, and its error paths (every bad input gives an error, no panic).
//!
//! Run with `--nocapture` to see the measured errors.

use core::ops::ControlFlow;
use nmm_core::continuation::{
    ContinuationError, Direction, FoldCurvePoint, Label, Point, Settings, Stop, Summary,
    continue_equilibria, continue_folds, parameter_field,
};
use nmm_core::equilibria::{Kind, NewtonError};
use nmm_core::models::{ChenCampbell, Mpr};

fn branch<const N: usize>(
    f: &mut impl FnMut(&[f64; N], f64) -> [f64; N],
    x0: [f64; N],
    lambda0: f64,
    bounds: [f64; 2],
    settings: &Settings<f64>,
) -> (Result<Summary, ContinuationError>, Vec<Point<f64, N>>) {
    let mut pts = Vec::new();
    let r = continue_equilibria(f, x0, lambda0, bounds, settings, &mut |p| {
        pts.push(*p);
        ControlFlow::Continue(())
    });
    (r, pts)
}

fn fold_curve<const N: usize>(
    f: &mut impl FnMut(&[f64; N], f64, f64) -> [f64; N],
    x0: [f64; N],
    lambda0: [f64; 2],
    bounds: [[f64; 2]; 2],
    settings: &Settings<f64>,
) -> (
    Result<Summary, ContinuationError>,
    Vec<FoldCurvePoint<f64, N>>,
) {
    let mut pts = Vec::new();
    let r = continue_folds(f, x0, lambda0, bounds, settings, &mut |p| {
        pts.push(*p);
        ControlFlow::Continue(())
    });
    (r, pts)
}

fn labelled<P: Copy>(pts: &[P], label: Label, get: impl Fn(&P) -> Label) -> Vec<P> {
    pts.iter().copied().filter(|p| get(p) == label).collect()
}

// ---------------------------------------------------------------------------------------------
// Normal forms

#[test]
fn saddle_node_fold_is_exact() {
    // dx/dt = lambda - x^2: branches x = -+sqrt(lambda) meet in a fold at (0, 0).
    let mut f = |x: &[f64; 1], lam: f64| [lam - x[0] * x[0]];
    let s = Settings {
        direction: Direction::Decreasing,
        ..Settings::default()
    };
    let (res, pts) = branch(&mut f, [-1.1], 1.0, [-1.0, 1.0], &s);
    assert_eq!(res.unwrap().stop, Stop::Bound);
    let folds = labelled(&pts, Label::Fold, |p| p.label);
    assert_eq!(folds.len(), 1);
    let p = folds[0];
    eprintln!(
        "saddle-node: fold at x = {:.1e}, lambda = {:.1e}",
        p.x[0], p.lambda
    );
    // The fold solves F = 0, g = -2x/|..| = 0 by Newton: x to the difference Jacobian's
    // rounding (~1e-11, central differences of a quadratic are exact but for rounding), and
    // lambda = x^2.
    assert!(p.x[0].abs() < 1e-9 && p.lambda.abs() < 1e-12);
    assert_eq!(p.kind, Kind::NonHyperbolic);
    // Stable branch (x < 0) before the fold, unstable after; back to lambda = 1 at x = +1.
    for p in pts.iter().filter(|p| p.label != Label::Fold) {
        assert_eq!(p.eigenvalues[0].0 < 0.0, p.x[0] > 0.0, "{p:?}");
    }
    let last = pts.last().unwrap();
    assert_eq!((last.label, last.lambda), (Label::End, 1.0));
    assert!((last.x[0] - 1.0).abs() < 1e-10);
    // The start was corrected from x0 = -1.1 onto the branch.
    assert!((pts[0].x[0] + 1.0).abs() < 1e-10 && pts[0].label == Label::Start);
}

#[test]
fn hopf_normal_form_with_moving_equilibrium() {
    // Hopf normal form in X = x - sin(mu), y: eigenvalues mu +- i at the equilibrium
    // (x, y) = (sin mu, 0); supercritical Hopf at mu = 0.
    let mut f = |s: &[f64; 2], mu: f64| {
        let (x, y) = (s[0] - mu.sin(), s[1]);
        let r2 = x * x + y * y;
        [mu * x - y - x * r2, x + mu * y - y * r2]
    };
    let (res, pts) = branch(
        &mut f,
        [(-0.5f64).sin(), 0.0],
        -0.5,
        [-0.5, 0.5],
        &Settings::default(),
    );
    assert_eq!(res.unwrap().stop, Stop::Bound);
    let hopf = labelled(&pts, Label::Hopf, |p| p.label);
    assert_eq!(hopf.len(), 1);
    assert!(labelled(&pts, Label::Fold, |p| p.label).is_empty());
    let h = hopf[0];
    eprintln!(
        "Hopf normal form: mu = {:.1e}, x = {:.1e}, eigenvalues {:?}",
        h.lambda, h.x[0], h.eigenvalues
    );
    // Re = mu exactly; Newton on (F, Re) = 0 leaves the difference Jacobian's rounding.
    assert!(h.lambda.abs() < 1e-10 && h.x[0].abs() < 1e-10);
    assert!((h.eigenvalues[0].1 - 1.0).abs() < 1e-8);
    assert_eq!(h.tests.hopf.map(|re| re.abs() < 1e-10), Some(true));
    // Every point: the equilibrium sin(mu) and eigenvalues mu +- i.
    for p in &pts {
        assert!((p.x[0] - p.lambda.sin()).abs() < 1e-10 && p.x[1].abs() < 1e-10);
        assert!((p.eigenvalues[0].0 - p.lambda).abs() < 1e-8);
    }
}

#[test]
fn neutral_saddle_is_not_a_hopf_point() {
    // Eigenvalues mu +- 1 (real): the trace crosses zero at mu = 0 with det = mu^2 - 1 < 0, a
    // neutral saddle, which a trace-based test would mistake for a Hopf point.
    let mut f = |s: &[f64; 2], mu: f64| [mu * s[0] + s[1], s[0] + mu * s[1]];
    let (res, pts) = branch(&mut f, [0.0, 0.0], -0.5, [-0.5, 0.5], &Settings::default());
    let sum = res.unwrap();
    assert_eq!((sum.stop, sum.special_points), (Stop::Bound, 0));
    assert!(pts.iter().all(|p| p.kind == Kind::Saddle));
}

#[test]
fn cusp_normal_form_fold_curve() {
    // dx/dt = b + a x - x^3: folds on a = 3 x^2, b = -2 x^3; cusp at (x, b, a) = 0.
    let mut f = |x: &[f64; 1], b: f64, a: f64| [b + a * x[0] - x[0] * x[0] * x[0]];
    let s = Settings {
        direction: Direction::Decreasing,
        ..Settings::default()
    };
    let (res, pts) = fold_curve(&mut f, [0.6], [-0.4, 1.0], [[-2.0, 2.0], [-1.0, 1.0]], &s);
    assert_eq!(res.unwrap().stop, Stop::Bound);
    let cusps = labelled(&pts, Label::Cusp, |p| p.label);
    assert_eq!(cusps.len(), 1);
    assert!(labelled(&pts, Label::BogdanovTakens, |p| p.label).is_empty());
    let c = cusps[0];
    eprintln!(
        "cusp normal form: x = {:.1e}, (b, a) = {:?}",
        c.x[0], c.lambda
    );
    // The test a = p.D^2F(q,q) = -6x is a second difference with error ~1e-8, which bounds
    // x; on the curve a = 3x^2 + g, where g = 0 holds to the corrector's accuracy (Newton's
    // tolerance 1e-10, and its last step contracts only by the ~1e-7 error of the difference
    // Newton matrix: measured 4e-11); b = -2x^3 + a x is smaller still.
    assert!(c.x[0].abs() < 1e-7 && c.lambda[1].abs() < 1e-9 && c.lambda[0].abs() < 1e-15);
    let mut worst = 0.0_f64;
    for p in &pts {
        let x = p.x[0];
        worst = worst
            .max((p.lambda[1] - 3.0 * x * x).abs())
            .max((p.lambda[0] + 2.0 * x * x * x).abs());
    }
    eprintln!("cusp normal form: worst distance from the fold curve {worst:.1e}");
    // Newton's tolerance 1e-10 on F and the rounding of g.
    assert!(worst < 1e-9);
    // The curve runs from x = 0.6 (a = 1.08 > 1, so it starts by lowering a) through the
    // cusp to the bound a = 1 at x = -1/sqrt(3).
    let last = pts.last().unwrap();
    assert_eq!((last.label, last.lambda[1]), (Label::End, 1.0));
    assert!((last.x[0] + 1.0 / 3f64.sqrt()).abs() < 1e-10);
}

#[test]
fn bogdanov_takens_normal_form_fold_curve() {
    // dx/dt = y, dy/dt = b1 + b2 x + x^2 + x y: folds on b1 = b2^2 / 4 at x = -b2/2, where
    // D_x F = [[0, 1], [0, x]]; the zero eigenvalue is double (Bogdanov-Takens) at b = 0.
    let mut f = |s: &[f64; 2], b1: f64, b2: f64| {
        let (x, y) = (s[0], s[1]);
        [y, b1 + b2 * x + x * x + x * y]
    };
    let s = Settings {
        direction: Direction::Decreasing,
        ..Settings::default()
    };
    let (res, pts) = fold_curve(
        &mut f,
        [-0.5, 0.0],
        [0.25, 1.0],
        [[-1.0, 1.0], [-1.0, 1.0]],
        &s,
    );
    assert_eq!(res.unwrap().stop, Stop::Bound);
    let bt = labelled(&pts, Label::BogdanovTakens, |p| p.label);
    assert_eq!(bt.len(), 1);
    assert!(labelled(&pts, Label::Cusp, |p| p.label).is_empty());
    let b = bt[0];
    eprintln!(
        "Bogdanov-Takens normal form: x = {:?}, (b1, b2) = {:?}, eigenvalues {:?}",
        b.x, b.lambda, b.eigenvalues
    );
    // p.q = -x/sqrt(1 + x^2) along the curve, computed from bordered solves with the
    // difference Jacobian (~1e-10): x, and b2 = -2x, to that level; b1 = b2^2/4.
    assert!(b.x[0].abs() < 1e-8 && b.lambda[1].abs() < 1e-8 && b.lambda[0].abs() < 1e-15);
    assert!(b.eigenvalues.iter().all(|z| z.0.abs() < 1e-6));
    for p in &pts {
        let x = p.x[0];
        assert!((p.lambda[1] + 2.0 * x).abs() < 1e-9 && (p.lambda[0] - x * x).abs() < 1e-9);
    }
}

// ---------------------------------------------------------------------------------------------
// Run control

#[test]
fn callback_break_and_step_limit_stop_the_run() {
    let mut f = |x: &[f64; 1], lam: f64| [lam - x[0]];
    let mut seen = 0;
    let sum = continue_equilibria(
        &mut f,
        [0.0],
        0.0,
        [0.0, 1.0],
        &Settings::default(),
        &mut |_| {
            seen += 1;
            if seen == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .unwrap();
    assert_eq!((sum.stop, sum.points, seen), (Stop::Callback, 3, 3));

    let s = Settings {
        max_steps: 5,
        ..Settings::default()
    };
    let (res, pts) = branch(&mut f, [0.0], 0.0, [0.0, 10.0], &s);
    let sum = res.unwrap();
    assert_eq!((sum.stop, sum.points, pts.len()), (Stop::MaxSteps, 6, 6));
    // The step grows by 1.5 per easy step from 0.01: arclengths 0.01, 0.015, 0.0225, ...
    let s_total = (pts[5].lambda - pts[0].lambda) * 2f64.sqrt();
    let want: f64 = (0..5).map(|k| 0.01 * 1.5f64.powi(k)).sum();
    assert!((s_total - want).abs() < 1e-12, "{s_total} {want}");
}

#[test]
fn model_closure_continues_any_named_parameter() {
    // Continue MPR in J (fixed eta = -5): folds where J(r) of mpr::fold_point gives eta = -5.
    let m = Mpr::<f64>::default();
    let mut f = parameter_field(&m, "J", 0.0).unwrap();
    let x0 = nmm_core::models::mpr::fixed_points(&Mpr { j: 0.0, ..m }, 0.0)[0];
    let (res, pts) = branch(&mut f, x0, 0.0, [0.0, 30.0], &Settings::default());
    assert_eq!(res.unwrap().stop, Stop::Bound);
    let folds = labelled(&pts, Label::Fold, |p| p.label);
    assert_eq!(folds.len(), 2);
    for p in folds {
        let cf = nmm_core::models::mpr::fold_point(1.0, 1.0, p.x[0]);
        assert!(
            (cf.eta + 5.0).abs() < 1e-8 && (cf.j - p.lambda).abs() < 1e-8,
            "{cf:?}"
        );
    }
    // Unknown names are an error when the closure is built.
    assert!(parameter_field(&m, "K", 0.0).is_err());
    assert!(parameter_field(&ChenCampbell::<f64>::default(), "eta", 0.0).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn bad_settings_and_bounds_are_errors() {
    let mut f = |x: &[f64; 1], lam: f64| [lam - x[0]];
    let base = Settings::<f64>::default();
    let bad = [
        Settings { ds: 0.0, ..base },
        Settings {
            ds_min: 1.0,
            ..base
        },
        Settings {
            ds_max: 1e-3,
            ..base
        },
        Settings { tol: 0.0, ..base },
        Settings {
            tol: f64::NAN,
            ..base
        },
        Settings {
            ds: f64::INFINITY,
            ds_max: f64::INFINITY,
            ..base
        },
        Settings {
            max_corrector: 0,
            ..base
        },
    ];
    for s in bad {
        let (res, pts) = branch(&mut f, [0.0], 0.0, [0.0, 1.0], &s);
        assert!(
            matches!(res, Err(ContinuationError::InvalidSettings(_))),
            "{s:?}: {res:?}"
        );
        assert!(pts.is_empty());
    }
    for (lam0, bounds) in [
        (0.0, [1.0, 0.0]),
        (2.0, [0.0, 1.0]),
        (0.0, [f64::NAN, 1.0]),
        (f64::NAN, [0.0, 1.0]),
    ] {
        let (res, _) = branch(&mut f, [0.0], lam0, bounds, &base);
        let e = res.unwrap_err();
        assert!(matches!(e, ContinuationError::InvalidSettings(_)));
        assert!(e.to_string().contains("invalid settings"));
    }
    let mut g = |x: &[f64; 1], a: f64, b: f64| [a + b - x[0]];
    let (res, _) = fold_curve(&mut g, [0.0], [0.0, 5.0], [[-1.0, 1.0], [-1.0, 1.0]], &base);
    assert!(matches!(res, Err(ContinuationError::InvalidSettings(_))));
}

#[test]
fn unreachable_start_is_an_error() {
    // No equilibrium of lambda - x^2 at lambda = -1.
    let mut f = |x: &[f64; 1], lam: f64| [lam - x[0] * x[0]];
    let (res, pts) = branch(&mut f, [0.3], -1.0, [-1.0, 1.0], &Settings::default());
    assert!(matches!(res, Err(ContinuationError::Start(_))), "{res:?}");
    assert!(pts.is_empty());
    // A start exactly on the fold: singular Jacobian.
    let (res, _) = branch(&mut f, [0.0], 0.0, [-1.0, 1.0], &Settings::default());
    assert!(
        matches!(
            res,
            Err(ContinuationError::Start(NewtonError::Singular) | ContinuationError::Degenerate)
        ),
        "{res:?}"
    );
    // No fold of a linear field.
    let mut g = |x: &[f64; 1], a: f64, b: f64| [a + b - x[0]];
    let (res, _) = fold_curve(
        &mut g,
        [0.0],
        [0.0, 0.0],
        [[-1.0, 1.0], [-1.0, 1.0]],
        &Settings::default(),
    );
    assert!(matches!(res, Err(ContinuationError::Start(_))), "{res:?}");
    // A field that is NaN at the start.
    let mut h = |_: &[f64; 1], _: f64| [f64::NAN];
    let (res, _) = branch(&mut h, [0.0], 0.0, [-1.0, 1.0], &Settings::default());
    assert!(matches!(
        res,
        Err(ContinuationError::Start(NewtonError::NotFinite))
    ));
}

#[test]
fn field_that_stops_being_finite_ends_with_step_too_small() {
    // Finite for lambda <= 0.5 only: the corrector fails beyond it at every step size.
    let mut f = |x: &[f64; 1], lam: f64| {
        if lam > 0.5 { [f64::NAN] } else { [lam - x[0]] }
    };
    let (res, pts) = branch(&mut f, [0.0], 0.0, [0.0, 1.0], &Settings::default());
    match res {
        Err(ContinuationError::StepTooSmall { lambda, steps }) => {
            eprintln!("stopped at lambda = {} after {steps} steps", lambda[0]);
            // The last point is the last one whose difference Jacobian (step cbrt(eps) = 6e-6)
            // does not reach past lambda = 0.5.
            assert!(lambda[0] <= 0.5 && lambda[0] > 0.5 - 1e-5);
            assert_eq!(steps + 1, pts.len());
        }
        other => panic!("{other:?}"),
    }
    // A model parameter driven out of its valid range (the conductance g < 0 of
    // Chen-Campbell) gives NaN the same way; the equilibrium itself stays finite at g = 0.
    let m = ChenCampbell::<f64> {
        eta: 0.25,
        ..Default::default()
    };
    let mut g = parameter_field(&m, "g", 0.0).unwrap();
    let s = Settings {
        direction: Direction::Decreasing,
        ..Settings::default()
    };
    let x0 = nmm_core::equilibria::newton(
        &mut |x: &[f64; 4]| nmm_core::Model::deriv(&m, x, 0.0),
        [0.1, 0.5, 0.3, 0.4],
        1e-13,
        50,
    )
    .unwrap();
    let (res, _) = branch(&mut g, x0, m.g, [-1.0, 2.0], &s);
    match res {
        Err(ContinuationError::StepTooSmall { lambda, .. }) => {
            eprintln!("CC continued in g stopped at g = {}", lambda[0]);
            assert!(lambda[0] >= 0.0 && lambda[0] < 1e-5);
        }
        other => panic!("{other:?}"),
    }
}
