//! File formats: `.npz`/`.npy` arrays (numpy), CSV tables, and the atomic-write discipline
//! every output follows (paths checked before the work, written beside the target, renamed on
//! success, removed on failure).

use crate::error::{Context, Error, Result, bail, input};
use ndarray::{Array1, Array2, ArrayD, Ix1, Ix2};
use ndarray_npy::{NpzWriter, ReadNpyExt};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Checks that `path` can take an output before any work is done: its directory exists and
/// is writable, and `path` is absent or a regular file (a directory, device, FIFO or socket is
/// refused, so that `--out /dev/null` never replaces a device). Long runs call this for every
/// output first, so a run is never thrown away for an unwritable path.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// assert!(nmm::io::check_output(&dir.path().join("x.npz")).is_ok());
/// assert!(nmm::io::check_output(dir.path()).is_err()); // a directory
/// assert!(nmm::io::check_output(&dir.path().join("no/such/x.npz")).is_err());
/// ```
pub fn check_output(path: &Path) -> Result<()> {
    let dir = check_target(path)?;
    // Writable: create (and remove) a probe beside it, as the real write will.
    let probe = temp_path(&dir, path, "probe");
    File::create(&probe).map_err(|e| input!("cannot write into {}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// What [`check_output`] checks without writing: the directory exists, and `path` is absent
/// or a regular file. [`atomic_write`] checks only this, since its own temporary file shows
/// whether the directory is writable (no probe per file in a sweep of thousands).
fn check_target(path: &Path) -> Result<PathBuf> {
    let dir = parent_dir(path);
    if !dir.is_dir() {
        bail!(
            "cannot write {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(m) if m.is_dir() => bail!("cannot write {}: it is a directory", path.display()),
        Ok(_) => bail!(
            "cannot write {}: it exists and is not a regular file (a device, FIFO or socket); \
             nmm writes only regular files",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path, e)),
    }
    if path.file_name().is_none() {
        bail!("output path {} has no file name", path.display());
    }
    Ok(dir)
}

/// Checks every output path of a run (see [`check_output`]) and that no two are the same.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let a = dir.path().join("a.npz");
/// assert!(nmm::io::check_outputs(&[&a, &dir.path().join("b.svg")]).is_ok());
/// assert!(nmm::io::check_outputs(&[&a, &a]).is_err());
/// ```
pub fn check_outputs(paths: &[&Path]) -> Result<()> {
    for (i, p) in paths.iter().enumerate() {
        check_output(p)?;
        if paths[..i].contains(p) {
            bail!("{} is named as two outputs", p.display());
        }
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A name beside `path` no other writer uses: the process id, the time and a counter (shards on
/// several hosts may write into one shared directory).
fn temp_path(dir: &Path, path: &Path, what: &str) -> PathBuf {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path.file_name().unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let k = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!(
        ".{}.{what}-{}-{nanos}-{k}",
        name.to_string_lossy(),
        std::process::id()
    ))
}

/// Writes `path` through a temporary file in the same directory, renamed into place only when
/// `write` succeeds; on any error the temporary file is removed and `path` is left untouched.
/// Only regular files are written: an existing directory, device or FIFO at `path` is refused
/// (as [`check_output`] does).
///
/// ```
/// use std::io::Write;
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("x.txt");
/// nmm::io::atomic_write(&p, |w| Ok(w.write_all(b"hello")?)).unwrap();
/// assert_eq!(std::fs::read(&p).unwrap(), b"hello");
/// // A failing writer leaves the old file as it was.
/// let e = nmm::io::atomic_write(&p, |_| Err(nmm::Error::input("no")));
/// assert!(e.is_err());
/// assert_eq!(std::fs::read(&p).unwrap(), b"hello");
/// ```
pub fn atomic_write<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> Result<()>,
{
    let dir = check_target(path)?;
    let tmp = temp_path(&dir, path, "tmp");
    let result = (|| -> Result<()> {
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut w = BufWriter::new(file);
        write(&mut w)?;
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot move output into {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// One named array of an `.npz` file.
///
/// ```
/// use nmm::io::{NpzEntry, write_npz};
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("x.npz");
/// let entries = vec![
///     ("t".to_string(), NpzEntry::F1(ndarray::Array1::from(vec![0.0, 1.0]))),
///     ("seed".to_string(), NpzEntry::U64(7)),
///     ("meta".to_string(), NpzEntry::Text("{}".into())),
/// ];
/// write_npz(&p, &entries)?;
/// # Ok::<(), nmm::Error>(())
/// ```
pub enum NpzEntry {
    /// 1-D float64.
    F1(Array1<f64>),
    /// 2-D float64.
    F2(Array2<f64>),
    /// 0-d float64 scalar.
    Scalar(f64),
    /// 0-d uint64 scalar.
    U64(u64),
    /// UTF-8 text stored as a uint8 array (`bytes(a).decode()` in numpy).
    Text(String),
}

/// Writes an uncompressed `.npz` atomically.
///
/// ```
/// use nmm::io::{NpzEntry, write_npz};
/// use ndarray_npy::NpzReader;
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("x.npz");
/// write_npz(&p, &[("x".to_string(), NpzEntry::Scalar(2.5))])?;
/// let mut z = NpzReader::new(std::fs::File::open(&p).unwrap()).unwrap();
/// let x: ndarray::Array0<f64> = z.by_name("x").unwrap();
/// assert_eq!(x[()], 2.5);
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn write_npz(path: &Path, entries: &[(String, NpzEntry)]) -> Result<()> {
    atomic_write(path, |w| {
        let mut npz = NpzWriter::new(w);
        for (name, e) in entries {
            let r = match e {
                NpzEntry::F1(a) => npz.add_array(name.as_str(), a),
                NpzEntry::F2(a) => npz.add_array(name.as_str(), a),
                NpzEntry::Scalar(x) => npz.add_array(name.as_str(), &ndarray::arr0(*x)),
                NpzEntry::U64(x) => npz.add_array(name.as_str(), &ndarray::arr0(*x)),
                NpzEntry::Text(s) => {
                    npz.add_array(name.as_str(), &Array1::from(s.as_bytes().to_vec()))
                }
            };
            r.with_context(|| format!("array {name}"))?;
        }
        npz.finish()?;
        Ok(())
    })
}

/// A time series read from a `.npy` file: `time x regions` as float64.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("z.npy");
/// ndarray_npy::write_npy(&p, &ndarray::Array1::from(vec![1.0f32, 2.0, 3.0])).unwrap();
/// let s = nmm::io::read_series(&p)?;
/// assert!(s.was_1d);
/// assert_eq!(s.data.dim(), (3, 1));
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Debug)]
pub struct Series {
    /// Samples, shape (time, regions).
    pub data: Array2<f64>,
    /// Whether the file held a 1-D array (one region).
    pub was_1d: bool,
}

/// Reads a 1-D or 2-D float32/float64 `.npy` file as `time x regions`, rejecting other shapes,
/// empty arrays and non-finite values with an error naming the file and the offending element.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("z.npy");
/// ndarray_npy::write_npy(&p, &ndarray::arr2(&[[1.0, 2.0], [f64::NAN, 0.0]])).unwrap();
/// let e = nmm::io::read_series(&p).unwrap_err().to_string();
/// assert!(e.contains("time index 1, region 0"), "{e}");
/// ```
pub fn read_series(path: &Path) -> Result<Series> {
    let any = read_npy_f64(path)?;
    let shape = any.shape().to_vec();
    let (data, was_1d) = match shape.len() {
        1 => {
            let a = any.into_dimensionality::<Ix1>()?;
            let n = a.len();
            (a.into_shape_with_order((n, 1))?, true)
        }
        2 => (any.into_dimensionality::<Ix2>()?, false),
        d => bail!(
            "{}: expected a 1-D (time) or 2-D (time x regions) array, found {d}-D with shape {shape:?}",
            path.display()
        ),
    };
    if data.nrows() == 0 || data.ncols() == 0 {
        bail!("{}: array is empty (shape {shape:?})", path.display());
    }
    if let Some(((t, r), v)) = data.indexed_iter().find(|(_, v)| !v.is_finite()) {
        if was_1d {
            bail!("{}: non-finite value {v} at index {t}", path.display());
        }
        bail!(
            "{}: non-finite value {v} at time index {t}, region {r}",
            path.display()
        );
    }
    Ok(Series { data, was_1d })
}

/// Reads a float32 or float64 `.npy` array of any shape as float64, values unchecked; errors
/// name the file.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("a.npy");
/// ndarray_npy::write_npy(&p, &ndarray::arr2(&[[1.0f32, f32::NAN]])).unwrap();
/// let a = nmm::io::read_npy_f64(&p)?;
/// assert_eq!(a.shape(), &[1, 2]);
/// assert!(a[[0, 1]].is_nan());
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn read_npy_f64(path: &Path) -> Result<ArrayD<f64>> {
    let open = || File::open(path).with_context(|| format!("cannot open {}", path.display()));
    match ArrayD::<f64>::read_npy(open()?) {
        Ok(a) => Ok(a),
        Err(e64) => match ArrayD::<f32>::read_npy(open()?) {
            Ok(a) => Ok(a.mapv(f64::from)),
            Err(_) => bail!(
                "{}: not a float32/float64 .npy array ({e64})",
                path.display()
            ),
        },
    }
}

/// Writes a 2-D float64 `.npy` array atomically.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("a.npy");
/// nmm::io::write_npy_2d(&p, &ndarray::arr2(&[[1.0, 2.0]]))?;
/// assert_eq!(nmm::io::read_npy_f64(&p)?.shape(), &[1, 2]);
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn write_npy_2d(path: &Path, a: &Array2<f64>) -> Result<()> {
    use ndarray_npy::WriteNpyExt;
    atomic_write(path, |w| {
        a.write_npy(w)
            .map_err(|e| Error::input(format!("writing .npy: {e}")))
    })
}

/// Writes a 1-D float64 `.npy` array atomically.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("a.npy");
/// nmm::io::write_npy_1d(&p, &ndarray::arr1(&[1.0, 2.0]))?;
/// assert_eq!(nmm::io::read_npy_f64(&p)?.shape(), &[2]);
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn write_npy_1d(path: &Path, a: &ndarray::Array1<f64>) -> Result<()> {
    use ndarray_npy::WriteNpyExt;
    atomic_write(path, |w| {
        a.write_npy(w)
            .map_err(|e| Error::input(format!("writing .npy: {e}")))
    })
}

/// Writes `value` as pretty-printed JSON atomically (the records beside outputs).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("r.json");
/// nmm::io::write_json(&p, &serde_json::json!({"seed": 3}))?;
/// assert!(std::fs::read_to_string(&p).unwrap().contains("\"seed\": 3"));
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    atomic_write(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value)?;
        Ok(())
    })
}

/// Writes a CSV table (header plus rows) atomically.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("t.csv");
/// nmm::io::write_csv(&p, &["a".into(), "b".into()], &[vec!["1".into(), "2".into()]])?;
/// assert_eq!(std::fs::read_to_string(&p).unwrap(), "a,b\n1,2\n");
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn write_csv(path: &Path, header: &[String], rows: &[Vec<String>]) -> Result<()> {
    atomic_write(path, |w| {
        let mut c = csv::Writer::from_writer(w);
        c.write_record(header)?;
        for r in rows {
            c.write_record(r)?;
        }
        c.flush()?;
        Ok(())
    })
}
