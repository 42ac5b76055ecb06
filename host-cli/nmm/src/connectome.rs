//! Reading connectomes: TVB connectivity zips, plain matrices (`.npy`, CSV or whitespace text),
//! and the built-in synthetic connectome of core.
//!
//! A TVB zip holds `weights.txt`, `tract_lengths.txt`, `centres.txt` (label x y z per line) and
//! optional extras, possibly inside a folder and possibly bzip2-compressed (`weights.txt.bz2`,
//! as in TVB's `connectivity_68.zip`). Matrices are row = target, column = source, as TVB's.

use crate::error::{Context, Result, bail, input};
use ndarray::Array2;
use ndarray_npy::ReadNpyExt;
use nmm_core::connectome::{check_non_negative, synthetic};
use std::io::Read;
use std::path::Path;

/// Regions of the built-in connectome when none is named.
///
/// ```
/// assert_eq!(nmm::connectome::load("builtin", None)?.n, nmm::connectome::BUILTIN_REGIONS);
/// # Ok::<(), nmm::Error>(())
/// ```
pub const BUILTIN_REGIONS: usize = 68;

/// A structural connectome as read from disk.
///
/// ```
/// let c = nmm::connectome::builtin(8)?;
/// assert_eq!((c.n, c.weights.len(), c.labels.len()), (8, 64, 8));
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConnectomeData {
    /// Number of regions.
    pub n: usize,
    /// Weights, `n x n` row-major, row = target.
    pub weights: Vec<f64>,
    /// Tract lengths in mm, `n x n`, if the source has them.
    pub lengths_mm: Option<Vec<f64>>,
    /// Region labels (from `centres.txt`, else `R0`, `R1`, ...).
    pub labels: Vec<String>,
    /// Region centres in mm, if known.
    pub centres_mm: Option<Vec<[f64; 3]>>,
    /// Where it came from (`builtin:68`, a path), recorded in outputs.
    pub source: String,
}

/// Loads `spec`: `builtin` or `builtin:N` (synthetic, `N` even >= 4), a TVB `.zip`, a `.npy`
/// matrix, or a CSV/whitespace text matrix. `lengths` optionally names a tract-length matrix in
/// mm for plain weight matrices (a zip brings its own).
///
/// ```
/// let c = nmm::connectome::load("builtin:10", None)?;
/// assert_eq!(c.source, "builtin:10");
/// let zip = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/tvb/connectivity_76.zip");
/// let tvb = nmm::connectome::load(zip, None)?;
/// assert_eq!(tvb.n, 76);
/// assert!(tvb.lengths_mm.is_some());
/// assert!(nmm::connectome::load("builtin:x", None).is_err());
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn load(spec: &str, lengths: Option<&Path>) -> Result<ConnectomeData> {
    let c = if let Some(rest) = spec.strip_prefix("builtin") {
        let n = match rest.strip_prefix(':') {
            None if rest.is_empty() => BUILTIN_REGIONS,
            Some(n) => n
                .parse()
                .map_err(|_| input!("connectome {spec:?}: expected builtin:N with N a count"))?,
            None => bail!("connectome {spec:?}: expected `builtin` or `builtin:N`"),
        };
        builtin(n)?
    } else {
        let path = Path::new(spec);
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let mut c = match ext.as_str() {
            "zip" => read_tvb_zip(path)?,
            _ => {
                let (n, weights) = read_matrix(path)?;
                ConnectomeData {
                    n,
                    weights,
                    lengths_mm: None,
                    labels: default_labels(n),
                    centres_mm: None,
                    source: spec.to_string(),
                }
            }
        };
        if let Some(l) = lengths {
            let (n, m) = read_matrix(l)?;
            if n != c.n {
                bail!(
                    "{}: tract lengths are {n} x {n} but the weights {} are {} x {}",
                    l.display(),
                    spec,
                    c.n,
                    c.n
                );
            }
            check_non_negative("tract_lengths", n, &m)
                .map_err(|e| input!("{}: {e}", l.display()))?;
            c.lengths_mm = Some(m);
        }
        c
    };
    check_non_negative("weights", c.n, &c.weights).map_err(|e| input!("{}: {e}", c.source))?;
    Ok(c)
}

