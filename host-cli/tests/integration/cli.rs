//! End-to-end tests of the `nmm` binary: outputs, metadata, and that bad input gives a clear
//! error, a non-zero exit code and no output file.

use crate::util::{meta, nmm, read1, stderr};
use ndarray::{Array0, Array1, Array2};
use ndarray_npy::{NpzReader, write_npy};
use std::fs::File;
use std::path::Path;
use std::process::Command;

/// The MPR protocol with its defaults: arrays t, r, v, input; metadata with parameters, seed,
/// version; and the plateau and end values equal to MPR's fixed points at I = 3 and I = 0
/// (independent closed form in core), up to the transient's remaining decay: the high focus at
/// I = 3 has eigenvalues -0.23 +- 5.8i, so an O(1) oscillation starting near t = 3 has
/// envelope ~exp(-0.23 * 27) ~ 2e-3 at t = 30 (tolerance 1e-2), and ~1e-5 at t = 80
/// (tolerance 1e-3).
#[test]
fn mf_mpr_defaults_write_npz_with_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mpr.npz");
    let o = nmm(&["mf", "mpr", "--out", out.to_str().unwrap(), "--seed", "7"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = read1(&out, "t");
    let r = read1(&out, "r");
    let v = read1(&out, "v");
    let i = read1(&out, "input");
    assert_eq!(t.len(), 8001);
    assert_eq!((t[0], t[8000]), (0.0, 80.0));
    assert_eq!((r.len(), v.len(), i.len()), (8001, 8001, 8001));
    let m = meta(&out);
    assert_eq!(m["model"], "mpr");
    assert_eq!(m["seed"], 7);
    assert_eq!(m["params"]["J"], 15.0);
    assert_eq!(m["stim"], "step:3:0:30");
    assert_eq!(m["nmm_version"], env!("CARGO_PKG_VERSION"));
    let mut z = NpzReader::new(File::open(&out).unwrap()).unwrap();
    let eta: Array0<f64> = z.by_name("param_eta").unwrap();
    assert_eq!(eta[()], -5.0);

    let model = nmm_core::models::Mpr::<f64>::default();
    let high_on = *nmm_core::models::mpr::fixed_points(&model, 3.0)
        .last()
        .unwrap();
    let high_off = *nmm_core::models::mpr::fixed_points(&model, 0.0)
        .last()
        .unwrap();
    let k = 2999; // t = 29.99, just before the step ends
    assert!(
        (r[k] - high_on[0]).abs() < 1e-2 && (v[k] - high_on[1]).abs() < 1e-2,
        "plateau {} {}",
        r[k],
        v[k]
    );
    assert!((r[8000] - high_off[0]).abs() < 1e-3, "end {}", r[8000]);
}

#[test]
fn mf_flags_init_and_every() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cc.npz");
    let o = nmm(&[
        "mf",
        "cc",
        "--eta",
        "0.25",
        "--init",
        "r=0.1,v=-0.5",
        "--t-end",
        "10",
        "--dt",
        "0.001",
        "--every",
        "100",
        "--integrator",
        "rk4",
        "--stim",
        "const:0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = read1(&out, "t");
    assert_eq!(t.len(), 101);
    assert!((t[1] - 0.1).abs() < 1e-12);
    assert_eq!(read1(&out, "r")[0], 0.1);
    assert_eq!(read1(&out, "v")[0], -0.5);
    assert_eq!(read1(&out, "w")[0], 0.0);
    assert_eq!(meta(&out)["params"]["eta"], 0.25);
}

/// Same seed, same noisy run; another seed, another run.
#[test]
fn mf_noise_is_reproducible_from_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |seed: &str, name: &str| {
        let out = dir.path().join(name);
        let o = nmm(&[
            "mf",
            "rww",
            "--t-end",
            "200",
            "--seed",
            seed,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        read1(&out, "S_E")
    };
    let a = run("3", "a.npz");
    let b = run("3", "b.npz");
    let c = run("4", "c.npz");
    assert_eq!(a, b);
    assert_ne!(a, c);
}

/// Every bad input: non-zero exit, a message naming the problem, no output file.
#[test]
fn bad_input_gives_clear_errors_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.npz");
    let o_str = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["mf", "mpr", "--tau", "0", "--out", o_str], "tau"),
        (&["mf", "mpr", "--eta", "nan", "--out", o_str], "eta"),
        (&["mf", "mpr", "--bogus", "1", "--out", o_str], "--bogus"),
        (&["mf", "nosuchmodel", "--out", o_str], "nosuchmodel"),
        (&["mf", "mpr", "--stim", "pulse:3", "--out", o_str], "stim"),
        (&["mf", "mpr", "--init", "q=1", "--out", o_str], "q"),
        (&["mf", "mpr", "--t-end", "-1", "--out", o_str], "t-end"),
        (&["mf", "mpr", "--dt", "0", "--out", o_str], "dt"),
        (
            &[
                "mf",
                "mpr",
                "--dt",
                "1",
                "--stim",
                "const:1000",
                "--out",
                o_str,
            ],
            "non-finite",
        ),
        (&["mf", "rww", "--integrator", "rk4", "--out", o_str], "rk4"),
        (
            &["mf", "mpr", "--out", "/nonexistent-dir/x.npz"],
            "nonexistent-dir",
        ),
    ];
    for (args, needle) in cases {
        let o = nmm(args);
        assert!(!o.status.success(), "{args:?} should fail");
        let e = stderr(&o);
        assert!(
            e.contains(needle),
            "{args:?}: message {e:?} should mention {needle:?}"
        );
        assert!(!out.exists(), "{args:?} left {o_str}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{args:?} left a temporary file"
        );
    }
}

