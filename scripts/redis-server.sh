#!/usr/bin/env bash
# Runs `redis-server` with the arguments given, installing Debian's `redis-server` first when it
# is missing (needs root, as CI has). The shared-state tests start one on a loopback port they
# pick, through this script.
#
#   scripts/redis-server.sh --port 6390 --bind 127.0.0.1 --save ''
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    # Quietly: the install's output is not the server's; shown only if the install fails.
    log=$(mktemp)
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server; } >"$log" 2>&1; then
        cat "$log" >&2
        exit 1
    fi
    rm -f "$log"
    # Debian's package starts a server of its own where a service manager runs: not ours.
    if command -v service >/dev/null 2>&1; then
        service redis-server stop >/dev/null 2>&1 || true
    fi
fi
exec redis-server "$@"
