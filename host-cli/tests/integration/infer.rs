//! End-to-end tests of `nmm infer train` and `nmm infer sample` with the command contract of
//! issue 17: file names and shapes, the posterior file, the samples and their record, and clear
//! errors naming the file or flag.

use crate::util::{nmm, ok, stderr};
use ndarray::{Array1, Array2};
use ndarray_npy::{read_npy, write_npy};
use std::path::Path;

/// x = theta + N(0, 0.1^2) for theta ~ N(0, 1) (a) and U(-1, 1) (b): the posterior at x_o sits
/// near x_o.
fn write_problem(dir: &Path, n: usize) {
    let mut rng = nmm_core::rng::stream(4, 0);
    let prior =
        "[[param]]\nname = \"a\"\nnormal = [0, 1]\n\n[[param]]\nname = \"b\"\nuniform = [-1, 1]\n";
    std::fs::write(dir.join("prior.toml"), prior).unwrap();
    let p = nmm::infer::Prior::from_toml_str(prior).unwrap();
    let mut theta = Array2::<f64>::zeros((n, 2));
    let mut x = Array2::<f32>::zeros((n, 2));
    let mut t = [0.0; 2];
    for r in 0..n {
        p.sample_into(&mut rng, &mut t);
        for j in 0..2 {
            theta[[r, j]] = t[j];
            x[[r, j]] = (t[j] + 0.1 * nmm::infer::standard_normal(&mut rng)) as f32;
        }
    }
    write_npy(dir.join("theta.npy"), &theta).unwrap();
    // float32 features, as many simulators write them.
    write_npy(dir.join("x.npy"), &x).unwrap();
    write_npy(dir.join("xo.npy"), &Array1::from(vec![0.3f64, 0.9])).unwrap();
}

