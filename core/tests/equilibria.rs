//! Tests of `nmm_core::equilibria`: difference Jacobians against analytic ones, eigenvalues of
//! matrices with known spectra, and the equilibria and bifurcations of MPR (against the closed
//! form), Chen-Campbell and reduced Wong-Wang.
//!
//! Run with `--nocapture` to see the measured errors and bifurcation values.

use nmm_core::Real;
use nmm_core::equilibria::{
    Equilibrium, Kind, MAX_EIG_DIM, NewtonError, SearchBox, Stability, classify, eigenvalues,
    equilibria_of_model, find_equilibria, jacobian, newton, solve_linear, stability,
};
use nmm_core::integrate::rk4;
use nmm_core::models::mpr::{cusp, fixed_points, fold_point};
use nmm_core::models::{ChenCampbell, Model, Mpr, Rww};

// ---------------------------------------------------------------------------------------------
// Jacobian

/// Analytic Jacobian of MPR (derived by hand):
/// `tau dr/dt = Delta/(pi tau) + 2 r v`, `tau dv/dt = v^2 + eta + J tau r - (pi tau r)^2 + I`
/// give `J = (1/tau) [[2v, 2r], [J tau - 2 pi^2 tau^2 r, 2v]]`.
fn mpr_jacobian(m: &Mpr<f64>, x: &[f64; 2]) -> [[f64; 2]; 2] {
    let [r, v] = *x;
    let pi2 = core::f64::consts::PI * core::f64::consts::PI;
    let t = m.tau;
    [
        [2.0 * v / t, 2.0 * r / t],
        [(m.j * t - 2.0 * pi2 * t * t * r) / t, 2.0 * v / t],
    ]
}

/// Rounding-error bound of a central difference of a quadratic: MPR's right-hand side is a
/// polynomial of degree 2, so the truncation error `h^2 f'''/6` vanishes and only the rounding
/// of `f` remains. Each `f_i` is a sum of at most 5 terms of total magnitude `s_i`, evaluated
/// with relative error at most ~5 eps each, so `|f(x+h) - f(x-h)|` is off by at most
/// ~`10 eps s_i`, divided by `2 h_j`: `5 eps s_i / h_j`. We allow `8 eps s_i / h_j`.
fn mpr_fd_bound<T: Real>(m: &Mpr<T>, x: &[T; 2], i: usize, j: usize) -> f64 {
    let eps = if core::mem::size_of::<T>() == 4 {
        f32::EPSILON as f64
    } else {
        f64::EPSILON
    };
    let (tau, delta, eta, jj) = (
        m.tau.to_f64(),
        m.delta.to_f64(),
        m.eta.to_f64(),
        m.j.to_f64(),
    );
    // Largest magnitudes reached at x +- h (h <= 1e-2 |x| in f32, so a factor 1.1 covers it).
    let (r, v) = (1.1 * x[0].to_f64().abs(), 1.1 * x[1].to_f64().abs() + 0.01);
    let pi = core::f64::consts::PI;
    let s = if i == 0 {
        (delta / (pi * tau) + 2.0 * r * v) / tau
    } else {
        (v * v + eta.abs() + jj.abs() * tau * r + (pi * tau * r).powi(2)) / tau
    };
    let h = eps.cbrt() * x[j].to_f64().abs().max(1.0);
    8.0 * eps * s / h
}

#[test]
fn jacobian_matches_analytic_mpr_f64_and_f32() {
    let params = [
        (1.0, 1.0, -5.0, 15.0),
        (0.5, 2.0, -3.0, 8.0),
        (2.0, 0.3, 1.0, -4.0),
    ];
    let points = [
        [0.08, -2.0],
        [0.47, -0.34],
        [1.03, -0.15],
        [2.5, 1.7],
        [0.01, -12.0],
    ];
    let mut worst = (0.0_f64, 0.0_f64); // (f64 error / bound, f32 error / bound)
    for &(tau, delta, eta, j) in &params {
        for x in &points {
            let m = Mpr { tau, delta, eta, j };
            let exact = mpr_jacobian(&m, x);
            let num = jacobian(&mut |y: &[f64; 2]| m.deriv(y, 0.0), x);
            let m32 = Mpr {
                tau: tau as f32,
                delta: delta as f32,
                eta: eta as f32,
                j: j as f32,
            };
            let x32 = [x[0] as f32, x[1] as f32];
            let num32 = jacobian(&mut |y: &[f32; 2]| m32.deriv(y, 0.0), &x32);
            // The f32 Jacobian is compared with the exact one at the f32-rounded point and
            // parameters, whose rounding (relative 6e-8) moves entries far less than the bound.
            let exact32 = mpr_jacobian(
                &Mpr {
                    tau: m32.tau as f64,
                    delta: m32.delta as f64,
                    eta: m32.eta as f64,
                    j: m32.j as f64,
                },
                &[x32[0] as f64, x32[1] as f64],
            );
            for i in 0..2 {
                for k in 0..2 {
                    let e64 = (num[i][k] - exact[i][k]).abs();
                    let b64 = mpr_fd_bound(&m, x, i, k);
                    assert!(
                        e64 <= b64,
                        "f64 J[{i}][{k}] at {x:?}, {m:?}: err {e64:e} > {b64:e}"
                    );
                    let e32 = (num32[i][k] as f64 - exact32[i][k]).abs();
                    let b32 = mpr_fd_bound(&m32, &x32, i, k);
                    assert!(
                        e32 <= b32,
                        "f32 J[{i}][{k}] at {x:?}, {m:?}: err {e32:e} > {b32:e}"
                    );
                    worst.0 = worst.0.max(e64 / b64);
                    worst.1 = worst.1.max(e32 / b32);
                }
            }
        }
    }
    eprintln!(
        "MPR Jacobian: largest error / rounding bound: f64 {:.3}, f32 {:.3}",
        worst.0, worst.1
    );
}

