#!/usr/bin/env bash
# The chaos check of the harness itself (make interrupt-test; CI runs it):
# `make e2e` interrupted as a CI runner or a person interrupts it, by
# SIGINT and by SIGTERM sent to its whole process group, at four points
# (image preparation, cluster creation, the Istio install, the specs), and
# two runs started at once (the second must refuse at once, naming the
# first, and leave the first running). After each case, nothing of the run
# may be left: no container, network or cluster of meshconform's (what
# `meshconform leftovers` lists), no platform lock, no process of the run's
# group, no mount under the image cache, no new entry in the temporary
# directory, the user's ~/.kube untouched. The table of cases goes to
# $ARTIFACTS/interrupt-test.md; any leftover fails the check, after the
# case's leftovers are cleaned so the next case starts from nothing.
#
# The signal lands where the run is when its point's first line appears:
# warm, image preparation takes seconds, so its case may be stopped during
# the clusters' creation instead; the table says where each run really was
# (its last phase begun).
set -euo pipefail
cd "$(dirname "$0")/.."

ARTIFACTS=${ARTIFACTS:-$PWD/artifacts/$(date -u +%Y%m%dT%H%M%SZ)}/interrupt-test
mkdir -p "$ARTIFACTS"
BIN=$(mktemp -d "${TMPDIR:-/tmp}/meshconform-interrupt-bin.XXXXXX")
trap 'rm -rf "$BIN"' EXIT
go build -o "$BIN/meshconform" ./cmd/meshconform
STATE=${XDG_STATE_HOME:-$HOME/.local/state}/meshconform
CACHE=${MESHCONFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/meshconform}
TMP=${TMPDIR:-/tmp}
# Bounds: a point that never comes, a run that does not stop.
REACH_LIMIT=${REACH_LIMIT:-900}
STOP_LIMIT=${STOP_LIMIT:-600}

table=$ARTIFACTS/interrupt-test.md
printf '| signal | point | phase begun last when signalled | stopped after (s) | left |\n|---|---|---|---:|---|\n' > "$table"
failed=0

kube_sum() { { find "$HOME/.kube" -type f -exec sha256sum {} + 2>/dev/null || true; } | sort | sha256sum | cut -c1-16; }
tmp_entries() { ls -1A "$TMP" | grep -v "^$(basename "$BIN")\$" | sort; }

# start NAME: `make e2e` in a process group of its own, as a CI job's, with
# SIGINT and SIGQUIT back to their defaults (a non-interactive shell's
# background job ignores them: make would not see a Ctrl-C). It starts in a
# subshell, so this script is not its parent.
start() {
  local name=$1
  setsid env --default-signal=INT,QUIT make e2e ARTIFACTS="$ARTIFACTS/$name" > "$ARTIFACTS/$name.log" 2>&1 &
  echo $!
}

# alive PGID: whether a process of the group still runs (a zombie, which
# an init that does not reap leaves, does not count).
alive() { pgrep -g "$1" -r D,R,S,T,t,W,I > /dev/null; }

# reach LOG PATTERN: wait until the run's log shows PATTERN.
reach() {
  local log=$1 pattern=$2 t0=$SECONDS
  until grep -q -- "$pattern" "$log" 2>/dev/null; do
    if (( SECONDS - t0 > REACH_LIMIT )); then return 1; fi
    sleep 0.2
  done
}

# stop PID SIGNAL: signal the whole group, wait (bounded) until every
# process of it is gone; print the seconds it took.
stop() {
  local pid=$1 sig=$2 t0=$SECONDS
  kill -s "$sig" -- "-$pid" 2>/dev/null || true
  while alive "$pid"; do
    if (( SECONDS - t0 > STOP_LIMIT )); then
      kill -KILL -- "-$pid" 2>/dev/null || true
      echo "killed after $STOP_LIMIT"
      return
    fi
    sleep 0.5
  done
  echo $(( SECONDS - t0 ))
}

# leftovers BEFORE_TMP BEFORE_KUBE: what the case left, one per line.
leftovers() {
  local before_tmp=$1 before_kube=$2
  MESHCONFORM_ARTIFACTS="$BIN/leftovers" "$BIN/meshconform" leftovers 2>&1 |
    grep -v -e '^$' -e '^nothing left$' -e '^meshconform: [0-9]* leftovers$' || true
  [ -e "$STATE/platform.lock" ] && echo "platform lock $STATE/platform.lock"
  grep -F " $CACHE/" /proc/self/mountinfo | awk '{print "mount " $5}'
  comm -13 <(echo "$before_tmp") <(tmp_entries) | sed "s|^|temp $TMP/|"
  [ "$(kube_sum)" = "$before_kube" ] || echo "~/.kube changed"
  true
}

