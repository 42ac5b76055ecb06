#!/usr/bin/env python3
"""Relates the MPR posterior's J on MLP data to the MLP's effective coupling J p.

MPR with J -> J p is the sparse network's mean field at first order (REFERENCE section 2), so
an MPR fit to data from a network (or its MLP mean field) at connection probability p should
find about J p, not J. Reads the check.csv of the MLP posterior (for the true p) and of the
MPR posterior on the same held-out MLP simulations (joined on `row`); prints the RMS distance
of MPR's posterior mean of J to the true J and to the true J p, their correlations, the
least-squares slope of MPR's J on J p, and both posteriors' bias in J by bins of the true p.
Standard library only.

usage: jp.py MLP_CHECK.csv MPR_ON_MLP_CHECK.csv
"""
import csv
import math
import sys


def rows(path):
    with open(path, newline="") as f:
        return {int(r["row"]): r for r in csv.DictReader(f)}


def corr(a, b):
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    sab = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    saa = sum((x - ma) ** 2 for x in a)
    sbb = sum((y - mb) ** 2 for y in b)
    return sab / math.sqrt(saa * sbb)


def rms(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)) / len(a))


def main():
    mlp, mpr = rows(sys.argv[1]), rows(sys.argv[2])
    common = sorted(set(mlp) & set(mpr))
    if not common:
        sys.exit("no held-out row in both files")
    j = [float(mlp[r]["true_J"]) for r in common]
    p = [float(mlp[r]["true_p"]) for r in common]
    jp = [a * b for a, b in zip(j, p)]
    est = [float(mpr[r]["mean_J"]) for r in common]
    slope = sum(x * y for x, y in zip(jp, est)) / sum(x * x for x in jp)
    print(f"MPR posterior mean of J on {len(common)} held-out MLP simulations:")
    print(f"  against the true J:   RMS {rms(est, j):.3f}, correlation {corr(est, j):.3f}")
    print(f"  against the true J p: RMS {rms(est, jp):.3f}, correlation {corr(est, jp):.3f}")
    print(f"  least-squares slope of MPR's J on J p (through 0): {slope:.3f}")
    mlp_est = [float(mlp[r]["mean_J"]) for r in common]
    print(f"MLP posterior mean of J against the true J: RMS {rms(mlp_est, j):.3f}, "
          f"correlation {corr(mlp_est, j):.3f}")
    # The bias as p falls: MPR's J should fall below the truth by about J (1 - p).
    print("bias of the posterior mean of J (mean of estimate - true J), by true p:")
    print(f"{'p in':>14} {'n':>4} {'MLP':>8} {'MPR':>8} {'-J(1-p)':>8}")
    for lo, hi in [(0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.0)]:
        idx = [i for i, v in enumerate(p) if lo <= v < hi or (hi == 1.0 and v == 1.0)]
        if not idx:
            continue
        b = lambda e: sum(e[i] - j[i] for i in idx) / len(idx)
        theory = -sum(j[i] * (1 - p[i]) for i in idx) / len(idx)
        print(f"{f'[{lo}, {hi})':>14} {len(idx):>4} {b(mlp_est):8.3f} {b(est):8.3f} {theory:8.3f}")


if __name__ == "__main__":
    main()
