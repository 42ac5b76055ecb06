//! # nmm-wasm
//!
//! nmm's real-time mean-field node ([`nmm_core::realtime`]) as a WebAssembly module with a
//! plain C ABI: no imports, no allocator, no wasm-bindgen. Any wasm host can load it; the
//! hand-written `js/nmm.mjs` wraps it in a class for web apps and node.
//!
//! All numerics are nmm-core's, so a run here gives the same `f32` bits as the host and the
//! firmware for the same inputs and seed (tests in `tests/` and `wasm/js/test/`).
//!
//! ## ABI
//! Handles are small non-negative integers ([`SLOTS`] models at once). Functions that can
//! fail return a negative [`Error`] code and leave a message in the error buffer
//! (`nmm_error_ptr`, `nmm_error_len`). Strings (parameter names) and MLP weight files are
//! passed by writing them into the scratch buffer (`nmm_scratch_ptr`, [`SCRATCH_LEN`] bytes)
//! and giving their length. States are read as `f32` from linear memory: the current state at
//! `nmm_state_ptr(h)` ([`MAX_STATE`] values, the first `nmm_n_state(h)` meaningful) and a
//! recorded run at `nmm_trace_ptr()` (rows of [`MAX_STATE`] values).
//!
//! | export | meaning |
//! |---|---|
//! | `nmm_abi_version() -> 1` | this table's version |
//! | `nmm_scratch_ptr()`, `nmm_scratch_len()` | the scratch buffer |
//! | `nmm_error_ptr()`, `nmm_error_len()` | the last error message (UTF-8) |
//! | `nmm_create(kind, dt) -> h` | kind 0 MPR, 1 Chen-Campbell, 3 MPR and 4 Chen-Campbell with a sparse-network correction (no terms yet; `p` = 1, `N` = 10^4), with default parameters |
//! | `nmm_add_term(h, len, coef) -> 0` | adds `coef` times the term `equation\|factor\|monomial` (`len` bytes in scratch, names as in a model file of `nmm discover`, e.g. `v\|(1-p)\|J r`, `s\|(1-p)\|r`) to a kind-3 or kind-4 model |
//! | `nmm_create_mlp(len, dt) -> h` | MLP from an NMMW file of `len` bytes in scratch |
//! | `nmm_destroy(h)` | frees the slot |
//! | `nmm_set_param(h, name_len, value)` / `nmm_get_param(h, name_len)` | by name (name in scratch) |
//! | `nmm_set_input(h, I)`, `nmm_set_dt(h, dt)` | input (model units), tick (model time unit) |
//! | `nmm_set_noise(h, sigma_r, sigma_v, seed_lo, seed_hi)` | additive noise, 64-bit seed |
//! | `nmm_set_controller(h, kp, ki, setpoint, u_min, u_max)`, `nmm_clear_controller(h)` | PI on the rate |
//! | `nmm_reset(h)` | initial state, controller integral cleared, noise restarted from its seed |
//! | `nmm_step(h, n)` | n ticks (`n <= i32::MAX`) |
//! | `nmm_run(h, n)` | n ticks, each state recorded in the trace buffer (`n <= TRACE_ROWS`) |
//! | `nmm_state_ptr(h)`, `nmm_n_state(h)` | the current state (4 `f32`, the first n meaningful) |
//! | `nmm_trace_ptr()` | the trace of the last `nmm_run` |
//! | `nmm_stimulation(h)` | the controller output of the last tick |
//! | `nmm_scripted_input(k)` | the golden scenarios' input at tick k |
//! | `nmm_rate_to_duty(r, r_max, max_duty)` | the firmware's rate-to-duty mapping |
#![cfg_attr(target_arch = "wasm32", no_std)]
#![deny(missing_docs)]

use core::fmt::Write;
use nmm_core::mlp::MlpMeanField;
use nmm_core::models::corrected::{Library, TermError, term_index};
use nmm_core::models::{ChenCampbell, Corrected, Mpr};
use nmm_core::realtime::{Node, Pi, RealTime};

pub use nmm_core::realtime::MAX_STATE;

/// Models that can exist at once.
pub const SLOTS: usize = 8;
/// Bytes in the scratch buffer (names and weight files; a trained NMMW file with its metadata
/// is ~20 KB).
pub const SCRATCH_LEN: usize = 64 * 1024;
/// Rows in the trace buffer (one row per recorded tick).
pub const TRACE_ROWS: usize = 8192;
/// Bytes in the error-message buffer.
pub const ERROR_LEN: usize = 256;