#[test]
fn jacobian_truncation_error_is_second_order_small() {
    // A non-polynomial field, where the O(h^2) truncation error is present:
    // f = (e^x sin y, x y^3 + tanh x).
    let mut f = |p: &[f64; 2]| [p[0].exp() * p[1].sin(), p[0] * p[1].powi(3) + p[0].tanh()];
    let mut worst = 0.0_f64;
    for p in [[0.3_f64, -1.2], [1.5, 2.0], [-2.0, 0.7], [0.0, 0.0]] {
        let [x, y] = p;
        let exact = [
            [x.exp() * y.sin(), x.exp() * y.cos()],
            [y.powi(3) + 1.0 / x.cosh().powi(2), 3.0 * x * y * y],
        ];
        let num = jacobian(&mut f, &p);
        for i in 0..2 {
            for k in 0..2 {
                worst = worst.max((num[i][k] - exact[i][k]).abs());
            }
        }
    }
    // h = cbrt(eps) max(1,|x|) <= 1.2e-5 here; truncation h^2 |f'''| / 6 with |f'''| <= 50
    // gives <= 1.2e-9, rounding eps |f| / h with |f| <= 30 gives <= 1.1e-9.
    eprintln!("smooth field Jacobian: max abs error {worst:.2e}");
    assert!(worst < 3e-9, "max error {worst:e}");
}

// ---------------------------------------------------------------------------------------------
// Linear solver and Newton

#[test]
fn solve_linear_pivots_and_detects_singularity() {
    // Needs a row swap (zero leading entry).
    let a = [[0.0, 1.0, 2.0], [3.0, 0.0, 1.0], [1.0, 1.0, 0.0]];
    let x_true = [1.0, -2.0, 0.5];
    let b: [f64; 3] = core::array::from_fn(|i| (0..3).map(|k| a[i][k] * x_true[k]).sum());
    let x = solve_linear(a, b).unwrap();
    for i in 0..3 {
        // Backward-stable elimination on a well-conditioned 3x3: error a few ulps.
        assert!((x[i] - x_true[i]).abs() < 1e-14, "{x:?}");
    }
    // Rank 2 (third row = first + second): elimination leaves a last pivot at the rounding
    // level (or exactly 0), below the threshold 3 eps max|a_ij|.
    let s = [[0.1, 0.3, 0.7], [0.2, 0.6, 0.1], [0.3, 0.9, 0.8]];
    assert_eq!(solve_linear(s, [1.0, 2.0, 3.0]), None);
    assert_eq!(solve_linear([[0.0; 2]; 2], [1.0, 1.0]), None);
    assert_eq!(
        solve_linear([[f64::NAN, 0.0], [0.0, 1.0]], [1.0, 1.0]),
        None
    );
    assert_eq!(solve_linear::<f64, 0>([], []), Some([]));
}

#[test]
fn newton_converges_and_reports_failures() {
    let tol = 1e-12;
    // Rosenbrock-like system with root (1, 1); the full Newton step from far away overshoots,
    // so the line search is exercised.
    let mut f = |x: &[f64; 2]| [10.0 * (x[1] - x[0] * x[0]), 1.0 - x[0]];
    let x = newton(&mut f, [-1.2, 1.0], tol, 50).unwrap();
    let r = f(&x);
    assert!(r[0].abs() <= tol && r[1].abs() <= tol);
    assert!(
        (x[0] - 1.0).abs() < 1e-12 && (x[1] - 1.0).abs() < 1e-12,
        "{x:?}"
    );
    // x^2 + 1 has no real root; the derivative vanishes at 0.
    let mut g = |x: &[f64; 1]| [x[0] * x[0] + 1.0];
    assert_eq!(newton(&mut g, [0.0], tol, 50), Err(NewtonError::Singular));
    assert!(newton(&mut g, [0.7], tol, 50).is_err());
    let mut h = |x: &[f64; 1]| [1.0 / x[0]];
    assert_eq!(newton(&mut h, [0.0], tol, 50), Err(NewtonError::NotFinite));
    let mut k = |x: &[f64; 1]| [x[0] - 3.0];
    assert_eq!(
        newton(&mut k, [0.0], tol, 0),
        Err(NewtonError::MaxIterations)
    );
    // The difference Jacobian of x - 3 is 1 only up to rounding (~4e-16 * 3 / 1.2e-5 = 1e-10),
    // so the first step lands ~3e-10 from the root and a second one is needed.
    assert_eq!(
        newton(&mut k, [0.0], tol, 1),
        Err(NewtonError::MaxIterations)
    );
    let x = newton(&mut k, [0.0], tol, 3).unwrap();
    assert!((x[0] - 3.0).abs() <= tol);
}

// ---------------------------------------------------------------------------------------------
// Eigenvalues

/// Asserts that two spectra (both sorted by `eigenvalues`'s order) agree within `tol`;
/// returns the largest difference.
fn assert_spectrum<const N: usize>(got: &[(f64, f64); N], want: &[(f64, f64); N], tol: f64) -> f64 {
    let mut worst = 0.0_f64;
    for (g, w) in got.iter().zip(want) {
        let d = (g.0 - w.0).hypot(g.1 - w.1);
        assert!(
            d <= tol,
            "eigenvalues {got:?}, expected {want:?} (difference {d:e})"
        );
        worst = worst.max(d);
    }
    worst
}

