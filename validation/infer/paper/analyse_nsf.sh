#!/usr/bin/env bash
# The paper experiment's analysis (analyse.sh) with neural spline flows (sbi's "nsf": 5
# rational-quadratic coupling transforms with LU layers, 10 bins, 50 hidden, 2 residual
# blocks) instead of the MAF, on the same simulations (simulate.sh), and the MLP posterior's
# calibration over training seeds 0 to 4. About a minute on two cores (plus a few minutes
# with SBI_PYTHON: sbi's NSF on the same MLP pairs). Results in $OUT/nsf and, with COPY=1,
# validation/infer/paper/results/nsf.
set -euo pipefail
nmm=${NMM:-target/release/nmm}
out=${OUT:-target/infer-paper}
here=validation/infer/paper
res=$out/nsf
mkdir -p "$res"
names() { python3 -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))["theta_columns"]))' "$out/$1/manifest.json"; }
train() { # MODEL SEED
    "$nmm" infer train --theta "$out/${1}_train/theta.npy" --x "$out/${1}_train/x.npy" \
        --prior "$here/prior_$1.toml" --out "$res/${1}_s$2.nmmp" --seed "$2" --estimator nsf
}
check() { # POSTERIOR HELDOUT OUTDIR
    rm -rf "${res:?}/$3"
    "$nmm" infer check --posterior "$res/$1.nmmp" --theta "$out/$2/theta.npy" \
        --x "$out/$2/x.npy" --theta-names "$(names "$2")" --out "$res/$3" --draws 1000 --seed 5
}
for s in 0 1 2 3 4; do train mlp "$s"; done
train mpr 0
check mlp_s0 mlp_heldout check_mlp_on_mlp
check mpr_s0 mlp_heldout check_mpr_on_mlp
check mpr_s0 mpr_heldout check_mpr_on_mpr
rm -rf "${res:?}/compare"
"$nmm" infer compare "$res/check_mlp_on_mlp" "$res/check_mpr_on_mlp" "$res/check_mpr_on_mpr" \
    --labels "MLP on MLP,MPR on MLP,MPR on MPR" --out "$res/compare"
python3 "$here/jp.py" "$res/check_mlp_on_mlp/check.csv" "$res/check_mpr_on_mlp/check.csv"
# The MLP posterior's calibration over training seeds (the flow's initial weights, the
# validation split and the batches).
for s in 1 2 3 4; do check "mlp_s$s" mlp_heldout "check_mlp_on_mlp_s$s"; done
if [ -n "${SBI_PYTHON:-}" ]; then
    "$SBI_PYTHON" benches/peers/sbi_check.py "$out/mlp_train/theta.npy" "$out/mlp_train/x.npy" \
        "$out/mlp_heldout/theta.npy" "$out/mlp_heldout/x.npy" 8,-6,0.6 20,-2.5,1 \
        --draws 1000 --seed 0 --estimator nsf --out "$res/sbi_nsf_ranks_mlp_on_mlp.csv"
fi
if [ "${COPY:-0}" = 1 ]; then
    dst=$here/results/nsf
    mkdir -p "$dst"
    for c in check_mlp_on_mlp check_mpr_on_mlp check_mpr_on_mpr compare \
        check_mlp_on_mlp_s1 check_mlp_on_mlp_s2 check_mlp_on_mlp_s3 check_mlp_on_mlp_s4; do
        mkdir -p "$dst/$c"
        cp "$res/$c"/*.csv "$dst/$c/"
        for f in "$res/$c"/*.svg; do
            if [ "$(basename "$f")" != pairs.svg ]; then cp "$f" "$dst/$c/"; fi
        done
    done
    if [ -f "$res/sbi_nsf_ranks_mlp_on_mlp.csv" ]; then cp "$res/sbi_nsf_ranks_mlp_on_mlp.csv" "$dst/"; fi
fi
