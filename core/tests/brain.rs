//! Whole-brain stepper: against single-node runs, a naive reference with explicit delays, and
//! fixed points that core's solver predicts.

use nmm_core::Model;
use nmm_core::brain::{BLOCK, Brain, BrainError, Connectome, Link, count_links};
use nmm_core::connectome::{Normalise, delays_in_steps, normalise, synthetic};
use nmm_core::equilibria::{eigenvalues, jacobian, newton};
use nmm_core::integrate::OdeMethod;
use nmm_core::models::{Mpr, Rww};
use nmm_core::rng::Gaussian;
use nmm_core::sim::{Grid, simulate};
use nmm_core::stim::{StimSpec, Stimulus};

/// Owns every buffer a [`Brain`] borrows, as a host would.
struct Net<T, M, const N: usize> {
    n: usize,
    w: Vec<T>,
    d: Vec<u32>,
    models: Vec<M>,
    x: Vec<[T; N]>,
    g: T,
    sigma: [T; N],
    dt: T,
    seed: u64,
}

impl<M: Model<f64, N> + Clone + PartialEq, const N: usize> Net<f64, M, N> {
    /// Runs `steps` steps, calling `each` after every step with the state.
    fn run(&mut self, steps: usize, each: impl FnMut(&[[f64; N]])) -> Vec<[f64; N]> {
        self.run_resetting(steps, &[], each)
    }

    /// [`Net::run`], calling [`Brain::reset_history`] after the steps listed in `resets`.
    fn run_resetting(
        &mut self,
        steps: usize,
        resets: &[usize],
        mut each: impl FnMut(&[[f64; N]]),
    ) -> Vec<[f64; N]> {
        let c = count_links(self.n, &self.w, &self.d).unwrap();
        let (mut ir, mut il) = (vec![0; self.n + 1], vec![Link::default(); c.instant]);
        let (mut dr, mut dl) = (vec![0; 2 * self.n + 1], vec![Link::default(); c.delayed]);
        let conn = Connectome::build(self.n, &self.w, &self.d, &mut ir, &mut il, &mut dr, &mut dl)
            .unwrap();
        let mut hist = vec![0.0; Brain::<f64, M, N>::history_len(&conn)];
        let mut work = vec![[0.0; N]; Brain::<f64, M, N>::work_len(self.n)];
        let mut coupling = vec![0.0; Brain::<f64, M, N>::coupling_len(self.n)];
        let mut noise: Vec<_> = (0..self.n)
            .map(|i| Gaussian::new(self.seed, i as u64 + 1))
            .collect();
        let mut x = self.x.clone();
        let mut b = Brain::new(
            conn,
            &self.models,
            self.g,
            self.sigma,
            self.dt,
            &mut x,
            &mut hist,
            &mut work,
            &mut coupling,
            &mut noise,
        )
        .unwrap();
        for k in 1..=steps {
            assert!(b.step());
            each(b.state());
            if resets.contains(&k) {
                b.reset_history();
            }
        }
        b.state().to_vec()
    }
}

