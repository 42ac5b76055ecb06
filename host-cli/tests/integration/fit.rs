//! `nmm fit`: a synthetic subject written with `--synthetic`, a fit to it, the results file,
//! its record and figure, and errors naming the flag or file.

use crate::util::{nmm, ok, stderr};
use ndarray::{Array1, Array2};
use ndarray_npy::{NpzReader, read_npy, write_npy};
use std::fs::File;

const CONFIG: &str = "transient_ms = 3000.0\nwindow_tr = 10\n[connectome]\npath = \"builtin:4\"\n\
                      delays = false\nnormalise = [\"griffiths2022\"]\n";

/// Pearson FC of `bold` (time x regions), computed directly.
fn pearson_fc(bold: &Array2<f64>) -> Array2<f64> {
    let n = bold.ncols();
    Array2::from_shape_fn((n, n), |(i, j)| {
        let (a, b) = (bold.column(i), bold.column(j));
        let (ma, mb) = (a.mean().unwrap(), b.mean().unwrap());
        let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    })
}

#[test]
fn fits_a_synthetic_subject_and_writes_results_record_and_figure() {
    let d = tempfile::tempdir().unwrap();
    let p = |f: &str| d.path().join(f).to_string_lossy().into_owned();
    std::fs::write(
        d.path().join("truth.toml"),
        format!("{CONFIG}[params]\nG = 0.6\n"),
    )
    .unwrap();
    std::fs::write(d.path().join("start.toml"), CONFIG).unwrap();
    ok(nmm(&[
        "fit",
        "--config",
        &p("truth.toml"),
        "--bold",
        &p("emp.npy"),
        "--synthetic",
        "40",
        "--seed",
        "7",
    ]));
    let emp: Array2<f64> = read_npy(d.path().join("emp.npy")).unwrap();
    assert_eq!(emp.dim(), (40, 4));
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("emp.json")).unwrap()).unwrap();
    assert_eq!(rec["seed"], 7);
    assert_eq!(rec["values"]["G"], 0.6);
    let o = ok(nmm(&[
        "fit",
        "--config",
        &p("start.toml"),
        "--bold",
        &p("emp.npy"),
        "--epochs",
        "2",
        "--out",
        &p("fit.npz"),
        "--plot",
        &p("fit.svg"),
    ]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("4 windows of 10 TRs"), "{out}");
    let mut z = NpzReader::new(File::open(d.path().join("fit.npz")).unwrap()).unwrap();
    let values: Array2<f64> = z.by_name("values").unwrap();
    let loss: Array1<f64> = z.by_name("loss").unwrap();
    let fc_r: Array1<f64> = z.by_name("fc_r").unwrap();
    let emp_fc: Array2<f64> = z.by_name("emp_fc").unwrap();
    let sim_fc: Array2<f64> = z.by_name("sim_fc").unwrap();
    let names: Array1<u8> = z.by_name("names").unwrap();
    assert_eq!(
        String::from_utf8(names.to_vec()).unwrap(),
        "G,g_EE,g_EI,g_IE"
    );
    assert_eq!(values.dim(), (2, 4));
    assert_eq!(loss.len(), 2);
    assert!(
        values
            .iter()
            .chain(&loss)
            .all(|v| v.is_finite() && *v != 0.0)
    );
    // The empirical FC is the Pearson FC of the BOLD given, to rounding; the simulated one is
    // a correlation matrix (symmetric, unit diagonal, entries in [-1, 1]).
    let direct = pearson_fc(&emp);
    for (a, b) in emp_fc.iter().zip(&direct) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    for i in 0..4 {
        assert_eq!(sim_fc[[i, i]], 1.0);
        for j in 0..4 {
            assert_eq!(sim_fc[[i, j]], sim_fc[[j, i]]);
            assert!(sim_fc[[i, j]].abs() <= 1.0 + 1e-12);
        }
    }
    // The last epoch's whole-run FC correlation is that of the matrices written.
    let lower = |m: &Array2<f64>| -> Vec<f64> {
        (0..4)
            .flat_map(|i| (0..i).map(move |j| (i, j)))
            .map(|(i, j)| m[[i, j]])
            .collect()
    };
    let (a, b) = (lower(&sim_fc), lower(&emp_fc));
    let r = {
        let (ma, mb) = (a.iter().sum::<f64>() / 6.0, b.iter().sum::<f64>() / 6.0);
        let c: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        c / (va * vb).sqrt()
    };
    assert!((r - fc_r[1]).abs() < 1e-9, "{r} vs {}", fc_r[1]);
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("fit.json")).unwrap()).unwrap();
    assert_eq!(rec["windows_per_epoch"], 4);
    assert_eq!(rec["final"]["G"].as_f64().unwrap(), values[[1, 0]]);
    let svg = std::fs::read_to_string(d.path().join("fit.svg")).unwrap();
    assert!(svg.contains("fitted values") && svg.contains("empirical below the diagonal"));

    // Three noise realisations per window and a falling rate: named in the summary line and
    // recorded.
    std::fs::write(
        d.path().join("three.toml"),
        format!("realisations = 3\nlr_final = 0.01\nmse_weight = 5.0\n{CONFIG}"),
    )
    .unwrap();
    let o = ok(nmm(&[
        "fit",
        "--config",
        &p("three.toml"),
        "--bold",
        &p("emp.npy"),
        "--epochs",
        "1",
        "--out",
        &p("three.npz"),
    ]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("of the mean FC of 3 noise realisations"),
        "{out}"
    );
    assert!(out.contains("Adam lr 0.05 falling to 0.01"), "{out}");
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("three.json")).unwrap())
            .unwrap();
    assert_eq!(rec["config"]["realisations"], 3);
    assert_eq!(rec["config"]["lr_final"], 0.01);

    // Errors name the flag or file, and nothing is written.
    let run = |args: &[&str]| stderr(&nmm(args));
    write_npy(d.path().join("five.npy"), &Array2::<f64>::ones((40, 5))).unwrap();
    let e = run(&[
        "fit",
        "--config",
        &p("start.toml"),
        "--bold",
        &p("five.npy"),
        "--out",
        &p("x.npz"),
    ]);
    assert!(e.contains("--bold") && e.contains("5 regions"), "{e}");
    let short = emp.slice(ndarray::s![..5, ..]).to_owned();
    write_npy(d.path().join("short.npy"), &short).unwrap();
    let e = run(&[
        "fit",
        "--config",
        &p("start.toml"),
        "--bold",
        &p("short.npy"),
        "--out",
        &p("x.npz"),
    ]);
    assert!(e.contains("window_tr") && e.contains("5 samples"), "{e}");
    write_npy(d.path().join("fc3.npy"), &Array2::<f64>::eye(3)).unwrap();
    let e = run(&[
        "fit",
        "--config",
        &p("start.toml"),
        "--bold",
        &p("emp.npy"),
        "--fc",
        &p("fc3.npy"),
        "--out",
        &p("x.npz"),
    ]);
    assert!(e.contains("--fc") && e.contains("[3, 3]"), "{e}");
    // Deterministic for a seed: the same run again (replacing the files) gives the same
    // values, bit for bit.
    ok(nmm(&[
        "fit",
        "--config",
        &p("start.toml"),
        "--bold",
        &p("emp.npy"),
        "--epochs",
        "2",
        "--out",
        &p("fit.npz"),
    ]));
    let mut z = NpzReader::new(File::open(d.path().join("fit.npz")).unwrap()).unwrap();
    let again: Array2<f64> = z.by_name("values").unwrap();
    assert_eq!(again, values);
    std::fs::write(d.path().join("bad.toml"), "epochs = 2\nwindow = 3\n").unwrap();
    let e = run(&[
        "fit",
        "--config",
        &p("bad.toml"),
        "--bold",
        &p("emp.npy"),
        "--out",
        &p("x.npz"),
    ]);
    assert!(e.contains("bad.toml") && e.contains("window"), "{e}");
    assert!(!d.path().join("x.npz").exists());
}

