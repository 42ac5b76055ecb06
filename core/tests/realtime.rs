//! Real-time node, PI controller, duty mapping, digest and golden scenarios.

use nmm_core::Model;
use nmm_core::integrate::{rk4, stochastic_heun_in};
use nmm_core::mlp::{Mlp, MlpMeanField, Normalisation};
use nmm_core::models::{ChenCampbell, Mpr, mpr};
use nmm_core::realtime::{
    Digest, MAX_STATE, Node, Pi, RealTime, Scenario, ScenarioModel, rate_to_duty, scripted_input,
};

fn some_mlp() -> MlpMeanField<f32> {
    // A deterministic non-trivial network (weights from a simple formula, not trained).
    let flat: Vec<f32> = (0..Mlp::<f32>::N_WEIGHTS)
        .map(|k| ((k * 37 % 101) as f32 / 101.0 - 0.5) * 0.8)
        .collect();
    MlpMeanField::new(Mlp::from_flat(&flat).unwrap(), Normalisation::identity()).unwrap()
}

#[test]
fn node_step_is_the_models_own_stochastic_heun() {
    let m = ChenCampbell::<f64>::default();
    let node = Node::Cc(m);
    let x = [0.3, -1.2, 0.05, 0.4];
    let sigma = [0.01, 0.02, 0.0, 0.0];
    let z = [0.7, -1.1, 0.3, 2.0];
    let got = node.step(&x, 0.2, 0.01, &sigma, &z);
    let want = stochastic_heun_in(
        &mut |_t, y: &[f64; 4]| m.deriv(y, 0.2),
        0.0,
        &x,
        0.01,
        &sigma,
        &z,
        &|y| m.project(y),
    );
    assert_eq!(got, want);
    // MPR has two variables: the padding stays zero whatever the noise arrays hold there.
    let node = Node::Mpr(Mpr::<f64>::default());
    let got = node.step(&[0.1, -2.0, 9.0, 9.0], 0.0, 0.01, &[0.0; 4], &[5.0; 4]);
    assert_eq!(&got[2..], &[0.0, 0.0]);
    assert_eq!(node.n_state(), 2);
    assert_eq!(Node::Cc(m).n_state(), 4);
}

#[test]
fn node_heun_converges_at_order_two() {
    // Deterministic Heun on MPR against RK4 at a 16x finer step over 2 ms starting from the
    // low state with I = 3 (the switch-up transient, the stiffest part of the protocol).
    let m = Mpr::<f64>::default();
    let node = Node::Mpr(m);
    let t_end = 2.0;
    let reference = {
        let dt = 1e-4;
        let mut x = [0.1, -2.0];
        for _ in 0..(t_end / dt) as usize {
            x = rk4(&mut |_t, y: &[f64; 2]| m.deriv(y, 3.0), 0.0, &x, dt);
        }
        x
    };
    let err = |dt: f64| {
        let mut x = [0.1, -2.0, 0.0, 0.0];
        for _ in 0..(t_end / dt).round() as usize {
            x = node.step(&x, 3.0, dt, &[0.0; MAX_STATE], &[0.0; MAX_STATE]);
        }
        (x[0] - reference[0]).abs().max((x[1] - reference[1]).abs())
    };
    let (e1, e2) = (err(0.01), err(0.005));
    let order = (e1 / e2).log2();
    // Heun is second order: halving dt divides the error by ~4 (order 1.8..2.2 leaves room for
    // the higher-order terms at these step sizes).
    assert!(
        (1.8..2.2).contains(&order),
        "order {order} ({e1:e}, {e2:e})"
    );
}

