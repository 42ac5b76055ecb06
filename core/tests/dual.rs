//! Forward-mode dual numbers against analytic derivatives and finite differences: elementary
//! functions, every model's right-hand side (state, input, each parameter), a Heun step, a
//! stochastic Heun step, the Balloon-Windkessel model through the BOLD monitor, and a
//! whole-brain run with delays and noise.
//!
//! Finite differences are central with a step of 1e-6 times the variable's scale (at least
//! 1e-6): the truncation error is about h^2 |f'''| / 6 ~ 1e-13 |f'''| and the rounding error about
//! eps |f| / h ~ 2e-10 |f|; the values compared here have |f| up to about 100 and smooth
//! third derivatives, so both stay below 1e-7, and 1e-6 relative (plus absolute) leaves
//! margin while a wrong chain rule (errors of order 1) fails by orders of magnitude.

use nmm_core::Model;
use nmm_core::bold::{BoldMonitor, BoldParams, BoldPreset};
use nmm_core::brain::{Brain, Connectome, Link, count_links};
use nmm_core::connectome::{delays_in_steps, synthetic};
use nmm_core::dual::Dual;
use nmm_core::integrate::{heun, stochastic_heun};
use nmm_core::mlp::{Mlp, MlpMeanField, Normalisation};
use nmm_core::models::{ChenCampbell, Mpr, Rww, RwwGriffiths};
use nmm_core::real::Real;
use nmm_core::rng::Gaussian;

type D<const N: usize> = Dual<f64, N>;

/// Tolerance of a dual derivative against a finite difference (module docs).
const TOL: f64 = 1e-6;

/// Derivative of `f` at `x` by central differences, or by the second-order one-sided formula
/// where `f` is undefined on one side (a parameter at the bound of its range).
fn fd(f: impl Fn(f64) -> Option<f64>, x: f64) -> f64 {
    let h = 1e-6 * x.abs().max(1.0);
    let one_sided = |h: f64| {
        let (f0, f1, f2) = (f(x)?, f(x + h)?, f(x + 2.0 * h)?);
        Some((-3.0 * f0 + 4.0 * f1 - f2) / (2.0 * h))
    };
    match (f(x + h), f(x - h)) {
        (Some(a), Some(b)) => (a - b) / (2.0 * h),
        (Some(_), None) => one_sided(h).expect("defined on the right"),
        _ => one_sided(-h).expect("defined on the left"),
    }
}

fn close(ad: f64, fd: f64, what: &str) {
    assert!(
        (ad - fd).abs() <= TOL * (1.0 + ad.abs().max(fd.abs())),
        "{what}: dual {ad:e}, finite difference {fd:e}"
    );
}

fn one_hot<const N: usize>(k: usize) -> [f64; N] {
    core::array::from_fn(|i| if i == k { 1.0 } else { 0.0 })
}

