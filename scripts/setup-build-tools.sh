#!/usr/bin/env bash
# Build tools beyond the Rust toolchain: nasm, which builds libjpeg-turbo's SIMD code (JPEG
# decoding about 3x faster). Installed from Debian/Ubuntu packages when missing.
set -euo pipefail
if command -v nasm >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "nasm is needed to build (libjpeg-turbo's SIMD code): install it with your package manager" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "installing nasm (for libjpeg-turbo's SIMD code)..." >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q --no-install-recommends nasm >/dev/null 2>&1 \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q --no-install-recommends nasm >/dev/null; }
command -v nasm >/dev/null