#[test]
fn pi_holds_the_rate_at_the_setpoint() {
    // Bistable MPR resting on its low state (r ~ 0.081 kHz); the controller must raise it to
    // 0.15 kHz on the same branch and find the stimulation that holds it there.
    let mut rt = RealTime::new(Node::Mpr(Mpr::<f32>::default()), 0.01);
    rt.controller = Some(Pi::new(1.0, 5.0, 0.15, -10.0, 10.0));
    for _ in 0..20_000 {
        rt.tick(0.0);
    }
    // 1e-4 kHz: the loop has settled (time constant ~ 1/(ki * dr/dI) ~ 5 ms, run 200 ms);
    // what is left is f32 rounding.
    assert!((rt.rate() - 0.15).abs() < 1e-4, "r = {}", rt.rate());
    // At steady state dr/dt = 0 and dv/dt = 0 fix the stimulation: v = -Delta/(2 pi r) and
    // I = -(v^2 + eta + J r - (pi r)^2).
    let r = 0.15f64;
    let v = -1.0 / (2.0 * core::f64::consts::PI * r);
    let i_exact = -(v * v - 5.0 + 15.0 * r - (core::f64::consts::PI * r).powi(2));
    assert!(
        // 1e-3: f32 state and the residual rate error times kp.
        (rt.stimulation() as f64 - i_exact).abs() < 1e-3,
        "stim {} vs {i_exact}",
        rt.stimulation()
    );
    // Without the controller the node rests elsewhere: no fixed point at I = 0 near 0.15.
    let fps = mpr::fixed_points(&Mpr::<f64>::default(), 0.0);
    assert!(fps.iter().all(|fp| (fp[0] - 0.15).abs() > 0.05));
}

#[test]
fn pi_saturates_without_winding_up() {
    let mut pi = Pi::new(1.0f64, 10.0, 1.0, -2.0, 2.0);
    // Unreachable set-point: the output reaches u_max (kp e = 1 plus an integral of 1) and
    // stays there; the integral freezes within one increment (ki e dt = 0.1) of that.
    let mut u = 0.0;
    for _ in 0..1000 {
        u = pi.update(0.0, 0.01);
    }
    assert_eq!(u, 2.0);
    assert!(
        pi.integral() <= 1.0 + 0.1 + 1e-12,
        "integral {}",
        pi.integral()
    );
    // As soon as the error changes sign the output leaves the limit at once.
    let u = pi.update(1.5, 0.01);
    assert!(u < 2.0, "u = {u}");
    // Inside the limits it is exactly kp e + ki sum(e dt).
    let mut pi = Pi::new(0.5f64, 2.0, 1.0, -100.0, 100.0);
    let u1 = pi.update(0.0, 0.1);
    assert!((u1 - (0.5 + 0.2)).abs() < 1e-15);
    let u2 = pi.update(0.5, 0.1);
    assert!((u2 - (0.25 + 0.2 + 0.1)).abs() < 1e-15);
    pi.reset();
    assert_eq!(pi.integral(), 0.0);
}

#[test]
fn duty_mapping_clamps_and_is_nan_safe() {
    assert_eq!(rate_to_duty(0.0, 4.0, 1000), 0);
    assert_eq!(rate_to_duty(-1.0, 4.0, 1000), 0);
    assert_eq!(rate_to_duty(f32::NAN, 4.0, 1000), 0);
    assert_eq!(rate_to_duty(1.0, 4.0, 1000), 250);
    assert_eq!(rate_to_duty(4.0, 4.0, 1000), 1000);
    assert_eq!(rate_to_duty(f32::INFINITY, 4.0, 1000), 1000);
    assert_eq!(rate_to_duty(3.999_999, 4.0, u16::MAX), u16::MAX - 1);
    // A full-scale rate that is not positive gives the safe output whatever the rate.
    assert_eq!(rate_to_duty(1.0, 0.0, 1000), 0);
    assert_eq!(rate_to_duty(-1.0, -4.0, 1000), 0);
    assert_eq!(rate_to_duty(1.0, f32::NAN, 1000), 0);
}

#[test]
fn reset_and_restart_noise_replay_a_run() {
    let mut rt = Scenario::ALL[4].build(&some_mlp());
    rt.controller = Some(Pi::new(1.0, 5.0, 0.15, -10.0, 10.0));
    let first: Vec<f32> = (0..300).map(|_| rt.tick(0.2)).collect();
    rt.reset();
    rt.restart_noise();
    assert_eq!(rt.stimulation(), 0.0);
    let again: Vec<f32> = (0..300).map(|_| rt.tick(0.2)).collect();
    assert_eq!(first, again);
    // Without restarting the noise the replay differs.
    rt.reset();
    let other: Vec<f32> = (0..300).map(|_| rt.tick(0.2)).collect();
    assert_ne!(first, other);
}

