// nmm.mjs: a small class API over nmm_wasm.wasm's C ABI, for browsers and node.
//
//   import { loadNmm } from "./nmm.mjs";
//   const nmm = await loadNmm(wasmBytesOrUrl);
//   const m = nmm.create("mpr", { dt: 0.01, params: { eta: -5, J: 15 } });
//   m.input = 3.0;
//   const rows = m.run(1000);          // Float32Array view, 4 values per tick (r, v, ...)
//   console.log(m.state, m.get("eta"));
//   m.destroy();
//
// Numbers are nmm-core's f32 arithmetic, the same bits as the native host and the firmware.

const KINDS = { mpr: 0, cc: 1, "mpr-corrected": 3, "cc-corrected": 4 };

/** Width of one state row in linear memory (the largest model state, Chen-Campbell's). */
export const MAX_STATE = 4;

/** An error from the module: `code` is the ABI's negative code, `message` its explanation. */
export class NmmError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "NmmError";
    this.code = code;
  }
}

/**
 * Loads the module from bytes (ArrayBuffer, typed array, node Buffer), a URL or a Response.
 * The module has no imports.
 */
export async function loadNmm(source) {
  let instance;
  if (source instanceof WebAssembly.Module) {
    instance = await WebAssembly.instantiate(source, {});
  } else if (typeof source === "string" || source instanceof URL) {
    const resp = await fetch(source);
    if (!resp.ok) throw new Error(`fetching ${source}: HTTP ${resp.status}`);
    ({ instance } = await WebAssembly.instantiate(await resp.arrayBuffer(), {}));
  } else if (typeof Response !== "undefined" && source instanceof Response) {
    ({ instance } = await WebAssembly.instantiate(await source.arrayBuffer(), {}));
  } else {
    ({ instance } = await WebAssembly.instantiate(source, {}));
  }
  return new Nmm(instance);
}

/** The loaded module: creates models and reaches the shared buffers. */
export class Nmm {
  constructor(instance) {
    this.instance = instance;
    this.x = instance.exports;
    if (this.x.nmm_abi_version() !== 1) {
      throw new Error(`nmm_wasm ABI version ${this.x.nmm_abi_version()}, this wrapper speaks 1`);
    }
  }

  get memory() {
    return this.x.memory.buffer;
  }

  /** The last error as an NmmError with the module's message. */
  error(code) {
    const ptr = this.x.nmm_error_ptr();
    const len = this.x.nmm_error_len();
    const msg = new TextDecoder().decode(new Uint8Array(this.memory, ptr, len));
    return new NmmError(code, msg || `nmm error ${code}`);
  }

  check(code) {
    if (code < 0) throw this.error(code);
    return code;
  }

  /** Copies bytes into the scratch buffer; returns their length. */
  toScratch(bytes) {
    const cap = this.x.nmm_scratch_len();
    if (bytes.length > cap) {
      throw new NmmError(-7, `${bytes.length} bytes exceed the ${cap}-byte scratch buffer`);
    }
    new Uint8Array(this.memory, this.x.nmm_scratch_ptr(), bytes.length).set(bytes);
    return bytes.length;
  }

  /**
   * A model: kind "mpr", "cc", "mlp" (then `weights`: the NMMW file's bytes),
   * "mpr-corrected" or "cc-corrected" (MPR or Chen-Campbell plus a closed-form correction from
   * `nmm discover`; then `terms`: the model file's [[model.terms]],
   * [{equation, factor, monomial, coef}], and params p and N).
   * Options: dt (model time unit, default 0.01), params ({name: value}), input (default 0).
   */
  create(kind, { dt = 0.01, params = {}, input = 0, weights, terms = [] } = {}) {
    let h;
    if (kind === "mlp") {
      if (!weights) throw new Error('kind "mlp" needs the weight file: { weights: bytes }');
      const len = this.toScratch(new Uint8Array(weights.buffer ?? weights, weights.byteOffset ?? 0, weights.byteLength));
      h = this.check(this.x.nmm_create_mlp(len, dt));
    } else {
      if (!Object.hasOwn(KINDS, kind)) throw new Error(`unknown model kind "${kind}" (mpr, cc, mlp, mpr-corrected, cc-corrected)`);
      h = this.check(this.x.nmm_create(KINDS[kind], dt));
    }
    const m = new Model(this, h, kind);
    try {
      for (const [name, value] of Object.entries(params)) m.set(name, value);
      for (const t of terms) m.addTerm(t.equation, t.factor, t.monomial, t.coef);
      m.input = input;
    } catch (e) {
      m.destroy();
      throw e;
    }
    return m;
  }

