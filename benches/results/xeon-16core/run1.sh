#!/bin/bash
# Device run (16 cores): issue 18's recovery, subjects 10-19 (400 TRs, as subjects 0-9) and
# subjects 0-9 at 1200 TRs (same number of Adam steps: 4 epochs of 12 windows); then issue 20's
# thread scaling and, time permitting, nmm against vbjax on one core each, side by side.
set -u
R=$PWD; D=$R/.dev; O=${OUT:-/tmp/devout}; mkdir -p "$O"; T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
small=${DEV_SMALL:-0}
{
    date; nproc; lscpu | grep -E "Model name|Thread|Core|Socket|MHz|NUMA node0"
    grep -o -m1 "avx512f\|avx2" /proc/cpuinfo | sort -u
    P=$(dirname "$R"); [ -e "$P/shared" ] || ln -s "$D/shared" "$P/shared"
    mkdir -p /work; [ -e /work/main ] || ln -s "$R" /work/main
    ls /work/main/benches/../../shared/data/tvb/
    python3 --version
} > "$O/machine.txt" 2>&1
export NMM=$D/nmm CONNECTOME=$D/shared/data/tvb/connectivity_66.zip RAYON_NUM_THREADS=2
if [ "$small" = 1 ]; then extra="SMALL=1"; else extra=""; fi
(env $extra REALISATIONS=2 MSE_WEIGHT=100 LR_FINAL=0.005 EPOCHS=12 SUBJECTS=20 FIRST=10 JOBS=10 \
    OUT=/tmp/fits-a validation/fit/recovery.sh > /tmp/fits-a.log 2>&1; echo "exit $? at $(el) s" >> /tmp/fits-a.log) &
a=$!
(env $extra REALISATIONS=2 MSE_WEIGHT=100 LR_FINAL=0.005 EPOCHS=4 TRS=1200 SUBJECTS=10 JOBS=10 \
    OUT=/tmp/fits-b validation/fit/recovery.sh > /tmp/fits-b.log 2>&1; echo "exit $? at $(el) s" >> /tmp/fits-b.log) &
b=$!
pack() { tar czf "$O/fits.tgz.tmp" -C /tmp fits-a fits-b fits-a.log fits-b.log 2>/dev/null; mv "$O/fits.tgz.tmp" "$O/fits.tgz"; }
(while sleep 20; do pack; done) &
p=$!
wait $a $b
kill $p; pack
echo "fits done at $(el) s" >> "$O/machine.txt"
unset RAYON_NUM_THREADS
export NMM_BENCH_BATCHED_ONLY=1
if [ "$(el)" -lt 420 ]; then
    for c in mpr-f32 mpr-f64; do
        NMM_BENCH_CASE=$c NMM_BENCH_THREADS=1,2,4,8,16 timeout 60 "$D/batch" quick
    done > "$O/threads.txt" 2>&1
    echo "threads done at $(el) s" >> "$O/machine.txt"
fi
if [ "$(el)" -lt 480 ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$D"/vbjax-*.whl
    export PYTHONPATH=/tmp/site JAX_PLATFORMS=cpu PYTHONUNBUFFERED=1
    for m in mpr mlp; do
        [ "$(el)" -lt 500 ] || break
        echo "== $m f32 side by side (nmm on cpu 0, vbjax on cpu 1), at $(el) s"
        NMM_BENCH_CASE=$m-f32 NMM_BENCH_THREADS=1 taskset -c 0 timeout 80 "$D/batch" quick &
        taskset -c 1 timeout 80 python3 benches/peers/vbjax_batch.py --precision f32 --model $m \
            --seconds 20 --reps 3 --connectome "$D/shared/data/tvb/connectivity_76.zip"
        wait
    done > "$O/peers.txt" 2>&1
fi
echo "all done at $(el) s" >> "$O/machine.txt"
