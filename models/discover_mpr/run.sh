#!/bin/sh
# Regenerates models/discover_mpr (issue 19): the QIF sweeps, the discovered models and their
# held-out evaluations. DATA: where the sweeps go (default ../data); about 10 min on 2 cores.
set -e
DATA=${DATA:-../data}
NMM=${NMM:-./target/release/nmm}
D=models/discover_mpr
for g in grid_discover grid_discover_heldout grid_discover_ensemble; do
    $NMM spiking sweep --grid models/grids/$g.toml --out "$DATA/sweep_${g#grid_}"
done
# Threshold by cross-validation (the default), and a fixed threshold that keeps only the
# terms contributing at least 0.75 of each equation's rms dx/dt.
$NMM discover --data "$DATA/sweep_discover" --out $D/mpr_corrected.toml --epochs 200 \
    --dt 0.1 --rollout 10 --substeps 5 > $D/discover.txt
$NMM discover --data "$DATA/sweep_discover" --out $D/mpr_corrected_sparse.toml --epochs 200 \
    --dt 0.1 --rollout 10 --substeps 5 --threshold 0.75 > $D/discover_sparse.txt
for m in mpr_corrected mpr_corrected_sparse; do
    for s in heldout ensemble; do
        python3 models/evaluate.py $NMM models/mlp_p06_1_w32.nmmw "$DATA/sweep_discover_$s" \
            $D/eval_${s}_$m.csv $D/$m.toml > $D/eval_${s}_$m.txt
    done
done
# The trained UDE itself (MPR + its 6-6-6-2 network term, saved in the model file).
for s in heldout ensemble; do
    python3 models/evaluate.py $NMM models/mlp_p06_1_w32.nmmw "$DATA/sweep_discover_$s" \
        $D/eval_${s}_mpr_ude.csv $D/mpr_corrected_sparse.toml ude > $D/eval_${s}_mpr_ude.txt
done
# Jump points in slow hysteresis sweeps (the network runs, 6 points x 4 seeds, are kept in
# $DATA/hyst): the MLP, MPR (J p), both closed forms and the UDE itself.
NMM_WORK="$DATA/hyst" NMM_CLOSED=$D/mpr_corrected.toml,$D/mpr_corrected_sparse.toml \
    NMM_UDE=$D/mpr_corrected_sparse.toml python3 models/hysteresis.py $NMM \
    models/mlp_p06_1_w32.nmmw $D/hysteresis.csv 14,0.8 12.5,0.8 20,0.8 19,0.6 17.5,0.6 15,0.6 \
    > $D/hysteresis.txt