/// Companion matrix of the monic polynomial with the given roots (conjugate pairs listed
/// together): first row `-c_{N-1}, ..., -c_0`, ones on the subdiagonal.
fn companion<const N: usize>(roots: &[(f64, f64); N]) -> [[f64; N]; N] {
    // Multiply out prod (x - z_k) with complex arithmetic; coefficients come out real.
    let mut c = [(0.0_f64, 0.0_f64); 9];
    c[0] = (1.0, 0.0); // c[k] = coefficient of x^k, degree grows as roots are added
    for (deg, &(zr, zi)) in roots.iter().enumerate() {
        for k in (0..=deg + 1).rev() {
            let lower = if k > 0 { c[k - 1] } else { (0.0, 0.0) };
            let (ar, ai) = c[k];
            c[k] = (lower.0 - (ar * zr - ai * zi), lower.1 - (ar * zi + ai * zr));
        }
    }
    let mut m = [[0.0; N]; N];
    for (k, m0k) in m[0].iter_mut().enumerate() {
        assert!(
            c[N - 1 - k].1.abs() < 1e-12,
            "roots must come in conjugate pairs"
        );
        *m0k = -c[N - 1 - k].0;
    }
    for i in 1..N {
        m[i][i - 1] = 1.0;
    }
    m
}

#[test]
fn eigenvalues_of_matrices_with_known_spectra() {
    // 2x2 rotation-dilation: a +- i b exactly (closed form, no rounding).
    let e = eigenvalues(&[[-0.3, -2.0], [2.0, -0.3]]).unwrap();
    assert_eq!(e, [(-0.3, 2.0), (-0.3, -2.0)]);
    // 2x2 with nearly cancelling real roots: 1e8 and 1e-8 (det / lambda_1 keeps the small one).
    let e = eigenvalues(&[[1e8, 1.0], [0.0, 1e-8]]).unwrap();
    assert_eq!(e[0], (1e8, 0.0));
    assert!((e[1].0 - 1e-8).abs() < 1e-22);

    // Triangular matrices: the diagonal. Upper triangular is already in Schur form (exact);
    // lower triangular goes through the Hessenberg reduction, so allow backward-stable rounding
    // eps ||A|| times eigenvalue condition numbers of a few: 1e-12 is ~1000 eps ||A||.
    let u3 = [[2.0, 7.0, -3.0], [0.0, -1.0, 4.0], [0.0, 0.0, 0.5]];
    assert_spectrum(
        &eigenvalues(&u3).unwrap(),
        &[(2.0, 0.0), (0.5, 0.0), (-1.0, 0.0)],
        0.0,
    );
    let l4 = [
        [-3.0, 0.0, 0.0, 0.0],
        [1.0, 1.0, 0.0, 0.0],
        [2.0, -1.0, 4.0, 0.0],
        [0.5, 3.0, 1.0, -0.5],
    ];
    let w = assert_spectrum(
        &eigenvalues(&l4).unwrap(),
        &[(4.0, 0.0), (1.0, 0.0), (-0.5, 0.0), (-3.0, 0.0)],
        1e-12,
    );
    eprintln!("lower-triangular 4x4: max eigenvalue error {w:.2e}");

    // Companion matrices with known roots, N = 3 .. 8. QR is backward stable, so the error is
    // ~eps ||A|| times the root's condition number; companion matrices of well-separated roots
    // of size <= 8 have condition numbers up to ~1e3-1e4 here, and ||A|| <= ~100: 1e-9 leaves a
    // margin of ~10-100 over the measured errors.
    let tol = 1e-9;
    let mut worst = 0.0_f64;
    let r3 = [(2.0, 0.0), (-1.0, 1.5), (-1.0, -1.5)];
    worst = worst.max(assert_spectrum(
        &eigenvalues(&companion(&r3)).unwrap(),
        &r3,
        tol,
    ));
    // x^4 + 2x^3 - 13x^2 - 14x + 24 = (x - 1)(x + 2)(x - 3)(x + 4).
    let c4 = [
        [-2.0, 13.0, 14.0, -24.0],
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
    ];
    assert_eq!(
        c4,
        companion(&[(1.0, 0.0), (-2.0, 0.0), (3.0, 0.0), (-4.0, 0.0)])
    );
    let r4 = [(3.0, 0.0), (1.0, 0.0), (-2.0, 0.0), (-4.0, 0.0)];
    worst = worst.max(assert_spectrum(&eigenvalues(&c4).unwrap(), &r4, tol));
    let r5 = [
        (1.0, 0.0),
        (0.5, 0.0),
        (-1.0, 2.0),
        (-1.0, -2.0),
        (-3.0, 0.0),
    ];
    worst = worst.max(assert_spectrum(
        &eigenvalues(&companion(&r5)).unwrap(),
        &r5,
        tol,
    ));
    let r8 = [
        (3.0, 0.0),
        (1.0, 0.0),
        (0.5, 0.5),
        (0.5, -0.5),
        (-1.0, 2.0),
        (-1.0, -2.0),
        (-2.0, 0.0),
        (-4.0, 0.0),
    ];
    worst = worst.max(assert_spectrum(
        &eigenvalues(&companion(&r8)).unwrap(),
        &r8,
        tol,
    ));
    eprintln!("companion matrices N = 3, 4, 5, 8: max eigenvalue error {worst:.2e}");

    // Cyclic shift (companion of x^4 - 1, and of x^8 - 2): eigenvalues of equal modulus, the
    // case where unshifted-stagnation bugs of QR show up. Roots of unity: exact up to rounding.
    let c = companion(&[(1.0, 0.0), (0.0, 1.0), (0.0, -1.0), (-1.0, 0.0)]);
    let w = assert_spectrum(
        &eigenvalues(&c).unwrap(),
        &[(1.0, 0.0), (0.0, 1.0), (0.0, -1.0), (-1.0, 0.0)],
        1e-12,
    );
    let rho = 2f64.powf(0.125);
    let s = core::f64::consts::FRAC_1_SQRT_2 * rho;
    let r8u = [
        (rho, 0.0),
        (s, s),
        (s, -s),
        (0.0, rho),
        (0.0, -rho),
        (-s, s),
        (-s, -s),
        (-rho, 0.0),
    ];
    let w = w.max(assert_spectrum(
        &eigenvalues(&companion(&r8u)).unwrap(),
        &r8u,
        1e-12,
    ));
    // x^7 - 2x = x (x^6 - 2): the pattern of nalgebra issue #611. nalgebra's double-shift QR
    // (no exceptional shifts) stagnates on this companion matrix; `eigenvalues` then retries
    // on an orthogonally similar matrix, which converges.
    let rho = 2f64.powf(1.0 / 6.0);
    let (h, q) = (0.5 * rho, 0.75f64.sqrt() * rho);
    let r7 = [
        (rho, 0.0),
        (h, q),
        (h, -q),
        (0.0, 0.0),
        (-h, q),
        (-h, -q),
        (-rho, 0.0),
    ];
    let w = w.max(assert_spectrum(
        &eigenvalues(&companion(&r7)).unwrap(),
        &r7,
        1e-12,
    ));
    eprintln!("cyclic companion matrices: max eigenvalue error {w:.2e}");

    // Unsupported input.
    assert_eq!(eigenvalues(&[[f64::NAN, 0.0], [0.0, 1.0]]), None);
    assert_eq!(
        eigenvalues(&[[0.0_f64; MAX_EIG_DIM + 1]; MAX_EIG_DIM + 1]),
        None
    );
    assert_eq!(eigenvalues::<f64, 0>(&[]), Some([]));
    assert_eq!(eigenvalues(&[[-2.5_f32]]), Some([(-2.5, 0.0)]));
}

