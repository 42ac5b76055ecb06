// Unit tests of nmm.mjs against the real module.
//
//   cd wasm && node --test js/test/api.test.mjs
//
// The module: $NMM_WASM, or target/wasm32-unknown-unknown/release/nmm_wasm.wasm from the
// repository root (build it: cargo build -p nmm-wasm --release --target wasm32-unknown-unknown).
import { test, before, afterEach } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadNmm, MAX_STATE, NmmError } from "../nmm.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const WASM = resolve(process.env.NMM_WASM ?? join(ROOT, "target", "wasm32-unknown-unknown", "release", "nmm_wasm.wasm"));
const WEIGHTS = join(ROOT, "models", "mlp_p06_1.nmmw");

const SLOTS = 8;
const TRACE_ROWS = 8192;

let nmm;
let weights;
const live = new Set();

/** Creates a model and destroys it after the test, whatever happens. */
function make(kind, opts = {}) {
  const m = nmm.create(kind, kind === "mlp" ? { weights, ...opts } : opts);
  live.add(m);
  return m;
}

before(async () => {
  assert.ok(
    existsSync(WASM),
    `no module at ${WASM}: build it (cargo build -p nmm-wasm --release --target wasm32-unknown-unknown) or set NMM_WASM`,
  );
  nmm = await loadNmm(readFileSync(WASM));
  weights = readFileSync(WEIGHTS);
});

afterEach(() => {
  for (const m of live) m.destroy();
  live.clear();
});

/** Asserts that `f` throws an NmmError with `code` whose message matches every pattern. */
function throwsNmm(f, code, ...patterns) {
  let err;
  try {
    f();
  } catch (e) {
    err = e;
  }
  assert.ok(err, "expected an NmmError, nothing was thrown");
  assert.ok(err instanceof NmmError, `expected an NmmError, got ${err?.name}: ${err?.message}`);
  assert.equal(err.name, "NmmError");
  assert.equal(err.code, code, `code of "${err.message}"`);
  for (const p of patterns) assert.match(err.message, p);
  return err;
}

test("create and destroy each kind", () => {
  for (const [kind, nState] of [["mpr", 2], ["cc", 4], ["mlp", 2]]) {
    const m = make(kind);
    assert.equal(m.kind, kind);
    assert.equal(m.nState, nState, `${kind} state size`);
    assert.ok(m.handle >= 0 && m.handle < SLOTS);
    assert.equal(m.state.length, nState);
    assert.ok(m.state.every(Number.isFinite), `${kind} initial state ${m.state}`);
    m.step(100);
    assert.ok(m.state.every(Number.isFinite), `${kind} state after 100 ticks ${m.state}`);
    m.destroy();
    assert.equal(m.handle, -1);
    m.destroy(); // idempotent
    // a destroyed model's calls fail cleanly
    throwsNmm(() => m.step(1), -1, /no model with handle -1/);
  }
  // creating and destroying many times does not leak slots
  for (let i = 0; i < 3 * SLOTS; i++) nmm.create("mpr").destroy();
  assert.throws(() => nmm.create("foo"), /unknown model kind "foo"/);
  assert.throws(() => nmm.create("mlp"), /needs the weight file/);
  throwsNmm(() => nmm.create("mpr", { dt: 0 }), -4, /dt = 0 must be positive/);
  throwsNmm(() => nmm.create("mpr", { dt: -0.01 }), -4, /dt = -0.01 must be positive/);
});

test("parameters: set/get round trip, defaults, options of create", () => {
  const mpr = make("mpr");
  assert.deepEqual(
    ["tau", "delta", "eta", "J"].map((n) => mpr.get(n)),
    [1, 1, -5, 15],
    "MPR defaults (the bistable set)",
  );
  const values = { tau: 2, delta: 0.5, eta: -4.25, J: 12.5 };
  for (const [n, v] of Object.entries(values)) assert.equal(mpr.set(n, v).get(n), v, n);
  // values are f32 in the module
  assert.equal(mpr.set("eta", 0.1).get("eta"), Math.fround(0.1));
  assert.ok(Number.isNaN(mpr.get("p")), "MPR has no p: get gives NaN");

  const mlp = make("mlp");
  assert.deepEqual(["eta", "p", "J"].map((n) => mlp.get(n)), [-5, 1, 15], "MLP defaults");
  for (const [n, v] of Object.entries({ eta: -7.5, p: 0.75, J: 10 })) assert.equal(mlp.set(n, v).get(n), v, n);

  const cc = make("cc");
  assert.equal(cc.set("eta", 0.25).get("eta"), 0.25);

  // params and input through create
  const m = make("mpr", { params: { eta: -3, J: 10 }, input: 1.5 });
  assert.equal(m.get("eta"), -3);
  assert.equal(m.get("J"), 10);
  assert.equal(m.input, 1.5);
});

