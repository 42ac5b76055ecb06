//! Simulations for inference: parameters drawn from the prior, whole-brain runs through the
//! batch path ([`crate::brain::run_many`], vector lanes where they pay), and their features,
//! as `theta.npy` and `x.npy` for [`super::train`].
//!
//! - Draw `i` comes from stream `i` of the job's seed, and its run uses seed `base.seed + i`,
//!   so every row is the same whatever the sharding, the resumption or the thread count.
//! - Parameters are named as `nmm brain batch` columns: `G` (or `coupling`) for the global
//!   coupling, any model parameter (the same in every region), `NAME@K` for a model parameter
//!   in region `K` alone (0-based, the connectome's order; the other regions keep the
//!   configuration's value or the model's default), `nsig_1`, `nsig_2`, ... for the TVB-style
//!   noise of each state variable (amplitude `sqrt(2 nsig)`).
//! - Work goes in blocks of [`BLOCK`] rows, `DIR/block-BBBBBB.npz` (theta, x, diverged), each
//!   written atomically. Resumable: a block whose file is complete is not run again.
//!   Shardable: `--shard K/N` runs blocks `b` with `b mod N = K - 1` (Slurm arrays as for
//!   sweeps). `DIR/job.json` holds the job; a directory holding another job is refused.
//! - [`merge`] joins the blocks in order into `theta.npy` and `x.npy` (rows whose run diverged
//!   are left out), `diverged.csv` (their row and parameters) and `manifest.json` (the job,
//!   the counts, the feature names): deterministic, byte for byte, whatever the sharding.

use super::Prior;
use crate::brain::{Config, ParamValue, Prepared, Rows, feature_names, features, run_many};
use crate::error::{Context, Result, bail};
use crate::io::{NpzEntry, atomic_write, write_csv, write_npy_2d, write_npz};
use crate::progress::{Progress, Silent};
use ndarray::{Array1, Array2};
use ndarray_npy::NpzReader;
use nmm_core::rng::stream;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Rows per block (one unit of work, resumption and sharding).
pub const BLOCK: usize = 64;

/// A simulation job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    /// The whole-brain configuration every row starts from.
    pub base: Config,
    /// The prior, whose names are the varied parameters.
    pub prior: Prior,
    /// Number of rows.
    pub n: usize,
    /// Seed of the parameter draws.
    pub seed: u64,
    /// Which features make `x`.
    #[serde(default)]
    pub features: FeatureSet,
    /// Version of the feature definitions ([`FEATURES_VERSION`] when the job was started), so
    /// that blocks computed under other definitions are never mixed in.
    #[serde(default)]
    pub features_version: u32,
}

/// Version of the feature definitions in this nmm (raised whenever a feature's value changes).
pub const FEATURES_VERSION: u32 = 1;

/// The features written as `x`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureSet {
    /// The 2025 paper's 51 statistics of FC, FCD and BOLD ([`super::features`]).
    #[default]
    Paper,
    /// The seven `nmm brain batch` writes ([`crate::brain::features`]).
    Batch,
}

impl Job {
    /// Number of blocks.
    pub fn blocks(&self) -> usize {
        self.n.div_ceil(BLOCK)
    }

    /// The parameters of row `i`.
    pub fn theta(&self, i: usize) -> Vec<f64> {
        let mut t = vec![0.0; self.prior.dim()];
        self.prior
            .sample_into(&mut stream(self.seed, i as u64), &mut t);
        t
    }

