#!/usr/bin/env python3
"""sbi's NPE trained and checked on the same pairs as `nmm infer train` / `nmm infer check`:
a second implementation of the calibration numbers (validation/infer/paper/README.md).

Trains sbi's NPE (default MAF, or NSF with --estimator nsf; 5 transforms, 50 hidden, its
training rules) on THETA/X with a
box-uniform prior, draws L samples for each held-out row (sbi rejects draws outside the
prior), and prints per parameter the SBC rank chi-square (10 bins), the coverage of the
central 50 / 90 / 95 % intervals, mean z-score and shrinkage, as `nmm infer check` defines
them; with --out, writes the ranks as CSV.

usage: sbi_check.py THETA.npy X.npy HELD_THETA.npy HELD_X.npy LOW,LOW,.. HIGH,HIGH,..
           [--draws L] [--seed S] [--estimator maf|nsf] [--out RANKS.csv]
"""
import argparse
import numpy as np
import torch
from sbi.inference import NPE
from sbi.utils import BoxUniform


def main():
    ap = argparse.ArgumentParser()
    for a in ["theta", "x", "held_theta", "held_x", "low", "high"]:
        ap.add_argument(a)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--estimator", default="maf", choices=["maf", "nsf"])
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.set_num_threads(1)
    low = torch.tensor([float(v) for v in a.low.split(",")])
    high = torch.tensor([float(v) for v in a.high.split(",")])
    prior = BoxUniform(low, high)
    theta = torch.tensor(np.load(a.theta), dtype=torch.float32)
    x = torch.tensor(np.load(a.x), dtype=torch.float32)
    ok = torch.isfinite(x).all(1)
    inf = NPE(prior=prior, density_estimator=a.estimator)
    est = inf.append_simulations(theta[ok], x[ok]).train(show_train_summary=True)
    post = inf.build_posterior(est)
    ht, hx = np.load(a.held_theta), np.load(a.held_x)
    n, d = ht.shape
    ranks = np.zeros((n, d), dtype=int)
    z = np.zeros((n, d))
    sd = np.zeros((n, d))
    for i in range(n):
        s = post.sample((a.draws,), x=torch.tensor(hx[i], dtype=torch.float32),
                        show_progress_bars=False).numpy().astype(float)
        ranks[i] = (s < ht[i]).sum(0)
        m, sd[i] = s.mean(0), s.std(0, ddof=1)
        z[i] = np.abs(m - ht[i]) / sd[i]
    prior_sd = (high - low).numpy() / np.sqrt(12.0)
    L = a.draws
    names = [f"theta_{j}" for j in range(d)]
    print(f"sbi NPE: {ok.sum().item()} pairs, {n} held-out rows, {L} draws each")
    print(f"{'parameter':>10} {'SBC chi2':>9} {'cover 50%':>10} {'cover 90%':>10} "
          f"{'cover 95%':>10} {'z-score':>8} {'shrinkage':>10}")
    for j in range(d):
        h = np.bincount(ranks[:, j] * 10 // (L + 1), minlength=10)
        per_bin = np.bincount(np.arange(L + 1) * 10 // (L + 1), minlength=10)
        e = n * per_bin / (L + 1)
        chi2 = ((h - e) ** 2 / e).sum()
        u = (ranks[:, j] + 0.5) / (L + 1) - 0.5
        cov = [np.mean(np.abs(u) <= lv / 2) for lv in (0.5, 0.9, 0.95)]
        shr = np.mean(1 - sd[:, j] ** 2 / prior_sd[j] ** 2)
        print(f"{names[j]:>10} {chi2:9.2f} {cov[0]:10.3f} {cov[1]:10.3f} {cov[2]:10.3f} "
              f"{z[:, j].mean():8.3f} {shr:10.3f}")
    if a.out:
        np.savetxt(a.out, ranks, fmt="%d", delimiter=",", header=",".join(names), comments="")


if __name__ == "__main__":
    main()
