//! Streaming statistics, FC and FCD against two-pass computations on the same data.

use nmm_core::fc::{
    FcError, SlidingFc, Welford, fc_upper, fcd, n_pairs, packed_len, pearson_two_pass,
};
use nmm_core::rng::Gaussian;

/// `n_t` samples of `r` regions, time-major: `offset + a_i c_t + e_ti` with a common factor
/// `c_t` and private noise `e_ti`, all standard normal, so pairs have assorted correlations
/// (loadings 1, 0.5, -0.7, 0, 2, ...) and unit-order spread around a large common offset.
fn correlated_series(n_t: usize, r: usize, offset: f64, seed: u64) -> Vec<f64> {
    let loadings = [1.0, 0.5, -0.7, 0.0, 2.0, -1.5, 0.3, 1.2];
    let mut g = Gaussian::<f64>::new(seed, 0);
    let mut out = Vec::with_capacity(n_t * r);
    for _ in 0..n_t {
        let c = g.next();
        for i in 0..r {
            out.push(offset + loadings[i % loadings.len()] * c + g.next());
        }
    }
    out
}

/// Two-pass mean and sample covariance (divisor n - 1) of a time-major series, written here
/// independently of the library (plain sums: accurate to ~1e-13 relative for these sizes, as
/// the deviations x - mean are formed exactly and are of order 1).
fn two_pass_cov(series: &[f64], n_t: usize, r: usize) -> (Vec<f64>, Vec<f64>) {
    let mean: Vec<f64> = (0..r)
        .map(|i| (0..n_t).map(|t| series[t * r + i]).sum::<f64>() / n_t as f64)
        .collect();
    let mut cov = vec![0.0; r * r];
    for i in 0..r {
        for j in 0..r {
            cov[i * r + j] = (0..n_t)
                .map(|t| (series[t * r + i] - mean[i]) * (series[t * r + j] - mean[j]))
                .sum::<f64>()
                / (n_t - 1) as f64;
        }
    }
    (mean, cov)
}

/// Plain Pearson correlation of two vectors (two-pass), independent of the library.
fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let syy: f64 = y.iter().map(|b| (b - my) * (b - my)).sum();
    sxy / (sxx * syy).sqrt()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Welford's mean, covariance and Pearson FC equal the two-pass values on data with a large
