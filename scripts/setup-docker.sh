#!/usr/bin/env bash
# Makes a Docker engine that can run kind nodes available on this machine.
#
# Idempotent: on a machine where `docker info` answers and privileged
# containers are already possible, it changes nothing but, when Debian's
# package lists are missing, runs apt-get update. Otherwise it
#   1. installs Debian's docker.io (and debootstrap, jq, iproute2) if absent,
#   2. when the host's capability bounding set lacks CAP_SYS_RESOURCE (a
#      privileged container asks for every capability and runc then fails
#      with "unable to apply caps"), registers a runc wrapper that drops that
#      one capability as Docker's default runtime,
#   3. starts dockerd (there is no systemd here) and waits for it.
# Every change is printed on a line starting with "setup:".
set -euo pipefail

WRAPPER=/usr/local/sbin/meshconform-runc
DAEMON_JSON=/etc/docker/daemon.json
DOCKERD_LOG=/var/log/meshconform-dockerd.log

say() { echo "setup: $*"; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (installs packages and starts dockerd); run: sudo $0"

# CAP_SYS_RESOURCE is bit 24 of the bounding set.
has_sys_resource() {
  local bnd
  bnd=$(awk '/^CapBnd/ {print $2}' /proc/self/status)
  (( (16#$bnd >> 24) & 1 ))
}

docker_ok() { timeout 10 docker info >/dev/null 2>&1; }

runtime_ok() {
  has_sys_resource && return 0
  docker_ok && [ "$(docker info --format '{{.DefaultRuntime}}' 2>/dev/null)" = meshconform ]
}

# The local image source downloads Debian packages (the registry) with
# apt-get; a new machine's package lists may be empty.
lists_ok() { apt-cache show --no-all-versions docker-registry >/dev/null 2>&1; }
if command -v apt-get >/dev/null && ! lists_ok; then
  say "apt-get update (package lists lack docker-registry)"
  apt-get update -qq >/dev/null || die "apt-get update failed"
fi

if docker_ok && runtime_ok && command -v debootstrap >/dev/null && command -v jq >/dev/null; then
  echo "setup: Docker is ready, nothing changed ($(docker version --format 'server {{.Server.Version}}'))"
  exit 0
fi

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v jq >/dev/null || need+=(jq)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "no Docker daemon reachable and no apt-get to install ${need[*]}; install Docker yourself and re-run"
  say "installing ${need[*]} from Debian"
  apt-get update -qq >/dev/null || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
fi

changed_config=false
if ! has_sys_resource; then
  install -d "$(dirname "$WRAPPER")"
  cat > "$WRAPPER.tmp" <<'WRAP'
#!/bin/sh
# Installed by meshconform's scripts/setup-docker.sh. Drops CAP_SYS_RESOURCE,
# which this host's bounding set lacks, from every OCI spec, then execs runc.
# create/run read <bundle>/config.json; exec reads the --process file.
bundle=""; process=""; prev=""
for a in "$@"; do
  case "$prev" in
    --bundle|-b) bundle="$a" ;;
    --process|-p) process="$a" ;;
  esac
  case "$a" in
    --bundle=*) bundle="${a#--bundle=}" ;;
    --process=*) process="${a#--process=}" ;;
  esac
  prev="$a"
done
drop() { # $1 file, $2 jq path of the capabilities object
  [ -f "$1" ] || return 0
  jq "if $2 then $2 |= with_entries(.value |= (if type == \"array\" then map(select(. != \"CAP_SYS_RESOURCE\")) else . end)) else . end" "$1" > "$1.mc" && mv "$1.mc" "$1"
}
[ -n "$bundle" ] && drop "$bundle/config.json" '.process.capabilities'
[ -n "$process" ] && drop "$process" '.capabilities'
exec /usr/sbin/runc "$@"
WRAP
  if cmp -s "$WRAPPER.tmp" "$WRAPPER" && [ -x "$WRAPPER" ]; then
    rm -f "$WRAPPER.tmp"
  else
    say "host lacks CAP_SYS_RESOURCE: installing $WRAPPER as Docker's default runtime"
    chmod 0755 "$WRAPPER.tmp" && mv "$WRAPPER.tmp" "$WRAPPER"
  fi
  mkdir -p /etc/docker
  current='{}'
  [ -s "$DAEMON_JSON" ] && current=$(cat "$DAEMON_JSON")
  wanted=$(echo "$current" | jq --arg p "$WRAPPER" '.runtimes.meshconform.path = $p | ."default-runtime" = "meshconform"')
  if [ "$(echo "$current" | jq -S .)" != "$(echo "$wanted" | jq -S .)" ]; then
    say "writing $DAEMON_JSON (default-runtime meshconform)"
    echo "$wanted" > "$DAEMON_JSON"
    changed_config=true
  fi
fi

if docker_ok && $changed_config; then
  say "restarting dockerd to pick up $DAEMON_JSON"
  pkill -x dockerd || true
  for _ in $(seq 1 30); do pgrep -x dockerd >/dev/null || break; sleep 1; done
fi

if ! docker_ok; then
  if pgrep -x dockerd >/dev/null; then
    say "dockerd is running but does not answer; waiting for it"
  else
    say "starting dockerd (log: $DOCKERD_LOG)"
    # No systemd here: run it detached so it outlives this script.
    setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 < /dev/null &
  fi
  for _ in $(seq 1 60); do docker_ok && break; sleep 1; done
  docker_ok || { tail -20 "$DOCKERD_LOG" >&2 || true; die "dockerd did not answer within 60s (log above)"; }
fi

runtime_ok || die "dockerd runs but its default runtime is not meshconform; privileged containers (kind nodes) would fail. Check $DAEMON_JSON"
echo "setup: Docker is ready ($(docker version --format 'server {{.Server.Version}}'), default runtime $(docker info --format '{{.DefaultRuntime}}'))"
