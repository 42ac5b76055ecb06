#!/usr/bin/env bash
# The inference demo of the README: simulate, train, check, sample (about 10 minutes on two
# cores). Writes to target/infer-demo; prints every step's summary.
set -euo pipefail
nmm=${NMM:-target/release/nmm}
out=target/infer-demo
mkdir -p "$out"
$nmm infer simulate --config validation/infer/run.toml --prior validation/infer/prior.toml \
    --n 800 --seed 1 --out "$out/train"
$nmm infer simulate --config validation/infer/run.toml --prior validation/infer/prior.toml \
    --n 200 --seed 2 --out "$out/heldout"
$nmm infer train --theta "$out/train/theta.npy" --x "$out/train/x.npy" \
    --prior validation/infer/prior.toml --out "$out/posterior.nmmp" --seed 0
$nmm infer check --posterior "$out/posterior.nmmp" --theta "$out/heldout/theta.npy" \
    --x "$out/heldout/x.npy" --out "$out/check" --draws 1000
