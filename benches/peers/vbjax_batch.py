#!/usr/bin/env python3
"""Issue 20's workload W in vbjax (the 2025 paper's simulator), batched with jax.vmap, on one
thread; prints one JSON line with simulations per minute once compiled.

Workload W: TVB connectivity_76 (weights / max, zero diagonal, no delays); MPR nodes (tau 1 ms,
Delta 1, J 15, eta = -5 + 0.01 k for simulation k of the batch), coupling G W r into v with
G = 0.1; additive noise sqrt(2 nsig) sqrt(dt) z, nsig = (0.01, 0.02); stochastic Heun with
r >= 0 (vbjax's make_sde with mpr_r_positive), dt = 0.1 ms; BOLD (vbjax's make_bold, its
default theta, dt 5 ms) from 5 ms means of r, sampled every TR = 2 s; 60 s; FC of the BOLD.
Noise is drawn with jax.random per 5 ms chunk inside the scan, as vbjax's examples do.

With --model mlp the nodes are the data-driven MLP mean field instead (the network of
--model-file, models/mlp_p06_1.nmmw by default, read from its NMMW file; p = 0.8, J = 15):
(dr, dv)/dt = denormalise(MLP(normalise(r, v, eta, p, J, I))), tanh hidden layers, as nmm
evaluates it, inside the same vbjax integrator.

Usage: python3 benches/peers/vbjax_batch.py [--batch 8] [--precision f32|f64] [--seconds 60]
                                             [--reps 3] [--model mpr|mlp] [--connectome PATH]
Install: pip install vbjax (pulls jax and jaxlib for the CPU). Run under `taskset -c 0` for
one core; XLA is told to use one thread below.
"""
import argparse
import io
import json
import os
import sys
import time
import zipfile

ap = argparse.ArgumentParser()
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--precision", choices=["f32", "f64"], default="f32")
ap.add_argument("--seconds", type=float, default=60.0)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--model", choices=["mpr", "mlp"], default="mpr")
ap.add_argument("--model-file", default=os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "../../models/mlp_p06_1.nmmw"))
ap.add_argument("--connectome", default=os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "../../../shared/data/tvb/connectivity_76.zip"))
args = ap.parse_args()

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
try:
    import jax
except ImportError:
    print("jax/vbjax not installed (pip install vbjax); skipping", file=sys.stderr)
    sys.exit(0)
if args.precision == "f64":
    jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np
import vbjax as vb

dtype = jnp.float64 if args.precision == "f64" else jnp.float32

with zipfile.ZipFile(args.connectome) as z:
    name = next(n for n in z.namelist() if n.endswith("weights.txt"))
    w = np.loadtxt(io.BytesIO(z.read(name)))
np.fill_diagonal(w, 0.0)
W = jnp.asarray(w / w.max(), dtype)
n = W.shape[0]

DT = 0.1                      # ms
CHUNK = 50                    # steps per 5 ms BOLD step
TR_CHUNKS = 400               # 5 ms steps per TR of 2 s
N_TR = int(args.seconds * 1000 / 5 / TR_CHUNKS)
G = 0.1
sigma = jnp.sqrt(2 * jnp.asarray([0.01, 0.02], dtype))[:, None]


def read_nmmw(path):
    import struct
    b = open(path, "rb").read()
    n_in, h1, h2, n_out = struct.unpack("<4H", b[12:20])
    F = 2 * n_in + 2 * n_out + h1 * (n_in + 1) + h2 * (h1 + 1) + n_out * (h2 + 1)
    f = np.frombuffer(b, "<f4", F, 20).astype(np.float64)
    parts, at = [], 0
    for size in [n_in, n_in, n_out, n_out, h1 * n_in, h1, h2 * h1, h2, n_out * h2, n_out]:
        parts.append(f[at:at + size])
        at += size
    in_mean, in_scale, out_scale, out_offset, w1, b1, w2, b2, w3, b3 = parts
    return dict(in_mean=in_mean, in_scale=in_scale, out_scale=out_scale, out_offset=out_offset,
                w1=w1.reshape(h1, n_in), b1=b1, w2=w2.reshape(h2, h1), b2=b2,
                w3=w3.reshape(n_out, h2), b3=b3)


if args.model == "mlp":
    net = {k: jnp.asarray(v, dtype) for k, v in read_nmmw(args.model_file).items()}

    def dfun(x, p):
        c = G * (W @ x[0])
        u = jnp.stack([x[0], x[1], jnp.broadcast_to(p.eta, (n,)), jnp.full((n,), 0.8, dtype),
                       jnp.full((n,), 15.0, dtype), c])          # (6, n)
        z = (u - net["in_mean"][:, None]) / net["in_scale"][:, None]
        h = jnp.tanh(net["w1"] @ z + net["b1"][:, None])
        h = jnp.tanh(net["w2"] @ h + net["b2"][:, None])
        y = net["w3"] @ h + net["b3"][:, None]
        return y * net["out_scale"][:, None] + net["out_offset"][:, None]
else:
    def dfun(x, p):
        c = G * (W @ x[0])
        return vb.mpr_dfun(x, (c, 0.0), p)


_, loop = vb.make_sde(DT, dfun, sigma, adhoc=vb.mpr_r_positive)
bold0, bold_step, bold_sample = vb.make_bold((n,), 5e-3, vb.bold_default_theta)


def simulate(key, eta):
    p = vb.mpr_default_theta._replace(eta=eta)
    x0 = jnp.stack([jnp.full((n,), 0.1, dtype), jnp.full((n,), -2.0, dtype)])

    def chunk(carry, k):
        x, b = carry
        zs = jax.random.normal(k, (CHUNK, 2, n), dtype)
        xs = loop(x, zs, p)
        b = bold_step(b, xs[:, 0].mean(axis=0))
        return (xs[-1], b), None

    def tr(carry, k):
        carry, _ = jax.lax.scan(chunk, carry, jax.random.split(k, TR_CHUNKS))
        return carry, bold_sample(carry[1])[1]

    _, bold = jax.lax.scan(tr, (x0, bold0.astype(dtype)), jax.random.split(key, N_TR))
    return jnp.corrcoef(bold.T)


batch = jax.jit(jax.vmap(simulate))
keys = jax.random.split(jax.random.PRNGKey(0), args.batch)
etas = jnp.asarray(-5.0 + 0.01 * np.arange(args.batch), dtype)
t0 = time.perf_counter()
fc = batch(keys, etas).block_until_ready()
compile_s = time.perf_counter() - t0
times = []
for _ in range(args.reps):
    t0 = time.perf_counter()
    fc = batch(keys, etas).block_until_ready()
    times.append(time.perf_counter() - t0)
best = min(times)
region_steps = args.batch * n * args.seconds * 1000 / DT
print(json.dumps({
    "peer": "vbjax", "model": args.model, "vbjax": getattr(vb, "__version__", "?"), "jax": jax.__version__,
    "precision": args.precision, "batch": args.batch, "seconds": args.seconds,
    "first_call_s": round(compile_s, 3), "times_s": [round(t, 3) for t in times],
    "sims_per_min": round(args.batch * 60 / best, 2),
    "region_steps_per_s": float(f"{region_steps / best:.4g}"),
    "fc_finite": bool(np.isfinite(np.asarray(fc)).all()),
}))
