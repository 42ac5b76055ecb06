#!/usr/bin/env bash
# Does a fit follow its target? Subjects 3 and 4 of a recovery run (FITS, default
# target/fit-recovery-pairs; their FCs' means differ most: 0.243 and 0.153) fitted again from
# their own starts and fit seeds, each to the other's BOLD, with the run's settings; the table
# compares each start's two endpoints. About 8 CPU-minutes per fit. Writes swap.txt here with
# COPY=1.
#   COPY=1 validation/fit/swap.sh
set -euo pipefail
nmm=${NMM:-target/release/nmm}
fits=${FITS:-target/fit-recovery-pairs}
out=${OUT:-target/fit-swap}
here=$(dirname "$0")
mkdir -p "$out"
for p in "3 4" "4 3"; do
    set -- $p
    [ -e "$out/fit-$1-on-$2.json" ] || "$nmm" fit --config "$fits/start-$1.toml" \
        --bold "$fits/subject-$2.npy" --seed "$1" --out "$out/fit-$1-on-$2.npz" > /dev/null
done
python3 - "$fits" "$out" > "$out/swap.txt" <<'PY'
import json, sys
import numpy as np
fits, out = sys.argv[1:3]
names = ["G", "g_EE", "g_EI", "g_IE"]
iu = np.tril_indices(66, -1)
level = lambda i: np.corrcoef(np.load(f"{fits}/subject-{i}.npy").T)[iu].mean()
sim = lambda f: np.load(f)["sim_fc"][iu].mean()
print(f"{'start':>6} {'target':>7} {'its mean FC':>11} " + " ".join(f"{k:>8}" for k in names) + f" {'sim FC':>7}")
for a, b in ((3, 4), (4, 3)):
    for t, path in ((a, f"{fits}/fit-{a}"), (b, f"{out}/fit-{a}-on-{b}")):
        r = json.load(open(path + ".json"))["final"]
        print(f"{a:>6} {t:>7} {level(t):>11.3f} " + " ".join(f"{r[k]:>8.4f}" for k in names) + f" {sim(path + '.npz'):>7.3f}")
PY
cat "$out/swap.txt"
if [ "${COPY:-0}" = 1 ]; then cp "$out/swap.txt" "$here/swap.txt"; fi
