#!/usr/bin/env python3
# Control for the training pipeline (models/README.md, "How the weighting was found").
# Usage: python3 models/mpr_control.py SWEEP_P1 SWEEP_P1_DENSE OUT_P1 OUT_P1_DENSE
# Replace each network run by MPR driven with the same input from the same initial state
# (RK4, 10 substeps per 0.01 bin, input held per bin), same file layout: a training set whose
# ground-truth vector field is MPR, to test the training pipeline's cusp against the analytic one.
import numpy as np, csv, shutil, sys, os
if len(sys.argv) != 5:
    sys.exit(__doc__ or "usage: mpr_control.py SWEEP_P1 SWEEP_P1_DENSE OUT_P1 OUT_P1_DENSE")
for src, dst in [(sys.argv[1], sys.argv[3]), (sys.argv[2], sys.argv[4])]:
    os.makedirs(dst, exist_ok=True)
    shutil.copy(f"{src}/manifest.csv", f"{dst}/manifest.csv")
    for name in os.listdir(src):
        if name.endswith(".json") or name.endswith(".toml"):
            shutil.copy(f"{src}/{name}", f"{dst}/{name}")
    rows = list(csv.DictReader(open(f"{src}/manifest.csv")))
    files = [np.load(f"{src}/{r['file']}") for r in rows]
    J = np.array([float(r["J"]) for r in rows]); eta = np.array([float(r["eta"]) for r in rows])
    t = files[0]["t"]; nb = len(t); dtb = t[1] - t[0]
    I = np.stack([f["input"] for f in files])
    r = np.array([f["r"][0] for f in files]); v = np.array([f["v"][0] for f in files])
    R = np.zeros((len(rows), nb)); V = np.zeros_like(R)
    R[:, 0], V[:, 0] = r, v
    sub = 10; h = dtb / sub
    def f(r, v, i):
        return 1/np.pi + 2*r*v, v*v + eta + J*r - (np.pi*r)**2 + i
    for k in range(1, nb):
        i = I[:, k-1]
        for _ in range(sub):
            a = f(r, v, i); b = f(r + h/2*a[0], v + h/2*a[1], i)
            c = f(r + h/2*b[0], v + h/2*b[1], i); d = f(r + h*c[0], v + h*c[1], i)
            r = r + h/6*(a[0] + 2*b[0] + 2*c[0] + d[0]); v = v + h/6*(a[1] + 2*b[1] + 2*c[1] + d[1])
        R[:, k], V[:, k] = r, v
    for n, (row, fl) in enumerate(zip(rows, files)):
        out = {k: fl[k] for k in fl.files}
        out["r"], out["v"] = R[n], V[n]
        np.savez(f"{dst}/{row['file']}", **out)
    print(dst, len(rows), "runs; max r", R.max(), "finite", np.isfinite(R).all())
