"""nmm's neural spline flow against nflows' (what sbi's `build_nsf` builds), weight for weight.

Loads an NMMP posterior file with estimator "nsf", builds sbi's NSF of the same sizes with
`build_nsf` (no z-scoring: nmm's standardisations are applied here by hand), copies nmm's
weights into it, and compares the log-densities with nmm's (`nmm infer log-prob --flow-only`).

    python nsf_vs_nflows.py POSTERIOR THETA.npy XO.npy LOGPROB.npy

THETA.npy (m, d) are the points nmm evaluated at the observation XO.npy; LOGPROB.npy is nmm's
output. Prints the largest absolute difference; exits 1 when it exceeds 1e-9 nats. Needs sbi
(tested with 0.27), torch and numpy; d >= 2 (for one parameter sbi's conditioner is a plain
net, nmm's the residual net: documented in nsf.rs).
"""

import json
import struct
import sys
import zlib

import numpy as np
import torch
from sbi.neural_nets.net_builders.flow import build_nsf


def read_nmmp(path):
    b = open(path, "rb").read()
    assert b[:4] == b"NMMP", "not an NMMP file"
    assert zlib.crc32(b[:-4]) == struct.unpack("<I", b[-4:])[0], "checksum"
    (length,) = struct.unpack("<I", b[8:12])
    h = json.loads(b[12 : 12 + length])
    w = np.frombuffer(b, "<f8", h["n_weights"], 12 + length)
    return h, w


def main():
    post, theta, xo, lp = sys.argv[1:5]
    h, w = read_nmmp(post)
    assert h["estimator"] == "nsf", h["estimator"]
    s, sp = h["shape"], h["spline"]
    d, c, hid, nt = s["dim"], s["context"], s["hidden"], s["transforms"]
    k, nb = sp["bins"], sp["blocks"]
    assert d >= 2, "one parameter: sbi uses another conditioner"
    torch.manual_seed(0)
    flow = build_nsf(
        torch.zeros(10, d),
        torch.zeros(10, c),
        z_score_x="none",
        z_score_y="none",
        hidden_features=hid,
        num_transforms=nt,
        num_bins=k,
        tail_bound=sp["tail_bound"],
        num_blocks=nb,
    ).double()
    ts = list(flow.net._transform._transforms)
    assert len(ts) == 2 * nt
    at = 0

    def take(shape):
        nonlocal at
        n = int(np.prod(shape))
        v = torch.tensor(w[at : at + n].reshape(shape))
        at += n
        return v

    with torch.no_grad():
        for t in range(nt):
            cp, lu = ts[2 * t], ts[2 * t + 1]
            net = cp.transform_net
            di = len(cp.identity_features)
            wx = take((hid, di))
            wc = take((hid, c))
            net.initial_layer.weight.copy_(torch.cat([wx, wc], 1))
            net.initial_layer.bias.copy_(take((hid,)))
            for blk in net.blocks:
                blk.linear_layers[0].weight.copy_(take((hid, hid)))
                blk.linear_layers[0].bias.copy_(take((hid,)))
                blk.linear_layers[1].weight.copy_(take((hid, hid)))
                blk.linear_layers[1].bias.copy_(take((hid,)))
                blk.context_layer.weight.copy_(take((hid, c)))
                blk.context_layer.bias.copy_(take((hid,)))
            rows = len(cp.transform_features) * (3 * k - 1)
            net.final_layer.weight.copy_(take((rows, hid)))
            net.final_layer.bias.copy_(take((rows,)))
            a = take((d, d))
            lo, up = np.tril_indices(d, -1), np.triu_indices(d, 1)
            lu.lower_entries.copy_(a[lo[0], lo[1]])
            lu.upper_entries.copy_(a[up[0], up[1]])
            lu.unconstrained_upper_diag.copy_(torch.diagonal(a))
            lu.bias.copy_(take((d,)))
        # sbi's base distribution holds 0.5 d ln(2 pi) rounded to float32 (7e-8 nats off at
        # d = 3), whatever the flow's dtype; set it exactly.
        flow.net._distribution._log_z.fill_(0.5 * d * np.log(2 * np.pi))
    assert at == len(w), (at, len(w))
    th = np.load(theta).reshape(-1, d)
    x = np.load(xo).reshape(1, -1)
    tm, ts_ = np.array(h["theta_z"]["mean"]), np.array(h["theta_z"]["std"])
    xm, xs = np.array(h["x_z"]["mean"]), np.array(h["x_z"]["std"])
    z = torch.tensor((th - tm) / ts_)
    ctx = torch.tensor((x - xm) / xs).repeat(len(th), 1)
    with torch.no_grad():
        ref = flow.net.log_prob(z, context=ctx).numpy() - np.log(ts_).sum()
    got = np.load(lp)
    diff = np.abs(ref - got).max()
    print(
        f"nsf vs nflows: {len(th)} points, D={d}, C={c}, {nt} transforms, {k} bins, "
        f"{nb} blocks: log q from {got.min():.3f} to {got.max():.3f}; "
        f"largest difference {diff:.3e} nats"
    )
    sys.exit(0 if diff < 1e-9 else 1)


if __name__ == "__main__":
    main()
