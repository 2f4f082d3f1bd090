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
# The Python anchor: Ultralytics (and the same ONNX Runtime) in their own venv. Optional: the
# benchmark notes it when this cannot be installed.
if [ ! -x .venv-bench/bin/python ] || ! .venv-bench/bin/python -c "import ultralytics, onnxruntime" 2>/dev/null; then
    python3 -m venv .venv-bench && .venv-bench/bin/pip install --quiet --disable-pip-version-check \
        "ultralytics==8.4.190" "onnxruntime==1.32.0" || echo "bench: ultralytics could not be installed; the anchor is skipped"
fi
mkdir -p docs/bench
target/release/ls-ml-bench --repo . --out docs/bench "$@" | tee docs/bench/table.txt
# The data behind the runtime defaults: threading layouts, session memory, micro-batching.
target/release/ort-layouts | tee docs/bench/layouts.txt