/// With G = 0 every node is a single-node run: same seed stream, same operations, so the
/// trajectories agree bit for bit (not within a tolerance).
#[test]
fn uncoupled_nodes_equal_single_node_runs_bitwise() {
    let n = 5;
    // Non-zero weights and delays, G = 0: the coupling is computed and multiplied by zero.
    let len: Vec<f64> = (0..n * n).map(|k| k as f64).collect();
    let mut d = vec![0; n * n];
    delays_in_steps(n, &len, 3.0, 0.1, &mut d).unwrap();
    let w: Vec<f64> = (0..n * n).map(|k| 0.1 + k as f64 * 0.01).collect();
    let models: Vec<Mpr<f64>> = (0..n)
        .map(|i| Mpr {
            eta: -5.0 + 0.5 * i as f64,
            ..Mpr::default()
        })
        .collect();
    let sigma = [0.3, 0.5]; // large enough that r hits the r >= 0 projection
    let dt = 0.01;
    let steps = 5000;
    let mut net = Net {
        n,
        w,
        d,
        models: models.clone(),
        x: models.iter().map(|m| m.initial_state()).collect(),
        g: 0.0,
        sigma,
        dt,
        seed: 99,
    };
    let mut traj = vec![];
    net.run(steps, |x| traj.push(x.to_vec()));
    for (i, m) in models.iter().enumerate() {
        // simulate() takes the noise from the model's diffusion: wrap the model.
        struct Noisy(Mpr<f64>, [f64; 2]);
        impl Model<f64, 2> for Noisy {
            const NAME: &'static str = "noisy";
            const STATE: [&'static str; 2] = ["r", "v"];
            const COUPLING_VAR: usize = 0;
            const PARAMS: &'static [nmm_core::ParamSpec] = &[];
            fn deriv(&self, x: &[f64; 2], input: f64) -> [f64; 2] {
                self.0.deriv(x, input)
            }
            fn diffusion(&self) -> [f64; 2] {
                self.1
            }
            fn initial_state(&self) -> [f64; 2] {
                self.0.initial_state()
            }
            fn project(&self, x: [f64; 2]) -> [f64; 2] {
                self.0.project(x)
            }
            fn get(&self, _: &str) -> Option<f64> {
                None
            }
            fn set(&mut self, _: &str, _: f64) -> Result<(), nmm_core::ParamError> {
                Err(nmm_core::ParamError::Unknown)
            }
        }
        let model = Noisy(*m, sigma);
        let mut stim: Stimulus<f64> = Stimulus::new(StimSpec::None, 0, 0.0);
        let mut k = 0;
        let mut clamped = 0;
        simulate(
            &model,
            m.initial_state(),
            &mut stim,
            &mut Gaussian::new(99, i as u64 + 1),
            OdeMethod::Heun,
            Grid {
                t0: 0.0,
                dt,
                steps,
                every: 1,
            },
            |_, x, _| {
                if k > 0 {
                    let b = traj[k - 1][i];
                    assert_eq!(
                        x.map(f64::to_bits),
                        b.map(f64::to_bits),
                        "node {i}, step {k}: single {x:?}, brain {b:?}"
                    );
                    clamped += usize::from(x[0] == 0.0);
                }
                k += 1;
            },
        )
        .unwrap();
        assert_eq!(k, steps + 1);
        if i == 0 {
            assert!(
                clamped > 0,
                "the test should exercise the r >= 0 projection"
            );
        }
    }
}

/// Noise is drawn BLOCK steps ahead; restarting the delays mid-block must not drop or redraw
/// it. With G = 0 the history does not matter, so runs with and without resets (mid-block and
/// on a block boundary) must agree bit for bit.
#[test]
fn reset_history_keeps_the_noise_stream() {
    let n = 4;
    let w: Vec<f64> = (0..n * n).map(|k| 0.2 + 0.01 * k as f64).collect();
    let d: Vec<u32> = (0..n * n).map(|k| (k % 40) as u32).collect();
    let models = vec![Mpr::<f64>::default(); n];
    let mut net = Net {
        n,
        w,
        d,
        models: models.clone(),
        x: models.iter().map(|m| m.initial_state()).collect(),
        g: 0.0,
        sigma: [0.1, 0.2],
        dt: 0.01,
        seed: 3,
    };
    let steps = 5 * BLOCK + 3;
    let plain = net.run(steps, |_| {});
    let reset = net.run_resetting(steps, &[BLOCK / 2 + 1, 2 * BLOCK, 3 * BLOCK + 5], |_| {});
    for (a, b) in plain.iter().zip(&reset) {
        assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits));
    }
}

/// A plain implementation with the full past stored and indexed by time: the ring buffer,
/// the delayed/instant split and the reuse of the delayed sum must give the same numbers up to
/// the order of additions.
#[test]
fn delays_match_a_naive_full_history_reference() {
    let n = 12;
    let (mut w, mut len, mut centres) = (vec![0.0; n * n], vec![0.0; n * n], vec![[0.0; 3]; n]);
    synthetic(n, &mut w, &mut len, &mut centres).unwrap();
    w.iter_mut().enumerate().for_each(|(k, v)| {
        if k % (n + 1) == 0 {
            *v = 0.3 // self-links have no delay: exercise the instant list
        }
    });
    let dt = 0.05;
    let mut d = vec![0; n * n];
    delays_in_steps(n, &len, 10.0, dt, &mut d).unwrap();
    let long_only = d.clone();
    // Some links with delays of 1 to 9 steps (below BLOCK): gathered step by step.
    for k in (3..n * n).step_by(7) {
        if k % (n + 1) != 0 {
            d[k] = 1 + (k % 9) as u32;
        }
    }
    let max_d = *d.iter().max().unwrap() as usize;
    assert!(max_d > 50, "delays of tens of steps ({max_d})");
    // Both kinds of delayed links: gathered step by step (below BLOCK) and summed in blocks.
    let short = |d: &[u32]| {
        (0..n * n)
            .filter(|&k| w[k] != 0.0 && (1..BLOCK as u32).contains(&d[k]))
            .count()
    };
    assert!(
        short(&d) > 0 && max_d >= BLOCK,
        "short links {}, longest {max_d}",
        short(&d)
    );
    assert_eq!(short(&long_only), 0);
    // Only short delays: a ring shorter than a block (L = 10 < BLOCK).
    let short_only: Vec<u32> = (0..n * n)
        .map(|k| {
            if k % (n + 1) == 0 {
                0
            } else {
                1 + (k % 9) as u32
            }
        })
        .collect();
    for uniform in [false, true] {
        check_against_reference("mixed delays", n, &w, &d, dt, uniform);
    }
    check_against_reference("blocked delays only", n, &w, &long_only, dt, true);
    check_against_reference("short delays only", n, &w, &short_only, dt, false);
    // One region with a delayed self-link, and one with no links at all.
    check_against_reference("one region", 1, &[0.4], &[7], dt, true);
    check_against_reference("one region, no links", 1, &[0.0], &[0], dt, true);
}