/// offset (1e4 + signals of standard deviation >= 1), where the one-pass textbook formula
/// `(sum x y - sum x sum y / n) / (n - 1)` loses about offset^2 eps / sigma^2 = 2e-8 relative
/// or more.
///
/// Error model (f64, eps = 2.2e-16, n = 2000):
/// - means: each side rounds n times, Welford to half an ulp of 1e4 per step and the plain sum
///   to half an ulp of partial sums up to n 1e4 (then divided by n): at worst 2 n 1e4 eps =
///   8.9e-9 between them (random-walk typical: sqrt(n) 1e4 eps = 1e-10).
/// - covariance and correlation: recursive summation of n terms of order sigma^2 errs by at
///   most ~n eps relative; the running mean's error (a random walk of size ~ulp(1e4) sqrt(n))
///   enters through sum_t delta_t d_t and adds ~offset eps / sigma relative. Bound:
///   4 (n + offset / sigma) eps = 1.1e-11.
///
/// Measured: means 4.4e-11, covariance 1.4e-13 relative, correlation 2.8e-13; the naive
/// one-pass covariance errs by 1.8e-7 relative, 10^4 times the bound.
#[test]
fn welford_matches_two_pass_at_large_offset() {
    let (n_t, r, offset) = (2000, 5, 1e4);
    let series = correlated_series(n_t, r, offset, 1);
    let (mean_ref, cov_ref) = two_pass_cov(&series, n_t, r);
    let mut fc_ref = vec![0.0; r * r];
    pearson_two_pass(&series, n_t, r, &mut fc_ref).unwrap();

    let (mut mean, mut m2) = (vec![0.0; r], vec![0.0; packed_len(r)]);
    let mut acc = Welford::new(&mut mean, &mut m2).unwrap();
    for x in series.chunks_exact(r) {
        acc.push(x);
    }
    assert_eq!(acc.count(), n_t);
    let mut cov = vec![0.0; r * r];
    acc.covariance(&mut cov);
    let mut fc = vec![0.0; r * r];
    acc.pearson(&mut fc);

    let (n, eps, sigma_min) = (n_t as f64, f64::EPSILON, 1.0);
    let mean_bound = 2.0 * n * offset * eps;
    let bound = 4.0 * (n + offset / sigma_min) * eps;
    let scale = cov_ref.iter().fold(0.0, |m: f64, c| m.max(c.abs()));
    let (e_mean, e_cov, e_fc) = (
        max_abs_diff(acc.mean(), &mean_ref),
        max_abs_diff(&cov, &cov_ref) / scale,
        max_abs_diff(&fc, &fc_ref),
    );
    // The textbook one-pass formula on the same data, for contrast.
    let naive: Vec<f64> = (0..r * r)
        .map(|k| {
            let (i, j) = (k / r, k % r);
            let (mut sx, mut sy, mut sxy) = (0.0, 0.0, 0.0);
            for x in series.chunks_exact(r) {
                (sx, sy, sxy) = (sx + x[i], sy + x[j], sxy + x[i] * x[j]);
            }
            (sxy - sx * sy / n) / (n - 1.0)
        })
        .collect();
    let e_naive = max_abs_diff(&naive, &cov_ref) / scale;
    eprintln!(
        "mean {e_mean:.2e} (bound {mean_bound:.2e}); cov {e_cov:.2e} relative, fc {e_fc:.2e} \
         (bound {bound:.2e}); naive one-pass cov {e_naive:.2e}"
    );
    assert!(e_mean <= mean_bound, "mean error {e_mean}");
    assert!(e_cov <= bound, "covariance error {e_cov}");
    assert!(e_fc <= bound, "correlation error {e_fc}");
    assert!(
        e_naive > bound,
        "naive one-pass unexpectedly accurate: {e_naive}"
    );
    // The library's two-pass FC agrees with the independent plain formula, and FC is a
    // correlation matrix: symmetric, unit diagonal.
    for i in 0..r {
        assert_eq!(fc[i * r + i], 1.0);
        for j in 0..r {
            assert_eq!(fc[i * r + j], fc[j * r + i]);
            let col = |k: usize| -> Vec<f64> { (0..n_t).map(|t| series[t * r + k]).collect() };
            if i != j {
                let plain = pearson(&col(i), &col(j));
                assert!((fc_ref[i * r + j] - plain).abs() <= bound, "({i}, {j})");
            }
        }
    }
}

/// In f32 with an offset of 1e4 the textbook one-pass formula `sum x^2 / n - mean^2` loses
/// everything (1e8 - 1e8 with an ulp of 8 in f32), while Welford keeps the covariance to the
/// precision the data themselves carry: each f32 sample near 1e4 is rounded to 1e4 eps_f32 =
/// 1.2e-3, so the unit variance is known to ~1e-3; we allow 1e-2 relative (the running mean adds
/// a similar rounding per step, and errors of 1e-3 can combine). Measured: Welford 1.9e-4
/// relative, naive sums 48 relative (wrong by far more than the variance itself).
#[test]
fn welford_f32_survives_offset_where_naive_sums_fail() {
    let (n_t, r) = (2000, 3);
    let series64 = correlated_series(n_t, r, 1e4, 2);
    let series32: Vec<f32> = series64.iter().map(|&x| x as f32).collect();
    // Reference: exact-ish f64 two-pass on the same (f32-rounded) values.
    let rounded: Vec<f64> = series32.iter().map(|&x| x as f64).collect();
    let (_, cov_ref) = two_pass_cov(&rounded, n_t, r);

    let (mut mean, mut m2) = ([0.0_f32; 3], [0.0_f32; 6]);
    let mut acc = Welford::new(&mut mean, &mut m2).unwrap();
    let (mut s, mut ss) = ([0.0_f32; 3], [0.0_f32; 9]);
    for x in series32.chunks_exact(r) {
        acc.push(x);
        for i in 0..r {
            s[i] += x[i];
            for j in 0..r {
                ss[i * r + j] += x[i] * x[j];
            }
        }
    }
    let mut cov = [0.0_f32; 9];
    acc.covariance(&mut cov);
    let n = n_t as f32;
    let naive: Vec<f64> = (0..r * r)
        .map(|k| {
            let (i, j) = (k / r, k % r);
            ((ss[k] - s[i] * s[j] / n) / (n - 1.0)) as f64
        })
        .collect();
    let cov64: Vec<f64> = cov.iter().map(|&c| c as f64).collect();
    let scale = cov_ref.iter().fold(0.0, |m: f64, c| m.max(c.abs()));
    let e_welford = max_abs_diff(&cov64, &cov_ref) / scale;
    let e_naive = max_abs_diff(&naive, &cov_ref) / scale;
    eprintln!("f32 covariance error: Welford {e_welford:.2e}, naive sums {e_naive:.2e}");
    assert!(e_welford < 1e-2);
    assert!(e_naive > 0.5, "naive sums unexpectedly accurate: {e_naive}");
}

