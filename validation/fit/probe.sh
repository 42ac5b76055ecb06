#!/usr/bin/env bash
# The README's `nmm fit` example (issue 18, in progress): a synthetic subject on 8 regions with
# G = 0.6 (truth.toml; the rest at rww-griffiths' defaults, 120 TRs of 750 ms after a 5 s
# transient, seed 0), then a 3-epoch fit of G, g_EE, g_EI and g_IE from G = 0.4 (start.toml).
# About 2 s. Output: probe.log here (COPY=1), fit.npz, fit.json and fit.svg in $OUT.
set -euo pipefail
nmm=${NMM:-target/release/nmm}
out=${OUT:-target/fit-probe}
here=validation/fit
mkdir -p "$out"
rm -f "$out"/subject.npy "$out"/subject.json
{
    "$nmm" fit --config "$here/truth.toml" --bold "$out/subject.npy" --synthetic 120
    "$nmm" fit --config "$here/start.toml" --bold "$out/subject.npy" --out "$out/fit.npz" \
        --plot "$out/fit.svg"
} 2>&1 | grep -v "^fit: epoch" | tee "$out/probe.log"
if [ "${COPY:-0}" = 1 ]; then
    # The record's paths and timings vary; the table is the result.
    sed 's/ in [0-9.]* s$//' "$out/probe.log" > "$here/probe.log"
fi
