#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every unit and integration test against the
# real binary, real plugins and real ONNX Runtime. Needs the Rust toolchain and python3 with pip.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-onnxruntime.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The integration tests start the real server, which loads the plugin libraries built here.
cargo build --workspace --locked
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# cargo prints one line per test binary; end with the totals over all of them.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
