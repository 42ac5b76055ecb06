//! Bad input, tried as a new user and as an adversary would: one row per class of failure
//! (issue 16), each with the command, the input it is given, the exit code and a fragment of
//! the message expected, and the check that no output file is left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn nmm_in(dir: &Path, args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nmm"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("nmm runs")
}

/// A float64 `.npy` of `n` samples of `value` (time,), written by hand so the table needs no
/// numpy: the header is the format's version 1.0 dictionary padded to 64 bytes.
fn write_npy_1d(path: &Path, n: usize, value: f64) {
    let dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({n},), }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(&header);
    for _ in 0..n {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

const GRID: &str = "network = \"qif\"\nN = 100\ndt = 1e-3\nt_end = 0.5\n[grid]\nJ = [10.0, 15.0]\neta = [-5.0]\np = [1.0]\n";

/// One row of the table.
struct Case {
    /// The class of failure (issue 16's list).
    class: &'static str,
    /// Files to create in the test's directory before the run: (name, contents).
    setup: &'static [(&'static str, &'static str)],
    /// Arguments; `{dir}` is replaced by the test's directory.
    args: &'static [&'static str],
    /// Expected exit code.
    code: i32,
    /// Fragments the message on stderr must contain.
    says: &'static [&'static str],
    /// Paths (relative to the directory) that must not exist afterwards.
    absent: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        class: "step too coarse for the scheme (BOLD of a series)",
        setup: &[],
        args: &[
            "bold", "--input", "z.npy", "--dt-ms", "1000", "--out", "bold.npz",
        ],
        code: 1,
        says: &["dt_ms (--dt-ms) = 1000 ms is too coarse", "z.npy"],
        absent: &["bold.npz"],
    },
    Case {
        class: "step too coarse for the scheme (BOLD of a whole-brain run)",
        setup: &[],
        args: &["brain", "--bold-dt", "100", "--dt", "0.1", "--out", "b.npz"],
        code: 1,
        says: &["--bold-dt", "too coarse"],
        absent: &["b.npz"],
    },
    Case {
        class: "NaN or empty results: a run shorter than the FC transient",
        setup: &[],
        args: &[
            "brain",
            "--duration",
            "2000",
            "--out",
            "b.npz",
            "--plot",
            "b.svg",
        ],
        code: 1,
        says: &[
            "--duration",
            "0 BOLD samples after the FC transient",
            "at least 58000 ms",
        ],
        absent: &["b.npz", "b.svg"],
    },
    Case {
        class: "NaN or empty results: too short for three FCD windows",
        setup: &[],
        args: &[
            "brain",
            "--duration",
            "30000",
            "--transient",
            "0",
            "--out",
            "b.npz",
        ],
        code: 1,
        says: &["15 BOLD samples", "19"],
        absent: &["b.npz"],
    },
    Case {
        class: "NaN or empty results: a network run shorter than one rate bin, with a plot",
        setup: &[],
        args: &[
            "spiking", "qif", "--N", "100", "--t-end", "0.005", "--plot", "q.svg",
        ],
        code: 1,
        says: &["shorter than one rate bin"],
        absent: &["q.svg"],
    },
    Case {
        class: "NaN or empty results: a transient longer than any run",
        setup: &[],
        args: &["brain", "--transient", "1e300", "--out", "b.npz"],
        code: 1,
        says: &["--transient"],
        absent: &["b.npz"],
    },
    Case {
        class: "--out is a device",
        setup: &[],
        args: &["mf", "mpr", "--t-end", "1", "--out", "/dev/null"],
        code: 1,
        says: &["/dev/null", "not a regular file"],
        absent: &[],
    },
    Case {
        class: "--out is a directory",
        setup: &[],
        args: &["fixed-points", "mpr", "--out", "."],
        code: 1,
        says: &["is a directory"],
        absent: &[],
    },
    Case {
        class: "failure whose cause was hidden: a grid with N = 0",
        setup: &[(
            "grid.toml",
            "network = \"qif\"\nN = 0\nt_end = 1.0\n[grid]\nJ = [1.0]\neta = [0.0]\np = [1.0]\n",
        )],
        args: &["spiking", "sweep", "--grid", "grid.toml", "--out", "runs"],
        code: 1,
        says: &["grid.toml", "N: a network needs at least one neuron"],
        absent: &["runs"],
    },
    Case {
        class: "failure whose cause was hidden: a run that fails in a sweep",
        setup: &[(
            "grid.toml",
            "network = \"qif\"\nN = 50\ndt = 1e-3\nbin = 0.0015\nt_end = 0.1\n[grid]\nJ = [1.0]\neta = [0.0]\np = [1.0]\n",
        )],
        args: &["spiking", "sweep", "--grid", "grid.toml", "--out", "runs"],
        code: 1,
        says: &["run 0 (J = 1, eta = 0", "bin", "1 of 1 runs failed"],
        absent: &["runs/run_000000.npz"],
    },
    Case {
        class: "work thrown away: output directory missing, found before the run",
        setup: &[],
        args: &["brain", "--out", "no/such/dir/b.npz"],
        code: 1,
        says: &["directory no/such/dir does not exist"],
        absent: &[],
    },
    Case {
        class: "work thrown away: the second output unwritable leaves no first",
        setup: &[],
        args: &["mf", "mpr", "--out", "ok.npz", "--plot", "no/such/p.svg"],
        code: 1,
        says: &["no/such/p.svg"],
        absent: &["ok.npz"],
    },
    Case {
        class: "work thrown away: a batch row with an invalid parameter, found before any run",
        setup: &[],
        args: &[
            "brain",
            "batch",
            "--connectome",
            "builtin:4",
            "--duration",
            "4000",
            "--tr",
            "100",
            "--transient",
            "500",
            "--vary",
            "tau=-1:1:3",
            "--out",
            "b",
        ],
        code: 1,
        says: &["row 1", "tau"],
        absent: &["b/features.csv"],
    },
    Case {
        class: "work thrown away: --plot of a sharded batch (each shard would overwrite it)",
        setup: &[],
        args: &[
            "brain",
            "batch",
            "--connectome",
            "builtin:4",
            "--vary",
            "G=0:1:3",
            "--shard",
            "1/2",
            "--plot",
            "p.svg",
            "--out",
            "b",
        ],
        code: 1,
        says: &["--plot", "--shard"],
        absent: &["b/features-shard-1-of-2.csv", "p.svg"],
    },
    Case {
        class: "work thrown away: a training whose --out cannot be written",
        setup: &[],
        args: &["train", "--data", "runs", "--out", "no/such/m.nmmw"],
        code: 1,
        says: &["--out", "no/such"],
        absent: &[],
    },
    Case {
        // 2 TB of stored connectivity: more than any machine this runs on has.
        class: "memory: a network too large to store",
        setup: &[],
        args: &[
            "spiking", "qif", "--N", "4000000", "--p", "0.6", "--t-end", "0.01", "--out", "q.npz",
        ],
        code: 1,
        says: &["GB", "--procedural"],
        absent: &["q.npz"],
    },
    Case {
        class: "work thrown away: merging the shards of a batch with one missing",
        setup: &[("b/features-shard-1-of-2.csv", "row,seed_used,G\n1,0,0\n")],
        args: &["brain", "merge", "b"],
        code: 1,
        says: &["shards [2] of 2 are missing"],
        absent: &["b/features.csv"],
    },
    Case {
        class: "NaN or empty results: shards that repeat a row",
        setup: &[
            ("b/features-shard-1-of-2.csv", "row,seed_used,G\n1,0,0\n"),
            ("b/features-shard-2-of-2.csv", "row,seed_used,G\n1,0,0\n"),
        ],
        args: &["brain", "merge", "b"],
        code: 1,
        says: &["row 1 appears in more than one line"],
        absent: &["b/features.csv"],
    },
    Case {
        class: "work thrown away: shards of two different batches",
        setup: &[
            ("b/features-shard-1-of-2.csv", "row,seed_used,G\n1,0,0\n"),
            ("b/features-shard-2-of-2.csv", "row,seed_used,eta\n2,1,-5\n"),
        ],
        args: &["brain", "merge", "b"],
        code: 1,
        says: &["features-shard-2-of-2.csv", "header differs"],
        absent: &["b/features.csv"],
    },
    Case {
        class: "usage error",
        setup: &[],
        args: &["brain", "--G", "x"],
        code: 2,
        says: &["--G"],
        absent: &[],
    },
];

