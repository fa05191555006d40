#!/bin/sh
# Installs Debian's chromium for the dashboard's browser test (tests/dashboard_test.ts) and
# scripts/screenshot_dashboard.ts, which drive it with puppeteer-core from npm.
#
# Usage: bash scripts/install_chromium.sh
#
# Idempotent: does nothing when /usr/bin/chromium (or $CHROMIUM) is already there. Runs apt-get
# as root, or through sudo when not root and sudo is available. Never fails the caller: when it
# cannot install, it says why and exits 0, and the browser test is skipped with that reason.
set -u

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  echo "chromium already installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "Cannot install chromium: not root and sudo is not available; the dashboard's browser test will be skipped"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Cannot install chromium: apt-get not found (not Debian/Ubuntu); install it with your package manager, or set CHROMIUM to a Chrome or Chromium binary"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update; then
  echo "Cannot install chromium: apt-get update failed; the dashboard's browser test will be skipped"
  exit 0
fi
# With its recommended packages: they bring the fonts the page is drawn with.
if ! $SUDO apt-get install -y chromium; then
  echo "Cannot install chromium: apt-get install failed; the dashboard's browser test will be skipped"
  exit 0
fi

if [ -x "$CHROMIUM" ]; then
  echo "Installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
else
  echo "chromium was installed but $CHROMIUM is not there; set CHROMIUM to its path"
fi
exit 0
