#!/usr/bin/env python3
"""Held-out evaluation of a discovered Chen-Campbell correction on Izhikevich networks.

For every group of runs of a held-out sweep (`nmm spiking sweep`, network = "izh") that share
g (the grid's J axis), eta, p, the drive (stimulus and its seed) and the initial state, and
differ only in the network seed, integrates once from the network's initial state with the same
drive (the noise:SIGMA:BETA:H stimulus regenerated from its seed by `nmm mf`), Heun at dt 0.01:
  - Chen-Campbell with s_jump -> s_jump p (`nmm mf cc`): the mean drive of a network without
    1/p normalisation, the analogue of MPR's J -> J p;
  - the closed form  (`nmm mf corrected --model C --g --eta --p`), when C is given; with KIND
    `ude`, the trained UDE of C instead (`nmm mf ude`: CC plus its network term, or the
    network alone for a file made with `nmm discover --network-only`);
  - Chen-Campbell as if all-to-all (s_jump unchanged), for scale.
The model's bin means (trapezoid over the bin) are compared with the network's bins:

  single-run RMSE  of r and v against one network run, averaged over the group.
  systematic       with K >= 2 runs per group, sqrt(mean_t[(m - xbar)^2 - s^2/K]) as in
                   models/evaluate.py (the finite-size noise of the K-run mean removed).
  bursts           r smoothed over 5 time units, after t = 100; a burst starts where it rises
                   above median + span/2 and ends below median + span/4 (span = max - median,
                   at least 0.03, else the run is tonic); period = median interval between
                   starts, amplitude = mean peak of the smoothed r over the bursts. Fewer than
                   two starts: no period. The network's values are the mean over the group's
                   runs with a period. Needs runs of several periods (grid_discover_izh_bursts).

Prints a table per group and means per p, and writes a CSV.

Usage: python3 models/evaluate_izh.py NMM HELDOUT_DIR OUT.csv [CLOSED.toml [corrected|ude]]
Needs numpy.
"""
import csv, json, subprocess, sys, tempfile, os
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from errors import trajectory_errors, write_rows  # noqa: E402

nmm, heldout, out = sys.argv[1:4]
closed = sys.argv[4] if len(sys.argv) > 4 else None
kind = sys.argv[5] if len(sys.argv) > 5 else "corrected"
if kind not in ("corrected", "ude"):
    sys.exit("KIND must be corrected or ude, got %r" % kind)
ckey, label = ("ude", "UDE") if kind == "ude" else ("closed", "closed form")
if kind == "ude":
    import tomllib  # Python >= 3.11
    with open(closed, "rb") as fh:
        if not tomllib.load(fh).get("network", {}).get("known", True):
            ckey, label = "mlp", "MLP"  # --network-only: the network is the whole field
T_SKIP = 100.0  # the first burst, set off by the (r, v) = (0, 0) start, is not counted
SMOOTH = 5.0  # time units: averages out the population spikes within a burst (period ~ 2-5)
# and the bins' Poisson noise; well below the bursts' length (~ 100) and period (~ 300)
MIN_SPAN = 0.03  # of smoothed r: tonic runs' smoothed fluctuations stay below ~ 0.01


def bursts(t, r):
    """(period, amplitude, count) of the bursts of r(t); period NaN when fewer than two."""
    b = t[1] - t[0]
    k = max(1, int(round(SMOOTH / b)))
    rs = np.convolve(r, np.ones(k) / k, mode="same")
    sel = (t >= T_SKIP) & (t <= t[-1] - SMOOTH)
    ts, rs = t[sel], rs[sel]
    base = np.median(rs)
    span = rs.max() - base
    # A tonic trace has no excursion to speak of: its fluctuations stay within MIN_SPAN.
    if span < MIN_SPAN:
        return float("nan"), float(rs.mean()), 0
    # Schmitt trigger: a burst starts above half the span and ends below a quarter of it.
    hi, lo = base + 0.5 * span, base + 0.25 * span
    onsets, peaks, inside, peak = [], [], False, 0.0
    for ti, x in zip(ts, rs):
        if not inside and x > hi:
            inside, peak = True, x
            onsets.append(ti)
        elif inside:
            peak = max(peak, x)
            if x < lo:
                inside = False
                peaks.append(peak)
    if len(onsets) < 2:
        return float("nan"), float(np.mean(peaks)) if peaks else float(rs.max()), len(onsets)
    return float(np.median(np.diff(onsets))), float(np.mean(peaks or [peak])), len(onsets)


