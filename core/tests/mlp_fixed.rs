//! Fixed-point MLP: the tanh approximation against libm on every representable input in
//! [-9, 9], the exact dot product, the forward error bound against f64 for random networks,
//! the fixed-point mean field against the float one, and saturation without panics.

use nmm_core::mlp::fixed_point::tanh;
use nmm_core::mlp::{Fx, Mlp, MlpFixed, MlpMeanField, MlpScalar, Normalisation, TANH_MAX_ERROR};

const U: f64 = 1.0 / 65536.0;

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
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn tanh_error_on_every_input_in_minus_9_to_9() {
    let lim = 9 << 16;
    let mut worst = (0.0_f64, 0.0_f64);
    let mut prev = tanh(Fx::from_bits(-lim - 1));
    for bits in -lim..=lim {
        let x = Fx::from_bits(bits);
        let xf = x.to_num::<f64>();
        let y = tanh(x);
        let err = (y.to_num::<f64>() - libm::tanh(xf)).abs();
        assert!(
            err <= TANH_MAX_ERROR,
            "tanh({xf}) = {} (libm {}), error {err:.3e} > {TANH_MAX_ERROR:.1e}",
            y.to_num::<f64>(),
            libm::tanh(xf)
        );
        assert!(y >= prev, "not monotone at {xf}: {y} < {prev}");
        assert_eq!(tanh(-x), -y, "not odd at {xf}");
        if err > worst.0 {
            worst = (err, xf);
        }
        prev = y;
    }
    eprintln!(
        "fixed tanh: max error {:.3e} at x = {} (bound {TANH_MAX_ERROR:.1e})",
        worst.0, worst.1
    );
    // The stated bound is tight (half an ulp, 2^-17 = 7.63e-6, is the least possible).
    assert!(worst.0 > TANH_MAX_ERROR / 1.05);
}

#[test]
fn tanh_saturates_and_handles_extremes() {
    for &x in &[8.0, 9.0, 100.0, 32767.0] {
        assert_eq!(tanh(Fx::from_num(x)), Fx::ONE);
        assert_eq!(tanh(Fx::from_num(-x)), -Fx::ONE);
    }
    assert_eq!(tanh(Fx::MAX), Fx::ONE);
    assert_eq!(tanh(Fx::MIN), -Fx::ONE);
    assert_eq!(tanh(Fx::ZERO), Fx::ZERO);
    assert_eq!(tanh(Fx::DELTA), Fx::DELTA); // tanh(x) = x for the smallest step
}

#[test]
fn fixed_dot_is_exact_then_rounded_to_nearest() {
    let mut rng = Sm(3);
    for _ in 0..20_000 {
        let w: [Fx; 6] = core::array::from_fn(|_| Fx::from_num(rng.uniform(-4.0, 4.0)));
        let x: [Fx; 6] = core::array::from_fn(|_| Fx::from_num(rng.uniform(-8.0, 8.0)));
        let b = Fx::from_num(rng.uniform(-4.0, 4.0));
        let got = Fx::dot(&w, &x, b);
        // Exact value in units of 2^-32.
        let products: i128 = w
            .iter()
            .zip(&x)
            .map(|(w, x)| w.to_bits() as i128 * x.to_bits() as i128)
            .sum();
        let exact = ((b.to_bits() as i128) << 16) + products;
        let diff = ((got.to_bits() as i128) << 16) - exact;
        assert!(
            diff.abs() <= 1 << 15,
            "dot = {got}, exact = {}, off by {diff} / 2^32",
            exact as f64 / 2f64.powi(32)
        );
        assert_eq!(w[0].madd(x[0], b), Fx::dot(&[w[0]], &[x[0]], b));
    }
}

#[test]
fn scalar_conversions() {
    assert_eq!(<Fx as MlpScalar>::from_f32(f32::NAN), Fx::ZERO);
    assert_eq!(<Fx as MlpScalar>::from_f32(f32::INFINITY), Fx::MAX);
    assert_eq!(<Fx as MlpScalar>::from_f32(-1e9), Fx::MIN);
    assert_eq!(<Fx as MlpScalar>::from_f32(0.75).to_f32(), 0.75);
    assert_eq!(<Fx as MlpScalar>::ONE, Fx::ONE);
}