/// Merging two accumulators equals pushing everything into one (Chan's update is exact in real
/// arithmetic; the rounding differs by a few ulps of the co-moments, here of order n = 600, so
/// 1e-12 relative is generous). Merging into or from an empty accumulator copies.
#[test]
fn merge_equals_single_pass() {
    let (n_t, r) = (600, 4);
    let series = correlated_series(n_t, r, 3.0, 3);
    let (split, pr) = (250 * r, packed_len(r));
    let (mut ma, mut ca, mut mb, mut cb) =
        (vec![0.0; r], vec![0.0; pr], vec![0.0; r], vec![0.0; pr]);
    let (mut mall, mut call) = (vec![0.0; r], vec![0.0; pr]);
    let mut a = Welford::new(&mut ma, &mut ca).unwrap();
    let mut b = Welford::new(&mut mb, &mut cb).unwrap();
    let mut all = Welford::new(&mut mall, &mut call).unwrap();
    for x in series[..split].chunks_exact(r) {
        a.push(x);
        all.push(x);
    }
    for x in series[split..].chunks_exact(r) {
        b.push(x);
        all.push(x);
    }
    a.merge(&b);
    assert_eq!(a.count(), n_t);
    assert!(max_abs_diff(a.mean(), all.mean()) < 1e-12);
    let scale = all.comoment().iter().fold(0.0, |m: f64, c| m.max(c.abs()));
    assert!(max_abs_diff(a.comoment(), all.comoment()) < 1e-12 * scale);

    let (mut me, mut ce) = (vec![0.0; r], vec![0.0; pr]);
    let mut empty = Welford::new(&mut me, &mut ce).unwrap();
    empty.merge(&b);
    assert_eq!((empty.count(), empty.mean()), (b.count(), b.mean()));
    assert_eq!(empty.comoment(), b.comoment());
    b.reset();
    let before: Vec<f64> = a.comoment().to_vec();
    a.merge(&b);
    assert_eq!(a.comoment(), before.as_slice());
}

/// A constant region has zero variance: its covariances are 0, its correlations 0 with others
/// and 1 with itself, with no NaN, in the streaming and the two-pass computation. Before two
/// samples the covariance is 0 and the FC the identity.
#[test]
fn constant_regions_and_short_series_give_no_nan() {
    let r = 3;
    let (mut mean, mut m2) = ([0.0; 3], [0.0; 6]);
    let mut acc = Welford::new(&mut mean, &mut m2).unwrap();
    let (mut cov, mut fc) = ([f64::NAN; 9], [f64::NAN; 9]);
    let identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    acc.covariance(&mut cov);
    acc.pearson(&mut fc);
    assert_eq!((cov, fc), ([0.0; 9], identity));
    acc.push(&[1.0, 2.0, 3.0]);
    acc.covariance(&mut cov);
    acc.pearson(&mut fc);
    assert_eq!((cov, fc), ([0.0; 9], identity));

    let mut series = Vec::new();
    for t in 0..50 {
        let a = (t as f64 * 0.37).sin();
        series.extend_from_slice(&[a, 0.1 + 0.2, 3.0 * a + 1.0]); // region 1 is constant
    }
    acc.reset();
    for x in series.chunks_exact(r) {
        acc.push(x);
    }
    acc.pearson(&mut fc);
    let mut fc2 = [f64::NAN; 9];
    pearson_two_pass(&series, 50, r, &mut fc2).unwrap();
    for m in [fc, fc2] {
        assert!(m.iter().all(|v| v.is_finite()));
        assert_eq!([m[0], m[4], m[8]], [1.0; 3]);
        assert_eq!([m[1], m[3], m[5], m[7]], [0.0; 4]);
        assert!((m[2] - 1.0).abs() < 1e-14, "{}", m[2]);
        assert!(m[2] <= 1.0); // clamped
    }
    acc.covariance(&mut cov);
    assert_eq!([cov[1], cov[3], cov[4], cov[5], cov[7]], [0.0; 5]);
}