/// Each function's derivative against its closed form and a finite difference.
#[test]
fn elementary_functions_follow_their_derivatives() {
    type F = fn(D<1>) -> D<1>;
    type G = fn(f64) -> f64;
    // The plain functions are Real's (libm), which the dual number's values must equal.
    let cases: [(&str, F, G, G); 9] = [
        ("sqrt", |x| x.sqrt(), Real::sqrt, |x| 0.5 / x.sqrt()),
        ("exp", |x| x.exp(), Real::exp, |x| x.exp()),
        ("ln", |x| x.ln(), Real::ln, |x| 1.0 / x),
        ("tanh", |x| x.tanh(), Real::tanh, |x| 1.0 - x.tanh().powi(2)),
        ("sin", |x| x.sin(), Real::sin, |x| x.cos()),
        ("cos", |x| x.cos(), Real::cos, |x| -x.sin()),
        ("tan", |x| x.tan(), Real::tan, |x| 1.0 / x.cos().powi(2)),
        ("atan", |x| x.atan(), Real::atan, |x| 1.0 / (1.0 + x * x)),
        (
            "x^2.5 / (1 + x)",
            |x| x.powf(D::constant(2.5)) / (D::ONE + x),
            |x| Real::powf(x, 2.5) / (1.0 + x),
            |x| 2.5 * x.powf(1.5) / (1.0 + x) - x.powf(2.5) / (1.0 + x).powi(2),
        ),
    ];
    for (name, dual, plain, exact) in cases {
        for x in [0.3, 0.9, 1.7] {
            let y = dual(D::new(x, [1.0]));
            assert_eq!(y.v, plain(x), "{name}({x}): the value is the plain one");
            close(
                y.d[0],
                exact(x),
                &format!("{name}'({x}) against its closed form"),
            );
            close(
                y.d[0],
                fd(|t| Some(plain(t)), x),
                &format!("{name}'({x}) against a finite difference"),
            );
        }
    }
    // x^y in both arguments: d/dy x^y = x^y ln x.
    let [x, y] = D::<2>::variables([1.3, 0.7]);
    let p = x.powf(y);
    close(p.d[0], 0.7 * 1.3f64.powf(-0.3), "d(x^y)/dx");
    close(p.d[1], 1.3f64.powf(0.7) * 1.3f64.ln(), "d(x^y)/dy");
    // A constant exponent on a zero base: finite (no 0 * ln 0).
    let z = D::<1>::new(0.0, [1.0]).powf(D::constant(2.0));
    assert_eq!((z.v, z.d[0]), (0.0, 0.0));
    // abs, floor, comparisons and the derivative check of is_finite.
    assert_eq!(D::<1>::new(-2.0, [1.0]).abs().d[0], -1.0);
    assert_eq!(D::<1>::new(2.7, [1.0]).floor().d[0], 0.0);
    assert!(D::<1>::new(1.0, [0.0]) < D::new(2.0, [-5.0]));
    assert!(!D::<1>::new(1.0, [f64::INFINITY]).is_finite());
    // A constant at a singular point keeps zero derivatives (no 0 x inf = NaN).
    for y in [D::<1>::constant(0.0).sqrt(), D::<1>::constant(0.0).ln()] {
        assert_eq!(y.d[0], 0.0);
    }
    // Equality is of value and derivatives; ordering of values.
    let (a, b) = (D::<1>::new(1.0, [0.0]), D::<1>::new(1.0, [1.0]));
    assert!(a != b && a.partial_cmp(&b) == Some(std::cmp::Ordering::Equal));
}

/// A model's right-hand side: the state Jacobian in one pass with `N` tangents, the derivative
/// in the input and in each parameter of its table, against finite differences of the `f64`
/// model; the values equal the `f64` model's bit for bit.
fn check_model<M64, MD, const N: usize>(name: &str, m64: &M64, md: &MD, x: [f64; N], input: f64)
where
    M64: Model<f64, N> + Clone,
    MD: Model<D<N>, N> + Clone,
{
    let f = md.deriv(&D::<N>::variables(x), D::constant(input));
    let plain = m64.deriv(&x, input);
    for i in 0..N {
        assert_eq!(f[i].v, plain[i], "{name}: value of d{}/dt", M64::STATE[i]);
        for j in 0..N {
            let fdv = fd(
                |t| {
                    let mut y = x;
                    y[j] = t;
                    Some(m64.deriv(&y, input)[i])
                },
                x[j],
            );
            let what = format!("{name}: d(d{}/dt)/d{}", M64::STATE[i], M64::STATE[j]);
            close(f[i].d[j], fdv, &what);
        }
    }
    let xc = x.map(D::constant);
    let f = md.deriv(&xc, D::new(input, one_hot(0)));
    for (i, fi) in f.iter().enumerate() {
        let fdv = fd(|t| Some(m64.deriv(&x, t)[i]), input);
        close(
            fi.d[0],
            fdv,
            &format!("{name}: d(d{}/dt)/dI", M64::STATE[i]),
        );
    }
    for spec in M64::PARAMS {
        let p = m64.get(spec.name).unwrap();
        let mut mp = md.clone();
        mp.set(spec.name, D::new(p, one_hot(0))).unwrap();
        let f = mp.deriv(&xc, D::constant(input));
        for (i, fi) in f.iter().enumerate() {
            let fdv = fd(
                |t| {
                    let mut m = m64.clone();
                    m.set(spec.name, t).ok()?;
                    Some(m.deriv(&x, input)[i])
                },
                p,
            );
            let what = format!("{name}: d(d{}/dt)/d{}", M64::STATE[i], spec.name);
            close(fi.d[0], fdv, &what);
        }
    }
}

/// The same model with dual parameters (constants: no derivative until a test seeds one).
fn to_dual<M64, MD, const N: usize, const K: usize>(m64: &M64) -> MD
where
    M64: Model<f64, N>,
    MD: Model<D<K>, N> + Default,
{
    let mut md = MD::default();
    for spec in M64::PARAMS {
        md.set(spec.name, D::constant(m64.get(spec.name).unwrap()))
            .unwrap();
    }
    md
}

