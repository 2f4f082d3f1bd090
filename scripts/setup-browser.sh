#!/usr/bin/env bash
# Chromium and its WebDriver, for the web page's test (host/tests/ui_browser.rs). Installed
# from Debian/Ubuntu packages when missing; nothing is downloaded from elsewhere.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "the web page's test needs chromium and chromedriver: install them with your package manager" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "installing chromium and chromium-driver (for the web page's test)..." >&2
export DEBIAN_FRONTEND=noninteractive
source "$(dirname "${BASH_SOURCE[0]}")/retry.sh"
retry "apt-get update" $sudo apt-get update -q >/dev/null
retry "installing chromium" $sudo apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null
command -v chromium >/dev/null && command -v chromedriver >/dev/null
