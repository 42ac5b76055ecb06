// Times the WASM module's tick through its ABI, for comparison with the native
// `cargo bench -p nmm-benches --bench realtime` (same models, dt, input; 1,000 ticks a call).
//
//   node wasm/js/bench.mjs [path/to/nmm_wasm.wasm]
import { readFileSync } from "node:fs";
import { loadNmm } from "./nmm.mjs";

const root = new URL("../../", import.meta.url);
const wasmPath = process.argv[2] ?? new URL("target/wasm32-unknown-unknown/release/nmm_wasm.wasm", root);
const nmm = await loadNmm(readFileSync(wasmPath));
const weights = readFileSync(new URL("models/mlp_p06_1.nmmw", root));

for (const kind of ["mpr", "cc", "mlp"]) {
  const m = nmm.create(kind, { dt: 0.01, weights: kind === "mlp" ? weights : undefined, input: 0.5 });
  const call = () => nmm.x.nmm_step(m.handle, 1000);
  for (let i = 0; i < 200; i++) call(); // warm-up (tier-up to optimised code)
  let best = Infinity;
  for (let rep = 0; rep < 7; rep++) {
    const calls = 300;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) if (call() < 0) throw nmm.error(-6);
    const ns = Number(process.hrtime.bigint() - t0) / (calls * 1000);
    best = Math.min(best, ns);
  }
  console.log(`wasm tick ${kind}: ${best.toFixed(1)} ns/tick (best of 7 x 300,000 ticks)`);
  m.destroy();
}
