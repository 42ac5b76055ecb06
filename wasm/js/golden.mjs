// Runs nmm's golden scenarios through the WASM module's ABI and prints their digests.
//
//   node wasm/js/golden.mjs < request.json
//
// request: {"wasm": path, "weights": path, "r_max": 4.0,
//           "scenarios": [{"name", "model": "mpr"|"cc"|"mlp", "dt", "ticks", "input_gain",
//                          "pi": [kp, ki, setpoint, u_min, u_max] | null,
//                          "noise": [sigma_r, sigma_v, seed] | null}]}
// output: one JSON object {"name": {"digest": "0x...", "state": [..]}}
//
// The scenario table comes from the caller (the Rust test serialises nmm-core's), so nothing
// here can drift from it; the digest is FNV-1a 64 over the same bytes nmm-core digests.
import { readFileSync } from "node:fs";
import { loadNmm, MAX_STATE } from "./nmm.mjs";

const req = JSON.parse(readFileSync(0, "utf8"));
const nmm = await loadNmm(readFileSync(req.wasm));
const weights = readFileSync(req.weights);

const PRIME = 0x100000001b3n;
const MASK = (1n << 64n) - 1n;
class Fnv {
  constructor() {
    this.h = 0xcbf29ce484222325n;
  }
  bytes(u8) {
    for (const b of u8) this.h = ((this.h ^ BigInt(b)) * PRIME) & MASK;
  }
  f32(v) {
    this.bytes(new Uint8Array(new Float32Array([v]).buffer));
  }
  u16(v) {
    this.bytes(new Uint8Array(new Uint16Array([v]).buffer));
  }
}

const out = {};
for (const sc of req.scenarios) {
  const m = nmm.create(sc.model, { dt: sc.dt, weights: sc.model === "mlp" ? weights : undefined });
  if (sc.pi) {
    const [kp, ki, setpoint, uMin, uMax] = sc.pi;
    m.setController({ kp, ki, setpoint, uMin, uMax });
  }
  if (sc.noise) m.setNoise(sc.noise[0], sc.noise[1], BigInt(sc.noise[2]));
  const d = new Fnv();
  for (let k = 0; k < sc.ticks; k++) {
    // f32 product, as nmm-core computes it: round the gain to f32 first (the request carries
    // the shortest decimal, which parses to the nearest f64); the f64 product of two f32 is
    // exact, so one more rounding gives the f32 product.
    m.input = Math.fround(Math.fround(sc.input_gain) * nmm.scriptedInput(k));
    m.step(1);
    const bits = m.stateBits;
    d.bytes(new Uint8Array(bits.buffer, 0, 4 * MAX_STATE));
    d.f32(m.stimulation);
    d.u16(nmm.x.nmm_rate_to_duty(m.state[0], req.r_max, 0xffff));
  }
  out[sc.name] = { digest: "0x" + d.h.toString(16).padStart(16, "0"), state: m.state };
  m.destroy();
}
console.log(JSON.stringify(out));
