//! The real-time tick (`nmm_core::realtime::RealTime::tick`) of each model in f32, the native
//! baseline for the WASM module's speed (`node wasm/js/bench.mjs` times the same ticks through
//! the module's ABI) and for the firmware's instruction counts.
//!
//! Run: `cargo bench -p nmm-benches --bench realtime`. One iteration is 1,000 ticks with the
//! golden scenarios' dt and a constant input, no noise, no controller.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nmm_core::mlp::MlpMeanField;
use nmm_core::realtime::Scenario;
use std::hint::black_box;

fn ticks(c: &mut Criterion) {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/mlp_p06_1.nmmw"
    ))
    .expect("models/mlp_p06_1.nmmw");
    let mlp = MlpMeanField::<f32>::from_bytes(&bytes).expect("weights");
    let mut g = c.benchmark_group("realtime-tick-x1000");
    g.throughput(Throughput::Elements(1000));
    for sc in &Scenario::ALL[..3] {
        g.bench_function(sc.name, |b| {
            let mut rt = sc.build(&mlp);
            b.iter(|| {
                for _ in 0..1000 {
                    black_box(rt.tick(black_box(0.5)));
                }
                if !rt.is_finite() {
                    rt = sc.build(&mlp);
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, ticks);
criterion_main!(benches);
