#!/usr/bin/env bash
# The performance benchmark: ONNX Runtime's own limit, the pipeline's stages, the server over
# HTTP (1-8 clients, 1 and 16 tasks, eval-a and 1920x1080 images), peak RSS, and Ultralytics
# on the same files. Writes docs/bench/results.json, docs/bench/chart.svg, docs/bench/table.txt.
# Run it on an otherwise idle machine: it measures time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-build-tools.sh
scripts/setup-onnxruntime.sh
cargo build --release --locked -p ls-ml-backend -p yolov8-detect -p yolov8-seg -p ls-ml-bench
# The Python anchor: Ultralytics (and the same ONNX Runtime) in the environment the fixtures'
# references were made in, installed from its lock (scripts/python/fixtures.*.txt). Optional:
# the benchmark notes it when this cannot be installed.
python=/nonexistent
if venv="$(scripts/setup-venv.sh fixtures .venv-fixtures)"; then
    python="$venv/bin/python"
else
    echo "bench: the fixtures environment could not be installed; the Ultralytics anchor is skipped" >&2
fi
mkdir -p docs/bench
target/release/ls-ml-bench --repo . --out docs/bench --python "$python" "$@" | tee docs/bench/table.txt
# The data behind the runtime defaults: threading layouts, session memory, micro-batching.
target/release/ort-layouts | tee docs/bench/layouts.txt
