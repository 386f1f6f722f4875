#!/bin/sh
# Sets up everything LineWatch needs on a fresh Debian / Raspberry Pi OS machine:
# system packages (Mosquitto, venv support), the virtual environment and the project.
# Usage: tools/setup.sh [EXTRA]   (EXTRA: test, dev; default: none, the product only)
# Idempotent and quick when nothing changed.
set -eu
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
EXTRA=${1:-}
PYTHON=${PYTHON:-python3}

say() { printf 'setup: %s\n' "$*"; }
fail() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

apt_install() {
    if [ "$(id -u)" = 0 ]; then SUDO=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo"
    else fail "missing system packages: $*. Install them as root: apt-get install $*"
    fi
    command -v apt-get >/dev/null 2>&1 || fail "no apt-get here; install by hand: $*"
    say "installing system packages: $*"
    # update once per setup run, only when something is missing
    $SUDO apt-get update -qq >/dev/null || say "apt-get update failed; trying the install anyway"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null \
        || fail "apt-get install $* failed"
}

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

command -v "$PYTHON" >/dev/null 2>&1 || fail "$PYTHON not found; install Python 3.11 or newer"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || fail "Python 3.11 or newer is needed, found $("$PYTHON" --version 2>&1)"

missing=""
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || missing="$missing python3-venv"
have mosquitto || missing="$missing mosquitto"
have mosquitto_sub || missing="$missing mosquitto-clients"
if [ "$EXTRA" = test ] || [ "$EXTRA" = dev ]; then
    have socat || missing="$missing socat"   # drives mpremote against the virtual board
    # the storage suite also runs against a private PostgreSQL cluster (initdb/pg_ctl from here)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
    # the desk's browser tests: Debian's Chromium, driven by Playwright at /usr/bin/chromium
    # (Playwright never downloads a browser here; chromium-driver serves Selenium users)
    [ -x /usr/bin/chromium ] || missing="$missing chromium"
    have chromedriver || missing="$missing chromium-driver"
fi
[ -z "$missing" ] || apt_install $missing

if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi

# Reinstall only when the project's requirements changed.
spec=".${EXTRA:+[$EXTRA]}"
stamp="$VENV/.linewatch-$(printf '%s' "$EXTRA" | tr -c 'a-z' _)"
digest=$(cat pyproject.toml | cksum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    say "installing linewatch$spec into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    log="$VENV/setup.log"
    "$VENV/bin/python" -m pip install -q -e "$spec" >"$log" 2>&1 \
        || { tail -n 30 "$log" >&2; fail "pip install -e '$spec' failed (full log: $log)"; }
    if [ "$EXTRA" = test ] || [ "$EXTRA" = dev ]; then
        # Board stubs share module names, so each board gets its own folder (see pyproject).
        for board in esp32 rp2; do
            "$VENV/bin/python" -m pip install -q --upgrade --target "$VENV/stubs/$board" \
                "micropython-$board-stubs>=1.24,<2" >>"$log" 2>&1 || fail "installing $board stubs failed"
        done
    fi
    echo "$digest" > "$stamp"
fi
say "ready ($VENV, extra: ${EXTRA:-none})"
