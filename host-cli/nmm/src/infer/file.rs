//! The posterior file ("NMMP", version 1): a trained estimator with its prior, its
//! standardisations, its training settings, seed and history, little-endian, protected by a
//! CRC-32 like the NMMW weight files.
//!
//! | offset        | size | field                                                          |
//! |---------------|------|----------------------------------------------------------------|
//! | 0             | 4    | magic `b"NMMP"`                                                |
//! | 4             | 2    | `u16` version = 1                                              |
//! | 6             | 2    | `u16` flags = 0 (reserved)                                     |
//! | 8             | 4    | `u32` header length `L` in bytes                               |
//! | 12            | L    | header, UTF-8 JSON: `estimator` (`"maf"` or `"nsf"`), `prior`, `shape` (`dim`, `context`, `hidden`, `transforms`), `spline` (`bins`, `blocks`, `tail_bound`; `"nsf"` only), `perms` (`"maf"`; empty for `"nsf"`), `theta_z` and `x_z` (`mean`, `std`), `settings`, `history`, `n_weights`, `nmm_version`, `command` |
//! | 12 + L        | 8 F  | `f64` weights, `F = n_weights`, transform by transform (below)  |
//! | 12 + L + 8F   | 4    | `u32` CRC-32 (ISO-HDLC, as zlib's `crc32`) of every preceding byte |
//!
//! The weights of each transform, row-major matrices with one row per output unit:
//! - `"maf"`: `W0` (`H x D`), `Wc` (`H x C`), `b0`, `W1` (`H x H`), `b1`, `W2`, `b2`, `Wf`
//!   (`2D x H`, rows `a_0, m_0, a_1, m_1, ...`), `bf` ([`super::maf`]);
//! - `"nsf"`: `Wx` (`H x |id|`), `Wc` (`H x C`), `b`, then per residual block `Wa` (`H x H`),
//!   `ba`, `Wb` (`H x H`), `bb`, `Wg` (`H x C`), `bg`; `Wf` (`|tf| (3K - 1) x H`: per
//!   transformed feature `K` width, `K` height and `K - 1` slope outputs), `bf`; and when
//!   `D > 1` the LU matrix (`D x D`) and its bias (`D`) ([`super::nsf`], which gives the
//!   feature split `id`/`tf`).
//!
//! Reading it from Python:
//!
//! ```text
//! import json, struct, zlib, numpy as np
//! b = open("posterior.nmmp", "rb").read()
//! assert b[:4] == b"NMMP" and zlib.crc32(b[:-4]) == struct.unpack("<I", b[-4:])[0]
//! (L,) = struct.unpack("<I", b[8:12]); h = json.loads(b[12:12 + L])
//! w = np.frombuffer(b, "<f8", h["n_weights"], 12 + L)
//! ```
//!
//! Readers reject another magic, version or flags, lengths that do not add up, a wrong
//! checksum, weights that are not finite or break the autoregressive masks, permutations
//! that are not, spline sizes that are not valid, standardisations that do not fit, and an
//! invalid prior. Files written before neural spline flows existed (no `spline`, settings
//! without `estimator`) read as MAFs.

use super::flow::Flow;
use super::maf::{Maf, Shape};
use super::npe::{History, Posterior, Settings, Standardise};
use super::nsf::{Nsf, Spline};
use super::prior::Prior;
use crate::error::{Context, Result, bail};
use crate::io::atomic_write;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// File magic.
pub const MAGIC: [u8; 4] = *b"NMMP";
/// The version this code reads and writes.
pub const VERSION: u16 = 1;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    estimator: String,
    prior: Prior,
    shape: Shape,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spline: Option<Spline>,
    perms: Vec<Vec<usize>>,
    theta_z: Standardise,
    x_z: Standardise,
    settings: Settings,
    history: History,
    n_weights: usize,
    nmm_version: String,
    command: String,
}

