//! Gradient fitting (nmm::fit): the forward-mode gradient of a window's loss against finite
//! differences of the same run (noise included: the same seed gives the same draws, so the
//! difference quotient sees only the parameter's effect).

use nmm::fit::{FitConfig, Setup, Target, fit, lower_triangle, simulate_bold, window_loss};
use nmm::progress::Silent;
use std::collections::BTreeMap;

fn fc_of(bold: &[Vec<f64>]) -> Vec<f64> {
    let n = bold[0].len();
    let t = bold.len() as f64;
    let mean: Vec<f64> = (0..n)
        .map(|i| bold.iter().map(|r| r[i]).sum::<f64>() / t)
        .collect();
    let mut fc = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            let c: f64 = bold
                .iter()
                .map(|r| (r[i] - mean[i]) * (r[j] - mean[j]))
                .sum();
            let a: f64 = bold.iter().map(|r| (r[i] - mean[i]).powi(2)).sum();
            let b: f64 = bold.iter().map(|r| (r[j] - mean[j]).powi(2)).sum();
            fc[i * n + j] = c / (a * b).sqrt();
        }
    }
    fc
}

fn small() -> FitConfig {
    let mut cfg = FitConfig::default();
    cfg.connectome.path = "builtin:8".into();
    cfg.transient_ms = 5000.0;
    cfg
}

/// The four gains of the paper, each off its synthetic truth, on an 8-region connectome: the
/// dual gradient of a 20-TR window's loss equals the central difference with a step of 1e-6
/// relative (truncation ~1e-12 relative, rounding ~1e-10 / 1e-6 of a loss of order 0.1), to
/// 1e-5; measured agreement is 8e-10 (G) to 3e-6 (g_IE) relative. With the paper's loss and
/// with the squared difference from the FC over 20-TR windows added.
/// With three noise realisations per window the loss is of their mean FC; its gradient is
/// checked the same way, at the same tolerance (measured agreement 2e-9 to 5e-8 relative).
#[test]
fn window_gradient_matches_finite_differences() {
    for mse_weight in [0.0, 5.0] {
        window_gradient_at(mse_weight, 1);
    }
    window_gradient_at(5.0, 3);
}

fn window_gradient_at(mse_weight: f64, realisations: usize) {
    let mut cfg = small();
    cfg.mse_weight = mse_weight;
    cfg.realisations = realisations;
    let s = Setup::new(cfg).unwrap();
    let bold = simulate_bold(&s, &s.values, 60).unwrap();
    let fc = lower_triangle(&fc_of(&bold), s.n).unwrap();
    let windows: Vec<Vec<f64>> = bold
        .chunks(20)
        .map(|w| lower_triangle(&fc_of(w), s.n).unwrap())
        .collect();
    let window_fc = (0..fc.len())
        .map(|k| windows.iter().map(|w| w[k]).sum::<f64>() / 3.0)
        .collect();
    let emp = Target { fc, window_fc };
    // The library's target from the same BOLD: the same numbers, computed independently.
    let lib = Target::from_bold(&bold, 20).unwrap();
    for (a, b) in lib.window_fc.iter().zip(&emp.window_fc) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    let mut start = s.values.clone();
    for (k, f) in [("G", 1.2), ("g_EE", 0.9), ("g_EI", 1.1), ("g_IE", 0.95)] {
        *start.get_mut(k).unwrap() *= f;
    }
    let (l, grad) = window_loss(&s, &start, &s.weights, &emp).unwrap();
    assert!(l.is_finite() && l > 0.0, "loss {l}");
    for (i, name) in s.cfg.fit.iter().enumerate() {
        let x = start[name];
        let h = 1e-6 * x;
        let at = |v: f64| {
            let mut p: BTreeMap<String, f64> = start.clone();
            p.insert(name.clone(), v);
            window_loss(&s, &p, &s.weights, &emp).unwrap().0
        };
        let fd = (at(x + h) - at(x - h)) / (2.0 * h);
        println!(
            "mse_weight {mse_weight}, {realisations} realisation(s), {name}: relative \
             difference {:.1e}",
            (grad[i] - fd).abs() / grad[i].abs()
        );
        assert!(
            (grad[i] - fd).abs() <= 1e-5 * (1e-3 + grad[i].abs()),
            "mse_weight {mse_weight}, {realisations} realisation(s), {name}: dual {:e}, \
             finite difference {fd:e}",
            grad[i]
        );
    }
}

