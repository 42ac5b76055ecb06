#!/usr/bin/env bash
# Do a fit's final values reproduce the subject's FC as well as the truth does? For subjects of a recovery run
# (validation/fit/recovery.sh; FITS, default target/fit-recovery-pairs), whole-brain runs of the
# fit's model (validation/fit/sbi/run.toml: 320 s, the first 20 s left out) at the true gains and
# at the fit's final gains, SEEDS noise seeds each (11 to 16: no subject's, 1000 + i, nor the
# fits' of subjects 0-10, whose seed is i), and how close
# each set's FCs come to the subject's FC: the mean over pairs of distinct seeds of
# (fc_a - t)(fc_b - t) (unbiased for the expected FC's squared difference, as nmm fit's
# realisations use), the correlation of the mean FC with the subject's, and the mean FC with its
# spread over seeds. Runs already in $OUT are not run again. Writes $OUT/ridge.txt (COPY=1 copies
# it here). Needs python3 with numpy.
#
#   SUBJECTS="1 4" COPY=1 validation/fit/ridge.sh                      (ridge.txt)
#   FITS=target/fit-recovery-1200 OUT=target/fit-ridge-1200 TAG=1200 COPY=1 \
#       validation/fit/ridge.sh                                           (ridge-1200.txt: the
#       subjects' 900 s FC; the truth's runs can be copied from target/fit-ridge)
set -euo pipefail
nmm=${NMM:-target/release/nmm}
here=$(dirname "$0")
fits=${FITS:-target/fit-recovery-pairs}
subjects=${SUBJECTS:-1 4}
seeds=${SEEDS:-11 12 13 14 15 16}
out=${OUT:-target/fit-ridge}
mkdir -p "$out"
for i in $subjects; do
    read -r g ee ei ie < <(python3 -c "
import json; r = json.load(open('$fits/fit-$i.json'))['final']
print(r['G'], r['g_EE'], r['g_EI'], r['g_IE'])")
    for s in $seeds; do
        [ -e "$out/t-$i-$s.npz" ] || "$nmm" brain --config "$here/sbi/run.toml" --seed "$s" \
            --out "$out/t-$i-$s.npz" > /dev/null
        [ -e "$out/f-$i-$s.npz" ] || "$nmm" brain --config "$here/sbi/run.toml" --seed "$s" \
            --G "$g" --param g_EE="$ee" --param g_EI="$ei" --param g_IE="$ie" \
            --out "$out/f-$i-$s.npz" > /dev/null
    done
done
python3 - "$fits" "$out" "$subjects" "$seeds" > "$out/ridge.txt" <<'PY'
import itertools, json, sys
import numpy as np
fits, out, subjects, seeds = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
truth = {"G": 4.0, "g_EE": 0.21, "g_EI": 0.15, "g_IE": 1.0}
iu = np.tril_indices(66, -1)
fc = lambda b: np.corrcoef(b.T)[iu]
# 400 samples after the 20 s transient: samples at k x 750 ms, k > 26.
skip = 26
print(f"subjects of {fits}; {len(seeds)} noise seeds per parameter set ({' '.join(seeds)})")
print(f"{'subject':>8} {'gains':>6} {'G':>7} {'g_EE':>7} {'g_EI':>7} {'g_IE':>7} {'pair sq diff':>13} {'r(mean FC)':>11} {'mean FC':>8} {'sd':>7} {'subject':>8}")
for i in subjects:
    t = fc(np.load(f"{fits}/subject-{i}.npy"))
    final = json.load(open(f"{fits}/fit-{i}.json"))["final"]
    for tag, vals in (("t", truth), ("f", final)):
        fcs = [fc(np.load(f"{out}/{tag}-{i}-{s}.npz")["bold"][skip:]) for s in seeds]
        d = [f - t for f in fcs]
        pair = np.mean([np.mean(a * b) for a, b in itertools.permutations(d, 2)])
        m = np.mean(fcs, 0)
        errs = " ".join(f"{vals[k] / truth[k] - 1:>+7.1%}" for k in truth)
        print(f"{i:>8} {'truth' if tag == 't' else 'fit':>6} {errs} {pair:>13.5f} "
              f"{np.corrcoef(m, t)[0, 1]:>11.4f} {m.mean():>8.4f} "
              f"{np.std([f.mean() for f in fcs], ddof=1):>7.4f} {t.mean():>8.4f}")
PY
cat "$out/ridge.txt"
if [ "${COPY:-0}" = 1 ]; then
    cp "$out/ridge.txt" "$here/ridge${TAG:+-$TAG}.txt"
fi
