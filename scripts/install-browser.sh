#!/bin/sh
# Install what the console browser tests need (tests/console/): Debian's Chromium and a CJK font so
# Chinese renders as text, not boxes. Idempotent; installs only what is missing. Runs as root (CI) or
# through sudo. Never runs `playwright install` (the tests drive /usr/bin/chromium).
set -eu

missing=""
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing="$missing chromium"
dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || missing="$missing fonts-wqy-microhei"

if [ -z "$missing" ]; then
    echo "install-browser: chromium and fonts-wqy-microhei already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "install-browser: installing$missing"
$SUDO apt-get update
# shellcheck disable=SC2086  # word splitting of the package list is intended
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
echo "install-browser: done ($(/usr/bin/chromium --version 2>/dev/null || echo 'chromium version unknown'))"
