//! End-to-end tests of `nmm train`: a small spiking sweep trained into a weight file with
//! metadata and figures, and clear errors (naming the file) for bad training data.

use crate::util::{nmm, stderr};
use ndarray::Array1;
use ndarray_npy::NpzWriter;
use nmm_core::mlp::MlpMeanField;
use nmm_core::mlp::format::metadata;
use std::fs::File;
use std::path::Path;

/// A run file as `nmm spiking` writes it (t at bin centres every 0.01), with `skip` arrays
/// left out and `nan_at` an index of `r` set to NaN.
fn write_run(path: &Path, n: usize, skip: &[&str], nan_at: Option<usize>, network: &str) {
    let t: Array1<f64> = (0..n).map(|k| 0.005 + 0.01 * k as f64).collect();
    let mut r: Array1<f64> = t.mapv(|t| 0.3 + 0.1 * t.sin());
    if let Some(k) = nan_at {
        r[k] = f64::NAN;
    }
    let v = t.mapv(|t| -1.0 + 0.2 * t.cos());
    let input = t.mapv(|t| 0.5 * (3.0 * t).sin());
    let meta = format!(
        r#"{{"network": "{network}", "p": 1.0, "params": {{"J": 15.0, "eta": -5.0, "tau": 1.0, "delta": 1.0}}}}"#
    );
    let mut w = NpzWriter::new(File::create(path).unwrap());
    for (name, a) in [("t", &t), ("r", &r), ("v", &v), ("input", &input)] {
        if !skip.contains(&name) {
            w.add_array(name, a).unwrap();
        }
    }
    w.add_array("meta", &Array1::from(meta.into_bytes()))
        .unwrap();
    w.finish().unwrap();
}