    /// The run configuration of row `i` with parameters `theta`, on a connectome of
    /// `regions` regions (for per-region parameters `NAME@K`).
    pub fn config(&self, i: usize, theta: &[f64], regions: usize) -> Result<Config> {
        let mut base = self.base.clone();
        base.seed = base.seed.wrapping_add(i as u64);
        let mut header = Vec::new();
        let mut values = Vec::new();
        let mut nsig: Vec<(usize, f64)> = Vec::new();
        let mut local: Vec<(String, usize, f64)> = Vec::new();
        for (p, &v) in self.prior.params.iter().zip(theta) {
            if let Some((name, k)) = p.name.split_once('@') {
                let k: usize = k.parse().ok().filter(|&k| k < regions).ok_or_else(|| {
                    crate::Error::input(format!(
                        "prior parameter {:?}: NAME@K needs a region index K from 0 to {} (the connectome has {regions} regions)",
                        p.name,
                        regions.saturating_sub(1)
                    ))
                })?;
                local.push((name.to_string(), k, v));
                continue;
            }
            if p.name == "seed" {
                bail!(
                    "prior parameter \"seed\": the seed is not a parameter (simulation i runs with the configuration's seed + i)"
                );
            }
            if let Some(k) = p.name.strip_prefix("nsig_") {
                let k: usize = k.parse().ok().filter(|&k| k >= 1).ok_or_else(|| {
                    crate::Error::input(format!(
                        "prior parameter {:?}: nsig_K with K = 1, 2, ...",
                        p.name
                    ))
                })?;
                nsig.push((k - 1, v));
            } else {
                header.push(p.name.clone());
                values.push(v);
            }
        }
        let mut cfg = Rows {
            header,
            rows: vec![values],
        }
        .apply(&base, 0);
        // Per-region values start from the configuration's (or the model's default) and take
        // the drawn value in their region; they are applied after the global ones.
        for (name, k, v) in local {
            let mut vals = match cfg.params.get(&name) {
                Some(ParamValue::Global(x)) => vec![*x; regions],
                Some(ParamValue::PerRegion(xs)) => xs.clone(),
                None => {
                    let Some(&(_, x)) = crate::brain::default_params(&cfg.model)
                        .iter()
                        .find(|(n, _)| *n == name)
                    else {
                        bail!(
                            "prior parameter \"{name}@{k}\": {name:?} is not a parameter of the {} model",
                            cfg.model
                        );
                    };
                    vec![x; regions]
                }
            };
            if vals.len() != regions {
                bail!(
                    "prior parameter \"{name}@{k}\": the configuration gives {} values of {name} for {regions} regions",
                    vals.len()
                );
            }
            vals[k] = v;
            cfg.params.insert(name, ParamValue::PerRegion(vals));
        }
        if !nsig.is_empty() {
            let Some(mut ns) = cfg.nsig.clone() else {
                bail!(
                    "the prior varies {} but the configuration sets no `nsig` (give its default, one value per state variable)",
                    self.prior
                        .params
                        .iter()
                        .find(|p| p.name.starts_with("nsig_"))
                        .map_or("", |p| p.name.as_str())
                );
            };
            for (k, v) in nsig {
                if k >= ns.len() {
                    bail!(
                        "prior parameter nsig_{}: the configuration's nsig has {} values",
                        k + 1,
                        ns.len()
                    );
                }
                ns[k] = v;
            }
            cfg.nsig = Some(ns);
        }
        Ok(cfg)
    }

