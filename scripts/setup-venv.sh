#!/usr/bin/env bash
# Installs one of the project's Python environments from its lock, and prints the venv's path.
#
#   scripts/setup-venv.sh NAME [LINK]
#
# NAME is a lock in scripts/python/ (NAME.linux-<machine>.txt, made by scripts/lock.sh). The
# venv holds exactly the packages of the lock, each checked against its sha256 (uv pip sync
# --require-hashes), and lives outside the clone, keyed by the lock, so clones share it:
#   ${LS_ML_CACHE:-$HOME/.cache/ls-ml-backend}/NAME-<sha256 of the lock, 12 hex>
# (VENV=... puts it elsewhere). LINK, when given, is made a symbolic link to it. A venv is
# complete only once its marker is written, last, so an interrupted install is redone.
set -euo pipefail
name="${1:?usage: scripts/setup-venv.sh NAME [LINK]}"
link="${2:-}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/retry.sh

machine="$(uname -m)"
lock="scripts/python/$name.linux-$machine.txt"
if [ "$(uname -s)" != Linux ] || [ ! -f "$lock" ]; then
    echo "setup-venv: no lock for $name on $(uname -s) $machine (scripts/python/ has linux x86_64 and aarch64)" >&2
    exit 1
fi
hash="$(sha256sum "$lock" | cut -c1-64)"
cache="${LS_ML_CACHE:-$HOME/.cache/ls-ml-backend}"
venv="${VENV:-$cache/$name-${hash:0:12}}"
marker="$venv/.ls-ml-backend-lock.sha256"

make_link() {
    [ -n "$link" ] || return 0
    # A real directory there (not a link) is left alone: someone made it on purpose.
    if [ -e "$link" ] && [ ! -L "$link" ]; then
        echo "setup-venv: $link exists and is not a link; leaving it (the venv is $venv)" >&2
        return 0
    fi
    ln -sfn "$venv" "$link"
}

if [ -x "$venv/bin/python" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$hash" ]; then
    make_link
    echo "$venv"
    exit 0
fi
uv="$(scripts/setup-uv.sh)"
# The locks are made for this Python (scripts/lock.sh); uv finds it on the PATH, and is never
# allowed to download one.
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
echo "installing the $name environment from $lock into $venv..." >&2
started=$(date +%s)
rm -f "$marker"
mkdir -p "$(dirname "$venv")"
"$uv" venv --quiet --allow-existing --no-python-downloads --python "$python" "$venv" >&2
retry "installing $name" "$uv" pip sync --quiet --require-hashes --no-python-downloads \
    --python "$venv/bin/python" "$lock" >&2
echo "$hash" > "$marker"
make_link
echo "installed the $name environment in $(( $(date +%s) - started )) s ($(du -sh "$venv" | cut -f1))" >&2
echo "$venv"
