//! One integration step of each model with each integrator, in f32 and f64.
//!
//! Run: `cargo bench -p nmm-benches --bench steps`. Each iteration performs one step from a
//! state on the model's attractor; `black_box` keeps the compiler from folding the step away.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use nmm_core::integrate::{OdeMethod, SdeMethod};
use nmm_core::models::{ChenCampbell, Model, Mpr, Rww, RwwGriffiths};
use nmm_core::real::Real;
use std::hint::black_box;

fn bench_model<T: Real, M: Model<T, N> + Default, const N: usize>(
    c: &mut Criterion,
    ty: &str,
    dt: f64,
) {
    let m = M::default();
    let x0 = m.initial_state();
    let input = T::from_f64(0.1);
    let dt = T::from_f64(dt);
    let mut g = c.benchmark_group(format!("step/{}/{ty}", M::NAME));
    for method in OdeMethod::ALL {
        g.bench_function(BenchmarkId::from_parameter(method.name()), |b| {
            let mut x = x0;
            b.iter(|| {
                x = method.step(
                    &mut |_t, x: &[T; N]| m.deriv(x, black_box(input)),
                    T::ZERO,
                    black_box(&x),
                    dt,
                );
                // Keep the state on the attractor without a branch in the measured path for
                // finite input: restart when it leaves finite values (never for these dt).
                if !x[0].is_finite() {
                    x = x0;
                }
                x
            })
        });
    }
    let sigma = [T::from_f64(0.01); N];
    let z = [T::from_f64(0.3); N];
    g.bench_function(BenchmarkId::from_parameter("stochastic-heun"), |b| {
        let mut x = x0;
        b.iter(|| {
            x = SdeMethod::Heun.step(
                &mut |_t, x: &[T; N]| m.deriv(x, input),
                T::ZERO,
                black_box(&x),
                dt,
                &sigma,
                black_box(&z),
            );
            x
        })
    });
    g.finish();
}

fn steps(c: &mut Criterion) {
    bench_model::<f64, Mpr<f64>, 2>(c, "f64", 0.01);
    bench_model::<f32, Mpr<f32>, 2>(c, "f32", 0.01);
    bench_model::<f64, ChenCampbell<f64>, 4>(c, "f64", 0.01);
    bench_model::<f32, ChenCampbell<f32>, 4>(c, "f32", 0.01);
    bench_model::<f64, Rww<f64>, 2>(c, "f64", 0.1);
    bench_model::<f32, Rww<f32>, 2>(c, "f32", 0.1);
    bench_model::<f64, RwwGriffiths<f64>, 2>(c, "f64", 0.1);
    bench_model::<f32, RwwGriffiths<f32>, 2>(c, "f32", 0.1);
}

criterion_group! {
    name = benches;
    // Short runs: a step takes nanoseconds, so 1 s of measurement per case is plenty.
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = steps
}
criterion_main!(benches);
