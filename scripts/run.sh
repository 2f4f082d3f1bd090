#!/usr/bin/env bash
# Builds everything in release mode and starts the server. Settings come from the
# environment or a .env file (see .env.example); arguments are passed to the server.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-build-tools.sh
scripts/setup-onnxruntime.sh
# Video tracking decodes with ffmpeg; without it, only video tasks fail (with a clear error).
scripts/setup-ffmpeg.sh || echo "ffmpeg could not be installed: video tasks will fail until it is" >&2
# Only what ships: the server and its plugins (not the test-only faulty plugin).
cargo build --release --locked -p ls-ml-backend -p yolov8-detect -p yolov8-seg -p yolov8-cls -p yolov8-pose -p yolov8-obb -p sam
exec target/release/ls-ml-backend "$@"
