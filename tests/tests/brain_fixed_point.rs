//! A noise-free RWW network on a real connectome (TVB's 66 regions, Hagmann et al. 2008, as
//! used by Deco 2014) settles at the fixed point that core's Newton solver finds for the whole
//! coupled 132-variable system, with and without conduction delays.

use nmm::brain::{BoldCfg, Config, ConnectomeCfg, FcCfg, Prepared, run};
use nmm_core::Model;
use nmm_core::equilibria::newton;
use nmm_core::integrate::OdeMethod;
use nmm_core::models::Rww;
use std::path::Path;

const N: usize = 66;
const G: f64 = 1.5;

fn connectome_66() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/tvb/connectivity_66.zip");
    assert!(
        p.exists(),
        "test data missing: {} (the TVB connectomes of ../shared/data/tvb are required)",
        p.display()
    );
    p.to_string_lossy().into_owned()
}

fn simulate(delays: bool) -> (Prepared, Vec<[f64; 2]>) {
    let cfg = Config {
        model: "rww".into(),
        duration_ms: 20_000.0,
        dt_ms: Some(0.1),
        coupling: G,
        noise: Some(vec![0.0, 0.0]),
        record_every_ms: 100.0,
        // Long enough for FC and FCD (the run refuses shorter ones); only the states are used.
        bold: BoldCfg {
            tr_ms: 1000.0,
            ..BoldCfg::default()
        },
        fc: FcCfg {
            transient_ms: 0.0,
            ..FcCfg::default()
        },
        connectome: ConnectomeCfg {
            path: connectome_66(),
            delays,
            ..ConnectomeCfg::default()
        },
        ..Config::default()
    };
    let p = Prepared::new(cfg).unwrap();
    let out = run(&p, &|_, _| {}).unwrap();
    let (_, states) = out.states.unwrap();
    let last = states[0].nrows() - 1;
    let x = (0..N)
        .map(|i| [states[0][[last, i]], states[1][[last, i]]])
        .collect();
    (p, x)
}

#[test]
fn noise_free_rww_on_a_real_connectome_settles_at_the_newton_fixed_point() {
    // The 132 x 132 Jacobian and its copies live on the stack: give the solver room.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(check)
        .unwrap()
        .join()
        .unwrap();
}

fn check() {
    let (p, x_no_delay) = simulate(false);
    assert_eq!(p.conn.n, N);
    let w = p.weights.clone();
    let m = Rww::<f64> {
        sigma: 0.0,
        ..Rww::default()
    };
    let mut f = |x: &[f64; 2 * N]| -> [f64; 2 * N] {
        let mut d = [0.0; 2 * N];
        for i in 0..N {
            let c: f64 = (0..N).map(|j| w[i * N + j] * x[2 * j]).sum();
            let di = m.deriv(&[x[2 * i], x[2 * i + 1]], G * m.j_n * c);
            d[2 * i] = di[0];
            d[2 * i + 1] = di[1];
        }
        d
    };
    // Newton's start is independent of the network run: the homogeneous point of one node
    // driven by the mean in-strength, reached by a short single-node relaxation.
    let s_mean = w.iter().sum::<f64>() / N as f64;
    let one = |x: &[f64; 2]| m.deriv(x, G * m.j_n * s_mean * x[0]);
    let mut y = [0.1, 0.1];
    for k in 0..20_000 {
        y = OdeMethod::Rk4.step(&mut |_t, x: &[f64; 2]| one(x), k as f64 * 0.1, &y, 0.1);
    }
    let x0: [f64; 2 * N] = core::array::from_fn(|k| y[k % 2]);
    let fp = newton(&mut f, x0, 1e-13, 100).expect("Newton converges");
    println!(
        "Newton: S_E range {:.4}..{:.4}",
        (0..N).map(|i| fp[2 * i]).fold(f64::INFINITY, f64::min),
        (0..N).map(|i| fp[2 * i]).fold(f64::NEG_INFINITY, f64::max)
    );
    // RWW relaxes with time constants of order tau_E = 100 ms (tau_I = 10 ms), so 20 s are
    // hundreds of time constants: what is left is rounding (~1e-15) plus the 1e-13 residual of
    // Newton over the Jacobian's smallest eigenvalue (~1e-2/ms): 1e-9 leaves margin, while a
    // network settling elsewhere (wrong coupling, delays or gain) misses by 1e-3 or more.
    let tol = 1e-9;
    let (_, x_delay) = simulate(true);
    for (name, x) in [("no delays", &x_no_delay), ("delays at 3 mm/ms", &x_delay)] {
        let worst = (0..N)
            .flat_map(|i| (0..2).map(move |k| (i, k)))
            .map(|(i, k)| (x[i][k] - fp[2 * i + k]).abs())
            .fold(0.0f64, f64::max);
        println!("{name}: max |network - Newton| = {worst:e}");
        assert!(
            worst < tol,
            "{name}: network ends {worst:e} from the fixed point (tol {tol:e})"
        );
    }
}