#[test]
fn help_lists_parameters_with_units() {
    let o = nmm(&["mf", "mpr", "--help"]);
    assert!(o.status.success());
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("--eta") && s.contains("--J") && s.contains("[ms]"),
        "{s}"
    );
}

/// `nmm bold`: shapes, metadata, and every bad input rejected with no output left behind.
#[test]
fn bold_outputs_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("z.npy");
    write_npy(
        &good,
        &Array1::from_shape_fn(
            10_000,
            |t| if (1000..2000).contains(&t) { 1.0 } else { 0.0 },
        ),
    )
    .unwrap();
    let out = dir.path().join("b.npz");
    let o = nmm(&[
        "bold",
        "--input",
        good.to_str().unwrap(),
        "--dt-ms",
        "1",
        "--tr-ms",
        "500",
        "--param",
        "tau_s=0.65",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut r = NpzReader::new(File::open(&out).unwrap()).unwrap();
    let bold: Array2<f64> = r.by_name("bold").unwrap();
    assert_eq!(bold.dim(), (20, 1));
    let m = meta(&out);
    assert_eq!(m["preset"], "stephan2007");
    assert_eq!(m["params"]["tau_s"], 0.65);
    std::fs::remove_file(&out).unwrap();

    let nan = dir.path().join("nan.npy");
    let mut a = Array2::<f64>::zeros((3000, 2));
    a[[17, 1]] = f64::NAN;
    write_npy(&nan, &a).unwrap();
    let cube = dir.path().join("cube.npy");
    write_npy(&cube, &ndarray::Array3::<f64>::zeros((2, 2, 2))).unwrap();
    let ints = dir.path().join("ints.npy");
    write_npy(&ints, &Array1::<i32>::zeros(5)).unwrap();
    let empty = dir.path().join("empty.npy");
    write_npy(&empty, &Array1::<f64>::zeros(0)).unwrap();
    let text = dir.path().join("text.npy");
    std::fs::write(&text, "not an array").unwrap();
    let o_str = out.to_str().unwrap();
    let g = good.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--input", nan.to_str().unwrap(), "--dt-ms", "1"],
            "time index 17, region 1",
        ),
        (
            vec!["--input", cube.to_str().unwrap(), "--dt-ms", "1"],
            "3-D",
        ),
        (
            vec!["--input", ints.to_str().unwrap(), "--dt-ms", "1"],
            "float32/float64",
        ),
        (
            vec!["--input", empty.to_str().unwrap(), "--dt-ms", "1"],
            "empty",
        ),
        (
            vec!["--input", text.to_str().unwrap(), "--dt-ms", "1"],
            "text.npy",
        ),
        (
            vec!["--input", "/no/such.npy", "--dt-ms", "1"],
            "/no/such.npy",
        ),
        (
            vec!["--input", g, "--dt-ms", "0.3", "--tr-ms", "1000"],
            "whole multiple",
        ),
        (vec!["--input", g, "--dt-ms", "-1"], "dt"),
        (
            vec!["--input", g, "--dt-ms", "1", "--tr-ms", "20000"],
            "shorter than one TR",
        ),
        (
            vec!["--input", g, "--dt-ms", "1", "--param", "nope=1"],
            "nope",
        ),
        (
            vec!["--input", g, "--dt-ms", "1", "--param", "alpha=-1"],
            "alpha",
        ),
        (
            vec!["--input", g, "--dt-ms", "1", "--preset", "balloon"],
            "balloon",
        ),
    ];
    for (args, needle) in cases {
        let mut full = vec!["bold"];
        full.extend(args.iter());
        full.extend(["--out", o_str]);
        let o = nmm(&full);
        assert!(!o.status.success(), "{full:?} should fail");
        let e = stderr(&o);
        assert!(
            e.contains(needle),
            "{full:?}: message {e:?} should mention {needle:?}"
        );
        assert!(!out.exists(), "{full:?} left output");
    }
}

