#!/usr/bin/env bash
# Installs the trainer's Python environment (Ultralytics, torch, onnx; pinned in
# scripts/trainer/requirements.txt) for training jobs, and links it as .venv-trainer/, the
# server's default trainer (.venv-trainer/bin/python). The venv lives outside the clone,
# keyed by the requirements, so clones and worktrees share it:
#   ${ML_TRAINER_VENV:-$HOME/.cache/ls-ml-backend/trainer-<sha256 of requirements.txt, 12 hex>}
# Idempotent: a venv whose marker matches the requirements is kept. The marker is written
# last, so an interrupted install is redone. torch from PyPI brings CUDA libraries: ~6 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/retry.sh

REQUIREMENTS="scripts/trainer/requirements.txt"
HASH="$(sha256sum "$REQUIREMENTS" | cut -c1-64)"
VENV="${ML_TRAINER_VENV:-$HOME/.cache/ls-ml-backend/trainer-${HASH:0:12}}"
MARKER="$VENV/.ls-ml-backend-requirements.sha256"
LINK=".venv-trainer"

link() {
    # A real directory there (not a link) is left alone: someone made it on purpose.
    if [ -e "$LINK" ] && [ ! -L "$LINK" ]; then
        echo "$LINK exists and is not a link; leaving it (the venv is $VENV)" >&2
        return
    fi
    ln -sfn "$VENV" "$LINK"
}

if [ -x "$VENV/bin/python" ] && [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$HASH" ]; then
    link
    echo "the trainer venv is installed in $VENV ($(du -sh "$VENV" | cut -f1)); $LINK links to it"
    exit 0
fi
PYTHON="${PYTHON:-python3}"
mkdir -p "$(dirname "$VENV")"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "" 2>/dev/null; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
retry "installing the trainer requirements" \
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
"$VENV/bin/python" -c "import ultralytics, torch, onnx, onnxslim, onnxruntime"
echo "$HASH" > "$MARKER"
link
echo "installed the trainer venv in $VENV ($(du -sh "$VENV" | cut -f1)); $LINK links to it"
