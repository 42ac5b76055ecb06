//! The registry behind the C ABI, on the host: handles, errors with their messages, and runs
//! that equal nmm-core's.

use nmm_core::models::corrected::term_index;
use nmm_core::models::{ChenCampbell, Corrected, Mpr};
use nmm_core::realtime::{MAX_STATE, Node, Pi, RealTime, Scenario};
use nmm_wasm::{Error, Registry, SLOTS};

fn weights() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/mlp_p06_1.nmmw"
    ))
    .unwrap()
}

#[test]
fn handles_are_slots_and_run_out_with_a_message() {
    let mut reg = Box::new(Registry::new());
    let hs: Vec<i32> = (0..SLOTS).map(|_| reg.create(0, 0.01)).collect();
    assert_eq!(hs, (0..SLOTS as i32).collect::<Vec<_>>());
    assert_eq!(reg.create(1, 0.01), Error::NoSlot as i32);
    assert!(reg.error().contains("slots"), "{}", reg.error());
    assert_eq!(reg.destroy(3), 0);
    assert_eq!(reg.create(1, 0.01), 3);
    assert_eq!(reg.n_state(3), 4);
    assert_eq!(reg.destroy(42), Error::BadHandle as i32);
    assert!(reg.error().contains("42"));
    assert_eq!(reg.step(-1, 1, None), Error::BadHandle as i32);
}

#[test]
fn bad_input_is_refused_with_the_reason() {
    let mut reg = Box::new(Registry::new());
    assert_eq!(reg.create(7, 0.01), Error::BadKind as i32);
    assert_eq!(reg.create(0, 0.0), Error::BadValue as i32);
    assert!(reg.error().contains("dt"));
    let h = reg.create(0, 0.01);
    assert_eq!(reg.set_param(h, b"nope", 1.0), Error::UnknownParam as i32);
    assert!(
        reg.error().contains("mpr") && reg.error().contains("nope"),
        "{}",
        reg.error()
    );
    assert_eq!(reg.set_param(h, b"tau", -1.0), Error::BadValue as i32);
    assert!(reg.error().contains("tau"), "{}", reg.error());
    assert_eq!(reg.set_param(h, b"eta", -4.0), 0);
    assert_eq!(reg.get_param(h, b"eta"), -4.0);
    assert!(reg.get_param(h, b"nope").is_nan());
    assert_eq!(reg.set_input(h, f32::NAN), Error::BadValue as i32);
    assert_eq!(reg.set_noise(h, -1.0, 0.0, 1), Error::BadValue as i32);
    assert_eq!(
        reg.set_controller(h, Pi::new(1.0, 1.0, 0.1, 1.0, -1.0)),
        Error::BadValue as i32
    );
    let w = weights();
    assert_eq!(
        reg.create_mlp(&w[..w.len() - 1], 0.01),
        Error::BadWeights as i32
    );
    assert!(reg.error().starts_with("weight file"), "{}", reg.error());
    let mut trace = vec![[0.0f32; MAX_STATE]; 10];
    assert_eq!(reg.step(h, 11, Some(&mut trace)), Error::TooLong as i32);
    // Divergence stops the run with the tick number.
    assert_eq!(reg.set_dt(h, 0.5), 0);
    assert_eq!(reg.set_input(h, 1e6), 0);
    assert_eq!(reg.step(h, 100, None), Error::Diverged as i32);
    assert!(reg.error().contains("tick"), "{}", reg.error());
    assert_eq!(reg.reset(h), 0);
    assert!(reg.state(h).unwrap().iter().all(|v| v.is_finite()));
}

#[test]
fn a_recorded_run_equals_the_core_scenario() {
    // The MLP golden scenario without its scripted input (held at 0): registry vs RealTime.
    let mut reg = Box::new(Registry::new());
    let w = weights();
    let h = reg.create_mlp(&w, 0.01);
    assert!(h >= 0, "{}", reg.error());
    let mut trace = vec![[0.0f32; MAX_STATE]; 500];
    assert_eq!(reg.step(h, 500, Some(&mut trace)), 500);
    let sc = Scenario::ALL[2];
    let mlp = nmm_core::mlp::MlpMeanField::<f32>::from_bytes(&w).unwrap();
    let mut rt = sc.build(&mlp);
    for row in &trace {
        rt.tick(0.0);
        assert_eq!(row, rt.state());
    }
}

