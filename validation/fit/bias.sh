#!/usr/bin/env bash
# Where a fit stopped, is its gradient the slope of the expected loss, and is that slope zero?
# For subjects of a recovery run (FITS, default target/fit-recovery-pairs) at their fits' final
# values: the mean over SEEDS (8) noise seeds of the window gradient nmm fit follows (start of
# the window held), against central differences (+-3 %) of the mean window loss with the whole
# run at the shifted value (host-cli/nmm/examples/fit_bias.rs). GAINS (default G) picks the
# gains; about 8 CPU-minutes per subject and gain. Writes bias.txt here with COPY=1.
#   SUBJECTS="3 1" COPY=1 validation/fit/bias.sh
set -euo pipefail
fits=${FITS:-target/fit-recovery-pairs}
here=$(dirname "$0")
cargo build --release -p nmm --example fit_bias
out=$(mktemp)
for i in ${SUBJECTS:-3 1}; do
    vals=$(python3 -c "
import json; r = json.load(open('$fits/fit-$i.json'))['final']
print(' '.join(f'{k}={r[k]!r}' for k in ['G', 'g_EE', 'g_EI', 'g_IE']))")
    GAINS=${GAINS:-G} target/release/examples/fit_bias ../shared/data/tvb/connectivity_66.zip \
        "$fits/subject-$i.npy" "${SEEDS:-8}" 0.03 $vals | tee -a "$out"
done
if [ "${COPY:-0}" = 1 ]; then cp "$out" "$here/bias.txt"; fi
rm -f "$out"
