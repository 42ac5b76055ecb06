//! `nmm spiking sweep --grid GRID.toml --out DIR`: a parameter grid of network runs, as training
//! data for the data-driven mean field.
//!
//! - The grid is the product J x eta x p x seeds x stimulus seeds (in that nesting order), each
//!   axis a list or `{ start, stop, num }` (inclusive, evenly spaced); run `i` of the product
//!   is written to `DIR/run_{i:06}.npz`.
//! - Resumable: a run is done when its file is a complete `.npz` (a truncated or empty file,
//!   as a full disk or a killed copy leaves, is run again); files are written atomically, so a
//!   killed sweep loses only the runs in flight, and running the same command again skips the
//!   rest. A run that fails leaves `run_{i:06}.error` with the reason (removed once it
//!   succeeds), and the manifest's `status` and `error` columns say so.
//! - Shardable: `--shard K/N` (K = 1..N) takes runs i with i mod N = K - 1; inside a Slurm array
//!   job it reads K and N from SLURM_ARRAY_TASK_ID, _MIN, _STEP and _COUNT (evenly spaced
//!   arrays such as `--array=0-15` or `--array=0-30:2`).
//! - `DIR/manifest.csv` lists every run of the grid (id, parameters, seeds, file, status
//!   `done`/`failed`/`pending` and the error of a failed run), rewritten from the directory's
//!   contents at the start and the end of every shard, and `DIR/grid.toml` holds the grid
//!   itself; a sweep into a directory holding another grid is refused.
//!
//! Example grid (QIF, the 2025 paper's setup):
//! ```toml
//! network = "qif"      # or "izh"
//! N = 10000
//! dt = 1e-4
//! t_end = 60.0
//! bin = 0.01
//! synapse = "pulse"    # qif: "instant" or "pulse" (delay 0.01, width 0.001 by default)
//! stim = "noise:1:1.1"
//! [params]             # fixed model parameters (names as for `nmm mf mpr` / `cc`)
//! delta = 1.0
//! [grid]
//! J = { start = 0.0, stop = 20.0, num = 11 }
//! eta = { start = -10.0, stop = 0.0, num = 11 }
//! p = [0.6, 0.8, 1.0]
//! seeds = [1, 2]
//! stim_seeds = [1, 2, 3]
//! ```

use crate::error::{Context, Error, Result, bail, input};
use crate::io::{atomic_write, write_csv};
use crate::network::{
    Common, Connectivity, Heterogeneity, IzhParams, QifParams, Synapse, run_izh, run_qif,
};
use crate::progress::Progress;
use crate::spiking::{quiescent_state, run_meta, write_output};
use nmm_core::models::{ChenCampbell, Mpr};
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One axis of the grid: explicit values or an inclusive linear range.
///
/// ```
/// let g: nmm::sweep::GridAxes = toml::from_str("J = { start = 0.0, stop = 1.0, num = 3 }\neta = [-5.0, -4.0]\np = [1.0]").unwrap();
/// assert!(matches!(g.j, nmm::sweep::Axis::Range { num: 3, .. }));
/// assert!(matches!(g.eta, nmm::sweep::Axis::List(_)));
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Axis {
    /// Explicit values.
    List(Vec<f64>),
    /// `num` values from `start` to `stop` inclusive.
    Range {
        /// First value.
        start: f64,
        /// Last value.
        stop: f64,
        /// Number of values (>= 1).
        num: usize,
    },
}

impl Axis {
    fn values(&self, name: &str) -> Result<Vec<f64>> {
        let v = match self {
            Axis::List(v) => v.clone(),
            Axis::Range { start, stop, num } => match num {
                0 => bail!("grid.{name}: num must be >= 1"),
                1 => vec![*start],
                n => (0..*n)
                    .map(|k| start + (stop - start) * k as f64 / (*n - 1) as f64)
                    .collect(),
            },
        };
        if v.is_empty() {
            bail!("grid.{name} is empty");
        }
        if let Some(x) = v.iter().find(|x| !x.is_finite()) {
            bail!("grid.{name} holds a non-finite value {x}");
        }
        Ok(v)
    }
}