/// `pearson_upper` is `pearson` followed by `fc_upper`, bit for bit.
#[test]
fn pearson_upper_equals_fc_upper_of_pearson() {
    let (n_t, r) = (300, 6);
    let series = correlated_series(n_t, r, 0.0, 4);
    let (mut mean, mut m2) = (vec![0.0; r], vec![0.0; packed_len(r)]);
    let mut acc = Welford::new(&mut mean, &mut m2).unwrap();
    for x in series.chunks_exact(r) {
        acc.push(x);
    }
    let mut full = vec![0.0; r * r];
    acc.pearson(&mut full);
    let (mut a, mut b) = (vec![0.0; n_pairs(r)], vec![0.0; n_pairs(r)]);
    acc.pearson_upper(&mut a);
    fc_upper(&full, r, &mut b).unwrap();
    assert_eq!(a, b);
    // Row-by-row order of the strict upper triangle.
    assert_eq!(
        (a[0], a[r - 2], a[r - 1]),
        (full[1], full[r - 1], full[r + 2])
    );
}

/// Every window of `SlidingFc` equals the two-pass FC of its slice, for overlapping windows
/// (W > S), adjacent ones (W = S) and gaps (S > W); windows come out in order, as soon as
/// their last sample arrives. Both sides compute the same correlations from <= 30 samples of
/// order 1, so they differ by a few ulps of the sums (<= 30 eps = 6.7e-15 for sums of 30
/// terms); the bound 1e-13 is generous. Measured maximum: 8.9e-16.
#[test]
fn sliding_fc_windows_equal_two_pass_of_each_slice() {
    let (n_t, r) = (203, 4);
    let series = correlated_series(n_t, r, 5.0, 5);
    let mut worst: f64 = 0.0;
    for (w, s) in [(15, 2), (30, 5), (10, 10), (5, 7), (2, 1), (7, 3)] {
        let mut scratch = vec![0.0; SlidingFc::<f64>::buffer_len(r, w, s)];
        let mut sfc = SlidingFc::new(r, w, s, &mut scratch).unwrap();
        let mut seen = 0;
        let (mut full, mut want) = (vec![0.0; r * r], vec![0.0; n_pairs(r)]);
        for (t, x) in series.chunks_exact(r).enumerate() {
            if let Some((k, fc)) = sfc.push(x) {
                assert_eq!(k, seen, "W {w} S {s}");
                assert_eq!(t, k * s + w - 1, "window {k} must end at sample {t}");
                let slice = &series[k * s * r..(k * s + w) * r];
                pearson_two_pass(slice, w, r, &mut full).unwrap();
                fc_upper(&full, r, &mut want).unwrap();
                worst = worst.max(max_abs_diff(fc, &want));
                seen += 1;
            }
        }
        assert_eq!(seen, (n_t - w) / s + 1, "W {w} S {s}");
        assert_eq!((sfc.windows(), sfc.samples()), (seen, n_t));
    }
    eprintln!("sliding FC vs two-pass: max difference {worst:.2e}");
    assert!(worst < 1e-13);
}

