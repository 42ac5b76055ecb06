#!/usr/bin/env bash
# The README's `nmm fit` example: a synthetic subject (truth.toml: the 66-region TVB
# connectome, G = 4, g_EE = 0.21, g_EI = 0.15, g_IE = 1; 400 TRs of 750 ms after a 20 s
# transient; noise seed 1000), then an 8-epoch fit of the four gains from 25 % off
# (start.toml; noise seed 0, so the fit never sees the subject's noise). About 2 min on one
# core. Output: probe.log here (COPY=1), fit.npz, fit.json and fit.svg in $OUT.
set -euo pipefail
nmm=${NMM:-target/release/nmm}
out=${OUT:-target/fit-probe}
here=validation/fit
mkdir -p "$out"
rm -f "$out"/subject.npy "$out"/subject.json
{
    "$nmm" fit --config "$here/truth.toml" --bold "$out/subject.npy" --synthetic 400 --seed 1000
    "$nmm" fit --config "$here/start.toml" --bold "$out/subject.npy" --out "$out/fit.npz" \
        --plot "$out/fit.svg" --seed 0
} 2>&1 | grep -v "^fit: [0-9]*/\|^fit: epoch" | tee "$out/probe.log"
if [ "${COPY:-0}" = 1 ]; then
    # The record's paths and timings vary; the table is the result.
    sed 's/ in [0-9.]* s$//' "$out/probe.log" > "$here/probe.log"
fi