#[test]
fn trains_and_samples_with_the_contracts_names() {
    let d = tempfile::tempdir().unwrap();
    write_problem(d.path(), 1500);
    let p = |f: &str| d.path().join(f).to_string_lossy().into_owned();
    let o = ok(nmm(&[
        "infer",
        "train",
        "--theta",
        &p("theta.npy"),
        "--x",
        &p("x.npy"),
        "--prior",
        &p("prior.toml"),
        "--out",
        &p("post.nmmp"),
        "--seed",
        "3",
        "--hidden",
        "16",
        "--transforms",
        "2",
        "--lr",
        "0.003",
    ]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("1500 pairs") && out.contains("wrote"), "{out}");
    let post = nmm::infer::Posterior::read(&d.path().join("post.nmmp")).unwrap();
    assert_eq!(post.settings.seed, 3);
    assert_eq!(post.prior.names(), ["a", "b"]);
    assert!(post.command.contains("infer train"));
    ok(nmm(&[
        "infer",
        "sample",
        "--posterior",
        &p("post.nmmp"),
        "--observed",
        &p("xo.npy"),
        "--n",
        "4000",
        "--seed",
        "5",
        "--out",
        &p("s.npy"),
    ]));
    let s: Array2<f64> = read_npy(d.path().join("s.npy")).unwrap();
    assert_eq!(s.dim(), (4000, 2));
    // Bounded: every b in [-1, 1]; and the draws sit near x_o (a: N(0.3, 0.1) roughly, b the
    // same cut at 1, mean about 0.87; a loose 0.1 on the means for a small flow trained fast).
    assert!(s.column(1).iter().all(|v| v.abs() <= 1.0));
    let m = [s.column(0).mean().unwrap(), s.column(1).mean().unwrap()];
    assert!(
        (m[0] - 0.3).abs() < 0.1 && (m[1] - 0.9).abs() < 0.1,
        "{m:?}"
    );
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("s.json")).unwrap()).unwrap();
    assert_eq!(rec["seed"], 5);
    assert_eq!(rec["n"], 4000);
    assert!(rec["acceptance"].as_f64().unwrap() > 0.5);
    // The same seed gives the same draws.
    ok(nmm(&[
        "infer",
        "sample",
        "--posterior",
        &p("post.nmmp"),
        "--observed",
        &p("xo.npy"),
        "--n",
        "4000",
        "--seed",
        "5",
        "--out",
        &p("s2.npy"),
        "--jobs",
        "1",
    ]));
    let s2: Array2<f64> = read_npy(d.path().join("s2.npy")).unwrap();
    assert_eq!(s, s2);

    // Held-out simulations whose THETA.npy has its columns in another order (and one more):
    // --theta-names picks the posterior's by name, so the check equals the plain one.
    let h = tempfile::tempdir().unwrap();
    write_problem(h.path(), 60);
    let q = |f: &str| h.path().join(f).to_string_lossy().into_owned();
    let theta: Array2<f64> = read_npy(h.path().join("theta.npy")).unwrap();
    let extra = ndarray::concatenate![
        ndarray::Axis(1),
        theta.slice(ndarray::s![.., 1..2]),
        Array2::<f64>::ones((60, 1)),
        theta.slice(ndarray::s![.., 0..1])
    ];
    write_npy(h.path().join("theta_bca.npy"), &extra).unwrap();
    let check = |theta: &str, names: Option<&str>, out: &str| {
        let mut args = vec![
            "infer",
            "check",
            "--posterior",
            &*p("post.nmmp"),
            "--theta",
            theta,
            "--x",
            &*q("x.npy"),
            "--out",
            out,
            "--draws",
            "99",
            "--seed",
            "2",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        if let Some(n) = names {
            args.extend(["--theta-names".to_string(), n.to_string()]);
        }
        ok(nmm(&args.iter().map(String::as_str).collect::<Vec<_>>()))
    };
    check(&q("theta.npy"), None, &q("plain"));
    check(&q("theta_bca.npy"), Some("b, c,a"), &q("picked"));
    let csv = |dir: &str| std::fs::read_to_string(h.path().join(dir).join("check.csv")).unwrap();
    assert_eq!(csv("plain"), csv("picked"));
    let e = stderr(&nmm(&[
        "infer",
        "check",
        "--posterior",
        &p("post.nmmp"),
        "--theta",
        &q("theta_bca.npy"),
        "--x",
        &q("x.npy"),
        "--out",
        &q("bad"),
        "--theta-names",
        "b,c,d",
    ]));
    assert!(e.contains("\"a\" is not among --theta-names"), "{e}");
    let e = stderr(&nmm(&[
        "infer",
        "check",
        "--posterior",
        &p("post.nmmp"),
        "--theta",
        &q("theta_bca.npy"),
        "--x",
        &q("x.npy"),
        "--out",
        &q("bad"),
        "--theta-names",
        "b,a,a",
    ]));
    assert!(e.contains("names \"a\" twice"), "{e}");

    // compare: the table's bias and RMSE are the check.csv's, computed here independently.
    let o = ok(nmm(&[
        "infer",
        "compare",
        &q("plain"),
        &q("picked"),
        "--labels",
        "one,two",
        "--out",
        &q("cmp"),
    ]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("wrote compare.csv"));
    let rows: Vec<Vec<String>> = csv("plain")
        .lines()
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    let table = std::fs::read_to_string(h.path().join("cmp/compare.csv")).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    for (k, name) in ["a", "b"].iter().enumerate() {
        let (t, m) = (col(&format!("true_{name}")), col(&format!("mean_{name}")));
        let errs: Vec<f64> = rows[1..]
            .iter()
            .map(|r| r[m].parse::<f64>().unwrap() - r[t].parse::<f64>().unwrap())
            .collect();
        let n = errs.len() as f64;
        let bias = errs.iter().sum::<f64>() / n;
        let rmse = (errs.iter().map(|e| e * e).sum::<f64>() / n).sqrt();
        let truth: Vec<f64> = rows[1..].iter().map(|r| r[t].parse().unwrap()).collect();
        let tm = truth.iter().sum::<f64>() / n;
        let r2 = 1.0 - rmse * rmse / (truth.iter().map(|v| (v - tm).powi(2)).sum::<f64>() / n);
        for (line, label) in [(lines[1 + k], "one"), (lines[3 + k], "two")] {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!((f[0], f[1], f[2]), (label, *name, "60"), "{line}");
            let (b, r): (f64, f64) = (f[3].parse().unwrap(), f[4].parse().unwrap());
            let q2: f64 = f[5].parse().unwrap();
            // Same sums in another order: agreement to rounding.
            assert!(
                (b - bias).abs() < 1e-12 && (r - rmse).abs() < 1e-12,
                "{line}"
            );
            assert!((q2 - r2).abs() < 1e-12, "{line}: R2 {q2} vs {r2}");
        }
    }
    for f in ["zscore_shrinkage.svg", "recovery.svg"] {
        assert!(h.path().join("cmp").join(f).exists(), "{f}");
    }
    let e = stderr(&nmm(&[
        "infer",
        "compare",
        &q("nowhere"),
        "--out",
        &q("cmp2"),
    ]));
    assert!(e.contains("nowhere/check.csv"), "{e}");

    // c2st: runs on two samples (the library's tests check the score against Bayes
    // accuracies); mismatched widths are refused naming the files.
    let o = ok(nmm(&["infer", "c2st", &q("theta.npy"), &q("theta.npy")]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("C2ST accuracy"));
    let e = stderr(&nmm(&[
        "infer",
        "c2st",
        &q("theta.npy"),
        &q("theta_bca.npy"),
    ]));
    assert!(e.contains("theta_bca.npy") && e.contains("columns"), "{e}");
}

#[test]
fn spline_flows_train_and_log_prob_integrates_to_one() {
    let d = tempfile::tempdir().unwrap();
    write_problem(d.path(), 1500);
    let p = |f: &str| d.path().join(f).to_string_lossy().into_owned();
    let o = ok(nmm(&[
        "infer",
        "train",
        "--theta",
        &p("theta.npy"),
        "--x",
        &p("x.npy"),
        "--prior",
        &p("prior.toml"),
        "--out",
        &p("post.nmmp"),
        "--estimator",
        "nsf",
        "--hidden",
        "16",
        "--transforms",
        "2",
        "--bins",
        "6",
        "--lr",
        "0.003",
    ]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("NSF of 2 transforms") && out.contains("6 bins"),
        "{out}"
    );
    let post = nmm::infer::Posterior::read(&d.path().join("post.nmmp")).unwrap();
    assert_eq!(post.flow.estimator(), nmm::infer::Estimator::Nsf);
    assert_eq!(post.flow.spline().unwrap().bins, 6);
    // The posterior density on a grid over (a, b) in [-0.7, 1.3] x [-1, 1] (a's posterior
    // sits near 0.3 with sd about 0.1; b's is cut by the prior at 1), plus one point outside
    // the prior.
    let g = 200;
    let h = [2.0 / g as f64, 2.0 / g as f64];
    let mut grid = Array2::<f64>::zeros((g * g + 1, 2));
    for i in 0..g {
        for j in 0..g {
            grid[[i * g + j, 0]] = -0.7 + (i as f64 + 0.5) * h[0];
            grid[[i * g + j, 1]] = -1.0 + (j as f64 + 0.5) * h[1];
        }
    }
    grid[[g * g, 1]] = 1.5;
    write_npy(d.path().join("grid.npy"), &grid).unwrap();
    let lp = |extra: &[&str], out: &str| {
        let (post, xo, grid, o) = (p("post.nmmp"), p("xo.npy"), p("grid.npy"), p(out));
        let mut args = vec![
            "infer",
            "log-prob",
            "--posterior",
            &post,
            "--observed",
            &xo,
            "--theta",
            &grid,
            "--out",
            &o,
        ];
        args.extend_from_slice(extra);
        ok(nmm(&args));
        let v: Array1<f64> = read_npy(d.path().join(out)).unwrap();
        v
    };
    let norm = lp(&[], "lp.npy");
    let flow = lp(&["--flow-only"], "lpf.npy");
    assert_eq!(norm.len(), g * g + 1);
    assert_eq!(norm[g * g], f64::NEG_INFINITY);
    assert!(flow[g * g].is_finite());
    let mass = |v: &Array1<f64>| v.iter().take(g * g).map(|l| l.exp()).sum::<f64>() * h[0] * h[1];
    let (m_norm, m_flow) = (mass(&norm), mass(&flow));
    // Renormalised to the prior's support, the density integrates to 1: the acceptance is
    // estimated from 1e5 proposals (relative sd under 0.3 %), the midpoint rule at step 0.01
    // against sds of 0.1 errs by under 0.1 %, and the mass of a beyond the grid (3 sd or more
    // from its mean) is under 0.3 %; 0.02 leaves room for a flow with heavier tails.
    assert!((m_norm - 1.0).abs() < 0.02, "{m_norm}");
    // The flow's own mass inside the support is the sampler's acceptance rate (here from
    // 2e4 accepted draws: binomial sd under 0.0025 for acceptances above 0.8; 0.01 covers it
    // and the grid's error).
    ok(nmm(&[
        "infer",
        "sample",
        "--posterior",
        &p("post.nmmp"),
        "--observed",
        &p("xo.npy"),
        "--n",
        "20000",
        "--out",
        &p("s.npy"),
    ]));
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("s.json")).unwrap()).unwrap();
    let acc = rec["acceptance"].as_f64().unwrap();
    eprintln!("mass {m_norm:.4} renormalised, {m_flow:.4} of the flow; acceptance {acc:.4}");
    assert!(
        acc < 1.0 && (m_flow - acc).abs() < 0.01,
        "{m_flow} vs {acc}"
    );
    // A parameter vector as a 1-D array, and a wrong width named.
    write_npy(d.path().join("one.npy"), &Array1::from(vec![0.3, 0.9])).unwrap();
    ok(nmm(&[
        "infer",
        "log-prob",
        "--posterior",
        &p("post.nmmp"),
        "--observed",
        &p("xo.npy"),
        "--theta",
        &p("one.npy"),
        "--out",
        &p("lp1.npy"),
    ]));
    let one: Array1<f64> = read_npy(d.path().join("lp1.npy")).unwrap();
    assert_eq!(one.len(), 1);
    write_npy(d.path().join("three.npy"), &Array2::<f64>::zeros((4, 3))).unwrap();
    let e = stderr(&nmm(&[
        "infer",
        "log-prob",
        "--posterior",
        &p("post.nmmp"),
        "--observed",
        &p("xo.npy"),
        "--theta",
        &p("three.npy"),
        "--out",
        &p("lp3.npy"),
    ]));
    assert!(e.contains("--theta") && e.contains("3 columns"), "{e}");
    assert!(!d.path().join("lp3.npy").exists());
    // A (2, 1) array is two rows of one column, not one vector; a NaN is named.
    write_npy(d.path().join("col.npy"), &Array2::<f64>::zeros((2, 1))).unwrap();
    let e = stderr(&nmm(&[
        "infer",
        "log-prob",
        "--posterior",
        &p("post.nmmp"),
        "--observed",
        &p("xo.npy"),
        "--theta",
        &p("col.npy"),
        "--out",
        &p("lp3.npy"),
    ]));
    assert!(e.contains("1 columns"), "{e}");
    write_npy(
        d.path().join("nan.npy"),
        &ndarray::arr2(&[[0.1, 0.2], [f64::NAN, 0.0]]),
    )
    .unwrap();
    let e = stderr(&nmm(&[
        "infer",
        "log-prob",
        "--posterior",
        &p("post.nmmp"),
        "--observed",
        &p("xo.npy"),
        "--theta",
        &p("nan.npy"),
        "--out",
        &p("lp3.npy"),
    ]));
    assert!(
        e.contains("row 1, column 0") && e.contains("not finite"),
        "{e}"
    );
    assert!(!d.path().join("lp3.npy").exists());
}

#[test]
fn bad_inputs_name_the_file() {
    let d = tempfile::tempdir().unwrap();
    write_problem(d.path(), 200);
    let p = |f: &str| d.path().join(f).to_string_lossy().into_owned();
    std::fs::write(
        d.path().join("bad.toml"),
        "[[param]]\nname = \"a\"\nuniform = [1, 0]\n",
    )
    .unwrap();
    let train = |prior: &str, x: &str| {
        nmm(&[
            "infer",
            "train",
            "--theta",
            &p("theta.npy"),
            "--x",
            &p(x),
            "--prior",
            &p(prior),
            "--out",
            &p("post.nmmp"),
            "--max-epochs",
            "2",
        ])
    };
    let o = train("bad.toml", "x.npy");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("bad.toml") && stderr(&o).contains("low < high"),
        "{}",
        stderr(&o)
    );
    assert!(!d.path().join("post.nmmp").exists());
    write_npy(d.path().join("short.npy"), &Array2::<f64>::zeros((10, 2))).unwrap();
    let o = train("prior.toml", "short.npy");
    assert!(
        stderr(&o).contains("short.npy") && stderr(&o).contains("rows"),
        "{}",
        stderr(&o)
    );
    ok(train("prior.toml", "x.npy"));
    write_npy(
        d.path().join("xo3.npy"),
        &Array1::from(vec![0.0f64, 1.0, 2.0]),
    )
    .unwrap();
    let o = nmm(&[
        "infer",
        "sample",
        "--posterior",
        &p("post.nmmp"),
        "--observed",
        &p("xo3.npy"),
        "--out",
        &p("s.npy"),
    ]);
    assert!(
        stderr(&o).contains("xo3.npy") && stderr(&o).contains("3 features"),
        "{}",
        stderr(&o)
    );
    assert!(!d.path().join("s.npy").exists());
    let o = nmm(&[
        "infer",
        "sample",
        "--posterior",
        &p("theta.npy"),
        "--observed",
        &p("xo.npy"),
        "--out",
        &p("s.npy"),
    ]);
    assert!(
        stderr(&o).contains("theta.npy") && stderr(&o).contains("NMMP"),
        "{}",
        stderr(&o)
    );
}