/// Every row of the table fails as it says, and leaves nothing behind.
#[test]
fn bad_input_table() {
    let mut failed = Vec::new();
    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        write_npy_1d(&dir.path().join("z.npy"), 400, 0.1);
        for (name, text) in case.setup {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let args: Vec<String> = case.args.iter().map(|a| a.to_string()).collect();
        let o = nmm_in(dir.path(), &args);
        let err = String::from_utf8_lossy(&o.stderr);
        let code = o.status.code();
        let missing: Vec<_> = case.says.iter().filter(|s| !err.contains(*s)).collect();
        let left: Vec<_> = case
            .absent
            .iter()
            .filter(|p| dir.path().join(p).exists())
            .collect();
        let temp: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.contains(".tmp-") || name.contains(".probe-")
            })
            .collect();
        if code != Some(case.code)
            || !missing.is_empty()
            || !left.is_empty()
            || !temp.is_empty()
            || err.contains("panicked")
        {
            failed.push(format!(
                "{}: nmm {:?}: exit {code:?} (want {}), missing {missing:?}, left {left:?} {temp:?}\n{err}",
                case.class, case.args, case.code
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
    assert!(CASES.len() >= 12);
}

/// stdout closed early (`nmm ... | head`): no panic, exit 0, the output file still written.
#[test]
fn closed_stdout_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fp.csv");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(env!("CARGO_BIN_EXE_nmm"))
        .args(["fixed-points", "mpr", "--out", out.to_str().unwrap()])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.exists());
}

