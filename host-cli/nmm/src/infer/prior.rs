//! Priors over the inferred parameters: independent uniform or normal marginals, read from a
//! TOML file with one `[[param]]` table per parameter, in order:
//!
//! ```toml
//! [[param]]
//! name = "J"
//! uniform = [8.0, 20.0]      # low, high (the parameter's own units)
//!
//! [[param]]
//! name = "eta"
//! normal = [-4.0, 1.0]       # mean, standard deviation
//! ```
//!
//! The order of the tables is the order of the columns of `theta.npy` and of posterior samples.

use crate::error::{Context, Result, bail};
use nmm_core::rng::{Rng, Xoshiro256PlusPlus, uniform_open0};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One parameter's marginal prior.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Marginal {
    /// Uniform on `[low, high]` (in the parameter's units), `low < high`.
    Uniform([f64; 2]),
    /// Normal with `[mean, standard deviation]` (in the parameter's units), `sd > 0`.
    Normal([f64; 2]),
}

impl Marginal {
    /// Mean of the marginal (parameter units).
    pub fn mean(&self) -> f64 {
        match *self {
            Self::Uniform([a, b]) => 0.5 * (a + b),
            Self::Normal([m, _]) => m,
        }
    }

    /// Variance of the marginal (parameter units squared).
    pub fn variance(&self) -> f64 {
        match *self {
            Self::Uniform([a, b]) => (b - a) * (b - a) / 12.0,
            Self::Normal([_, s]) => s * s,
        }
    }

    /// Whether `x` lies in the support (`[low, high]` for a uniform, every finite value for a
    /// normal).
    pub fn contains(&self, x: f64) -> bool {
        match *self {
            Self::Uniform([a, b]) => x >= a && x <= b,
            Self::Normal(_) => x.is_finite(),
        }
    }

    /// Log-density at `x` (`-inf` outside the support).
    pub fn log_prob(&self, x: f64) -> f64 {
        match *self {
            Self::Uniform([a, b]) if self.contains(x) => -(b - a).ln(),
            Self::Uniform(_) => f64::NEG_INFINITY,
            Self::Normal([m, s]) => {
                let z = (x - m) / s;
                -0.5 * z * z - s.ln() - 0.5 * (2.0 * core::f64::consts::PI).ln()
            }
        }
    }

    /// One draw.
    pub fn sample(&self, rng: &mut Xoshiro256PlusPlus) -> f64 {
        match *self {
            // `uniform_open0` is in (0, 1]: the draw is in (low, high].
            Self::Uniform([a, b]) => b - (b - a) * uniform_open0(rng),
            Self::Normal([m, s]) => m + s * standard_normal(rng),
        }
    }
}

/// A standard normal draw (Box-Muller on two open-interval uniforms; one of the pair is kept,
/// so the stream position is 2 draws per call, the same on every platform).
pub(crate) fn standard_normal<R: Rng>(rng: &mut R) -> f64 {
    let u1 = uniform_open0(rng);
    let u2 = uniform_open0(rng);
    (-2.0 * u1.ln()).sqrt() * (2.0 * core::f64::consts::PI * u2).cos()
}

/// One named parameter and its marginal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// Name (a model parameter, `G`, a noise amplitude; `J@3` for region 3 where the simulator
    /// understands it).
    pub name: String,
    /// The marginal prior.
    pub marginal: Marginal,
}

/// Independent marginals, in the order of `theta`'s columns.
///
/// ```
/// let p = nmm::infer::Prior::from_toml_str(
///     "[[param]]\nname = \"J\"\nuniform = [8, 20]\n[[param]]\nname = \"eta\"\nnormal = [-4, 1]\n",
/// )?;
/// assert_eq!(p.dim(), 2);
/// assert!(p.contains(&[10.0, -30.0]));
/// assert!(!p.contains(&[21.0, -4.0]));
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    /// The parameters, in order.
    pub params: Vec<Param>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileParam {
    name: String,
    uniform: Option<[f64; 2]>,
    normal: Option<[f64; 2]>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    param: Vec<FileParam>,
}

impl Prior {
    /// Checks and builds a prior; errors name the parameter and the problem.
    pub fn new(params: Vec<Param>) -> Result<Self> {
        if params.is_empty() {
            bail!("the prior has no parameters (one [[param]] table per parameter)");
        }
        for (i, p) in params.iter().enumerate() {
            let at = format!("parameter {} ({:?})", i + 1, p.name);
            if p.name.trim().is_empty() {
                bail!("parameter {}: empty name", i + 1);
            }
            if params[..i].iter().any(|q| q.name == p.name) {
                bail!("{at}: the name appears twice");
            }
            match p.marginal {
                Marginal::Uniform([a, b]) => {
                    if !(a.is_finite() && b.is_finite() && a < b) {
                        bail!("{at}: uniform = [{a}, {b}] needs finite low < high");
                    }
                }
                Marginal::Normal([m, s]) => {
                    if !(m.is_finite() && s.is_finite() && s > 0.0) {
                        bail!(
                            "{at}: normal = [{m}, {s}] needs a finite mean and a standard deviation > 0"
                        );
                    }
                }
            }
        }
        Ok(Self { params })
    }

