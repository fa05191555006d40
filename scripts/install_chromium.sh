#!/bin/sh
# Installs Debian's chromium for the dashboard's browser test (tests/dashboard_test.ts) and
# scripts/screenshot_dashboard.ts, which drive it with puppeteer-core from npm. With its
# recommended packages: they bring the fonts the page is drawn with. Never fails the caller:
# without it, the browser test is skipped with the reason. $CHROMIUM names another binary.
#
# Usage: sh scripts/install_chromium.sh
exec sh "$(dirname "$0")/apt_install.sh" chromium "${CHROMIUM:-/usr/bin/chromium}" \
  "the dashboard's browser test will be skipped" --recommends