/// The axes of the grid.
///
/// ```
/// let g: nmm::sweep::GridAxes = toml::from_str("J = [10.0]\neta = [-5.0]\np = [1.0]").unwrap();
/// assert_eq!((g.seeds.clone(), g.stim_seeds.clone()), (vec![1], vec![1])); // defaults
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridAxes {
    /// Coupling J.
    #[serde(rename = "J")]
    pub j: Axis,
    /// Centre of the excitabilities (eta_bar).
    pub eta: Axis,
    /// Connection probability.
    #[serde(default = "one")]
    pub p: Axis,
    /// Network seeds (connectivity, heterogeneity, initial state).
    #[serde(default = "seed_one")]
    pub seeds: Vec<u64>,
    /// Stimulus seeds.
    #[serde(default = "seed_one")]
    pub stim_seeds: Vec<u64>,
}

fn one() -> Axis {
    Axis::List(vec![1.0])
}
fn seed_one() -> Vec<u64> {
    vec![1]
}

/// A sweep configuration (`GRID.toml`).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let grid_file = dir.path().join("grid.toml");
/// std::fs::write(&grid_file, "network = \"qif\"\nN = 50\nt_end = 0.1\n[grid]\nJ = { start = 10.0, stop = 15.0, num = 2 }\neta = [-5.0]\np = [0.5, 1.0]\n").unwrap();
/// let (grid, _text) = nmm::sweep::Grid::load(&grid_file)?;
/// assert_eq!(grid.n, 50);
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// "qif" or "izh".
    pub network: String,
    /// Neurons per run.
    #[serde(rename = "N", default = "default_n")]
    pub n: usize,
    /// Euler step (time unit).
    #[serde(default = "default_dt")]
    pub dt: f64,
    /// Start time.
    #[serde(default)]
    pub t0: f64,
    /// End time.
    pub t_end: f64,
    /// Rate bin (time unit).
    #[serde(default = "default_bin")]
    pub bin: f64,
    /// Drive of every run (noise draws from the run's stimulus seed).
    #[serde(default = "default_stim")]
    pub stim: String,
    /// QIF synapse: "instant" or "pulse".
    #[serde(default = "default_synapse")]
    pub synapse: String,
    /// Pulse delay after the threshold crossing.
    #[serde(default = "default_delay")]
    pub delay: f64,
    /// Pulse width.
    #[serde(default = "default_width")]
    pub width: f64,
    /// Divide weights by p.
    #[serde(default)]
    pub normalise: bool,
    /// Procedural connectivity.
    #[serde(default)]
    pub procedural: bool,
    /// "quantiles" or "random".
    #[serde(default = "default_hetero")]
    pub hetero: String,
    /// Threshold (default 100 for qif, 200 for izh); reset is minus it.
    pub v_peak: Option<f64>,
    /// Fixed model parameters by name.
    #[serde(default)]
    pub params: BTreeMap<String, f64>,
    /// The axes.
    pub grid: GridAxes,
}

fn default_n() -> usize {
    10_000
}
fn default_dt() -> f64 {
    1e-4
}
fn default_bin() -> f64 {
    0.01
}
fn default_stim() -> String {
    "noise:1:1.1".into()
}
fn default_synapse() -> String {
    "pulse".into()
}
fn default_delay() -> f64 {
    0.01
}
fn default_width() -> f64 {
    1e-3
}
fn default_hetero() -> String {
    "quantiles".into()
}

/// One run of the grid.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let grid_file = dir.path().join("grid.toml");
/// std::fs::write(&grid_file, "network = \"qif\"\nN = 50\nt_end = 0.1\n[grid]\nJ = { start = 10.0, stop = 15.0, num = 2 }\neta = [-5.0]\np = [0.5, 1.0]\n").unwrap();
/// let (grid, _) = nmm::sweep::Grid::load(&grid_file)?;
/// let runs = grid.runs()?;
/// // J x eta x p: run 1 is J = 10, p = 1.
/// assert_eq!((runs[1].j, runs[1].p, runs[1].file()), (10.0, 1.0, "run_000001.npz".to_string()));
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// Index in the grid.
    pub id: usize,
    /// Coupling.
    pub j: f64,
    /// eta_bar.
    pub eta: f64,
    /// Connection probability.
    pub p: f64,
    /// Network seed.
    pub seed: u64,
    /// Stimulus seed.
    pub stim_seed: u64,
}

