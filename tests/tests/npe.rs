//! Neural posterior estimation against posteriors known exactly: a linear-Gaussian problem
//! with a conjugate prior (closed-form mean and covariance), a ring-shaped posterior under a
//! bounded prior (evaluated on a grid), simulation-based calibration, and determinism; for the
//! masked autoregressive flow (sbi's default) and the neural spline flow.

use ndarray::Array2;
use nmm::infer::check::CHI2_9;
use nmm::infer::{Estimator, Posterior, Prior, Settings, c2st, check, standard_normal, train};
use nmm::progress::Silent;

/// Prior N((0, 1), diag(1, 2^2)); x = A theta + N(0, 0.5^2 I), three features.
const A: [[f64; 2]; 3] = [[1.0, 0.5], [0.3, -1.0], [0.8, 0.8]];
const SIGMA: f64 = 0.5;
const MU0: [f64; 2] = [0.0, 1.0];
const SD0: [f64; 2] = [1.0, 2.0];

fn linear_prior() -> Prior {
    Prior::from_toml_str(
        "[[param]]\nname = \"a\"\nnormal = [0, 1]\n[[param]]\nname = \"b\"\nnormal = [1, 2]\n",
    )
    .unwrap()
}

fn simulate_linear(n: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let mut rng = nmm_core::rng::stream(seed, 0);
    let mut theta = Array2::zeros((n, 2));
    let mut x = Array2::zeros((n, 3));
    for r in 0..n {
        for j in 0..2 {
            theta[[r, j]] = MU0[j] + SD0[j] * standard_normal(&mut rng);
        }
        for k in 0..3 {
            x[[r, k]] = A[k][0] * theta[[r, 0]]
                + A[k][1] * theta[[r, 1]]
                + SIGMA * standard_normal(&mut rng);
        }
    }
    (theta, x)
}

/// The exact posterior: precision P = S0^-1 + A^T A / s^2, mean P^-1 (S0^-1 mu0 + A^T x / s^2).
#[allow(clippy::needless_range_loop)] // i, j, k index A, the prior and the result alike
fn exact_linear(x: &[f64; 3]) -> ([f64; 2], [[f64; 2]; 2]) {
    let mut p = [[0.0; 2]; 2];
    let mut b = [0.0; 2];
    for i in 0..2 {
        p[i][i] += 1.0 / (SD0[i] * SD0[i]);
        b[i] += MU0[i] / (SD0[i] * SD0[i]);
        for j in 0..2 {
            for k in 0..3 {
                p[i][j] += A[k][i] * A[k][j] / (SIGMA * SIGMA);
            }
        }
        for k in 0..3 {
            b[i] += A[k][i] * x[k] / (SIGMA * SIGMA);
        }
    }
    let det = p[0][0] * p[1][1] - p[0][1] * p[1][0];
    let c = [
        [p[1][1] / det, -p[0][1] / det],
        [-p[1][0] / det, p[0][0] / det],
    ];
    let m = [
        c[0][0] * b[0] + c[0][1] * b[1],
        c[1][0] * b[0] + c[1][1] * b[1],
    ];
    (m, c)
}

/// `n` draws of N(m + shift sd, c) (Cholesky factor of the 2 x 2 covariance).
fn gaussian_draws(m: [f64; 2], c: [[f64; 2]; 2], shift: f64, n: usize, seed: u64) -> Array2<f64> {
    let l00 = c[0][0].sqrt();
    let l10 = c[1][0] / l00;
    let l11 = (c[1][1] - l10 * l10).sqrt();
    let mut rng = nmm_core::rng::stream(seed, 0);
    let mut out = Array2::zeros((n, 2));
    for mut row in out.rows_mut() {
        let (z0, z1) = (standard_normal(&mut rng), standard_normal(&mut rng));
        row[0] = m[0] + shift * l00 + l00 * z0;
        row[1] = m[1] + shift * c[1][1].sqrt() + l10 * z0 + l11 * z1;
    }
    out
}

