#!/usr/bin/env bash
# The paper experiment after simulate.sh (README.md here): trains the two posteriors with sbi's
# defaults (MAF, 5 transforms, 50 hidden), checks the MLP posterior and the MPR posterior on
# held-out MLP simulations (and the MPR posterior on its own model's), compares them and
# relates MPR's J to the MLP's J p. A few minutes on two cores. Results in $OUT and, with
# COPY=1, copied to validation/infer/paper/results.
set -euo pipefail
nmm=${NMM:-target/release/nmm}
out=${OUT:-target/infer-paper}
here=validation/infer/paper
for m in mlp mpr; do
    "$nmm" infer train --theta "$out/${m}_train/theta.npy" --x "$out/${m}_train/x.npy" \
        --prior "$here/prior_$m.toml" --out "$out/$m.nmmp" --seed 0
done
check() { # POSTERIOR HELDOUT OUTDIR
    local names
    names=$(python3 -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))["theta_columns"]))' \
        "$out/$2/manifest.json")
    rm -rf "${out:?}/$3"
    "$nmm" infer check --posterior "$out/$1.nmmp" --theta "$out/$2/theta.npy" \
        --x "$out/$2/x.npy" --theta-names "$names" --out "$out/$3" --draws 1000 --seed 5
}
check mlp mlp_heldout check_mlp_on_mlp
check mpr mlp_heldout check_mpr_on_mlp
check mpr mpr_heldout check_mpr_on_mpr
rm -rf "${out:?}/compare"
"$nmm" infer compare "$out/check_mlp_on_mlp" "$out/check_mpr_on_mlp" "$out/check_mpr_on_mpr" \
    --labels "MLP on MLP,MPR on MLP,MPR on MPR" --out "$out/compare"
python3 "$here/jp.py" "$out/check_mlp_on_mlp/check.csv" "$out/check_mpr_on_mlp/check.csv"
# The same calibration numbers from sbi on the same MLP pairs, when SBI_PYTHON names a Python
# with sbi installed (benches/peers/sbi_check.py).
if [ -n "${SBI_PYTHON:-}" ]; then
    "$SBI_PYTHON" benches/peers/sbi_check.py "$out/mlp_train/theta.npy" "$out/mlp_train/x.npy" \
        "$out/mlp_heldout/theta.npy" "$out/mlp_heldout/x.npy" 8,-6,0.6 20,-2.5,1 \
        --draws 1000 --seed 0 --out "$out/sbi_ranks_mlp_on_mlp.csv"
fi
if [ "${COPY:-0}" = 1 ]; then
    dst=$here/results
    mkdir -p "$dst"
    for c in check_mlp_on_mlp check_mpr_on_mlp check_mpr_on_mpr compare; do
        mkdir -p "$dst/$c"
        # Pair plots stay out (0.2-0.6 MB each of 2,000 points).
        cp "$out/$c"/*.csv "$dst/$c/"
        for f in "$out/$c"/*.svg; do
            if [ "$(basename "$f")" != pairs.svg ]; then cp "$f" "$dst/$c/"; fi
        done
    done
    for d in mlp_train mlp_heldout mpr_train mpr_heldout; do
        cp "$out/$d/manifest.json" "$dst/manifest_$d.json"
        cp "$out/$d/diverged.csv" "$dst/diverged_$d.csv"
    done
    if [ -f "$out/sbi_ranks_mlp_on_mlp.csv" ]; then cp "$out/sbi_ranks_mlp_on_mlp.csv" "$dst/"; fi
fi