impl Run {
    /// File name of the run's error report (present while the run has failed).
    ///
    /// ```
    /// let run = nmm::sweep::Run { id: 12, j: 1.0, eta: 0.0, p: 1.0, seed: 1, stim_seed: 1 };
    /// assert_eq!(run.error_file(), "run_000012.error");
    /// ```
    pub fn error_file(&self) -> String {
        format!("run_{:06}.error", self.id)
    }

    /// The run's file name.
    ///
    /// ```
    /// let run = nmm::sweep::Run { id: 3, j: 1.0, eta: 0.0, p: 1.0, seed: 1, stim_seed: 1 };
    /// assert_eq!(run.file(), "run_000003.npz");
    /// ```
    pub fn file(&self) -> String {
        format!("run_{:06}.npz", self.id)
    }
}

impl Grid {
    /// Parses and checks a grid file.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let grid_file = dir.path().join("grid.toml");
    /// std::fs::write(&grid_file, "network = \"qif\"\nN = 50\nt_end = 0.1\n[grid]\nJ = { start = 10.0, stop = 15.0, num = 2 }\neta = [-5.0]\np = [0.5, 1.0]\n").unwrap();
    /// assert!(nmm::sweep::Grid::load(&grid_file).is_ok());
    /// std::fs::write(&grid_file, "network = \"qif\"\nt_end = 1.0\n[grid]\nJ = [1.0]\neta = [0.0]\np = [1.5]\n").unwrap();
    /// let e = nmm::sweep::Grid::load(&grid_file).unwrap_err();
    /// assert!(e.root().to_string().contains("grid.p: 1.5"), "{e}");
    /// # Ok::<(), nmm::Error>(())
    /// ```
    pub fn load(path: &Path) -> Result<(Grid, String)> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let grid: Grid = toml::from_str(&text).map_err(|e| input!("{}: {e}", path.display()))?;
        grid.check()
            .with_context(|| format!("{}", path.display()))?;
        Ok((grid, text))
    }

    fn check(&self) -> Result<()> {
        if self.n == 0 {
            bail!("N: a network needs at least one neuron, got 0");
        }
        if self.network != "qif" && self.network != "izh" {
            bail!("network must be \"qif\" or \"izh\", got {:?}", self.network);
        }
        if self.synapse != "instant" && self.synapse != "pulse" {
            bail!(
                "synapse must be \"instant\" or \"pulse\", got {:?}",
                self.synapse
            );
        }
        if self.hetero != "quantiles" && self.hetero != "random" {
            bail!(
                "hetero must be \"quantiles\" or \"random\", got {:?}",
                self.hetero
            );
        }
        self.stim
            .parse::<nmm_core::stim::StimSpec>()
            .map_err(|e| input!("stim {:?}: {e}", self.stim))?;
        for p in self.grid.p.values("p")? {
            if !(p > 0.0 && p <= 1.0) {
                bail!("grid.p: {p} is not in (0, 1]");
            }
        }
        let known: Vec<&str> = if self.network == "qif" {
            Mpr::<f64>::SPECS.iter().map(|s| s.name).collect()
        } else {
            ChenCampbell::<f64>::SPECS.iter().map(|s| s.name).collect()
        };
        for k in self.params.keys() {
            // J and eta come from the grid (for izh, J sets the conductance g).
            let from_grid = k == "J" || k == "eta" || (self.network == "izh" && k == "g");
            if !known.contains(&k.as_str()) || from_grid {
                bail!(
                    "params.{k}: not a fixed parameter of {} (allowed: {})",
                    self.network,
                    known.join(", ")
                );
            }
        }
        if self.grid.seeds.is_empty() || self.grid.stim_seeds.is_empty() {
            bail!("grid.seeds and grid.stim_seeds must not be empty");
        }
        self.runs().map(|_| ())
    }

    /// Every run of the grid, in order.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let grid_file = dir.path().join("grid.toml");
    /// std::fs::write(&grid_file, "network = \"qif\"\nN = 50\nt_end = 0.1\n[grid]\nJ = { start = 10.0, stop = 15.0, num = 2 }\neta = [-5.0]\np = [0.5, 1.0]\n").unwrap();
    /// let (grid, _) = nmm::sweep::Grid::load(&grid_file)?;
    /// assert_eq!(grid.runs()?.len(), 4);
    /// # Ok::<(), nmm::Error>(())
    /// ```
    pub fn runs(&self) -> Result<Vec<Run>> {
        let (js, etas, ps) = (
            self.grid.j.values("J")?,
            self.grid.eta.values("eta")?,
            self.grid.p.values("p")?,
        );
        let mut runs = Vec::new();
        for &j in &js {
            for &eta in &etas {
                for &p in &ps {
                    for &seed in &self.grid.seeds {
                        for &stim_seed in &self.grid.stim_seeds {
                            runs.push(Run {
                                id: runs.len(),
                                j,
                                eta,
                                p,
                                seed,
                                stim_seed,
                            });
                        }
                    }
                }
            }
        }
        Ok(runs)
    }

    fn common(&self, run: &Run) -> Result<Common> {
        Ok(Common {
            n: self.n,
            dt: self.dt,
            t0: self.t0,
            t_end: self.t_end,
            bin: self.bin,
            conn: if run.p >= 1.0 && !self.procedural {
                Connectivity::AllToAll
            } else {
                Connectivity::Random {
                    p: run.p,
                    procedural: self.procedural,
                }
            },
            normalise: self.normalise,
            hetero: if self.hetero == "random" {
                Heterogeneity::Random
            } else {
                Heterogeneity::Quantiles
            },
            stim: self.stim.parse().map_err(|e| input!("stim: {e}"))?,
            seed: run.seed,
            stim_seed: run.stim_seed,
            record: 0,
            threads: 1,
            init: (0.0, 0.0),
        })
    }

    /// Runs one grid point and writes its file atomically.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let grid_file = dir.path().join("grid.toml");
    /// std::fs::write(&grid_file, "network = \"qif\"\nN = 50\nt_end = 0.1\n[grid]\nJ = { start = 10.0, stop = 15.0, num = 2 }\neta = [-5.0]\np = [0.5, 1.0]\n").unwrap();
    /// let (grid, _) = nmm::sweep::Grid::load(&grid_file)?;
    /// let runs = grid.runs()?;
    /// grid.execute(&runs[0], dir.path())?;
    /// assert!(nmm::sweep::run_complete(&dir.path().join("run_000000.npz")));
    /// # Ok::<(), nmm::Error>(())
    /// ```
    pub fn execute(&self, run: &Run, dir: &Path) -> Result<()> {
        let mut c = self.common(run)?;
        let (out, extra) = if self.network == "qif" {
            let mut mf = Mpr::<f64>::default();
            for (k, v) in &self.params {
                mf.set(k, *v).with_context(|| format!("params.{k}"))?;
            }
            mf.set("J", run.j).context("grid.J")?;
            mf.set("eta", run.eta).context("grid.eta")?;
            c.init = quiescent_state(&mf, run.p, self.normalise);
            let v_peak = self.v_peak.unwrap_or(100.0);
            let synapse = if self.synapse == "pulse" {
                Synapse::Pulse {
                    delay: self.delay,
                    width: self.width,
                }
            } else {
                Synapse::Instant
            };
            let p = QifParams::from_mpr(&mf, v_peak, -v_peak, synapse);
            let (params, units) = crate::models::params_json(&mf);
            (
                run_qif(&c, &p, &crate::progress::Silent)?,
                json!({"params": params, "units": units, "V_peak": v_peak}),
            )
        } else {
            let mut mf = ChenCampbell::<f64>::default();
            for (k, v) in &self.params {
                mf.set(k, *v).with_context(|| format!("params.{k}"))?;
            }
            mf.set("eta", run.eta).context("grid.eta")?;
            // The Izhikevich network's coupling strength is its synaptic conductance g.
            mf.set("g", run.j).context("grid.J (g for izh)")?;
            let v_peak = self.v_peak.unwrap_or(200.0);
            let (params, units) = crate::models::params_json(&mf);
            (
                run_izh(
                    &c,
                    &IzhParams {
                        mf,
                        v_peak,
                        v_reset: -v_peak,
                    },
                    &crate::progress::Silent,
                )?,
                json!({"params": params, "units": units, "v_peak": v_peak}),
            )
        };
        let mut meta = run_meta(&self.network, &c, &out, extra);
        meta["sweep"] = json!({"run": run.id, "J": run.j, "eta": run.eta, "p": run.p, "seed": run.seed, "stim_seed": run.stim_seed});
        write_output(&dir.join(run.file()), &self.network, &out, &meta)
    }
}

