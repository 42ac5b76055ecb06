//! Diagnostics of a trained posterior on held-out simulations `(theta*, x*)` whose parameters
//! were drawn from the prior: simulation-based calibration (Talts et al. 2018: the rank of each
//! true value among `L` posterior draws is uniform on `0..=L` when the posterior is
//! calibrated), expected coverage (of central marginal intervals, and of the joint
//! highest-density regions as sbi's `expected_coverage` computes them from the flow's
//! density), and the 2025 paper's posterior z-score `|mean - theta*| / sd` against shrinkage
//! `1 - var_post / var_prior`, and TARP (Lemos et al. 2023, "Sampling-based accuracy testing
//! of posterior estimators"): for each simulation a reference point drawn from the prior, and
//! the fraction of draws closer to it than the true value, uniform on [0, 1] when the
//! posterior is calibrated. With references that ignore x (as here, and sbi's default) that
//! uniformity is necessary, not sufficient: TARP can pass a bias that SBC rejects (the tests
//! show one). Unlike sbi's `check_tarp`, which compares the coverage curve with the diagonal
//! by a two-sample KS test, the fractions themselves are tested against the uniform, so the
//! p-values are not comparable with sbi's.

use super::Posterior;
use crate::error::{Context, Result, bail};
use crate::progress::Progress;
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use nmm_core::rng::{Rng, stream};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bins of the rank histograms whose chi-square is reported.
pub const RANK_BINS: usize = 10;
/// The 0.99 and 0.999 quantiles of the chi-square distribution with `RANK_BINS - 1 = 9`
/// degrees of freedom: a rank histogram's chi-square above them rejects uniformity at
/// significance 0.01 and 0.001.
pub const CHI2_9: [f64; 2] = [21.666, 27.877];

/// The diagnostics of one posterior on `n` held-out simulations.
#[derive(Clone, Debug)]
pub struct Check {
    /// Parameter names.
    pub names: Vec<String>,
    /// Posterior draws per simulation (`L`).
    pub draws: usize,
    /// Seed of the draws (simulation `i` draws with a seed from stream `i` of it).
    pub seed: u64,
    /// True values, `n x d`.
    pub truth: Array2<f64>,
    /// Ranks: the number of draws below the true value, `0..=L`, `n x d`.
    pub ranks: Array2<usize>,
    /// Posterior means, `n x d`.
    pub mean: Array2<f64>,
    /// Posterior standard deviations, `n x d`.
    pub sd: Array2<f64>,
    /// `|mean - truth| / sd`, `n x d`.
    pub zscore: Array2<f64>,
    /// `1 - var_post / var_prior`, `n x d`.
    pub shrinkage: Array2<f64>,
    /// For each simulation, the fraction of draws whose posterior density exceeds that of the
    /// true value: the smallest highest-density level that contains it (uniform on [0, 1]
    /// when calibrated).
    pub hpd_level: Vec<f64>,
    /// Acceptance rate of each simulation's draws (prior support).
    pub acceptance: Vec<f64>,
    /// TARP: for each simulation, the fraction of draws closer than the true value to a
    /// reference point drawn from the prior (distances in units of the prior's standard
    /// deviation per parameter), randomised within its step of `1 / (L + 1)` (`(closer + u)
    /// / (L + 1)`, `u` uniform from the simulation's stream) so that it is exactly uniform on
    /// [0, 1] when calibrated; without that the KS distance would carry a bias of about
    /// `1 / (L + 1)` from the discreteness (a false rejection at 10^4 simulations of 100 draws).
    pub tarp: Vec<f64>,
}

impl Check {
    /// Number of held-out simulations.
    pub fn len(&self) -> usize {
        self.truth.nrows()
    }

    /// Whether there are none (never, for a check that ran).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rank histogram of parameter `j` in [`RANK_BINS`] bins of equal width over `0..=L`.
    pub fn rank_histogram(&self, j: usize) -> [usize; RANK_BINS] {
        let mut h = [0; RANK_BINS];
        for &r in self.ranks.column(j) {
            h[r * RANK_BINS / (self.draws + 1)] += 1;
        }
        h
    }

