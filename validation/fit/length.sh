#!/usr/bin/env bash
# Does a longer recording move the fits? The same subjects fitted from the same starts with the
# same fit seeds and the same number of Adam steps, to 400 TRs (300 s: A, default
# target/fit-recovery-pairs) and to 1200 TRs (900 s, whose first 400 TRs are A's: B, default
# target/fit-recovery-1200, made by
#     REALISATIONS=2 MSE_WEIGHT=100 EPOCHS=4 TRS=1200 LR_FINAL=0.005 SUBJECTS=10 \
#         OUT=target/fit-recovery-1200 TAG=pairs-1200 COPY=1 validation/fit/recovery.sh
# ); per subject and gain the two fits' relative errors and their relative difference.
# Writes length.txt here with COPY=1.
#   validation/fit/length.sh
set -euo pipefail
a=${A:-target/fit-recovery-pairs}
b=${B:-target/fit-recovery-1200}
here=$(dirname "$0")
python3 - "$a" "$b" > "$b/length.txt" <<'PY'
import json, os, statistics as st, sys
a, b = sys.argv[1:3]
fits = lambda d: {int(f[4:-5]) for f in os.listdir(d) if f.startswith("fit-") and f.endswith(".json")}
ids = sorted(fits(a) & fits(b))  # the subjects fitted both ways
# The true values as recovery.sh wrote them (the [params] of truth-i.toml, the same for all i).
truth = {k: float(v) for k, v in (l.split(" = ") for l in open(f"{b}/truth-{ids[0]}.toml").read().split("[params]\n")[1].splitlines())}
start = lambda d, i: json.load(open(f"{d}/fit-{i}.json"))["start"]
assert all(start(a, i) == start(b, i) for i in ids), "the two runs' fits start from different values"
print(f"subjects {ids[0]}-{ids[-1]}: error at 400 TRs ({a}), at 1200 TRs ({b}), (relative difference)")
diffs = []
for i in ids:
    x, y = (json.load(open(f"{d}/fit-{i}.json")) for d in (a, b))
    row = []
    for k, t in truth.items():
        d = y["final"][k] / x["final"][k] - 1
        diffs.append(abs(d))
        row.append(f"{k} {x['final'][k] / t - 1:+6.1%} {y['final'][k] / t - 1:+6.1%} ({d:+.2%})")
    print(f"{i:>3}  " + "  ".join(row) + f"  FC r {x['final_fc_r']:.3f} {y['final_fc_r']:.3f}")
print(f"|relative difference| over {len(diffs)} values: median {st.median(diffs):.2%}, max {max(diffs):.2%}")
for k, t in truth.items():
    for d, tag in ((a, "400"), (b, "1200")):
        e = sorted(abs(json.load(open(f"{d}/fit-{i}.json"))["final"][k] / t - 1) for i in ids)
        print(f"  {k:>5} at {tag:>4} TRs: median |error| {st.median(e):.1%}")
PY
cat "$b/length.txt"
if [ "${COPY:-0}" = 1 ]; then cp "$b/length.txt" "$here/length.txt"; fi