impl Posterior {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let h = Header {
            estimator: self.flow.estimator().name().into(),
            prior: self.prior.clone(),
            shape: self.flow.shape(),
            spline: self.flow.spline(),
            perms: match &self.flow {
                Flow::Maf(f) => f.perms().to_vec(),
                Flow::Nsf(_) => Vec::new(),
            },
            theta_z: self.theta_z.clone(),
            x_z: self.x_z.clone(),
            settings: self.settings.clone(),
            history: self.history.clone(),
            n_weights: self.flow.params().len(),
            nmm_version: self.version.clone(),
            command: self.command.clone(),
        };
        let json = serde_json::to_vec_pretty(&h)?;
        let mut b = Vec::with_capacity(16 + json.len() + 8 * h.n_weights);
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        let len = u32::try_from(json.len())
            .map_err(|_| crate::Error::input("posterior header longer than 4 GiB"))?;
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&json);
        for w in self.flow.params() {
            b.extend_from_slice(&w.to_le_bytes());
        }
        let crc = CRC.checksum(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        Ok(b)
    }

    /// Parses a file's bytes (see the module documentation for what is checked).
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        if b.len() < 16 || b[..4] != MAGIC {
            bail!("not an nmm posterior file (no NMMP magic)");
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != VERSION {
            bail!("posterior format version {version}; this nmm reads version {VERSION}");
        }
        if u16::from_le_bytes([b[6], b[7]]) != 0 {
            bail!("unknown flags in the posterior header");
        }
        let body = b.len() - 4;
        let stored = u32::from_le_bytes([b[body], b[body + 1], b[body + 2], b[body + 3]]);
        if CRC.checksum(&b[..body]) != stored {
            bail!("checksum mismatch: the file is damaged or truncated");
        }
        let l = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize;
        if 12 + l > body {
            bail!("header length {l} runs past the end of the file");
        }
        let h: Header = serde_json::from_slice(&b[12..12 + l]).context("reading the header")?;
        if h.estimator != "maf" && h.estimator != "nsf" {
            bail!(
                "unknown estimator {:?} (this nmm reads \"maf\" and \"nsf\")",
                h.estimator
            );
        }
        if h.n_weights.checked_mul(8) != Some(body - 12 - l) {
            bail!(
                "the header declares {} weights but the file holds {} bytes of them",
                h.n_weights,
                body - 12 - l
            );
        }
        let params: Vec<f64> = b[12 + l..body]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        let prior = Prior::new(h.prior.params)?;
        if h.shape.dim != prior.dim() {
            bail!(
                "the flow has {} parameters, the prior {}",
                h.shape.dim,
                prior.dim()
            );
        }
        h.theta_z.check_len("theta standardisation", h.shape.dim)?;
        h.x_z.check_len("x standardisation", h.shape.context)?;
        if h.settings.estimator.name() != h.estimator {
            bail!(
                "the header's estimator {:?} is not its settings' {:?}",
                h.estimator,
                h.settings.estimator.name()
            );
        }
        let flow = match (h.estimator.as_str(), h.spline) {
            ("maf", None) => match Maf::from_parts(h.shape, params, h.perms) {
                Some(f) => Flow::Maf(f),
                None => bail!(
                    "the weights or permutations do not fit the flow's shape, or a weight is not finite or breaks the autoregressive mask"
                ),
            },
            ("nsf", Some(spline)) => match Nsf::from_parts(h.shape, spline, params) {
                Some(f) if h.perms.is_empty() => Flow::Nsf(f),
                _ => bail!(
                    "the spline flow's sizes are invalid (bins 2 to 64, tail bound > 0), or the weights do not fit them, or a weight is not finite, or it lists permutations"
                ),
            },
            ("maf", Some(_)) => bail!("a \"maf\" header with spline sizes"),
            _ => bail!("an \"nsf\" header without spline sizes"),
        };
        Ok(Posterior {
            prior,
            theta_z: h.theta_z,
            x_z: h.x_z,
            flow,
            settings: h.settings,
            history: h.history,
            version: h.nmm_version,
            command: h.command,
        })
    }

    /// Writes the file atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let b = self.to_bytes()?;
        atomic_write(path, |w| Ok(w.write_all(&b)?))
    }

    /// Reads a file; errors name it.
    pub fn read(path: &Path) -> Result<Self> {
        let b = std::fs::read(path)
            .map_err(|e| crate::Error::io(path, e))
            .with_context(|| format!("reading the posterior {}", path.display()))?;
        Self::from_bytes(&b).with_context(|| format!("posterior {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::{Estimator, Settings, train};
    use ndarray::Array2;

    /// The file with its header JSON edited by `f` (lengths and checksum redone).
    fn with_header(b: &[u8], f: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
        let l = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize;
        let mut h: serde_json::Value = serde_json::from_slice(&b[12..12 + l]).unwrap();
        f(&mut h);
        let json = serde_json::to_vec(&h).unwrap();
        let mut out = b[..8].to_vec();
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&b[12 + l..b.len() - 4]);
        let crc = CRC.checksum(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn files_from_before_spline_flows_read_as_mafs_and_a_mismatch_is_refused() {
        let prior = Prior::from_toml_str("[[param]]\nname = \"a\"\nnormal = [0, 1]\n").unwrap();
        let theta = Array2::from_shape_fn((60, 1), |(i, _)| (i as f64 / 30.0) - 1.0);
        let x = theta.mapv(|t| 2.0 * t + 0.1);
        let s = Settings {
            hidden: 4,
            transforms: 1,
            max_epochs: 2,
            ..Settings::default()
        };
        let post = train(theta.view(), x.view(), &prior, &s, &crate::progress::Silent).unwrap();
        let b = post.to_bytes().unwrap();
        // As written before: no estimator or spline in the settings (nor spline in the header).
        let old = with_header(&b, |h| {
            let s = h["settings"].as_object_mut().unwrap();
            s.remove("estimator");
            s.remove("spline");
            assert!(h.get("spline").is_none());
        });
        let back = Posterior::from_bytes(&old).unwrap();
        assert_eq!(back.flow.estimator(), Estimator::Maf);
        assert_eq!(back.flow.params(), post.flow.params());
        assert_eq!(back.settings, post.settings);
        // A header that says "nsf" over MAF settings and weights is refused.
        let bad = with_header(&b, |h| h["estimator"] = "nsf".into());
        let e = Posterior::from_bytes(&bad).unwrap_err().to_string();
        assert!(e.contains("estimator"), "{e}");
    }
}
