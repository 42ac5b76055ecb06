//! The `nmm` commands against the core they wrap: what a user gets from the command line is what
//! the core computes (no host-side numerics slipped in), and the closed forms agree.

use ndarray::{Array1, Array2};
use ndarray_npy::{NpzReader, write_npy};
use nmm_core::bold::{BoldMonitor, BoldParams, BoldPreset};
use nmm_core::models::{Model, Mpr, mpr};
use std::fs::File;

fn run(args: &[&str]) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_nmm"))
        .args(args)
        .output()
        .expect("nmm runs");
    assert!(
        o.status.success(),
        "nmm {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `nmm bold` on a 2-D drive equals the core BoldMonitor fed the same samples, bit for bit.
#[test]
fn bold_command_equals_core_monitor() {
    let dir = tempfile::tempdir().unwrap();
    let (n_t, n_r) = (20_000, 3); // 20 s at 1 ms
    let z = Array2::from_shape_fn((n_t, n_r), |(t, r)| {
        let ts = t as f64 / 1000.0;
        match r {
            0 => {
                if (5.0..6.0).contains(&ts) {
                    1.0
                } else {
                    0.0
                }
            }
            1 => 0.5 * (1.0 + (ts * (r as f64 + 1.0)).sin()),
            _ => 0.1 * ts,
        }
    });
    let input = dir.path().join("z.npy");
    write_npy(&input, &z).unwrap();
    let out = dir.path().join("bold.npz");
    run(&[
        "bold",
        "--input",
        input.to_str().unwrap(),
        "--dt-ms",
        "1",
        "--tr-ms",
        "1000",
        "--preset",
        "vbjax",
        "--out",
        out.to_str().unwrap(),
    ]);
    let mut npz = NpzReader::new(File::open(&out).unwrap()).unwrap();
    let bold: Array2<f64> = npz.by_name("bold").unwrap();
    let t_ms: Array1<f64> = npz.by_name("t_ms").unwrap();
    assert_eq!(bold.dim(), (20, 3));
    assert_eq!(t_ms[0], 1000.0);
    assert_eq!(t_ms[19], 20_000.0);

    let mut state = vec![[0.0; 4]; n_r];
    let mut mon =
        BoldMonitor::new(BoldParams::preset(BoldPreset::Vbjax), &mut state, 1e-3, 1.0).unwrap();
    let mut row = vec![0.0; n_r];
    let mut k = 0;
    for t in 0..n_t {
        let zt: Vec<f64> = z.row(t).to_vec();
        if mon.step(&zt, &mut row) {
            for r in 0..n_r {
                assert_eq!(bold[[k, r]], row[r], "TR {k}, region {r}");
            }
            k += 1;
        }
    }
    assert_eq!(k, 20);
    // The pulse in region 0 at 5-6 s gives a positive response within the following seconds.
    assert!(bold.column(0).iter().cloned().fold(f64::MIN, f64::max) > 0.1);
}

/// `nmm mf mpr` equals core's simulate with the same settings, and `nmm fixed-points mpr`
/// reports exactly the closed-form equilibria (REFERENCE section 1) as CSV.
#[test]
fn mf_and_fixed_points_equal_core() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.npz");
    run(&[
        "mf",
        "mpr",
        "--J",
        "12",
        "--t-end",
        "20",
        "--dt",
        "0.005",
        "--integrator",
        "rk4",
        "--stim",
        "sin:1:0.1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let mut npz = NpzReader::new(File::open(&out).unwrap()).unwrap();
    let r: Array1<f64> = npz.by_name("r").unwrap();
    let m = Mpr {
        j: 12.0,
        ..Mpr::<f64>::default()
    };
    let grid = nmm_core::sim::Grid {
        t0: 0.0,
        dt: 0.005,
        steps: 4000,
        every: 1,
    };
    let traj = nmm::mf::integrate(
        &m,
        m.initial_state(),
        "sin:1:0.1".parse().unwrap(),
        0,
        nmm_core::integrate::OdeMethod::Rk4,
        grid,
    )
    .unwrap();
    let core_r: Vec<f64> = traj.x.iter().map(|x| x[0]).collect();
    assert_eq!(r.to_vec(), core_r);

    let csv = dir.path().join("fp.csv");
    run(&["fixed-points", "mpr", "--out", csv.to_str().unwrap()]);
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    let closed = mpr::fixed_points(&Mpr::<f64>::default(), 0.0);
    assert_eq!(rows.len(), closed.len());
    for (row, fp) in rows.iter().zip(closed.iter()) {
        let cols: Vec<f64> = row.split(',').take(2).map(|c| c.parse().unwrap()).collect();
        // Newton converges to ~1e-11 residual; the bracketing closed form to ~1e-15.
        assert!(
            (cols[0] - fp[0]).abs() < 1e-9 && (cols[1] - fp[1]).abs() < 1e-9,
            "{row} vs {fp:?}"
        );
    }
}