#[test]
fn fits_connectome_gains_by_reverse_mode() {
    let d = tempfile::tempdir().unwrap();
    let p = |f: &str| d.path().join(f).to_string_lossy().into_owned();
    std::fs::write(
        d.path().join("truth.toml"),
        format!("{CONFIG}[params]\nG = 2.0\n"),
    )
    .unwrap();
    std::fs::write(
        d.path().join("gains.toml"),
        format!("connectome_gains = true\nmse_weight = 5.0\n{CONFIG}"),
    )
    .unwrap();
    ok(nmm(&[
        "fit",
        "--config",
        &p("truth.toml"),
        "--bold",
        &p("emp.npy"),
        "--synthetic",
        "30",
    ]));
    let o = ok(nmm(&[
        "fit",
        "--config",
        &p("gains.toml"),
        "--bold",
        &p("emp.npy"),
        "--epochs",
        "2",
        "--seed",
        "3",
        "--out",
        &p("fit.npz"),
    ]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("one gain per connectome link"), "{out}");
    let mut z = NpzReader::new(File::open(d.path().join("fit.npz")).unwrap()).unwrap();
    let gains: Array2<f64> = z.by_name("gains").unwrap();
    let sc: Array2<f64> = z.by_name("fitted_sc").unwrap();
    let fc_mse: Array1<f64> = z.by_name("fc_mse").unwrap();
    assert_eq!((gains.dim(), sc.dim(), fc_mse.len()), ((4, 4), (4, 4), 2));
    // Symmetric gains in (0, 2), moved from 1 by 6 Adam steps of lr 0.05 (each moves b by
    // about lr), zero on the diagonal and where the connectome has no link.
    let mut moved = 0;
    for i in 0..4 {
        assert_eq!(gains[[i, i]], 0.0);
        for j in 0..4 {
            assert_eq!(gains[[i, j]], gains[[j, i]]);
            if i != j && sc[[i, j]] != 0.0 {
                assert!(gains[[i, j]] > 0.0 && gains[[i, j]] < 2.0);
                moved += usize::from((gains[[i, j]] - 1.0).abs() > 0.01);
            } else {
                assert_eq!(gains[[i, j]], 0.0);
            }
        }
    }
    assert!(moved > 0, "{gains}");
    // The fitted connectome keeps the Frobenius norm of the one it started from: 1, after
    // griffiths2022's log1p and Frobenius steps.
    let norm = sc.iter().map(|w| w * w).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-12, "{norm}");
    assert!(fc_mse.iter().all(|v| v.is_finite()));

    // Gains need Laplacian coupling: a configuration without it is refused, naming the key.
    std::fs::write(
        d.path().join("max.toml"),
        "connectome_gains = true\n[connectome]\npath = \"builtin:4\"\ndelays = false\nnormalise = [\"max\"]\n",
    )
    .unwrap();
    let e = stderr(&nmm(&[
        "fit",
        "--config",
        &p("max.toml"),
        "--bold",
        &p("emp.npy"),
        "--out",
        &p("x.npz"),
    ]));
    assert!(
        e.contains("connectome_gains") && e.contains("laplacian"),
        "{e}"
    );
    assert!(!d.path().join("x.npz").exists());
}