    /// Chi-square statistic of parameter `j`'s rank histogram against uniform (compare with
    /// [`CHI2_9`]). With `L + 1` not a multiple of the bin count the bins hold unequal numbers
    /// of ranks; the expected counts account for it.
    pub fn rank_chi2(&self, j: usize) -> f64 {
        let h = self.rank_histogram(j);
        let n = self.len() as f64;
        let l1 = self.draws + 1;
        (0..RANK_BINS)
            .map(|b| {
                let ranks_in_bin = (0..l1).filter(|r| r * RANK_BINS / l1 == b).count();
                let e = n * ranks_in_bin as f64 / l1 as f64;
                (h[b] as f64 - e).powi(2) / e
            })
            .sum()
    }

    /// Empirical coverage of the central `level` interval of parameter `j`'s marginal: the
    /// fraction of simulations whose true value lies inside it.
    pub fn marginal_coverage(&self, j: usize, level: f64) -> f64 {
        let l = self.draws as f64;
        let inside = self
            .ranks
            .column(j)
            .iter()
            .filter(|&&r| ((r as f64 + 0.5) / (l + 1.0) - 0.5).abs() <= level / 2.0)
            .count();
        inside as f64 / self.len() as f64
    }

    /// TARP's expected coverage probability at `level`: the fraction of simulations whose
    /// true value is closer to the reference than a fraction `level` of the draws (equal to
    /// `level` when calibrated).
    pub fn tarp_coverage(&self, level: f64) -> f64 {
        self.tarp.iter().filter(|&&f| f < level).count() as f64 / self.len() as f64
    }

    /// TARP's departure from calibration: the Kolmogorov-Smirnov distance between the TARP
    /// fractions and the uniform distribution (the largest gap between the coverage curve
    /// and the diagonal) and its asymptotic p-value (Stephens' correction for finite `n`).
    pub fn tarp_ks(&self) -> (f64, f64) {
        let mut f = self.tarp.clone();
        f.sort_by(f64::total_cmp);
        let n = f.len() as f64;
        let d = f
            .iter()
            .enumerate()
            .map(|(i, &v)| ((i as f64 + 1.0) / n - v).max(v - i as f64 / n))
            .fold(0.0, f64::max);
        (d, kolmogorov_q((n.sqrt() + 0.12 + 0.11 / n.sqrt()) * d))
    }

    /// Empirical coverage of the joint highest-density region at `level`.
    pub fn joint_coverage(&self, level: f64) -> f64 {
        self.hpd_level.iter().filter(|&&p| p <= level).count() as f64 / self.len() as f64
    }
}

/// The Kolmogorov distribution's tail `Q(l) = 2 sum_k (-1)^(k-1) exp(-2 k^2 l^2)`: the
/// asymptotic p-value of a KS distance `l / sqrt(n)` (Numerical Recipes' `probks`; 1 below
/// l = 0.2, where the series converges slowly and Q is 1 to 12 digits anyway).
fn kolmogorov_q(l: f64) -> f64 {
    if l < 0.2 {
        return 1.0;
    }
    let mut q = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let term = sign * (-2.0 * (k * k) as f64 * l * l).exp();
        q += term;
        if term.abs() < 1e-16 {
            break;
        }
        sign = -sign;
    }
    (2.0 * q).clamp(0.0, 1.0)
}

/// A uniform number in [0, 1) from 53 random bits.
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// What one held-out simulation gives.
struct Case {
    ranks: Vec<usize>,
    mean: Vec<f64>,
    sd: Vec<f64>,
    hpd: f64,
    acceptance: f64,
    tarp: f64,
}

