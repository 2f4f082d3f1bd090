#!/usr/bin/env bash
# The video tracking benchmark: frames per second end to end (download, ffprobe, ffmpeg
# decode, detection, tracking, Label Studio JSON) through the release server's /predict,
# against Ultralytics' `model.track` (OpenCV decode, the same ONNX model and ONNX Runtime,
# its own tracker) on the same videos: the 480x320 fixture and a 1920x1280 upscale of it.
# Writes docs/bench/video.txt. Run it on an otherwise idle machine: it measures time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-build-tools.sh
scripts/setup-onnxruntime.sh
scripts/setup-ffmpeg.sh
cargo build --release --locked -p ls-ml-backend -p yolov8-detect
# Ultralytics (and `lap`, which its trackers import): the fixtures' environment, from its lock.
venv="$(scripts/setup-venv.sh fixtures .venv-fixtures)"
work=target/bench-video
mkdir -p "$work/models" docs/bench
cp tests/fixtures/models/yolov8n-shapes-det-320.onnx "$work/models/"
cp tests/fixtures/video/cross.mp4 "$work/cross-480x320.mp4"
if [ ! -f "$work/cross-1920x1280.mp4" ]; then
    ffmpeg -nostdin -loglevel error -y -i tests/fixtures/video/cross.mp4 -vf scale=1920:1280 \
        -c:v libx264 -pix_fmt yuv420p -crf 20 "$work/cross-1920x1280.mp4"
fi
exec "$venv/bin/python" - "$work" <<'PY' 2>&1 | tee docs/bench/video.txt
import json, os, socket, urllib.error, statistics, subprocess, sys, threading, time, urllib.request
import http.server, functools

work = sys.argv[1]
videos = ["cross-480x320.mp4", "cross-1920x1280.mp4"]
repeat = 5

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=work))
threading.Thread(target=files.serve_forever, daemon=True).start()
port = free_port()
env = dict(os.environ, ML_MODELS_DIR=f"{work}/models", ML_BACKEND_PORT=str(port), ML_BACKEND_ADDR="127.0.0.1", RUST_LOG="warn")
server = subprocess.Popen(["target/release/ls-ml-backend"], env=env, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health"); break
        except Exception:
            time.sleep(0.1)
    print(f"machine: {os.cpu_count()} cores; model yolov8n-shapes-det-320.onnx; median of {repeat} runs after one warm-up")
    print(f"{'video':<22} {'tracker':<10} {'frames':>6} {'ours fps':>9} {'Ultralytics fps':>16} {'ratio':>6}")
    for video in videos:
        for tracker in ["bytetrack", "botsort"]:
            config = (f'<View><Video name="video" value="$video"/><VideoRectangle name="box" toName="video" '
                      f'model_tracker="{tracker}"/><Labels name="l" toName="video"><Label value="circle"/>'
                      f'<Label value="square"/><Label value="triangle"/></Labels></View>')
            body = json.dumps({"tasks": [{"id": 1, "data": {"video": f"http://127.0.0.1:{files.server_port}/{video}"}}],
                               "label_config": config, "project": "1"}).encode()
            times, frames = [], 0
            for i in range(repeat + 1):
                start = time.perf_counter()
                for attempt in range(100):
                    try:
                        answer = json.load(urllib.request.urlopen(urllib.request.Request(
                            f"http://127.0.0.1:{port}/predict", data=body, headers={"Content-Type": "application/json"})))
                        break
                    except urllib.error.HTTPError as e:
                        # 503 while the model still loads at start-up.
                        if e.code != 503 or attempt == 99:
                            raise
                        time.sleep(0.2)
                if i:
                    times.append(time.perf_counter() - start)
                result = answer["results"][0]["result"]
                frames = result[0]["value"]["framesCount"] if result else 0
            ours = frames / statistics.median(times)
            theirs = None
            try:
                out = subprocess.run([sys.executable, "scripts/fixtures/ultralytics-track-bench.py", f"{work}/{video}", tracker,
                                      "--repeat", str(repeat)], capture_output=True, text=True, check=True)
                theirs = json.loads(out.stdout.strip().splitlines()[-1])["fps"]
            except Exception as e:
                print(f"  (Ultralytics skipped: {e})")
            ratio = f"{ours / theirs:.2f}x" if theirs else "-"
            print(f"{video:<22} {tracker:<10} {frames:>6} {ours:>9.1f} {theirs or '-':>16} {ratio:>6}")
finally:
    server.terminate(); server.wait()
PY
