#!/usr/bin/env bash
# Builds the release binary and the shipped plugins, and lays them out as the container does:
#   DEST/ls-ml-backend   DEST/plugins/lib*.so   DEST/lib/libonnxruntime.so*
# The Dockerfile runs this script; scripts/test.sh runs it too and starts the result, so the
# container's build steps are exercised on every CI run, Docker engine or not.
#   scripts/package.sh /tmp/dist
#   ORT_FLAVOR=gpu scripts/package.sh /tmp/dist-cuda     # with onnxruntime-gpu (CUDA 13)
set -euo pipefail
dest="${1:?usage: scripts/package.sh DEST}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-build-tools.sh
cargo build --release --locked -p ls-ml-backend -p yolov8-detect -p yolov8-seg -p yolov8-cls -p yolov8-pose -p yolov8-obb -p sam
mkdir -p "$dest/plugins" "$dest/lib"
cp target/release/ls-ml-backend "$dest/"
cp target/release/libyolov8_detect.so target/release/libyolov8_seg.so target/release/libyolov8_cls.so \
    target/release/libyolov8_pose.so target/release/libyolov8_obb.so target/release/libsam.so "$dest/plugins/"
ORT_VENDOR_DIR="$dest/lib" scripts/setup-onnxruntime.sh
echo "packaged into $dest"