  /** The golden scenarios' scripted input at tick k (shared with host and firmware). */
  scriptedInput(k) {
    return this.x.nmm_scripted_input(k);
  }
}

/** One model instance in the module. */
export class Model {
  constructor(nmm, handle, kind) {
    this.nmm = nmm;
    this.handle = handle;
    this.kind = kind;
    this.nState = nmm.check(nmm.x.nmm_n_state(handle));
    this._input = 0;
  }

  /** Sets a parameter by name (units as in nmm's model tables). */
  set(name, value) {
    const len = this.nmm.toScratch(new TextEncoder().encode(name));
    this.nmm.check(this.nmm.x.nmm_set_param(this.handle, len, value));
    return this;
  }

  /** Adds coef x factor x monomial to `equation` (names as in a model file of `nmm discover`). */
  addTerm(equation, factor, monomial, coef) {
    const len = this.nmm.toScratch(new TextEncoder().encode(`${equation}|${factor}|${monomial}`));
    this.nmm.check(this.nmm.x.nmm_add_term(this.handle, len, coef));
    return this;
  }

  /** A parameter by name (NaN if the model has none of that name). */
  get(name) {
    const len = this.nmm.toScratch(new TextEncoder().encode(name));
    return this.nmm.x.nmm_get_param(this.handle, len);
  }

  /** The input I(t), held until changed. */
  get input() {
    return this._input;
  }
  set input(value) {
    this.nmm.check(this.nmm.x.nmm_set_input(this.handle, value));
    this._input = value;
  }

  set dt(value) {
    this.nmm.check(this.nmm.x.nmm_set_dt(this.handle, value));
  }

  /** Additive noise on r and v (amplitudes per sqrt(time unit)), seed a safe integer or BigInt. */
  setNoise(sigmaR, sigmaV, seed = 0) {
    const s = BigInt(seed);
    const lo = Number(s & 0xffffffffn);
    const hi = Number((s >> 32n) & 0xffffffffn);
    this.nmm.check(this.nmm.x.nmm_set_noise(this.handle, sigmaR, sigmaV, lo, hi));
    return this;
  }

  /** PI control of the rate toward `setpoint`; output clamped to [uMin, uMax]. */
  setController({ kp, ki, setpoint, uMin = -10, uMax = 10 }) {
    this.nmm.check(this.nmm.x.nmm_set_controller(this.handle, kp, ki, setpoint, uMin, uMax));
    return this;
  }

  clearController() {
    this.nmm.check(this.nmm.x.nmm_clear_controller(this.handle));
    return this;
  }

  /** The controller output of the last tick. */
  get stimulation() {
    return this.nmm.x.nmm_stimulation(this.handle);
  }

  /** Back to the initial state; the controller's integral is cleared and the noise restarts
   * from its seed, so the same inputs replay the same run. */
  reset() {
    this.nmm.check(this.nmm.x.nmm_reset(this.handle));
    return this;
  }

  /** n ticks without recording. */
  step(n = 1) {
    this.nmm.check(this.nmm.x.nmm_step(this.handle, n));
    return this;
  }

  /**
   * n ticks, recording every state: a Float32Array of n rows of MAX_STATE values (a view into
   * the module's memory, valid until the next run: copy it to keep it).
   */
  run(n) {
    const rows = this.nmm.check(this.nmm.x.nmm_run(this.handle, n));
    return new Float32Array(this.nmm.memory, this.nmm.x.nmm_trace_ptr(), rows * MAX_STATE);
  }

  statePtr() {
    const ptr = this.nmm.x.nmm_state_ptr(this.handle);
    if (ptr === 0) throw this.nmm.error(-1);
    return ptr;
  }

  /** The current state (a copy, nState values). */
  get state() {
    return Array.from(new Float32Array(this.nmm.memory, this.statePtr(), this.nState));
  }

  /** The current state's raw bits (Uint32Array of MAX_STATE, padded with zeros). */
  get stateBits() {
    const ptr = this.statePtr();
    return new Uint32Array(this.nmm.memory.slice(ptr, ptr + 4 * MAX_STATE));
  }

  destroy() {
    if (this.handle >= 0) this.nmm.x.nmm_destroy(this.handle);
    this.handle = -1;
  }
}
