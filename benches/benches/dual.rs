//! The cost of forward-mode gradients: a whole-brain reduced Wong-Wang run with BOLD (66
//! regions of the built-in connectome, delays at 3 mm/ms, noise, dt = 0.1 ms, BOLD every 5 ms)
//! in `f64`, and in dual numbers with 1 and 4 tangents (the gradient in 1 or 4 parameters,
//! e.g. G, g_EE, g_EI, g_IE of a fit).
//!
//! A second group times one window of `nmm fit` itself (`nmm::fit`: the 66-region TVB
//! connectome, griffiths2022 weights, dt = 1 ms, BOLD every 5 ms, 20 TRs of 750 ms = 15 s, the
//! FC and the loss): the plain BOLD of the window (`simulate_bold`, f64) against the window's
//! loss with its gradient in G, g_EE, g_EI and g_IE (`window_loss`, 4 tangents), and with its
//! gradient in G and every link of the coupling matrix (`window_loss_reverse`, reverse mode).
//!
//! Run: `cargo bench -p nmm-benches --bench dual`. Each iteration simulates 200 ms (2000
//! steps, 40 BOLD steps). Finite differences need 5 runs for 4 parameters (central: 8), so
//! forward mode pays off while `dual-4` costs less than 5 times `f64`.

use criterion::{Criterion, criterion_group, criterion_main};
use nmm_core::bold::{BoldMonitor, BoldParams};
use nmm_core::brain::{Brain, Connectome, Link, count_links};
use nmm_core::connectome::{delays_in_steps, synthetic};
use nmm_core::dual::Dual;
use nmm_core::models::Rww;
use nmm_core::real::Real;
use nmm_core::rng::Gaussian;
use std::hint::black_box;

const N: usize = 66;
const DT: f64 = 0.1;
const STEPS: usize = 2000;
const BOLD_EVERY: usize = 50;

/// 2000 steps of the network with its BOLD; returns the last BOLD sample of region 0.
fn run<T: Real>(w: &[f64], delays: &[u32], g: T) -> T {
    let w: Vec<T> = w.iter().map(|&x| T::from_f64(x)).collect();
    let c = count_links(N, &w, delays).expect("links");
    let empty = Link {
        w: T::ZERO,
        at: 0,
        lag: 0,
    };
    let (mut ir, mut il) = (vec![0; N + 1], vec![empty; c.instant]);
    let (mut dr, mut dl) = (vec![0; 2 * N + 1], vec![empty; c.delayed]);
    let conn = Connectome::build(N, &w, delays, &mut ir, &mut il, &mut dr, &mut dl).expect("conn");
    let models = vec![Rww::<T>::default(); N];
    let mut hist = vec![T::ZERO; Brain::<T, Rww<T>, 2>::history_len(&conn)];
    let mut work = vec![[T::ZERO; 2]; Brain::<T, Rww<T>, 2>::work_len(N)];
    let mut coupling = vec![T::ZERO; Brain::<T, Rww<T>, 2>::coupling_len(N)];
    let mut noise: Vec<_> = (0..N).map(|i| Gaussian::new(1, i as u64 + 1)).collect();
    let mut x = vec![[T::from_f64(0.2), T::from_f64(0.1)]; N];
    let mut b = Brain::new(
        conn,
        &models,
        g,
        [T::from_f64(0.01); 2],
        T::from_f64(DT),
        &mut x,
        &mut hist,
        &mut work,
        &mut coupling,
        &mut noise,
    )
    .expect("brain");
    let mut bold_state = vec![[T::ZERO; 4]; N];
    let mut mon = BoldMonitor::new(
        BoldParams::default(),
        &mut bold_state,
        DT * BOLD_EVERY as f64 / 1000.0,
        DT * BOLD_EVERY as f64 / 1000.0,
    )
    .expect("monitor");
    let mut z = vec![T::ZERO; N];
    let mut y = vec![T::ZERO; N];
    for k in 0..STEPS {
        b.step();
        for (zi, xi) in z.iter_mut().zip(b.state()) {
            *zi += xi[0];
        }
        if (k + 1) % BOLD_EVERY == 0 {
            let inv = T::from_f64(1.0 / BOLD_EVERY as f64);
            z.iter_mut().for_each(|v| *v *= inv);
            mon.step(&z, &mut y);
            z.fill(T::ZERO);
        }
    }
    y[0]
}

fn bench(c: &mut Criterion) {
    let (mut w, mut len, mut centres) = (vec![0.0; N * N], vec![0.0; N * N], vec![[0.0; 3]; N]);
    synthetic(N, &mut w, &mut len, &mut centres).expect("connectome");
    let mut delays = vec![0u32; N * N];
    delays_in_steps(N, &len, 3.0, DT, &mut delays).expect("delays");
    let mut g = c.benchmark_group("gradient/rww-66-regions-200ms");
    g.sample_size(20);
    g.bench_function("f64", |b| b.iter(|| run(&w, &delays, black_box(0.5))));
    g.bench_function("dual-1", |b| {
        b.iter(|| run(&w, &delays, black_box(Dual::<f64, 1>::new(0.5, [1.0]))))
    });
    g.bench_function("dual-4", |b| {
        b.iter(|| {
            run(
                &w,
                &delays,
                black_box(Dual::<f64, 4>::new(0.5, [1.0, 0.0, 0.0, 0.0])),
            )
        })
    });
    g.finish();
    fit_window(c);
}

fn fit_window(c: &mut Criterion) {
    let mut cfg = nmm::fit::FitConfig::default();
    cfg.connectome.path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/tvb/connectivity_66.zip"
    )
    .into();
    cfg.transient_ms = 0.0;
    cfg.params.insert("G".into(), 4.0);
    let s = nmm::fit::Setup::new(cfg).expect("setup");
    let bold = nmm::fit::simulate_bold(&s, &s.values, 40).expect("bold");
    let emp = nmm::fit::Target::from_bold(&bold, 20).expect("target");
    let mut g = c.benchmark_group("fit/rww-66-tvb-window-15s");
    g.sample_size(10);
    g.bench_function("f64-bold", |b| {
        b.iter(|| nmm::fit::simulate_bold(&s, black_box(&s.values), 20).expect("bold"))
    });
    g.bench_function("dual-4-loss-and-gradient", |b| {
        b.iter(|| nmm::fit::window_loss(&s, black_box(&s.values), &s.weights, &emp).expect("loss"))
    });
    g.bench_function("reverse-loss-and-link-gradient", |b| {
        b.iter(|| {
            nmm::fit::window_loss_reverse(&s, black_box(&s.values), &s.weights, &emp).expect("loss")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