/// One realisation is the single run: the window's loss is that of the BOLD `simulate_bold`
/// gives for the same seed (transient, then one window), its FC and loss computed here
/// directly (to 1e-12: summation orders differ). Several realisations: the same bit for bit on
/// one thread or two (each realisation runs alone; the mean is summed in realisation order),
/// and not the single run's.
#[test]
fn realisations_do_not_depend_on_the_thread_count() {
    let mut cfg = small();
    cfg.mse_weight = 5.0;
    let s1 = Setup::new(cfg.clone()).unwrap();
    cfg.realisations = 4;
    let s4 = Setup::new(cfg).unwrap();
    let bold = simulate_bold(&s1, &s1.values, 40).unwrap();
    let emp = Target::from_bold(&bold, 20).unwrap();
    let on = |threads: usize, s: &Setup| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| window_loss(s, &s.values, &s.weights, &emp).unwrap())
    };
    let (one, many) = (on(1, &s4), on(2, &s4));
    assert_eq!(one, many);
    let single = on(2, &s1);
    assert_ne!(single.0, one.0);
    // The single run by hand: -ln(0.5 + 0.5 r) + 5 mse of the window's FC.
    let window = simulate_bold(&s1, &s1.values, s1.cfg.window_tr).unwrap();
    let fc = lower_triangle(&fc_of(&window), s1.n).unwrap();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (ma, mb) = (mean(&fc), mean(&emp.fc));
    let dot = |f: &dyn Fn(usize) -> f64| (0..fc.len()).map(f).sum::<f64>();
    let r = dot(&|k| (fc[k] - ma) * (emp.fc[k] - mb))
        / (dot(&|k| (fc[k] - ma).powi(2)) * dot(&|k| (emp.fc[k] - mb).powi(2))).sqrt();
    let sq = mean(
        &(0..fc.len())
            .map(|k| (fc[k] - emp.window_fc[k]).powi(2))
            .collect::<Vec<_>>(),
    );
    let by_hand = -(0.5 + 0.5 * r).ln() + 5.0 * sq;
    assert!(
        (single.0 - by_hand).abs() < 1e-12,
        "{} vs {by_hand}",
        single.0
    );
}

/// `fit` applies the falling rate. G alone, one window per epoch, two epochs, with and without
/// `lr_final = lr / 1000` (step 2's rate then). Step 1 runs at lr either way, so both runs
/// take the same first step, by lr in ln G (Adam's first ratio m/sqrt(v) is g/(|g| + eps),
/// eps = 1e-8: 1 to within 1e-6 for |g| > 1e-2); they then simulate the same second window, get
/// the same gradient and moments, and their second steps differ only by the rate: a ratio of
/// 1000, up to the rounding of ln(exp(phi)) (about 1e-16 of ln G against a step of 5e-5: 2e-12
/// relative; the tolerance, 1e-6, is far above that and far below a rate that was not applied).
#[test]
fn the_falling_rate_is_applied() {
    let mut cfg = small();
    cfg.fit = vec!["G".into()];
    cfg.epochs = 2;
    let s = Setup::new(cfg.clone()).unwrap();
    let mut truth = s.values.clone();
    truth.insert("G".into(), s.values["G"] * 1.3);
    let emp = Target::from_bold(&simulate_bold(&s, &truth, 40).unwrap(), cfg.window_tr).unwrap();
    let run = |lr_final: Option<f64>| {
        let mut c = cfg.clone();
        c.lr_final = lr_final;
        let s = Setup::new(c).unwrap();
        let r = fit(&s, &emp, 1, &Silent).unwrap();
        let ln = |e: usize| r.epochs[e].values[0].ln();
        (ln(0) - s.values["G"].ln(), ln(1) - ln(0))
    };
    let (first, second) = run(Some(cfg.lr / 1000.0));
    let (first_const, second_const) = run(None);
    assert_eq!(first, first_const, "step 1 runs at lr either way");
    assert!(
        (first.abs() - cfg.lr).abs() < 1e-6 * cfg.lr,
        "step 1 moved {first}"
    );
    assert!(second != 0.0, "step 2 did not move");
    let ratio = second_const / second;
    assert!(
        (ratio - 1000.0).abs() < 1e-6 * 1000.0,
        "steps 2: {second_const} / {second}"
    );
}

/// Settings a fit cannot use are refused, naming the key.
#[test]
fn bad_realisations_and_rates_are_refused() {
    let err = |f: &dyn Fn(&mut FitConfig)| {
        let mut cfg = small();
        f(&mut cfg);
        Setup::new(cfg).unwrap_err().to_string()
    };
    assert!(err(&|c| c.realisations = 0).contains("realisations must be 1 to"));
    assert!(err(&|c| c.realisations = 257).contains("realisations must be 1 to 256"));
    assert!(err(&|c| c.lr_final = Some(f64::NAN)).contains("lr_final"));
    let e = err(&|c| {
        c.realisations = 2;
        c.connectome_gains = true;
    });
    assert!(e.contains("connectome_gains with realisations = 2"), "{e}");
    assert!(err(&|c| c.lr_final = Some(0.1)).contains("lr_final must be positive and at most"));
    assert!(err(&|c| c.lr_final = Some(0.0)).contains("lr_final"));
    // The reverse mode (connectome gains) runs one realisation.
    let mut cfg = small();
    cfg.realisations = 2;
    let s = Setup::new(cfg).unwrap();
    let emp = Target::from_bold(&simulate_bold(&s, &s.values, 20).unwrap(), 20).unwrap();
    let e = nmm::fit::window_loss_reverse(&s, &s.values, &s.weights, &emp)
        .unwrap_err()
        .to_string();
    assert!(e.contains("single noise realisation"), "{e}");
}