    /// Parses the TOML form (see the module documentation).
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let f: File = toml::from_str(text).map_err(|e| crate::Error::input(e.to_string()))?;
        let mut params = Vec::with_capacity(f.param.len());
        for (i, p) in f.param.into_iter().enumerate() {
            let marginal = match (p.uniform, p.normal) {
                (Some(u), None) => Marginal::Uniform(u),
                (None, Some(n)) => Marginal::Normal(n),
                _ => bail!(
                    "parameter {} ({:?}): give exactly one of `uniform = [low, high]` or `normal = [mean, std]`",
                    i + 1,
                    p.name
                ),
            };
            params.push(Param {
                name: p.name,
                marginal,
            });
        }
        Self::new(params)
    }

    /// Reads a prior file; errors name the file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| crate::Error::io(path, e))
            .with_context(|| format!("reading the prior {}", path.display()))?;
        Self::from_toml_str(&text).with_context(|| format!("prior {}", path.display()))
    }

    /// The TOML form, readable by [`Prior::from_toml_str`].
    pub fn to_toml(&self) -> String {
        let mut s = String::new();
        for p in &self.params {
            let (key, [a, b]) = match p.marginal {
                Marginal::Uniform(v) => ("uniform", v),
                Marginal::Normal(v) => ("normal", v),
            };
            // `{:?}` prints the shortest string that reads back to the same f64.
            s += &format!("[[param]]\nname = {:?}\n{key} = [{a:?}, {b:?}]\n\n", p.name);
        }
        s
    }

    /// Number of parameters.
    pub fn dim(&self) -> usize {
        self.params.len()
    }

    /// Parameter names, in order.
    pub fn names(&self) -> Vec<String> {
        self.params.iter().map(|p| p.name.clone()).collect()
    }

    /// Whether every marginal is unbounded (so posterior draws need no rejection).
    pub fn is_unbounded(&self) -> bool {
        self.params
            .iter()
            .all(|p| matches!(p.marginal, Marginal::Normal(_)))
    }

    /// Whether `theta` (one value per parameter) lies in the support.
    pub fn contains(&self, theta: &[f64]) -> bool {
        self.contains_row(ndarray::ArrayView1::from(theta))
    }

    /// [`Prior::contains`] for a row of a matrix.
    pub fn contains_row(&self, theta: ndarray::ArrayView1<f64>) -> bool {
        theta.len() == self.dim()
            && self
                .params
                .iter()
                .zip(theta)
                .all(|(p, &x)| p.marginal.contains(x))
    }

    /// Joint log-density (`-inf` outside the support).
    pub fn log_prob(&self, theta: &[f64]) -> f64 {
        if theta.len() != self.dim() {
            return f64::NAN;
        }
        self.params
            .iter()
            .zip(theta)
            .map(|(p, &x)| p.marginal.log_prob(x))
            .sum()
    }

    /// Fills `out` (one value per parameter) with a draw.
    pub fn sample_into(&self, rng: &mut Xoshiro256PlusPlus, out: &mut [f64]) {
        for (p, o) in self.params.iter().zip(out) {
            *o = p.marginal.sample(rng);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_priors_are_refused_with_the_parameter_named() {
        let e = |t: &str| Prior::from_toml_str(t).unwrap_err().report();
        assert!(e("").contains("param"));
        assert!(e("[[param]]\nname = \"J\"\nuniform = [2, 1]\n").contains("\"J\""));
        assert!(e("[[param]]\nname = \"J\"\nnormal = [0, 0]\n").contains("\"J\""));
        assert!(
            e("[[param]]\nname = \"J\"\nuniform = [0, 1]\nnormal = [0, 1]\n")
                .contains("exactly one")
        );
        assert!(
            e("[[param]]\nname = \"J\"\nuniform = [0, 1]\n[[param]]\nname = \"J\"\nnormal = [0, 1]\n")
                .contains("twice")
        );
        assert!(e("[[param]]\nname = \"J\"\nunifrom = [0, 1]\n").contains("unifrom"));
    }

    #[test]
    fn the_toml_form_reads_back_to_the_same_prior() {
        let p = Prior::from_toml_str(
            "[[param]]\nname = \"J\"\nuniform = [8, 20.1]\n[[param]]\nname = \"e\"\nnormal = [-0.1, 3e-7]\n",
        )
        .unwrap();
        assert_eq!(Prior::from_toml_str(&p.to_toml()).unwrap(), p);
    }

    #[test]
    fn draws_have_the_marginals_moments() {
        let p = Prior::from_toml_str(
            "[[param]]\nname = \"a\"\nuniform = [-1, 3]\n[[param]]\nname = \"b\"\nnormal = [2, 0.5]\n",
        )
        .unwrap();
        let mut rng = nmm_core::rng::stream(3, 0);
        let n = 200_000;
        let mut s = [[0.0; 2]; 2];
        let mut x = [0.0; 2];
        for _ in 0..n {
            p.sample_into(&mut rng, &mut x);
            assert!(p.contains(&x));
            for k in 0..2 {
                s[k][0] += x[k];
                s[k][1] += x[k] * x[k];
            }
        }
        for (k, q) in p.params.iter().enumerate() {
            let m = s[k][0] / n as f64;
            let v = s[k][1] / n as f64 - m * m;
            let sd = q.marginal.variance().sqrt();
            // 5 standard errors of the mean (sd / sqrt(n)) and of the variance (about
            // sd^2 sqrt(2 / n) for these shapes).
            assert!((m - q.marginal.mean()).abs() < 5.0 * sd / (n as f64).sqrt());
            assert!((v - sd * sd).abs() < 5.0 * sd * sd * (2.0 / n as f64).sqrt());
        }
    }
}
