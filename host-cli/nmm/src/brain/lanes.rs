//! Batched runs: up to [`LANES_F64`] (f64) or [`LANES_F32`] (f32) rows of a batch advanced
//! together on one core, one simulation per vector lane ([`nmm_core::lanes`]).
//!
//! Rows share a batch when they differ only in what lanes may differ in: model parameters
//! (global or per region), the coupling `G`, the noise amplitudes, the seed and the initial
//! state; the connectome, delays, step, duration, observers and model kind are the batch's.
//! Each lane computes exactly its row's scalar run (same operations in the same order, its own
//! noise streams), so a row's BOLD, FC and features do not depend on which batch or thread ran
//! it, or on whether it ran batched at all (tests check it bit for bit). A batched row's
//! `wall_s` is its group's.

use super::{
    LinkTables, ObserverBuffers, Observers, Prepared, RunOutput, diverged, param_table, setup,
};
use crate::error::{Result, bail, input};
use nmm_core::Real;
use nmm_core::brain::Brain;
use nmm_core::lanes::{Batchable, Lanes, gather_state};
use nmm_core::models::{ChenCampbell, Mpr};
use nmm_core::rng::{Gaussian, LaneGaussian};

/// Lanes of an f64 batch: eight (one AVX-512 register, two AVX2 registers). Stepping alone
/// (no BOLD) on TVB's 76-region connectome without delays, MPR, one core of an AMD EPYC
/// Zen 4: eight lanes made 9.1e7 region-steps/s against 8.1e7 with four and 3.4e7 unbatched.
/// The whole pipeline: benches/benches/batch.rs.
pub const LANES_F64: usize = 8;

/// Lanes of an f32 batch: sixteen. Same measurement: 1.39e8 region-steps/s against 1.18e8
/// with eight and 3.5e7 unbatched.
pub const LANES_F32: usize = 16;

/// Whether `model` can run batched (its right-hand side does not branch on values; see
/// [`nmm_core::lanes::Batchable`]).
pub(super) fn batchable(model: &str) -> bool {
    matches!(model, "mpr" | "cc" | "mlp")
}

/// Lanes of a batch in `precision`.
pub(super) fn lanes_for(precision: &str) -> usize {
    if precision == "f32" {
        LANES_F32
    } else {
        LANES_F64
    }
}

/// Whether `a` and `b` may run in one batch (see the module docs).
/// (Models that do not run in lanes are never compatible.)
pub(super) fn compatible(a: &Prepared, b: &Prepared) -> bool {
    let shared = |p: &Prepared| {
        let mut c = p.cfg.clone();
        c.params.clear();
        c.coupling = 0.0;
        c.noise = None;
        c.nsig = None;
        c.seed = 0;
        c.initial = None;
        toml::to_string(&c).ok()
    };
    batchable(&a.cfg.model)
        && a.dt_ms == b.dt_ms
        && a.steps == b.steps
        && a.weights == b.weights
        && a.delays == b.delays
        && shared(a).is_some()
        && shared(a) == shared(b)
}

/// Runs `ps` (1 to the precision's lane count of compatible rows) as one batch; one result
/// per row, in order. A row that diverges gets its divergence error; the others go on.
///
/// # Errors
/// Setup failures (a model file that cannot be read, rows that are not compatible).
pub(super) fn run_lanes(ps: &[&Prepared]) -> Result<Vec<Result<RunOutput>>> {
    let Some(first) = ps.first() else {
        return Ok(Vec::new());
    };
    if let Some(i) = ps.iter().position(|p| !compatible(first, p)) {
        bail!("internal: row {i} of a batch differs from the first in more than lane settings");
    }
    match first.cfg.precision.as_str() {
        "f64" => dispatch::<f64, LANES_F64>(ps),
        "f32" => dispatch::<f32, LANES_F32>(ps),
        other => bail!("precision (--precision) must be f64 or f32, not {other:?}"),
    }
}

