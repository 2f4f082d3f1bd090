#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every unit and integration test against the
# real binary, real plugins, real ONNX Runtime and a real Label Studio. Needs the Rust toolchain
# and python3 with pip (and venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-onnxruntime.sh
# The end-to-end tests drive a real Label Studio; installed once into .venv-ls/.
scripts/setup-label-studio.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The integration tests start the real server, which loads the plugin libraries built here.
cargo build --workspace --locked
log="$(mktemp)"
report="$(mktemp)"
trap 'rm -f "$log" "$report"' EXIT
# Tests append their measurements (parity, timings, end-to-end counts) here.
export LS_ML_TEST_REPORT="$report"
cargo test --workspace --locked 2>&1 | tee "$log"
echo
echo "measured:"
sed 's/^/  /' "$report"
# cargo prints one line per test binary; end with the totals over all of them.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