fn moments(s: &Array2<f64>) -> ([f64; 2], [[f64; 2]; 2]) {
    let n = s.nrows() as f64;
    let m = [s.column(0).sum() / n, s.column(1).sum() / n];
    let mut c = [[0.0; 2]; 2];
    for row in s.rows() {
        for i in 0..2 {
            for j in 0..2 {
                c[i][j] += (row[i] - m[i]) * (row[j] - m[j]) / (n - 1.0);
            }
        }
    }
    (m, c)
}

fn sbi_defaults() -> Settings {
    // sbi's defaults (MAF, 50 hidden, 5 transforms, its training rules), seed 5.
    Settings {
        seed: 5,
        ..Settings::default()
    }
}

fn linear_posterior_of(estimator: Estimator) -> Posterior {
    let (theta, x) = simulate_linear(20_000, 1);
    let s = Settings {
        estimator,
        ..sbi_defaults()
    };
    train(theta.view(), x.view(), &linear_prior(), &s, &Silent).unwrap()
}

fn linear_posterior() -> Posterior {
    linear_posterior_of(Estimator::Maf)
}

#[test]
fn linear_gaussian_posterior_mean_and_covariance() {
    linear_gaussian_against_exact(Estimator::Maf);
}

#[test]
fn linear_gaussian_posterior_mean_and_covariance_with_splines() {
    linear_gaussian_against_exact(Estimator::Nsf);
}

fn linear_gaussian_against_exact(estimator: Estimator) {
    let post = linear_posterior_of(estimator);
    eprintln!(
        "{estimator:?}: trained {} epochs (best {}) in {:.1} s, val loss {:.4}",
        post.history.val.len(),
        post.history.best_epoch,
        post.history.seconds,
        post.history.val[post.history.best_epoch - 1]
    );
    // Observations from the simulator (typical ones; an x far from every training pair asks
    // the flow to extrapolate).
    let (_, xs) = simulate_linear(3, 99);
    for xo in xs.rows() {
        let xo = [xo[0], xo[1], xo[2]];
        let (m, c) = exact_linear(&xo);
        let s = post.sample(&xo, 20_000, 3).unwrap();
        assert_eq!(s.acceptance, 1.0);
        let (mh, ch) = moments(&s.theta);
        let sd = [c[0][0].sqrt(), c[1][1].sqrt()];
        eprintln!("x_o {xo:?}: mean {mh:?} vs {m:?}; cov {ch:?} vs {c:?}");
        for i in 0..2 {
            // Monte Carlo error of the mean of 2e4 draws is 0.007 sd; the rest is the fit's
            // error with 5400 training pairs: 0.1 sd (a tenth of the posterior's width).
            assert!(
                (mh[i] - m[i]).abs() < 0.15 * sd[i],
                "x_o {xo:?}, mean {i}: {} vs exact {}",
                mh[i],
                m[i]
            );
            for j in 0..2 {
                // Covariances within 20 % of the product of the sds (Monte Carlo: 1 %). A
                // 7 % error in a posterior sd (14 % in its variance) costs only ~0.005 nats of
                // expected log-density, below what early stopping resolves (the validation
                // loss's sampling sd with 2,000 pairs is ~0.02 nats), so the fit cannot be held
                // tighter at this size. sbi's own spline flow fits this Gaussian less well:
                // on this problem (benches/peers/sbi_linear.py, 20,000 pairs) it ends 0.012 and
                // 0.017 nats of validation loss above its MAF (seeds 1 and 2), as nmm's does
                // (0.017), and its variance of theta_2 at the second x_o is 0.219 against the
                // exact 0.157 (39 % of the variance; nmm's: 35 %). Hence 50 % for splines.
                let tol = match estimator {
                    Estimator::Maf => 0.2,
                    Estimator::Nsf => 0.5,
                };
                assert!(
                    (ch[i][j] - c[i][j]).abs() < tol * sd[i] * sd[j],
                    "x_o {xo:?}, cov {i}{j}: {} vs exact {}",
                    ch[i][j],
                    c[i][j]
                );
            }
        }
        // C2ST against draws of the exact posterior: a fit error of 0.1 sd in the mean and
        // 7 % in the sds has a Bayes accuracy of about 0.52-0.53; 0.6 leaves room for the
        // score's sampling sd (0.008 over 4,000 points) and the k-NN's bias. The negative
        // control, the exact posterior moved by 1.5 sd in each parameter, must score above
        // 0.65 (its Bayes accuracy is at least Phi(0.75) = 0.77).
        let npe = s.theta.slice(ndarray::s![..2000, ..]).to_owned();
        let exact = gaussian_draws(m, c, 0.0, 2000, 11);
        let score = c2st(npe.view(), exact.view(), 1).unwrap();
        let moved = gaussian_draws(m, c, 1.5, 2000, 12);
        let control = c2st(exact.view(), moved.view(), 1).unwrap();
        eprintln!("C2ST {score:.3} (control, 1.5 sd off: {control:.3})");
        assert!(
            score < 0.6 && control > 0.65,
            "C2ST {score}, control {control}"
        );
        // The density is normalised and matches the exact Gaussian at the posterior mean to
        // within the same fit error (0.1 sd of mean error changes log N by ~0.005, 10 % of
        // covariance changes the log-determinant by up to ~0.1; 0.15 nats). For splines 0.3:
        // sbi's spline flow's covariance above (determinant 1.46 times the exact one) puts
        // its log q at the mean 0.19 nats low.
        let lp = post.log_prob(ndarray::arr2(&[m]).view(), &xo).unwrap()[0];
        let det = c[0][0] * c[1][1] - c[0][1] * c[1][0];
        let exact = -(2.0 * std::f64::consts::PI).ln() - 0.5 * det.ln();
        let tol = match estimator {
            Estimator::Maf => 0.15,
            Estimator::Nsf => 0.3,
        };
        assert!(
            (lp - exact).abs() < tol,
            "log q at the mean {lp} vs {exact}"
        );
    }
}

