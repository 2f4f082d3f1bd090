#!/usr/bin/env bash
# Installs the trainer's Python environment (Ultralytics, torch, onnx) for training jobs, from
# its lock (scripts/python/trainer.linux-<machine>.txt), and links it as .venv-trainer/, the
# server's default trainer (.venv-trainer/bin/python). The venv lives outside the clone, keyed
# by the lock, so clones and worktrees share it (scripts/setup-venv.sh):
#   ${ML_TRAINER_VENV:-${LS_ML_CACHE:-$HOME/.cache/ls-ml-backend}/trainer-<lock hash>}
# torch from PyPI brings CUDA libraries: ~6 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${ML_TRAINER_VENV:-}" ]; then
    export VENV="$ML_TRAINER_VENV"
fi
venv="$(scripts/setup-venv.sh trainer .venv-trainer)"
"$venv/bin/python" -c "import ultralytics, torch, onnx, onnxslim, onnxruntime"
echo "the trainer venv is installed in $venv; .venv-trainer links to it"
