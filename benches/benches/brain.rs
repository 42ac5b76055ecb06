//! Whole-brain throughput (issue workload), printed as figures.
//!
//! Run: `cargo bench -p nmm-benches --bench brain` (add `-- quick` for a 10 s run instead of
//! 60 s).
//!
//! Workload (the TVB comparison of the issue): TVB's connectivity_76 (weights divided by their
//! max, zero diagonal, delays from tract lengths at 3 mm/ms), MPR with TVB's defaults
//! (tau = 1 ms, Delta = 1, eta = -5, J = 15), coupling G = 0.1 on r, additive noise of TVB's
//! nsig = (0.01, 0.02) on (r, v), i.e. amplitudes sqrt(2 nsig), stochastic Heun, dt = 0.1 ms,
//! 60 s simulated, BOLD (stephan2007) at TR 2 s with FC and FCD. One thread; best of three.
//! TVB takes about 120 s for this run on one core of this machine (issue figure), so the
//! ratio printed is 120 s / nmm's wall time.
//!
//! Then: scaling with regions (connectivity_68, connectivity_192, builtin:1000) and with batch
//! size (independent runs on a rayon pool of all cores).
//!
//! The bound, as measured with `perf stat` on the 76-region run (2026-11, AMD EPYC Zen 3): about
//! 280 instructions per region and step at about 3.9 instructions per cycle, i.e. the core's
//! issue width, not memory (the history ring, (max delay + 16 steps) x regions values, is
//! 0.32 MB: it stays in L2) nor the coupling product (20 links per region: 20 multiply-adds,
//! a few cycles in AVX2). Per region and step: two normal draws (ziggurat on xoshiro256++,
//! about a quarter of the instructions), two MPR derivative evaluations with the Heun
//! combinations (about a third), the blocked coupling sums (about a tenth), BOLD (a few
//! percent). Beyond this needs the per-region work vectorised across regions.

use nmm::brain::{BoldCfg, Config, ConnectomeCfg, FcCfg, ParamValue, Prepared, run};
use rayon::prelude::*;
use std::path::Path;
use std::time::Instant;

/// TVB's wall time for the 76-region, 60 s run on one core of this machine (issue figure), s.
const TVB_SECONDS: f64 = 120.0;

fn tvb(n: usize) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/tvb")
        .join(format!("connectivity_{n}.zip"));
    assert!(p.exists(), "benchmark data missing: {}", p.display());
    p.to_string_lossy().into_owned()
}

fn config(path: String, duration_ms: f64, precision: &str) -> Config {
    Config {
        model: "mpr".into(),
        duration_ms,
        dt_ms: Some(0.1),
        coupling: 0.1,
        // TVB's MPR as it comes (eta = -5, TVB's noise), for the comparison with TVB.
        nsig: Some(vec![0.01, 0.02]),
        params: [("eta".to_string(), ParamValue::Global(-5.0))].into(),
        precision: precision.into(),
        connectome: ConnectomeCfg {
            path,
            speed_mm_per_ms: 3.0,
            ..ConnectomeCfg::default()
        },
        // FC and FCD need 19 BOLD samples (runs refuse fewer): TR 2 s for a minute, shorter for
        // the short runs (a multiple of the 5 ms BOLD step); no transient.
        bold: BoldCfg {
            tr_ms: (duration_ms / 20.0 / 5.0).floor().clamp(1.0, 400.0) * 5.0,
            ..BoldCfg::default()
        },
        fc: FcCfg {
            transient_ms: 0.0,
            ..FcCfg::default()
        },
        ..Config::default()
    }
}

/// Best wall time of `reps` runs of the simulation loop (connectome reading excluded).
fn best(p: &Prepared, reps: usize) -> f64 {
    (0..reps)
        .map(|_| run(p, &|_, _| {}).expect("run").wall_s)
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let dur = if quick { 10_000.0 } else { 60_000.0 };
    println!(
        "whole-brain benchmark ({} s simulated per run, dt = 0.1 ms)",
        dur / 1000.0
    );
    println!();
    println!(
        "{:<22} {:>6} {:>7} {:>9} {:>12} {:>14} {:>12}",
        "connectome", "prec", "links", "max d ms", "s per 60 s", "region-steps/s", "ns/link-step"
    );
    for (name, path, precs) in [
        ("tvb connectivity_76", tvb(76), vec!["f64", "f32"]),
        ("tvb connectivity_68", tvb(68), vec!["f64"]),
        ("tvb connectivity_192", tvb(192), vec!["f64"]),
        ("builtin:1000", "builtin:1000".to_string(), vec!["f64"]),
    ] {
        for prec in precs {
            // 1000 regions: a tenth of the time (the per-link cost is what scales), and weights
            // normalised by row sums so the stronger total input keeps MPR in range.
            let big = name.starts_with("builtin:1000");
            let d = if big { dur / 10.0 } else { dur };
            let mut cfg = config(path.clone(), d, prec);
            if big {
                cfg.connectome.normalise = vec!["rowsum".into()];
            }
            let p = Prepared::new(cfg).expect("config");
            let links = p.weights.iter().filter(|w| **w != 0.0).count();
            let wall = best(&p, if quick { 1 } else { 3 });
            let scaled = wall * 60_000.0 / d; // wall time for 60 s simulated
            let rs = p.steps as f64 * p.conn.n as f64 / wall;
            println!(
                "{name:<22} {prec:>6} {links:>7} {:>9.1} {:>12.3} {rs:>14.3e} {:>12.2}",
                p.delays.iter().max().copied().unwrap_or(0) as f64 * 0.1,
                scaled,
                wall * 1e9 / (p.steps as f64 * links as f64)
            );
            if name == "tvb connectivity_76" && prec == "f64" {
                println!(
                    "{:<22} TVB ~{TVB_SECONDS} s for 60 s: nmm is {:.0}x faster (target >= 100x)",
                    "",
                    TVB_SECONDS / scaled
                );
            }
        }
    }
    println!();
    let threads = rayon::current_num_threads();
    println!(
        "batch of independent 76-region runs ({} s each) on {threads} threads:",
        dur / 6000.0
    );
    println!(
        "{:>6} {:>10} {:>12} {:>16}",
        "batch", "wall s", "runs/s", "region-steps/s"
    );
    for b in [1usize, 2, 4, 8] {
        let ps: Vec<Prepared> = (0..b)
            .map(|k| {
                let mut c = config(tvb(76), dur / 6.0, "f64");
                c.seed = k as u64;
                Prepared::new(c).expect("config")
            })
            .collect();
        let t = Instant::now();
        ps.par_iter().for_each(|p| {
            run(p, &|_, _| {}).expect("run");
        });
        let wall = t.elapsed().as_secs_f64();
        let rs = b as f64 * ps[0].steps as f64 * 76.0 / wall;
        println!("{b:>6} {wall:>10.3} {:>12.2} {rs:>16.3e}", b as f64 / wall);
    }
}