# where LOG: the phase the run began last (read as the signal goes).
where() { grep -o '• [^.]*\.\.\.' "$1" | tail -1 | sed 's/^• //; s/ \.\.\.$//' || true; }

# judge CASE SIGNAL POINT WHERE SECONDS BEFORE_TMP BEFORE_KUBE
judge() {
  local name=$1 sig=$2 point=$3 where=$4 secs=$5 left
  left=$(leftovers "$6" "$7" | paste -sd ';' -)
  case $secs in killed*) left="${left:+$left;}still running after ${STOP_LIMIT}s, killed";; esac
  printf '| %s | %s | %s | %s | %s |\n' "$sig" "$point" "${where:-before any phase}" "$secs" "${left:-nothing}" >> "$table"
  if [ -n "$left" ]; then
    echo "FAIL $name: left $left"
    failed=1
    "$BIN/meshconform" clean > /dev/null 2>&1 || true
  else
    echo "ok   $name: stopped in ${secs}s, nothing left"
  fi
}

# Each point and the first line of its log that says the run is there.
points=(
  "image preparation|• image "
  "cluster creation|• kind create "
  "Istio install|: configure the primary"
  "specs|• app image meshapp"
)

# INTERRUPT_CASES=all (default): every point by both signals, then two
# runs at once; =ci: each point once, the signals alternating (CI's
# budget), the specs' by two runs at once (its first run is stopped by
# SIGTERM in its specs); or case names (INT-cluster-creation two-at-once …)
# to run those only.
want=${INTERRUPT_CASES:-all}
case_name() { echo "$1-$(echo "$2" | tr ' A-Z' '-a-z')"; }
cases=()
for sig in INT TERM; do
  for i in "${!points[@]}"; do
    alternate=INT
    (( i % 2 )) && alternate=TERM
    name=$(case_name "$sig" "${points[$i]%%|*}")
    case $want in
    all) ;;
    ci) [ "$sig" = "$alternate" ] && [ "$name" != TERM-specs ] || continue ;;
    *) [[ " $want " == *" $name "* ]] || continue ;;
    esac
    cases+=("$sig|${points[$i]}")
  done
done

for c in "${cases[@]}"; do
  sig=${c%%|*} p=${c#*|}
  {
    point=${p%%|*} pattern=${p#*|}
    name=$(case_name "$sig" "$point")
    before_tmp=$(tmp_entries) before_kube=$(kube_sum)
    pid=$(start "$name")
    if ! reach "$ARTIFACTS/$name.log" "$pattern"; then
      echo "FAIL $name: the run never reached $point"
      failed=1
    fi
    at=$(where "$ARTIFACTS/$name.log")
    secs=$(stop "$pid" "$sig")
    judge "$name" "$sig" "$point" "$at" "$secs" "$before_tmp" "$before_kube"
  }
done

# Two runs at once: the second refuses at once, naming the first, and the
# first runs on (its clusters untouched) until it is stopped in its specs.
if [ "$want" = all ] || [ "$want" = ci ] || [[ " $want " == *" two-at-once "* ]]; then
before_tmp=$(tmp_entries) before_kube=$(kube_sum)
first=$(start two-first)
reach "$ARTIFACTS/two-first.log" "• kind create " || { echo "FAIL two runs: the first never created its clusters"; failed=1; }
t0=$SECONDS
second=$(start two-second)
while alive "$second" && (( SECONDS - t0 < 300 )); do sleep 0.5; done
wait_second=$(( SECONDS - t0 ))
refused=no
grep -q "owns this machine's clusters" "$ARTIFACTS/two-second.log" && refused=yes
if [ "$refused" != yes ]; then
  echo "FAIL two runs: the second did not refuse naming the first (log: $ARTIFACTS/two-second.log)"
  failed=1
fi
if reach "$ARTIFACTS/two-first.log" "• app image meshapp"; then
  at=$(where "$ARTIFACTS/two-first.log")
  secs=$(stop "$first" TERM)
  judge two-at-once TERM "specs of the first (the second refused in ${wait_second}s: $refused)" "$at" "$secs" "$before_tmp" "$before_kube"
else
  echo "FAIL two runs: the first did not reach its specs beside the refused second"
  stop "$first" TERM > /dev/null
  failed=1
fi
fi

echo
cat "$table"
exit $failed