#[test]
fn digest_is_fnv1a() {
    // Published FNV-1a 64 test vectors (Fowler/Noll/Vo reference test suite).
    let mut d = Digest::new();
    assert_eq!(d.value(), 0xcbf2_9ce4_8422_2325);
    d.bytes(b"a");
    assert_eq!(d.value(), 0xaf63_dc4c_8601_ec8c);
    let mut d = Digest::new();
    d.bytes(b"foobar");
    assert_eq!(d.value(), 0x8594_4171_f739_67e8);
    // Sign of zero matters.
    let (mut a, mut b) = (Digest::new(), Digest::new());
    a.f32(0.0);
    b.f32(-0.0);
    assert_ne!(a, b);
}

#[test]
fn scripted_input_segments() {
    assert_eq!(scripted_input(0), 0.0);
    assert_eq!(scripted_input(499), 0.0);
    assert_eq!(scripted_input(500), 3.0);
    assert_eq!(scripted_input(1600), -1.0); // phase 0 of the triangle
    assert_eq!(scripted_input(1700), 0.0);
    assert_eq!(scripted_input(1800), 1.0); // crest
    assert_eq!(scripted_input(2999), -3.0);
    assert_eq!(scripted_input(u32::MAX), 0.0);
}

#[test]
fn mpr_scenario_switches_up_and_back_down() {
    let sc = Scenario::ALL[0];
    assert_eq!(sc.model, ScenarioModel::Mpr);
    let mut rt = sc.build(&some_mlp());
    let mut r_at = Vec::new();
    for k in 0..sc.ticks {
        r_at.push(rt.tick(sc.input_gain * scripted_input(k)));
    }
    let fps = mpr::fixed_points(&Mpr::<f64>::default(), 0.0);
    let low = fps.iter().map(|x| x[0]).fold(f64::INFINITY, f64::min);
    let high = fps.iter().map(|x| x[0]).fold(0.0, f64::max);
    // Before the pulse: the low state; after the up-step, far above it; after the down-step,
    // back near the low state (1e-2: 10 ms of relaxation from the perturbation).
    assert!(
        (r_at[499] as f64 - low).abs() < 1e-2,
        "{} vs {low}",
        r_at[499]
    );
    assert!(r_at[1499] as f64 > high * 0.8, "{} vs {high}", r_at[1499]);
    assert!(
        (r_at[3999] as f64 - low).abs() < 1e-2,
        "{} vs {low}",
        r_at[3999]
    );
}

#[test]
fn golden_scenarios_are_finite_deterministic_and_distinct() {
    let mlp = some_mlp();
    let mut digests = Vec::new();
    for sc in Scenario::ALL {
        let a = sc.run(&mut sc.build(&mlp));
        let b = sc.run(&mut sc.build(&mlp));
        assert!(a.finite, "{} diverged", sc.name);
        assert_eq!(a, b, "{} is not deterministic", sc.name);
        digests.push(a.digest);
    }
    let mut sorted = digests.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), digests.len(), "two scenarios share a digest");
    // The noise seed reaches the digest.
    let mut sc = Scenario::ALL[4];
    let a = sc.run(&mut sc.build(&mlp));
    sc.noise = Some((0.01, 0.1, 43));
    let b = sc.run(&mut sc.build(&mlp));
    assert_ne!(a.digest, b.digest);
}

#[test]
fn node_parameters_by_name() {
    let mut node = Node::Mpr(Mpr::<f32>::default());
    node.set("eta", -4.0).unwrap();
    assert_eq!(node.get("eta"), Some(-4.0));
    assert!(node.set("tau", -1.0).is_err());
    assert!(node.set("nope", 1.0).is_err());
    assert_eq!(node.name(), "mpr");
    assert_eq!(node.state_names(), &["r", "v"]);
    let mut node = Node::Mlp(some_mlp());
    node.set("p", 0.8).unwrap();
    assert_eq!(node.get("p"), Some(0.8));
}
