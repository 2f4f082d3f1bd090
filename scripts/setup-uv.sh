#!/usr/bin/env bash
# Installs uv, which installs every other Python environment from its lock, and prints the
# path of its executable. uv itself comes from PyPI through pip, checked against the hashes in
# scripts/python/uv.txt, into a venv outside the clone keyed by that file:
#   ${LS_ML_CACHE:-$HOME/.cache/ls-ml-backend}/uv-<sha256 of uv.txt, 12 hex>/bin/uv
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/retry.sh

LOCK="scripts/python/uv.txt"
HASH="$(sha256sum "$LOCK" | cut -c1-12)"
CACHE="${LS_ML_CACHE:-$HOME/.cache/ls-ml-backend}"
VENV="$CACHE/uv-$HASH"
if [ -x "$VENV/bin/uv" ] && [ -f "$VENV/.complete" ]; then
    echo "$VENV/bin/uv"
    exit 0
fi
PYTHON="${PYTHON:-python3}"
rm -rf "$VENV"
mkdir -p "$CACHE"
"$PYTHON" -m venv "$VENV" >&2
# From the lock alone: every package pinned with its hashes, nothing resolved.
retry "installing uv" "$VENV/bin/python" -m pip install --require-hashes --no-deps --only-binary=:all: -r "$LOCK" -q >&2
touch "$VENV/.complete"
echo "$VENV/bin/uv"