/// A 4-run QIF sweep (N = 300, 4 time units) trained for 3 epochs: the weight file loads in
/// core, its metadata records the settings, the figures exist, and the weights do not depend
/// on the number of threads.
#[test]
fn trains_a_sweep_into_a_weight_file() {
    let dir = tempfile::tempdir().unwrap();
    let grid = dir.path().join("grid.toml");
    std::fs::write(
        &grid,
        "network = \"qif\"\nN = 300\ndt = 1e-3\nt_end = 4.0\nstim = \"noise:1:1.1\"\n[params]\ndelta = 1.0\n[grid]\nJ = [10.0, 15.0]\neta = [-5.0]\np = [0.8, 1.0]\n",
    )
    .unwrap();
    let sweep = dir.path().join("sweep");
    let s = sweep.to_str().unwrap();
    let o = nmm(&[
        "spiking",
        "sweep",
        "--grid",
        grid.to_str().unwrap(),
        "--out",
        s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    let model = dir.path().join("m.nmmw");
    let figs = dir.path().join("figs");
    let args = |out: &Path, jobs: &'static str| {
        vec![
            "train".to_string(),
            "--data".into(),
            s.into(),
            "--out".into(),
            out.to_str().unwrap().into(),
            "--epochs".into(),
            "3".into(),
            "--rollout".into(),
            "5".into(),
            "--batch".into(),
            "16".into(),
            "--seed".into(),
            "2".into(),
            "--jobs".into(),
            jobs.into(),
        ]
    };
    let mut a = args(&model, "2");
    a.extend(["--plot-dir".into(), figs.to_str().unwrap().into()]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let o = nmm(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("3 for training") && said.contains("1 for validation"),
        "{said}"
    );

    let bytes = std::fs::read(&model).unwrap();
    let m = MlpMeanField::<f64>::from_bytes(&bytes).unwrap();
    let meta: serde_json::Value = serde_json::from_str(metadata(&bytes).unwrap()).unwrap();
    assert_eq!(meta["seed"], 2);
    assert_eq!(meta["epochs"], 3);
    assert_eq!(meta["rollout"], 5);
    assert_eq!(meta["dt"].as_f64(), Some(0.1));
    assert_eq!(meta["p_range"], serde_json::json!([0.8, 1.0]));
    assert_eq!(meta["nmm_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(meta["data"][0], s);
    assert!(meta["command"].as_str().unwrap().contains("train"));
    assert!(meta["final_loss"]["train"].as_f64().unwrap() > 0.0);
    assert!(meta["final_loss"]["validation"].as_f64().unwrap() > 0.0);
    assert_eq!(meta["loss_history"]["train"].as_array().unwrap().len(), 3);
    // p is in [0.8, 1]: its scale is its spread, not 1.
    assert!((m.norm().in_mean[3] - 0.9).abs() < 0.11);
    for f in ["loss.svg", "heldout_1.svg"] {
        let svg = std::fs::read_to_string(figs.join(f)).unwrap();
        assert!(svg.starts_with("<svg"), "{f}");
    }

    // The training above with extra arguments.
    let with = |out: &Path, jobs: &'static str, extra: &[&str]| {
        let mut a = args(out, jobs);
        a.extend(extra.iter().map(|x| x.to_string()));
        nmm(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let load = |f: &Path| MlpMeanField::<f64>::from_bytes(&std::fs::read(f).unwrap()).unwrap();
    // Warm start on MPR (Delta and tau from the sweep's metadata), then on from a model.
    let warm = dir.path().join("warm.nmmw");
    let ws = warm.to_str().unwrap();
    let o = with(&warm, "2", &["--prior-epochs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let wm: serde_json::Value =
        serde_json::from_str(metadata(&std::fs::read(&warm).unwrap()).unwrap()).unwrap();
    assert_eq!(wm["prior"]["field"], "MPR with J -> J p");
    assert_eq!(wm["prior"]["delta"].as_f64(), Some(1.0));
    assert_eq!(wm["prior"]["epochs"], 2);
    assert!(wm["prior"]["loss"].as_f64().unwrap() > 0.0);
    let wmodel = load(&warm);
    // The warm start changed the weights, and does not depend on the number of threads.
    assert_ne!(wmodel.net(), m.net());
    let warm1 = dir.path().join("warm1.nmmw");
    assert!(with(&warm1, "1", &["--prior-epochs", "2"]).status.success());
    assert_eq!(load(&warm1).net(), wmodel.net());
    // --init: with a learning rate of 1e-9 (Adam moves a weight by about 1e-9 per step, a
    // few dozen steps here) the weights stay the init model's to 1e-6 (f32 storage rounds
    // weights of order 1 by ~1e-7), and so does the normalisation.
    let from = dir.path().join("from.nmmw");
    let o = with(&from, "2", &["--init", ws, "--lr", "1e-9"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let fm = load(&from);
    assert_eq!(fm.norm(), wmodel.norm());
    let moved = fm
        .net()
        .iter()
        .zip(wmodel.net().iter())
        .fold(0.0f64, |a, (x, y)| a.max((x - y).abs()));
    assert!(moved < 1e-6, "weights moved by {moved}");
    // Both starting points at once is an error.
    let never = dir.path().join("never.nmmw");
    let o = with(&never, "2", &["--init", ws, "--prior-epochs", "2"]);
    assert!(!o.status.success() && stderr(&o).contains("--init and --prior-epochs"));
    assert!(!never.exists());
    // A width other than --hidden is refused, naming the file and both shapes.
    let o = with(&never, "2", &["--init", ws, "--hidden", "16"]);
    assert!(!o.status.success() && !never.exists());
    for needle in ["warm.nmmw", "6-6-6-2", "--hidden 16"] {
        assert!(stderr(&o).contains(needle), "{needle}: {}", stderr(&o));
    }

    let again = dir.path().join("m1.nmmw");
    let a = args(&again, "1");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let o = nmm(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    let m1 = MlpMeanField::<f64>::from_bytes(&std::fs::read(&again).unwrap()).unwrap();
    assert_eq!(m.net(), m1.net());
    assert_eq!(m.norm(), m1.norm());
}

/// Bad data: each error names the directory or file and the problem; nothing is written.
#[test]
fn bad_training_data_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.nmmw");
    let o_path = out.to_str().unwrap();
    let case = |name: &str, setup: &dyn Fn(&Path), extra: &[&str], needles: &[&str]| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        setup(&d);
        let ds = d.to_str().unwrap();
        let mut args = vec!["train", "--data", ds, "--out", o_path, "--epochs", "1"];
        args.extend_from_slice(extra);
        let o = nmm(&args);
        assert!(!o.status.success(), "{name}: should fail");
        for n in needles {
            assert!(
                stderr(&o).contains(n),
                "{name}: {:?} not in {}",
                n,
                stderr(&o)
            );
        }
        assert!(!out.exists(), "{name}: output written");
    };
    let missing = dir.path().join("nope");
    let o = nmm(&[
        "train",
        "--data",
        missing.to_str().unwrap(),
        "--out",
        o_path,
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("nope") && stderr(&o).contains("does not exist")
    );
    case("empty", &|_| {}, &[], &["no runs in", "empty"]);
    case(
        "noinput",
        &|d| {
            write_run(&d.join("a.npz"), 200, &[], None, "qif");
            write_run(&d.join("b.npz"), 200, &["input"], None, "qif");
        },
        &[],
        &["b.npz", "`input`"],
    );
    case(
        "nan",
        &|d| {
            write_run(&d.join("a.npz"), 200, &[], None, "qif");
            write_run(&d.join("b.npz"), 200, &[], Some(17), "qif");
        },
        &[],
        &["b.npz", "non-finite", "`r` at index 17"],
    );
    case(
        "short",
        &|d| write_run(&d.join("a.npz"), 30, &[], None, "qif"),
        &[],
        &["a.npz", "fewer than --rollout + 1"],
    );
    case(
        "baddt",
        &|d| write_run(&d.join("a.npz"), 200, &[], None, "qif"),
        &["--dt", "0.025"],
        &["a.npz", "whole multiple"],
    );
    case(
        "izh",
        &|d| write_run(&d.join("a.npz"), 200, &[], None, "izh"),
        &[],
        &["a.npz", "izh"],
    );
    case(
        "manifest",
        &|d| {
            std::fs::write(
                d.join("manifest.csv"),
                "run,J,eta,p,seed,stim_seed,file\n0,10,-5,1,1,1,run_000000.npz\n",
            )
            .unwrap();
        },
        &[],
        &["none of the 1 runs"],
    );
    case(
        "badflag",
        &|d| write_run(&d.join("a.npz"), 200, &[], None, "qif"),
        &["--val-fraction", "1.5"],
        &["--val-fraction"],
    );
    // A good directory trains (without a manifest: parameters from the files' metadata).
    let d = dir.path().join("good");
    std::fs::create_dir_all(&d).unwrap();
    write_run(&d.join("a.npz"), 300, &[], None, "qif");
    let o = nmm(&[
        "train",
        "--data",
        d.to_str().unwrap(),
        "--out",
        o_path,
        "--epochs",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.exists());
}