/// Deterministic pseudo-random numbers in [-1, 1) (64-bit LCG, top bits).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// Checks the spectrum of random matrices through similarity invariants:
/// sum = trace(A), sum of squares = trace(A^2), and (for the real parts of) the product = det A.
fn check_invariants<const N: usize>(rng: &mut Lcg, trials: usize) -> f64 {
    let mut worst = 0.0_f64;
    for _ in 0..trials {
        let a: [[f64; N]; N] = core::array::from_fn(|_| core::array::from_fn(|_| rng.next()));
        let e = eigenvalues(&a).unwrap();
        // Conjugate pairs: sum and product are real.
        let (mut sr, mut si, mut s2r, mut s2i) = (0.0, 0.0, 0.0, 0.0);
        let (mut pr, mut pi) = (1.0_f64, 0.0_f64);
        for &(re, im) in &e {
            sr += re;
            si += im;
            s2r += re * re - im * im;
            s2i += 2.0 * re * im;
            (pr, pi) = (pr * re - pi * im, pr * im + pi * re);
        }
        let tr: f64 = (0..N).map(|i| a[i][i]).sum::<f64>();
        let tr2: f64 = (0..N)
            .map(|i| (0..N).map(|k| a[i][k] * a[k][i]).sum::<f64>())
            .sum();
        // det by elimination with partial pivoting (independent of the code under test).
        let mut m = a;
        let mut det = 1.0;
        for k in 0..N {
            let p = (k..N)
                .max_by(|&x, &y| m[x][k].abs().total_cmp(&m[y][k].abs()))
                .unwrap();
            if p != k {
                m.swap(p, k);
                det = -det;
            }
            det *= m[k][k];
            let pivot_row = m[k];
            for row in m[k + 1..].iter_mut() {
                let f = row[k] / pivot_row[k];
                for (x, y) in row[k..].iter_mut().zip(&pivot_row[k..]) {
                    *x -= f * y;
                }
            }
        }
        for d in [sr - tr, si, s2r - tr2, s2i, pr - det, pi] {
            worst = worst.max(d.abs());
        }
    }
    worst
}

#[test]
fn eigenvalues_of_random_matrices_satisfy_invariants() {
    // Entries in [-1, 1), N <= 8: |trace|, |trace A^2|, |det| are O(N^2) and the eigenvalues
    // O(sqrt N); backward-stable QR plus the rounding of the sums leaves errors ~1e-14. The
    // product is ill-conditioned when eigenvalues cluster near 0, but stays ~1e-13 in practice;
    // 1e-10 is a loose bound that still catches any wrong or missing eigenvalue.
    let mut rng = Lcg(42);
    let w = [
        check_invariants::<3>(&mut rng, 200),
        check_invariants::<4>(&mut rng, 200),
        check_invariants::<6>(&mut rng, 100),
        check_invariants::<8>(&mut rng, 100),
    ];
    eprintln!("random matrices N = 3, 4, 6, 8: max invariant error {w:?}");
    assert!(w.iter().all(|&x| x < 1e-10), "{w:?}");
}

#[test]
fn classification_rules() {
    let t = 1e-9;
    assert_eq!(classify(&[(-1.0, 0.0), (-2.0, 0.0)], t), Kind::StableNode);
    assert_eq!(classify(&[(-1.0, 1.0), (-1.0, -1.0)], t), Kind::StableFocus);
    // Leading eigenvalue real (slow direction) but a fast complex pair: still a node.
    assert_eq!(
        classify(&[(-0.1, 0.0), (-1.0, 5.0), (-1.0, -5.0)], t),
        Kind::StableNode
    );
    assert_eq!(classify(&[(1.0, 0.0), (2.0, 0.0)], t), Kind::UnstableNode);
    assert_eq!(
        classify(&[(1.0, 3.0), (1.0, -3.0), (0.5, 0.0)], t),
        Kind::UnstableFocus
    );
    assert_eq!(
        classify(&[(1.0, 3.0), (1.0, -3.0), (-0.5, 0.0)], t),
        Kind::Saddle
    );
    assert_eq!(
        classify(&[(1e-10, 0.0), (-1.0, 0.0)], t),
        Kind::NonHyperbolic
    );
    assert_eq!(classify(&[(f64::NAN, 0.0)], t), Kind::Unknown);
    assert_eq!(
        stability(&[(1e-10, 0.0), (-1.0, 0.0)], t),
        Stability::Marginal
    );
    assert_eq!(
        stability(&[(1e-10, 0.0), (1.0, 0.0)], t),
        Stability::Unstable
    );
    assert_eq!(
        stability(&[(-1e-3, 1.0), (-1e-3, -1.0)], t),
        Stability::Stable
    );
    assert_eq!(stability(&[(f64::NAN, 0.0)], t), Stability::Unknown);
}

