#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every unit and integration test against the
# real binary, real plugins, real ONNX Runtime and a real Label Studio. Needs the Rust toolchain
# and python3 with pip (and venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# A one-off run gains nothing from incremental caches, which were a third of target/ (2 GB).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# The debug and release builds and Label Studio's venv take about 5 GB together (the trainer's
# venv, cached in ~/.cache, another 6 GB once): say so up
# front rather than fail half-way with "No space left on device".
mkdir -p target
free_kib=$(df -Pk target | awk 'NR == 2 { print $4 }')
if [ "${free_kib:-0}" -lt $((6 * 1024 * 1024)) ]; then
    echo "warning: only $((free_kib / 1024)) MiB free for target/; the build and tests need about 5 GB" >&2
fi
scripts/setup-build-tools.sh
scripts/setup-onnxruntime.sh
# The end-to-end tests drive a real Label Studio; installed once into .venv-ls/.
scripts/setup-label-studio.sh
# The web page's test drives a real Chromium.
scripts/setup-browser.sh
# Video tracking decodes with ffmpeg.
scripts/setup-ffmpeg.sh
# Training jobs run Ultralytics in its own venv (cached outside the clone: ~6 GB once).
scripts/setup-trainer.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The container files, with real linters (no Docker engine needed).
scripts/lint-container.sh
# The integration tests start the real server, which loads the plugin libraries built here.
cargo build --workspace --locked
log="$(mktemp)"
report="$(mktemp)"
trap 'rm -f "$log" "$report"' EXIT
# Tests append their measurements (parity, timings, end-to-end counts) here.
export LS_ML_TEST_REPORT="$report"
cargo test --workspace --locked 2>&1 | tee "$log"
# The container's build steps, run without Docker: package as the image does, then start the
# packaged server from its own folder and ask it for /health.
dist="$(mktemp -d)"
scripts/package.sh "$dist"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$dist/models"
ML_BACKEND_ADDR=127.0.0.1 ML_BACKEND_PORT=$port ML_MODELS_DIR="$dist/models" ML_PLUGINS_DIR="$dist/plugins" \
    ORT_DYLIB_PATH="$dist/lib/libonnxruntime.so" "$dist/ls-ml-backend" > "$dist/server.log" 2>&1 &
server=$!
healthy=no
for _ in $(seq 1 100); do
    if ML_BACKEND_PORT=$port "$dist/ls-ml-backend" --health-check 2>/dev/null; then healthy=yes; break; fi
    sleep 0.1
done
kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
missing=""
for plugin in yolov8-detect yolov8-seg yolov8-cls yolov8-pose yolov8-obb sam; do
    grep -q "plugin $plugin " "$dist/server.log" || missing="$missing $plugin"
done
if [ "$healthy" != yes ] || [ -n "$missing" ]; then
    echo "the packaged server did not come up healthy with its plugins (missing:${missing:- none}):" >&2
    cat "$dist/server.log" >&2
    exit 1
fi
echo "packaged server: healthy, plugins: $(grep -c 'plugin .* loaded' "$dist/server.log")" | tee -a "$report"
rm -rf "$dist"

echo
echo "measured:"
sed 's/^/  /' "$report"
# cargo prints one line per test binary; end with the totals over all of them.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