/// Random networks with |w| <= 2 and inputs in the normalised range [-3, 3]: the fixed-point
/// forward pass stays within `Mlp::error_bound` of the f64 forward pass of the unrounded
/// weights, and that bound is below its worst case for this weight and input size (0.038).
#[test]
fn fixed_mlp_within_error_bound_of_f64() {
    let mut rng = Sm(4);
    let (mut worst_err, mut worst_ratio, mut max_bound) = (0.0_f64, 0.0_f64, 0.0_f64);
    for net_k in 0..300 {
        let net64 = Mlp::<f64>::splat(0.0).map(|_| rng.uniform(-2.0, 2.0));
        let netfx = net64.map(Fx::from_num);
        let bound = netfx.error_bound(3.0, 0.5 * U);
        assert!(bound < 0.038, "net {net_k}: bound {bound}");
        max_bound = max_bound.max(bound);
        for _ in 0..100 {
            let x: [f64; 6] = core::array::from_fn(|_| rng.uniform(-3.0, 3.0));
            let y64 = net64.forward(&x);
            let yfx = netfx.forward(&x.map(Fx::from_num));
            for k in 0..2 {
                let err = (yfx[k].to_num::<f64>() - y64[k]).abs();
                assert!(
                    err <= bound,
                    "net {net_k}, x = {x:?}, output {k}: fixed {} f64 {} err {err:.3e} > bound {bound:.3e}",
                    yfx[k],
                    y64[k]
                );
                worst_err = worst_err.max(err);
                worst_ratio = worst_ratio.max(err / bound);
            }
        }
    }
    eprintln!(
        "fixed MLP vs f64: max error {worst_err:.3e}, max bound {max_bound:.3e}, \
         max error/bound {worst_ratio:.3}"
    );
    // In practice the error is a few hundred ulp at most (2^-16 = 1.5e-5).
    assert!(worst_err < 5e-3);
}

/// The fixed-point mean field against the float one with the same f32 weights, on the
/// training ranges of REFERENCE section 2, within a bound derived from `Mlp::error_bound`:
/// normalised-input error `(|1/s| + 2^-25) u/2 + |u - m| 2^-25 + u/2` (mean rounding, the
/// I8F24 reciprocal, one rounding), then `|out_scale| E + (|y| + E) u/2 + u` for the
/// output multiply-add (scale, offset and final rounding).
#[test]
fn fixed_mean_field_within_bound_of_float() {
    let mut rng = Sm(5);
    let norm = Normalisation::<f32> {
        in_mean: [0.5, -1.0, -5.0, 0.8, 10.0, 0.0],
        in_scale: [0.5, 1.5, 3.0, 0.12, 6.0, 1.0],
        out_scale: [2.0, 20.0],
        out_offset: [0.1, -1.0],
    };
    let mut worst = [0.0_f64; 2];
    for _ in 0..100 {
        let net32 = Mlp::<f32>::splat(0.0).map(|_| rng.uniform(-2.0, 2.0) as f32);
        let m32 = MlpMeanField::new(net32, norm).unwrap();
        let reference = MlpMeanField::new(net32.map(f64::from), norm.map(f64::from)).unwrap();
        let fx = MlpFixed::from_model(&m32).unwrap();
        for _ in 0..100 {
            // Physical inputs, made representable so both models see the same values.
            let u: [Fx; 6] = [
                rng.uniform(0.0, 3.0),
                rng.uniform(-4.0, 2.0),
                rng.uniform(-10.0, 0.0),
                rng.uniform(0.6, 1.0),
                rng.uniform(0.0, 20.0),
                rng.uniform(-2.0, 2.0),
            ]
            .map(Fx::from_num);
            let uf = u.map(|v| v.to_num::<f64>());
            let got = fx.deriv_with(&[u[0], u[1]], u[2], u[3], u[4], u[5]);
            let want = reference.deriv_with(&[uf[0], uf[1]], uf[2], uf[3], uf[4], uf[5]);

            let n = reference.norm();
            let mut x_max = 0.0_f64;
            let mut x_err = 0.0_f64;
            for ((u, m), s) in uf.iter().zip(&n.in_mean).zip(&n.in_scale) {
                let d = u - m;
                let inv = 1.0 / s;
                x_max = x_max.max((d * inv).abs());
                let e = (inv.abs() + 2f64.powi(-25)) * 0.5 * U + d.abs() * 2f64.powi(-25) + 0.5 * U;
                x_err = x_err.max(e);
            }
            let e_net = fx.net().error_bound(x_max, x_err);
            let y = reference
                .net()
                .forward(&n.normalise(&[uf[0], uf[1], uf[2], uf[3], uf[4], uf[5]]));
            for k in 0..2 {
                let bound = n.out_scale[k].abs() * e_net + (y[k].abs() + e_net) * 0.5 * U + U;
                let err = (got[k].to_num::<f64>() - want[k]).abs();
                assert!(
                    err <= bound,
                    "u = {uf:?}, output {k}: fixed {} float {} err {err:.3e} > bound {bound:.3e}",
                    got[k],
                    want[k]
                );
                worst[k] = worst[k].max(err);
            }
        }
    }
    eprintln!(
        "fixed mean field vs float: max |error| dr/dt {:.3e}, dv/dt {:.3e}",
        worst[0], worst[1]
    );
}

