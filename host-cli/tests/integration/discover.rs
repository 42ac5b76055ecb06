//! End-to-end tests of `nmm discover` and of the discovered model in `nmm mf` and
//! `nmm bifurcation`: a small QIF sweep at two connection probabilities, a UDE of a few epochs,
//! the equations printed, the model file loaded by name, and clear errors.

use crate::util::{nmm, ok, read1, stderr};

#[test]
fn discovers_and_runs_a_corrected_model() {
    let dir = tempfile::tempdir().unwrap();
    let grid = dir.path().join("grid.toml");
    std::fs::write(
        &grid,
        "network = \"qif\"\nN = 300\ndt = 1e-3\nt_end = 4.0\nstim = \"noise:1:1.1\"\n[params]\ndelta = 1.0\n[grid]\nJ = [10.0, 15.0]\neta = [-5.0]\np = [0.5, 1.0]\n",
    )
    .unwrap();
    let sweep = dir.path().join("sweep");
    let s = sweep.to_str().unwrap();
    ok(nmm(&[
        "spiking",
        "sweep",
        "--grid",
        grid.to_str().unwrap(),
        "--out",
        s,
    ]));
    let model = dir.path().join("m.toml");
    let m = model.to_str().unwrap();
    let o = ok(nmm(&[
        "discover",
        "--data",
        s,
        "--out",
        m,
        "--epochs",
        "2",
        "--dt",
        "0.1",
        "--rollout",
        "5",
        "--folds",
        "2",
        "--seed",
        "3",
    ]));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("dv/dt = MPR_v"), "{text}");
    assert!(
        text.contains("closed form of the UDE's learned term"),
        "{text}"
    );
    let file = std::fs::read_to_string(&model).unwrap();
    assert!(
        file.contains("format = \"nmm-discovered\"") && file.contains("seed = 3"),
        "{file}"
    );

    // The model runs by name, with p and N by flag, and its trajectory is written.
    let out = dir.path().join("x.npz");
    ok(nmm(&[
        "mf",
        "corrected",
        "--model",
        m,
        "--p",
        "0.6",
        "--N",
        "300",
        "--t-end",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(read1(&out, "r").iter().all(|x| x.is_finite()));
    // The trained UDE itself runs too (base + network).
    let out2 = dir.path().join("y.npz");
    ok(nmm(&[
        "mf",
        "ude",
        "--model",
        m,
        "--p",
        "0.6",
        "--t-end",
        "2",
        "--out",
        out2.to_str().unwrap(),
    ]));
    assert!(read1(&out2, "r").iter().all(|x| x.is_finite()));
    // Refit from the saved network without training: the same network, another threshold.
    let refit = dir.path().join("m2.toml");
    let o = ok(nmm(&[
        "discover",
        "--data",
        s,
        "--out",
        refit.to_str().unwrap(),
        "--dt",
        "0.1",
        "--network-from",
        m,
        "--threshold",
        "0.5",
    ]));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("closed form of the UDE's learned term"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let net_of = |f: &std::path::Path| {
        let t = std::fs::read_to_string(f).unwrap();
        let a = t.find("[network]").expect("a [network] table");
        let b = t.find("[meta]").expect("a [meta] table");
        assert!(a < b, "{t}");
        t[a..b].to_string()
    };
    assert_eq!(net_of(&refit), net_of(&model));
    // The network as the whole field (--network-only) trains and runs.
    let alone = dir.path().join("m3.toml");
    ok(nmm(&[
        "discover",
        "--data",
        s,
        "--out",
        alone.to_str().unwrap(),
        "--epochs",
        "2",
        "--dt",
        "0.1",
        "--rollout",
        "5",
        // Four short runs give an ill-conditioned library fit of network minus MPR (nearly -MPR
        // for an untrained network) with large cancelling terms: a very high threshold keeps
        // the closed form within a model's 32 terms; this checks the plumbing, not the fit.
        "--threshold",
        "50",
        "--network-only",
    ]));
    assert!(net_of(&alone).contains("known = false"));
    let out3 = dir.path().join("z.npz");
    ok(nmm(&[
        "mf",
        "ude",
        "--model",
        alone.to_str().unwrap(),
        "--p",
        "0.6",
        "--t-end",
        "2",
        "--out",
        out3.to_str().unwrap(),
    ]));
    assert!(read1(&out3, "r").iter().all(|x| x.is_finite()));
    assert_ne!(read1(&out3, "r"), read1(&out2, "r"));
    // A direct fit has no network to run; --network-only needs epochs.
    let direct = dir.path().join("d.toml");
    let d = direct.to_str().unwrap();
    ok(nmm(&[
        "discover",
        "--data",
        s,
        "--out",
        d,
        "--dt",
        "0.1",
        "--threshold",
        "0.5",
    ]));
    let o = nmm(&["mf", "ude", "--model", d]);
    assert!(
        !o.status.success() && stderr(&o).contains("d.toml") && stderr(&o).contains("--epochs"),
        "{}",
        stderr(&o)
    );
    let o = nmm(&["discover", "--data", s, "--out", d, "--network-only"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--epochs"),
        "{}",
        stderr(&o)
    );
    let o = nmm(&["discover", "--data", s, "--out", d, "--network-from", d]);
    assert!(
        !o.status.success() && stderr(&o).contains("d.toml") && stderr(&o).contains("--epochs"),
        "{}",
        stderr(&o)
    );
    let damaged = dir.path().join("h.toml");
    let whole = std::fs::read_to_string(&model).unwrap();
    let at = whole.find("[network]").unwrap();
    std::fs::write(
        &damaged,
        format!(
            "{}{}",
            &whole[..at],
            &whole[at..].replacen("hidden = 6", "hidden = 7", 1)
        ),
    )
    .unwrap();
    // A network trained on another known field (delta 2, the runs' is 1) is not refitted.
    let other = dir.path().join("o.toml");
    std::fs::write(
        &other,
        whole.replacen(
            "[base_params]\ndelta = 1.0",
            "[base_params]\ndelta = 2.0",
            1,
        ),
    )
    .unwrap();
    let o = nmm(&[
        "discover",
        "--data",
        s,
        "--out",
        d,
        "--network-from",
        other.to_str().unwrap(),
    ]);
    assert!(
        !o.status.success()
            && stderr(&o).contains("o.toml")
            && stderr(&o).contains("base_params.delta"),
        "{}",
        stderr(&o)
    );
    let o = nmm(&["mf", "ude", "--model", damaged.to_str().unwrap()]);
    assert!(
        !o.status.success()
            && stderr(&o).contains("h.toml")
            && stderr(&o).contains("network.hidden"),
        "{}",
        stderr(&o)
    );
    ok(nmm(&[
        "bifurcation",
        "corrected",
        "--model",
        m,
        "--param",
        "eta",
        "--range",
        "-8,-2",
    ]));

    // A Chen-Campbell parameter for an MPR model, p out of range, a damaged file.
    let o = nmm(&["mf", "corrected", "--model", m, "--alpha", "0.5"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--alpha"),
        "{}",
        stderr(&o)
    );
    let o = nmm(&["mf", "corrected", "--model", m, "--p", "1.5"]);
    assert!(
        !o.status.success() && stderr(&o).contains("p"),
        "{}",
        stderr(&o)
    );
    std::fs::write(&model, file.replace("base = \"mpr\"", "base = \"hh\"")).unwrap();
    let o = nmm(&["mf", "corrected", "--model", m]);
    assert!(
        !o.status.success() && stderr(&o).contains("m.toml"),
        "{}",
        stderr(&o)
    );
    // An Izhikevich base given QIF runs: the file is named.
    let o = nmm(&["discover", "--data", s, "--out", m, "--base", "cc"]);
    assert!(
        !o.status.success() && stderr(&o).contains("run_000000.npz"),
        "{}",
        stderr(&o)
    );
}
