#!/usr/bin/env bash
# The long soaks, outside CI (CI runs each for 20 s):
# - det-seg: 8 clients of detection and segmentation while a model is swapped;
# - mixed: detection, segmentation, SAM clicks and video tracking, a project prediction job
#   into a real Label Studio again and again, and the attacks of docs/security.md beside them.
# Each writes docs/soak/NAME.txt (its summary) and docs/soak/NAME.csv (RSS samples), and
# docs/soak.md gathers the summaries.
#   SOAK_SECONDS=1800 SOAK_SWAP_SECONDS=30 SOAK_PROFILE=release scripts/soak.sh [det-seg] [mixed]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
soaks=("$@")
[ ${#soaks[@]} -gt 0 ] || soaks=(det-seg mixed)
profile="${SOAK_PROFILE:-release}"
flag=""
[ "$profile" = release ] && flag="--release"
scripts/setup-build-tools.sh
scripts/setup-onnxruntime.sh
scripts/setup-label-studio.sh
scripts/setup-ffmpeg.sh
cargo build $flag --workspace --locked
for soak in "${soaks[@]}"; do
    case "$soak" in
        det-seg) filter="soak::eight_clients" ;;
        mixed) filter="soak::mixed_load" ;;
        *) echo "unknown soak $soak (det-seg or mixed)" >&2; exit 2 ;;
    esac
    report="$(mktemp)"
    LS_ML_SOAK_SECONDS="${SOAK_SECONDS:-600}" LS_ML_SOAK_SWAP_SECONDS="${SOAK_SWAP_SECONDS:-30}" \
        LS_ML_SOAK_REPORT="$PWD/docs/soak/$soak.csv" \
        LS_ML_TEST_REPORT="$report" \
        cargo test $flag --locked -p ls-ml-backend --test integration -- --include-ignored "$filter" --nocapture
    {
        echo "\`scripts/soak.sh $soak\` on $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m), $profile build:"
        grep '^soak' "$report"
    } > "docs/soak/$soak.txt"
    rm -f "$report"
done
{
    echo "# Soak results"
    echo
    echo "The latest run of each soak (\`scripts/soak.sh\`); its RSS samples, every 0.5 s, are in"
    echo "\`docs/soak/NAME.csv\`."
    for summary in docs/soak/*.txt; do
        echo
        echo "## $(basename "$summary" .txt)"
        echo
        head -1 "$summary"
        echo
        tail -n +2 "$summary" | sed 's/^/    /'
    done
} > docs/soak.md
echo "wrote docs/soak.md"
