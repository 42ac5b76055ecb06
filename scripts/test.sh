#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test (core also under fast-math), builds of the
# no_std core for the Cortex-M4F and wasm32 targets, the firmware under QEMU, and the WASM module
# under node and in headless Chromium. Run from anywhere in the repository.
#
# Needs qemu-system-arm, node/npm and chromium besides Rust (.ci/run installs them on Debian).
# NMM_SKIP_BROWSER=1 skips only the Chromium test.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT

if command -v rustup >/dev/null 2>&1; then
  step "toolchain components and targets"
  rustup component add rustfmt clippy llvm-tools >/dev/null
  rustup target add thumbv7em-none-eabihf wasm32-unknown-unknown >/dev/null
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "no_std core for thumbv7em-none-eabihf and wasm32-unknown-unknown"
cargo build -p nmm-core --locked --target thumbv7em-none-eabihf
cargo build -p nmm-core --locked --target wasm32-unknown-unknown
cargo build -p nmm-core --locked --target thumbv7em-none-eabihf --features fast-math

step "firmware (thumbv7em-none-eabihf) and WASM module (wasm32-unknown-unknown), release"
cargo clippy -p nmm-firmware --release --locked --target thumbv7em-none-eabihf -- -D warnings
cargo clippy -p nmm-wasm --release --locked --target wasm32-unknown-unknown -- -D warnings
cargo build -p nmm-firmware --release --locked --target thumbv7em-none-eabihf
cargo build -p nmm-wasm --release --locked --target wasm32-unknown-unknown
elf=target/thumbv7em-none-eabihf/release/nmm-firmware-qemu
wasm=target/wasm32-unknown-unknown/release/nmm_wasm.wasm
size -A "$elf" | awk '/^\.(text|rodata|data|bss) / { printf "  firmware %-8s %7d bytes\n", $1, $2 }'
printf '  nmm_wasm.wasm  %7d bytes\n' "$(stat -c %s "$wasm")"

step "firmware on QEMU mps2-an386 (digests vs host, cost per step)"
timeout 120 qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic -icount shift=0 \
  -semihosting-config enable=on,target=native -kernel "$elf"

step "rustdoc (missing docs and broken links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc -p nmm-core -p nmm --no-deps --locked

step "tests (unit, integration, doc)"
cargo test --workspace --locked 2>&1 | tee -a "$log"

step "spiking networks vs mean fields (release mode)"
cargo test --release --locked -p nmm-tests --test network_vs_mean_field 2>&1 | tee -a "$log"

step "Slurm: brain batch as an array job on a one-node cluster; merged = one process"
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
  command -v sbatch >/dev/null && command -v munged >/dev/null; then
  # The binary the integration tests above built.
  ./scripts/slurm_check.sh target/debug/nmm 3 2>&1 | tee -a "$log"
else
  echo "skipped: Slurm is not installed (slurmctld, slurmd, slurm-client, munge; .ci/run installs them)"
fi

step "nmm fit: synthetic recovery, small version (validation/fit/recovery.sh SMALL=1)"
# The binary the integration tests above built; the full run's table is validation/fit/.
NMM=target/debug/nmm SMALL=1 OUT=target/fit-recovery-small validation/fit/recovery.sh

step "core tests with fast-math (f32 accuracy under micromath)"
cargo test -p nmm-core --locked --features fast-math --lib --test models 2>&1 | tee -a "$log"

step "WASM module: JS API under node, demo page in headless Chromium"
(cd wasm && npm ci --no-audit --no-fund --loglevel=error && npm test) 2>&1 | tee -a "$log"

# One closing line over every test binary above (cargo prints one line per binary; node's test
# runner prints "# pass N" and "# fail N").
awk '/^test result:/ { p += $4; f += $6 } /^# pass / { p += $3 } /^# fail / { f += $3 }
     END { printf "\nsummary: %d passed, %d failed\n", p, f }' "$log"