/// Error codes returned (negated) by the exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Error {
    /// No model with this handle.
    BadHandle = -1,
    /// All slots are taken.
    NoSlot = -2,
    /// No parameter of this name, or a name that is not UTF-8.
    UnknownParam = -3,
    /// A value outside its valid range, or not finite.
    BadValue = -4,
    /// The MLP weight file was rejected.
    BadWeights = -5,
    /// The state left the finite numbers; the run stopped.
    Diverged = -6,
    /// More ticks than the trace holds, or a length beyond the scratch buffer.
    TooLong = -7,
    /// Unknown model kind.
    BadKind = -8,
}

struct Slot {
    rt: RealTime<f32>,
    input: f32,
}

/// Everything behind the exports but the two big buffers (scratch and trace, which the
/// exports keep in zero-initialised statics so that they cost nothing in the `.wasm` file):
/// model slots and the last error. The exports use one instance in a `static` (wasm is
/// single-threaded); host tests make their own.
pub struct Registry {
    slots: [Option<Slot>; SLOTS],
    error: [u8; ERROR_LEN],
    error_len: usize,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

struct ErrBuf<'a> {
    buf: &'a mut [u8; ERROR_LEN],
    len: &'a mut usize,
}

impl Write for ErrBuf<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        // Truncate at the buffer end (on a char boundary).
        for c in s.chars() {
            let mut b = [0u8; 4];
            let e = c.encode_utf8(&mut b).as_bytes();
            if *self.len + e.len() > ERROR_LEN {
                break;
            }
            self.buf[*self.len..*self.len + e.len()].copy_from_slice(e);
            *self.len += e.len();
        }
        Ok(())
    }
}

impl Registry {
    /// An empty registry.
    pub const fn new() -> Self {
        Self {
            slots: [const { None }; SLOTS],
            error: [0; ERROR_LEN],
            error_len: 0,
        }
    }

    fn fail(&mut self, e: Error, args: core::fmt::Arguments<'_>) -> i32 {
        self.error_len = 0;
        let _ = ErrBuf {
            buf: &mut self.error,
            len: &mut self.error_len,
        }
        .write_fmt(args);
        e as i32
    }

    /// The last error message.
    pub fn error(&self) -> &str {
        core::str::from_utf8(&self.error[..self.error_len]).unwrap_or("")
    }

    fn insert(&mut self, node: Node<f32>, dt: f32) -> i32 {
        if !(dt > 0.0 && dt.is_finite()) {
            return self.fail(Error::BadValue, format_args!("dt = {dt} must be positive"));
        }
        match self.slots.iter().position(Option::is_none) {
            Some(i) => {
                self.slots[i] = Some(Slot {
                    rt: RealTime::new(node, dt),
                    input: 0.0,
                });
                i as i32
            }
            None => self.fail(
                Error::NoSlot,
                format_args!("all {SLOTS} model slots are in use; destroy one first"),
            ),
        }
    }

    /// A model of `kind` (0 MPR, 1 Chen-Campbell, 3 MPR and 4 Chen-Campbell plus a
    /// sparse-network correction without terms, at `p` = 1 and `N` = 10^4) with default
    /// parameters and tick `dt`.
    pub fn create(&mut self, kind: u32, dt: f32) -> i32 {
        let node = match kind {
            0 => Node::Mpr(Mpr::default()),
            1 => Node::Cc(ChenCampbell::default()),
            2 => {
                return self.fail(
                    Error::BadKind,
                    format_args!("kind 2 (mlp) needs weights: use nmm_create_mlp"),
                );
            }
            3 => match Corrected::new(Mpr::default(), 1.0, 1e4) {
                Ok(c) => Node::MprCorrected(c),
                Err(e) => return self.fail(Error::BadValue, format_args!("{e}")),
            },
            4 => match Corrected::new(ChenCampbell::default(), 1.0, 1e4) {
                Ok(c) => Node::CcCorrected(c),
                Err(e) => return self.fail(Error::BadValue, format_args!("{e}")),
            },
            _ => return self.fail(Error::BadKind, format_args!("unknown model kind {kind}")),
        };
        self.insert(node, dt)
    }

