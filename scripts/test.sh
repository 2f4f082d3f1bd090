#!/usr/bin/env bash
# The whole test suite, every tier, as CI runs it: formatting, lints, the unit and integration
# tests (against the real binary, real plugins, real ONNX Runtime, and the outside programs:
# a real Label Studio, Chromium, ffmpeg and Ultralytics), then the release build, packaged and
# started as the container does, and a short benchmark run. Installs what it needs: the Rust
# toolchain and python3 (with venv) must be there.
#
# `cargo test` alone is the quick tier: it skips the tests that need an outside program and
# says which and why. Here they all run (--include-ignored), and a skipped test fails the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$SECONDS
phases=""
phase() { # name: ends the phase that ran since the last call
    phases="$phases$(printf '  %-44s %5d s' "$1" $((SECONDS - phase_start)))"$'\n'
    phase_start=$SECONDS
}
phase_start=$SECONDS
# A one-off run gains nothing from incremental caches, which were a third of target/ (2 GB).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# The debug and release builds take about 5 GB; the Python environments (cached outside the
# clone, in ~/.cache/ls-ml-backend) 7 GB more, once: say so up front rather than fail half-way
# with "No space left on device".
mkdir -p target
free_kib=$(df -Pk target | awk 'NR == 2 { print $4 }')
if [ "${free_kib:-0}" -lt $((6 * 1024 * 1024)) ]; then
    echo "warning: only $((free_kib / 1024)) MiB free for target/; the build and tests need about 5 GB" >&2
fi
scripts/setup-build-tools.sh
scripts/setup-onnxruntime.sh
# Every Python environment is installed from its lock (scripts/python/), by uv.
scripts/setup-label-studio.sh
scripts/setup-trainer.sh
scripts/setup-browser.sh
scripts/setup-ffmpeg.sh
phase "setup (installs, or checks what is installed)"

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The container files, with real linters (no Docker engine needed).
scripts/lint-container.sh
phase "formatting and lints"

log="$(mktemp)"
report="$(mktemp)"
dist="$(mktemp -d)"
smoke="$(mktemp -d)"
release_log="$(mktemp)"
release=""
cleanup() {
    # The release build runs in a process group of its own: this stops cargo and its rustcs.
    if [ -n "$release" ]; then kill -- -"$release" 2>/dev/null || true; fi
    rm -rf "$log" "$report" "$dist" "$smoke" "$release_log"
}
trap cleanup EXIT
# The integration tests start the real server, which loads the plugin libraries built here.
# The benchmark has no tests; it is built (release) and run below.
cargo build --workspace --exclude ls-ml-bench --locked
cargo test --workspace --exclude ls-ml-bench --locked --no-run
# Built: the tests need not build the plugins again (and would wait for the release build's lock).
export LS_ML_PLUGINS_BUILT=1
phase "debug build"
# One release build, for the package and the benchmark, beside the tests at the lowest
# priority: the tests leave the cores idle much of the time (waiting for Label Studio, the
# trainer, ffmpeg and timeouts), and the build takes only what they leave.
setsid nice -n 19 cargo build --release --locked -p ls-ml-backend -p yolov8-detect -p yolov8-seg -p yolov8-cls \
    -p yolov8-pose -p yolov8-obb -p sam -p ls-ml-bench > "$release_log" 2>&1 &
release=$!
# Tests append their measurements (parity, timings, end-to-end counts) here.
export LS_ML_TEST_REPORT="$report"
cargo test --workspace --exclude ls-ml-bench --locked -- --include-ignored 2>&1 | tee "$log"
phase "tests (the release build beside them)"
# cargo prints one line per test binary; nothing may be skipped here.
ignored=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($i ~ /^ignored/) n += $(i-1) } END { print n + 0 }' "$log")
if [ "$ignored" -ne 0 ]; then
    echo "$ignored tests were skipped; CI runs every test" >&2
    exit 1
fi

if ! wait "$release"; then
    release=""
    echo "the release build failed:" >&2
    cat "$release_log" >&2
    exit 1
fi
release=""
phase "release build (what the tests left of it)"
# The container's build steps, run without Docker: package as the image does, then start the
# packaged server from its own folder and ask it for /health.
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
# The benchmark, briefly (1 s per load level, one round, no Python anchor): it must run end to
# end; its figures go to the report. scripts/bench.sh is the real measurement.
target/release/ls-ml-bench --repo . --out "$smoke" --seconds 1 --sets eval-a --tasks 1,16 --clients 1,4 \
    --rounds 1 --python /nonexistent > "$smoke/table.txt" 2> "$smoke/progress.txt" || {
    echo "the benchmark failed:" >&2
    cat "$smoke/progress.txt" "$smoke/table.txt" >&2
    exit 1
}
sed 's/^/benchmark smoke: /' "$smoke/table.txt" >> "$report"
phase "package and benchmark smoke"

echo
echo "measured:"
sed 's/^/  /' "$report"
echo "time:"
printf '%s' "$phases"
printf '  %-44s %5d s\n' "total" $((SECONDS - started))
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
