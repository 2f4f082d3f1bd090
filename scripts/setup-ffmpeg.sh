#!/usr/bin/env bash
# ffmpeg and ffprobe, which decode videos for tracking (core/src/video/). Installed from
# Debian/Ubuntu packages when missing; nothing is downloaded from elsewhere.
set -euo pipefail
if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
    exit 0
fi
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
apt_install "to decode videos" ffmpeg
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null
