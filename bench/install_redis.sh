#!/bin/sh
# Installs Debian's redis-server for the Redis peer of the benchmark suite.
#
# Usage: sh bench/install_redis.sh
#
# Idempotent: does nothing when redis-server is already on PATH. Runs apt-get as root, or
# through sudo when not root and sudo is available. Never fails the caller: when it cannot
# install, it says why and exits 0, and the benchmarks skip the Redis peer.
# The benchmarks start their own redis-server on a free loopback port; this script only
# installs the binary (Debian's package also enables a system service on port 6379, which
# the benchmarks neither need nor touch).
set -u

if command -v redis-server >/dev/null 2>&1; then
  echo "redis-server already installed: $(redis-server --version)"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "Cannot install redis-server: not root and sudo is not available; the Redis peer will be skipped"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Cannot install redis-server: apt-get not found (not Debian/Ubuntu); install it with your package manager"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update; then
  echo "Cannot install redis-server: apt-get update failed; the Redis peer will be skipped"
  exit 0
fi
if ! $SUDO apt-get install -y --no-install-recommends redis-server; then
  echo "Cannot install redis-server: apt-get install failed; the Redis peer will be skipped"
  exit 0
fi

if command -v redis-server >/dev/null 2>&1; then
  echo "Installed: $(redis-server --version)"
else
  echo "redis-server was installed but is not on PATH (looked for it after apt-get install)"
fi
exit 0
