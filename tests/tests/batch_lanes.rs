//! Batched whole-brain runs (`nmm::brain::run_many_in_lanes`; `run_many`, which `nmm brain
//! batch` uses, puts runs in lanes when that is faster): every run equals the same run alone
//! (`nmm::brain::run`) bit for bit, BOLD, FC, FCD and recorded
//! states, in f64 and f32, for MPR with delays, Chen-Campbell and the MLP mean field, with a
//! diverging run among them, and with one thread or two.

use nmm::brain::{Config, ParamValue, Prepared, RunOutput, run, run_many, run_many_in_lanes};
use nmm::progress::Silent;
use std::path::Path;

fn base(model: &str) -> Config {
    let mut cfg = Config {
        model: model.into(),
        duration_ms: 4000.0,
        // Coarser than the default 0.01 ms for MPR and the MLP, to keep the test short; the
        // built-in connectome's delays at this step include links of 1 to 15 steps (gathered
        // per step) and of at least 16 (summed per block).
        dt_ms: Some(if model == "cc" { 0.1 } else { 0.05 }),
        record_every_ms: 5.0,
        ..Config::default()
    };
    cfg.connectome.path = "builtin:8".into();
    cfg.bold.tr_ms = 100.0;
    cfg.fc.transient_ms = 500.0;
    if model == "mlp" {
        cfg.model_file =
            Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/mlp_p06_1.nmmw"));
    }
    cfg
}

/// Bits of an array, so that NaN compares equal to NaN and -0 differs from 0.
fn bits(a: &ndarray::Array2<f64>) -> Vec<u64> {
    a.iter().map(|v| v.to_bits()).collect()
}

fn assert_same(what: &str, a: &RunOutput, b: &RunOutput) {
    assert_eq!(bits(&a.bold), bits(&b.bold), "{what}: BOLD");
    assert_eq!(bits(&a.fc), bits(&b.fc), "{what}: FC");
    assert_eq!(bits(&a.fcd), bits(&b.fcd), "{what}: FCD");
    assert_eq!(a.t_ms, b.t_ms, "{what}: times");
    let (sa, sb) = (a.states.as_ref().unwrap(), b.states.as_ref().unwrap());
    assert_eq!(sa.0, sb.0, "{what}: state times");
    for (x, y) in sa.1.iter().zip(&sb.1) {
        assert_eq!(bits(x), bits(y), "{what}: states");
    }
    assert_eq!(a.sigma, b.sigma, "{what}: noise");
    assert_eq!(a.params, b.params, "{what}: parameters");
}

/// Runs `cfgs` batched and one by one; returns how many diverged.
fn check(what: &str, cfgs: Vec<Config>) -> usize {
    let ps: Vec<Prepared> = cfgs
        .into_iter()
        .map(|c| Prepared::new(c).unwrap())
        .collect();
    let many = run_many_in_lanes(&ps, &Silent).unwrap();
    assert_eq!(many.len(), ps.len());
    let mut diverged = 0;
    for (k, (p, got)) in ps.iter().zip(&many).enumerate() {
        let what = format!("{what}, run {k}");
        match (got, run(p, &Silent)) {
            (Ok(a), Ok(b)) => assert_same(&what, a, &b),
            (Err(a), Err(b)) => {
                assert!(a.is_divergence(), "{what}: {a}");
                assert_eq!(a.to_string(), b.to_string(), "{what}");
                diverged += 1;
            }
            (a, b) => panic!("{what}: batched {:?}, alone {:?}", a.is_ok(), b.is_ok()),
        }
    }
    // The runs really differ from each other (equal runs would prove little).
    let firsts: Vec<u64> = many
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|o| o.bold[[5, 0]].to_bits())
        .collect();
    let mut unique = firsts.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        firsts.len(),
        "{what}: two runs gave the same BOLD"
    );
    diverged
}

/// MPR rows varying G, eta (global and per region), noise and seed: eleven rows make a full
/// batch of eight and a partial one of three; one row's coupling makes it diverge.
fn mpr_rows(precision: &str) -> Vec<Config> {
    let b = Config {
        precision: precision.into(),
        ..base("mpr")
    };
    (0..11)
        .map(|k| {
            let mut c = b.clone();
            c.coupling = 0.05 * k as f64;
            c.seed = 100 + k as u64;
            c.params
                .insert("eta".into(), ParamValue::Global(-5.0 + 0.1 * k as f64));
            if k == 3 {
                let etas = (0..8).map(|i| -4.8 + 0.05 * i as f64).collect();
                c.params.insert("eta".into(), ParamValue::PerRegion(etas));
            }
            if k == 4 {
                c.nsig = Some(vec![0.01, 0.02]);
            }
            if k == 6 {
                c.coupling = 500.0; // diverges within the run
            }
            c
        })
        .collect()
}

#[test]
fn batched_mpr_runs_equal_runs_alone_in_f64_and_f32() {
    assert_eq!(check("mpr f64", mpr_rows("f64")), 1);
    assert_eq!(check("mpr f32", mpr_rows("f32")), 1);
}

#[test]
fn batched_chen_campbell_and_mlp_runs_equal_runs_alone() {
    let cc: Vec<Config> = (0..3)
        .map(|k| Config {
            coupling: 0.02 * k as f64,
            seed: k,
            // Chen-Campbell has no noise by default; some on r and v, so seeds matter.
            noise: Some(vec![1e-4, 1e-3, 0.0, 0.0]),
            ..base("cc")
        })
        .collect();
    assert_eq!(check("cc", cc), 0);
    // f64 rows (a batch of 8 lanes, 3 used) and f32 rows (16 lanes): the lanes' network
    // evaluation has its own code (`MlpScalar::mean_field` on lanes).
    let mlp: Vec<Config> = (0..6)
        .map(|k| {
            let mut c = Config {
                coupling: 0.05 * (k % 3) as f64,
                seed: k,
                precision: if k < 3 { "f64" } else { "f32" }.into(),
                ..base("mlp")
            };
            c.params
                .insert("p".into(), ParamValue::Global(0.6 + 0.2 * (k % 3) as f64));
            c
        })
        .collect();
    assert_eq!(check("mlp", mlp), 0);
}

#[test]
fn batched_results_do_not_depend_on_the_thread_count() {
    let ps: Vec<Prepared> = mpr_rows("f64")
        .into_iter()
        .map(|c| Prepared::new(c).unwrap())
        .collect();
    let on = |threads: usize, lanes: bool| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            if lanes {
                run_many_in_lanes(&ps, &Silent).unwrap()
            } else {
                run_many(&ps, &Silent).unwrap()
            }
        })
    };
    // One thread with the 11 rows in two groups of lanes; two threads with run_many, which runs
    // these rows (they have delays) one per thread: the same results.
    let (one, many) = (on(1, true), on(2, false));
    for (k, (a, b)) in one.iter().zip(&many).enumerate() {
        match (a, b) {
            (Ok(a), Ok(b)) => assert_same(&format!("run {k}"), a, b),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("run {k}: one thread and two disagree on divergence"),
        }
    }
}