/// Runs the brain and the naive full-history reference on one network and compares them.
fn check_against_reference(what: &str, n: usize, w: &[f64], d: &[u32], dt: f64, uniform: bool) {
    // Per-region parameters, and one set shared by all (the brain's uniform path, which hoists
    // the model's constants out of the region loops).
    let models: Vec<Mpr<f64>> = (0..n)
        .map(|i| Mpr {
            eta: if uniform { -4.7 } else { -4.6 - 0.1 * i as f64 },
            ..Mpr::default()
        })
        .collect();
    let (g, sigma, seed, steps) = (0.8, [0.02, 0.05], 5u64, 3000);
    let x0: Vec<[f64; 2]> = models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let s = m.initial_state();
            [s[0] + 0.01 * i as f64, s[1]]
        })
        .collect();
    let mut net = Net {
        n,
        w: w.to_vec(),
        d: d.to_vec(),
        models: models.clone(),
        x: x0.clone(),
        g,
        sigma,
        dt,
        seed,
    };
    let fast = net.run(steps, |_| {});

    // Reference: past[k] = state at step k.
    let mut past: Vec<Vec<[f64; 2]>> = vec![x0.clone()];
    let mut noise: Vec<_> = (0..n)
        .map(|i| Gaussian::<f64>::new(seed, i as u64 + 1))
        .collect();
    let r_at = |past: &Vec<Vec<[f64; 2]>>, t: i64, j: usize| past[t.max(0) as usize][j][0];
    let sq = dt.sqrt();
    for k in 0..steps as i64 {
        let x = past[k as usize].clone();
        let mut pred = vec![[0.0; 2]; n];
        let mut k1s = vec![[0.0; 2]; n];
        let mut dws = vec![[0.0; 2]; n];
        for i in 0..n {
            let c1: f64 = g
                * (0..n)
                    .map(|j| w[i * n + j] * r_at(&past, k - d[i * n + j] as i64, j))
                    .sum::<f64>();
            let z: [f64; 2] = noise[i].array();
            let dw = [sigma[0] * sq * z[0], sigma[1] * sq * z[1]];
            let k1 = models[i].deriv(&x[i], c1);
            pred[i] =
                models[i].project([x[i][0] + dt * k1[0] + dw[0], x[i][1] + dt * k1[1] + dw[1]]);
            k1s[i] = k1;
            dws[i] = dw;
        }
        let mut next = vec![[0.0; 2]; n];
        for i in 0..n {
            let c2: f64 = g
                * (0..n)
                    .map(|j| {
                        let dij = d[i * n + j] as i64;
                        let r = if dij == 0 {
                            pred[j][0]
                        } else {
                            r_at(&past, k + 1 - dij, j)
                        };
                        w[i * n + j] * r
                    })
                    .sum::<f64>();
            let k2 = models[i].deriv(&pred[i], c2);
            let h = dt * 0.5;
            next[i] = models[i].project([
                x[i][0] + h * (k1s[i][0] + k2[0]) + dws[i][0],
                x[i][1] + h * (k1s[i][1] + k2[1]) + dws[i][1],
            ]);
        }
        past.push(next);
    }
    let reference = past.last().unwrap();
    let mut worst = 0.0f64;
    for (a, b) in fast.iter().zip(reference) {
        for k in 0..2 {
            worst = worst.max((a[k] - b[k]).abs() / (1.0 + b[k].abs()));
        }
    }
    println!("{what}, uniform = {uniform}: max relative difference after {steps} steps: {worst:e}");
    // Only the order of the additions differs (about 1e-16 per step); over 3000 steps of a
    // contracting noisy system that stays far below 1e-10. A wrong delay index (off by one
    // step) changes the coupling by about dt |dr/dt| W ~ 1e-3 and fails this.
    assert!(
        worst < 1e-10,
        "{what}: fast and reference differ by {worst:e}"
    );
}