    /// Adds `coef` times the term `equation|factor|monomial` (names as in a model file of
    /// `nmm discover`, e.g. `v|(1-p)|J r`) to the correction of a kind-3 or kind-4 model.
    pub fn add_term(&mut self, h: i32, term: &[u8], coef: f32) -> i32 {
        let Ok(text) = core::str::from_utf8(term) else {
            return self.fail(Error::BadValue, format_args!("term is not UTF-8"));
        };
        let mut parts = text.split('|');
        let (Some(eq), Some(factor), Some(monomial), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return self.fail(
                Error::BadValue,
                format_args!("term {text:?}: expected equation|factor|monomial"),
            );
        };
        let res = match self.slot(h) {
            Ok(s) => match &mut s.rt.node {
                Node::MprCorrected(c) => Ok(push_named(c, (eq, factor, monomial), coef)),
                Node::CcCorrected(c) => Ok(push_named(c, (eq, factor, monomial), coef)),
                other => Err(other.name()),
            },
            Err(code) => return code,
        };
        match res {
            Ok(Ok(())) => 0,
            Ok(Err(Named::Equation(state))) => self.fail(
                Error::BadValue,
                format_args!("term {text:?}: equation {eq:?} is not one of {state:?}"),
            ),
            Ok(Err(Named::Unknown)) => self.fail(
                Error::BadValue,
                format_args!("term {text:?}: unknown factor or monomial"),
            ),
            Ok(Err(Named::Push(err))) => {
                self.fail(Error::BadValue, format_args!("term {text:?}: {err}"))
            }
            Err(name) => self.fail(
                Error::BadKind,
                format_args!("model {name} takes no correction terms (kinds 3 and 4 do)"),
            ),
        }
    }

    /// An MLP model from an NMMW weight file.
    pub fn create_mlp(&mut self, file: &[u8], dt: f32) -> i32 {
        match MlpMeanField::<f32>::from_bytes(file) {
            Ok(m) => self.insert(Node::Mlp(m), dt),
            Err(e) => self.fail(Error::BadWeights, format_args!("weight file: {e}")),
        }
    }

    fn slot(&mut self, h: i32) -> Result<&mut Slot, i32> {
        let Some(i) = usize::try_from(h)
            .ok()
            .filter(|&i| i < SLOTS && self.slots[i].is_some())
        else {
            return Err(self.fail(Error::BadHandle, format_args!("no model with handle {h}")));
        };
        self.slots[i].as_mut().ok_or(Error::BadHandle as i32)
    }

    /// Frees handle `h`.
    pub fn destroy(&mut self, h: i32) -> i32 {
        if let Err(e) = self.slot(h) {
            return e;
        }
        self.slots[h as usize] = None;
        0
    }

    /// Sets the parameter called `name`.
    pub fn set_param(&mut self, h: i32, name: &[u8], value: f32) -> i32 {
        let Ok(name) = core::str::from_utf8(name) else {
            return self.fail(
                Error::UnknownParam,
                format_args!("parameter name is not UTF-8"),
            );
        };
        let res = match self.slot(h) {
            Ok(s) => s.rt.node.set(name, value),
            Err(e) => return e,
        };
        match res {
            Ok(()) => 0,
            Err(nmm_core::ParamError::Unknown) => {
                let model = self.slot(h).map(|s| s.rt.node.name()).unwrap_or("?");
                self.fail(
                    Error::UnknownParam,
                    format_args!("model {model} has no parameter {name:?}"),
                )
            }
            Err(e) => self.fail(Error::BadValue, format_args!("{e}")),
        }
    }

    /// The parameter called `name` (NaN if there is none).
    pub fn get_param(&mut self, h: i32, name: &[u8]) -> f32 {
        let Ok(name) = core::str::from_utf8(name) else {
            return f32::NAN;
        };
        match self.slot(h) {
            Ok(s) => s.rt.node.get(name).unwrap_or(f32::NAN),
            Err(_) => f32::NAN,
        }
    }

    /// Sets the input `I` held for the following ticks.
    pub fn set_input(&mut self, h: i32, value: f32) -> i32 {
        if !value.is_finite() {
            return self.fail(Error::BadValue, format_args!("input {value} is not finite"));
        }
        match self.slot(h) {
            Ok(s) => {
                s.input = value;
                0
            }
            Err(e) => e,
        }
    }

    /// Sets the tick length.
    pub fn set_dt(&mut self, h: i32, dt: f32) -> i32 {
        if !(dt > 0.0 && dt.is_finite()) {
            return self.fail(Error::BadValue, format_args!("dt = {dt} must be positive"));
        }
        match self.slot(h) {
            Ok(s) => {
                s.rt.dt = dt;
                0
            }
            Err(e) => e,
        }
    }

    /// Additive noise on `r` and `v` from stream 1 of `seed` (zeros turn it off).
    pub fn set_noise(&mut self, h: i32, sigma_r: f32, sigma_v: f32, seed: u64) -> i32 {
        if !(sigma_r >= 0.0 && sigma_v >= 0.0 && sigma_r.is_finite() && sigma_v.is_finite()) {
            return self.fail(
                Error::BadValue,
                format_args!("noise amplitudes ({sigma_r}, {sigma_v}) must be finite and >= 0"),
            );
        }
        match self.slot(h) {
            Ok(s) => {
                s.rt.set_noise([sigma_r, sigma_v, 0.0, 0.0], seed);
                0
            }
            Err(e) => e,
        }
    }