// ---------------------------------------------------------------------------------------------
// Grid search mechanics

#[test]
fn find_equilibria_truncates_deduplicates_and_sorts() {
    // x' = x - x^3, y' = -y (1 + y^2): three equilibria on the x axis.
    let mut f = |s: &[f64; 2]| [s[0] - s[0].powi(3), -s[1] * (1.0 + s[1] * s[1])];
    let b = SearchBox {
        lo: [-2.0, -1.0],
        hi: [2.0, 1.0],
        points_per_dim: 10,
    };
    let all = find_equilibria::<f64, 2, 4, _>(&mut f, &b, 1e-12);
    assert!(!all.truncated);
    assert_eq!((all.starts, all.len()), (100, 3));
    let xs: Vec<f64> = all.points.iter().map(|e| e.x[0]).collect();
    assert!((xs[0] + 1.0).abs() < 1e-12 && xs[1].abs() < 1e-12 && (xs[2] - 1.0).abs() < 1e-12);
    let few = find_equilibria::<f64, 2, 2, _>(&mut f, &b, 1e-12);
    assert!(few.truncated);
    assert_eq!(few.len(), 2);
    // A box that holds only the root at x = 1 (the margin is 1e-6 of the side).
    let right = SearchBox {
        lo: [0.5, -1.0],
        hi: [1.0 + 1e-7, 1.0],
        points_per_dim: 5,
    };
    let r = find_equilibria::<f64, 2, 4, _>(&mut f, &right, 1e-12);
    assert_eq!(r.len(), 1);
    let none = SearchBox {
        points_per_dim: 0,
        ..b
    };
    let z = find_equilibria::<f64, 2, 4, _>(&mut f, &none, 1e-12);
    assert!(z.is_empty() && z.starts == 0);
}

// ---------------------------------------------------------------------------------------------
// MPR against the closed form

const MPR_TOL: f64 = 1e-12;

fn mpr(eta: f64, j: f64) -> Mpr<f64> {
    Mpr {
        eta,
        j,
        ..Mpr::default()
    }
}

/// Box holding every fixed point used below: r in [1e-4, 3], v in [-6, 2].
fn mpr_box(points_per_dim: usize) -> SearchBox<f64, 2> {
    SearchBox {
        lo: [1e-4, -6.0],
        hi: [3.0, 2.0],
        points_per_dim,
    }
}

fn mpr_count(eta: f64, j: f64) -> usize {
    equilibria_of_model::<f64, _, 2, 8>(&mpr(eta, j), 0.0, &mpr_box(16), MPR_TOL).len()
}

#[test]
fn mpr_equilibria_match_closed_form() {
    // (eta, J, expected count): inside the bistable region (3) and outside it (1), above and
    // below the cusp (J_c ~ 7.80). Bistable windows (closed form, see the fold test):
    // J = 10: [-2.64, -2.24], J = 15: [-5.74, -3.14], J = 20: [-10.16, -3.90].
    let cases = [
        (-5.0, 15.0, 3),
        (-4.0, 15.0, 3),
        (-3.0, 15.0, 1),
        (-8.0, 15.0, 1),
        (-6.0, 20.0, 3),
        (-9.5, 20.0, 3),
        (-12.0, 20.0, 1),
        (-2.3, 10.0, 3),
        (-1.0, 10.0, 1),
        (-3.0, 10.0, 1),
        (-5.0, 5.0, 1),
        (0.5, 5.0, 1),
        (-1.7, 7.0, 1),
    ];
    let b = mpr_box(20);
    let mut worst = 0.0_f64;
    for &(eta, j, n) in &cases {
        let m = mpr(eta, j);
        let exact = fixed_points(&m, 0.0);
        assert_eq!(
            exact.len(),
            n,
            "closed form at eta = {eta}, J = {j}: {exact:?}"
        );
        for x in &exact {
            assert!(x[0] > b.lo[0] && x[0] < b.hi[0] && x[1] > b.lo[1] && x[1] < b.hi[1]);
        }
        let found = equilibria_of_model::<f64, _, 2, 8>(&m, 0.0, &b, MPR_TOL);
        assert!(!found.truncated);
        assert_eq!(found.len(), n, "eta = {eta}, J = {j}: {:?}", found.points);
        // Both sorted by r. The closed form bisects the quartic to rounding (~1e-16 relative);
        // Newton stops at |f| <= 1e-12 with ||J^-1|| <= ~10 at these (hyperbolic) points, so
        // 1e-10 bounds the difference; the brief asks for 1e-8.
        for (e, x) in found.points.iter().zip(&exact) {
            let d = (e.x[0] - x[0]).abs().max((e.x[1] - x[1]).abs());
            assert!(d < 1e-8, "eta = {eta}, J = {j}: {:?} vs {x:?}", e.x);
            worst = worst.max(d);
        }
        // With three equilibria the middle one is the saddle, the outer ones are stable.
        let kinds: Vec<Kind> = found.points.iter().map(|e| e.kind).collect();
        if n == 3 {
            assert_eq!(kinds[1], Kind::Saddle);
            assert_eq!(found.points[0].stability, Stability::Stable);
            assert_eq!(found.points[2].stability, Stability::Stable);
        } else {
            assert_eq!(found.points[0].stability, Stability::Stable, "{kinds:?}");
        }
    }
    eprintln!("MPR equilibria vs closed form: max |difference| {worst:.2e}");
    assert!(worst < 1e-10);
}