    /// Names of the features (the columns of `x`).
    pub fn feature_names(&self) -> Vec<String> {
        match self.features {
            FeatureSet::Paper => super::features::names(),
            FeatureSet::Batch => feature_names(&self.base)
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// A block's file.
pub fn block_file(dir: &Path, b: usize) -> PathBuf {
    dir.join(format!("block-{b:06}.npz"))
}

/// What one block holds.
struct Block {
    theta: Array2<f64>,
    x: Array2<f64>,
    diverged: Array1<f64>,
}

/// A block's file, checked to hold `rows` rows of `d` parameters and `k` features.
fn read_block(path: &Path, (rows, d, k): (usize, usize, usize)) -> Result<Block> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut z =
        NpzReader::new(f).with_context(|| format!("{}: not a complete .npz", path.display()))?;
    let theta: Array2<f64> = z
        .by_name("theta")
        .with_context(|| format!("{}: theta", path.display()))?;
    let x: Array2<f64> = z
        .by_name("x")
        .with_context(|| format!("{}: x", path.display()))?;
    let diverged: Array1<f64> = z
        .by_name("diverged")
        .with_context(|| format!("{}: diverged", path.display()))?;
    if theta.dim() != (rows, d) || x.dim() != (rows, k) || diverged.len() != rows {
        bail!(
            "{}: shapes theta {:?}, x {:?}, diverged {} do not fit this job's block ({rows} rows, {d} parameters, {k} features)",
            path.display(),
            theta.dim(),
            x.dim(),
            diverged.len()
        );
    }
    Ok(Block { theta, x, diverged })
}

impl Job {
    /// The shape `(rows, parameters, features)` of block `b`.
    fn block_shape(&self, b: usize) -> (usize, usize, usize) {
        let rows = self.n.min((b + 1) * BLOCK).saturating_sub(b * BLOCK);
        (rows, self.prior.dim(), self.feature_names().len())
    }
}

/// What a shard did.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardOutput {
    /// Blocks run now.
    pub run: usize,
    /// Blocks found complete and skipped.
    pub skipped: usize,
    /// Rows run now whose simulation diverged.
    pub diverged: usize,
}

fn check_job(job: &Job, dir: &Path) -> Result<()> {
    if job.n == 0 {
        bail!("--n: at least one simulation");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("job.json");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        // Read back as a Job, so fields added since it was written take their defaults.
        let old: Job =
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        if serde_json::to_value(&old)? != serde_json::to_value(job)? {
            bail!(
                "{} holds a different job (its configuration, prior, n, seed, feature set or feature definitions (version {} here, {} there) differ); use a new directory",
                dir.display(),
                job.features_version,
                old.features_version
            );
        }
    } else {
        let text = serde_json::to_string_pretty(job)?;
        atomic_write(&path, |w| Ok(w.write_all(text.as_bytes())?))?;
    }
    Ok(())
}

/// Runs shard `k` of `of` of `job` into `dir` (see the module documentation). Progress: one
/// unit per block of the shard.
pub fn simulate(
    job: &Job,
    (k, of): (usize, usize),
    dir: &Path,
    progress: &dyn Progress,
) -> Result<ShardOutput> {
    if k == 0 || k > of {
        bail!("shard {k}/{of}: expected 1 <= K <= N");
    }
    let job = Job {
        base: job.base.clone().resolved(),
        features_version: FEATURES_VERSION,
        ..job.clone()
    };
    // Every row's configuration in this shard is checked before any runs, so a prior that
    // reaches invalid values fails at once.
    let conn = crate::connectome::load(
        &job.base.connectome.path,
        job.base.connectome.tract_lengths.as_deref(),
    )
    .context("connectome")?;
    let check = |i: usize| -> Result<Prepared> {
        let t = job.theta(i);
        Prepared::with_connectome(job.config(i, &t, conn.n)?, conn.clone())
            .with_context(|| format!("row {i} ({})", describe(&job.prior, &t)))
    };
    if job.features == FeatureSet::Paper {
        super::features::check_config(&job.base)?;
    }
    let mine: Vec<usize> = (0..job.blocks()).filter(|b| b % of == k - 1).collect();
    for &b in &mine {
        for i in b * BLOCK..((b + 1) * BLOCK).min(job.n) {
            check(i)?;
        }
    }
    check_job(&job, dir)?;
    let mut out = ShardOutput {
        run: 0,
        skipped: 0,
        diverged: 0,
    };
    for (done, &b) in mine.iter().enumerate() {
        progress.set(done as u64, mine.len() as u64);
        let path = block_file(dir, b);
        if path.exists() && read_block(&path, job.block_shape(b)).is_ok() {
            out.skipped += 1;
            continue;
        }
        let rows: Vec<usize> = (b * BLOCK..((b + 1) * BLOCK).min(job.n)).collect();
        let prepared: Vec<Prepared> = rows.iter().map(|&i| check(i)).collect::<Result<_>>()?;
        let d = job.prior.dim();
        let names = job.feature_names();
        let mut theta = Array2::zeros((rows.len(), d));
        let mut x = Array2::from_elem((rows.len(), names.len()), f64::NAN);
        let mut diverged = Array1::zeros(rows.len());
        let results = run_many(&prepared, &Silent)?;
        for (r, (res, &i)) in results.into_iter().zip(&rows).enumerate() {
            let t = job.theta(i);
            for j in 0..d {
                theta[[r, j]] = t[j];
            }
            match res {
                Ok(o) => {
                    let f: Vec<f64> = match job.features {
                        FeatureSet::Paper => super::features::of_run(&prepared[r], &o)?,
                        FeatureSet::Batch => features(&prepared[r], &o)?
                            .iter()
                            .map(|(_, v)| *v)
                            .collect(),
                    };
                    if f.len() != names.len() {
                        bail!("row {i}: {} features for {} names", f.len(), names.len());
                    }
                    x.row_mut(r).assign(&Array1::from(f));
                }
                Err(e) if e.is_divergence() => {
                    diverged[r] = 1.0;
                    out.diverged += 1;
                    progress.note(&format!(
                        "row {i} ({}): {}",
                        describe(&job.prior, &t),
                        e.report()
                    ));
                }
                Err(e) => return Err(e).with_context(|| format!("row {i}")),
            }
        }
        write_npz(
            &path,
            &[
                ("theta".into(), NpzEntry::F2(theta)),
                ("x".into(), NpzEntry::F2(x)),
                ("diverged".into(), NpzEntry::F1(diverged)),
            ],
        )?;
        out.run += 1;
        progress.log(&format!(
            "block {b} done ({} of {} in this shard)",
            done + 1,
            mine.len()
        ));
    }
    progress.set(mine.len() as u64, mine.len() as u64);
    Ok(out)
}

fn describe(prior: &Prior, t: &[f64]) -> String {
    prior
        .params
        .iter()
        .zip(t)
        .map(|(p, v)| format!("{} = {v}", p.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What [`merge`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// Rows kept (finite features).
    pub kept: usize,
    /// Rows left out: their run diverged, or gave a non-finite feature.
    pub diverged: usize,
    /// Paths of `theta.npy` and `x.npy`.
    pub theta: PathBuf,
    /// Path of `x.npy`.
    pub x: PathBuf,
}

/// Joins every block of the job in `dir` into `theta.npy`, `x.npy`, `diverged.csv` and
/// `manifest.json`; an error lists missing blocks.
pub fn merge(dir: &Path) -> Result<Merged> {
    let jp = dir.join("job.json");
    let text = std::fs::read_to_string(&jp)
        .with_context(|| format!("cannot read {} (not a simulation directory?)", jp.display()))?;
    let job: Job = serde_json::from_str(&text).with_context(|| format!("{}", jp.display()))?;
    let missing: Vec<usize> = (0..job.blocks())
        .filter(|&b| read_block(&block_file(dir, b), job.block_shape(b)).is_err())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{}: {} of {} blocks are missing or incomplete (first: {:?}); run the remaining shards first",
            dir.display(),
            missing.len(),
            job.blocks(),
            &missing[..missing.len().min(10)]
        );
    }
    let d = job.prior.dim();
    let k = job.feature_names().len();
    let mut theta = Array2::zeros((0, d));
    let mut x = Array2::zeros((0, k));
    let mut div_rows = Vec::new();
    for b in 0..job.blocks() {
        let bl = read_block(&block_file(dir, b), job.block_shape(b))?;
        for r in 0..bl.theta.nrows() {
            let i = b * BLOCK + r;
            if bl.diverged[r] != 0.0 || bl.x.row(r).iter().any(|v| !v.is_finite()) {
                let mut line = vec![i.to_string()];
                line.extend(bl.theta.row(r).iter().map(|v| format!("{v:?}")));
                div_rows.push(line);
            } else {
                theta.push_row(bl.theta.row(r))?;
                x.push_row(bl.x.row(r))?;
            }
        }
    }
    let (tp, xp) = (dir.join("theta.npy"), dir.join("x.npy"));
    write_npy_2d(&tp, &theta)?;
    write_npy_2d(&xp, &x)?;
    let mut header = vec!["row".to_string()];
    header.extend(job.prior.names());
    write_csv(&dir.join("diverged.csv"), &header, &div_rows)?;
    let manifest = serde_json::json!({
        "nmm_version": crate::VERSION,
        "job": job,
        "rows": job.n,
        "kept": theta.nrows(),
        "diverged": div_rows.len(),
        "theta_columns": job.prior.names(),
        "x_columns": job.feature_names(),
        "theta_draws": "row i: stream i of the job's seed; its run: seed base.seed + i",
    });
    let text = serde_json::to_string_pretty(&manifest)?;
    atomic_write(&dir.join("manifest.json"), |w| {
        Ok(w.write_all(text.as_bytes())?)
    })?;
    Ok(Merged {
        kept: theta.nrows(),
        diverged: div_rows.len(),
        theta: tp,
        x: xp,
    })
}
