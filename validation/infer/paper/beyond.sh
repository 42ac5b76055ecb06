#!/usr/bin/env bash
# Beyond the paper (README.md here): G, noise and one region's excitability inferred with MPR
# on the paper experiment's settings; simulate (about 10 minutes on two cores, resumable),
# train, check. Results in $OUT/beyond*; with COPY=1 copied to results/beyond.
set -euo pipefail
nmm=${NMM:-target/release/nmm}
out=${OUT:-target/infer-paper}
here=validation/infer/paper
jobs=${JOBS:-0}
"$nmm" infer simulate --config "$here/beyond.toml" --prior "$here/prior_beyond.toml" --n 1000 \
    --seed 5 --out "$out/beyond_train" --jobs "$jobs"
"$nmm" infer simulate --config "$here/beyond.toml" --prior "$here/prior_beyond.toml" --n 200 \
    --seed 6 --out "$out/beyond_heldout" --jobs "$jobs"
"$nmm" infer train --theta "$out/beyond_train/theta.npy" --x "$out/beyond_train/x.npy" \
    --prior "$here/prior_beyond.toml" --out "$out/beyond.nmmp" --seed 0
rm -rf "${out:?}/check_beyond"
"$nmm" infer check --posterior "$out/beyond.nmmp" --theta "$out/beyond_heldout/theta.npy" \
    --x "$out/beyond_heldout/x.npy" --out "$out/check_beyond" --draws 1000 --seed 5
rm -rf "${out:?}/compare_beyond"
"$nmm" infer compare "$out/check_beyond" --labels "MPR beyond the paper" \
    --out "$out/compare_beyond"
if [ "${COPY:-0}" = 1 ]; then
    dst=$here/results/beyond
    mkdir -p "$dst"
    cp "$out/check_beyond"/*.csv "$out/check_beyond"/ranks.svg "$out/check_beyond"/coverage.svg \
        "$out/check_beyond"/zscore_shrinkage.svg "$dst/"
    cp "$out/compare_beyond/compare.csv" "$dst/"
    cp "$out/beyond_train/manifest.json" "$dst/manifest_train.json"
    cp "$out/beyond_train/diverged.csv" "$dst/diverged_train.csv"
fi