#[test]
fn every_model_differentiates_as_its_finite_differences() {
    // Away from the defaults, so that no parameter's term vanishes by accident.
    let mpr = Mpr {
        eta: -4.6,
        j: 14.5,
        delta: 0.7,
        tau: 1.3,
    };
    check_model(
        "mpr",
        &mpr,
        &to_dual::<_, Mpr<D<2>>, 2, 2>(&mpr),
        [0.8, -0.3],
        0.4,
    );
    let cc = ChenCampbell::<f64>::default();
    let x = [0.05, 0.9, 0.02, 0.3];
    check_model(
        "cc",
        &cc,
        &to_dual::<_, ChenCampbell<D<4>>, 4, 4>(&cc),
        x,
        0.1,
    );
    let rww = Rww::<f64>::default();
    check_model(
        "rww",
        &rww,
        &to_dual::<_, Rww<D<2>>, 2, 2>(&rww),
        [0.3, 0.1],
        0.05,
    );
    let rg = RwwGriffiths::<f64>::default();
    let rgd = to_dual::<_, RwwGriffiths<D<2>>, 2, 2>(&rg);
    check_model("rww-griffiths", &rg, &rgd, [0.3, 0.1], 0.05);
    // The MLP mean field with small random weights (a hand-made generator, fixed seed).
    let mut s = 0x1234_5678_u64;
    let mut next = move |_: f64| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1.2
    };
    let net = Mlp::<f64, 6, 6, 6, 2>::splat(0.0).map(&mut next);
    let norm = Normalisation {
        in_mean: [0.5, -1.0, -5.0, 0.8, 10.0, 0.0],
        in_scale: [0.5, 1.5, 3.0, 0.12, 6.0, 1.0],
        out_scale: [2.0, 20.0],
        out_offset: [0.1, -1.0],
    };
    let m64 = MlpMeanField::<f64, 6, 6>::new(net, norm).unwrap();
    let md = MlpMeanField::<D<2>, 6, 6>::new(net.map(D::constant), norm.map(D::constant)).unwrap();
    check_model("mlp", &m64, &md, [0.6, -0.8], 0.3);
}

/// MPR's Jacobian and parameter derivatives in closed form (module docs of `models::mpr`):
/// d(dr/dt)/dr = 2 v / tau, d(dr/dt)/dv = 2 r / tau, d(dv/dt)/dr = J - 2 pi^2 tau r,
/// d(dv/dt)/dv = 2 v / tau, d(dv/dt)/deta = 1 / tau, d(dr/dt)/dDelta = 1 / (pi tau^2).
#[test]
fn mpr_derivatives_match_the_closed_form() {
    let (r, v, tau, j) = (0.8, -0.3, 1.3, 14.5);
    let m = Mpr {
        eta: D::<4>::new(-4.6, one_hot(2)),
        delta: D::new(0.7, one_hot(3)),
        j: D::constant(j),
        tau: D::constant(tau),
    };
    let x = [D::new(r, one_hot(0)), D::new(v, one_hot(1))];
    let [dr, dv] = m.deriv(&x, D::constant(0.0));
    let pi = std::f64::consts::PI;
    let exact_r = [2.0 * v / tau, 2.0 * r / tau, 0.0, 1.0 / (pi * tau * tau)];
    let exact_v = [j - 2.0 * pi * pi * tau * r, 2.0 * v / tau, 1.0 / tau, 0.0];
    for k in 0..4 {
        close(dr.d[k], exact_r[k], &format!("dr/dt, seed {k}"));
        close(dv.d[k], exact_v[k], &format!("dv/dt, seed {k}"));
    }
}

/// One Heun step of dx/dt = a x is x (1 + a dt + (a dt)^2 / 2): its derivatives in x and a.
#[test]
fn a_heun_step_differentiates_exactly_on_a_linear_equation() {
    let (x0, a, dt) = (1.7, -0.9, 0.1);
    let [x, ad] = D::<2>::variables([x0, a]);
    let x1 = heun(
        &mut |_t, x: &[D<2>; 1]| [ad * x[0]],
        D::ZERO,
        &[x],
        D::constant(dt),
    );
    let h = a * dt;
    close(x1[0].d[0], 1.0 + h + h * h / 2.0, "dx1/dx0");
    close(x1[0].d[1], x0 * (dt + a * dt * dt), "dx1/da");
}

