#!/usr/bin/env bash
# The CUDA check, for a machine with an NVIDIA GPU: builds, runs the parity and server tests
# with ML_PROVIDER=cuda against the onnxruntime-gpu libraries, and prints CPU vs CUDA latency,
# the provider each model really used, and throughput at ML_MAX_BATCH 1, 4 and 16. Writes
# docs/cuda-check.md.
#
# Needs: the NVIDIA driver, the CUDA 13 and cuDNN 9 runtime libraries on the loader path
# (CUDA_LIBS, colon-separated, is added to LD_LIBRARY_PATH: e.g. the lib folders of the
# nvidia-*-cu13 pip packages), Rust, python3 with pip, and PyPI for the onnxruntime-gpu wheel.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LD_LIBRARY_PATH="${CUDA_LIBS:+$CUDA_LIBS:}${LD_LIBRARY_PATH:-}"
scripts/setup-build-tools.sh
scripts/setup-onnxruntime.sh
ORT_FLAVOR=gpu scripts/setup-onnxruntime.sh
gpu_ort="$PWD/vendor/onnxruntime-gpu/libonnxruntime.so"
cargo build --workspace --locked
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "== tests with ML_PROVIDER=cuda"
ORT_DYLIB_PATH="$gpu_ort" ML_PROVIDER=cuda cargo test --locked -p ls-ml-backend \
    --test integration -- parity:: seg_parity:: cls_parity:: server:: hot_reload:: reliability:: batching:: \
    2>&1 | tee "$out/tests.log" | grep -E "^test |test result|parity" || true
tests_ok=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($i ~ /^passed/) n += $(i-1) } END { print n + 0 }' "$out/tests.log")
tests_failed=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($i ~ /^failed/) n += $(i-1) } END { print n + 0 }' "$out/tests.log")

echo "== latency, CPU vs CUDA (debug build of the host, plugins optimised)"
latency() { # provider, library
    local port models
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    models="$(mktemp -d)"
    cp tests/fixtures/models/yolov8n-shapes-det-320.onnx "$models/1.onnx"
    cp tests/fixtures/models/yolov8n-shapes-seg-320.onnx "$models/2.onnx"
    ML_BACKEND_ADDR=127.0.0.1 ML_BACKEND_PORT=$port ML_MODELS_DIR="$models" ML_PROVIDER="$1" \
        ORT_DYLIB_PATH="$2" target/debug/ls-ml-backend > "$out/server-$1.log" 2>&1 &
    local pid=$!
    python3 - "$port" "$1" <<'PY'
import json, statistics, sys, threading, time, urllib.request, http.server, functools, os
port, provider = sys.argv[1], sys.argv[2]
images = "tests/fixtures/eval-a/images"
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=images)
httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
httpd.log_message = lambda *a: None
threading.Thread(target=httpd.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{port}"
for _ in range(300):
    try:
        h = json.load(urllib.request.urlopen(base + "/health"))
        if h["models"]["loading"] == 0:
            break
    except Exception:
        pass
    time.sleep(0.2)
models = json.load(urllib.request.urlopen(base + "/models"))["models"]
names = sorted(os.listdir(images))
config = '<View><Image name="image" value="$image"/><RectangleLabels name="b" toName="image"><Label value="circle"/></RectangleLabels><BrushLabels name="m" toName="image"><Label value="circle"/></BrushLabels></View>'
for project, model in (("1", "det"), ("2", "seg")):
    times = []
    for round_ in range(4):
        for n in names:
            body = json.dumps({"tasks": [{"id": 1, "data": {"image": f"http://127.0.0.1:{httpd.server_port}/{n}"}}],
                               "project": f"{project}.1", "label_config": config}).encode()
            t = time.perf_counter()
            urllib.request.urlopen(urllib.request.Request(base + "/predict", body, {"Content-Type": "application/json"})).read()
            if round_ > 0:
                times.append((time.perf_counter() - t) * 1e3)
    used = [m["provider"] for m in models if m["name"] == project]
    print(f"{provider:>4} {model}: /predict p50 {statistics.median(times):.1f} ms, p95 {sorted(times)[int(len(times) * 0.95)]:.1f} ms (1 task, concurrency 1); provider really used: {used[0] if used else '?'}")
PY
    kill $pid; wait $pid 2>/dev/null || true
}
latency cpu "$PWD/vendor/onnxruntime/libonnxruntime.so" | tee "$out/latency.txt"
latency cuda "$gpu_ort" | tee -a "$out/latency.txt"

echo "== dynamic batching on the GPU (ML_MAX_BATCH 1, 4, 16): the figures that choose its CUDA default"
cargo build --release --locked -p ls-ml-backend -p yolov8-detect -p ls-ml-bench
ML_PROVIDER=cuda ORT_DYLIB_PATH="$gpu_ort" target/release/ls-ml-bench --repo . --only-batching 2>/dev/null \
    | tee "$out/batching.txt"

{
    echo "# CUDA check"
    echo
    echo "\`scripts/cuda-check.sh\` on $(date -u +%Y-%m-%d): $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')."
    echo
    echo "Tests with ML_PROVIDER=cuda: $tests_ok passed, $tests_failed failed."
    echo
    echo '```'
    grep -E "parity|test result" "$out/tests.log" || true
    cat "$out/latency.txt"
    cat "$out/batching.txt"
    echo '```'
} > docs/cuda-check.md
cat docs/cuda-check.md
[ "$tests_failed" = 0 ]
