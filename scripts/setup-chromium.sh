#!/usr/bin/env bash
# Installs Debian's chromium, which e2e/report/page uses to render the run's
# report page headless (its browser test, and the report.png screenshot).
#
# Idempotent: when /usr/bin/chromium exists and Debian's package lists are
# there it changes nothing. Otherwise it runs apt-get update and installs
# chromium without recommended packages
# (fonts and drivers a headless render does not need), through sudo when not
# root. It prints one line saying what it did; apt-get's own output is shown
# only when it fails.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

SUDO=()
if [ "$(id -u)" != 0 ]; then
  SUDO=(sudo)
fi
# sudo resets the environment, so DEBIAN_FRONTEND goes through env.
apt() {
  [ ${#SUDO[@]} -eq 0 ] || command -v sudo >/dev/null || { echo "setup-chromium: ERROR: not root and no sudo" >&2; exit 1; }
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@"
}

# make test's fresh-image check reads Debian's package lists (the registry
# image is made of docker-registry and libc6): a machine whose lists lack
# them gets them updated here.
if ! apt-cache show --no-all-versions docker-registry >/dev/null 2>&1; then
  apt update -qq >/dev/null || { echo "setup-chromium: ERROR: apt-get update failed" >&2; exit 1; }
  echo "setup-chromium: updated Debian's package lists (they lacked docker-registry)"
fi

if [ -x "$CHROMIUM" ]; then
  echo "setup-chromium: already installed, nothing changed ($("$CHROMIUM" --version 2>/dev/null || echo "version unknown"))"
  exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$SECONDS
if ! { apt update -qq && apt install -y -qq --no-install-recommends chromium; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup-chromium: ERROR: apt-get install chromium failed" >&2
  exit 1
fi
echo "setup-chromium: installed Debian's chromium in $((SECONDS - start))s ($("$CHROMIUM" --version 2>/dev/null || echo "version unknown"))"
