//! Helpers every module of the test binary shares: running `nmm`, and reading its `.npz`.

use ndarray::{Array1, Array2};
use ndarray_npy::NpzReader;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Output};

/// Runs the `nmm` binary with `args`.
pub fn nmm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nmm"))
        .args(args)
        .output()
        .expect("nmm runs")
}

/// Its stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that the run succeeded (printing its output otherwise) and returns it.
pub fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "nmm failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A 1-D float64 array of an `.npz`.
pub fn read1(npz: &Path, name: &str) -> Array1<f64> {
    let mut r = NpzReader::new(File::open(npz).unwrap()).unwrap();
    r.by_name(name).unwrap()
}

/// A 2-D float64 array of an `.npz`.
pub fn read2(npz: &Path, name: &str) -> Array2<f64> {
    let mut r = NpzReader::new(File::open(npz).unwrap()).unwrap();
    r.by_name(name).unwrap()
}

/// The `meta` JSON of an `.npz`.
pub fn meta(npz: &Path) -> serde_json::Value {
    let mut r = NpzReader::new(File::open(npz).unwrap()).unwrap();
    let bytes: Array1<u8> = r.by_name("meta").unwrap();
    serde_json::from_slice(bytes.as_slice().unwrap()).unwrap()
}
