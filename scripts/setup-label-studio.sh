#!/usr/bin/env bash
# Installs Label Studio (pinned) into .venv-ls/, for the end-to-end tests. Idempotent: an
# existing venv with the right version is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/retry.sh

VERSION="1.23.2"
VENV=".venv-ls"

if [ -x "$VENV/bin/label-studio" ] && "$VENV/bin/python" -c "import importlib.metadata as m; assert m.version('label-studio') == '$VERSION'" 2>/dev/null; then
    echo "Label Studio $VERSION is installed in $VENV"
    exit 0
fi
PYTHON="${PYTHON:-python3}"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
retry "installing Label Studio $VERSION" \
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "label-studio==$VERSION"
echo "installed Label Studio $VERSION in $VENV"
