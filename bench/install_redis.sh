#!/bin/sh
# Installs Debian's redis-server for the Redis peer of the benchmark suite and the RedisStore
# tests. Never fails the caller: without it, those are skipped with the reason.
# The benchmarks and tests start their own redis-server on a free loopback port; this script
# only installs the binary (Debian's package also enables a system service on port 6379, which
# they neither need nor touch).
#
# Usage: sh bench/install_redis.sh
exec sh "$(dirname "$0")/../scripts/apt_install.sh" redis-server redis-server \
  "the Redis peer and the Redis tests will be skipped"
