//! The C ABI: thin `extern "C"` wrappers over one [`Registry`] in a `static`.
//!
//! wasm32 without threads runs one call at a time, so the registry and the two buffers are
//! reached through raw pointers to `static mut`s (the only `unsafe` of this crate; the
//! firmware's board binary has its own, for MMIO); nothing else can observe the aliasing.

use super::{MAX_STATE, Registry, SCRATCH_LEN, TRACE_ROWS};
use nmm_core::realtime::{Pi, scripted_input};

static mut REGISTRY: Registry = Registry::new();
static mut SCRATCH: [u8; SCRATCH_LEN] = [0; SCRATCH_LEN];
static mut TRACE: [[f32; MAX_STATE]; TRACE_ROWS] = [[0.0; MAX_STATE]; TRACE_ROWS];

// SAFETY (all three accessors): wasm32-unknown-unknown is single-threaded and no export
// re-enters another, so at most one reference to each static is live at a time; the host sees
// the buffers only through the addresses it is given, between calls.
#[inline]
fn reg() -> &'static mut Registry {
    #[allow(clippy::deref_addrof)] // `&mut REGISTRY` is edition 2024's static_mut_refs error
    unsafe {
        &mut *(&raw mut REGISTRY)
    }
}

#[inline]
fn scratch() -> &'static mut [u8; SCRATCH_LEN] {
    #[allow(clippy::deref_addrof)] // `&mut SCRATCH` is edition 2024's static_mut_refs error
    unsafe {
        &mut *(&raw mut SCRATCH)
    }
}

#[inline]
fn trace() -> &'static mut [[f32; MAX_STATE]; TRACE_ROWS] {
    #[allow(clippy::deref_addrof)] // `&mut TRACE` is edition 2024's static_mut_refs error
    unsafe {
        &mut *(&raw mut TRACE)
    }
}

/// The first `len` scratch bytes, or an error code (with its message) if `len` is too large.
fn scratch_bytes(len: u32) -> Result<&'static [u8], i32> {
    match scratch().get(..len as usize) {
        Some(b) => Ok(b),
        None => Err(reg().too_long(len)),
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// ABI version (bumped on any change of an export's meaning).
#[unsafe(no_mangle)]
pub extern "C" fn nmm_abi_version() -> u32 {
    1
}

/// Address of the scratch buffer.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_scratch_ptr() -> *mut u8 {
    scratch().as_mut_ptr()
}

/// Size of the scratch buffer in bytes.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_scratch_len() -> u32 {
    SCRATCH_LEN as u32
}

/// Address of the last error message (UTF-8).
#[unsafe(no_mangle)]
pub extern "C" fn nmm_error_ptr() -> *const u8 {
    reg().error_bytes().as_ptr()
}

/// Length of the last error message in bytes.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_error_len() -> u32 {
    reg().error_bytes().len() as u32
}

/// A model of `kind` (0 MPR, 1 Chen-Campbell, 3 MPR plus a sparse-network correction); returns
/// a handle or an error code.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_create(kind: u32, dt: f32) -> i32 {
    reg().create(kind, dt)
}

/// Adds `coef` times the term `equation|factor|monomial` (the first `len` scratch bytes) to the
/// correction of a kind-3 model.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_add_term(h: i32, len: u32, coef: f32) -> i32 {
    match scratch_bytes(len) {
        Ok(term) => reg().add_term(h, term, coef),
        Err(e) => e,
    }
}

/// An MLP model from the NMMW file in the first `len` scratch bytes.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_create_mlp(len: u32, dt: f32) -> i32 {
    match scratch_bytes(len) {
        Ok(file) => reg().create_mlp(file, dt),
        Err(e) => e,
    }
}

/// Frees a handle.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_destroy(h: i32) -> i32 {
    reg().destroy(h)
}

/// Sets a parameter by name (name in scratch).
#[unsafe(no_mangle)]
pub extern "C" fn nmm_set_param(h: i32, name_len: u32, value: f32) -> i32 {
    match scratch_bytes(name_len) {
        Ok(name) => reg().set_param(h, name, value),
        Err(e) => e,
    }
}

/// A parameter by name (name in scratch); NaN if unknown.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_get_param(h: i32, name_len: u32) -> f32 {
    match scratch_bytes(name_len) {
        Ok(name) => reg().get_param(h, name),
        Err(_) => f32::NAN,
    }
}

/// Sets the input held for the following ticks.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_set_input(h: i32, value: f32) -> i32 {
    reg().set_input(h, value)
}

/// Sets the tick length.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_set_dt(h: i32, dt: f32) -> i32 {
    reg().set_dt(h, dt)
}

/// Additive noise on r and v, seed given as two 32-bit halves.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_set_noise(
    h: i32,
    sigma_r: f32,
    sigma_v: f32,
    seed_lo: u32,
    seed_hi: u32,
) -> i32 {
    let seed = (u64::from(seed_hi) << 32) | u64::from(seed_lo);
    reg().set_noise(h, sigma_r, sigma_v, seed)
}

/// PI control of the rate.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_set_controller(
    h: i32,
    kp: f32,
    ki: f32,
    setpoint: f32,
    u_min: f32,
    u_max: f32,
) -> i32 {
    reg().set_controller(h, Pi::new(kp, ki, setpoint, u_min, u_max))
}

/// Removes the controller.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_clear_controller(h: i32) -> i32 {
    reg().clear_controller(h)
}

/// Back to the initial state.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_reset(h: i32) -> i32 {
    reg().reset(h)
}

/// `n` ticks.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_step(h: i32, n: u32) -> i32 {
    reg().step(h, n, None)
}

/// `n` ticks with every state recorded in the trace buffer.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_run(h: i32, n: u32) -> i32 {
    reg().step(h, n, Some(&mut trace()[..]))
}

/// Address of the trace buffer (rows of 4 f32).
#[unsafe(no_mangle)]
pub extern "C" fn nmm_trace_ptr() -> *const f32 {
    trace().as_ptr().cast()
}

/// Address of the state of `h` (4 f32), or 0 for a bad handle (with an error message).
#[unsafe(no_mangle)]
pub extern "C" fn nmm_state_ptr(h: i32) -> *const f32 {
    if reg().n_state(h) < 0 {
        return core::ptr::null();
    }
    match reg().state(h) {
        Some(x) => x.as_ptr(),
        None => core::ptr::null(),
    }
}

/// Number of state variables of `h`, or an error code.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_n_state(h: i32) -> i32 {
    reg().n_state(h)
}

/// The controller output of the last tick.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_stimulation(h: i32) -> f32 {
    reg().stimulation(h)
}

/// The golden scenarios' scripted input at tick `k`.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_scripted_input(k: u32) -> f32 {
    scripted_input(k)
}

/// The duty cycle for a rate (`nmm_core::realtime::rate_to_duty`), for hosts that drive
/// outputs the way the firmware does.
#[unsafe(no_mangle)]
pub extern "C" fn nmm_rate_to_duty(r: f32, r_max: f32, max_duty: u32) -> u32 {
    u32::from(nmm_core::realtime::rate_to_duty(
        r,
        r_max,
        max_duty.min(u32::from(u16::MAX)) as u16,
    ))
}
