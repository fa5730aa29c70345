#!/usr/bin/env bash
# Runs `chromedriver` (WebDriver for Chromium) with the arguments given, installing Debian's
# `chromium` and `chromium-driver` first when either is missing (needs root, as CI has). The
# dashboard's browser test drives a headless Chromium through it.
#
#   scripts/chromedriver.sh --port=9515
set -euo pipefail
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    # Quietly: the install's output is not the tool's (a test reads what the tool prints);
    # shown only if the install fails.
    log=$(mktemp)
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core; } >"$log" 2>&1; then
        cat "$log" >&2
        exit 1
    fi
    rm -f "$log"
fi
exec chromedriver "$@"