#[test]
fn fixed_mean_field_uses_its_parameters_and_initial_state() {
    let mut m = MlpMeanField::new(Mlp::<f64>::splat(0.3), Normalisation::identity()).unwrap();
    m.params.eta = -4.0;
    m.params.j = 12.0;
    m.params.p = 0.8;
    let fx = MlpFixed::from_model(&m).unwrap();
    assert_eq!(fx.eta, Fx::from_num(-4));
    assert_eq!(fx.j, Fx::from_num(12));
    assert_eq!(fx.p, Fx::from_num(0.8));
    let x = fx.initial_state();
    assert!((x[0].to_num::<f64>() - 0.1).abs() < U && x[1] == Fx::from_num(-2));
    assert_eq!(
        fx.deriv(&x, Fx::ONE),
        fx.deriv_with(&x, fx.eta, fx.p, fx.j, Fx::ONE)
    );
}

#[test]
fn fixed_saturates_without_panicking() {
    // Huge weights and inputs: every dot product and multiply-add saturates.
    let net = Mlp::<Fx>::splat(Fx::MAX);
    for x in [[Fx::MAX; 6], [Fx::MIN; 6], [Fx::ZERO; 6]] {
        let y = net.forward(&x);
        assert!(
            y.iter()
                .all(|v| *v == Fx::MAX || *v == Fx::MIN || *v > Fx::ZERO)
        );
    }
    let mut norm = Normalisation::<f32>::identity();
    norm.out_scale = [30000.0, -30000.0];
    norm.in_scale = [1.0 / 127.0; 6];
    let m = MlpMeanField::new(Mlp::<_>::splat(30000.0f32), norm).unwrap();
    let fx = MlpFixed::from_model(&m).unwrap();
    for s in [Fx::MAX, Fx::MIN, Fx::ZERO] {
        let d = fx.deriv_with(&[s, s.saturating_neg()], s, s, s, s);
        assert!(d[0] == Fx::MAX || d[0] == Fx::MIN, "{d:?}");
    }
}

#[test]
fn conversion_names_values_out_of_range() {
    let mut net = Mlp::<f64>::splat(0.1);
    net.l2.b[3] = 40000.0;
    let m = MlpMeanField::new(net, Normalisation::identity()).unwrap();
    let e = MlpFixed::from_model(&m).unwrap_err();
    assert_eq!((e.array, e.index, e.value), ("l2.b", 3, 40000.0));
    assert!(e.to_string().contains("l2.b[3] = 40000"), "{e}");

    let mut norm = Normalisation::<f64>::identity();
    norm.out_offset[1] = -1e6;
    let m = MlpMeanField::new(Mlp::<_>::splat(0.1), norm).unwrap();
    assert_eq!(MlpFixed::from_model(&m).unwrap_err().array, "out_offset");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any representable weights, normalisation, state, parameters and input: the fixed-point
    /// mean field never panics (overflow checks are on in test builds); it saturates.
    #[test]
    fn fixed_deriv_never_panics(
        w in proptest::collection::vec(proptest::prelude::any::<i32>(), 98),
        n in proptest::collection::vec(proptest::prelude::any::<i32>(), 16),
        args in proptest::array::uniform6(proptest::prelude::any::<i32>()),
    ) {
        let fx = |b: i32| b as f64 / 65536.0;
        let net = Mlp::<f64>::from_flat(&w.iter().map(|&b| fx(b)).collect::<Vec<_>>()).unwrap();
        let v: Vec<f64> = n.iter().map(|&b| fx(b)).collect();
        // Input scales with |1/s| < 128, as the I8F24 reciprocal needs.
        let scale = |x: f64| if x.abs() < 0.01 { 0.01f64.copysign(x) } else { x };
        let norm = Normalisation {
            in_mean: v[0..6].try_into().unwrap(),
            in_scale: <[f64; 6]>::try_from(&v[6..12]).unwrap().map(scale),
            out_scale: v[12..14].try_into().unwrap(),
            out_offset: v[14..16].try_into().unwrap(),
        };
        let m = MlpMeanField::new(net, norm).unwrap();
        let f = MlpFixed::from_model(&m).unwrap();
        let a = args.map(Fx::from_bits);
        let _ = f.deriv_with(&[a[0], a[1]], a[2], a[3], a[4], a[5]);
    }
}