    /// PI control of the rate toward `setpoint` (see [`Pi`]).
    pub fn set_controller(&mut self, h: i32, pi: Pi<f32>) -> i32 {
        let ok = [pi.kp, pi.ki, pi.setpoint, pi.u_min, pi.u_max]
            .iter()
            .all(|v| v.is_finite())
            && pi.u_min <= pi.u_max;
        if !ok {
            return self.fail(
                Error::BadValue,
                format_args!("controller values must be finite with u_min <= u_max"),
            );
        }
        match self.slot(h) {
            Ok(s) => {
                s.rt.controller = Some(pi);
                0
            }
            Err(e) => e,
        }
    }

    /// Removes the controller.
    pub fn clear_controller(&mut self, h: i32) -> i32 {
        match self.slot(h) {
            Ok(s) => {
                s.rt.controller = None;
                0
            }
            Err(e) => e,
        }
    }

    /// Back to the initial state, controller integral cleared, noise restarted from its seed:
    /// the same inputs then replay the same run.
    pub fn reset(&mut self, h: i32) -> i32 {
        match self.slot(h) {
            Ok(s) => {
                s.rt.reset();
                s.rt.restart_noise();
                0
            }
            Err(e) => e,
        }
    }

    /// `n` ticks; with a `trace`, state rows go to its first `n` rows. Returns `n` or an error.
    pub fn step(&mut self, h: i32, n: u32, mut trace: Option<&mut [[f32; MAX_STATE]]>) -> i32 {
        // The tick count is returned as a non-negative i32.
        let rows = trace.as_ref().map_or(i32::MAX as usize, |t| t.len());
        if n as usize > rows {
            return self.fail(
                Error::TooLong,
                format_args!("{n} ticks exceed the trace of {rows} rows"),
            );
        }
        let slot = match usize::try_from(h).ok().and_then(|i| self.slots.get_mut(i)) {
            Some(Some(s)) => s,
            _ => return self.fail(Error::BadHandle, format_args!("no model with handle {h}")),
        };
        for k in 0..n as usize {
            slot.rt.tick(slot.input);
            if let Some(row) = trace.as_deref_mut().and_then(|t| t.get_mut(k)) {
                *row = *slot.rt.state();
            }
            if !slot.rt.is_finite() {
                let t = slot.rt.ticks();
                return self.fail(
                    Error::Diverged,
                    format_args!("state not finite after tick {t}; reset or change parameters"),
                );
            }
        }
        n as i32
    }

    /// The state of `h` (zero-padded), if it exists.
    pub fn state(&self, h: i32) -> Option<&[f32; MAX_STATE]> {
        let s = self.slots.get(usize::try_from(h).ok()?)?.as_ref()?;
        Some(s.rt.state())
    }

    /// Number of state variables of `h`, or an error code.
    pub fn n_state(&mut self, h: i32) -> i32 {
        match self.slot(h) {
            Ok(s) => s.rt.node.n_state() as i32,
            Err(e) => e,
        }
    }

    /// The controller output of the last tick of `h` (NaN, with an error message, for a bad
    /// handle).
    pub fn stimulation(&mut self, h: i32) -> f32 {
        match self.slot(h) {
            Ok(s) => s.rt.stimulation(),
            Err(_) => f32::NAN,
        }
    }

    /// Records and returns [`Error::TooLong`] for a length beyond the scratch buffer.
    pub fn too_long(&mut self, len: u32) -> i32 {
        self.fail(
            Error::TooLong,
            format_args!("{len} bytes exceed the {SCRATCH_LEN}-byte scratch buffer"),
        )
    }

    /// Error-message bytes.
    pub fn error_bytes(&self) -> &[u8] {
        &self.error[..self.error_len]
    }
}

/// Why a named term was refused.
enum Named {
    /// The equation is not a state variable of the model (its names given).
    Equation(&'static [&'static str]),
    /// The factor or monomial is not in the library.
    Unknown,
    /// The model refused it (full, not finite).
    Push(TermError),
}

/// Adds `coef` times the term `(equation, factor, monomial)`, by name, to `c`.
fn push_named<M: Library<f32, N>, const N: usize>(
    c: &mut Corrected<f32, M, N>,
    (eq, factor, monomial): (&str, &str, &str),
    coef: f32,
) -> Result<(), Named> {
    let e = M::STATE
        .iter()
        .position(|s| *s == eq)
        .ok_or(Named::Equation(&M::STATE))?;
    let k = term_index::<f32, M, N>(factor, monomial).ok_or(Named::Unknown)?;
    c.push(e, k, coef).map_err(Named::Push)
}

#[cfg(target_arch = "wasm32")]
mod exports;
