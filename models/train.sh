#!/bin/sh
# Regenerates the shipped MLP mean fields from spiking-network sweeps (see models/README.md).
# DATA: directory holding the sweeps (default ../data); NMM: the nmm binary.
set -e
DATA=${DATA:-../data}
NMM=${NMM:-./target/release/nmm}
for g in grid_p1 grid_p1_dense grid_p grid_heldout; do
    out=$DATA/sweep_${g#grid_}
    $NMM spiking sweep --grid models/grids/$g.toml --out "$out"
done
$NMM train --data "$DATA/sweep_p1" --data "$DATA/sweep_p1_dense" \
    --out models/mlp_p1.nmmw --seed 1 --epochs 200 --plot-dir models/p1
$NMM train --data "$DATA/sweep_p1" --data "$DATA/sweep_p1_dense" --data "$DATA/sweep_p" \
    --out models/mlp_p06_1.nmmw --seed 1 --epochs 200 --plot-dir models/p06_1