/// Parses `K/N` (1 <= K <= N).
///
/// ```
/// assert_eq!(nmm::sweep::parse_shard("2/3").unwrap(), (2, 3));
/// assert!(nmm::sweep::parse_shard("4/3").unwrap_err().to_string().contains("--shard"));
/// ```
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| input!("--shard: expected K/N, got {s:?}"))?;
    let k: usize = k
        .trim()
        .parse()
        .with_context(|| format!("--shard: K in {s:?} is not a number"))?;
    let n: usize = n
        .trim()
        .parse()
        .with_context(|| format!("--shard: N in {s:?} is not a number"))?;
    if n == 0 || k == 0 || k > n {
        bail!("--shard: need 1 <= K <= N, got {k}/{n}");
    }
    Ok((k, n))
}

/// The shard of a Slurm array task, from its environment: K = (ID - MIN) / STEP + 1,
/// N = COUNT; `None` outside an array job.
///
/// ```
/// let env = |k: &str| match k {
///     "SLURM_ARRAY_TASK_ID" => Some("4".to_string()),
///     "SLURM_ARRAY_TASK_MIN" => Some("0".to_string()),
///     "SLURM_ARRAY_TASK_STEP" => Some("2".to_string()),
///     "SLURM_ARRAY_TASK_COUNT" => Some("8".to_string()),
///     _ => None,
/// };
/// assert_eq!(nmm::sweep::slurm_shard(env).unwrap(), Some((3, 8)));
/// assert_eq!(nmm::sweep::slurm_shard(|_| None).unwrap(), None);
/// ```
pub fn slurm_shard(get: impl Fn(&str) -> Option<String>) -> Result<Option<(usize, usize)>> {
    let Some(id) = get("SLURM_ARRAY_TASK_ID") else {
        return Ok(None);
    };
    let num = |name: &str| -> Result<usize> {
        let v = get(name).ok_or_else(|| input!("SLURM_ARRAY_TASK_ID is set but {name} is not"))?;
        v.trim()
            .parse()
            .with_context(|| format!("{name}={v:?} is not a number"))
    };
    let id: usize = id
        .trim()
        .parse()
        .with_context(|| format!("SLURM_ARRAY_TASK_ID={id:?} is not a number"))?;
    let (min, count) = (num("SLURM_ARRAY_TASK_MIN")?, num("SLURM_ARRAY_TASK_COUNT")?);
    let step = match get("SLURM_ARRAY_TASK_STEP") {
        Some(_) => num("SLURM_ARRAY_TASK_STEP")?.max(1),
        None => 1,
    };
    if id < min || !(id - min).is_multiple_of(step) || (id - min) / step >= count {
        bail!(
            "SLURM_ARRAY_TASK_ID={id} does not fit MIN={min}, STEP={step}, COUNT={count} (use an evenly spaced --array, e.g. 0-15 or 0-30:2)"
        );
    }
    Ok(Some(((id - min) / step + 1, count)))
}

