#!/usr/bin/env python3
"""Paired comparison of the MLP with MPR (J -> J p) over held-out groups.

Reads one or more CSVs written by evaluate.py and, for each error measure (single-run RMSE and
systematic error, r and v) and each p (then all p together), pairs the two models' errors on
the same group of network runs and reports:

  mean d       the mean over groups of d = MPR error - MLP error (> 0: the MLP is closer),
               and d relative to the mean MPR error;
  wins         the number of groups with d > 0, out of those with d != 0;
  sign p       two-sided exact sign test (binomial, 1/2) of "d > 0 and d < 0 equally likely";
  Wilcoxon p   two-sided exact Wilcoxon signed-rank test of "d is symmetric about 0"
               (null distribution of the rank sum by counting sign subsets of the actual
               ranks; ties get average ranks, so the p-value is exact conditional on the ties;
               zero d are dropped, as in the sign test).

A group is the unit: runs in one group share the model trajectory, so their errors are not
independent. Groups at nearby (J, eta) are not fully independent either (the models' errors
are smooth in the parameters), so the p-values are a guide, not a guarantee.

Written by hand because scipy is not a dependency of nmm's scripts (numpy only).

Usage: python3 models/paired.py EVAL.csv [EVAL2.csv ...]
"""
import csv, math, sys
import numpy as np


def sign_test(wins, n):
    """Two-sided exact binomial test of wins out of n at probability 1/2."""
    if n == 0:
        return 1.0
    k = min(wins, n - wins)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n
    return min(1.0, 2.0 * tail)


def wilcoxon(d):
    """Two-sided exact Wilcoxon signed-rank p-value of the differences d (zeros dropped)."""
    d = np.asarray([x for x in d if x != 0.0])
    n = len(d)
    if n == 0:
        return 1.0
    a = np.abs(d)
    order = np.argsort(a, kind="stable")
    ranks = np.empty(n)
    i = 0
    while i < n:  # average ranks over ties
        j = i
        while j + 1 < n and a[order[j + 1]] == a[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    # Doubled ranks are integers, so the null distribution is a subset-sum count over them.
    r2 = np.rint(2.0 * ranks).astype(int)
    w_plus = int(r2[d > 0].sum())
    total = int(r2.sum())
    counts = np.zeros(total + 1)
    counts[0] = 1.0
    for r in r2:  # each rank is in the positive set or not
        shifted = np.zeros_like(counts)
        shifted[r:] = counts[:-r]
        counts = counts + shifted
    counts /= counts.sum()
    lo = counts[: min(w_plus, total - w_plus) + 1].sum()
    return float(min(1.0, 2.0 * lo))


rows = []
for path in sys.argv[1:]:
    for row in csv.DictReader(open(path)):
        row["source"] = path
        rows.append(row)
if not rows:
    sys.exit("paired.py: no groups in " + " ".join(sys.argv[1:]))

measures = [("single r", "rmse_r"), ("single v", "rmse_v"), ("systematic r", "sys_r"),
            ("systematic v", "sys_v")]
ps = sorted({float(r["p"]) for r in rows})
print("%-13s %-6s %3s %10s %7s %6s %8s %10s" % (
    "measure", "p", "n", "mean d", "d/MPR", "wins", "sign p", "Wilcoxon p"))
for label, key in measures:
    for p in ps + [None]:
        sel = [r for r in rows if (p is None or float(r["p"]) == p)
               and r.get("mlp_" + key) not in (None, "")
               and r.get("mpr_Jp_" + key) not in (None, "")]
        if not sel:
            continue
        mlp = np.array([float(r["mlp_" + key]) for r in sel])
        mpr = np.array([float(r["mpr_Jp_" + key]) for r in sel])
        d = mpr - mlp
        if not np.all(np.isfinite(d)):
            sys.exit("paired.py: %s has a non-finite error at p = %s" % (key, p))
        wins = int((d > 0).sum())
        nz = int((d != 0).sum())  # ties (d = 0) count for neither side
        print("%-13s %-6s %3d %10.5f %6.1f%% %3d/%-2d %8.3g %10.3g" % (
            label, "all" if p is None else "%.1f" % p, len(sel), d.mean(),
            100.0 * d.mean() / mpr.mean(), wins, nz, sign_test(wins, nz), wilcoxon(d)))