/// Banana: theta uniform on [-3, 3]^2, x = (theta_1, theta_2 - theta_1^2) + N(0, 0.5^2 I).
/// The posterior is theta_1 ~ N(x_1, 0.25), theta_2 | theta_1 ~ N(x_2 + theta_1^2, 0.25), both
/// cut to the prior's box: curved, skewed, and truncated where theta_2 reaches 3.
fn simulate_banana(n: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let mut rng = nmm_core::rng::stream(seed, 0);
    let prior = banana_prior();
    let mut theta = Array2::zeros((n, 2));
    let mut x = Array2::zeros((n, 2));
    let mut t = [0.0; 2];
    for r in 0..n {
        prior.sample_into(&mut rng, &mut t);
        theta[[r, 0]] = t[0];
        theta[[r, 1]] = t[1];
        x[[r, 0]] = t[0] + 0.5 * standard_normal(&mut rng);
        x[[r, 1]] = t[1] - t[0] * t[0] + 0.5 * standard_normal(&mut rng);
    }
    (theta, x)
}

fn banana_prior() -> Prior {
    Prior::from_toml_str(
        "[[param]]\nname = \"a\"\nuniform = [-3, 3]\n[[param]]\nname = \"b\"\nuniform = [-3, 3]\n",
    )
    .unwrap()
}

/// Mean, sd of each parameter, their correlation and theta_2's skewness, from weights on
/// points.
fn summary(points: impl Iterator<Item = ([f64; 2], f64)>) -> [f64; 6] {
    let (mut w, mut m1, mut m2) = (0.0, [0.0; 2], [[0.0; 2]; 2]);
    let mut m3 = 0.0;
    let pts: Vec<([f64; 2], f64)> = points.collect();
    for (p, q) in &pts {
        w += q;
        for i in 0..2 {
            m1[i] += q * p[i];
        }
    }
    let mean = [m1[0] / w, m1[1] / w];
    for (p, q) in &pts {
        for i in 0..2 {
            for j in 0..2 {
                m2[i][j] += q * (p[i] - mean[i]) * (p[j] - mean[j]) / w;
            }
        }
        m3 += q * (p[1] - mean[1]).powi(3) / w;
    }
    let sd = [m2[0][0].sqrt(), m2[1][1].sqrt()];
    [
        mean[0],
        mean[1],
        sd[0],
        sd[1],
        m2[0][1] / (sd[0] * sd[1]),
        m3 / sd[1].powi(3),
    ]
}

