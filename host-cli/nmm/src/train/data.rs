//! Training data: network runs read from `nmm spiking sweep` directories, checked, and
//! resampled onto the training step; the normalisation derived from them.
//!
//! Units: time in units of the membrane time constant (`tau = 1` in the training networks),
//! `r` in spikes per neuron per time unit, `v`, `eta`, `J`, `I` dimensionless, `p` a
//! probability.

use super::rollout::Series;
use crate::error::{Context, Result, bail, input};
use ndarray::Array1;
use ndarray_npy::NpzReader;
use nmm_core::mlp::Normalisation;
use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};

/// One run listed for training: its file and the parameters it was simulated with.
#[derive(Clone, Debug, PartialEq)]
pub struct RunEntry {
    /// The run's `.npz` file.
    pub file: PathBuf,
    /// Centre of the excitabilities, `eta_bar`.
    pub eta: f64,
    /// Connection probability.
    pub p: f64,
    /// Synaptic weight.
    pub j: f64,
}

/// A run on the training grid: block means of the network's output over windows of one
/// training step `dt`, centred on `t0 + k dt`.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    /// Source file (for messages and the model's metadata).
    pub file: PathBuf,
    /// `eta_bar`.
    pub eta: f64,
    /// Connection probability.
    pub p: f64,
    /// Synaptic weight.
    pub j: f64,
    /// Time of sample 0 (time units).
    pub t0: f64,
    /// Sample interval, the training data interval (time units).
    pub dt: f64,
    /// Population rate (1/time unit).
    pub r: Vec<f64>,
    /// Mean membrane potential.
    pub v: Vec<f64>,
    /// External drive `I(t)`.
    pub input: Vec<f64>,
}

impl Trajectory {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.r.len()
    }

    /// Time of sample `k` (time units).
    pub fn time(&self, k: usize) -> f64 {
        self.t0 + k as f64 * self.dt
    }

    /// The network inputs `(r, v, eta, p, J, I)` of sample `k`.
    pub fn inputs(&self, k: usize) -> [f64; 6] {
        [
            self.r[k],
            self.v[k],
            self.eta,
            self.p,
            self.j,
            self.input[k],
        ]
    }
}

/// Every run in the sweep directory `dir`, in the manifest's order.
///
/// Parameters come from `dir/manifest.csv` (columns `J`, `eta`, `p`, `file`); runs listed
/// there whose file does not exist (a sweep still running, or sharded) are left out and
/// counted in the second return value. A directory without a manifest is read as a plain
/// collection of `*.npz` runs (e.g. from `nmm spiking qif --out`), in file-name order, with
/// the parameters taken from each file's metadata.
///
/// # Errors
/// A missing directory, an unreadable or malformed manifest (naming the line), or a
/// directory holding no runs at all.
pub fn list_runs(dir: &Path) -> Result<(Vec<RunEntry>, usize)> {
    if !dir.is_dir() {
        bail!(
            "training data directory {} does not exist (expected the --out directory of `nmm spiking sweep`)",
            dir.display()
        );
    }
    let manifest = dir.join("manifest.csv");
    let (runs, missing) = if manifest.is_file() {
        read_manifest(dir, &manifest)?
    } else {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "npz") && p.is_file())
            .collect();
        files.sort();
        let runs = files
            .into_iter()
            .map(|file| {
                let meta = read_meta(&file)?;
                params_from_meta(&file, &meta)
            })
            .collect::<Result<Vec<_>>>()?;
        (runs, 0)
    };
    if runs.is_empty() {
        if missing > 0 {
            bail!(
                "{}: none of the {missing} runs listed in manifest.csv has its file yet",
                dir.display()
            );
        }
        bail!(
            "no runs in {} (neither manifest.csv entries nor .npz files)",
            dir.display()
        );
    }
    Ok((runs, missing))
}