test("unknown parameters and out-of-range values raise NmmError naming the parameter", () => {
  const mpr = make("mpr");
  throwsNmm(() => mpr.set("p", 0.8), -3, /model mpr has no parameter "p"/);
  throwsNmm(() => mpr.set("foo", 1), -3, /no parameter "foo"/);
  throwsNmm(() => mpr.set("tau", -1), -4, /parameter tau = -1 is outside its valid range \(0, inf\]/);
  throwsNmm(() => mpr.set("delta", -0.5), -4, /parameter delta/);
  throwsNmm(() => mpr.set("J", NaN), -4, /parameter J must be finite/);
  throwsNmm(() => mpr.set("eta", Infinity), -4, /parameter eta must be finite/);
  assert.equal(mpr.get("tau"), 1, "a rejected value leaves the parameter unchanged");
  assert.equal(mpr.get("J"), 15);

  const mlp = make("mlp");
  throwsNmm(() => mlp.set("tau", 1), -3, /model mlp has no parameter "tau"/);
  throwsNmm(() => mlp.set("p", 0), -4, /parameter p = 0 is outside its valid range \(0, 1\]/);
  throwsNmm(() => mlp.set("p", 1.5), -4, /parameter p = 1.5/);
  throwsNmm(() => mlp.set("J", 50), -4, /parameter J = 50 is outside its valid range \[0, 40\]/);
  throwsNmm(() => mlp.set("eta", -25), -4, /parameter eta = -25/);
  assert.equal(mlp.get("p"), 1);

  // the input and noise are checked too
  throwsNmm(() => { mpr.input = NaN; }, -4, /input NaN is not finite/);
  throwsNmm(() => mpr.setNoise(-1, 0), -4, /noise amplitudes \(-1, 0\) must be finite and >= 0/);

  // a create with a bad parameter throws and frees its slot
  throwsNmm(() => nmm.create("mpr", { params: { tau: -1 } }), -4, /parameter tau/);
  throwsNmm(() => nmm.create("mlp", { weights, params: { p: 2 } }), -4, /parameter p/);
  for (const m of live) m.destroy();
  live.clear();
  for (let i = 0; i < SLOTS; i++) make("mpr"); // all slots still free
});

test("bad weight files raise NmmError mentioning the weight file", () => {
  throwsNmm(() => nmm.create("mlp", { weights: weights.subarray(0, 100) }), -5, /^weight file: /, /truncated/);
  throwsNmm(() => nmm.create("mlp", { weights: new Uint8Array(0) }), -5, /weight file/, /truncated/);
  const badMagic = new Uint8Array(weights);
  badMagic[0] ^= 0xff;
  throwsNmm(() => nmm.create("mlp", { weights: badMagic }), -5, /weight file/, /NMMW/);
  const flipped = new Uint8Array(weights);
  flipped[flipped.length - 1000] ^= 0x01;
  throwsNmm(() => nmm.create("mlp", { weights: flipped }), -5, /weight file/, /checksum/);
  throwsNmm(() => nmm.create("mlp", { weights: new Uint8Array(70_000) }), -7, /65536-byte scratch buffer/);
  // the real file still loads (ArrayBuffer, typed array and node Buffer alike)
  const ab = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength);
  for (const w of [weights, new Uint8Array(weights), ab]) make("mlp", { weights: w });
});

test("run(n): n rows of 4 floats, the same ticks as step(n)", () => {
  const a = make("mpr", { input: 1 });
  const b = make("mpr", { input: 1 });
  const rows = a.run(500);
  assert.ok(rows instanceof Float32Array);
  assert.equal(MAX_STATE, 4);
  assert.equal(rows.length, 500 * MAX_STATE);
  for (let k = 0; k < 500; k++) {
    assert.ok(Number.isFinite(rows[4 * k]) && rows[4 * k] >= 0, `r at row ${k}`);
    assert.ok(Number.isFinite(rows[4 * k + 1]), `v at row ${k}`);
    assert.equal(rows[4 * k + 2], 0, "padding of a 2-state model");
    assert.equal(rows[4 * k + 3], 0, "padding of a 2-state model");
  }
  assert.deepEqual(Array.from(rows.subarray(499 * 4, 499 * 4 + 2)), a.state, "last row is the state");
  b.step(500);
  assert.deepEqual(Array.from(b.stateBits), Array.from(a.stateBits), "run(n) and step(n) give the same bits");
  assert.equal(a.run(0).length, 0);

  const cc = make("cc");
  const cr = cc.run(10);
  assert.equal(cr.length, 40);
  assert.deepEqual(Array.from(cr.subarray(36, 40)), cc.state, "Chen-Campbell fills all 4 columns");
});