#[test]
fn banana_posterior_under_a_bounded_prior() {
    banana_against_quadrature(Estimator::Maf);
}

#[test]
fn banana_posterior_under_a_bounded_prior_with_splines() {
    banana_against_quadrature(Estimator::Nsf);
}

fn banana_against_quadrature(estimator: Estimator) {
    let (theta, x) = simulate_banana(20_000, 2);
    let settings = Settings {
        seed: 9,
        estimator,
        ..sbi_defaults()
    };
    let post = train(theta.view(), x.view(), &banana_prior(), &settings, &Silent).unwrap();
    for xo in [[0.5, 0.5], [0.0, 1.0]] {
        // Exact moments by the midpoint rule on a 1200 x 1200 grid over the prior's box (step
        // 0.005 against a posterior sd of 0.5: errors far below the tolerances).
        let g = 1200;
        let h = 6.0 / g as f64;
        let grid = (0..g * g).map(|k| {
            let (a, b) = (
                -3.0 + ((k / g) as f64 + 0.5) * h,
                -3.0 + ((k % g) as f64 + 0.5) * h,
            );
            let (u, v) = (xo[0] - a, xo[1] - (b - a * a));
            ([a, b], (-(u * u + v * v) / (2.0 * 0.25)).exp())
        });
        let exact = summary(grid);
        let s = post.sample(&xo, 20_000, 4).unwrap();
        assert!(s.theta.iter().all(|v| v.abs() <= 3.0));
        let got = summary(s.theta.rows().into_iter().map(|r| ([r[0], r[1]], 1.0)));
        eprintln!(
            "{estimator:?} banana x_o {xo:?}: (mean, mean, sd, sd, corr, skew b) {got:.3?} vs exact {exact:.3?}, acceptance {:.3}, epochs {}",
            s.acceptance,
            post.history.val.len()
        );
        // Means within 0.15 sd and sds within 10 % (as in the linear-Gaussian test: the fit's
        // error with 18,000 training pairs; Monte Carlo errors of 2e4 draws are under 1 %);
        // the correlation (the banana's bend) within 0.1, and theta_2's skewness (0.4 and
        // more: the curvature) within 0.3, which a Gaussian fit (skewness 0) fails.
        for i in 0..2 {
            assert!(
                (got[i] - exact[i]).abs() < 0.15 * exact[2 + i],
                "mean {i}: {got:?} vs {exact:?}"
            );
            assert!(
                (got[2 + i] / exact[2 + i] - 1.0).abs() < 0.1,
                "sd {i}: {got:?} vs {exact:?}"
            );
        }
        assert!(
            (got[4] - exact[4]).abs() < 0.1,
            "correlation: {got:?} vs {exact:?}"
        );
        assert!(
            (got[5] - exact[5]).abs() < 0.3,
            "skewness: {got:?} vs {exact:?}"
        );
    }
}