/// A stochastic Heun step of MPR with fixed draws: derivatives in the state, eta and the
/// noise amplitudes against finite differences of the `f64` step.
#[test]
fn a_stochastic_heun_step_of_mpr_differentiates() {
    let (dt, z) = (0.01, [0.7, -1.2]);
    let step = |x: [f64; 2], eta: f64, s: [f64; 2]| {
        let m = Mpr {
            eta,
            ..Mpr::default()
        };
        stochastic_heun(&mut |_t, x: &[f64; 2]| m.deriv(x, 0.0), 0.0, &x, dt, &s, &z)
    };
    let (x0, eta, s) = ([0.4, -0.6], -4.6, [0.26, 0.37]);
    let [r, v, e, s0, s1] = D::<5>::variables([x0[0], x0[1], eta, s[0], s[1]]);
    let m = Mpr {
        eta: e,
        ..to_dual::<_, Mpr<D<5>>, 2, 5>(&Mpr::<f64>::default())
    };
    let zd = z.map(D::constant);
    let x1 = stochastic_heun(
        &mut |_t, x: &[D<5>; 2]| m.deriv(x, D::ZERO),
        D::ZERO,
        &[r, v],
        D::constant(dt),
        &[s0, s1],
        &zd,
    );
    let plain = step(x0, eta, s);
    let seeds: [&dyn Fn(f64) -> [f64; 2]; 5] = [
        &|t| step([t, x0[1]], eta, s),
        &|t| step([x0[0], t], eta, s),
        &|t| step(x0, t, s),
        &|t| step(x0, eta, [t, s[1]]),
        &|t| step(x0, eta, [s[0], t]),
    ];
    let at = [x0[0], x0[1], eta, s[0], s[1]];
    for i in 0..2 {
        assert_eq!(x1[i].v, plain[i]);
        for (k, f) in seeds.iter().enumerate() {
            close(
                x1[i].d[k],
                fd(|t| Some(f(t)[i]), at[k]),
                &format!("x1[{i}], seed {k}"),
            );
        }
    }
}

/// BOLD through the monitor: two TRs of a drive that rises and falls, differentiated in the
/// Balloon-Windkessel time constants and in the drive's amplitude.
#[test]
fn bold_differentiates_in_its_time_constants_and_drive() {
    let names = ["tau_s", "tau_f", "tau_0", "alpha"];
    let run = |vals: [f64; 4], amp: f64| -> Vec<f64> {
        let mut p = BoldParams::<f64>::preset(BoldPreset::Stephan2007);
        for (n, v) in names.iter().zip(vals) {
            p.set(n, v).unwrap();
        }
        let mut buf = [[0.0; 4]; 1];
        let mut mon = BoldMonitor::new(p, &mut buf, 0.005, 2.0).unwrap();
        let mut out = vec![];
        let mut y = [0.0];
        for k in 0..1600 {
            let t = k as f64 * 0.005;
            if mon.step(&[amp * t * (-t).exp()], &mut y) {
                out.push(y[0]);
            }
        }
        out
    };
    let p0 = BoldParams::<f64>::preset(BoldPreset::Stephan2007);
    let vals = names.map(|n| p0.get(n).unwrap());
    let amp = 0.8;
    let seeds = D::<5>::variables([vals[0], vals[1], vals[2], vals[3], amp]);
    let mut p = BoldParams::<D<5>>::preset(BoldPreset::Stephan2007);
    for (n, v) in names.iter().zip(seeds) {
        p.set(n, v).unwrap();
    }
    let mut buf = [[D::ZERO; 4]; 1];
    let mut mon = BoldMonitor::new(p, &mut buf, 0.005, 2.0).unwrap();
    let mut out = vec![];
    let mut y = [D::ZERO];
    for k in 0..1600 {
        let t = D::constant(k as f64 * 0.005);
        if mon.step(&[seeds[4] * t * (-t).exp()], &mut y) {
            out.push(y[0]);
        }
    }
    let plain = run(vals, amp);
    assert_eq!(out.len(), 4);
    for (s, (yd, yp)) in out.iter().zip(&plain).enumerate() {
        assert_eq!(yd.v, *yp);
        for k in 0..4 {
            let f = |t: f64| {
                let mut v = vals;
                v[k] = t;
                Some(run(v, amp)[s])
            };
            close(
                yd.d[k],
                fd(f, vals[k]),
                &format!("BOLD sample {s}, d/d{}", names[k]),
            );
        }
        close(
            yd.d[4],
            fd(|t| Some(run(vals, t)[s]), amp),
            "BOLD, d/d amplitude",
        );
    }
}

