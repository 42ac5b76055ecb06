#!/bin/sh
# Regenerates the shipped MLP mean fields from spiking-network sweeps (see models/README.md).
# DATA: directory holding the sweeps (default ../data); NMM: the nmm binary.
set -e
DATA=${DATA:-../data}
NMM=${NMM:-./target/release/nmm}
for g in grid_p1 grid_p1_dense grid_p grid_heldout grid_ensemble; do
    out=$DATA/sweep_${g#grid_}
    $NMM spiking sweep --grid models/grids/$g.toml --out "$out"
done
$NMM train --data "$DATA/sweep_p1" --data "$DATA/sweep_p1_dense" \
    --out models/mlp_p1.nmmw --seed 2 --epochs 1000 --rate-floor 0.2 --plot-dir models/p1
$NMM train --data "$DATA/sweep_p1" --data "$DATA/sweep_p1_dense" --data "$DATA/sweep_p" \
    --out models/mlp_p06_1.nmmw --seed 2 --epochs 400 --plot-dir models/p06_1
# 32 wide, warm-started on MPR with J -> J p, then trained on 3-time-unit rollouts of 4 Heun
# steps per interval (about 14 min on 2 cores; see models/README.md for where it stands).
$NMM train --data "$DATA/sweep_p1" --data "$DATA/sweep_p1_dense" --data "$DATA/sweep_p" \
    --out models/mlp_p06_1_w32.nmmw --seed 2 --hidden 32 --prior-epochs 1000 --epochs 30 \
    --lr 1e-4 --v-weight 1 --substeps 4 --rollout 30 --plot-dir models/p06_1_w32
# Bifurcation figures and the cusp's path.
$NMM bifurcation mlp --model models/mlp_p1.nmmw --param eta --range -10,0 --codim2 J \
    --range2 0,25 --out models/p1/branch.csv --out-codim2 models/p1/folds.csv --plot models/p1/bifurcation.svg
$NMM bifurcation mlp --model models/mlp_p06_1.nmmw --param eta --range -10,0 --codim2 J \
    --range2 0,30 --vary p=0.6:1:9 --out-cusps models/p06_1/cusp_path.csv
$NMM bifurcation mlp --model models/mlp_p06_1_w32.nmmw --param eta --range -10,0 --codim2 J \
    --range2 0,30 --vary p=0.6:1:9 --out-cusps models/p06_1_w32/cusp_path.csv
# Held-out errors against MPR with J -> J p: single runs, and seed ensembles (systematic error).
python3 models/evaluate.py "$NMM" models/mlp_p06_1.nmmw "$DATA/sweep_heldout" models/p06_1/eval_heldout.csv
python3 models/evaluate.py "$NMM" models/mlp_p06_1.nmmw "$DATA/sweep_ensemble" models/p06_1/ensemble.csv
python3 models/evaluate.py "$NMM" models/mlp_p06_1_w32.nmmw "$DATA/sweep_heldout" models/p06_1_w32/eval_heldout.csv
python3 models/evaluate.py "$NMM" models/mlp_p06_1_w32.nmmw "$DATA/sweep_ensemble" models/p06_1_w32/ensemble.csv
