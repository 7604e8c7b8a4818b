#!/usr/bin/env bash
# Installs Debian's chromium, which e2e/report/page uses to render the run's
# report page headless (its browser test, and the report.png screenshot).
#
# Idempotent: when /usr/bin/chromium exists it changes nothing. Otherwise it
# runs apt-get update and installs chromium without recommended packages
# (fonts and drivers a headless render does not need), through sudo when not
# root. It prints one line saying what it did; apt-get's own output is shown
# only when it fails.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  echo "setup-chromium: already installed, nothing changed ($("$CHROMIUM" --version 2>/dev/null || echo "version unknown"))"
  exit 0
fi

SUDO=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "setup-chromium: ERROR: not root and no sudo" >&2; exit 1; }
  SUDO=(sudo)
fi

# sudo resets the environment, so DEBIAN_FRONTEND goes through env.
apt() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$SECONDS
if ! { apt update -qq && apt install -y -qq --no-install-recommends chromium; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup-chromium: ERROR: apt-get install chromium failed" >&2
  exit 1
fi
echo "setup-chromium: installed Debian's chromium in $((SECONDS - start))s ($("$CHROMIUM" --version 2>/dev/null || echo "version unknown"))"