/// Whether `path` holds a complete run: an `.npz` whose directory can be read and that has
/// the arrays every run writes (`r` and `meta`). A truncated, empty or foreign file is not.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("run_000000.npz");
/// std::fs::write(&p, b"").unwrap();
/// assert!(!nmm::sweep::run_complete(&p));
/// assert!(!nmm::sweep::run_complete(&dir.path().join("absent.npz")));
/// ```
pub fn run_complete(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(mut z) = ndarray_npy::NpzReader::new(f) else {
        return false;
    };
    let Ok(names) = z.names() else {
        return false;
    };
    ["r", "meta"]
        .iter()
        .all(|want| names.iter().any(|n| n.trim_end_matches(".npy") == *want))
}

/// A sweep ready to run: the grid, every run, and this shard's share.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let grid_file = dir.path().join("grid.toml");
/// std::fs::write(&grid_file, "network = \"qif\"\nN = 50\nt_end = 0.1\n[grid]\nJ = { start = 10.0, stop = 15.0, num = 2 }\neta = [-5.0]\np = [0.5, 1.0]\n").unwrap();
/// let sweep = nmm::sweep::Sweep::prepare(&grid_file, &dir.path().join("runs"), (2, 2))?;
/// assert_eq!(sweep.mine, [1, 3]); // shard 2 of 2: the odd runs
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Debug)]
pub struct Sweep {
    /// The grid.
    pub grid: Grid,
    /// The output directory.
    pub dir: PathBuf,
    /// Every run of the grid, in order.
    pub runs: Vec<Run>,
    /// Shard `(K, N)`.
    pub shard: (usize, usize),
    /// Ids of this shard's runs.
    pub mine: Vec<usize>,
    /// Ids of this shard's runs without a complete file.
    pub todo: Vec<usize>,
}