#[test]
fn fixed_points_table_and_errors() {
    let o = nmm(&["fixed-points", "mpr"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("3 equilibria") && s.contains("saddle") && s.contains("stable focus"),
        "{s}"
    );
    let o = nmm(&["fixed-points", "cc", "--eta", "0.25", "--grid", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (args, needle) in [
        (vec!["fixed-points", "mpr", "--box", "r=3:1"], "LO < HI"),
        (vec!["fixed-points", "mpr", "--box", "q=0:1"], "q"),
        (vec!["fixed-points", "mpr", "--grid", "0"], "grid"),
        (
            vec!["fixed-points", "cc", "--grid", "1000"],
            "Newton starts",
        ),
    ] {
        let o = nmm(&args);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

/// `nmm spiking`: outputs with metadata, and errors for impossible settings.
#[test]
fn spiking_runs_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q.npz");
    let o = nmm(&[
        "spiking",
        "qif",
        "--N",
        "500",
        "--p",
        "0.5",
        "--t-end",
        "2",
        "--synapse",
        "pulse",
        "--record",
        "500",
        "--seed",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read1(&out, "r");
    assert_eq!(r.len(), 200); // 2 time units in bins of 0.01
    assert!(!read1(&out, "spike_t").is_empty());
    let m = meta(&out);
    assert_eq!(
        (m["N"].as_u64(), m["p"].as_f64(), m["seed"].as_u64()),
        (Some(500), Some(0.5), Some(4))
    );
    assert_eq!(m["synapse"]["kind"], "pulse");
    let izh = dir.path().join("i.npz");
    let o = nmm(&[
        "spiking",
        "izh",
        "--N",
        "300",
        "--t-end",
        "5",
        "--out",
        izh.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read1(&izh, "w").len(), 50);
    std::fs::remove_file(&out).unwrap();
    for (args, needle) in [
        (vec!["--p", "0"], "--p"),
        (vec!["--p", "1.5"], "--p"),
        (vec!["--bin", "0.0105"], "whole multiple"),
        (vec!["--synapse", "pulse", "--delay", "0.001"], "tau/V_peak"),
        (
            vec!["--synapse", "pulse", "--width", "0.00015"],
            "whole multiple",
        ),
        (vec!["--tau", "-1"], "tau"),
        (vec!["--init", "r=-1"], "r must be"),
    ] {
        let mut full = vec!["spiking", "qif", "--N", "100", "--t-end", "1"];
        full.extend(args);
        full.extend(["--out", out.to_str().unwrap()]);
        let o = nmm(&full);
        assert!(!o.status.success(), "{full:?} should fail");
        assert!(stderr(&o).contains(needle), "{full:?}: {}", stderr(&o));
        assert!(!out.exists());
    }
}

/// `nmm spiking sweep`: shards, resumption (finished runs are skipped, not rewritten), the
/// manifest, Slurm's environment, and a changed grid refused.
#[test]
fn sweep_is_shardable_and_resumable() {
    let dir = tempfile::tempdir().unwrap();
    let grid = dir.path().join("grid.toml");
    std::fs::write(
        &grid,
        "network = \"qif\"\nN = 200\ndt = 1e-3\nt_end = 1.0\nstim = \"noise:1:1.1\"\n[params]\ndelta = 1.0\n[grid]\nJ = { start = 10.0, stop = 15.0, num = 2 }\neta = [-5.0]\np = [0.6, 1.0]\nstim_seeds = [1, 2]\n",
    )
    .unwrap();
    let out = dir.path().join("sweep");
    let (g, o) = (grid.to_str().unwrap(), out.to_str().unwrap());
    let first = nmm(&[
        "spiking", "sweep", "--grid", g, "--out", o, "--shard", "2/3",
    ]);
    assert!(first.status.success(), "{}", stderr(&first));
    let files = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    // 8 runs; shard 2/3 takes ids 1, 4, 7.
    assert_eq!(
        files(&out),
        [
            "grid.toml",
            "manifest.csv",
            "run_000001.npz",
            "run_000004.npz",
            "run_000007.npz"
        ]
    );
    let stamp = std::fs::metadata(out.join("run_000004.npz"))
        .unwrap()
        .modified()
        .unwrap();
    let slurm = Command::new(env!("CARGO_BIN_EXE_nmm"))
        .args(["spiking", "sweep", "--grid", g, "--out", o])
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_MIN", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "3")
        .output()
        .unwrap();
    assert!(slurm.status.success(), "{}", stderr(&slurm));
    assert!(out.join("run_000000.npz").exists() && out.join("run_000006.npz").exists());
    assert!(!out.join("run_000002.npz").exists());
    let all = nmm(&["spiking", "sweep", "--grid", g, "--out", o]);
    assert!(all.status.success(), "{}", stderr(&all));
    let said = String::from_utf8_lossy(&all.stdout);
    assert!(said.contains("6 already done, 2 to run"), "{said}");
    assert_eq!(files(&out).len(), 10);
    assert_eq!(
        std::fs::metadata(out.join("run_000004.npz"))
            .unwrap()
            .modified()
            .unwrap(),
        stamp
    );
    let manifest = std::fs::read_to_string(out.join("manifest.csv")).unwrap();
    assert_eq!(manifest.lines().count(), 9);
    assert!(
        manifest
            .lines()
            .nth(4)
            .unwrap()
            .starts_with("3,10,-5,1,1,2,run_000003.npz"),
        "{manifest}"
    );
    let m = meta(&out.join("run_000003.npz"));
    assert_eq!(
        (
            m["sweep"]["J"].as_f64(),
            m["p"].as_f64(),
            m["stim_seed"].as_u64()
        ),
        (Some(10.0), Some(1.0), Some(2))
    );
    // Another grid into the same directory is refused.
    std::fs::write(
        &grid,
        std::fs::read_to_string(&grid)
            .unwrap()
            .replace("N = 200", "N = 300"),
    )
    .unwrap();
    let again = nmm(&["spiking", "sweep", "--grid", g, "--out", o]);
    assert!(!again.status.success() && stderr(&again).contains("another grid"));
    // Bad grids name the field.
    std::fs::write(
        &grid,
        "network = \"qif\"\nt_end = 1.0\n[grid]\nJ = [1.0]\neta = [0.0]\np = [1.5]\n",
    )
    .unwrap();
    let bad = nmm(&[
        "spiking",
        "sweep",
        "--grid",
        g,
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(
        !bad.status.success() && stderr(&bad).contains("grid.p"),
        "{}",
        stderr(&bad)
    );
    let bad = nmm(&[
        "spiking", "sweep", "--grid", g, "--out", o, "--shard", "4/3",
    ]);
    assert!(!bad.status.success() && stderr(&bad).contains("--shard"));
}
