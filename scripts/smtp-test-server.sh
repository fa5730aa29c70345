#!/usr/bin/env bash
# A real SMTP server for the email alert test (tests/tests/alerts.rs): aiosmtpd from PyPI,
# listening on 127.0.0.1:PORT and storing every message it receives in the maildir MAILDIR
# (new mails land in MAILDIR/new/). Needs python3 with pip; installs aiosmtpd first if needed.
#
#   scripts/smtp-test-server.sh PORT MAILDIR    install if needed, then serve until killed
#   scripts/smtp-test-server.sh --install       install if needed, then exit
#
# aiosmtpd goes into $AIOSMTPD_DIR if set, else $CARGO_TARGET_DIR/aiosmtpd, else target/aiosmtpd
# in this repository; nothing is installed anywhere else. The server replaces this script's
# process (exec), so killing the script's pid stops the server.
set -euo pipefail

AIOSMTPD_VERSION="1.4.6"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
site="${AIOSMTPD_DIR:-${CARGO_TARGET_DIR:-$repo/target}/aiosmtpd}"
marker="$site/.aiosmtpd-$AIOSMTPD_VERSION"

install() {
    [ -f "$marker" ] && return 0
    echo "smtp-test-server: installing aiosmtpd $AIOSMTPD_VERSION into $site" >&2
    mkdir -p "$(dirname "$site")"
    # Install beside the final folder, then move it in place, so that two runs at once never
    # see a half-installed folder.
    staging="$(mktemp -d "$site.staging.XXXXXX")"
    trap 'rm -rf "$staging"' EXIT
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
        --no-input --target "$staging" "aiosmtpd==$AIOSMTPD_VERSION" >&2
    touch "$staging/.aiosmtpd-$AIOSMTPD_VERSION"
    if [ ! -f "$marker" ]; then
        rm -rf "$site"
        # Fails harmlessly if another run moved its copy in meanwhile.
        mv -T "$staging" "$site" 2>/dev/null || true
    fi
    rm -rf "$staging"
    trap - EXIT
    [ -f "$marker" ] || { echo "smtp-test-server: aiosmtpd did not install" >&2; exit 1; }
}

case "${1:-}" in
    --install)
        install
        ;;
    "" | -h | --help)
        sed -n '2,12p' "$0" >&2
        exit 2
        ;;
    *)
        port="$1"
        maildir="${2:?usage: smtp-test-server.sh PORT MAILDIR}"
        install
        mkdir -p "$maildir/tmp" "$maildir/new" "$maildir/cur"
        export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
        exec python3 -m aiosmtpd --nosetuid --listen "127.0.0.1:$port" \
            --class aiosmtpd.handlers.Mailbox "$maildir"
        ;;
esac
