//! Spiking-network throughput and memory (issue workload), printed as figures.
//!
//! Run: `cargo bench -p nmm-benches --bench network`.
//!
//! Workload: QIF, N = 10^4, tau = 10 ms, Lorentzian quantiles (eta_bar = -5, Delta = 1), I = 3
//! (a busy state, ~133 Hz), Erdos-Renyi p = 0.1 with weight J/(pN), J = 15, each spike added to
//! the non-refractory targets tau/V_peak after the crossing, V_peak = 100, Euler, 1 s at
//! dt = 0.01 ms. Timed on one and on two threads (best of three, connectivity build included).
//! Memory: bytes per neuron and per synapse at N = 10^4, p = 0.6, stored and procedural.
//!
//! Peer: `python3 benches/peers/brian2_qif.py` runs the same network in Brian2 (C++ standalone,
//! one thread) when brian2 is installed and prints the wall-time ratio.

use nmm::network::{Common, Connectivity, Heterogeneity, QifParams, Synapse, run_qif};
use std::time::Instant;

fn workload(threads: usize, t_end: f64, p: f64, procedural: bool) -> Common {
    Common {
        n: 10_000,
        dt: 0.01,
        t0: 0.0,
        t_end,
        bin: 1.0,
        conn: Connectivity::Random { p, procedural },
        normalise: true,
        hetero: Heterogeneity::Quantiles,
        stim: "const:3".parse().expect("valid"),
        seed: 1,
        stim_seed: 1,
        record: 0,
        threads,
        init: (0.0081, -1.96),
    }
}

const QIF: QifParams = QifParams {
    tau: 10.0,
    eta_bar: -5.0,
    delta: 1.0,
    j: 15.0,
    v_peak: 100.0,
    v_reset: -100.0,
    synapse: Synapse::Instant,
};

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run a short smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let t_end = if full { 1000.0 } else { 10.0 };
    println!(
        "QIF workload: N = 10^4, p = 0.1, J/(pN), tau = 10 ms, I = 3, dt = 0.01 ms, {t_end} ms simulated"
    );
    for threads in [1, 2] {
        let c = workload(threads, t_end, 0.1, false);
        let mut best = f64::INFINITY;
        let mut last = None;
        for _ in 0..if full { 3 } else { 1 } {
            let t = Instant::now();
            let out = run_qif(&c, &QIF, &|_, _| {}).expect("runs");
            best = best.min(t.elapsed().as_secs_f64());
            last = Some(out);
        }
        let out = last.expect("ran");
        let updates = c.n as f64 * (t_end / c.dt);
        println!(
            "  {threads} thread(s): {best:.3} s; {:.3e} neuron updates/s, {:.3e} synaptic events/s; mean rate {:.1} Hz",
            updates / best,
            out.events as f64 / best,
            out.spikes as f64 / c.n as f64 / (t_end / 1000.0)
        );
    }
    println!("Memory at N = 10^4, p = 0.6:");
    for procedural in [false, true] {
        let c = workload(0, 0.1, 0.6, procedural);
        let out = run_qif(&c, &QIF, &|_, _| {}).expect("runs");
        println!(
            "  {}: connectivity {:.1} MB = {:.3} bytes/synapse ({} synapses), neuron state {:.1} bytes/neuron",
            if procedural { "procedural" } else { "stored" },
            out.conn_bytes as f64 / 1e6,
            out.conn_bytes as f64 / out.synapses as f64,
            out.synapses,
            out.state_bytes as f64 / c.n as f64
        );
    }
}