groups = {}
for row in csv.DictReader(open(os.path.join(heldout, "manifest.csv"))):
    path = os.path.join(heldout, row["file"])
    if not os.path.exists(path):
        continue
    with np.load(path) as npz:
        d = {k: npz[k] for k in ("t", "r", "v", "meta")}
    meta = json.loads(d["meta"].tobytes())
    if meta["network"] != "izh":
        sys.exit(f"{path}: network {meta['network']!r}, expected izh")
    init = (float(meta["init"]["r"]), float(meta["init"]["v"]))
    key = (float(row["J"]), float(row["eta"]), float(row["p"]), meta["stim"],
           int(meta["stim_seed"]), init, float(meta["rate_bin"]), float(meta["t0"]),
           float(meta["t_end"]), json.dumps(meta["params"], sort_keys=True))
    groups.setdefault(key, []).append((row["file"], d["t"], d["r"], d["v"]))

results = []
with tempfile.TemporaryDirectory() as tmp:
    for key, members in sorted(groups.items()):
        g, eta, p, stim, seed, init, b, t0, t_end, params = key
        params = json.loads(params)
        s_jump = params.get("s_jump", 1.2308)
        fixed = []
        for name, val in params.items():
            if name not in ("g", "eta", "s_jump"):
                fixed += ["--" + name, repr(val)]
        steps = int(round(b / 0.01))
        common = ["--stim", stim, "--seed", str(seed), "--t0", str(t0), "--t-end", str(t_end),
                  "--dt", str(b / steps), "--init", "r=%r,v=%r,w=0,s=0" % init,
                  "--integrator", "heun", "--g", str(g), "--eta", str(eta)] + fixed
        runs = {
            "cc_sp": ["mf", "cc", "--s_jump", repr(s_jump * p)],
            "cc": ["mf", "cc", "--s_jump", repr(s_jump)],
        }
        if closed:
            runs[ckey] = ["mf", kind, "--model", closed, "--p", str(p), "--s_jump", repr(s_jump)]
        k = len(members)
        n = min(len(m[2]) for m in members)
        tn = members[0][1][:n]
        res = {"file": members[0][0], "runs": k, "g": g, "eta": eta, "p": p}
        net = [bursts(tn, m[2][:n]) for m in members]
        bursting = [x for x in net if x[2] >= 2]
        res["net_bursting"] = len(bursting)
        res["net_period"] = float(np.mean([x[0] for x in bursting])) if bursting else float("nan")
        res["net_amp"] = float(np.mean([x[1] for x in (bursting or net)]))
        for name, args in runs.items():
            f = os.path.join(tmp, name + ".npz")
            run = subprocess.run([nmm] + args + common + ["--out", f], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
            res[f"{name}_diverged"] = int(run.returncode != 0)
            if run.returncode != 0:
                # A model that blows up on a held-out run is a result, not a crash of the script:
                # its errors there are NaN and the summary counts the groups.
                print("%s: %s failed: %s" % (members[0][0], name, run.stderr.strip()), flush=True)
                for var in ("r", "v"):
                    res[f"{name}_rmse_{var}"] = res[f"{name}_sys_{var}"] = float("nan")
                res[f"{name}_period"] = res[f"{name}_amp"] = float("nan")
                continue
            with np.load(f) as npz:
                traj = {var: npz[var] for var in ("r", "v")}
            for vi, var in enumerate(("r", "v")):
                y = traj[var]
                trap = 0.5 * (y[:-1] + y[1:])
                m_bins = trap[: (len(trap) // steps) * steps].reshape(-1, steps).mean(axis=1)[:n]
                nn = len(m_bins)
                data = np.stack([mem[2 + vi][:nn] for mem in members])
                single, sys_, noise = trajectory_errors(m_bins, data)
                res[f"{name}_rmse_{var}"] = single
                if k >= 2:
                    res[f"{name}_sys_{var}"], res[f"noise_{var}"] = sys_, noise
                if var == "r":
                    per, amp, cnt = bursts(tn[:nn], m_bins)
                    res[f"{name}_period"], res[f"{name}_amp"] = per, amp
        results.append(res)
        names = [("CC(s p)", "cc_sp")] + ([(label.split()[0], ckey)] if closed else []) + [("CC", "cc")]
        line = "%-16s K=%d g=%5.2f eta=%5.2f p=%.2f " % (res["file"], k, g, eta, p)
        line += " | ".join("%s r %.4f v %.4f" % (lab, res[f"{n}_rmse_r"], res[f"{n}_rmse_v"])
                           for lab, n in names)
        if k >= 2:
            line += "  || systematic " + " | ".join(
                "%s r %.4f v %.4f" % (lab, res[f"{n}_sys_r"], res[f"{n}_sys_v"]) for lab, n in names)
            line += " (noise of the mean %.4f %.4f)" % (res["noise_r"], res["noise_v"])
        line += "  || period/amplitude network %.1f/%.3f (%d of %d burst) " % (
            res["net_period"], res["net_amp"], res["net_bursting"], k)
        line += " ".join("%s %.1f/%.3f" % (lab, res[f"{n}_period"], res[f"{n}_amp"])
                         for lab, n in names)
        print(line, flush=True)
write_rows(out, results)
print()
names = [("CC(s_jump p)", "cc_sp")] + ([(label, ckey)] if closed else []) + [
    ("CC all-to-all", "cc")]
for lab, n in names:
    bad = [r for r in results if r.get(f"{n}_diverged")]
    if bad:
        print("%s diverged in %d of %d groups (left out of its means below)" % (
            lab, len(bad), len(results)))
for p in sorted({r["p"] for r in results}):
    sel = [r for r in results if r["p"] == p]
    mean = lambda k: np.nanmean([r[k] for r in sel])
    print("p = %.2f (%d groups): mean single-run RMSE  " % (p, len(sel)) + " | ".join(
        "%s r %.4f v %.4f" % (lab, mean(f"{n}_rmse_r"), mean(f"{n}_rmse_v")) for lab, n in names))
    ens = [r for r in sel if r["runs"] >= 2]
    if ens:
        m2 = lambda k: np.nanmean([r[k] for r in ens])
        print("p = %.2f (%d groups of >= 2 runs): mean systematic error  " % (p, len(ens))
              + " | ".join("%s r %.4f v %.4f" % (lab, m2(f"{n}_sys_r"), m2(f"{n}_sys_v"))
                           for lab, n in names)
              + " (noise of the mean r %.4f v %.4f)" % (m2("noise_r"), m2("noise_v")))
# Bursting: over groups where the network bursts (>= 1 of its runs), how often each model
# bursts too, and its relative period and amplitude errors there.
nb = [r for r in results if r["net_bursting"] > 0]
nt = [r for r in results if r["net_bursting"] == 0]
print("\nbursting: the network bursts in %d of %d groups" % (len(nb), len(results)))
for lab, n in names:
    both = [r for r in nb if np.isfinite(r[f"{n}_period"])]
    false = [r for r in nt if np.isfinite(r[f"{n}_period"])]
    if both:
        pe = np.median([abs(r[f"{n}_period"] / r["net_period"] - 1) for r in both])
        ae = np.median([abs(r[f"{n}_amp"] / r["net_amp"] - 1) for r in both])
        extra = "; median |period error| %.0f %%, |amplitude error| %.0f %%" % (100 * pe, 100 * ae)
    else:
        extra = ""
    print("  %-14s bursts in %d of those %d groups, and in %d of the %d where the network does not%s"
          % (lab, len(both), len(nb), len(false), len(nt), extra))
