#!/bin/sh
# Installs one Debian package a test or benchmark needs, for the install_*.sh scripts.
#
# Usage: sh scripts/apt_install.sh PACKAGE BINARY "WHAT IS SKIPPED WITHOUT IT" [--recommends]
#
# Idempotent: does nothing when BINARY (a command on PATH, or an absolute path) is already
# there. Runs apt-get as root, or through sudo when not root and sudo is available. Never fails
# the caller: when it cannot install, it says why and what will be skipped, and exits 0.
# --recommends installs the package's recommended packages too (chromium's fonts).
set -u

PACKAGE="$1"
BINARY="$2"
SKIPPED="$3"
RECOMMENDS="--no-install-recommends"
[ "${4:-}" = "--recommends" ] && RECOMMENDS=""

found() {
  case "$BINARY" in
    /*) [ -x "$BINARY" ] ;;
    *) command -v "$BINARY" >/dev/null 2>&1 ;;
  esac
}

if found; then
  echo "$PACKAGE already installed ($BINARY)"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "Cannot install $PACKAGE: not root and sudo is not available; $SKIPPED"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Cannot install $PACKAGE: apt-get not found (not Debian/Ubuntu); install it with your package manager; $SKIPPED"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update; then
  echo "Cannot install $PACKAGE: apt-get update failed; $SKIPPED"
  exit 0
fi
if ! $SUDO apt-get install -y $RECOMMENDS "$PACKAGE"; then
  echo "Cannot install $PACKAGE: apt-get install failed; $SKIPPED"
  exit 0
fi

if found; then
  echo "Installed $PACKAGE ($BINARY)"
else
  echo "$PACKAGE was installed but $BINARY is not there; $SKIPPED"
fi
exit 0
