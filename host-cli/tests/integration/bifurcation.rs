//! `nmm bifurcation` and `nmm mf mlp`: folds and cusp of MPR against the closed form, the
//! Chen-Campbell Hopf points that bracket bursting, and MLP model files end to end.

use crate::util::nmm;
use nmm_core::Model;
use nmm_core::mlp::{Mlp, MlpMeanField, Normalisation};
use nmm_core::models::mpr::{cusp, fold_point};
use std::process::Output;

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "nmm failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn rows(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// The cusps (eta, J) in a fold-curve CSV written by `--out-codim2`.
fn cusps_in(path: &std::path::Path) -> Vec<(f64, f64)> {
    rows(path)
        .iter()
        .filter(|r| r[2] == "CP")
        .map(|r| (r[3].parse().unwrap(), r[4].parse().unwrap()))
        .collect()
}

/// Runs `nmm bifurcation MODEL_ARGS --param eta --range -10,0 --codim2 J --range2 0,J_HI
/// --vary VARY --out-cusps FILE` and returns the cusp path's rows (third parameter, eta, J),
/// after checking the header names the varied parameter and that the figure was written.
fn cusp_path(model_args: &[&str], j_hi: &str, vary: &str) -> Vec<(f64, f64, f64)> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cusps.csv");
    let range2 = format!("0,{j_hi}");
    let mut args = vec!["bifurcation"];
    args.extend_from_slice(model_args);
    args.extend_from_slice(&[
        "--param",
        "eta",
        "--range",
        "-10,0",
        "--codim2",
        "J",
        "--range2",
        &range2,
        "--vary",
        vary,
        "--out-cusps",
        out.to_str().unwrap(),
    ]);
    ok(nmm(&args));
    let t = rows(&out);
    let name = vary.split('=').next().unwrap();
    assert_eq!(t[0], [name, "eta", "J"]);
    assert!(out.with_extension("svg").exists());
    t[1..]
        .iter()
        .map(|r| {
            (
                r[0].parse().unwrap(),
                r[1].parse().unwrap(),
                r[2].parse().unwrap(),
            )
        })
        .collect()
}

/// Folds of MPR (J = 15, Delta = 1) in eta and the cusp in (eta, J): the closed form of
/// `nmm_core::models::mpr` is independent of the continuation (Newton on the defining system).
/// Tolerance 1e-7 relative: the located points solve their equations to the corrector
/// tolerance 1e-10, far below it; a fold reported at a step end instead of located (steps up
/// to 0.02) would miss by 1e-3.
#[test]
fn mpr_folds_and_cusp_match_the_closed_form() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, fig) = (
        dir.path().join("a.csv"),
        dir.path().join("b.csv"),
        dir.path().join("f.svg"),
    );
    ok(nmm(&[
        "bifurcation",
        "mpr",
        "--param",
        "eta",
        "--range",
        "-10,0",
        "--codim2",
        "J",
        "--range2",
        "0,20",
        "--out",
        a.to_str().unwrap(),
        "--out-codim2",
        b.to_str().unwrap(),
        "--plot",
        fig.to_str().unwrap(),
    ]));
    let t = rows(&a);
    assert_eq!(&t[0][..4], ["branch", "label", "eta", "r"]);
    let folds: Vec<(f64, f64)> = t
        .iter()
        .filter(|r| r[1] == "LP")
        .map(|r| (r[2].parse().unwrap(), r[3].parse().unwrap()))
        .collect();
    assert_eq!(folds.len(), 2, "two folds");
    for (eta, r) in folds {
        let want = fold_point(1.0, 1.0, r);
        assert!(
            (want.j - 15.0).abs() < 1e-7 * 15.0,
            "fold at r = {r} has J {}",
            want.j
        );
        assert!(
            (want.eta - eta).abs() < 1e-7 * eta.abs(),
            "eta {eta} vs {}",
            want.eta
        );
    }
    let c = cusp(1.0, 1.0);
    let cusps = cusps_in(&b);
    assert!(!cusps.is_empty(), "a cusp");
    for (eta, j) in cusps {
        assert!(
            (eta - c.eta).abs() < 1e-7 * c.eta.abs(),
            "cusp eta {eta} vs {}",
            c.eta
        );
        assert!((j - c.j).abs() < 1e-7 * c.j, "cusp J {j} vs {}", c.j);
    }
    assert!(std::fs::read_to_string(&fig).unwrap().contains("<svg"));
}

