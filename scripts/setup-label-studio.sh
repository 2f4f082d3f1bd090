#!/usr/bin/env bash
# Installs Label Studio 1.23.2 for the end-to-end tests, from its lock
# (scripts/python/label-studio.linux-<machine>.txt), and links it as .venv-ls/. The venv is
# cached outside the clone, keyed by the lock (scripts/setup-venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# Earlier versions of this script made .venv-ls a venv of its own, installed without a lock:
# replaced by the link.
if [ -d .venv-ls ] && [ ! -L .venv-ls ] && [ -x .venv-ls/bin/label-studio ]; then
    rm -rf .venv-ls
fi
venv="$(scripts/setup-venv.sh label-studio .venv-ls)"
"$venv/bin/python" -c "import importlib.metadata as m; assert m.version('label-studio') == '1.23.2'"
echo "Label Studio 1.23.2 is installed in $venv; .venv-ls links to it"
