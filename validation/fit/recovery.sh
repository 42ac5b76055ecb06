#!/usr/bin/env bash
# Issue 18's synthetic recovery: SUBJECTS synthetic subjects on the 66-region TVB connectome
# (griffiths2022 weights, no delays), each TRS (400) TRs of 750 ms (300 s) of BOLD simulated by nmm
# with the same known gains (G = 4, g_EE = 0.21, g_EI = 0.15, g_IE = 1; the rest at
# rww-griffiths' defaults) and its own noise seed (1000 + i); each fitted from its own random
# start (every gain times exp(U(-0.3, 0.3)), drawn by Python's random.Random(i)) with another
# noise seed (i), so that no fit sees its subject's noise. Windows of WINDOW_TR TRs, EPOCHS
# epochs, Adam lr 0.05 (falling to LR_FINAL when set), objective -ln(0.5 + 0.5 r) + MSE_WEIGHT *
# mean squared FC difference, REALISATIONS noise realisations per window (1: the paper's; 2 or
# more: the correlation of their mean FC and the pairwise, unbiased squared difference).
# Writes $OUT/subject-i.{npy,json}, $OUT/fit-i.{npz,json}, and the table recovery.txt (COPY=1
# copies it here as recovery-$TAG.txt). FIRST=k runs and tabulates subjects k to SUBJECTS - 1
# only (the others run elsewhere; COPY=1 is refused then, the table being partial).
#
# Full run (about 25 min on 2 cores): validation/fit/recovery.sh
# Paper's objective:                  MSE_WEIGHT=0 TAG=corr validation/fit/recovery.sh
# Expected FC (recovery-pairs.txt, 20 subjects; about 4 CPU-minutes per subject; subjects 0-9
# ran here, 10-19 on a 16-core machine with FIRST=10 JOBS=10 CONNECTOME=<its path>, then all
# 20 tabulated here with TABLE_ONLY=1):
#     REALISATIONS=2 MSE_WEIGHT=100 EPOCHS=12 LR_FINAL=0.005 TAG=pairs COPY=1 \
#         validation/fit/recovery.sh
# The same subjects with 900 s of BOLD and the same number of Adam steps (recovery-pairs-1200.txt;
# validation/fit/length.sh compares the two):
#     REALISATIONS=2 MSE_WEIGHT=100 EPOCHS=4 TRS=1200 LR_FINAL=0.005 SUBJECTS=10 \
#         OUT=target/fit-recovery-1200 TAG=pairs-1200 COPY=1 validation/fit/recovery.sh
# Three times the steps (recovery-pairs-long.txt, subjects 0-15; run as SUBJECTS=4, then
# FIRST=4 SUBJECTS=12, then FIRST=12 SUBJECTS=16, then tabulated with TABLE_ONLY=1 SUBJECTS=16
# COPY=1; about 13 min a pair of fits on 2 cores):
#     REALISATIONS=2 MSE_WEIGHT=100 EPOCHS=36 LR_FINAL=0.005 SUBJECTS=16 \
#         OUT=target/fit-recovery-long TAG=pairs-long COPY=1 validation/fit/recovery.sh
# Three times the steps and the recording (recovery-pairs-1200-long.txt, subjects 2-3; COPY
# refuses a partial table, so it was copied from $OUT/recovery.txt by hand):
#     REALISATIONS=2 MSE_WEIGHT=100 EPOCHS=12 TRS=1200 LR_FINAL=0.005 FIRST=2 SUBJECTS=4 \
#         OUT=target/fit-recovery-1200-long validation/fit/recovery.sh
# CI's small version (builtin:8, 3 subjects, G only, seconds):
#     SMALL=1 validation/fit/recovery.sh
set -euo pipefail
nmm=${NMM:-target/release/nmm}
subjects=${SUBJECTS:-20}
first=${FIRST:-0}
epochs=${EPOCHS:-8}
window=${WINDOW_TR:-100}
mse=${MSE_WEIGHT:-10}
trs=${TRS:-400}
realisations=${REALISATIONS:-1}
lr_final=${LR_FINAL:+lr_final = $LR_FINAL}
conn=${CONNECTOME:-../shared/data/tvb/connectivity_66.zip}
fit='["G", "g_EE", "g_EI", "g_IE"]'
truth='G = 4.0
g_EE = 0.21
g_EI = 0.15
g_IE = 1.0'
if [ "${SMALL:-0}" = 1 ]; then
    subjects=3 epochs=4 window=40 trs=160 conn=builtin:8 fit='["G"]'
    truth='G = 2.0'
fi
if [ "$first" -ge "$subjects" ]; then
    echo "recovery.sh: FIRST=$first leaves no subjects (SUBJECTS=$subjects; SMALL=1 has 3)" >&2
    exit 2
fi
if [ "$first" -gt 0 ] && [ "${COPY:-0}" = 1 ]; then
    echo "recovery.sh: COPY=1 with FIRST=$first would copy a partial table" >&2
    exit 2