#[test]
fn a_corrected_model_takes_terms_by_name_and_runs_as_the_core() {
    let mut reg = Box::new(Registry::new());
    let h = reg.create(3, 0.01);
    assert!(h >= 0, "{}", reg.error());
    assert_eq!(reg.set_param(h, b"p", 0.6), 0);
    // The leading effect of sparseness without 1/p: J r -> p J r in MPR's v equation.
    assert_eq!(reg.add_term(h, b"v|(1-p)|J r", -1.0), 0, "{}", reg.error());
    assert_eq!(reg.set_input(h, 1.0), 0);
    let mut trace = vec![[0.0f32; MAX_STATE]; 2000];
    assert_eq!(reg.step(h, 2000, Some(&mut trace)), 2000);
    // Bit for bit the core's RealTime on the same node.
    let mut c = Corrected::new(Mpr::default(), 0.6, 1e4).unwrap();
    c.push(
        1,
        term_index::<f32, Mpr<f32>, 2>("(1-p)", "J r").unwrap(),
        -1.0,
    )
    .unwrap();
    let mut rt = RealTime::new(Node::MprCorrected(c), 0.01);
    // And, independently, MPR with J -> J p: the same field up to f32 rounding of
    // J r - (1-p) J r against (p J) r; 1e-4 relative bounds 2000 steps of a few ulp each.
    let mut jp = RealTime::new(
        Node::Mpr(Mpr {
            j: 15.0 * 0.6,
            ..Mpr::default()
        }),
        0.01,
    );
    jp.set_state(*rt.state());
    for row in &trace {
        rt.tick(1.0);
        jp.tick(1.0);
        assert_eq!(row, rt.state());
        for (&a, &b) in row.iter().zip(jp.state()).take(2) {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
    // Bad terms are refused with the reason; a plain MPR takes none.
    for (term, why) in [
        (&b"v|(1-p)"[..], "expected"),
        (b"w|1|r", "equation"),
        (b"v|1/p|r", "unknown"),
        (b"v|1|r^3", "unknown"),
    ] {
        assert_eq!(reg.add_term(h, term, 1.0), Error::BadValue as i32);
        assert!(reg.error().contains(why), "{}", reg.error());
    }
    assert_eq!(reg.add_term(h, b"r|1|r", f32::NAN), Error::BadValue as i32);
    for _ in 1..nmm_core::models::corrected::MAX_TERMS {
        assert_eq!(reg.add_term(h, b"r|1|1", 0.0), 0);
    }
    assert_eq!(reg.add_term(h, b"r|1|1", 0.0), Error::BadValue as i32);
    let plain = reg.create(0, 0.01);
    assert_eq!(reg.add_term(plain, b"v|1|r", 1.0), Error::BadKind as i32);
    assert!(reg.error().contains("mpr"), "{}", reg.error());
    assert_eq!(reg.add_term(99, b"v|1|r", 1.0), Error::BadHandle as i32);
}

#[test]
fn a_corrected_chen_campbell_takes_terms_by_name_and_runs_as_the_core() {
    let mut reg = Box::new(Registry::new());
    let h = reg.create(4, 0.01);
    assert!(h >= 0, "{}", reg.error());
    assert_eq!(reg.set_param(h, b"p", 0.4), 0);
    // The law found on Izhikevich networks (models/discover_cc): s_jump r -> p s_jump r.
    assert_eq!(reg.add_term(h, b"s|(1-p)|r", -1.2308), 0, "{}", reg.error());
    assert_eq!(reg.set_input(h, 0.02), 0);
    let mut trace = vec![[0.0f32; MAX_STATE]; 2000];
    assert_eq!(reg.step(h, 2000, Some(&mut trace)), 2000);
    // Bit for bit the core's RealTime on the same node.
    let mut c = Corrected::new(ChenCampbell::default(), 0.4, 1e4).unwrap();
    c.push(
        3,
        term_index::<f32, ChenCampbell<f32>, 4>("(1-p)", "r").unwrap(),
        -1.2308,
    )
    .unwrap();
    let mut rt = RealTime::new(Node::CcCorrected(c), 0.01);
    // (Against the core built with the same term; the independent check, CC with
    // s_jump -> s_jump p at the default s_jump = 1.2308, is the JS test's.)
    for row in &trace {
        rt.tick(0.02);
        assert_eq!(row, rt.state());
    }
    assert!(
        trace[1999][0] > 0.0 && trace[1999][3] > 0.0,
        "{:?}",
        trace[1999]
    );
    for (term, why) in [(&b"x|1|r"[..], "equation"), (b"s|1|J r", "unknown")] {
        assert_eq!(reg.add_term(h, term, 1.0), Error::BadValue as i32);
        assert!(reg.error().contains(why), "{}", reg.error());
    }
}