/// Runs the diagnostics: `draws` posterior draws for each row of `x` (held-out features), set
/// against the row of `theta` that produced it. Deterministic for a seed, independent of the
/// thread count. Progress: one unit per simulation.
pub fn check(
    post: &Posterior,
    theta: ArrayView2<f64>,
    x: ArrayView2<f64>,
    draws: usize,
    seed: u64,
    progress: &dyn Progress,
) -> Result<Check> {
    let d = post.dim();
    if theta.ncols() != d {
        bail!(
            "theta has {} columns; the posterior has {d} parameters ({})",
            theta.ncols(),
            post.prior.names().join(", ")
        );
    }
    if theta.nrows() != x.nrows() || theta.nrows() == 0 {
        bail!(
            "theta has {} rows and x {}: one held-out simulation per row in both, at least one",
            theta.nrows(),
            x.nrows()
        );
    }
    if draws < RANK_BINS - 1 {
        bail!(
            "at least {} posterior draws per simulation (the rank histograms have {RANK_BINS} bins)",
            RANK_BINS - 1
        );
    }
    for (i, row) in theta.rows().into_iter().enumerate() {
        if !post.prior.contains_row(row) {
            bail!("theta row {i} lies outside the prior's support (or is not finite)");
        }
    }
    let n = theta.nrows();
    let scale2: Vec<f64> = post
        .prior
        .params
        .iter()
        .map(|p| p.marginal.variance())
        .collect();
    let done = AtomicU64::new(0);
    let rows: Vec<Result<Case>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let xo = x.row(i).to_vec();
            let mut rng = stream(seed, i as u64);
            let s = rng.next_u64();
            let smp = post
                .sample(&xo, draws, s)
                .with_context(|| format!("held-out simulation {i}"))?;
            let t = theta.row(i);
            let mut ranks = Vec::with_capacity(d);
            let mut mean = Vec::with_capacity(d);
            let mut sd = Vec::with_capacity(d);
            for j in 0..d {
                let c = smp.theta.column(j);
                ranks.push(c.iter().filter(|&&v| v < t[j]).count());
                let (m, s) = crate::stats::mean_sd(&c.to_vec());
                mean.push(m);
                sd.push(s);
            }
            // Joint HPD level: the density's normalisation to the prior's support is the same
            // for every point at this x, so the flow's own density ranks them.
            let lq_draws = post.flow_log_prob(smp.theta.view(), &xo)?;
            let lq_true = post.flow_log_prob(t.insert_axis(Axis(0)), &xo)?[0];
            let above = lq_draws.iter().filter(|&&v| v > lq_true).count();
            // TARP: the reference from the same stream, after the draws' seed.
            let mut reference = vec![0.0; d];
            post.prior.sample_into(&mut rng, &mut reference);
            let dist2 = |p: ArrayView1<f64>| -> f64 {
                (0..d)
                    .map(|j| (p[j] - reference[j]).powi(2) / scale2[j])
                    .sum()
            };
            let r_true = dist2(t);
            let closer = smp
                .theta
                .rows()
                .into_iter()
                .filter(|row| dist2(*row) < r_true)
                .count();
            let k = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress.set(k, n as u64);
            Ok(Case {
                ranks,
                mean,
                sd,
                hpd: above as f64 / draws as f64,
                acceptance: smp.acceptance,
                tarp: (closer as f64 + unit(rng.next_u64())) / (draws as f64 + 1.0),
            })
        })
        .collect();
    let mut c = Check {
        names: post.prior.names(),
        draws,
        seed,
        truth: theta.to_owned(),
        ranks: Array2::zeros((n, d)),
        mean: Array2::zeros((n, d)),
        sd: Array2::zeros((n, d)),
        zscore: Array2::zeros((n, d)),
        shrinkage: Array2::zeros((n, d)),
        hpd_level: Vec::with_capacity(n),
        acceptance: Vec::with_capacity(n),
        tarp: Vec::with_capacity(n),
    };
    for (i, r) in rows.into_iter().enumerate() {
        let Case {
            ranks,
            mean,
            sd,
            hpd,
            acceptance: acc,
            tarp,
        } = r?;
        for j in 0..d {
            c.ranks[[i, j]] = ranks[j];
            c.mean[[i, j]] = mean[j];
            c.sd[[i, j]] = sd[j];
            c.zscore[[i, j]] = (mean[j] - theta[[i, j]]).abs() / sd[j];
            c.shrinkage[[i, j]] = 1.0 - sd[j] * sd[j] / post.prior.params[j].marginal.variance();
        }
        c.hpd_level.push(hpd);
        c.acceptance.push(acc);
        c.tarp.push(tarp);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kolmogorov_tail_matches_the_tabulated_critical_values() {
        // Critical values of the limiting distribution (e.g. Smirnov 1948's table):
        // P(K > 1.2238) = 0.10, P(K > 1.3581) = 0.05, P(K > 1.6276) = 0.01.
        for (l, p) in [(1.2238, 0.10), (1.3581, 0.05), (1.6276, 0.01)] {
            let q = kolmogorov_q(l);
            assert!((q - p).abs() < 2e-4, "Q({l}) = {q}, table {p}");
        }
        assert_eq!(kolmogorov_q(0.1), 1.0);
        assert!(kolmogorov_q(5.0) < 1e-20);
    }
}
