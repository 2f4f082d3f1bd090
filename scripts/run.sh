#!/usr/bin/env bash
# Builds everything in release mode and starts the server. Settings come from the
# environment or a .env file (see .env.example); arguments are passed to the server.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-build-tools.sh
scripts/setup-onnxruntime.sh
# Only what ships: the server and its plugins (not the test-only faulty plugin).
cargo build --release --locked -p ls-ml-backend -p yolov8-detect -p yolov8-seg -p yolov8-cls
exec target/release/ls-ml-backend "$@"
