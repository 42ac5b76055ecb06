#!/usr/bin/env python3
"""Slow hysteresis sweeps: where the network, the MLP and MPR with J -> J p jump between states.

For each (J, p), the drive is a slow sine, eta_eff(t) = eta0 + A sin(2 pi t / T) with T = 200
time units, no noise, centred on MPR's (J p) bistable range (eta0 its midpoint, A its half-width
plus 1). Starting in the low state at eta0, the state jumps up near the low state's fold while
eta_eff rises, and down near the high state's fold while it falls. Each jump is the first time
the rate, smoothed over 1 time unit (centred moving average), crosses the midpoint of MPR's two
fold rates; it is reported as the eta_eff at that time. The sweep moves, so jumps lag the folds
by a similar amount for every model (a slow passage through a saddle-node); what is compared is
the jump points of the models against those of the network under the same protocol.

Networks: QIF, N = 10^4, Euler dt = 1e-4, pulse synapses, the defaults of `nmm spiking qif`
(as in the training sweeps), one run per network seed. Models: `nmm mf` with Heun, dt = 0.01.

Prints a table and writes a CSV: J, p, MPR's folds (J p), the network's jump points (mean and
sample standard deviation over seeds; NaN where fewer than 2 seeds jumped), and each model's
jump points. A run that starts high or never jumps is reported on stderr and left out (NaN).

Usage: python3 models/hysteresis.py NMM MODEL.nmmw OUT.csv J,p [J,p ...]
       (NMM_SEEDS=21,22,23,24 and NMM_WORK=DIR, where network runs are kept, are optional;
       NMM_CLOSED=A.toml[,B.toml] adds discovered closed forms, `nmm mf corrected`, labelled
       by their file names; NMM_UDE=A.toml[,...] the trained UDEs of such files, `nmm mf ude`,
       labelled NAME_ude.)
Needs numpy.
"""
import csv, os, re, shutil, subprocess, sys, tempfile
from concurrent.futures import ThreadPoolExecutor
import numpy as np

nmm, model, out = sys.argv[1:4]
specs = [tuple(map(float, s.split(","))) for s in sys.argv[4:]]
if not specs:
    sys.exit("hysteresis.py: give at least one J,p")
seeds = [int(s) for s in os.environ.get("NMM_SEEDS", "21,22,23,24").split(",")]
# (label, nmm mf subcommand, model file) of each discovered model compared.
closed = [(os.path.splitext(os.path.basename(c))[0], "corrected", c)
          for c in os.environ.get("NMM_CLOSED", "").split(",") if c]
closed += [(os.path.splitext(os.path.basename(c))[0] + "_ude", "ude", c)
           for c in os.environ.get("NMM_UDE", "").split(",") if c]
if len({lab for lab, _, _ in closed} | {"mlp", "mpr_Jp"}) != len(closed) + 2:
    sys.exit("hysteresis.py: two models would share the label (file name) %r"
             % [lab for lab, _, _ in closed])
work = os.environ.get("NMM_WORK") or tempfile.mkdtemp(prefix="nmm_hysteresis_")
os.makedirs(work, exist_ok=True)
T, BIN, SMOOTH = 200.0, 0.01, 1.0


def mpr_folds(jp):
    o = subprocess.run([nmm, "bifurcation", "mpr", "--J", repr(jp), "--param", "eta",
                        "--range=-15,5"], capture_output=True, text=True, check=True).stdout
    f = sorted((float(a), float(b)) for a, b in
               re.findall(r"fold \(LP\) at eta = ([-0-9.e]+): r = ([-0-9.e]+)", o))
    if len(f) != 2:
        sys.exit("hysteresis.py: MPR with J p = %g has %d folds in eta, need 2 (bistable)"
                 % (jp, len(f)))
    return f