#[test]
fn mpr_default_parameters_low_node_saddle_high_focus() {
    let m = Mpr::<f64>::default();
    let found = equilibria_of_model::<f64, _, 2, 8>(&m, 0.0, &mpr_box(20), MPR_TOL);
    for e in &found.points {
        eprintln!(
            "MPR default: x = {:?}, {}, eigenvalues {:?}",
            e.x, e.kind, e.eigenvalues
        );
    }
    let kinds: Vec<Kind> = found.points.iter().map(|e| e.kind).collect();
    assert_eq!(kinds.len(), 3);
    // Low state: eigenvalues -2.45 and -5.40 (real): a node. High state: -0.31 +- 3.32 i.
    assert!(matches!(kinds[0], Kind::StableNode | Kind::StableFocus));
    assert_eq!(kinds[1..], [Kind::Saddle, Kind::StableFocus]);
    // Eigenvalues of the analytic Jacobian at the closed-form point, in closed form: the
    // trace is 4v and the determinant 4v^2 - 2r(J - 2 pi^2 r) (tau = 1), so at the high focus
    // re = 2v exactly. The difference Jacobian is exact up to rounding (~1e-9, see the
    // Jacobian test), which bounds the eigenvalue error for these well-separated eigenvalues.
    let exact = fixed_points(&m, 0.0);
    let v = exact[2][1];
    let e = found.points[2].eigenvalues;
    assert!((e[0].0 - 2.0 * v).abs() < 1e-8, "{e:?} vs re = {}", 2.0 * v);
    let pi2 = core::f64::consts::PI.powi(2);
    let det = 4.0 * v * v - 2.0 * exact[2][0] * (15.0 - 2.0 * pi2 * exact[2][0]);
    assert!((e[0].1 - (det - 4.0 * v * v).sqrt()).abs() < 1e-8);
}

#[test]
fn mpr_in_f32_finds_the_same_three_equilibria() {
    // f32 rounding of f is ~25 * 6e-8 = 1.5e-6, so the residual tolerance is 1e-4; the root
    // error is then ~||J^-1|| 1e-4 <= 1e-3.
    let m = Mpr::<f32>::default();
    let b = SearchBox {
        lo: [1e-4_f32, -6.0],
        hi: [3.0, 2.0],
        points_per_dim: 16,
    };
    let found = equilibria_of_model::<f32, _, 2, 8>(&m, 0.0, &b, 1e-4);
    let exact = fixed_points(&Mpr::<f64>::default(), 0.0);
    assert_eq!(found.len(), 3);
    let mut worst = 0.0_f64;
    for (e, x) in found.points.iter().zip(&exact) {
        worst = worst.max(
            (e.x[0] as f64 - x[0])
                .abs()
                .max((e.x[1] as f64 - x[1]).abs()),
        );
    }
    eprintln!("MPR in f32: max |difference| to the f64 closed form {worst:.2e}");
    assert!(worst < 1e-3);
    let kinds: Vec<Kind> = found.points.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [Kind::StableNode, Kind::Saddle, Kind::StableFocus]);
}

/// Fold etas of the closed form at coupling `j` (tau = 1, Delta = 1): the two solutions `r` of
/// `J(r) = j` on either side of the cusp's `r_c` (by bisection; `J(r)` falls on `(0, r_c)`
/// and rises beyond), mapped to `eta(r)`. Returns `(eta on the high-r branch, eta on the low-r
/// branch)`, i.e. (lower eta, upper eta) of the bistable window, with the two `r`.
fn closed_form_folds(j: f64) -> [(f64, f64); 2] {
    let rc = cusp(1.0, 1.0).r;
    let solve = |mut a: f64, mut b: f64| {
        let fa = fold_point(1.0, 1.0, a).j - j;
        for _ in 0..200 {
            let m = 0.5 * (a + b);
            if ((fold_point(1.0, 1.0, m).j - j) < 0.0) == (fa < 0.0) {
                a = m;
            } else {
                b = m;
            }
        }
        let p = fold_point(1.0, 1.0, 0.5 * (a + b));
        (p.eta, p.r)
    };
    [solve(rc, 100.0), solve(1e-4, rc)]
}

/// Newton on the augmented system `(f(r, v; eta), det J(r, v; eta)) = 0` in `(r, v, eta)`,
/// with `det J` from the difference Jacobian: a fold (saddle-node) point at coupling `j`.
fn fold_by_newton(j: f64, start: [f64; 3]) -> [f64; 3] {
    let mut g = |y: &[f64; 3]| {
        let m = mpr(y[2], j);
        let mut f = |x: &[f64; 2]| m.deriv(x, 0.0);
        let d = f(&[y[0], y[1]]);
        let a = jacobian(&mut f, &[y[0], y[1]]);
        [d[0], d[1], a[0][0] * a[1][1] - a[0][1] * a[1][0]]
    };
    // det J comes from difference quotients; their rounding error (measured in the Jacobian
    // test: ~0.06 of the bound 8 eps s / h, i.e. ~1e-11 per entry) sets a noise floor near
    // 1e-11 in det: a tolerance of 1e-11 stalls at J = 15, 1e-10 passes. 1e-9 keeps a factor
    // 100 above the floor.
    newton(&mut g, start, 1e-9, 50).unwrap_or_else(|e| panic!("fold Newton at J = {j}: {e}"))
}