/// The synthetic connectome of `nmm_core::connectome::synthetic`.
///
/// ```
/// let c = nmm::connectome::builtin(6)?;
/// // Two hemispheres of three regions: labels R0..R2, L0..L2; symmetric weights.
/// assert_eq!(c.labels[3], "L0");
/// assert!((0..6).all(|i| (0..6).all(|j| c.weights[i * 6 + j] == c.weights[j * 6 + i])));
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn builtin(n: usize) -> Result<ConnectomeData> {
    let mut w = vec![0.0; n * n];
    let mut l = vec![0.0; n * n];
    let mut c = vec![[0.0; 3]; n];
    synthetic(n, &mut w, &mut l, &mut c).map_err(|e| input!("builtin connectome: {e}"))?;
    let half = n / 2;
    Ok(ConnectomeData {
        n,
        weights: w,
        lengths_mm: Some(l),
        labels: (0..n)
            .map(|i| format!("{}{}", if i < half { "R" } else { "L" }, i % half))
            .collect(),
        centres_mm: Some(c),
        source: format!("builtin:{n}"),
    })
}

fn default_labels(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("R{i}")).collect()
}

/// Reads a non-empty square matrix from `.npy` (float64 or float32) or text (CSV or whitespace).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("w.csv");
/// std::fs::write(&p, "0,1\n1,0\n").unwrap();
/// assert_eq!(nmm::connectome::read_matrix(&p)?, (2, vec![0.0, 1.0, 1.0, 0.0]));
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn read_matrix(path: &Path) -> Result<(usize, Vec<f64>)> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if ext == "npy" {
        let f =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let a = Array2::<f64>::read_npy(f)
            .or_else(|_| {
                let f = std::fs::File::open(path)?;
                Array2::<f32>::read_npy(f).map(|a| a.mapv(f64::from))
            })
            .map_err(|e| {
                input!(
                    "{}: expected a 2-D float64 or float32 array ({e})",
                    path.display()
                )
            })?;
        let (r, c) = a.dim();
        if r == 0 {
            bail!("{}: the matrix is empty", path.display());
        }
        if r != c {
            bail!("{}: matrix is {r} x {c}, not square", path.display());
        }
        return Ok((r, a.iter().copied().collect()));
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_matrix(&text).map_err(|e| input!("{}: {e}", path.display()))
}

/// Parses a square matrix written as lines of numbers separated by commas or whitespace.
///
/// ```
/// assert_eq!(nmm::connectome::parse_matrix("1 2\n3 4\n")?, (2, vec![1.0, 2.0, 3.0, 4.0]));
/// let e = nmm::connectome::parse_matrix("1,2\n3,x\n").unwrap_err().to_string();
/// assert!(e.contains("line 2, column 2"), "{e}");
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn parse_matrix(text: &str) -> Result<(usize, Vec<f64>)> {
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let row: Vec<f64> = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(j, s)| {
                s.parse::<f64>()
                    .map_err(|_| input!("line {}, column {}: {s:?} is not a number", k + 1, j + 1))
            })
            .collect::<Result<_>>()?;
        if let Some(first) = rows.first()
            && row.len() != first.len()
        {
            bail!(
                "line {}: {} values, but the first row has {}",
                k + 1,
                row.len(),
                first.len()
            );
        }
        rows.push(row);
    }
    let n = rows.len();
    if n == 0 {
        bail!("no matrix rows");
    }
    if rows[0].len() != n {
        bail!("matrix is {n} x {}, not square", rows[0].len());
    }
    Ok((n, rows.into_iter().flatten().collect()))
}

