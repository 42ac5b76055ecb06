#!/usr/bin/env bash
# nmm against sbi on the NPE training benchmark (issue 17), paired: each pair runs nmm, then
# sbi, on the same data, both pinned to core 0 with one thread; prints every run and, per pair,
# the time each took to reach the same validation loss (benches/peers/npe_compare.py).
#
#   benches/peers/npe_vs_sbi.sh [N=10000] [PAIRS=3]      # PYTHON=venv/bin/python for sbi
#   ESTIMATOR=nsf benches/peers/npe_vs_sbi.sh ...         # neural spline flows in both
set -euo pipefail
n=${1:-10000}
pairs=${2:-3}
py=${PYTHON:-python3}
est=${ESTIMATOR:-maf}
dir=$PWD/target/npe-bench-$est-$n
mkdir -p "$dir"
cargo bench -q -p nmm-benches --bench npe --no-run
for k in $(seq 1 "$pairs"); do
    echo "== pair $k"
    OMP_NUM_THREADS=1 taskset -c 0 cargo bench -q -p nmm-benches --bench npe -- n="$n" dir="$dir" seed="$k" estimator="$est"
    cp "$dir/nmm_curve.csv" "$dir/nmm_curve_$k.csv"
    (here=$PWD; cd "$dir" && OMP_NUM_THREADS=1 taskset -c 0 "$py" "$here/benches/peers/sbi_train.py" --dir . --seed "$k" --estimator "$est" 2>/dev/null)
    cp "$dir/sbi_curve.csv" "$dir/sbi_curve_$k.csv"
    python3 benches/peers/npe_compare.py "$dir/nmm_curve_$k.csv" "$dir/sbi_curve_$k.csv"
done
