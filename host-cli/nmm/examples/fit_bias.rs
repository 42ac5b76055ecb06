//! Is the fit's gradient the slope of its expected loss? (issue 18's recovery study). For one
//! subject's BOLD and one set of values, over `SEEDS` noise seeds: the mean of the window
//! gradient that `nmm fit` follows (forward mode through one window, the state at the window's
//! start held fixed: gradients truncated at window boundaries, as in the paper's code), against
//! the central difference of the mean window loss where the whole run, transient included, is
//! at the shifted value (the same seeds at both ends). A difference between the two is the
//! truncation's bias (the state a window starts from also depends on the values).
//!
//! Usage (validation/fit/bias.sh runs it):
//! `cargo run --release -p nmm --example fit_bias -- CONNECTOME BOLD.npy SEEDS REL_STEP
//! NAME=VALUE ..` with the fit's settings of validation/fit/recovery.sh (windows of 100 TRs, 2
//! realisations, mse_weight 100, a 20 s transient).
use nmm::fit::{FitConfig, Setup, Target, window_loss};
use nmm::stats::mean_sd;
use std::error::Error;
use std::path::Path;

fn main() -> Result<(), Box<dyn Error>> {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 6 {
        return Err("usage: fit_bias CONNECTOME BOLD.npy SEEDS REL_STEP NAME=VALUE ..".into());
    }
    let mut cfg = FitConfig::default();
    cfg.connectome.path = a[1].clone();
    cfg.window_tr = 100;
    cfg.realisations = 2;
    cfg.mse_weight = 100.0;
    cfg.transient_ms = 20_000.0;
    let bold = nmm::io::read_npy_f64(Path::new(&a[2]))?;
    let rows: Vec<Vec<f64>> = bold
        .outer_iter()
        .map(|r| r.iter().copied().collect())
        .collect();
    let target = Target::from_bold(&rows, cfg.window_tr)?;
    let seeds: u64 = a[3].parse()?;
    let h: f64 = a[4].parse()?;
    for kv in &a[5..] {
        let (k, v) = kv
            .split_once('=')
            .ok_or(format!("{kv}: expected NAME=VALUE"))?;
        cfg.params.insert(k.into(), v.parse()?);
    }
    let names = cfg.fit.clone();
    // GAINS=G,g_IE: only these (the others' columns cost as much each).
    let only: Option<Vec<String>> = std::env::var("GAINS")
        .ok()
        .map(|g| g.split(',').map(String::from).collect());
    println!(
        "{}: {} seeds, central differences at +-{h} relative",
        a[2], seeds
    );
    println!(
        "{:>6} {:>10} {:>22} {:>22} {:>22}",
        "gain", "value", "truncated d/dln", "whole-run d/dln", "held-start d/dln"
    );
    for (j, name) in names.iter().enumerate() {
        if only.as_ref().is_some_and(|o| !o.contains(name)) {
            continue;
        }
        let (mut grad, mut whole, mut held) = (Vec::new(), Vec::new(), Vec::new());
        for seed in 0..seeds {
            let mut c = cfg.clone();
            c.seed = 100 + seed;
            let s = Setup::new(c.clone())?;
            let (_, g) = window_loss(&s, &s.values, &s.weights, &target)?;
            let v = s.values[name];
            grad.push(g[j] * v);
            let at = |f: f64| -> Result<(f64, f64), Box<dyn Error>> {
                // The whole run (transient and window) at the shifted value ...
                let mut c2 = c.clone();
                c2.params.insert(name.clone(), v * f);
                let s2 = Setup::new(c2)?;
                let whole = window_loss(&s2, &s2.values, &s2.weights, &target)?.0;
                // ... and only the window at it, from the unshifted run's state.
                let mut vals = s.values.clone();
                vals.insert(name.clone(), v * f);
                let held = window_loss(&s, &vals, &s.weights, &target)?.0;
                Ok((whole, held))
            };
            let (wp, hp) = at(1.0 + h)?;
            let (wm, hm) = at(1.0 - h)?;
            let dln = ((1.0 + h) / (1.0 - h)).ln();
            whole.push((wp - wm) / dln);
            held.push((hp - hm) / dln);
        }
        let f = |v: &[f64]| {
            let (m, sd) = mean_sd(v);
            let se = sd / (v.len() as f64).sqrt();
            format!("{m:>+10.4} +- {se:<8.4}")
        };
        println!(
            "{name:>6} {:>10.4} {:>22} {:>22} {:>22}",
            cfg.params.get(name).copied().unwrap_or(f64::NAN),
            f(&grad),
            f(&whole),
            f(&held)
        );
    }
    Ok(())
}
