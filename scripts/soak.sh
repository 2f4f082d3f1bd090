#!/usr/bin/env bash
# The long soak: 8 clients send detection and segmentation requests for 10 minutes (release
# build) while a model is swapped every 30 s. Writes the result to docs/soak.md.
#   SOAK_SECONDS=600 SOAK_SWAP_SECONDS=30 scripts/soak.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-build-tools.sh
scripts/setup-onnxruntime.sh
cargo build --release --workspace --locked
raw="$(mktemp)"
trap 'rm -f "$raw"' EXIT
LS_ML_SOAK_SECONDS="${SOAK_SECONDS:-600}" LS_ML_SOAK_SWAP_SECONDS="${SOAK_SWAP_SECONDS:-30}" \
    LS_ML_SOAK_REPORT="$raw" \
    cargo test --release --locked -p ls-ml-backend --test integration -- soak:: --nocapture
{
    echo "# Soak result"
    echo
    echo "\`scripts/soak.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m), release build:"
    echo
    echo '```'
    cat "$raw"
    echo '```'
} > docs/soak.md
echo "wrote docs/soak.md"
