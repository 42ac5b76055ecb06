#!/usr/bin/env bash
# Issue 18's comparison of nmm fit with simulation-based inference on the same synthetic
# subjects: the subjects of validation/fit/recovery.sh (SUBJECTS_DIR, made by it: subject-i.npy,
# and its fits fit-i.json), N whole-brain simulations of the same model with the four gains
# drawn from validation/fit/sbi/prior.toml (sbi/run.toml: 320 s, the first 20 s left out, so
# 400 BOLD samples as each subject has), a neural spline flow trained on the paper's 51
# features of the first N - HELD of them, a calibration check on the last HELD, and 10^4
# posterior draws for each subject's features. Writes $OUT/sbi.txt: per subject the posterior
# mean, sd and 90 % interval of each gain against the truth and nmm fit's final value, and the
# time to each result (COPY=1 copies it here as sbi-$TAG.txt). Needs python3 with numpy.
#
# sbi-pairs.txt (the subjects and fits of recovery-pairs.txt, see recovery.sh):
#   SUBJECTS_DIR=target/fit-recovery-pairs SUBJECTS=10 TAG=pairs COPY=1 validation/fit/sbi.sh
# (about 75 CPU-minutes of simulation, sbi/simulate.log; the rest takes seconds)
set -euo pipefail
nmm=${NMM:-target/release/nmm}
here=$(dirname "$0")
subjects_dir=${SUBJECTS_DIR:-target/fit-recovery-mse}
subjects=${SUBJECTS:-20}
n=${N:-800}
held=${HELD:-100}
out=${OUT:-target/fit-sbi}
sims=${SIMS:-$out/sims}
tag=${TAG:-sbi}
mkdir -p "$out"
start=$(date +%s.%N)
"$nmm" infer simulate --config "$here/sbi/run.toml" --prior "$here/sbi/prior.toml" --n "$n" \
    --seed 1 --out "$sims"
simulated=$(date +%s.%N)
python3 - "$sims" "$out" "$held" <<'PY'
import numpy as np, sys
sims, out, held = sys.argv[1], sys.argv[2], int(sys.argv[3])
theta, x = np.load(f"{sims}/theta.npy"), np.load(f"{sims}/x.npy")
np.save(f"{out}/theta-train.npy", theta[:-held]); np.save(f"{out}/x-train.npy", x[:-held])
np.save(f"{out}/theta-held.npy", theta[-held:]); np.save(f"{out}/x-held.npy", x[-held:])
PY
"$nmm" infer train --theta "$out/theta-train.npy" --x "$out/x-train.npy" \
    --prior "$here/sbi/prior.toml" --estimator nsf --out "$out/posterior.nmmp" --seed 0
trained=$(date +%s.%N)
rm -rf "$out/check"
"$nmm" infer check --posterior "$out/posterior.nmmp" --theta "$out/theta-held.npy" \
    --x "$out/x-held.npy" --out "$out/check"
for i in $(seq 0 $((subjects - 1))); do
    rm -f "$out/xo-$i.npy" "$out/xo-$i.json" "$out/samples-$i.npy" "$out/samples-$i.json"
    "$nmm" infer features --config "$here/sbi/run.toml" --bold "$subjects_dir/subject-$i.npy" \
        --out "$out/xo-$i.npy" > /dev/null
    "$nmm" infer sample --posterior "$out/posterior.nmmp" --observed "$out/xo-$i.npy" \
        --n 10000 --seed 0 --out "$out/samples-$i.npy" > /dev/null
done
sampled=$(date +%s.%N)
python3 - "$out" "$subjects_dir" "$subjects" "$n" "$held" "$start" "$simulated" "$trained" \
    "$sampled" > "$out/sbi.txt" <<'PY'
import json, sys, statistics as st
import numpy as np
out, sd, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
nsim, held = int(sys.argv[4]), int(sys.argv[5])
t0, t_sim, t_train, t_sample = map(float, sys.argv[6:10])
truth = {"G": 4.0, "g_EE": 0.21, "g_EI": 0.15, "g_IE": 1.0}
names = list(truth)
bound = {"G": 0.01, "g_EE": 0.20, "g_EI": 0.10, "g_IE": 0.10}
fits = [json.load(open(f"{sd}/fit-{i}.json")) for i in range(n)]
draws = [np.load(f"{out}/samples-{i}.npy") for i in range(n)]
print(f"{n} subjects of {sd}; NPE (neural spline flow) on {nsim - held} simulations, "
      f"checked on {held}; 10^4 draws per subject")
print("relative error of the posterior mean and of nmm fit's final value; the posterior sd "
      "relative to the truth; whether the 90 % interval holds the truth")
print(f"{'subject':>8}" + "".join(f"{k + ' post':>11} {'sd':>6} {'90%':>4} {'fit':>7}" for k in names))
rows = {k: {"post": [], "sd": [], "hit": [], "fit": []} for k in names}
for i in range(n):
    line = f"{i:>8}"
    for j, k in enumerate(names):
        d = draws[i][:, j]
        lo, hi = np.quantile(d, [0.05, 0.95])
        e_post = d.mean() / truth[k] - 1
        e_fit = fits[i]["final"][k] / truth[k] - 1
        rel_sd = d.std() / truth[k]
        hit = lo <= truth[k] <= hi
        for key, v in (("post", e_post), ("sd", rel_sd), ("hit", hit), ("fit", e_fit)):
            rows[k][key].append(v)
        line += f"{e_post:>+11.1%} {rel_sd:>6.1%} {'yes' if hit else 'no':>4} {e_fit:>+7.1%}"
    print(line)
print("summary: median |error| of the posterior mean / of the fit, median posterior sd, "
      "90 % intervals holding the truth, within the paper's bound (posterior mean / fit); "
      "the prior (uniform on 0.7 to 1.4 x truth) has mean +5.0 % and sd 20.2 %")
for k in names:
    r = rows[k]
    ap, af = [abs(x) for x in r["post"]], [abs(x) for x in r["fit"]]
    print(f"  {k:>5}: {st.median(ap):.1%} / {st.median(af):.1%}, sd {st.median(r['sd']):.1%}, "
          f"{sum(r['hit'])}/{n} intervals, {sum(x <= bound[k] for x in ap)}/{n} / "
          f"{sum(x <= bound[k] for x in af)}/{n} within {bound[k]:.0%}")
fit_s = [f["fit_seconds"] for f in fits]
print(f"time (this invocation; simulations already in SIMS are not run again): "
      f"NPE {t_sim - t0:.0f} s simulating {nsim} runs, {t_train - t_sim:.0f} s training "
      f"(with the split), {t_sample - t_train:.0f} s checking and drawing for {n} subjects; "
      f"nmm fit {st.median(fit_s):.0f} s per subject (median; {sum(fit_s):.0f} s for all)")
PY
cat "$out/sbi.txt"
if [ "${COPY:-0}" = 1 ]; then
    cp "$out/sbi.txt" "$here/sbi-$tag.txt"
    cp "$out/check/"*.csv "$here/sbi/" 2> /dev/null || true
fi
