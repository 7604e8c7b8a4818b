#!/usr/bin/env bash
# make byo-foreign: the brought-clusters flow on a pair meshconform did not
# make and a mesh it did not install (scripts/foreign pair-up: other names,
# nodes without pod CIDRs or regions, restricted Pod Security by default,
# istiod behind a host-name load balancer, a private registry with TLS and
# basic auth, Istio by hand in namespace acme-mesh with IDs east-1/west-1,
# trust domain acme.example, a revision with a tag, two istiod replicas, a CronJob, and
# a ServiceAccount bound to the roles `meshconform rbac` prints, whose
# kubeconfig every step below uses), then, while its nodes' annotations
# churn,
#   images save, images push --from (the sample apps into that registry);
#   test --clusters --mesh existing --image-registry (the specs);
#   doctor --clusters; bundle --product; verify: certified;
# then the same flow with the remote's API server unreachable from istiod:
# refused, naming the cluster and why, its bundle not certified.
# Everything is removed at the end, whatever happened. Artifacts go to
# $ARTIFACTS/byo-foreign/. Every step is timed.
set -euo pipefail

ARTIFACTS=${ARTIFACTS:-$PWD/artifacts}
BIN=$(mktemp -d /tmp/meshconform-foreign.XXXXXX)
churn_pid=
trap '[ -z "$churn_pid" ] || kill "$churn_pid" 2>/dev/null || true; "$BIN/foreign" pair-down >/dev/null 2>&1 || true; rm -rf "$BIN"' EXIT
go build -o "$BIN/meshconform" ./cmd/meshconform
go build -o "$BIN/foreign" ./scripts/foreign
mc() { "$BIN/meshconform" "$@"; }

step() {
  local name=$1; shift
  local t0=$SECONDS
  echo "== byo-foreign: $name"
  "$@"
  echo "== byo-foreign: $name: $((SECONDS - t0)) s"
}

out=$ARTIFACTS/byo-foreign
rm -rf "$out" && mkdir -p "$out"
pair=$BIN/pair
mkdir -p "$pair"
step "pair-up (clusters, registry, mesh by hand)" "$BIN/foreign" pair-up "$pair"
cp "$pair/clusters.yaml" "$ARTIFACTS/byo-foreign-clusters.yaml"
registry=$(cat "$pair/registry/registry")
reg=(--image-registry "$registry" --image-pull-secret "$pair/registry/pull-secret.json" --image-registry-ca "$pair/registry/ca.crt")
step "images save" mc images save "$BIN/apps.tar"
step "images push --from" mc images push "$registry" --from "$BIN/apps.tar" "${reg[@]:2}"
# The platform churns while the run goes on (its CronJob runs every minute;
# its nodes are annotated every 10 s, for 15 minutes at most): the audit
# must not read that as the run's.
"$BIN/foreign" churn "$pair" 15m &
churn_pid=$!
# The clusters file is the topology: MESHCONFORM_TOPOLOGY with it is refused.
noenv=(env -u MESHCONFORM_TOPOLOGY -u MESHCONFORM_CONTEXTS -u MESHCONFORM_KUBECONFIG)
step "test --clusters --mesh existing --image-registry" "${noenv[@]}" "$BIN/meshconform" test --kubeconfig "$pair/sa.kubeconfig" --clusters "$pair/clusters.yaml" --mesh existing "${reg[@]}" --artifacts "$out" --junit-file "$out/junit.xml"
# The platform's churn inside the audit's scope (a config map and a
# ClusterRole annotated, config maps added to the istio namespace) was seen and
# put to its field managers: a run that counted it as its own would have
# failed above; one that saw none would have tested no attribution.
for c in east west; do
  n=$(jq -r --arg k "audit_by_others_$c" '.figures[$k] // 0' "$out/phases.json")
  [ "$n" -gt 0 ] || { echo "byo-foreign: FAIL: the audit of $c saw none of the platform's changes in its scope (phases.json: audit_by_others_$c = $n)"; exit 1; }
  echo "byo-foreign: audit of $c: $n changes by the platform's own managers, not the run's"
done
# The mesh lives in acme-mesh, not istio-system: the run judged it there.
for c in east west; do
  ns=$(jq -r --arg k "istio_namespace_$c" '.figures[$k] // ""' "$out/phases.json")
  [ "$ns" = acme-mesh ] || { echo "byo-foreign: FAIL: the run read $c's Istio in '$ns', not acme-mesh"; exit 1; }
done
step "doctor --clusters" "${noenv[@]}" "$BIN/meshconform" doctor --kubeconfig "$pair/sa.kubeconfig" --clusters "$pair/clusters.yaml" --save "$out/doctor-cli.json"
kill -INT "$churn_pid" 2>/dev/null || true
if ! wait "$churn_pid"; then echo "byo-foreign: FAIL: the churn stopped early (its error is above)"; exit 1; fi
churn_pid=
step "bundle --product" mc bundle --artifacts "$out" --out "$out" --product scripts/PRODUCT.foreign.yaml
step "verify" mc verify "$(ls "$out"/meshconform-results-*.tar.gz)"

# The same flow with the remote's API server unreachable from istiod (only
# that path dropped, istiod restarted without it): refused, the reason
# named, and its bundle not certified. The run judges the doctor's checks
# (the spec that reads clusterz itself would wait its 2 minutes for a sync
# that cannot come).
cut=$ARTIFACTS/byo-foreign-cut
rm -rf "$cut" && mkdir -p "$cut"
step "cut the remote's API server off from istiod" "$BIN/foreign" cut-remote-api "$pair"
if "${noenv[@]}" "$BIN/meshconform" test --kubeconfig "$pair/sa.kubeconfig" --clusters "$pair/clusters.yaml" --mesh existing "${reg[@]}" --focus 'passes every doctor check' --artifacts "$cut" >"$BIN/cut.log" 2>&1; then
  echo "byo-foreign: FAIL: a run with the remote's API server unreachable from istiod passed"; exit 1
fi
mc failures "$cut" >"$BIN/cut-failures.log" 2>&1 || true
grep -q 'west-1 as "timeout"' "$BIN/cut-failures.log" || { echo "byo-foreign: FAIL: refused for another reason:"; cat "$BIN/cut.log" "$BIN/cut-failures.log"; exit 1; }
echo "byo-foreign: refused: $(grep -m1 -o 'istiod [^ ]* on east lists cluster west-1 as .*pods' "$BIN/cut-failures.log")"
if "${noenv[@]}" "$BIN/meshconform" doctor --kubeconfig "$pair/sa.kubeconfig" --clusters "$pair/clusters.yaml" >"$BIN/cut-doctor.log" 2>&1; then
  echo "byo-foreign: FAIL: the doctor passed a mesh whose istiod cannot reach the remote"; exit 1
fi
grep -m1 'istiod-clusterz.*FAIL' "$BIN/cut-doctor.log" || { echo "byo-foreign: FAIL: the doctor failed for another reason:"; cat "$BIN/cut-doctor.log"; exit 1; }
mc bundle --artifacts "$cut" --out "$cut" --product scripts/PRODUCT.foreign.yaml >/dev/null
if mc verify "$(ls "$cut"/meshconform-results-*.tar.gz)" >"$BIN/cut-verify.log" 2>&1; then
  echo "byo-foreign: FAIL: the refused run's bundle verified as certified"; exit 1
fi
echo "byo-foreign: its bundle: $(grep -m1 'core:' "$BIN/cut-verify.log")"
step "pair-down" "$BIN/foreign" pair-down
