//! Training and sampling benchmark of neural posterior estimation (issue 17): pairs with 51
//! features and 3 parameters (the paper's feature count and priors), sbi's default MAF
//! (5 transforms, 50 hidden) and training rules, on one thread.
//!
//! Run: `cargo bench -p nmm-benches --bench npe -- [n=10000] [dir=target/npe-bench] [seed=0]
//! [precision=f32|f64] [quick]`.
//! It writes `theta.npy`, `x.npy`, `xo.npy` and `prior.toml` to `dir` (the same data for the
//! peer), trains, and writes `nmm_curve.csv` (epoch, seconds since the start, validation loss)
//! and prints: seconds per epoch, the best validation loss and when it was reached, the median
//! time of one Adam step of 200 pairs, and of 10^4 posterior draws. The peer on the same
//! files: `benches/peers/npe_vs_sbi.sh` runs both and compares the time each takes to reach
//! the same validation loss.
//!
//! The simulator (cheap, so the benchmark times training only): theta uniform on
//! J in [8, 20], eta in [-6, -2.5], p in [0.6, 1]; with u the parameters mapped to [-1, 1],
//! feature k is `tanh(a_k . u + b_k) + c_k u_(k mod 3)^2 + 0.1 eps`, with `a_k`, `b_k`, `c_k`
//! fixed draws (seed 17) and `eps` standard normal.

use ndarray::Array2;
use nmm::infer::{Estimator, Precision, Prior, Settings, standard_normal, train};
use nmm::progress::Silent;
use std::path::PathBuf;
use std::time::Instant;

const FEATURES: usize = 51;
const LO: [f64; 3] = [8.0, -6.0, 0.6];
const HI: [f64; 3] = [20.0, -2.5, 1.0];

fn prior() -> Prior {
    Prior::from_toml_str(
        "[[param]]\nname = \"J\"\nuniform = [8, 20]\n\n[[param]]\nname = \"eta\"\nuniform = [-6, -2.5]\n\n[[param]]\nname = \"p\"\nuniform = [0.6, 1]\n",
    )
    .expect("a valid prior")
}

/// `n` pairs from the seeded simulator (rows of `theta` from stream 1, noise from stream 2).
fn simulate(n: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let mut c = nmm_core::rng::stream(17, 0);
    let a: Vec<[f64; 5]> = (0..FEATURES)
        .map(|_| std::array::from_fn(|_| standard_normal(&mut c)))
        .collect();
    let prior = prior();
    let mut rt = nmm_core::rng::stream(seed, 1);
    let mut rn = nmm_core::rng::stream(seed, 2);
    let mut theta = Array2::zeros((n, 3));
    let mut x = Array2::zeros((n, FEATURES));
    let mut t = [0.0; 3];
    for r in 0..n {
        prior.sample_into(&mut rt, &mut t);
        let u: [f64; 3] = std::array::from_fn(|i| 2.0 * (t[i] - LO[i]) / (HI[i] - LO[i]) - 1.0);
        for (k, ak) in a.iter().enumerate() {
            let z = ak[0] * u[0] + ak[1] * u[1] + ak[2] * u[2] + 0.5 * ak[3];
            x[[r, k]] =
                z.tanh() + 0.5 * ak[4] * u[k % 3] * u[k % 3] + 0.1 * standard_normal(&mut rn);
        }
        for i in 0..3 {
            theta[[r, i]] = t[i];
        }
    }
    (theta, x)
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let arg = |key: &str| {
        std::env::args().find_map(|a| a.strip_prefix(&format!("{key}=")).map(str::to_string))
    };
    let quick = std::env::args().any(|a| a == "quick");
    let n: usize =
        arg("n")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 2000 } else { 10_000 });
    let dir = PathBuf::from(arg("dir").unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/npe-bench").to_string()
    }));
    std::fs::create_dir_all(&dir).expect("creating the benchmark directory");
    let (theta, x) = simulate(n, 1);
    let (theta_o, xo) = simulate(1, 2);
    nmm::io::write_npy_2d(&dir.join("theta.npy"), &theta).expect("theta.npy");
    nmm::io::write_npy_2d(&dir.join("x.npy"), &x).expect("x.npy");
    nmm::io::write_npy_2d(&dir.join("xo.npy"), &xo).expect("xo.npy");
    nmm::io::write_npy_2d(&dir.join("theta_o.npy"), &theta_o).expect("theta_o.npy");
    std::fs::write(dir.join("prior.toml"), prior().to_toml()).expect("prior.toml");

    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a thread pool");
    let estimator = match arg("estimator").as_deref() {
        Some("nsf") => Estimator::Nsf,
        _ => Estimator::Maf,
    };
    let settings = Settings {
        estimator,
        max_epochs: if quick { 5 } else { 100_000 },
        seed: arg("seed").and_then(|v| v.parse().ok()).unwrap_or(0),
        precision: match arg("precision").as_deref() {
            Some("f64") => Precision::F64,
            _ => Precision::F32,
        },
        ..Settings::default()
    };
    let post = one
        .install(|| train(theta.view(), x.view(), &prior(), &settings, &Silent))
        .expect("training");
    let h = &post.history;
    let mut csv = String::from("epoch,seconds,val_loss\n");
    for (e, (t, v)) in h.elapsed.iter().zip(&h.val).enumerate() {
        csv += &format!("{},{t},{v}\n", e + 1);
    }
    std::fs::write(dir.join("nmm_curve.csv"), csv).expect("nmm_curve.csv");
    println!(
        "nmm NPE, {n} pairs x {FEATURES} features, 3 parameters, {} 5 x 50, {:?} steps, one thread: {} epochs in {:.2} s ({:.4} s/epoch); best validation loss {:.4} at epoch {} ({:.2} s)",
        estimator.name().to_uppercase(),
        settings.precision,
        h.val.len(),
        h.seconds,
        h.seconds / h.val.len() as f64,
        h.val[h.best_epoch - 1],
        h.best_epoch,
        h.elapsed[h.best_epoch - 1]
    );

    // Sampling: 10^4 draws at a held-out observation, one thread and all threads.
    let xo: Vec<f64> = xo.row(0).to_vec();
    for (label, threads) in [("one thread", 1), ("all threads", 0)] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        let times: Vec<f64> = (0..7)
            .map(|k| {
                let t0 = Instant::now();
                let s = pool
                    .install(|| post.sample(&xo, 10_000, k))
                    .expect("sampling");
                assert_eq!(s.theta.nrows(), 10_000);
                t0.elapsed().as_secs_f64()
            })
            .collect();
        let (m, lo, hi) = median(times);
        println!(
            "10^4 posterior draws ({label}): median {:.1} ms (min {:.1}, max {:.1}) over 7",
            1e3 * m,
            1e3 * lo,
            1e3 * hi
        );
    }
    println!("data and curve in {}", dir.display());
}
