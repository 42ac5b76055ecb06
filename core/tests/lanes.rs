//! Batched whole-brain runs: lane `k` of a network on `Lanes<T, L>` equals, bit for bit, the
//! scalar run with lane `k`'s parameters, coupling, noise amplitudes and seed, with delays
//! (short and blocked), for every model the library batches (MPR, Chen-Campbell, the MLP), in
//! both precisions.

use nmm_core::brain::{Brain, Connectome, Link, count_links};
use nmm_core::connectome::synthetic;
use nmm_core::lanes::{Batchable, Lanes, gather_state, set_params};
use nmm_core::mlp::{Mlp, MlpMeanField, Normalisation};
use nmm_core::models::{ChenCampbell, Mpr};
use nmm_core::rng::{Gaussian, LaneGaussian, NormalSource};
use nmm_core::{Model, Real};

/// Runs `steps` steps of a network and returns the state after each `every` steps.
#[allow(clippy::too_many_arguments)] // the network's description, as Brain::new takes it
fn run<T, M, S, const N: usize>(
    w: &[T],
    d: &[u32],
    models: &[M],
    g: T,
    sigma: [T; N],
    dt: T,
    mut noise: Vec<S>,
    mut x: Vec<[T; N]>,
    steps: usize,
    every: usize,
) -> Vec<Vec<[T; N]>>
where
    T: Real,
    M: Model<T, N> + Clone + PartialEq,
    S: NormalSource<T>,
{
    let n = models.len();
    let c = count_links(n, w, d).unwrap();
    assert!(
        c.instant > 0 && c.blocked > 0 && c.delayed > c.blocked,
        "{c:?}"
    );
    let (mut ir, mut il) = (
        vec![0; n + 1],
        vec![
            Link {
                w: T::ZERO,
                at: 0,
                lag: 0
            };
            c.instant
        ],
    );
    let (mut dr, mut dl) = (
        vec![0; 2 * n + 1],
        vec![
            Link {
                w: T::ZERO,
                at: 0,
                lag: 0
            };
            c.delayed
        ],
    );
    let conn = Connectome::build(n, w, d, &mut ir, &mut il, &mut dr, &mut dl).unwrap();
    let mut hist = vec![T::ZERO; Brain::<T, M, N, S>::history_len(&conn)];
    let mut work = vec![[T::ZERO; N]; Brain::<T, M, N, S>::work_len(n)];
    let mut coupling = vec![T::ZERO; Brain::<T, M, N, S>::coupling_len(n)];
    let mut b = Brain::new(
        conn,
        models,
        g,
        sigma,
        dt,
        &mut x,
        &mut hist,
        &mut work,
        &mut coupling,
        &mut noise,
    )
    .unwrap();
    let mut out = Vec::new();
    for k in 1..=steps {
        assert!(b.step(), "diverged at step {k}");
        if k % every == 0 {
            out.push(b.state().to_vec());
        }
    }
    out
}

/// The synthetic connectome's weights (divided by their maximum, plus self-links) with delays of 0 to 39 steps
/// spread over the links, so that the three kinds of links (without delay, short delays
/// gathered per step, delays of at least a block summed per block) all occur.
fn network(n: usize) -> (Vec<f64>, Vec<u32>) {
    let (mut w, mut len, mut centres) = (vec![0.0; n * n], vec![0.0; n * n], vec![[0.0; 3]; n]);
    synthetic(n, &mut w, &mut len, &mut centres).unwrap();
    let mut d: Vec<u32> = (0..n * n)
        .map(|k| ((k / n) * 7 + (k % n) * 3) as u32 % 40)
        .collect();
    let max = w.iter().cloned().fold(0.0, f64::max);
    let mut w: Vec<f64> = w.iter().map(|v| v / max).collect();
    // Self-links without delay (the diagonal is empty in the synthetic connectome).
    for i in 0..n {
        (w[i * n + i], d[i * n + i]) = (0.5, 0);
    }
    (w, d)
}

