#!/usr/bin/env bash
# Bring your own clusters, end to end, as a platform vendor or an engineer
# would run it (make byo; CI runs it):
#   1. meshconform up: clusters and Istio, kept;
#   2. meshconform test --kept --mesh existing: the specs against that mesh,
#      leaving the clusters exactly as found (snapshot before/after);
#   3. meshconform doctor: read-only checks, all must pass;
#   4. meshconform bundle, then verify: the bundle verifies, and fails to
#      once one byte of it is changed;
#   5. with BYO_MODES containing "install": up --istio=false, then
#      test --mesh install on the bare clusters (installs, tests, removes);
#   6. with BYO_MODES containing "renamed": steps 1-4 as a platform unlike
#      kind presents itself: the nodes' region and zone labels removed, the
#      clusters named otherwise in a clusters file (--clusters), their
#      Istio cluster IDs left to be read from the mesh, and the sample apps
#      pulled from a private registry of the "user's" (TLS with a CA of its
#      own, basic auth; scripts/foreign) that `meshconform images save` and
#      `images push --from` filled, with --image-registry and a pull
#      secret; the same run without the pull secret is refused before
#      anything is created;
#   7. with BYO_MODES containing "upgrade": up --istio=false, the apps
#      and both versions' Istio images pushed to a private registry (as in
#      6) and meshconform's own registry removed, then test --kept --mesh
#      install --suite upgrade --image-registry: Istio's older version
#      installed by the suite, upgraded under judged traffic (the methods of
#      MESHCONFORM_UPGRADE_METHODS), everything removed, the clusters
#      audited as found; the frontends by load balancer (the suite restarts
#      them, which a port-forward would not survive);
#   8. meshconform down, whatever happened.
# Artifacts go to $ARTIFACTS/byo-<mode>/. Every step is timed.
set -euo pipefail

ARTIFACTS=${ARTIFACTS:-$PWD/artifacts}
MODES=${BYO_MODES:-existing}
BIN=$(mktemp -d /tmp/meshconform-bin.XXXXXX)
trap '"$BIN/foreign" registry-down >/dev/null 2>&1 || true; "$BIN/meshconform" down >/dev/null 2>&1 || true; rm -rf "$BIN"' EXIT
go build -o "$BIN/meshconform" ./cmd/meshconform
go build -o "$BIN/foreign" ./scripts/foreign
mc() { "$BIN/meshconform" "$@"; }

# The kubeconfig `meshconform up` kept (its env file names it).
kept_kubeconfig() {
  sed -n 's/^MESHCONFORM_KUBECONFIG=//p' "${XDG_STATE_HOME:-$HOME/.local/state}/meshconform/up/env"
}

# kc_ is kubectl on the kept clusters, its discovery cache in the run's
# temporary directory: never the user's ~/.kube.
kc_() { KUBECONFIG=$(kept_kubeconfig) kubectl --cache-dir "$BIN/kube-cache" "$@"; }

# renamed_clusters FILE: strips the kept clusters' node localities (as on
# platforms whose nodes carry none) and writes a clusters file naming each
# cluster "site-<n>", with its kind context and role and no Istio cluster
# ID (the run reads it from the mesh).
renamed_clusters() {
  local file=$1 ctx n=0 first="" primary
  echo "clusters:" > "$file"
  for ctx in $(kc_ config get-contexts -o name | sort); do
    # A user knows which clusters run istiod; here the kept mesh says.
    primary=false
    if [ -n "$(kc_ --context "$ctx" -n istio-system get deployments -l app=istiod -o name)" ]; then
      primary=true
    fi
    n=$((n + 1))
    kc_ --context "$ctx" label nodes --all topology.kubernetes.io/region- topology.kubernetes.io/zone- >/dev/null
    if [ "$primary" = true ]; then
      echo "- {name: site-$n, context: $ctx, primary: true}" >> "$file"
      first=${first:-site-$n}
    else
      echo "- {name: site-$n, context: $ctx, controlPlane: PRIMARY}" >> "$file"
    fi
  done
  sed -i "s/PRIMARY/$first/" "$file"
  echo "byo: clusters file $file:"; cat "$file"
}

# user_registry [SAVE ARGS] starts the "user's" registry on the kept
# clusters' network, trusted by their nodes, and fills it the air-gapped
# way: images save here (with SAVE ARGS), images push --from the tarball.
user_registry() {
  local nodes
  mkdir -p "$BIN/registry"
  nodes=$(docker ps --filter label=io.x-k8s.kind.cluster --filter network=meshconform --format '{{.Names}}')
  step "a private registry (TLS, basic auth), trusted by the nodes" "$BIN/foreign" registry-up "$BIN/registry" meshconform $nodes
  step "images save $*" mc images save "$BIN/apps.tar" "$@"
  step "images push --from" mc images push "$(cat "$BIN/registry/registry")" --from "$BIN/apps.tar" \
    --image-pull-secret "$BIN/registry/pull-secret.json" --image-registry-ca "$BIN/registry/ca.crt"
}

