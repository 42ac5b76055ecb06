//! One mean-field node over time: the core's integrators run over a grid, samples collected.

use crate::error::Result;
use nmm_core::Model;
use nmm_core::integrate::OdeMethod;
use nmm_core::rng::Gaussian;
use nmm_core::sim::{Grid, simulate};
use nmm_core::stim::{StimSpec, Stimulus};

/// Most samples a run keeps in memory (each is N + 2 doubles); beyond it, ask for fewer.
///
/// ```
/// // 8 bytes times (N + 2) values per sample: under 2.5 GB for the 4-variable CC model.
/// assert!(nmm::mf::MAX_SAMPLES * 8 * 6 < 2_500_000_000);
/// ```
pub const MAX_SAMPLES: usize = 50_000_000;

/// What one run produced.
///
/// ```
/// use nmm_core::{integrate::OdeMethod, models::Mpr, sim::Grid, stim::StimSpec};
/// let grid = Grid { t0: 0.0, dt: 0.01, steps: 100, every: 1 };
/// let tr = nmm::mf::integrate(&Mpr::<f64>::default(), [0.1, -2.0], StimSpec::None, 0, OdeMethod::Rk4, grid)?;
/// assert_eq!((tr.t.len(), tr.x.len(), tr.input.len()), (101, 101, 101));
/// # Ok::<(), nmm::Error>(())
/// ```
pub struct Trajectory<const N: usize> {
    /// Sample times.
    pub t: Vec<f64>,
    /// States at the sample times.
    pub x: Vec<[f64; N]>,
    /// Drive at the sample times.
    pub input: Vec<f64>,
}

/// Runs the core simulation and collects the samples (stimulus from stream 0 of the seed, model
/// noise from stream 1). A state that stops being finite is an [`crate::Error::Diverged`].
///
/// ```
/// use nmm_core::integrate::OdeMethod;
/// use nmm_core::models::Mpr;
/// use nmm_core::sim::Grid;
/// use nmm_core::stim::StimSpec;
/// let grid = Grid { t0: 0.0, dt: 0.01, steps: 1000, every: 10 };
/// let m = Mpr::<f64>::default();
/// let tr = nmm::mf::integrate(&m, [0.1, -2.0], StimSpec::None, 0, OdeMethod::Heun, grid).unwrap();
/// assert_eq!(tr.t.len(), 101);
/// ```
pub fn integrate<M: Model<f64, N>, const N: usize>(
    model: &M,
    x0: [f64; N],
    stim: StimSpec,
    seed: u64,
    method: OdeMethod,
    grid: Grid<f64>,
) -> Result<Trajectory<N>> {
    let cap = grid.samples();
    if cap > MAX_SAMPLES {
        return Err(crate::Error::Resource {
            needed: cap as u64,
            limit: MAX_SAMPLES as u64,
            message: format!(
                "{cap} samples would be stored (at most {MAX_SAMPLES}); keep every k-th \
                 (Grid::every, --every {})",
                grid.steps / MAX_SAMPLES + 1
            ),
        });
    }
    let mut drive = Stimulus::<f64>::new(stim, seed, grid.t0);
    let mut noise = Gaussian::<f64>::new(seed, 1);
    let mut traj = Trajectory {
        t: Vec::with_capacity(cap),
        x: Vec::with_capacity(cap),
        input: Vec::with_capacity(cap),
    };
    simulate(
        model,
        x0,
        &mut drive,
        &mut noise,
        method,
        grid,
        |t, x, i| {
            traj.t.push(t);
            traj.x.push(*x);
            traj.input.push(i);
        },
    )?;
    Ok(traj)
}