#[test]
fn mpr_folds_match_closed_form() {
    let c = cusp(1.0, 1.0);
    eprintln!(
        "closed-form cusp: eta_c = {:.6}, J_c = {:.6}, r_c = {:.6}",
        c.eta, c.j, c.r
    );
    assert!((c.eta + 3f64.sqrt()).abs() < 1e-12 && (c.j - 7.80).abs() < 0.01);
    let mut worst_bisect = 0.0_f64;
    let mut worst_newton = 0.0_f64;
    let mut worst_r = 0.0_f64;
    for j in [10.0, 15.0, 20.0] {
        // 1. Scan eta on a grid; the count goes 1 -> 3 -> 1.
        let grid: Vec<f64> = (0..=56).map(|k| -14.0 + 0.25 * k as f64).collect();
        let counts: Vec<usize> = grid.iter().map(|&eta| mpr_count(eta, j)).collect();
        assert!(
            counts.iter().all(|&n| n == 1 || n == 3),
            "J = {j}: counts {counts:?}"
        );
        let changes: Vec<usize> = (1..grid.len())
            .filter(|&k| counts[k] != counts[k - 1])
            .collect();
        assert_eq!(changes.len(), 2, "J = {j}: counts {counts:?}");
        let exact = closed_form_folds(j);
        for (side, &k) in changes.iter().enumerate() {
            // 2. Bisect on the count to 1e-9 in eta.
            let (mut a, mut b) = (grid[k - 1], grid[k]);
            let three_at_a = counts[k - 1] == 3;
            while b - a > 1e-9 {
                let m = 0.5 * (a + b);
                if (mpr_count(m, j) == 3) == three_at_a {
                    a = m;
                } else {
                    b = m;
                }
            }
            let eta_bisect = 0.5 * (a + b);
            // 3. Independently, Newton on the augmented system, started on the scan grid point
            //    on the bistable side (up to 0.25 from the fold) at the midpoint of the saddle
            //    and its nearest neighbour.
            let eta3 = if three_at_a { grid[k - 1] } else { grid[k] };
            let eq = equilibria_of_model::<f64, _, 2, 8>(&mpr(eta3, j), 0.0, &mpr_box(16), MPR_TOL);
            assert_eq!(eq.len(), 3);
            let s = eq.points[1].x;
            let dist = |p: [f64; 2]| (p[0] - s[0]).hypot(p[1] - s[1]);
            let other = if dist(eq.points[0].x) < dist(eq.points[2].x) {
                eq.points[0].x
            } else {
                eq.points[2].x
            };
            let y = fold_by_newton(j, [0.5 * (s[0] + other[0]), 0.5 * (s[1] + other[1]), eta3]);
            let (eta_exact, r_exact) = exact[side];
            let (db, dn, dr) = (
                (eta_bisect - eta_exact).abs(),
                (y[2] - eta_exact).abs(),
                (y[0] - r_exact).abs(),
            );
            eprintln!(
                "J = {j}: fold eta closed form {eta_exact:.12} (r = {r_exact:.8}); count bisection \
                 {eta_bisect:.12} (diff {db:.1e}); augmented Newton {:.12} (diff {dn:.1e}, r diff {dr:.1e})",
                y[2]
            );
            worst_bisect = worst_bisect.max(db);
            worst_newton = worst_newton.max(dn);
            worst_r = worst_r.max(dr);
        }
    }
    eprintln!(
        "fold eta max |numeric - closed form|: count bisection {worst_bisect:.1e}, augmented \
         Newton {worst_newton:.1e}; fold r: {worst_r:.1e}"
    );
    // Count bisection: the two merging equilibria are ~sqrt(|eta - eta_fold|) apart and are
    // told apart down to ~1e-6 (find_equilibria's merge distance), so counts are right to
    // |eta - eta_fold| ~ 1e-11 or so, plus the 1e-9 bisection width: 1e-8 is a safe bound.
    assert!(worst_bisect < 1e-8);
    // Augmented Newton stops with |F|_inf <= 1e-9; the augmented Jacobian is well conditioned
    // at a (non-degenerate) fold, so (r, v, eta) is within a few 1e-9 of the exact fold.
    assert!(worst_newton < 1e-8);
    // r likewise (the closed-form r is bisected to rounding); 1e-7 is generous.
    assert!(worst_r < 1e-7);
}

#[test]
fn mpr_single_equilibrium_below_the_cusp() {
    // J slightly below J_c ~ 7.80: eta(r) on the fixed-point curve is monotone, one equilibrium
    // for every eta. Scan eta finely through the cusp region (eta_c = -1.73) and coarsely
    // elsewhere.
    let j = 0.98 * cusp(1.0, 1.0).j;
    let mut etas: Vec<f64> = (0..=800).map(|k| -4.0 + 0.005 * k as f64).collect();
    etas.extend((0..=40).map(|k| -12.0 + 0.2 * k as f64));
    for &eta in &etas {
        assert_eq!(
            fixed_points(&mpr(eta, j), 0.0).len(),
            1,
            "closed form at eta = {eta}"
        );
        assert_eq!(mpr_count(eta, j), 1, "eta = {eta}, J = {j}");
    }
    // Just above the cusp the bistable window is narrow, but present: J = 8.5.
    let window = closed_form_folds(8.5);
    let mid = 0.5 * (window[0].0 + window[1].0);
    eprintln!(
        "J = 8.5: closed-form window eta in [{:.6}, {:.6}]",
        window[0].0, window[1].0
    );
    assert_eq!(mpr_count(mid, 8.5), 3);
}

// ---------------------------------------------------------------------------------------------
// Chen-Campbell

fn cc_box() -> SearchBox<f64, 4> {
    // r, v, w, s: the equilibrium has w = b v + w_jump r / a and s = tau_s s_jump r.
    SearchBox {
        lo: [0.0, -1.0, -0.1, 0.0],
        hi: [0.5, 1.5, 1.5, 1.5],
        points_per_dim: 6,
    }
}

