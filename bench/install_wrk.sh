#!/bin/sh
# Installs Debian's wrk, the load generator of the HTTP benchmark (bench/http_bench.ts). Never
# fails the caller: without it, that benchmark is skipped with the reason.
#
# Usage: sh bench/install_wrk.sh
exec sh "$(dirname "$0")/../scripts/apt_install.sh" wrk wrk "the HTTP benchmark will be skipped"