/// FCD from streamed windows: symmetric, unit diagonal, and equal to the plain correlation of
/// the FC vectors computed here (same two-pass formula on vectors of 15 values of order 1:
/// differences are a few ulps, 1e-13 is generous; measured 5.6e-16).
#[test]
fn fcd_is_symmetric_with_unit_diagonal_and_matches_direct() {
    let (n_t, r, w, s) = (120, 6, 15, 2);
    let series = correlated_series(n_t, r, 0.0, 6);
    let np = n_pairs(r);
    let mut scratch = vec![0.0; SlidingFc::<f64>::buffer_len(r, w, s)];
    let mut sfc = SlidingFc::new(r, w, s, &mut scratch).unwrap();
    let mut vectors = Vec::new();
    for x in series.chunks_exact(r) {
        if let Some((_, fc)) = sfc.push(x) {
            vectors.extend_from_slice(fc);
        }
    }
    let nw = vectors.len() / np;
    assert_eq!(nw, (n_t - w) / s + 1);
    let mut m = vec![0.0; nw * nw];
    fcd(&vectors, nw, np, &mut m).unwrap();
    let mut worst: f64 = 0.0;
    for a in 0..nw {
        assert_eq!(m[a * nw + a], 1.0);
        for b in 0..nw {
            assert_eq!(m[a * nw + b], m[b * nw + a]);
            assert!((-1.0..=1.0).contains(&m[a * nw + b]));
            if a != b {
                let direct = pearson(
                    &vectors[a * np..(a + 1) * np],
                    &vectors[b * np..(b + 1) * np],
                );
                worst = worst.max((m[a * nw + b] - direct).abs());
            }
        }
    }
    eprintln!("FCD vs direct: max difference {worst:.2e}");
    assert!(worst < 1e-13);
    // Overlapping neighbours (13 of 15 samples shared) are more alike than distant windows.
    let near: f64 = (0..nw - 1).map(|a| m[a * nw + a + 1]).sum::<f64>() / (nw - 1) as f64;
    let far: f64 = (0..nw - 20).map(|a| m[a * nw + a + 20]).sum::<f64>() / (nw - 20) as f64;
    assert!(near > far, "near {near}, far {far}");
}

/// FC of independent white-noise series is the identity up to sampling error: for independent
/// normal series the sample correlation has standard deviation ~1/sqrt(n), so |r| < 4/sqrt(n)
/// fails with probability 6e-5 per pair, 2e-3 for all 28 pairs (and the seed is fixed).
/// Measured max |r| = 0.021 against the bound 0.04.
#[test]
fn fc_of_independent_noise_is_identity_within_sampling_error() {
    let (n_t, r) = (10_000, 8);
    let mut g = Gaussian::<f64>::new(7, 0);
    let (mut mean, mut m2) = (vec![0.0; r], vec![0.0; packed_len(r)]);
    let mut acc = Welford::new(&mut mean, &mut m2).unwrap();
    let mut x = vec![0.0; r];
    for _ in 0..n_t {
        g.fill(&mut x);
        acc.push(&x);
    }
    let mut v = vec![0.0; n_pairs(r)];
    acc.pearson_upper(&mut v);
    let worst = v.iter().fold(0.0, |m: f64, c| m.max(c.abs()));
    let bound = 4.0 / (n_t as f64).sqrt();
    eprintln!("independent noise: max |r| = {worst:.4}, bound {bound}");
    assert!(worst < bound);
}