step() {
  local name=$1; shift
  local t0=$SECONDS
  echo "== byo: $name"
  "$@"
  echo "== byo: $name: $((SECONDS - t0)) s"
}

for mode in $MODES; do
  out=$ARTIFACTS/byo-$mode
  rm -rf "$out" && mkdir -p "$out"
  case $mode in
  existing|renamed)
    step "up (clusters and Istio, kept)" mc up
    if [ "$mode" = renamed ]; then
      clusters="$ARTIFACTS/byo-$mode-clusters.yaml"; renamed_clusters "$clusters"
      user_registry
      reg=(--image-registry "$(cat "$BIN/registry/registry")" --image-registry-ca "$BIN/registry/ca.crt")
      # The clusters file is the topology: MESHCONFORM_TOPOLOGY with it
      # is refused.
      if env -u MESHCONFORM_TOPOLOGY "$BIN/meshconform" test --kubeconfig "$(kept_kubeconfig)" --clusters "$clusters" --mesh existing "${reg[@]}" --artifacts "$BIN/refused" >"$BIN/refused.log" 2>&1; then
        echo "byo: FAIL: a run without the registry's credentials was not refused"; exit 1
      fi
      echo "byo: without the pull secret, refused: $(grep -m1 'no credentials' "$BIN/refused.log" || tail -1 "$BIN/refused.log")"
      grep -q 'no credentials' "$BIN/refused.log" || { echo "byo: FAIL: refused for another reason"; cat "$BIN/refused.log"; exit 1; }
      step "test --clusters (other names) --mesh existing --image-registry" env -u MESHCONFORM_TOPOLOGY "$BIN/meshconform" test --kubeconfig "$(kept_kubeconfig)" --clusters "$clusters" --mesh existing "${reg[@]}" --image-pull-secret "$BIN/registry/pull-secret.json" --artifacts "$out" --junit-file "$out/junit.xml"
      step "doctor --clusters" env -u MESHCONFORM_TOPOLOGY "$BIN/meshconform" doctor --kubeconfig "$(kept_kubeconfig)" --clusters "$clusters" --save "$out/doctor-cli.json"
    else
      step "test --kept --mesh existing" mc test --kept --mesh existing --artifacts "$out" --junit-file "$out/junit.xml"
      step "doctor" mc doctor --save "$out/doctor-cli.json"
    fi
    product=()
    [ "$mode" = renamed ] && product=(--product scripts/PRODUCT.kind.yaml)
    step "bundle" mc bundle --artifacts "$out" --out "$out" "${product[@]}"
    bundle=$(ls "$out"/meshconform-results-*.tar.gz)
    step "verify" mc verify "$bundle"
    # One byte changed in one file: verify must refuse the bundle.
    tmp=$(mktemp -d /tmp/meshconform-tamper.XXXXXX)
    tar xzf "$bundle" -C "$tmp"
    top=$(ls "$tmp")
    printf 'X' | dd of="$tmp/$top/environment.json" bs=1 seek=10 conv=notrunc status=none
    tar czf "$tmp/tampered.tar.gz" -C "$tmp" "$top"
    if mc verify "$tmp/tampered.tar.gz" >"$tmp/verify.log" 2>&1; then
      echo "byo: FAIL: a bundle with one byte changed verified"; cat "$tmp/verify.log"; rm -rf "$tmp"; exit 1
    fi
    echo "byo: a bundle with one byte changed is refused: $(tail -1 "$tmp/verify.log")"
    rm -rf "$tmp"
    ;;
  install)
    step "up --istio=false (bare clusters, kept)" mc up --istio=false
    step "test --kept --mesh install" mc test --kept --mesh install --artifacts "$out"
    ;;
  upgrade)
    step "up --istio=false (bare clusters, kept)" mc up --istio=false
    # As on a user's staging clusters: the apps and both versions' Istio
    # images come from the user's registry, and meshconform's own registry
    # (which the nodes mirror docker.io to) is gone, so an image taken from
    # anywhere else fails to pull.
    user_registry --istio-version upgrade
    step "meshconform's registry removed" "$BIN/foreign" no-local-registry
    reg=(--image-registry "$(cat "$BIN/registry/registry")" --image-registry-ca "$BIN/registry/ca.crt" --image-pull-secret "$BIN/registry/pull-secret.json")
    step "test --kept --mesh install --suite upgrade --image-registry" env MESHCONFORM_FRONTEND_ACCESS=loadbalancer "$BIN/meshconform" test --kept --mesh install --suite upgrade "${reg[@]}" --artifacts "$out" --junit-file "$out/junit.xml"
    ;;
  *) echo "byo: unknown mode $mode (want existing, install, renamed, upgrade)"; exit 2 ;;
  esac
  "$BIN/foreign" registry-down
  step "down" mc down
done