/// Reads a TVB connectivity zip.
///
/// ```
/// let zip = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/tvb/connectivity_76.zip");
/// let c = nmm::connectome::read_tvb_zip(std::path::Path::new(zip))?;
/// assert_eq!((c.n, c.labels.len()), (76, 76));
/// assert!(c.centres_mm.is_some());
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn read_tvb_zip(path: &Path) -> Result<ConnectomeData> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut zip = zip::ZipArchive::new(f)
        .with_context(|| format!("{}: not a readable zip archive", path.display()))?;
    let mut read_member = |name: &str| -> Result<Option<(String, String)>> {
        let found = (0..zip.len()).find_map(|i| {
            let entry = zip.by_index(i).ok()?;
            let base = entry.name().rsplit('/').next()?.to_string();
            (base == name || base == format!("{name}.bz2")).then(|| (i, entry.name().to_string()))
        });
        let Some((i, full)) = found else {
            return Ok(None);
        };
        let mut entry = zip.by_index(i)?;
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .with_context(|| format!("{}: cannot read {full}", path.display()))?;
        if full.ends_with(".bz2") {
            let mut out = Vec::new();
            bzip2::read::BzDecoder::new(&bytes[..])
                .read_to_end(&mut out)
                .with_context(|| format!("{}: {full} is not valid bzip2", path.display()))?;
            bytes = out;
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| input!("{}: {full} is not UTF-8 text", path.display()))?;
        Ok(Some((full, text)))
    };
    let (wname, wtext) = read_member("weights.txt")?
        .ok_or_else(|| input!("{}: no weights.txt in the archive", path.display()))?;
    let (n, weights) =
        parse_matrix(&wtext).map_err(|e| input!("{}: {wname}: {e}", path.display()))?;
    let lengths_mm = match read_member("tract_lengths.txt")? {
        Some((name, text)) => {
            let (m, l) =
                parse_matrix(&text).map_err(|e| input!("{}: {name}: {e}", path.display()))?;
            if m != n {
                bail!(
                    "{}: {name} is {m} x {m}, weights are {n} x {n}",
                    path.display()
                );
            }
            check_non_negative("tract_lengths", n, &l)
                .map_err(|e| input!("{}: {name}: {e}", path.display()))?;
            Some(l)
        }
        None => None,
    };
    let (labels, centres_mm) = match read_member("centres.txt")? {
        Some((name, text)) => {
            let (l, c) =
                parse_centres(&text, n).map_err(|e| input!("{}: {name}: {e}", path.display()))?;
            (l, Some(c))
        }
        None => (default_labels(n), None),
    };
    Ok(ConnectomeData {
        n,
        weights,
        lengths_mm,
        labels,
        centres_mm,
        source: path.display().to_string(),
    })
}

/// Parses TVB's `centres.txt`: `label x y z` per line (extra columns ignored).
fn parse_centres(text: &str, n: usize) -> Result<(Vec<String>, Vec<[f64; 3]>)> {
    let mut labels = Vec::with_capacity(n);
    let mut centres = Vec::with_capacity(n);
    for (k, line) in text.lines().enumerate() {
        let mut it = line.split_whitespace();
        let Some(label) = it.next() else { continue };
        let mut xyz = [0.0; 3];
        for (c, v) in xyz.iter_mut().enumerate() {
            let s = it
                .next()
                .ok_or_else(|| input!("line {}: expected `label x y z`", k + 1))?;
            *v = s.parse().map_err(|_| {
                input!(
                    "line {}, coordinate {}: {s:?} is not a number",
                    k + 1,
                    c + 1
                )
            })?;
        }
        labels.push(label.to_string());
        centres.push(xyz);
    }
    if labels.len() != n {
        bail!("{} regions listed, the weights have {n}", labels.len());
    }
    Ok((labels, centres))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_matrices_parse_and_errors_name_the_line() {
        assert_eq!(
            parse_matrix("1,2\n3 4\n").unwrap(),
            (2, vec![1.0, 2.0, 3.0, 4.0])
        );
        let e = parse_matrix("1 2\n3 x\n").unwrap_err().to_string();
        assert!(e.contains("line 2, column 2"), "{e}");
        let e = parse_matrix("1 2\n3\n").unwrap_err().to_string();
        assert!(e.contains("line 2: 1 values"), "{e}");
        let e = parse_matrix("1 2\n").unwrap_err().to_string();
        assert!(e.contains("not square"), "{e}");
    }

    #[test]
    fn builtin_is_symmetric_two_hemispheres() {
        let c = load("builtin:20", None).unwrap();
        assert_eq!(c.n, 20);
        for i in 0..20 {
            for j in 0..20 {
                assert_eq!(c.weights[i * 20 + j], c.weights[j * 20 + i]);
            }
            // homotopic link
            assert_eq!(c.weights[i * 20 + (i + 10) % 20], 0.5);
        }
        assert!(load("builtin:7", None).is_err());
        assert!(load("builtin:x", None).is_err());
    }
}