fn cc_equilibria(eta: f64) -> Vec<Equilibrium<f64, 4>> {
    let m = ChenCampbell::<f64> {
        eta,
        ..Default::default()
    };
    let found = equilibria_of_model::<f64, _, 4, 8>(&m, 0.0, &cc_box(), 1e-13);
    assert!(!found.truncated);
    found.points.to_vec()
}

#[test]
fn cc_tonic_equilibrium_is_stable() {
    let eq = cc_equilibria(0.25);
    assert_eq!(eq.len(), 1);
    let e = &eq[0];
    eprintln!(
        "CC eta = 0.25: x = {:?}, {}, eigenvalues {:?}",
        e.x, e.kind, e.eigenvalues
    );
    assert_eq!(e.stability, Stability::Stable);
    // Leading pair -0.0377 +- 0.0371 i: damped oscillations towards tonic firing.
    assert_eq!(e.kind, Kind::StableFocus);
}

#[test]
fn cc_bursting_equilibrium_is_unstable() {
    let eq = cc_equilibria(0.12);
    assert_eq!(eq.len(), 1);
    let e = &eq[0];
    eprintln!(
        "CC eta = 0.12: x = {:?}, {}, eigenvalues {:?}",
        e.x, e.kind, e.eigenvalues
    );
    assert_eq!(e.stability, Stability::Unstable);
    // What the numerics show at eta = 0.12: the two unstable eigenvalues are real
    // (about 0.0948 and 0.0124) and the stable pair complex (-0.363 +- 0.510 i), so in 4-D the
    // point is a saddle with a 2-D unstable manifold, not a focus. The unstable pair is complex
    // only near the Hopf points (see `cc_hopf_points_bracket_the_bursting_range`).
    let unstable: Vec<_> = e.eigenvalues.iter().filter(|z| z.0 > 0.0).collect();
    assert_eq!(unstable.len(), 2);
    assert!(unstable.iter().all(|z| z.1 == 0.0));
    assert_eq!(e.kind, Kind::Saddle);
}

#[test]
fn cc_hopf_points_bracket_the_bursting_range() {
    // Follow the unique equilibrium in eta (Newton from the previous point) and bisect the sign
    // of the largest real part. At each crossing the critical eigenvalues must be a complex
    // pair (Hopf), not a real one (fold).
    let eq_at = |eta: f64, guess: [f64; 4]| {
        let m = ChenCampbell::<f64> {
            eta,
            ..Default::default()
        };
        let mut f = |x: &[f64; 4]| m.deriv(x, 0.0);
        let x = newton(&mut f, guess, 1e-13, 50).unwrap();
        Equilibrium::at(&mut f, x)
    };
    let mut x = cc_equilibria(0.0)[0].x;
    let mut prev = (0.0, eq_at(0.0, x));
    let mut hopf = Vec::new();
    for k in 1..=40 {
        let eta = 0.01 * k as f64;
        let e = eq_at(eta, x);
        if (e.eigenvalues[0].0 > 0.0) != (prev.1.eigenvalues[0].0 > 0.0) {
            let (mut a, mut b) = (prev.0, eta);
            let mut xm = x;
            let mut em = e;
            while b - a > 1e-12 {
                let m = 0.5 * (a + b);
                em = eq_at(m, xm);
                xm = em.x;
                if (em.eigenvalues[0].0 > 0.0) == (prev.1.eigenvalues[0].0 > 0.0) {
                    a = m;
                } else {
                    b = m;
                }
            }
            eprintln!(
                "CC Hopf at eta = {:.9}: critical eigenvalues {:?}",
                0.5 * (a + b),
                &em.eigenvalues[..2]
            );
            // Re ~ 0 at the bisected point; imaginary part far from 0: a Hopf bifurcation.
            assert!(em.eigenvalues[0].0.abs() < 1e-6 && em.eigenvalues[0].1.abs() > 0.01);
            hopf.push(0.5 * (a + b));
        }
        x = e.x;
        prev = (eta, e);
    }
    assert_eq!(hopf.len(), 2, "{hopf:?}");
    assert!(
        hopf[0] < 0.12 && 0.12 < hopf[1] && hopf[1] < 0.25,
        "{hopf:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Reduced Wong-Wang

#[test]
fn rww_unique_stable_equilibrium_is_the_long_time_limit() {
    let m = Rww::<f64>::default();
    let b = SearchBox {
        lo: [0.0, 0.0],
        hi: [1.0, 1.0],
        points_per_dim: 20,
    };
    let found = equilibria_of_model::<f64, _, 2, 8>(&m, 0.0, &b, 1e-15);
    assert_eq!(found.len(), 1);
    let e = found.points[0];
    eprintln!(
        "RWW: x = {:?}, {}, eigenvalues {:?} (1/ms)",
        e.x, e.kind, e.eigenvalues
    );
    assert_eq!(e.stability, Stability::Stable);
    // Noise-free RK4 from the model's initial state for 10 s (1e5 steps of 0.1 ms).
    let mut x = m.initial_state();
    let dt = 0.1;
    for k in 0..100_000 {
        x = rk4(
            &mut |_t, y: &[f64; 2]| m.deriv(y, 0.0),
            k as f64 * dt,
            &x,
            dt,
        );
    }
    let d = (x[0] - e.x[0]).abs().max((x[1] - e.x[1]).abs());
    eprintln!("RWW: |x(10 s) - equilibrium| = {d:.1e}");
    // An equilibrium of the ODE is a fixed point of the RK4 map, and the slowest eigenvalue
    // (-0.0060 / ms) shrinks the initial offset (< 0.1) by e^-60 over 10 s; what is left is
    // the rounding of the last steps (~eps |x| per step, contracted), and the Newton error
    // (|f| <= 1e-15 with ||J^-1|| ~ 170 ms: <= 2e-13). 1e-12 bounds both.
    assert!(d < 1e-12, "{x:?} vs {:?}", e.x);
}
