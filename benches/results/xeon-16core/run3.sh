#!/bin/bash
# Device run 3 (issue 20, 2026-12-04 evening): per case, three processes at once on separate
# cores: this session's nmm (cpu NEW_CPU, 0), the stop-33 nmm (cpu OLD_CPU, 2), vbjax (cpu 1).
# AVX2 builds (x86-64-v3). Run a: the defaults; run b: NEW_CPU=2 OLD_CPU=0.
set -u
R=$PWD; D=$R/.dev; O=${OUT:-/tmp/devout}; mkdir -p "$O"; T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
P=$(dirname "$R"); [ -e "$P/shared" ] || ln -s "$D/shared" "$P/shared"
mkdir -p /work; [ -e /work/main ] || ln -s "$R" /work/main
{ date; nproc; lscpu | grep -E "Model name|Thread|Core|Socket"; grep -o -m1 "avx512f" /proc/cpuinfo; } > "$O/machine3.txt" 2>&1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$D"/vbjax-*.whl
export PYTHONPATH=/tmp/site JAX_PLATFORMS=cpu PYTHONUNBUFFERED=1 NMM_BENCH_BATCHED_ONLY=1 NMM_BENCH_THREADS=1
for c in mpr-f32 mlp-f32 mpr-f64 mlp-f64; do
    [ "$(el)" -lt 420 ] || { echo "== $c skipped at $(el) s"; continue; }
    m=${c%-*}; p=${c#*-}
    echo "== $c at $(el) s"
    (NMM_BENCH_CASE=$c taskset -c ${NEW_CPU:-0} timeout 100 "$D/batch-new" quick 2>&1 | sed 's/^/new: /') > /tmp/new.txt &
    (NMM_BENCH_CASE=$c taskset -c ${OLD_CPU:-2} timeout 100 "$D/batch" quick 2>&1 | sed 's/^/old: /') > /tmp/old.txt &
    taskset -c 1 timeout 110 python3 benches/peers/vbjax_batch.py --precision $p --model $m \
        --seconds 20 --reps 3 --connectome "$D/shared/data/tvb/connectivity_76.zip" 2>/dev/null | sed 's/^/vbjax: /'
    wait
    grep -E "^(new|old): (mpr|mlp) |batched:" /tmp/new.txt /tmp/old.txt | sed 's/^[^:]*://'
done > "$O/peers3.txt" 2>&1
echo "all done at $(el) s" >> "$O/machine3.txt"