fi
tag=${TAG:-mse}
out=${OUT:-target/fit-recovery-$tag}
here=$(dirname "$0")
mkdir -p "$out"
common="transient_ms = 20000.0
epochs = $epochs
window_tr = $window
mse_weight = $mse
realisations = $realisations
$lr_final
[connectome]
path = \"$conn\"
delays = false
normalise = [\"griffiths2022\"]"
one() {
    local i=$1
    printf '%s\n[params]\n%s\n' "$common" "$truth" > "$out/truth-$i.toml"
    {
        printf 'fit = %s\n%s\n[params]\n' "$fit" "$common"
        python3 -c '
import json, math, random, sys
i, fit = int(sys.argv[1]), json.loads(sys.argv[2])
truth = dict(l.split(" = ") for l in sys.argv[3].splitlines())
rng = random.Random(i)
for k, v in truth.items():
    x = float(v) * math.exp(rng.uniform(-0.3, 0.3)) if k in fit else float(v)
    print(f"{k} = {x!r}")' "$i" "$fit" "$truth"
    } > "$out/start-$i.toml"
    "$nmm" fit --config "$out/truth-$i.toml" --bold "$out/subject-$i.npy" --synthetic $trs \
        --seed $((1000 + i)) > /dev/null
    "$nmm" fit --config "$out/start-$i.toml" --bold "$out/subject-$i.npy" --seed "$i" \
        --out "$out/fit-$i.npz" > "$out/fit-$i.log" 2>&1
}
export -f one
export nmm out common truth fit trs
if [ "${TABLE_ONLY:-0}" != 1 ]; then # TABLE_ONLY=1: tabulate the fits FIRST..SUBJECTS-1 in $out
    for i in $(seq "$first" $((subjects - 1))); do rm -f "$out/fit-$i.json"; done
    seq "$first" $((subjects - 1)) | xargs -P "${JOBS:-2}" -I{} bash -c 'one {}'
fi
python3 - "$out" "$subjects" "$conn" "$trs" "$first" > "$out/recovery.txt" <<'PY'
import json, statistics as st, sys
out, n, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[5])
ids = range(first, n)
runs = [json.load(open(f"{out}/fit-{i}.json")) for i in ids]
truth = {k: float(v) for k, v in (l.split(" = ") for l in open(f"{out}/truth-{first}.toml").read().split("[params]\n")[1].splitlines())}
names = runs[0]["fitted"]
bound = {"G": 0.01, "g_EE": 0.20, "g_EI": 0.10, "g_IE": 0.10}
# The settings as the fits recorded them (TABLE_ONLY=1 with other variables cannot mislabel).
c = runs[0]["config"]
keys = ("mse_weight", "epochs", "window_tr", "realisations", "lr", "lr_final", "fit")
assert all(r["config"].get(k) == c.get(k) for r in runs for k in keys), "fits with different settings"
print(f"{len(runs)} subjects ({first} to {n - 1}), {sys.argv[3]}, {sys.argv[4]} TRs, mse_weight {c['mse_weight']:g}, {c['epochs']} epochs, windows of {c['window_tr']} TRs, {c.get('realisations', 1)} noise realisation(s) per window, Adam lr {c['lr']:g} to {c.get('lr_final') or c['lr']:g}")
print(f"{'subject':>8}" + "".join(f"{k:>10} {'start':>7} {'err':>7}" for k in names) + f"{'FC r':>7} {'FC mse':>8}")
errs = {k: [] for k in names}
for i, r in zip(ids, runs):
    row = f"{i:>8}"
    for k in names:
        e = r["final"][k] / truth[k] - 1
        errs[k].append(e)
        row += f"{r['final'][k]:>10.4f} {r['start'][names.index(k)] / truth[k] - 1:>+7.1%} {e:>+7.1%}"
    print(row + f"{r['final_fc_r']:>7.3f} {r['final_fc_mse']:>8.5f}")
print("relative error of the last epoch's value: median, median |.|, 90th percentile |.|, within the paper's bound")
for k in names:
    a = sorted(abs(e) for e in errs[k])
    p90 = a[min(len(a) - 1, int(round(0.9 * (len(a) - 1))))]
    within = sum(x <= bound[k] for x in a)
    print(f"  {k:>5} (truth {truth[k]}): {st.median(errs[k]):+.1%}, {st.median(a):.1%}, {p90:.1%}, {within}/{len(a)} within {bound[k]:.0%}")
# A second estimator: the mean over the last half of the epochs (Adam at a constant rate
# jitters about the optimum; averaging the iterates, as Polyak and Ruppert, removes most of it).
print("the same for the mean of the last half of the epochs' values")
for k in names:
    e = []
    for r in runs:
        half = r["per_epoch"][len(r["per_epoch"]) // 2:]
        e.append(st.mean(p["values"][k] for p in half) / truth[k] - 1)
    a = sorted(abs(x) for x in e)
    p90 = a[min(len(a) - 1, int(round(0.9 * (len(a) - 1))))]
    within = sum(x <= bound[k] for x in a)
    print(f"  {k:>5}: {st.median(e):+.1%}, {st.median(a):.1%}, {p90:.1%}, {within}/{len(a)} within {bound[k]:.0%}")
# How much of the start's offset is left: the least-squares slope of ln(final / truth) on
# ln(start / truth) over subjects (0: the start forgotten; 1: the fit did not move).
import math
print("start left in the fit: slope of ln(final/truth) on ln(start/truth) over subjects, correlation")
for j, k in enumerate(names):
    x = [math.log(r["start"][j] / truth[k]) for r in runs]
    y = [math.log(r["final"][k] / truth[k]) for r in runs]
    mx, my = st.mean(x), st.mean(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    print(f"  {k:>5}: slope {sxy / sxx:.2f}, correlation {sxy / math.sqrt(sxx * syy):.2f}")
fcr = [r["final_fc_r"] for r in runs]
secs = [r["fit_seconds"] / r["config"]["epochs"] for r in runs]
print(f"final FC r (whole last epoch vs the subject's FC): median {st.median(fcr):.3f}, range {min(fcr):.3f} to {max(fcr):.3f}")
print(f"wall time per epoch: median {st.median(secs):.1f} s, {min(secs):.1f} to {max(secs):.1f} s (as each fit recorded it: JOBS fits at once, on whichever machine it ran)")
PY
cat "$out/recovery.txt"
if [ "${COPY:-0}" = 1 ]; then
    cp "$out/recovery.txt" "$here/recovery-$tag.txt"
fi