/// A run that failed, and why.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let grid_file = dir.path().join("grid.toml");
/// std::fs::write(&grid_file, "network = \"qif\"\nN = 50\nt_end = 0.1\nbin = 0.00015\n[grid]\nJ = { start = 10.0, stop = 15.0, num = 2 }\neta = [-5.0]\np = [0.5, 1.0]\n").unwrap();
/// let sweep = nmm::sweep::Sweep::prepare(&grid_file, &dir.path().join("runs"), (1, 1))?;
/// let failed = sweep.execute(&nmm::progress::Silent)?;
/// assert_eq!(failed.len(), 4); // the bin is not a whole number of steps
/// assert!(failed[0].error.to_string().contains("bin"));
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Debug)]
pub struct Failure {
    /// The run.
    pub run: Run,
    /// Why.
    pub error: Error,
}

impl Sweep {
    /// Reads the grid at `grid_path`, creates `dir` (refusing one that holds another grid),
    /// saves the grid and writes the manifest; `shard` is `(K, N)`.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let grid = dir.path().join("grid.toml");
    /// std::fs::write(&grid, "network = \"qif\"\nN = 50\nt_end = 0.1\n[grid]\nJ = [10.0, 15.0]\neta = [-5.0]\np = [1.0]\n").unwrap();
    /// let out = dir.path().join("runs");
    /// let sweep = nmm::sweep::Sweep::prepare(&grid, &out, (1, 1)).unwrap();
    /// assert_eq!(sweep.todo, [0, 1]);
    /// let failures = sweep.execute(&nmm::progress::Silent).unwrap();
    /// assert!(failures.is_empty());
    /// assert!(nmm::sweep::run_complete(&out.join("run_000001.npz")));
    /// ```
    pub fn prepare(grid_path: &Path, dir: &Path, shard: (usize, usize)) -> Result<Self> {
        let (k, n) = shard;
        if k == 0 || k > n {
            bail!("--shard: need 1 <= K <= N, got {k}/{n}");
        }
        let (grid, text) = Grid::load(grid_path)?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let saved = dir.join("grid.toml");
        if saved.exists() {
            let old = std::fs::read_to_string(&saved)
                .with_context(|| format!("cannot read {}", saved.display()))?;
            if old != text {
                bail!(
                    "{} already holds a sweep of another grid ({}); use a new directory",
                    dir.display(),
                    saved.display()
                );
            }
        } else {
            atomic_write(&saved, |w| Ok(w.write_all(text.as_bytes())?))?;
        }
        let runs = grid.runs()?;
        let mine: Vec<usize> = runs
            .iter()
            .filter(|r| r.id % n == k - 1)
            .map(|r| r.id)
            .collect();
        let mut sweep = Self {
            grid,
            dir: dir.to_path_buf(),
            runs,
            shard,
            mine,
            todo: Vec::new(),
        };
        // One look at the directory serves the manifest and this shard's runs to do.
        let done = sweep.write_manifest()?;
        sweep.todo = sweep.mine.iter().copied().filter(|&i| !done[i]).collect();
        Ok(sweep)
    }

