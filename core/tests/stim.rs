//! Stimulus parsing and the coloured-noise generator's spectrum, scale and grid independence.

use nmm_core::stim::{StimSpec, Stimulus};

#[test]
fn parse_and_display_round_trip() {
    for s in [
        "const:3",
        "step:3:0:30",
        "sin:0.5:2",
        "noise:0.2:1.1:0.05",
        "none",
    ] {
        let spec: StimSpec = s.parse().unwrap();
        let again: StimSpec = spec.to_string().parse().unwrap();
        assert_eq!(spec, again, "{s}");
    }
    assert_eq!(
        "noise:1:2".parse::<StimSpec>().unwrap(),
        StimSpec::Noise {
            sigma: 1.0,
            beta: 2.0,
            interval: nmm_core::stim::DEFAULT_NOISE_INTERVAL
        }
    );
    for bad in [
        "",
        "const",
        "const:x",
        "step:1:5:2",
        "sin:1",
        "noise:-1:1",
        "noise:1:9",
        "pulse:3",
        "const:inf",
        "const:1:2:3:4:5",
    ] {
        let e = bad.parse::<StimSpec>();
        assert!(e.is_err(), "{bad} should not parse");
        assert!(!e.unwrap_err().to_string().is_empty());
    }
}

#[test]
fn deterministic_kinds() {
    let mut s = Stimulus::<f64>::new("sin:2:0.25".parse().unwrap(), 0, 0.0);
    assert!((s.value(1.0) - 2.0).abs() < 1e-12); // 2 sin(pi/2)
    let mut s = Stimulus::<f32>::new("const:-1.5".parse().unwrap(), 0, 0.0);
    assert_eq!(s.value(123.0), -1.5);
}

/// Log-log slope of a Welch-averaged periodogram of the noise samples over the band between
/// 8/(segment length) and a quarter of the sampling rate. Expected: -beta. The band [-0.2, +0.2]
/// covers the estimator's scatter over 64 averaged segments (relative std of each bin ~1/8) and
/// the filter truncation, which flattens the spectrum only below 1/(M H).
fn spectral_slope(beta: f64) -> f64 {
    let seg = 512;
    let nseg = 64;
    let h = 1.0;
    let mut s = Stimulus::<f64, 4096>::new(
        StimSpec::Noise {
            sigma: 1.0,
            beta,
            interval: h,
        },
        3,
        0.0,
    );
    let x: Vec<f64> = (0..seg * nseg).map(|k| s.value(k as f64 * h)).collect();
    let freqs: Vec<usize> = (8..seg / 4).step_by(4).collect();
    let mut power = vec![0.0; freqs.len()];
    for c in x.chunks(seg) {
        let mean = c.iter().sum::<f64>() / seg as f64;
        for (fi, &f) in freqs.iter().enumerate() {
            let (mut re, mut im) = (0.0, 0.0);
            for (n, v) in c.iter().enumerate() {
                // Hann window against leakage from the steep low-frequency power.
                let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / seg as f64).cos();
                let ph = 2.0 * std::f64::consts::PI * (f * n) as f64 / seg as f64;
                re += w * (v - mean) * ph.cos();
                im -= w * (v - mean) * ph.sin();
            }
            power[fi] += re * re + im * im;
        }
    }
    let lx: Vec<f64> = freqs.iter().map(|&f| (f as f64).ln()).collect();
    let ly: Vec<f64> = power.iter().map(|p| p.ln()).collect();
    let n = lx.len() as f64;
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let sxy: f64 = lx.iter().zip(&ly).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = lx.iter().map(|a| (a - mx).powi(2)).sum();
    sxy / sxx
}

#[test]
fn coloured_noise_has_the_requested_spectral_exponent() {
    for beta in [0.0, 1.0, 1.1, 2.0] {
        let s = spectral_slope(beta);
        println!("beta {beta}: measured spectral slope {s:.3}");
        assert!((s + beta).abs() < 0.2, "beta {beta}: slope {s}");
    }
}

/// White noise (beta = 0) has the requested standard deviation. The standard error of the
/// sample standard deviation of 50 000 independent draws is sigma/sqrt(2n) = 0.0016; we allow
/// 0.008 (5 standard errors).
#[test]
fn noise_scale() {
    let mut s = Stimulus::<f64>::new("noise:0.5:0:1".parse().unwrap(), 8, 0.0);
    let x: Vec<f64> = (0..50_000).map(|k| s.value(k as f64)).collect();
    let m = x.iter().sum::<f64>() / x.len() as f64;
    let sd = (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    assert!((sd - 0.5).abs() < 0.008, "std {sd}");
}

/// The noise a seed produces is defined on its own grid: evaluating with a fine step or a
/// coarse step gives the same values at shared times, and values are linear in between.
#[test]
fn noise_does_not_depend_on_the_evaluation_step() {
    let spec: StimSpec = "noise:1:1.1:0.1".parse().unwrap();
    let mut fine = Stimulus::<f64>::new(spec, 42, -2.0);
    let mut coarse = Stimulus::<f64>::new(spec, 42, -2.0);
    let fine_vals: Vec<f64> = (0..=4000)
        .map(|k| fine.value(-2.0 + k as f64 * 0.001))
        .collect();
    for k in 0..=40 {
        let t = -2.0 + k as f64 * 0.1;
        let c = coarse.value(t);
        let f = fine_vals[k * 100];
        assert!((c - f).abs() < 1e-12, "t = {t}: {c} vs {f}");
    }
    // Midpoint of a sample interval is the mean of its ends (linear interpolation).
    let mid = fine_vals[50];
    assert!((mid - 0.5 * (fine_vals[0] + fine_vals[100])).abs() < 1e-12);
    // A different seed gives a different drive.
    let mut other = Stimulus::<f64>::new(spec, 43, -2.0);
    assert_ne!(other.value(-1.0), fine_vals[1000]);
}