test("MPR bistability: I = 3 for 10 ms then 0 stays high; from the start it stays low", () => {
  for (const kind of ["mpr", "mlp"]) {
    const low = make(kind, { dt: 0.01 });
    const high = make(kind, { dt: 0.01 });
    low.step(1000);
    high.input = 3;
    high.step(1000); // 10 ms of I = 3
    assert.ok(high.state[0] > 1.0, `${kind}: I = 3 drives r up: ${high.state[0]}`);
    high.input = 0;
    // 30 ms more at I = 0 for both
    const rHigh = high.run(3000).filter((_, i) => i % 4 === 0).slice(-1000);
    const rLow = low.run(3000).filter((_, i) => i % 4 === 0).slice(-1000);
    const mean = (a) => a.reduce((s, x) => s + x, 0) / a.length;
    assert.ok(mean(rLow) < 0.15, `${kind}: low state r = ${mean(rLow)} kHz`);
    assert.ok(mean(rHigh) > 0.8, `${kind}: high state persists at I = 0: r = ${mean(rHigh)} kHz`);
    assert.ok(mean(rHigh) > 5 * mean(rLow), `${kind}: ${mean(rHigh)} vs ${mean(rLow)}`);
    if (kind === "mpr") {
      // MPR's fixed points at eta = -5, J = 15, Delta = 1: r = 0.0811 and 1.03 kHz
      assert.ok(Math.abs(mean(rLow) - 0.0811) < 2e-3, `MPR low fixed point ${mean(rLow)}`);
      assert.ok(Math.abs(low.state[1] + 1 / (2 * Math.PI * low.state[0])) < 1e-3, "v* = -Delta/(2 pi r*)");
    }
  }
});