    /// Runs this shard's runs that are not done, in parallel on the current rayon pool;
    /// `progress` counts finished runs. A failed run leaves `run_{i:06}.error` with its reason
    /// and is returned; the others are not held up by it. The manifest is rewritten at the end.
    ///
    /// # Errors
    /// Only when the manifest cannot be written.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let grid_file = dir.path().join("grid.toml");
    /// std::fs::write(&grid_file, "network = \"qif\"\nN = 50\nt_end = 0.1\n[grid]\nJ = { start = 10.0, stop = 15.0, num = 2 }\neta = [-5.0]\np = [0.5, 1.0]\n").unwrap();
    /// let out = dir.path().join("runs");
    /// let sweep = nmm::sweep::Sweep::prepare(&grid_file, &out, (1, 1))?;
    /// assert!(sweep.execute(&nmm::progress::Silent)?.is_empty());
    /// let manifest = std::fs::read_to_string(out.join("manifest.csv")).unwrap();
    /// assert_eq!(manifest.matches(",done,").count(), 4);
    /// # Ok::<(), nmm::Error>(())
    /// ```
    pub fn execute(&self, progress: &dyn Progress) -> Result<Vec<Failure>> {
        let failures = Mutex::new(Vec::new());
        let done = std::sync::atomic::AtomicU64::new(0);
        let total = self.todo.len() as u64;
        progress.set(0, total);
        self.todo.par_iter().for_each(|&i| {
            let run = &self.runs[i];
            let error_file = self.dir.join(run.error_file());
            match self.grid.execute(run, &self.dir) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&error_file);
                }
                Err(e) => {
                    let reason = format!(
                        "run {} (J = {}, eta = {}, p = {}, seed = {}, stim_seed = {}): {}",
                        run.id,
                        run.j,
                        run.eta,
                        run.p,
                        run.seed,
                        run.stim_seed,
                        e.report()
                    );
                    let _ = atomic_write(&error_file, |w| Ok(w.write_all(reason.as_bytes())?));
                    progress.note(&reason);
                    failures
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Failure {
                            run: run.clone(),
                            error: e,
                        });
                }
            }
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress.set(d, total);
        });
        self.write_manifest()?;
        let mut failed = failures.into_inner().unwrap_or_else(|e| e.into_inner());
        failed.sort_by_key(|f| f.run.id);
        Ok(failed)
    }

    /// Writes `manifest.csv` from the directory as it is now: every run with its status
    /// (`done`: a complete file; `failed`: an error file, whose first line is the `error`
    /// column; `pending`) when that differs from the file there, so shards starting together
    /// do not race on an unchanged manifest.
    ///
    /// Returns, per run, whether it is done.
    fn write_manifest(&self) -> Result<Vec<bool>> {
        let header: Vec<String> = [
            "run",
            "J",
            "eta",
            "p",
            "seed",
            "stim_seed",
            "file",
            "status",
            "error",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let done: Vec<bool> = self
            .runs
            .iter()
            .map(|r| run_complete(&self.dir.join(r.file())))
            .collect();
        let rows: Vec<Vec<String>> = self
            .runs
            .iter()
            .map(|r| {
                let (status, error) = if done[r.id] {
                    ("done", String::new())
                } else if let Ok(e) = std::fs::read_to_string(self.dir.join(r.error_file())) {
                    ("failed", e.lines().next().unwrap_or("").to_string())
                } else {
                    ("pending", String::new())
                };
                vec![
                    r.id.to_string(),
                    r.j.to_string(),
                    r.eta.to_string(),
                    r.p.to_string(),
                    r.seed.to_string(),
                    r.stim_seed.to_string(),
                    r.file(),
                    status.to_string(),
                    error,
                ]
            })
            .collect();
        let manifest = self.dir.join("manifest.csv");
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&header)?;
        for r in &rows {
            w.write_record(r)?;
        }
        let text = w.into_inner().map_err(|e| input!("manifest: {e}"))?;
        if std::fs::read(&manifest).ok().as_deref() != Some(text.as_slice()) {
            write_csv(&manifest, &header, &rows)?;
        }
        Ok(done)
    }
}
