#!/usr/bin/env bash
# The interactive labeling benchmark: segment-anything's first click on a new image and a
# repeated click (embedding cached) through the release server's /predict, each against the
# encoder's and the decoder's bare ONNX Runtime session.run; and a YOLO segmentation model's
# interactive click against a plain /predict. Writes docs/bench/interactive.txt. Run it on an
# otherwise idle machine: it measures time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-build-tools.sh
scripts/setup-onnxruntime.sh
cargo build --release --locked -p ls-ml-backend -p yolov8-seg -p sam -p ls-ml-bench
mkdir -p docs/bench
target/release/interactive-bench --repo . "$@" | tee docs/bench/interactive.txt
