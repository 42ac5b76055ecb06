//! The registry behind the C ABI, on the host: handles, errors with their messages, and runs
//! that equal nmm-core's.

use nmm_core::realtime::{MAX_STATE, Pi, Scenario};
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