fn read_manifest(dir: &Path, manifest: &Path) -> Result<(Vec<RunEntry>, usize)> {
    let mut rd = csv::Reader::from_path(manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let headers = rd
        .headers()
        .with_context(|| format!("{}: no header line", manifest.display()))?
        .clone();
    let col = |name: &str| -> Result<usize> {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            input!(
                "{}: no column {name:?} (found {:?})",
                manifest.display(),
                headers.iter().collect::<Vec<_>>()
            )
        })
    };
    let (cj, ceta, cp, cfile) = (col("J")?, col("eta")?, col("p")?, col("file")?);
    let mut runs = Vec::new();
    let mut missing = 0;
    for (line, rec) in rd.records().enumerate() {
        // Line 1 is the header.
        let line = line + 2;
        let rec = rec.with_context(|| format!("{}: line {line}", manifest.display()))?;
        let num = |c: usize, name: &str| -> Result<f64> {
            let s = rec.get(c).unwrap_or("");
            let x: f64 = s.trim().parse().map_err(|_| {
                input!(
                    "{}: line {line}: {name} = {s:?} is not a number",
                    manifest.display()
                )
            })?;
            if !x.is_finite() {
                bail!("{}: line {line}: {name} = {x}", manifest.display());
            }
            Ok(x)
        };
        let (j, eta, p) = (num(cj, "J")?, num(ceta, "eta")?, num(cp, "p")?);
        let name = rec.get(cfile).unwrap_or("").trim();
        if name.is_empty() {
            bail!("{}: line {line}: empty file name", manifest.display());
        }
        let file = dir.join(name);
        if file.is_file() {
            runs.push(RunEntry { file, eta, p, j });
        } else {
            missing += 1;
        }
    }
    Ok((runs, missing))
}

/// Reads the `meta` entry (JSON stored as uint8 bytes) of a run file.
pub fn read_meta(file: &Path) -> Result<Value> {
    let mut npz = open_npz(file)?;
    let bytes: Array1<u8> = npz
        .by_name("meta")
        .map_err(|e| input!("{}: no readable uint8 array `meta` ({e})", file.display()))?;
    serde_json::from_slice(&bytes.to_vec())
        .map_err(|e| input!("{}: `meta` is not JSON ({e})", file.display()))
}

/// `(J, eta, p)` from a run's metadata: the sweep's record when present, else the model
/// parameters and connection probability that `nmm spiking qif` writes.
fn params_from_meta(file: &Path, meta: &Value) -> Result<RunEntry> {
    let get = |v: &Value| v.as_f64().filter(|x| x.is_finite());
    let sweep = &meta["sweep"];
    let (j, eta, p) = if sweep.is_object() {
        (get(&sweep["J"]), get(&sweep["eta"]), get(&sweep["p"]))
    } else {
        (
            get(&meta["params"]["J"]),
            get(&meta["params"]["eta"]),
            get(&meta["p"]),
        )
    };
    match (j, eta, p) {
        (Some(j), Some(eta), Some(p)) => Ok(RunEntry {
            file: file.to_path_buf(),
            eta,
            p,
            j,
        }),
        _ => bail!(
            "{}: metadata lacks J, eta or p (write runs with `nmm spiking sweep`, or list them in a manifest.csv)",
            file.display()
        ),
    }
}

fn open_npz(file: &Path) -> Result<NpzReader<File>> {
    let f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    NpzReader::new(f).map_err(|e| input!("{}: not an .npz file ({e})", file.display()))
}

/// Reads one run and resamples it onto the step `dt` (time units).
///
/// The file must hold float64 1-D arrays `t`, `r`, `v` and `input` of one length (at least
/// two samples), `t` evenly spaced, every value finite, and `network` in its metadata, when
/// present, must be `"qif"` (the MLP mean field has no adaptation variable).
///
/// Resampling is by block means: `dt` must be a whole multiple `m` of the file's sample
/// interval (`bin`, 0.01 by default), and sample `k` on the training grid is the mean of the
/// file's samples `k m .. (k + 1) m` (a trailing partial block is dropped), so it sits at the
/// block's centre time. The drive `I` is averaged the same way, which gives Heun's method its
/// input at both stage times (`t_k` and `t_k + dt`) without interpolation when it takes one
/// step per interval (`--substeps 1`; with more, the rollout interpolates linearly). Averaging over one
/// step removes most of the finite-size noise of a 0.01 bin; it biases a smooth trajectory by
/// `dt^2 x''/24`, about 0.1 % for the focus oscillations of MPR (frequency ~6 rad per time
/// unit) at `dt = 0.1`.
///
/// # Errors
/// Naming the file: unreadable files, missing or mistyped arrays, unequal lengths, uneven or
/// non-increasing times, non-finite values (with array and index), a `dt` that is not a
/// whole multiple of the sample interval, an Izhikevich run.
pub fn load_trajectory(run: &RunEntry, dt: f64) -> Result<Trajectory> {
    let file = &run.file;
    let network = read_meta(file)
        .ok()
        .and_then(|m| m["network"].as_str().map(str::to_string));
    if let Some(net) = network.filter(|n| n != "qif") {
        bail!(
            "{}: a {net:?} network; the MLP mean field is trained on QIF networks (state r, v only)",
            file.display()
        );
    }
    let mut npz = open_npz(file)?;
    let mut read = |name: &str| -> Result<Vec<f64>> {
        let a: Array1<f64> = npz.by_name(name).map_err(|e| {
            input!(
                "{}: no float64 1-D array `{name}` ({e}); expected t, r, v, input as written by `nmm spiking`",
                file.display()
            )
        })?;
        let a = a.to_vec();
        if let Some(k) = a.iter().position(|x| !x.is_finite()) {
            bail!(
                "{}: non-finite value {} in `{name}` at index {k}",
                file.display(),
                a[k]
            );
        }
        Ok(a)
    };
    let (t, r, v, input) = (read("t")?, read("r")?, read("v")?, read("input")?);
    resample(run, &t, &r, &v, &input, dt)
}