/// Chen-Campbell (REFERENCE section 3): two Hopf points in eta_bar bracket the bursting regime
/// around the default eta_bar = 0.12.
#[test]
fn cc_hopf_points_bracket_the_bursting_regime() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("cc.csv");
    ok(nmm(&[
        "bifurcation",
        "cc",
        "--param",
        "eta",
        "--range",
        "0,0.3",
        "--out",
        a.to_str().unwrap(),
    ]));
    let hopf: Vec<f64> = rows(&a)
        .iter()
        .filter(|r| r[1] == "H")
        .map(|r| r[2].parse().unwrap())
        .collect();
    assert_eq!(hopf.len(), 2, "{hopf:?}");
    assert!(hopf[0] < 0.12 && 0.12 < hopf[1], "{hopf:?}");
}

/// A model file written by core's writer runs through `mf mlp` and `bifurcation mlp`, and the
/// trajectory equals core's own integration of the same model (same f64 arithmetic: 1e-12);
/// for each hidden width nmm loads (6, 16, 32). A corrupted file is refused with the reason,
/// and a width nmm does not load (8) with the widths it does.
#[test]
fn mlp_files_run_through_mf_and_bifurcation() {
    let dir = tempfile::tempdir().unwrap();
    mlp_file_runs::<6>(dir.path());
    mlp_file_runs::<16>(dir.path());
    mlp_file_runs::<32>(dir.path());
    let path = dir.path().join("m6.nmmw");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let o = nmm(&["mf", "mlp", "--model", path.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("m6.nmmw") && err.to_lowercase().contains("checksum"),
        "{err}"
    );
    let path = write_mlp::<8>(dir.path());
    let o = nmm(&["mf", "mlp", "--model", path.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("m8.nmmw") && err.contains("6-8-8-2") && err.contains("[6, 16, 32]"),
        "{err}"
    );
}

/// Writes `mH.nmmw`: a 6 -> H -> H -> 2 network with arbitrary smooth weights.
fn write_mlp<const H: usize>(dir: &std::path::Path) -> std::path::PathBuf {
    let flat: Vec<f64> = (0..Mlp::<f64, 6, H, H, 2>::N_WEIGHTS)
        .map(|k| 0.3 * ((k as f64) * 0.7).sin() * (6.0 / H as f64).sqrt())
        .collect();
    let net = Mlp::<f64, 6, H, H, 2>::from_flat(&flat).unwrap();
    let model = MlpMeanField::<f64, H, H>::new(net, Normalisation::identity()).unwrap();
    let mut bytes = vec![0u8; MlpMeanField::<f64, H, H>::encoded_len(2)];
    model.to_bytes("{}", &mut bytes).unwrap();
    let path = dir.join(format!("m{H}.nmmw"));
    std::fs::write(&path, &bytes).unwrap();
    path
}

fn mlp_file_runs<const H: usize>(dir: &std::path::Path) {
    let path = write_mlp::<H>(dir);
    let out = dir.join(format!("m{H}.npz"));
    ok(nmm(&[
        "mf",
        "mlp",
        "--model",
        path.to_str().unwrap(),
        "--t-end",
        "5",
        "--stim",
        "none",
        "--integrator",
        "rk4",
        "--out",
        out.to_str().unwrap(),
    ]));
    let mut r = ndarray_npy::NpzReader::new(std::fs::File::open(&out).unwrap()).unwrap();
    let rs: ndarray::Array1<f64> = r.by_name("r").unwrap();
    // The file stores f32: reload as the host does.
    let m = MlpMeanField::<f64, H, H>::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    let mut x = m.initial_state();
    for k in 0..500 {
        x = nmm_core::integrate::OdeMethod::Rk4.step(
            &mut |_t, x: &[f64; 2]| m.deriv(x, 0.0),
            k as f64 * 0.01,
            &x,
            0.01,
        );
    }
    assert!(
        (rs[500] - x[0]).abs() < 1e-12,
        "H = {H}: {} vs {}",
        rs[500],
        x[0]
    );
    // This arbitrary network need not have an equilibrium: either a branch or that message.
    let o = nmm(&[
        "bifurcation",
        "mlp",
        "--model",
        path.to_str().unwrap(),
        "--param",
        "eta",
        "--range",
        "-10,0",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        text.contains("branch") || text.contains("no equilibrium found at eta = -10"),
        "H = {H}: {text}"
    );
}

/// The cusp's path under a third parameter: MPR's cusp moves with Delta as
/// eta_c = -sqrt(3) Delta, J_c = J_c(1) sqrt(Delta) (closed form in core).
#[test]
fn cusp_path_follows_the_closed_form_in_delta() {
    let path = cusp_path(&["mpr"], "20", "delta=0.5:1.5:3");
    assert_eq!(path.len(), 3, "one cusp per Delta");
    for (d, eta, j) in path {
        let c = cusp(d, 1.0);
        assert!(
            (eta - c.eta).abs() < 1e-7 * c.eta.abs() && (j - c.j).abs() < 1e-7 * c.j,
            "Delta = {d}: ({eta}, {j}) vs {c:?}"
        );
    }
}

/// Issue 4's bar on the shipped model trained at p = 1 (`models/mlp_p1.nmmw`, regenerated by
/// `models/train.sh`): its cusp lies within 2 % of MPR's closed-form cusp in both eta and J.
/// The model is a fixed file, so this checks the file and the continuation code together; a
/// retrained model that misses the bar fails here.
#[test]
fn shipped_p1_model_has_its_cusp_within_two_percent_of_mpr() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/mlp_p1.nmmw");
    ok(nmm(&[
        "bifurcation",
        "mlp",
        "--model",
        model,
        "--param",
        "eta",
        "--range",
        "-10,0",
        "--codim2",
        "J",
        "--range2",
        "0,25",
        "--out",
        a.to_str().unwrap(),
        "--out-codim2",
        b.to_str().unwrap(),
    ]));
    let c = cusp(1.0, 1.0);
    let cusps = cusps_in(&b);
    // Both fold branches end at the cusp: one row each, the same point.
    assert!(!cusps.is_empty(), "a cusp");
    for (eta, j) in cusps {
        let (de, dj) = ((eta - c.eta).abs() / c.eta.abs(), (j - c.j).abs() / c.j);
        assert!(
            de < 0.02 && dj < 0.02,
            "cusp ({eta}, {j}) vs MPR ({}, {}): {:.1} % and {:.1} %",
            c.eta,
            c.j,
            100.0 * de,
            100.0 * dj
        );
    }
}

/// The shipped model trained over p in [0.6, 1] (`models/mlp_p06_1_w32.nmmw`, regenerated by
/// `models/train.sh`): its cusp's path over p follows MPR with J -> J p, the cusp at
/// (eta_c, J_c / p) for MPR's closed-form (eta_c, J_c), within the 2 % bar of issue 4 in both
/// coordinates. J -> J p is the mean input of a network with weights J/N and connection
/// probability p. Like the p = 1 test above, this checks the file and the continuation
/// together against the issue's bar, not a law: the finite network itself jumps between
/// states about 0.03 higher in eta than MPR in slow sweeps (models/README.md), 1.7 % of
/// eta_c, so a retrained model may fit the network better and still come near the bar. The
/// shipped file is at most 1.13 % off in eta and 0.2 % in J (models/p06_1_w32/cusp_path.csv).
#[test]
fn shipped_p06_1_w32_model_has_its_cusp_path_within_two_percent_of_mpr_with_j_p() {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/mlp_p06_1_w32.nmmw");
    let path = cusp_path(&["mlp", "--model", model], "30", "p=0.6:1:3");
    assert_eq!(path.len(), 3, "one cusp per p in {{0.6, 0.8, 1}}: {path:?}");
    let c = cusp(1.0, 1.0);
    for (p, eta, j) in path {
        let (de, dj) = ((eta - c.eta).abs() / c.eta.abs(), (j * p - c.j).abs() / c.j);
        assert!(
            de < 0.02 && dj < 0.02,
            "p = {p}: cusp ({eta}, {j}) vs MPR with J -> J p ({}, {}): {:.1} % and {:.1} %",
            c.eta,
            c.j / p,
            100.0 * de,
            100.0 * dj
        );
    }
}