/// Per-lane settings of a batch of `L` simulations.
struct Batch<const L: usize> {
    g: [f64; L],
    seeds: [u64; L],
    /// Noise amplitude per lane, for every state variable.
    sigma: [f64; L],
    /// Parameter name and value per lane (per region `i`: value + `i` x `slope`).
    params: Vec<(&'static str, [f64; L], f64)>,
}

/// Runs `batch` once batched and once lane by lane, and asserts equal bits.
fn check<T, M, ML, const N: usize, const L: usize>(
    what: &str,
    scalar: impl Fn() -> M,
    lanes: impl Fn() -> ML,
    batch: &Batch<L>,
    steps: usize,
) where
    T: Real + core::fmt::Debug,
    M: Model<T, N> + Clone + PartialEq,
    ML: Model<Lanes<T, L>, N> + Clone + PartialEq,
{
    let n = 8;
    let dt = 0.05;
    let (w64, d) = network(n);
    let w: Vec<T> = w64.iter().map(|&v| T::from_f64(v)).collect();
    let wl: Vec<Lanes<T, L>> = w.iter().map(|&v| Lanes::splat(v)).collect();
    // One checked scalar model per lane and region; the batch gathers them.
    let scalar_models: Vec<Vec<M>> = (0..L)
        .map(|k| {
            (0..n)
                .map(|i| {
                    let mut m = scalar();
                    for (name, v, slope) in &batch.params {
                        m.set(name, T::from_f64(v[k] + i as f64 * slope)).unwrap();
                    }
                    m
                })
                .collect()
        })
        .collect();
    let lane_models: Vec<ML> = (0..n)
        .map(|i| {
            let mut m = lanes();
            set_params(
                &mut m,
                &core::array::from_fn(|k| scalar_models[k][i].clone()),
            )
            .unwrap();
            m
        })
        .collect();
    let x0 = (0..n)
        .map(|i| {
            gather_state(&core::array::from_fn(|k| {
                scalar_models[k][i].initial_state()
            }))
        })
        .collect();
    let noise = (0..n)
        .map(|i| LaneGaussian::new(batch.seeds.map(|s| Gaussian::new(s, i as u64 + 1))))
        .collect();
    let sigma = Lanes(batch.sigma.map(T::from_f64));
    let got = run(
        &wl,
        &d,
        &lane_models,
        Lanes(batch.g.map(T::from_f64)),
        [sigma; N],
        Lanes::splat(T::from_f64(dt)),
        noise,
        x0,
        steps,
        steps / 10,
    );
    for (k, models) in scalar_models.iter().enumerate() {
        let noise = (0..n)
            .map(|i| Gaussian::new(batch.seeds[k], i as u64 + 1))
            .collect();
        let x0 = models.iter().map(|m| m.initial_state()).collect();
        let want = run(
            &w,
            &d,
            models,
            T::from_f64(batch.g[k]),
            [T::from_f64(batch.sigma[k]); N],
            T::from_f64(dt),
            noise,
            x0,
            steps,
            steps / 10,
        );
        for (s, (a, b)) in got.iter().zip(&want).enumerate() {
            for (i, (xa, xb)) in a.iter().zip(b).enumerate() {
                let lane: [T; N] = xa.map(|v| v.lane(k));
                assert!(
                    lane.iter()
                        .zip(xb)
                        .all(|(p, q)| p.to_f64().to_bits() == q.to_f64().to_bits()),
                    "{what}: lane {k}, sample {s}, region {i}: {lane:?} != {xb:?}"
                );
            }
        }
        // The lanes really differ (a test that compared equal runs would prove nothing).
        if k > 0 {
            let last = got.last().unwrap();
            let lane = |l: usize| -> Vec<f64> {
                last.iter()
                    .flat_map(|x| x.map(|v| v.lane(l).to_f64()))
                    .collect()
            };
            assert_ne!(lane(k), lane(0), "{what}: lanes {k} and 0 ran the same");
        }
    }
}

fn mpr_batch() -> Batch<4> {
    Batch {
        g: [0.1, 0.3, 0.0, 0.5],
        seeds: [1, 2, 3, 1],
        sigma: [0.1, 0.2, 0.05, 0.1],
        params: vec![("eta", [-5.0, -4.6, -4.0, -5.0], 0.05)],
    }
}

#[test]
fn mpr_lanes_equal_scalar_runs_f64_and_f32() {
    check::<f64, _, _, 2, 4>(
        "mpr f64",
        Mpr::<f64>::default,
        Mpr::<Lanes<f64, 4>>::default,
        &mpr_batch(),
        4000,
    );
    check::<f32, _, _, 2, 4>(
        "mpr f32",
        Mpr::<f32>::default,
        Mpr::<Lanes<f32, 4>>::default,
        &mpr_batch(),
        4000,
    );
    // Eight lanes (one AVX-512 or two AVX2 registers of f64), the same parameter in all
    // regions (the network's shared-parameter path).
    let b = Batch {
        g: [0.2; 8],
        seeds: [1, 2, 3, 4, 5, 6, 7, 8],
        sigma: [0.1; 8],
        params: vec![
            ("eta", [-4.6; 8], 0.0),
            ("J", [15.0, 14.0, 13.0, 15.0, 12.0, 15.0, 15.0, 16.0], 0.0),
        ],
    };
    check::<f64, _, _, 2, 8>(
        "mpr f64 x8",
        Mpr::<f64>::default,
        Mpr::<Lanes<f64, 8>>::default,
        &b,
        2000,
    );
}

#[test]
fn chen_campbell_lanes_equal_scalar_runs() {
    let b = Batch {
        g: [0.1, 0.5],
        seeds: [4, 9],
        sigma: [0.001, 0.003],
        params: vec![("eta", [0.12, 0.2], 0.001)],
    };
    check::<f64, _, _, 4, 2>(
        "cc",
        ChenCampbell::<f64>::default,
        ChenCampbell::<Lanes<f64, 2>>::default,
        &b,
        2000,
    );
}

#[test]
fn mlp_lanes_equal_scalar_runs() {
    // A random network of the shipped shape (tanh layers), the same weights in every lane.
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let net = Mlp::<f64>::splat(0.0).map(|_| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.8
    });
    let norm = Normalisation {
        in_mean: [0.5, -1.0, -5.0, 0.8, 10.0, 0.0],
        in_scale: [0.5, 1.5, 3.0, 0.12, 6.0, 1.0],
        out_scale: [2.0, 20.0],
        out_offset: [0.1, -1.0],
    };
    let scalar = || MlpMeanField::new(net, norm).unwrap();
    let lanes = || MlpMeanField::batch(&[scalar(); 4]).unwrap();
    let names: Vec<_> = MlpMeanField::<f64>::PARAMS.iter().map(|p| p.name).collect();
    assert!(names.contains(&"eta"), "{names:?}");
    let b = Batch {
        g: [0.05, 0.1, 0.2, 0.0],
        seeds: [11, 12, 13, 14],
        sigma: [0.05, 0.1, 0.05, 0.02],
        params: vec![("eta", [-5.0, -4.5, -4.0, -3.5], 0.01)],
    };
    check::<f64, _, _, 2, 4>("mlp", scalar, lanes, &b, 2000);
}