fn dispatch<T, const L: usize>(ps: &[&Prepared]) -> Result<Vec<Result<RunOutput>>>
where
    T: Real + nmm_core::mlp::MlpScalar + Send + Sync,
{
    let p = ps[0];
    match p.cfg.model.as_str() {
        "mpr" => simulate::<T, Mpr<T>, 2, L>(Mpr::default(), ps),
        "cc" => simulate::<T, ChenCampbell<T>, 4, L>(ChenCampbell::default(), ps),
        "mlp" => {
            let path = p.cfg.model_file.as_ref().ok_or_else(|| {
                input!("model = \"mlp\" needs model_file (a .nmmw from nmm train)")
            })?;
            crate::with_mlp!(T, path, |m| simulate::<T, _, 2, L>(m, ps))
        }
        other => bail!("internal: model {other:?} does not run batched"),
    }
}

/// `acc += x` lane-wise in `f64` (the observers accumulate in f64, as a scalar run does).
/// Out of line: inlined into the loop over regions, it was vectorised across regions, with a
/// gather per lane, and took 10 % of an MPR batch's time (16 f32 lanes, workload W).
#[inline(never)]
fn add_f64s<T: Real, const L: usize>(acc: &mut Lanes<f64, L>, x: Lanes<T, L>) {
    for (a, v) in acc.0.iter_mut().zip(x.0) {
        *a += v.to_f64();
    }
}

