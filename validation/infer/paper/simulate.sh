#!/usr/bin/env bash
# Simulations of the paper experiment (README.md here). Resumable: rerunning skips the blocks
# already written. 59 minutes on two cores (2026-12-02; MLP 2450 s + 527 s, MPR 535 s + 46 s).
set -euo pipefail
nmm=${NMM:-target/release/nmm}
out=${OUT:-target/infer-paper}
here=validation/infer/paper
jobs=${JOBS:-0}
sim() { # CONFIG PRIOR N SEED DIR
    "$nmm" infer simulate --config "$here/$1" --prior "$here/$2" --n "$3" --seed "$4" \
        --out "$out/$5" --jobs "$jobs"
}
sim mlp.toml prior_mlp.toml 1200 1 mlp_train
sim mlp.toml prior_mlp.toml 200 2 mlp_heldout
sim mpr.toml prior_mpr.toml 1200 3 mpr_train
sim mpr.toml prior_mpr.toml 100 4 mpr_heldout
