//! The MLP mean field as a model: evaluation against an independent hand-written forward pass,
//! the parameter table, construction checks, flat-vector order and f32 against f64.

use nmm_core::integrate::OdeMethod;
use nmm_core::mlp::{Dense, FormatError, Mlp, MlpMeanField, MlpScalar, Normalisation};
use nmm_core::models::{Model, ParamError};

/// SplitMix64: a small, seeded generator for test data.
struct Sm(u64);
impl Sm {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn random_net(rng: &mut Sm, wmax: f64) -> Mlp<f64> {
    Mlp::<f64>::splat(0.0).map(|_| rng.uniform(-wmax, wmax))
}

/// Normalisation of the size a trainer on the REFERENCE section 2 grid would choose.
fn realistic_norm() -> Normalisation<f64> {
    Normalisation {
        in_mean: [0.5, -1.0, -5.0, 0.8, 10.0, 0.0],
        in_scale: [0.5, 1.5, 3.0, 0.12, 6.0, 1.0],
        out_scale: [2.0, 20.0],
        out_offset: [0.1, -1.0],
    }
}

/// The forward pass written out with loops and std's tanh, independent of the crate's code.
fn reference_deriv(net: &Mlp<f64>, norm: &Normalisation<f64>, u: [f64; 6]) -> [f64; 2] {
    let z: Vec<f64> = (0..6)
        .map(|k| (u[k] - norm.in_mean[k]) / norm.in_scale[k])
        .collect();
    let layer = |w: &[&[f64]], b: &[f64], x: &[f64], act: bool| -> Vec<f64> {
        w.iter()
            .zip(b)
            .map(|(row, b)| {
                let s: f64 = row.iter().zip(x).map(|(w, x)| w * x).sum::<f64>() + b;
                if act { s.tanh() } else { s }
            })
            .collect()
    };
    let rows1: Vec<&[f64]> = net.l1.w.iter().map(|r| &r[..]).collect();
    let rows2: Vec<&[f64]> = net.l2.w.iter().map(|r| &r[..]).collect();
    let rows3: Vec<&[f64]> = net.l3.w.iter().map(|r| &r[..]).collect();
    let h1 = layer(&rows1, &net.l1.b, &z, true);
    let h2 = layer(&rows2, &net.l2.b, &h1, true);
    let y = layer(&rows3, &net.l3.b, &h2, false);
    [
        y[0] * norm.out_scale[0] + norm.out_offset[0],
        y[1] * norm.out_scale[1] + norm.out_offset[1],
    ]
}

#[test]
fn deriv_matches_hand_written_forward_pass() {
    let mut rng = Sm(1);
    for case in 0..200 {
        let net = random_net(&mut rng, 2.0);
        let norm = realistic_norm();
        let mut m = MlpMeanField::new(net, norm).unwrap();
        let (eta, p, j) = (
            rng.uniform(-10.0, 0.0),
            rng.uniform(0.6, 1.0),
            rng.uniform(0.0, 20.0),
        );
        m.set("eta", eta).unwrap();
        m.set("p", p).unwrap();
        m.set("J", j).unwrap();
        let (r, v, i) = (
            rng.uniform(0.0, 3.0),
            rng.uniform(-4.0, 2.0),
            rng.uniform(-2.0, 2.0),
        );
        let got = m.deriv(&[r, v], i);
        let want = reference_deriv(&net, &norm, [r, v, eta, p, j, i]);
        for k in 0..2 {
            let err = (got[k] - want[k]).abs();
            assert!(
                err <= 1e-12 * (1.0 + want[k].abs()),
                "case {case}, output {k}: got {}, want {}, err {err}",
                got[k],
                want[k]
            );
        }
        assert_eq!(got, m.deriv_with(&[r, v], eta, p, j, i));
    }
}

#[test]
fn model_table_names_units_and_ranges() {
    type M = MlpMeanField<f64>;
    assert_eq!(<M as Model<f64, 2>>::NAME, "mlp");
    assert_eq!(<M as Model<f64, 2>>::STATE, ["r", "v"]);
    assert_eq!(<M as Model<f64, 2>>::COUPLING_VAR, 0);
    let specs = <M as Model<f64, 2>>::PARAMS;
    let names: Vec<_> = specs.iter().map(|p| p.name).collect();
    assert_eq!(names, ["eta", "p", "J"]);
    assert!(specs.iter().all(|p| p.unit == "1"));
    let range = |n: &str| {
        let p = specs.iter().find(|p| p.name == n).unwrap();
        (p.min, p.max)
    };
    assert_eq!(range("eta"), (-20.0, 20.0));
    assert_eq!(range("p"), (f64::MIN_POSITIVE, 1.0));
    assert_eq!(range("J"), (0.0, 40.0));

    let mut m = M::new(Mlp::splat(0.1), Normalisation::identity()).unwrap();
    m.validate().unwrap();
    assert_eq!(m.get("J"), Some(15.0));
    assert_eq!(m.get("eta"), Some(-5.0));
    assert_eq!(m.get("p"), Some(1.0));
    assert_eq!(m.get("tau"), None);
    assert!(matches!(
        m.set("p", 0.0),
        Err(ParamError::OutOfRange { name: "p", .. })
    ));
    assert!(matches!(
        m.set("J", -1.0),
        Err(ParamError::OutOfRange { .. })
    ));
    assert!(matches!(
        m.set("eta", f64::NAN),
        Err(ParamError::NotFinite { .. })
    ));
    assert_eq!(m.set("delta", 1.0), Err(ParamError::Unknown));
    m.set("p", 0.7).unwrap();
    assert_eq!(m.params.p, 0.7);
    assert_eq!(m.initial_state(), [0.1, -2.0]);
    assert_eq!(m.diffusion(), [0.0, 0.0]);
    assert_eq!(m.project([-0.5, -3.0]), [0.0, -3.0]);
}

#[test]
fn new_names_the_bad_value() {
    let norm = Normalisation::<f64>::identity();
    let mut net = Mlp::<f64>::splat(0.1);
    net.l2.w[1][1] = f64::NAN; // flat index 1 * 6 + 1 = 7 within l2.w
    assert_eq!(
        MlpMeanField::new(net, norm),
        Err(FormatError::NonFinite {
            array: "l2.w",
            index: 7
        })
    );
    let mut net = Mlp::<f64>::splat(0.1);
    net.l3.b[1] = f64::INFINITY;
    assert_eq!(
        MlpMeanField::new(net, norm),
        Err(FormatError::NonFinite {
            array: "l3.b",
            index: 1
        })
    );
    let mut bad = norm;
    bad.out_offset[0] = f64::NEG_INFINITY;
    assert_eq!(
        MlpMeanField::new(Mlp::<_>::splat(0.1), bad),
        Err(FormatError::NonFinite {
            array: "out_offset",
            index: 0
        })
    );
    let mut bad = norm;
    bad.in_scale[5] = -0.0;
    assert_eq!(
        MlpMeanField::new(Mlp::<_>::splat(0.1), bad),
        Err(FormatError::ZeroScale { index: 5 })
    );
    let msg = FormatError::NonFinite {
        array: "l2.w",
        index: 7,
    }
    .to_string();
    assert_eq!(msg, "l2.w[7] is not finite");
}

#[test]
fn flat_order_is_layer_by_layer_weights_then_bias() {
    let flat: Vec<f64> = (0..Mlp::<f64>::N_WEIGHTS).map(|k| k as f64).collect();
    let net = Mlp::<f64>::from_flat(&flat).unwrap();
    assert_eq!(net.l1.w[5][5], 35.0);
    assert_eq!(net.l1.b, [36.0, 37.0, 38.0, 39.0, 40.0, 41.0]);
    assert_eq!(net.l2.w[0][0], 42.0);
    assert_eq!(net.l2.b[0], 78.0);
    assert_eq!(net.l3.w[1][5], 95.0);
    assert_eq!(net.l3.b, [96.0, 97.0]);
    assert!(net.iter().eq(flat.iter().copied()));
    assert!(Mlp::<f64>::from_flat(&flat[1..]).is_none());

    let mut net2 = net;
    for w in net2.iter_mut() {
        *w *= 2.0;
    }
    assert!(net2.iter().zip(net.iter()).all(|(a, b)| a == 2.0 * b));

    // Other shapes: 3 -> 4 -> 5 -> 1.
    type Small = Mlp<f32, 3, 4, 5, 1>;
    assert_eq!(Small::N_WEIGHTS, 4 * 4 + 5 * 5 + 6);
    let s = Small::splat(1.0);
    assert_eq!(s.iter().count(), Small::N_WEIGHTS);
}

#[test]
fn dense_layer_and_scalar_trait() {
    let l = Dense {
        w: [[1.0_f32, 2.0], [-1.0, 0.5]],
        b: [0.25, -0.25],
    };
    assert_eq!(l.forward(&[1.0, 1.0]), [3.25, -0.75]);
    assert_eq!(l.map(f64::from).forward(&[2.0, -1.0]), [0.25, -2.75]);
    assert_eq!(<f64 as MlpScalar>::madd(3.0, 4.0, 1.0), 13.0);
    assert_eq!(<f32 as MlpScalar>::from_f32(1.5).to_f32(), 1.5);
    assert_eq!(<f64 as MlpScalar>::tanh(0.0), 0.0);
}

#[test]
fn f32_model_tracks_f64_model() {
    let mut rng = Sm(2);
    // libm f32 keeps ~1e-6 of the output scale; micromath's tanh (fast-math, ~5e-3 absolute)
    // passes through two layers whose gains reach about 6 for these weights (measured 4e-3).
    let tol = if cfg!(feature = "fast-math") {
        2e-2
    } else {
        2e-5
    };
    let mut worst = 0.0_f64;
    for _ in 0..100 {
        let net = random_net(&mut rng, 2.0);
        let norm = realistic_norm();
        let m64 = MlpMeanField::new(net, norm).unwrap();
        let m32 = MlpMeanField::new(net.map(|w| w as f32), norm.map(|w| w as f32)).unwrap();
        for _ in 0..20 {
            let (r, v, i) = (
                rng.uniform(0.0, 3.0),
                rng.uniform(-4.0, 2.0),
                rng.uniform(-2.0, 2.0),
            );
            let d64 = m64.deriv(&[r, v], i);
            let d32 = m32.deriv(&[r as f32, v as f32], i as f32);
            for k in 0..2 {
                // Relative to the output scale (20 for dv/dt).
                let err = (d32[k] as f64 - d64[k]).abs() / norm.out_scale[k];
                worst = worst.max(err);
                assert!(err < tol, "output {k}: f32 {} vs f64 {}", d32[k], d64[k]);
            }
        }
    }
    eprintln!("f32 vs f64 worst error / out_scale: {worst:.2e}");
}

#[test]
fn other_hidden_sizes_and_integration() {
    // A 6 -> 4 -> 8 -> 2 network whose output relaxes (r, v) towards (1, -1).
    let mut net = Mlp::<f64, 6, 4, 8, 2>::splat(0.0);
    net.l1.w[0][0] = 0.5; // h1_0 = tanh(0.5 (r - 1))
    net.l1.w[1][1] = 0.5; // h1_1 = tanh(0.5 (v + 1))
    net.l2.w[0][0] = 1.0;
    net.l2.w[1][1] = 1.0;
    net.l3.w[0][0] = -1.0;
    net.l3.w[1][1] = -1.0;
    let mut norm = Normalisation::identity();
    norm.in_mean[0] = 1.0;
    norm.in_mean[1] = -1.0;
    let m = MlpMeanField::<f64, 4, 8>::new(net, norm).unwrap();
    let mut x = m.initial_state();
    for _ in 0..2000 {
        x = OdeMethod::Heun.step(&mut |_t, x: &[f64; 2]| m.deriv(x, 0.0), 0.0, &x, 0.05);
    }
    assert!(
        (x[0] - 1.0).abs() < 1e-3 && (x[1] + 1.0).abs() < 1e-3,
        "x = {x:?}"
    );
}
