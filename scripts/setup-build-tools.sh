#!/usr/bin/env bash
# Build tools beyond the Rust toolchain: nasm, which builds libjpeg-turbo's SIMD code (JPEG
# decoding about 3x faster). Installed from Debian/Ubuntu packages when missing.
set -euo pipefail
if command -v nasm >/dev/null 2>&1; then
    exit 0
fi
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
apt_install "for libjpeg-turbo's SIMD code" nasm
command -v nasm >/dev/null
