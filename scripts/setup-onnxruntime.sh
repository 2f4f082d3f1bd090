#!/usr/bin/env bash
# Puts ONNX Runtime's shared library in vendor/onnxruntime/, taken from the official
# `onnxruntime` wheel on PyPI (pinned, checked by sha256). Nothing is downloaded from
# anywhere but PyPI, and nothing happens if the library is already there.
#
#   scripts/setup-onnxruntime.sh            # into vendor/onnxruntime/
#   ORT_VENDOR_DIR=/app/lib scripts/setup-onnxruntime.sh
#   ORT_FLAVOR=gpu scripts/setup-onnxruntime.sh   # onnxruntime-gpu (CUDA 13), into vendor/onnxruntime-gpu/
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/retry.sh"
flavor="${ORT_FLAVOR:-cpu}"
extra=()
case "$flavor-$(uname -s)-$(uname -m)" in
  cpu-Linux-x86_64)
    package=onnxruntime VERSION=1.32.0 pyver=3.11 platform=manylinux_2_28_x86_64
    sha256=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d ;;
  cpu-Linux-aarch64)
    package=onnxruntime VERSION=1.32.0 pyver=3.11 platform=manylinux_2_28_aarch64
    sha256=2303372a85299b6757b0e11e1cbf13e410ddf7e10c37f4b37e99d1c90e7daf7c ;;
  gpu-Linux-x86_64)
    # Built for CUDA 13 and cuDNN 9; the CUDA libraries themselves come from the system.
    package=onnxruntime-gpu VERSION=1.31.1 pyver=3.12 platform=manylinux_2_28_x86_64
    sha256=05d548956197b9d01f59b625de740e0d6be3593f874e241a12dc0362650ecdf7
    extra=(libonnxruntime_providers_cuda.so) ;;
  *)
    echo "setup-onnxruntime: no pinned $flavor onnxruntime wheel for $(uname -s) $(uname -m)." >&2
    echo "Install ONNX Runtime yourself and set ORT_DYLIB_PATH to its library." >&2
    exit 1 ;;
esac
default_dest="$root/vendor/onnxruntime"
[ "$flavor" = gpu ] && default_dest="$root/vendor/onnxruntime-gpu"
dest="${ORT_VENDOR_DIR:-$default_dest}"
lib="libonnxruntime.so.$VERSION"

if [ -f "$dest/$lib" ]; then
  echo "ONNX Runtime $VERSION is already in $dest"
  exit 0
fi

python=$(command -v python3 || command -v python || true)
if [ -z "$python" ]; then
  echo "setup-onnxruntime: python3 with pip is needed to fetch the onnxruntime wheel from PyPI" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "Downloading $package==$VERSION ($platform) from PyPI..."
# The library inside does not depend on the Python version; pinning one makes the wheel,
# and so its checksum, the same on every machine.
retry "downloading $package==$VERSION" \
  "$python" -m pip download --quiet --disable-pip-version-check \
  --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp --platform "$platform" \
  "$package==$VERSION" -d "$tmp"
wheel="$(ls "$tmp"/onnxruntime*.whl)"
echo "$sha256  $wheel" | sha256sum --check --quiet - || {
  echo "setup-onnxruntime: $wheel does not have the expected sha256; refusing to use it" >&2
  exit 1
}

mkdir -p "$dest"
"$python" - "$wheel" "$dest" "$lib" "${extra[@]}" <<'PY'
import os, sys, zipfile
wheel, dest, lib, *extra = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for name in [f"onnxruntime/capi/{lib}", "onnxruntime/capi/libonnxruntime_providers_shared.so"] + [f"onnxruntime/capi/{e}" for e in extra]:
        target = os.path.join(dest, os.path.basename(name))
        with z.open(name) as src, open(target + ".tmp", "wb") as out:
            out.write(src.read())
        os.replace(target + ".tmp", target)
PY
ln -sf "$lib" "$dest/libonnxruntime.so"
echo "ONNX Runtime $VERSION ($flavor) is in $dest"
