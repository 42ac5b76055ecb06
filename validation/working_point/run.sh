#!/usr/bin/env bash
# Regenerates the working-point results of the README ("The main job's working point") into
# OUT (default: a new directory beside this script; the committed results are not touched).
# About 20 minutes on 2 cores. The committed results were made with these commands by the binary
# of commit be60c74 (the defaults it set; later commits did not change whole-brain numerics), and
# a batch gives the same features at any thread count for the same seeds.
#
# Usage: validation/working_point/run.sh [NMM_BINARY] [OUT]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
nmm=${1:-"$here/../../target/release/nmm"}
out=${2:-"$here/rerun-$(date +%Y%m%d-%H%M%S)"}
c76="$here/../../../shared/data/tvb/connectivity_76.zip"
mkdir -p "$out"
cd "$out"
set -x
# G on the built-in connectome with every default (180 s runs; row k has seed k - 1).
"$nmm" brain batch --vary G=0:0.2:21 --out builtin_G --plot builtin_G/exploration.svg
# G on TVB's connectivity_76.
"$nmm" brain batch --connectome "$c76" --vary G=0:0.2:21 --out connectivity76_G \
  --plot connectivity76_G/exploration.svg
# Four seeds around connectivity_76's peak.
"$nmm" brain batch --connectome "$c76" --rows "$here/connectivity76_seeds/rows.csv" \
  --out connectivity76_seeds
# Four seeds at G = 0.06 .. 0.1 on the built-in connectome, 200 s runs.
"$nmm" brain batch --config "$here/builtin_seeds/run.toml" --rows "$here/builtin_seeds/rows.csv" \
  --dt 0.01 --duration 200000 --transient 20000 --out builtin_seeds --jobs 2
# The FC-connectome correlation against the run's length at G = 0.08 (four seeds).
for d in 60 120; do
  "$nmm" brain batch --config "$here/builtin_${d}s/run.toml" --rows "$here/builtin_${d}s/rows.csv" \
    --dt 0.01 --duration "${d}000" --transient 20000 --out "builtin_${d}s" --jobs 2
done
