"""Trajectory errors of a mean field against a group of network runs (shared by evaluate.py and
evaluate_izh.py; see evaluate.py's docstring for what they mean)."""
import csv

import numpy as np


def trajectory_errors(model, data):
    """model: (T,) bins of the model; data: (K, T) the group's runs at the same bins.

    Returns (mean single-run RMSE, systematic error, noise of the mean); the last two are None
    for K < 2."""
    k = data.shape[0]
    single = float(np.sqrt(np.mean((model - data) ** 2, axis=1)).mean())
    if k < 2:
        return single, None, None
    xbar = data.mean(axis=0)
    s2 = data.var(axis=0, ddof=1)
    d2 = np.mean((model - xbar) ** 2 - s2 / k)
    return single, float(np.sqrt(max(d2, 0.0))), float(np.sqrt(np.mean(s2 / k)))


def write_rows(path, rows):
    """Writes dicts as CSV, the columns in order of first appearance over all rows."""
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