fn simulate<T, M, const N: usize, const L: usize>(
    base: M,
    ps: &[&Prepared],
) -> Result<Vec<Result<RunOutput>>>
where
    T: Real,
    M: Batchable<T, N> + PartialEq,
{
    let used = ps.len();
    if used == 0 || used > L {
        bail!("internal: a batch of {used} rows for {L} lanes");
    }
    // Unused lanes repeat the last row; their results are dropped.
    let lane_p: [&Prepared; L] = core::array::from_fn(|k| ps[k.min(used - 1)]);
    let p0 = lane_p[0];
    let n = p0.conn.n;
    let mut setups = Vec::with_capacity(L);
    for p in &lane_p {
        setups.push(setup::<T, M, N>(base.clone(), p)?);
    }
    let models: Vec<M::Batch<L>> = (0..n)
        .map(|i| M::batch(&core::array::from_fn(|k| setups[k].0[i].clone())))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| input!("internal: batching the models: {e}"))?;
    let sigma: [Lanes<T, L>; N] =
        core::array::from_fn(|v| Lanes(core::array::from_fn(|k| T::from_f64(setups[k].1[v]))));
    let mut x: Vec<[Lanes<T, L>; N]> = (0..n)
        .map(|i| gather_state(&core::array::from_fn(|k| setups[k].2[i])))
        .collect();
    let wt: Vec<T> = p0.weights.iter().map(|&w| T::from_f64(w)).collect();
    let mut links = LinkTables::new(n, &wt, &p0.delays)?;
    let conn = links.connectome(n, &wt, &p0.delays)?;
    type B<'a, T, M, const N: usize, const L: usize> =
        Brain<'a, Lanes<T, L>, M, N, LaneGaussian<T, L>, T>;
    let mut hist = vec![Lanes::<T, L>::ZERO; B::<T, M::Batch<L>, N, L>::history_len(&conn)];
    let mut work = vec![[Lanes::<T, L>::ZERO; N]; B::<T, M::Batch<L>, N, L>::work_len(n)];
    let mut coupling = vec![Lanes::<T, L>::ZERO; B::<T, M::Batch<L>, N, L>::coupling_len(n)];
    let mut noise: Vec<LaneGaussian<T, L>> = (0..n)
        .map(|i| {
            LaneGaussian::new(core::array::from_fn(|k| {
                Gaussian::new(lane_p[k].cfg.seed, i as u64 + 1)
            }))
        })
        .collect();
    let g = Lanes(core::array::from_fn(|k| {
        T::from_f64(lane_p[k].cfg.coupling)
    }));
    let mut brain = B::<T, M::Batch<L>, N, L>::new(
        conn,
        &models,
        g,
        sigma,
        Lanes::splat(T::from_f64(p0.dt_ms)),
        &mut x,
        &mut hist,
        &mut work,
        &mut coupling,
        &mut noise,
    )?;

    let mut buffers: Vec<ObserverBuffers> = (0..used)
        .map(|_| ObserverBuffers::new(n, &p0.cfg.fc))
        .collect();
    let mut obs: Vec<Observers<'_, N>> = ps
        .iter()
        .zip(buffers.iter_mut())
        .map(|(p, b)| Observers::new(p, b))
        .collect::<Result<_>>()?;
    let mut dead: Vec<Option<crate::Error>> = (0..used).map(|_| None).collect();
    let cv = M::COUPLING_VAR;
    let (bold_every, record_every) = (p0.bold_every, p0.record_every);
    let mut zacc = vec![Lanes::<f64, L>::ZERO; n];
    let mut racc = vec![[Lanes::<f64, L>::ZERO; N]; if record_every > 0 { n } else { 0 }];
    let mut mean = vec![0.0; n];
    let mut rmean = vec![[0.0; N]; racc.len()];
    let start = std::time::Instant::now();
    for k in 0..p0.steps {
        if !brain.step() {
            for (lane, d) in dead.iter_mut().enumerate() {
                let state: Vec<[T; N]> = brain
                    .state()
                    .iter()
                    .map(|s| s.map(|v| v.lane(lane)))
                    .collect();
                if d.is_none() && state.iter().flatten().any(|v| !v.is_finite()) {
                    let sigma = setups[lane].1;
                    *d = Some(diverged(lane_p[lane], k, &state, &M::STATE, &sigma));
                }
            }
            if dead.iter().all(Option::is_some) {
                break;
            }
        }
        let xs = brain.state();
        for (z, xi) in zacc.iter_mut().zip(xs) {
            add_f64s(z, xi[cv]);
        }
        if (k + 1).is_multiple_of(bold_every) {
            let inv = 1.0 / bold_every as f64;
            for (lane, o) in obs.iter_mut().enumerate() {
                if dead[lane].is_none() {
                    for (m, z) in mean.iter_mut().zip(&zacc) {
                        *m = z.lane(lane) * inv;
                    }
                    o.bold_block(k, &mean);
                }
            }
            zacc.fill(Lanes::ZERO);
        }
        if record_every > 0 {
            for (a, xi) in racc.iter_mut().zip(xs) {
                for v in 0..N {
                    add_f64s(&mut a[v], xi[v]);
                }
            }
            if (k + 1).is_multiple_of(record_every) {
                let inv = 1.0 / record_every as f64;
                for (lane, o) in obs.iter_mut().enumerate() {
                    if dead[lane].is_none() {
                        for (m, a) in rmean.iter_mut().zip(&racc) {
                            *m = a.map(|v| v.lane(lane) * inv);
                        }
                        o.record_block(k, rmean.iter().copied());
                    }
                }
                racc.fill([Lanes::ZERO; N]);
            }
        }
    }
    let wall_s = start.elapsed().as_secs_f64();
    let mut out = Vec::with_capacity(used);
    for ((o, d), (models, sigma, _)) in obs.into_iter().zip(dead).zip(setups) {
        out.push(match d {
            Some(e) => Err(e),
            None => o.finish().map(|(t_ms, bold, fc, fcd, states)| RunOutput {
                t_ms,
                bold,
                fc,
                fcd,
                states,
                state_names: M::STATE.to_vec(),
                bold_input: M::STATE[M::COUPLING_VAR],
                sigma: sigma.to_vec(),
                params: param_table::<T, M, N>(&models),
                wall_s,
            }),
        });
    }
    Ok(out)
}
