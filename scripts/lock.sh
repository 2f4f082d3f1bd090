#!/usr/bin/env bash
# Renews the Python locks in scripts/python/: every package of every environment, pinned, with
# the sha256 of each of its files on PyPI. The setup scripts install from these files alone
# (scripts/setup-venv.sh), so a new release on PyPI changes nothing until this is run again.
#
#   scripts/lock.sh                  # all environments, both platforms
#   scripts/lock.sh label-studio     # one environment
#   scripts/lock.sh --upgrade trainer   # newest versions allowed by the .in file (default:
#                                       # keep what the lock has where it still fits)
#
# To change a pin: edit scripts/python/NAME.in, run this, test, and commit both files.
# The npm tools have their own lock: scripts/npm/package-lock.json (renew it with
# `npm install --package-lock-only --prefix scripts/npm`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/retry.sh
uv="$(scripts/setup-uv.sh)"

upgrade=()
if [ "${1:-}" = --upgrade ]; then
    upgrade=(--upgrade)
    shift
fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    names=(uv label-studio trainer fixtures lint)
fi

# The Python the locks are made for: the one on the machines we test on (Debian 12's and
# the container's). The files' hashes cover every wheel of each pinned version, so the same lock
# also installs on other CPython versions those wheels support.
PY_VERSION=3.11
if printf '%s\n' "${names[@]}" | grep -qx uv; then
    # uv has no dependencies and one wheel per platform: one file for all of them.
    retry "locking uv" "$uv" pip compile --quiet --generate-hashes --no-header --universal \
        "${upgrade[@]}" --output-file scripts/python/uv.txt scripts/python/uv.in
    sed -i "1i # Made by scripts/lock.sh from uv.in (every platform). Do not edit." scripts/python/uv.txt
fi
for name in "${names[@]}"; do
    [ "$name" = uv ] && continue
    input="scripts/python/$name.in"
    [ -f "$input" ] || { echo "lock: no $input" >&2; exit 1; }
    for platform in x86_64 aarch64; do
        out="scripts/python/$name.linux-$platform.txt"
        echo "locking $name for linux-$platform..." >&2
        also=()
        # The fixtures are made in the trainer's environment plus two packages: the same versions.
        [ "$name" = fixtures ] && also=(--constraint "scripts/python/trainer.linux-$platform.txt")
        retry "locking $name" "$uv" pip compile --quiet --generate-hashes --no-header --annotation-style line \
            --python-version "$PY_VERSION" --python-platform "$platform-manylinux_2_28" \
            "${upgrade[@]}" "${also[@]}" --output-file "$out" "$input"
        # uv writes the command it was run with; say instead how to renew the file.
        sed -i "1i # Made by scripts/lock.sh from $name.in (Python $PY_VERSION, linux $platform). Do not edit." "$out"
    done
done