test(`${SLOTS + 1} creates exhaust the ${SLOTS} slots with a clear error`, () => {
  const ms = [];
  for (let i = 0; i < SLOTS; i++) ms.push(make(i % 2 ? "mlp" : "mpr"));
  assert.deepEqual(ms.map((m) => m.handle).sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
  throwsNmm(() => nmm.create("mpr"), -2, /all 8 model slots are in use; destroy one first/);
  throwsNmm(() => nmm.create("mlp", { weights }), -2, /all 8 model slots are in use/);
  const h = ms[3].handle;
  ms[3].destroy();
  const again = make("cc");
  assert.equal(again.handle, h, "a freed slot is reused");
  throwsNmm(() => nmm.create("mpr"), -2, /slots/);
  // the models still work
  for (const m of ms.filter((m) => m.handle >= 0)) m.step(10);
});

test("noise: same seed same trajectory, different seed different", () => {
  const trajectory = (kind, seed) => {
    const m = make(kind);
    m.setNoise(0.01, 0.3, seed);
    const out = Float32Array.from(m.run(2000)); // copy: the view is overwritten by the next run
    m.destroy();
    return out;
  };
  for (const kind of ["mpr", "mlp"]) {
    const a = trajectory(kind, 42);
    const b = trajectory(kind, 42);
    const c = trajectory(kind, 43);
    assert.deepEqual(a, b, `${kind}: same seed, same bits`);
    assert.notDeepEqual(a, c, `${kind}: different seeds differ`);
    // the noise does something: compare with the deterministic run
    const m = make(kind);
    assert.notDeepEqual(a, Float32Array.from(m.run(2000)), `${kind}: noise changes the run`);
  }
  // 64-bit seeds: the high half is used (2^32 is not 0), BigInt and Number agree
  const z = trajectory("mpr", 0);
  const big = trajectory("mpr", 2 ** 32);
  assert.notDeepEqual(z, big, "seed 2^32 differs from seed 0");
  assert.deepEqual(trajectory("mpr", 2n ** 32n), big, "BigInt seed = Number seed");
  // reset + setNoise with the same seed replays the run
  const m = make("mpr");
  m.setNoise(0.01, 0.3, 7);
  const first = Float32Array.from(m.run(1000));
  m.reset().setNoise(0.01, 0.3, 7);
  assert.deepEqual(Float32Array.from(m.run(1000)), first, "reset + same seed replays");
  // reset alone restarts the noise from its seed too
  m.reset();
  assert.deepEqual(Float32Array.from(m.run(1000)), first, "reset replays");
  // a destroyed model's state is an error, not a read of address 0
  m.destroy();
  assert.throws(() => m.state, NmmError);
});

test(`run(n) beyond the trace capacity (${TRACE_ROWS} rows) errors cleanly`, () => {
  const m = make("mpr", { input: 1 });
  assert.equal(m.run(TRACE_ROWS).length, TRACE_ROWS * MAX_STATE);
  const before = Array.from(m.stateBits);
  throwsNmm(() => m.run(TRACE_ROWS + 1), -7, /8193 ticks exceed the trace of 8192 rows/);
  assert.deepEqual(Array.from(m.stateBits), before, "a rejected run does not step the model");
  throwsNmm(() => m.run(100_000), -7, /100000 ticks exceed/);
  // the model works after the error; step(n) has no trace and no such limit
  assert.equal(m.run(10).length, 40);
  m.step(TRACE_ROWS * 2);
  assert.ok(m.state.every(Number.isFinite));
});

test("divergence is reported, and reset recovers", () => {
  // tau = 1 us with dt = 10 us: Heun is unstable and the state leaves the finite numbers
  const m = make("mpr", { params: { tau: 0.001 } });
  throwsNmm(() => m.step(1000), -6, /state not finite after tick \d+; reset or change parameters/);
  m.set("tau", 1).reset();
  m.step(100);
  assert.ok(m.state.every(Number.isFinite), `after reset: ${m.state}`);
});

test("mpr-corrected: the terms of a model file by name; -(1-p) J r is MPR with J -> J p", () => {
  const p = 0.6;
  const c = make("mpr-corrected", {
    params: { p, J: 15 },
    terms: [{ equation: "v", factor: "(1-p)", monomial: "J r", coef: -1 }],
    input: 1,
  });
  assert.equal(c.get("p"), Math.fround(p));
  const m = make("mpr", { params: { J: 15 * p }, input: 1 });
  // Both from MPR's quiescent point at J = 15 (the corrected model's start): 0.0811 kHz.
  const r0 = c.state[0];
  const rc = c.run(2000);
  // From MPR(J p)'s own start instead, the two relax to the same fixed point; 1e-4 relative
  // bounds the f32 rounding of J r - (1-p) J r against (p J) r after 20 ms.
  const rm = m.run(2000);
  for (const i of [0, 1]) {
    const a = rc[4 * 1999 + i];
    const b = rm[4 * 1999 + i];
    assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)), `state ${i}: ${a} vs ${b}`);
  }
  assert.ok(Math.abs(r0 - 0.0811) < 2e-3, `start ${r0}`);
  assert.throws(() => c.addTerm("w", "1", "r", 1), (e) => e instanceof NmmError && /equation/.test(e.message));
  assert.throws(() => c.addTerm("v", "1", "r^3", 1), (e) => e instanceof NmmError && /unknown/.test(e.message));
  assert.throws(() => make("mpr").addTerm("v", "1", "r", 1), (e) => e instanceof NmmError && /no correction terms/.test(e.message));
});

test("cc-corrected: -s_jump (1-p) r in s is Chen-Campbell with s_jump -> s_jump p", () => {
  const p = 0.4;
  const sJump = 1.2308;
  // The law nmm discover finds on Izhikevich networks (models/discover_cc).
  const c = make("cc-corrected", {
    params: { p, eta: 0.12 },
    terms: [{ equation: "s", factor: "(1-p)", monomial: "r", coef: -sJump }],
    input: 0.02,
  });
  assert.equal(c.nState, 4);
  const m = make("cc", { params: { s_jump: sJump * p, eta: 0.12 }, input: 0.02 });
  const rc = c.run(2000);
  const rm = m.run(2000);
  // The same field up to f32 rounding of s_jump r - (1-p) s_jump r against (p s_jump) r;
  // 1e-4 relative bounds 2000 ticks of a few ulp each.
  for (let k = 0; k < 2000; k += 199) {
    for (const i of [0, 1, 2, 3]) {
      const a = rc[4 * k + i];
      const b = rm[4 * k + i];
      assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)), `tick ${k} state ${i}: ${a} vs ${b}`);
    }
  }
  assert.throws(() => c.addTerm("x", "1", "r", 1), (e) => e instanceof NmmError && /equation/.test(e.message));
  assert.throws(() => c.addTerm("s", "1", "J r", 1), (e) => e instanceof NmmError && /unknown/.test(e.message));
});