def run(args, path):
    if not os.path.exists(path):
        subprocess.run([nmm] + args + ["--out", path + ".part"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.replace(path + ".part", path)  # a killed run leaves no file that looks finished
    with np.load(path) as z:
        return z["t"], z["r"]


def jumps(t, r, eta0, amp, thr, what):
    w = int(round(SMOOTH / BIN))
    s = np.convolve(r, np.ones(w) / w, mode="same")
    # The protocol starts in the low state at eta0; a run that is high before eta_eff has
    # risen (1.5 < t < 2) has no up jump to report.
    early = (t > 1.5) & (t < 2.0)
    if np.any(s[early] > thr):
        print("hysteresis.py: %s is in the high state at t < 2; no jumps reported" % what,
              file=sys.stderr)
        return float("nan"), float("nan")
    up = np.flatnonzero((s > thr) & (t > 2.0))
    if len(up) == 0:
        print("hysteresis.py: %s never jumps up" % what, file=sys.stderr)
        return float("nan"), float("nan")
    dn = np.flatnonzero((s < thr) & (t > max(t[up[0]], T / 4)) & (t < T - SMOOTH))
    eta = lambda i: eta0 + amp * np.sin(2.0 * np.pi * t[i] / T)
    return eta(up[0]), (eta(dn[0]) if len(dn) else float("nan"))


rows = []
for J, p in specs:
    (e_hi, r_hi), (e_lo, r_lo) = mpr_folds(J * p)  # e_hi: the high state's fold (lower eta)
    eta0, amp, thr = 0.5 * (e_hi + e_lo), 0.5 * (e_lo - e_hi) + 1.0, 0.5 * (r_hi + r_lo)
    common = ["--stim", "sin:%r:%r" % (amp, 1.0 / T), "--t-end", repr(T), "--init", "r=0.1,v=-2"]
    net_args = lambda s: ["spiking", "qif", "--J", repr(J), "--p", repr(p), "--eta", repr(eta0),
                          "--N", "10000", "--dt", "1e-4", "--bin", repr(BIN), "--synapse",
                          "pulse", "--threads", "1", "--seed", str(s)] + common
    # Cached runs are keyed by everything that sets them (a reused NMM_WORK never serves a
    # run of another protocol).
    paths = [os.path.join(work, "qif_J%r_p%r_eta%r_A%r_T%r_seed%d.npz" % (J, p, eta0, amp, T, s))
             for s in seeds]
    with ThreadPoolExecutor(os.cpu_count() or 1) as ex:
        nets = list(ex.map(lambda a: run(*a), [(net_args(s), f) for s, f in zip(seeds, paths)]))
    net = np.array([jumps(t, r, eta0, amp, thr, "network J = %g, p = %g, seed %d" % (J, p, s))
                    for (t, r), s in zip(nets, seeds)])
    sd = lambda x: float(np.nanstd(x, ddof=1)) if np.sum(np.isfinite(x)) > 1 else float("nan")
    mf = ["--dt", repr(BIN), "--integrator", "heun"] + common
    res = {"J": J, "p": p, "mpr_fold_low_state": e_lo, "mpr_fold_high_state": e_hi,
           "net_up": float(np.nanmean(net[:, 0])), "net_up_sd": sd(net[:, 0]),
           "net_down": float(np.nanmean(net[:, 1])), "net_down_sd": sd(net[:, 1]),
           "seeds": len(seeds), "seeds_with_both_jumps": int(np.sum(np.all(np.isfinite(net), axis=1)))}
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in (("mpr_Jp", ["mf", "mpr", "--eta", repr(eta0), "--J", repr(J * p)]),
                           ("mlp", ["mf", "mlp", "--model", model, "--eta", repr(eta0), "--J",
                                    repr(J), "--p", repr(p)])) + tuple(
                (lab, ["mf", sub, "--model", c, "--eta", repr(eta0), "--J", repr(J), "--p",
                       repr(p)]) for lab, sub, c in closed):
            t, r = run(args + mf, os.path.join(tmp, name + ".npz"))
            res[name + "_up"], res[name + "_down"] = jumps(t, r, eta0, amp, thr,
                                                           "%s J = %g, p = %g" % (name, J, p))
    rows.append(res)
    print("J = %g, p = %g: jumps up / down at eta  network %.3f (sd %.3f) / %.3f (sd %.3f) | "
          "MLP %.3f / %.3f (off by %+.3f / %+.3f) | MPR(J p) %.3f / %.3f (off by %+.3f / %+.3f)" % (
              J, p, res["net_up"], res["net_up_sd"], res["net_down"], res["net_down_sd"],
              res["mlp_up"], res["mlp_down"], res["mlp_up"] - res["net_up"],
              res["mlp_down"] - res["net_down"], res["mpr_Jp_up"], res["mpr_Jp_down"],
              res["mpr_Jp_up"] - res["net_up"], res["mpr_Jp_down"] - res["net_down"])
          + "".join(" | %s %.3f / %.3f (off by %+.3f / %+.3f)" % (
              lab, res[lab + "_up"], res[lab + "_down"],
              res[lab + "_up"] - res["net_up"], res[lab + "_down"] - res["net_down"])
              for lab, _, _ in closed), flush=True)
with open(out, "w", newline="") as fh:
    w = csv.DictWriter(fh, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
err = lambda k: np.nanmean([abs(r[k + "_" + j] - r["net_" + j]) for r in rows
                            for j in ("up", "down")])
print("mean |jump - network's|: MLP %.4f, MPR(J p) %.4f%s (network seed sd about %.4f; NaN "
      "jumps left out)" % (err("mlp"), err("mpr_Jp"),
                           "".join(", %s %.4f" % (lab, err(lab)) for lab, _, _ in closed),
                           np.nanmean([r["net_" + j + "_sd"] for r in rows for j in ("up", "down")])))
if not os.environ.get("NMM_WORK"):
    shutil.rmtree(work, ignore_errors=True)