const RUN: &str = "duration_ms = 4000.0\ndt_ms = 0.05\n[connectome]\npath = \"builtin:4\"\ndelays = false\n[bold]\ntr_ms = 100.0\n[fc]\ntransient_ms = 500.0\n";
const PRIOR: &str = "[[param]]\nname = \"G\"\nuniform = [0.0, 0.3]\n\n[[param]]\nname = \"eta\"\nuniform = [-6.0, -4.0]\n";

/// `nmm infer simulate`: two shards merged equal one process byte for byte; a finished block
/// is not run again; another job in the same directory is refused; a prior naming no
/// parameter is refused before anything runs.
#[test]
fn simulate_shards_merge_to_the_single_process_result() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("run.toml"), RUN).unwrap();
    std::fs::write(d.path().join("prior.toml"), PRIOR).unwrap();
    let p = |f: &str| d.path().join(f).to_string_lossy().into_owned();
    let (run, prior) = (p("run.toml"), p("prior.toml"));
    let sim = |out: &str, extra: &[&str]| {
        let o = p(out);
        let mut a = vec![
            "infer", "simulate", "--config", &run, "--prior", &prior, "--n", "70", "--seed", "4",
            "--out", &o,
        ];
        a.extend_from_slice(extra);
        nmm(&a)
    };
    ok(sim("one", &[]));
    ok(sim("two", &["--shard", "2/2", "--jobs", "1"]));
    let o = nmm(&["infer", "merge", &p("two")]);
    assert!(
        !o.status.success() && stderr(&o).contains("missing"),
        "{}",
        stderr(&o)
    );
    ok(sim("two", &["--shard", "1/2"]));
    ok(nmm(&["infer", "merge", &p("two")]));
    for f in ["theta.npy", "x.npy", "manifest.json", "diverged.csv"] {
        assert_eq!(
            std::fs::read(d.path().join("one").join(f)).unwrap(),
            std::fs::read(d.path().join("two").join(f)).unwrap(),
            "{f}"
        );
    }
    let theta: Array2<f64> = read_npy(d.path().join("one/theta.npy")).unwrap();
    let x: Array2<f64> = read_npy(d.path().join("one/x.npy")).unwrap();
    assert_eq!(
        (theta.nrows(), x.nrows(), theta.ncols(), x.ncols()),
        (70, 70, 2, 51)
    );
    assert!(theta.column(0).iter().all(|g| (0.0..=0.3).contains(g)));
    let out = ok(sim("one", &[]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 blocks run, 2 already done"));
    std::fs::write(d.path().join("other.toml"), PRIOR.replace("0.3", "0.4")).unwrap();
    let o = nmm(&[
        "infer",
        "simulate",
        "--config",
        &p("run.toml"),
        "--prior",
        &p("other.toml"),
        "--n",
        "70",
        "--out",
        &p("one"),
    ]);
    assert!(stderr(&o).contains("different job"), "{}", stderr(&o));
    std::fs::write(
        d.path().join("bad.toml"),
        "[[param]]\nname = \"Jx\"\nuniform = [1, 2]\n",
    )
    .unwrap();
    let o = nmm(&[
        "infer",
        "simulate",
        "--config",
        &p("run.toml"),
        "--prior",
        &p("bad.toml"),
        "--n",
        "3",
        "--out",
        &p("bad"),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("Jx"),
        "{}",
        stderr(&o)
    );
    assert!(!d.path().join("bad/job.json").exists());
}

/// A per-region parameter (`eta@2`): its column is drawn, the run is that of `nmm brain` with
/// eta of region 2 set (the other regions at the configuration's value), and an index past
/// the connectome is refused, naming it.
#[test]
fn simulate_draws_per_region_parameters() {
    let d = tempfile::tempdir().unwrap();
    let run = format!("{RUN}[params]\neta = -5.0\n");
    std::fs::write(d.path().join("run.toml"), &run).unwrap();
    let prior = "[[param]]\nname = \"eta@2\"\nuniform = [-6.0, -4.0]\n";
    std::fs::write(d.path().join("prior.toml"), prior).unwrap();
    std::fs::write(d.path().join("bad.toml"), prior.replace("eta@2", "eta@4")).unwrap();
    let p = |f: &str| d.path().join(f).to_string_lossy().into_owned();
    ok(nmm(&[
        "infer",
        "simulate",
        "--config",
        &p("run.toml"),
        "--prior",
        &p("prior.toml"),
        "--n",
        "3",
        "--out",
        &p("sims"),
        "--features",
        "batch",
    ]));
    let theta: Array2<f64> = read_npy(d.path().join("sims/theta.npy")).unwrap();
    let x: Array2<f64> = read_npy(d.path().join("sims/x.npy")).unwrap();
    // Row 1 is `nmm brain` with seed 1 (the configuration's 0 + row) and that eta in region 2.
    let eta = theta[[1, 0]];
    std::fs::write(
        d.path().join("one.toml"),
        format!("seed = 1\n{RUN}[params]\neta = [-5.0, -5.0, {eta:?}, -5.0]\n"),
    )
    .unwrap();
    ok(nmm(&[
        "brain",
        "--config",
        &p("one.toml"),
        "--out",
        &p("one.npz"),
    ]));
    let fc = crate::util::read2(&d.path().join("one.npz"), "fc");
    let mut upper = Vec::new();
    for i in 0..4 {
        for j in (i + 1)..4 {
            upper.push(fc[[i, j]]);
        }
    }
    let mean = upper.iter().sum::<f64>() / upper.len() as f64;
    // fc_mean is the first batch feature; both are the same run, so the same number.
    assert!((x[[1, 0]] - mean).abs() < 1e-12, "{} vs {mean}", x[[1, 0]]);
    let o = nmm(&[
        "infer",
        "simulate",
        "--config",
        &p("run.toml"),
        "--prior",
        &p("bad.toml"),
        "--n",
        "3",
        "--out",
        &p("bad"),
    ]);
    assert!(
        stderr(&o).contains("eta@4") && stderr(&o).contains("0 to 3"),
        "{}",
        stderr(&o)
    );
}

/// `nmm infer features` on the BOLD that `nmm brain` writes, cut after the transient, gives
/// the features `nmm infer simulate` wrote for the same run, bit for bit (one row per file);
/// a constant region and a series too short for the FCD are refused, naming the file.
#[test]
fn features_of_recorded_bold_are_the_simulations() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("run.toml"), RUN).unwrap();
    std::fs::write(
        d.path().join("prior.toml"),
        "[[param]]\nname = \"G\"\nuniform = [0.0, 0.3]\n",
    )
    .unwrap();
    let p = |f: &str| d.path().join(f).to_string_lossy().into_owned();
    ok(nmm(&[
        "infer",
        "simulate",
        "--config",
        &p("run.toml"),
        "--prior",
        &p("prior.toml"),
        "--n",
        "1",
        "--seed",
        "3",
        "--out",
        &p("sims"),
    ]));
    let theta: Array2<f64> = read_npy(d.path().join("sims/theta.npy")).unwrap();
    let x: Array2<f64> = read_npy(d.path().join("sims/x.npy")).unwrap();
    // Simulation 0 runs with the configuration's seed (0).
    let g = theta[[0, 0]].to_string();
    ok(nmm(&[
        "brain",
        "--config",
        &p("run.toml"),
        "--G",
        &g,
        "--seed",
        "0",
        "--out",
        &p("b.npz"),
    ]));
    let mut npz = ndarray_npy::NpzReader::new(std::fs::File::open(p("b.npz")).unwrap()).unwrap();
    let bold: Array2<f64> = npz.by_name("bold").unwrap();
    // Samples at 100, 200, ... ms; the transient is 500 ms: the first 5 are left out.
    let after = bold.slice(ndarray::s![5.., ..]).to_owned();
    write_npy(p("bold.npy"), &after).unwrap();
    write_npy(
        p("short.npy"),
        &after.slice(ndarray::s![..8, ..]).to_owned(),
    )
    .unwrap();
    let mut flat = after.clone();
    flat.column_mut(1).fill(0.5);
    write_npy(p("flat.npy"), &flat).unwrap();
    let feat = |files: &[&str], out: &str| {
        let (o, run) = (p(out), p("run.toml"));
        let mut a = vec!["infer", "features", "--config", &run, "--out", &o, "--bold"];
        let files: Vec<String> = files.iter().map(|f| p(f)).collect();
        a.extend(files.iter().map(String::as_str));
        nmm(&a)
    };
    ok(feat(&["bold.npy", "bold.npy"], "xo.npy"));
    let xo: Array2<f64> = read_npy(d.path().join("xo.npy")).unwrap();
    assert_eq!(xo.dim(), (2, 51));
    assert_eq!(xo.row(0), x.row(0));
    assert_eq!(xo.row(1), x.row(0));
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("xo.json")).unwrap()).unwrap();
    assert_eq!(rec["features"][50], "bold_zero_crossings");
    let o = feat(&["bold.npy", "flat.npy"], "bad.npy");
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("flat.npy") && e.contains("region 1"),
        "{e}"
    );
    let o = feat(&["short.npy"], "bad.npy");
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("short.npy") && e.contains("at least"),
        "{e}"
    );
    assert!(!d.path().join("bad.npy").exists());
}
