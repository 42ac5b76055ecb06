#!/bin/sh
# Regenerates the shipped MLP mean fields from spiking-network sweeps (see models/README.md).
# DATA: directory holding the sweeps (default ../data); NMM: the nmm binary.
set -e
DATA=${DATA:-../data}
NMM=${NMM:-./target/release/nmm}
for g in grid_p1 grid_p1_dense grid_p grid_p_dense grid_heldout grid_ensemble grid_ensemble2 grid_drives; do
    out=$DATA/sweep_${g#grid_}
    $NMM spiking sweep --grid models/grids/$g.toml --out "$out"
done
$NMM train --data "$DATA/sweep_p1" --data "$DATA/sweep_p1_dense" \
    --out models/mlp_p1.nmmw --seed 2 --epochs 1000 --rate-floor 0.2 --plot-dir models/p1
$NMM train --data "$DATA/sweep_p1" --data "$DATA/sweep_p1_dense" --data "$DATA/sweep_p" \
    --out models/mlp_p06_1.nmmw --seed 2 --epochs 400 --plot-dir models/p06_1
# 32 wide, warm-started on MPR with J -> J p, then trained on 3-time-unit rollouts of 4 Heun
# steps per interval, with the dense sweep around the folds at p < 1 (about 18 min on 2 cores;
# see models/README.md for where it stands).
$NMM train --data "$DATA/sweep_p1" --data "$DATA/sweep_p1_dense" --data "$DATA/sweep_p" \
    --data "$DATA/sweep_p_dense" --out models/mlp_p06_1_w32.nmmw --seed 2 --hidden 32 \
    --prior-epochs 500 --epochs 30 --lr 1e-4 --v-weight 1 --substeps 4 --rollout 30 \
    --plot-dir models/p06_1_w32
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
python3 models/evaluate.py "$NMM" models/mlp_p06_1_w32.nmmw "$DATA/sweep_ensemble2" models/p06_1_w32/ensemble2.csv
python3 models/paired.py models/p06_1_w32/ensemble.csv models/p06_1_w32/ensemble2.csv
# Four (J, p) at eta = -3, near or inside the bistable range, each under 16 drives (one network
# seed): is a group's result a property of the point or of its one drive?
python3 models/evaluate.py "$NMM" models/mlp_p06_1_w32.nmmw "$DATA/sweep_drives" models/p06_1_w32/drives.csv
python3 models/paired.py models/p06_1_w32/drives.csv
# Where the network, the MLP and MPR jump between states in slow sweeps of eta (24 network runs
# of 200 time units, about 8 min on 2 cores).
python3 models/hysteresis.py "$NMM" models/mlp_p06_1_w32.nmmw models/p06_1_w32/hysteresis.csv \
    14,0.8 12.5,0.8 20,0.8 19,0.6 17.5,0.6 15,0.6