/// With no regions a step does nothing (and does not panic).
#[test]
fn an_empty_network_steps() {
    let (mut ir, mut dr) = ([0u32; 1], [0u32; 1]);
    let conn = Connectome::<f64>::build(0, &[], &[], &mut ir, &mut [], &mut dr, &mut []).unwrap();
    let models: [Mpr<f64>; 0] = [];
    type B = Brain<'static, f64, Mpr<f64>, 2>;
    let mut hist = vec![0.0; B::history_len(&conn)];
    let mut b = Brain::<f64, Mpr<f64>, 2>::new(
        conn,
        &models,
        0.1,
        [0.01, 0.01],
        0.1,
        &mut [],
        &mut hist,
        &mut [],
        &mut [],
        &mut [],
    )
    .unwrap();
    assert!(b.step());
    assert_eq!(b.steps(), 1);
}

/// On a ring where every region has the same in-strength s, the homogeneous equilibrium solves
/// the single-node system f(x, G J_N s x_E) = 0: Newton on that 2-variable system predicts where
/// the noise-free RWW network settles, with delays or without.
#[test]
fn noise_free_rww_ring_settles_at_predicted_fixed_point() {
    let n = 10;
    let mut w = vec![0.0; n * n];
    for i in 0..n {
        w[i * n + (i + 1) % n] = 0.7;
        w[i * n + (i + n - 1) % n] = 0.3;
    }
    let s = 1.0;
    let g = 0.9;
    let m = Rww::<f64> {
        sigma: 0.0,
        ..Rww::default()
    };
    let mut f = |x: &[f64; 2]| m.deriv(x, g * m.j_n * s * x[0]);
    // Start Newton from a short single-node relaxation towards the homogeneous point (tau_E =
    // 100 ms: 2 s bring it within reach of the quadratic basin).
    let mut x = [0.1, 0.05];
    for k in 0..20_000 {
        x = OdeMethod::Rk4.step(&mut |_t, x: &[f64; 2]| f(x), k as f64 * 0.1, &x, 0.1);
    }
    let fp = newton(&mut f, x, 1e-13, 100).unwrap();
    let eig = eigenvalues(&jacobian(&mut f, &fp)).unwrap();
    assert!(
        eig.iter().all(|e| e.0 < 0.0),
        "the predicted point is stable: {eig:?}"
    );
    for delay in [0u32, 30] {
        let d = (0..n * n)
            .map(|k| if w[k] > 0.0 { delay } else { 0 })
            .collect();
        let x0 = (0..n).map(|i| [0.05 + 0.03 * i as f64, 0.2]).collect();
        let mut net = Net {
            n,
            w: w.clone(),
            d,
            models: vec![m; n],
            x: x0,
            g,
            sigma: [0.0; 2],
            dt: 0.1,
            seed: 1,
        };
        let end = net.run(100_000, |_| {}); // 10 s, a hundred time constants tau_E
        for (i, x) in end.iter().enumerate() {
            for k in 0..2 {
                // The slowest eigenvalue is about -1/tau_E (0.01/ms): after 10 s the transient
                // has decayed by e^-100, so only rounding is left.
                assert!(
                    (x[k] - fp[k]).abs() < 1e-9,
                    "delay {delay}: region {i} var {k}: {} vs predicted {}",
                    x[k],
                    fp[k]
                );
            }
        }
    }
}

#[test]
fn bad_buffers_and_constants_are_errors() {
    let w = [0.0, 1.0, f64::NAN, 0.0];
    assert_eq!(
        count_links(2, &w, &[]),
        Err(BrainError::NonFiniteWeight { i: 1, j: 0 })
    );
    assert!(matches!(
        count_links(3, &[0.0; 4], &[]),
        Err(BrainError::Length { .. })
    ));
    let w = [0.0, 1.0, 1.0, 0.0];
    let (mut ir, mut il) = (vec![0; 3], vec![Link::default(); 2]);
    let (mut dr, mut dl) = (vec![0; 5], vec![]);
    let conn = Connectome::build(2, &w, &[], &mut ir, &mut il, &mut dr, &mut dl).unwrap();
    let models = [Mpr::<f64>::default(); 2];
    let mut x = [[0.1, -2.0]; 2];
    type B = Brain<'static, f64, Mpr<f64>, 2>;
    let mut hist = vec![0.0; B::history_len(&conn)];
    let mut work = vec![[0.0; 2]; B::work_len(2)];
    let mut c = vec![0.0; B::coupling_len(2)];
    let mut noise = [Gaussian::new(1, 1), Gaussian::new(1, 2)];
    let e = Brain::new(
        conn,
        &models,
        1.0,
        [-1.0, 0.0],
        0.1,
        &mut x,
        &mut hist,
        &mut work,
        &mut c,
        &mut noise,
    )
    .unwrap_err();
    assert_eq!(e, BrainError::BadConstant("every noise amplitude"));
    assert!(e.to_string().contains("noise amplitude"));
    let mut w = vec![1.0; 9];
    assert!(normalise(3, &mut w, Normalise::Laplacian).is_ok());
    assert_eq!(w[0], -2.0);
}
