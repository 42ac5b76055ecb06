//! Batch throughput on issue 20's workload W, the whole pipeline (stepping, BOLD, FC, FCD)
//! through `nmm::brain::run_many_in_lanes` (what `nmm brain batch` does for batches this size);
//! printed as figures.
//!
//! Run: `cargo bench -p nmm-benches --bench batch` (add `-- quick` for 10 s runs instead of
//! 60 s; results are then scaled to 60 s). The peer: `taskset -c 0 python3
//! benches/peers/vbjax_batch.py --precision f32|f64 --batch 8` (vbjax from PyPI), which runs
//! the same workload in JAX with `jax.vmap`, one thread, steady state after compilation.
//!
//! Workload W: TVB connectivity_76 (weights / max, zero diagonal, no delays); MPR nodes
//! (tau 1 ms, Delta 1, J 15, eta = -5 + 0.01 k for run k); G = 0.1; nsig = (0.01, 0.02);
//! stochastic Heun at dt = 0.1 ms, r >= 0; BOLD ("vbjax" preset) from 5 ms means of r, TR 2 s;
//! 60 s; FC and FCD. Also MLP nodes (the shipped mlp_p06_1.nmmw, p = 0.8), which the paper's
//! 160,000 simulations used.
//!
//! Printed per case: one thread, batched (lanes) against one run at a time; then all threads.
//! Medians of `reps` paired repetitions (batched and unbatched alternate), with min and max.
//! `NMM_BENCH_BATCHED_ONLY=1` skips the one-at-a-time runs (for profiling the batched path,
//! and for comparing with the peer in less time). `NMM_BENCH_THREADS=1,2,4,8,16` times those
//! thread counts (each with that many batches) instead of one and all of the cores.

use nmm::brain::{BoldCfg, Config, ConnectomeCfg, FcCfg, ParamValue, Prepared, run_many_in_lanes};
use nmm::progress::Silent;
use std::path::Path;
use std::time::Instant;

fn data(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    assert!(p.exists(), "benchmark data missing: {}", p.display());
    p.to_string_lossy().into_owned()
}

fn workload(model: &str, precision: &str, k: usize, duration_ms: f64) -> Config {
    let mut params = std::collections::BTreeMap::new();
    params.insert(
        "eta".to_string(),
        ParamValue::Global(-5.0 + 0.01 * k as f64),
    );
    if model == "mlp" {
        params.insert("p".to_string(), ParamValue::Global(0.8));
    }
    Config {
        model: model.into(),
        model_file: (model == "mlp").then(|| data("../models/mlp_p06_1.nmmw").into()),
        duration_ms,
        dt_ms: Some(0.1),
        coupling: 0.1,
        nsig: Some(vec![0.01, 0.02]),
        params,
        precision: precision.into(),
        seed: k as u64,
        connectome: ConnectomeCfg {
            path: data("../../shared/data/tvb/connectivity_76.zip"),
            delays: false,
            ..ConnectomeCfg::default()
        },
        bold: BoldCfg {
            preset: "vbjax".into(),
            tr_ms: if duration_ms >= 60_000.0 {
                2000.0
            } else {
                500.0
            },
            ..BoldCfg::default()
        },
        fc: FcCfg {
            transient_ms: 0.0,
            ..FcCfg::default()
        },
        ..Config::default()
    }
}

/// Wall time of running `ps` with `run_many` on a pool of `threads`, s; `alone` runs them
/// one at a time (no lanes: each row in its own group, as before batching).
fn time(ps: &[Prepared], threads: usize, alone: bool) -> f64 {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    let t = Instant::now();
    pool.install(|| {
        if alone {
            for p in ps {
                nmm::brain::run(p, &Silent).expect("run");
            }
        } else {
            for r in run_many_in_lanes(ps, &Silent).expect("batch") {
                r.expect("run");
            }
        }
    });
    t.elapsed().as_secs_f64()
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let dur = if quick { 10_000.0 } else { 60_000.0 };
    let reps = if quick { 3 } else { 5 };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "workload W, {} s simulated per run (figures per 60 s), medians of {reps} (min-max)",
        dur / 1000.0
    );
    println!(
        "{:<5} {:<4} {:>4} {:>7} {:>24} {:>24} {:>8}",
        "model", "prec", "runs", "threads", "batched sims/min", "one at a time sims/min", "ratio"
    );
    let counts: Vec<usize> = match std::env::var("NMM_BENCH_THREADS") {
        Ok(list) => list
            .split(',')
            .map(|t| match t.trim().parse() {
                Ok(n) if n > 0 => n,
                _ => panic!("NMM_BENCH_THREADS={list}: positive counts, comma-separated"),
            })
            .collect(),
        Err(_) => vec![1, cores],
    };
    for (model, prec, runs) in [
        ("mpr", "f64", 8),
        ("mpr", "f32", 16),
        ("mlp", "f64", 8),
        ("mlp", "f32", 16),
    ] {
        // NMM_BENCH_CASE=mlp-f64 (say) runs one case only.
        if std::env::var("NMM_BENCH_CASE").is_ok_and(|c| c != format!("{model}-{prec}")) {
            continue;
        }
        let ps: Vec<Prepared> = (0..runs)
            .map(|k| Prepared::new(workload(model, prec, k, dur)).expect("config"))
            .collect();
        for &threads in &counts {
            // With more threads, as many batches as threads.
            let ps: Vec<Prepared> = (0..threads)
                .flat_map(|_| {
                    ps.iter()
                        .map(|p| Prepared::new(p.cfg.clone()).expect("config"))
                })
                .collect();
            let per_min = |t: f64| ps.len() as f64 * 60.0 / (t * 60_000.0 / dur);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..reps {
                a.push(per_min(time(&ps, threads, false)));
                // NMM_BENCH_BATCHED_ONLY=1 skips the one-at-a-time runs (for profiling).
                if threads == 1 && std::env::var("NMM_BENCH_BATCHED_ONLY").is_err() {
                    b.push(per_min(time(&ps, threads, true)));
                }
            }
            let (am, alo, ahi) = stats(a);
            let alone = if b.is_empty() {
                "-".to_string()
            } else {
                let (bm, blo, bhi) = stats(b.clone());
                format!("{bm:.1} ({blo:.1}-{bhi:.1})")
            };
            let ratio = if b.is_empty() {
                "-".to_string()
            } else {
                format!("{:.2}", am / stats(b).0)
            };
            println!(
                "{model:<5} {prec:<4} {:>4} {threads:>7} {:>24} {alone:>24} {ratio:>8}",
                ps.len(),
                format!("{am:.1} ({alo:.1}-{ahi:.1})"),
            );
            let rs = am / 60.0 * 76.0 * 600_000.0;
            println!("{:<31} batched: {rs:.3e} region-steps/s", "");
        }
    }
}
