#!/bin/bash
# Device run 2: nmm built for AVX-512 (x86-64-v4) against the AVX2 build, one thread each,
# alone; vbjax in f64 on one core (its f32 ran in run 1).
R=$PWD; D=$R/.dev; P=$(dirname "$R"); [ -e "$P/shared" ] || ln -s "$D/shared" "$P/shared"
mkdir -p /work; [ -e /work/main ] || ln -s "$R" /work/main
export NMM_BENCH_BATCHED_ONLY=1 NMM_BENCH_THREADS=1
for c in mpr-f32 mpr-f64 mlp-f32 mlp-f64; do
    for b in batch4 batch; do echo "== $b $c"; NMM_BENCH_CASE=$c taskset -c 2 timeout 60 "$D/$b" quick | tail -2; done
done
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$D"/vbjax-*.whl 2>/dev/null
export PYTHONPATH=/tmp/site JAX_PLATFORMS=cpu PYTHONUNBUFFERED=1
for m in mpr mlp; do
    taskset -c 3 timeout 70 python3 benches/peers/vbjax_batch.py --precision f64 --model $m --seconds 20 --reps 3 \
        --connectome "$D/shared/data/tvb/connectivity_76.zip" 2>/dev/null
done