#[test]
fn wrong_buffer_lengths_are_errors() {
    let len = |buffer, expected, got| {
        Some(FcError::BufferLength {
            buffer,
            expected,
            got,
        })
    };
    let (mut mean, mut m2) = ([0.0_f64; 4], [0.0; 16]);
    assert_eq!(Welford::new(&mut mean, &mut m2).err(), len("m2", 10, 16));
    assert_eq!(
        Welford::new(&mut mean, &mut m2[..9]).err(),
        len("m2", 10, 9)
    );
    assert!(Welford::new(&mut mean, &mut m2[..10]).is_ok());

    let need = SlidingFc::<f64>::buffer_len(4, 15, 2);
    assert_eq!(need, 8 * (4 + 10) + 6);
    let mut scratch = vec![0.0_f64; need + 1];
    assert_eq!(
        SlidingFc::new(4, 15, 2, &mut scratch).err(),
        len("scratch", need, need + 1)
    );
    assert_eq!(
        SlidingFc::new(4, 1, 2, &mut scratch).err(),
        Some(FcError::BadWindow)
    );
    assert_eq!(
        SlidingFc::new(4, 15, 0, &mut scratch).err(),
        Some(FcError::BadWindow)
    );
    assert_eq!(SlidingFc::<f64>::buffer_len(4, 15, 0), 0);
    assert!(SlidingFc::new(4, 15, 2, &mut scratch[..need]).is_ok());

    let corr = [0.0_f64; 9];
    assert_eq!(fc_upper(&corr, 4, &mut [0.0; 6]).err(), len("corr", 16, 9));
    assert_eq!(fc_upper(&corr, 3, &mut [0.0; 2]).err(), len("out", 3, 2));
    assert_eq!(fc_upper(&corr[..0], 0, &mut []), Ok(()));

    let series = [0.0_f64; 12];
    let mut out = [0.0; 9];
    assert_eq!(
        pearson_two_pass(&series, 5, 3, &mut out).err(),
        len("series", 15, 12)
    );
    assert_eq!(
        pearson_two_pass(&series, 4, 3, &mut out[..4]).err(),
        len("out", 9, 4)
    );
    assert_eq!(pearson_two_pass(&series, 4, 3, &mut out), Ok(()));

    assert_eq!(
        fcd(&series, 3, 5, &mut out).err(),
        len("fc_vectors", 15, 12)
    );
    assert_eq!(fcd(&series, 3, 4, &mut out[..8]).err(), len("out", 9, 8));
    assert_eq!(fcd(&series, 3, 4, &mut out), Ok(()));
    assert_eq!(out, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]); // constant vectors
    assert!(
        FcError::BadWindow.to_string().contains("at least 2"),
        "{}",
        FcError::BadWindow
    );
    assert_eq!(
        len("m2", 10, 9).unwrap().to_string(),
        "buffer `m2` has length 9, expected 10"
    );
}

fn small_welford_run(f: impl FnOnce(&mut Welford<'_, f64>)) {
    let (mut mean, mut m2) = ([0.0; 3], [0.0; 6]);
    let mut acc = Welford::new(&mut mean, &mut m2).unwrap();
    f(&mut acc);
}

#[test]
#[should_panic(expected = "Welford::push: x must have one element per region")]
fn welford_push_panics_on_wrong_length() {
    small_welford_run(|acc| acc.push(&[1.0, 2.0]));
}

#[test]
#[should_panic(expected = "Welford::covariance: out must have regions * regions elements")]
fn welford_covariance_panics_on_wrong_length() {
    small_welford_run(|acc| acc.covariance(&mut [0.0; 6]));
}

#[test]
#[should_panic(expected = "Welford::pearson: out must have regions * regions elements")]
fn welford_pearson_panics_on_wrong_length() {
    small_welford_run(|acc| acc.pearson(&mut [0.0; 10]));
}

#[test]
#[should_panic(expected = "Welford::pearson_upper: out must have n_pairs(regions) elements")]
fn welford_pearson_upper_panics_on_wrong_length() {
    small_welford_run(|acc| acc.pearson_upper(&mut [0.0; 9]));
}

#[test]
#[should_panic(expected = "Welford::merge: both accumulators must have the same number of regions")]
fn welford_merge_panics_on_different_regions() {
    let (mut mean, mut m2) = ([0.0; 2], [0.0; 3]);
    let other = Welford::new(&mut mean, &mut m2).unwrap();
    small_welford_run(|acc| acc.merge(&other));
}

#[test]
#[should_panic(expected = "SlidingFc::push: x must have one element per region")]
fn sliding_fc_push_panics_on_wrong_length() {
    let mut scratch = vec![0.0_f64; SlidingFc::<f64>::buffer_len(3, 4, 2)];
    let mut sfc = SlidingFc::new(3, 4, 2, &mut scratch).unwrap();
    sfc.push(&[0.0; 4]);
}