#[test]
fn simulation_based_calibration_and_coverage_of_the_linear_gaussian_posterior() {
    let post = linear_posterior();
    let (theta, x) = simulate_linear(400, 77);
    let c = check(&post, theta.view(), x.view(), 99, 1000, &Silent).unwrap();
    // Binomial sd of a coverage fraction over 400 simulations is at most 0.025: 3 sd = 0.075.
    let tol = 0.075;
    for j in 0..2 {
        let chi2 = c.rank_chi2(j);
        eprintln!(
            "SBC parameter {j}: bins {:?}, chi2 {chi2:.2}; coverage 50 % {:.3}, 90 % {:.3}",
            c.rank_histogram(j),
            c.marginal_coverage(j, 0.5),
            c.marginal_coverage(j, 0.9)
        );
        // Significance 0.001 per parameter (CHI2_9[1] is the 0.999 quantile, 9 dof).
        assert!(chi2 < CHI2_9[1], "parameter {j}: chi2 {chi2}");
        for level in [0.5, 0.9] {
            assert!((c.marginal_coverage(j, level) - level).abs() < tol);
        }
    }
    for level in [0.5, 0.9] {
        let cov = c.joint_coverage(level);
        eprintln!("joint HPD coverage at {level}: {cov:.3}");
        assert!((cov - level).abs() < tol, "joint coverage {cov} at {level}");
    }
    // TARP: the fractions are uniform (KS test at significance 0.001).
    let (ks, p) = c.tarp_ks();
    eprintln!(
        "TARP: KS {ks:.3}, p {p:.3}; coverage 50 % {:.3}, 90 % {:.3}",
        c.tarp_coverage(0.5),
        c.tarp_coverage(0.9)
    );
    assert!(p > 1e-3, "TARP KS {ks}, p {p}");
    // The z-scores of a calibrated Gaussian posterior are half-normal: mean sqrt(2/pi) = 0.80
    // (sampling sd over 400: 0.03); shrinkage is 1 - var_post / var_prior exactly here.
    let (_, cov) = exact_linear(&[0.0; 3]);
    for j in 0..2 {
        let z = c.zscore.column(j).mean().unwrap();
        let sh = c.shrinkage.column(j).mean().unwrap();
        let exact = 1.0 - cov[j][j] / (SD0[j] * SD0[j]);
        eprintln!("parameter {j}: mean z-score {z:.3}, shrinkage {sh:.4} vs {exact:.4}");
        assert!((z - 0.798).abs() < 0.1, "mean z-score {z}");
        assert!((sh - exact).abs() < 0.05, "shrinkage {sh} vs {exact}");
    }
    // The same diagnostics catch a biased posterior: true values moved by half a posterior sd
    // (the posteriors then sit 0.5 sd off every truth).
    let shifted = &theta + &ndarray::arr1(&[0.5 * cov[0][0].sqrt(), 0.5 * cov[1][1].sqrt()]);
    let bad = check(&post, shifted.view(), x.view(), 99, 1000, &Silent).unwrap();
    for j in 0..2 {
        assert!(
            bad.rank_chi2(j) > CHI2_9[1],
            "biased: chi2 {}",
            bad.rank_chi2(j)
        );
    }
    let (ks, p) = bad.tarp_ks();
    eprintln!("TARP on the half-sd bias: KS {ks:.3}, p {p:.3}");
    // TARP with references from the prior misses that half-sd bias (KS p = 0.45 measured:
    // with shrinkage 0.85-0.96 the references lie far outside the posterior, and a small shift
    // of the truth moves it nearer to half of them and farther from the other half). It
    // rejects a bias of two posterior sds.
    let shifted = &theta + &ndarray::arr1(&[2.0 * cov[0][0].sqrt(), 2.0 * cov[1][1].sqrt()]);
    let bad = check(&post, shifted.view(), x.view(), 99, 1000, &Silent).unwrap();
    let (ks, p) = bad.tarp_ks();
    eprintln!("TARP on the biased posterior: KS {ks:.3}, p {p:.2e}");
    assert!(p < 1e-3, "biased: TARP KS {ks}, p {p}");
}

#[test]
fn training_does_not_depend_on_the_thread_count_and_the_file_round_trips() {
    for estimator in [Estimator::Maf, Estimator::Nsf] {
        threads_and_file(estimator);
    }
}

fn threads_and_file(estimator: Estimator) {
    let (theta, x) = simulate_linear(600, 3);
    let s = Settings {
        estimator,
        hidden: 8,
        transforms: 2,
        max_epochs: 5,
        seed: 2,
        ..Settings::default()
    };
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| train(theta.view(), x.view(), &linear_prior(), &s, &Silent).unwrap())
    };
    let (one, three) = (run(1), run(3));
    assert_eq!(one.flow.params(), three.flow.params());
    assert_eq!(one.history.val, three.history.val);
    let a = one.sample(&[0.1, 0.2, 0.3], 3000, 8).unwrap();
    let b = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap()
        .install(|| three.sample(&[0.1, 0.2, 0.3], 3000, 8).unwrap());
    assert_eq!(a.theta, b.theta);

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("post.nmmp");
    one.write(&p).unwrap();
    let back = Posterior::read(&p).unwrap();
    assert_eq!(back.flow.params(), one.flow.params());
    assert_eq!(back.flow.estimator(), estimator);
    assert_eq!(back.settings, one.settings);
    assert_eq!(back.prior, one.prior);
    assert_eq!(back.history, one.history);
    assert_eq!(
        back.sample(&[0.1, 0.2, 0.3], 3000, 8).unwrap().theta,
        a.theta
    );
    // Damage is detected, and the error names the file.
    let mut bytes = std::fs::read(&p).unwrap();
    let k = bytes.len() - 20;
    bytes[k] ^= 1;
    std::fs::write(&p, &bytes).unwrap();
    let e = Posterior::read(&p).unwrap_err().report();
    assert!(e.contains("post.nmmp") && e.contains("checksum"), "{e}");
    std::fs::write(&p, &bytes[..100]).unwrap();
    assert!(Posterior::read(&p).is_err());
}