/// A FIFO at `--out` is refused (as root a write would block or replace it).
#[test]
fn fifo_out_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("f.npz");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !matches!(made, Ok(s) if s.success()) {
        eprintln!("mkfifo unavailable: skipped");
        return;
    }
    let o = nmm_in(
        dir.path(),
        &["mf", "mpr", "--t-end", "1", "--out", "f.npz"].map(String::from),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a regular file"));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
}

/// A resumed sweep does not trust a truncated or empty run file: it runs it again.
#[test]
fn resumed_sweep_reruns_truncated_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("grid.toml"), GRID).unwrap();
    let args = ["spiking", "sweep", "--grid", "grid.toml", "--out", "runs"].map(String::from);
    let o = nmm_in(dir.path(), &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run0 = dir.path().join("runs/run_000000.npz");
    let full = std::fs::read(&run0).unwrap();
    std::fs::write(&run0, &full[..full.len() / 2]).unwrap();
    std::fs::write(dir.path().join("runs/run_000001.npz"), b"").unwrap();
    let o = nmm_in(dir.path(), &args);
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("0 already done, 2 to run"), "{said}");
    assert_eq!(std::fs::read(&run0).unwrap(), full);
    let manifest = std::fs::read_to_string(dir.path().join("runs/manifest.csv")).unwrap();
    assert_eq!(manifest.matches(",done,").count(), 2, "{manifest}");
}

/// A failed run's reason reaches the manifest, and is cleared once the run succeeds.
#[test]
fn failed_runs_are_recorded_in_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let bad = GRID.replace("t_end = 0.5", "t_end = 0.5\nbin = 0.0015");
    std::fs::write(dir.path().join("grid.toml"), bad).unwrap();
    let args = ["spiking", "sweep", "--grid", "grid.toml", "--out", "runs"].map(String::from);
    let o = nmm_in(dir.path(), &args);
    assert_eq!(o.status.code(), Some(1));
    let manifest = std::fs::read_to_string(dir.path().join("runs/manifest.csv")).unwrap();
    assert_eq!(manifest.matches(",failed,").count(), 2, "{manifest}");
    assert!(manifest.contains("bin"), "{manifest}");
    assert!(dir.path().join("runs/run_000001.error").exists());
}
