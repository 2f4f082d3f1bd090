#!/usr/bin/env bash
# Chromium and its WebDriver, for the web page's test (host/tests/integration/ui_browser.rs). Installed
# from Debian/Ubuntu packages when missing; nothing is downloaded from elsewhere.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
apt_install "for the web page's test" chromium chromium-driver
command -v chromium >/dev/null && command -v chromedriver >/dev/null
