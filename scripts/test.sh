#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test (core also under fast-math), and builds of
# the no_std core for the Cortex-M4F and wasm32 targets. Run from anywhere in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT

if command -v rustup >/dev/null 2>&1; then
  step "toolchain components and targets"
  rustup component add rustfmt clippy >/dev/null
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

step "rustdoc (missing docs and broken links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc -p nmm-core --no-deps --locked

step "tests (unit, integration, doc)"
cargo test --workspace --locked 2>&1 | tee -a "$log"

step "spiking networks vs mean fields (release mode)"
cargo test --release --locked -p nmm-tests --test network_vs_mean_field 2>&1 | tee -a "$log"

step "core tests with fast-math (f32 accuracy under micromath)"
cargo test -p nmm-core --locked --features fast-math --lib --test models 2>&1 | tee -a "$log"

# One closing line over every test binary above (cargo prints one line per binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "\nsummary: %d passed, %d failed\n", p, f }' "$log"