/// A whole-brain RWW run on the built-in connectome (6 regions, delays, noise from a fixed
/// seed): the final state's derivative in G and in J_N against finite differences of the
/// `f64` run, whose values it equals bit for bit.
#[test]
fn a_whole_brain_run_differentiates_in_g_and_a_node_parameter() {
    let n = 6;
    let (mut w, mut len, mut centres) = (vec![0.0; n * n], vec![0.0; n * n], vec![[0.0; 3]; n]);
    synthetic(n, &mut w, &mut len, &mut centres).unwrap();
    let dt = 0.1;
    let mut delays = vec![0u32; n * n];
    delays_in_steps(n, &len, 3.0, dt, &mut delays).unwrap();
    fn run<T: Real>(n: usize, w: &[f64], delays: &[u32], g: T, jn: &[T], dt: f64) -> Vec<[T; 2]> {
        let w: Vec<T> = w.iter().map(|&x| T::from_f64(x)).collect();
        let c = count_links(n, &w, delays).unwrap();
        let empty = Link {
            w: T::ZERO,
            at: 0,
            lag: 0,
        };
        let (mut ir, mut il) = (vec![0; n + 1], vec![empty; c.instant]);
        let (mut dr, mut dl) = (vec![0; 2 * n + 1], vec![empty; c.delayed]);
        let conn = Connectome::build(n, &w, delays, &mut ir, &mut il, &mut dr, &mut dl).unwrap();
        let models: Vec<Rww<T>> = (0..n)
            .map(|i| Rww::<T> {
                j_n: jn[i % jn.len()],
                ..Rww::default()
            })
            .collect();
        let mut hist = vec![T::ZERO; Brain::<T, Rww<T>, 2>::history_len(&conn)];
        let mut work = vec![[T::ZERO; 2]; Brain::<T, Rww<T>, 2>::work_len(n)];
        let mut coupling = vec![T::ZERO; Brain::<T, Rww<T>, 2>::coupling_len(n)];
        let mut noise: Vec<_> = (0..n).map(|i| Gaussian::new(5, i as u64 + 1)).collect();
        let mut x = vec![[T::from_f64(0.2), T::from_f64(0.1)]; n];
        let sigma = [T::from_f64(0.001); 2];
        let mut b = Brain::new(
            conn,
            &models,
            g,
            sigma,
            T::from_f64(dt),
            &mut x,
            &mut hist,
            &mut work,
            &mut coupling,
            &mut noise,
        )
        .unwrap();
        for _ in 0..3000 {
            assert!(b.step());
        }
        b.state().to_vec()
    }
    let w = &w;
    let (g, jn) = (0.6, 0.15);
    let [gd, jd] = D::<2>::variables([g, jn]);
    let xd = run(n, w, &delays, gd, &[jd], dt);
    let x = run(n, w, &delays, g, &[jn], dt);
    for i in 0..n {
        for v in 0..2 {
            assert_eq!(xd[i][v].v, x[i][v], "region {i}, variable {v}");
            let dg = fd(|t| Some(run(n, w, &delays, t, &[jn], dt)[i][v]), g);
            close(
                xd[i][v].d[0],
                dg,
                &format!("region {i}, variable {v}, d/dG"),
            );
            let dj = fd(|t| Some(run(n, w, &delays, g, &[t], dt)[i][v]), jn);
            close(
                xd[i][v].d[1],
                dj,
                &format!("region {i}, variable {v}, d/dJ_N"),
            );
        }
    }
    // One region's parameter seeded, the same value everywhere: the stepper must not take the
    // regions for one model (their derivatives differ), and the derivative reaches the other
    // regions only through the coupling.
    let mut jds = vec![D::<2>::constant(jn); n];
    jds[0] = D::new(jn, [1.0, 0.0]);
    let xd = run(n, w, &delays, D::constant(g), &jds, dt);
    for (i, xi) in xd.iter().enumerate() {
        for (v, xiv) in xi.iter().enumerate() {
            let dj = fd(
                |t| {
                    let mut js = vec![jn; n];
                    js[0] = t;
                    Some(run(n, w, &delays, g, &js, dt)[i][v])
                },
                jn,
            );
            close(
                xiv.d[0],
                dj,
                &format!("region {i}, variable {v}, d/dJ_N of region 0"),
            );
        }
    }
}