/// Resamples a run's arrays (times `t`, rate `r`, potential `v`, drive `input`, all finite)
/// onto the step `dt` by block means, as described at [`load_trajectory`]; errors name
/// `run.file`.
pub fn resample(
    run: &RunEntry,
    t: &[f64],
    r: &[f64],
    v: &[f64],
    input: &[f64],
    dt: f64,
) -> Result<Trajectory> {
    let file = &run.file;
    let n = t.len();
    if r.len() != n || v.len() != n || input.len() != n {
        bail!(
            "{}: arrays of unequal length (t {}, r {}, v {}, input {})",
            file.display(),
            n,
            r.len(),
            v.len(),
            input.len()
        );
    }
    if n < 2 {
        bail!("{}: {n} samples; need at least 2", file.display());
    }
    let bin = (t[n - 1] - t[0]) / (n - 1) as f64;
    if bin <= 0.0 {
        bail!("{}: times do not increase", file.display());
    }
    if let Some(k) = (1..n).find(|&k| ((t[k] - t[k - 1]) - bin).abs() > 1e-6 * bin) {
        bail!(
            "{}: times are not evenly spaced (t[{}] = {}, t[{k}] = {}, mean interval {bin})",
            file.display(),
            k - 1,
            t[k - 1],
            t[k]
        );
    }
    let Some(m) = crate::stats::whole_multiple(dt, bin) else {
        bail!(
            "{}: --dt {dt} is not a whole multiple of the file's sample interval {bin}",
            file.display()
        );
    };
    let blocks = n / m;
    let mean = |x: &[f64]| -> Vec<f64> {
        x.chunks_exact(m)
            .map(|c| c.iter().sum::<f64>() / m as f64)
            .collect()
    };
    Ok(Trajectory {
        file: file.clone(),
        eta: run.eta,
        p: run.p,
        j: run.j,
        t0: t[0] + 0.5 * (m - 1) as f64 * bin,
        dt: m as f64 * bin,
        r: mean(&r[..blocks * m]),
        v: mean(&v[..blocks * m]),
        input: mean(&input[..blocks * m]),
    })
}

/// A scale that is safe to divide by: `std` unless the variable is constant (relative to its
/// size), then 1.
fn safe_scale(mean: f64, std: f64) -> f64 {
    if std > 1e-9 * mean.abs().max(1.0) {
        std
    } else {
        1.0
    }
}

/// The normalisation of the MLP from the training trajectories.
///
/// - Inputs `(r, v, eta, p, J, I)`: mean and (population) standard deviation over every
///   training sample; a constant input (e.g. `p = 1` throughout) gets its value as mean and
///   scale 1, so it enters the network as 0.
/// - Outputs: `out_scale` is the standard deviation of the central finite differences
///   `(x[k+1] - x[k-1]) / (2 dt)` over the training trajectories (1/time unit^2 for `r`,
///   1/time unit for `v`; 1 if constant), `out_offset` is 0, so an untrained network with
///   small output weights starts near a still vector field.
pub fn normalisation(train: &[Trajectory]) -> Normalisation<f64> {
    normalisation_of(train)
}

/// [`normalisation`] for any series: inputs `u` (state, constants, drive) and the `S` state
/// variables' derivatives.
pub fn normalisation_of<T: Series<I, S>, const I: usize, const S: usize>(
    train: &[T],
) -> Normalisation<f64, I, S> {
    let mut norm = Normalisation::identity();
    for k in 0..I {
        let it = train
            .iter()
            .flat_map(move |tr| (0..tr.len()).map(move |i| tr.inputs(i)[k]));
        let (m, s) = crate::stats::mean_sd_population(it);
        norm.in_mean[k] = m;
        norm.in_scale[k] = safe_scale(m, s);
    }
    for c in 0..S {
        let it = train.iter().flat_map(move |tr| {
            let dt = tr.dt();
            (1..tr.len().saturating_sub(1))
                .map(move |i| (tr.state(i + 1)[c] - tr.state(i - 1)[c]) / (2.0 * dt))
        });
        let (m, s) = crate::stats::mean_sd_population(it);
        norm.out_scale[c] = safe_scale(m, s);
    }
    norm
}