#[test]
fn bad_training_data_is_refused_with_the_row_named() {
    let (mut theta, mut x) = simulate_linear(100, 4);
    let s = Settings {
        hidden: 4,
        transforms: 1,
        max_epochs: 2,
        ..Settings::default()
    };
    let prior = linear_prior();
    x[[7, 1]] = f64::NAN;
    let post = train(theta.view(), x.view(), &prior, &s, &Silent).unwrap();
    assert_eq!(post.history.excluded_nonfinite, 1);
    theta[[3, 1]] = f64::INFINITY;
    let e = train(theta.view(), x.view(), &prior, &s, &Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("row 3") && e.contains("b"), "{e}");
    let e = train(
        theta.view(),
        x.slice(ndarray::s![..50, ..]),
        &prior,
        &s,
        &Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("100 rows") && e.contains("50"), "{e}");
    let e = post.sample(&[0.0, 1.0], 10, 0).unwrap_err().to_string();
    assert!(e.contains("2 features") && e.contains("3"), "{e}");
    let bounded = banana_prior();
    let (t, xr) = simulate_banana(100, 1);
    let mut t2 = t.clone();
    t2[[5, 0]] = 3.5;
    let e = train(t2.view(), xr.view(), &bounded, &s, &Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("row 5") && e.contains("outside"), "{e}");
}

#[test]
fn c2st_reaches_the_bayes_accuracy_of_two_gaussians() {
    // N(0, 1) against N(delta, 1) in one dimension: the best classifier's accuracy is
    // Phi(delta / 2). 2,000 draws each: binomial sd of the score over 4,000 points at most
    // 0.008, and k-NN (k = 57) approaches the Bayes rate from below as n grows: measured
    // within 0.015 of it here, and +-0.04 is allowed (3 sampling sds plus a k-NN shortfall).
    let mut rng = nmm_core::rng::stream(21, 0);
    let a = Array2::from_shape_fn((2000, 1), |_| standard_normal(&mut rng));
    for (delta, bayes) in [(0.0, 0.5), (1.0, 0.6915), (2.0, 0.8413)] {
        let b = Array2::from_shape_fn((2000, 1), |_| delta + standard_normal(&mut rng));
        let acc = c2st(a.view(), b.view(), 3).unwrap();
        eprintln!("delta {delta}: C2ST {acc:.4}, Bayes {bayes}");
        assert!(
            (acc - bayes).abs() < 0.04,
            "delta {delta}: {acc} vs {bayes}"
        );
    }
    // Samples of different sizes from one distribution: still chance (the larger is cut;
    // without that, 2,000 against 500 would score about 0.8 by voting for the majority).
    let small = Array2::from_shape_fn((500, 1), |_| standard_normal(&mut rng));
    let acc = c2st(a.view(), small.view(), 3).unwrap();
    eprintln!("2,000 against 500 of one distribution: C2ST {acc:.4}");
    assert!((acc - 0.5).abs() < 0.07, "{acc}"); // 3 sds of a score over 1,000 points: 0.047
    // Deterministic for a seed; bad shapes are refused.
    let b = a.mapv(|v| v + 1.0);
    assert_eq!(
        c2st(a.view(), b.view(), 3).unwrap(),
        c2st(a.view(), b.view(), 3).unwrap()
    );
    let wide = Array2::<f64>::zeros((100, 2));
    assert!(c2st(a.view(), wide.view(), 3).is_err());
}
