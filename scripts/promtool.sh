#!/usr/bin/env bash
# Runs `promtool` (Prometheus' checker) with the arguments given, installing it first when it is
# missing: Debian's `prometheus` package, which brings it (needs root, as CI has).
#
#   scripts/promtool.sh check metrics < metrics.txt
set -euo pipefail
if ! command -v promtool >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    # Quietly: the install's output is not the tool's (a test reads what the tool prints);
    # shown only if the install fails.
    log=$(mktemp)
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus; } >"$log" 2>&1; then
        cat "$log" >&2
        exit 1
    fi
    rm -f "$log"
fi
exec promtool "$@"
