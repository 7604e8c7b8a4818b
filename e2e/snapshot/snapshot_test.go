package snapshot

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The broken runs the audit must reject: one that leaves a namespace
// behind, deletes a user's object, recreates it (same name, new UID) or
// edits its spec. A run that changed nothing must pass.
func TestCompareNamesEveryKindOfChange(t *testing.T) {
	before := Snapshot{
		"namespaces user-ns":                   {UID: "u1"},
		"configmaps user-ns/settings":          {UID: "u2", Generation: 0},
		"deployments.apps istio-system/istiod": {UID: "u3", Generation: 4},
		"mutatingwebhookconfigurations.admissionregistration.k8s.io istio-sidecar-injector": {UID: "u4", Generation: 1},
	}
	if d := Compare(before, before); !d.Empty() || d.String() != "left exactly as found" {
		t.Fatalf("same snapshot: %v", d)
	}
	after := Snapshot{
		"namespaces user-ns":                   {UID: "u1"},
		"namespaces meshconform-apps":          {UID: "n1"},
		"configmaps user-ns/settings":          {UID: "u2-new"},
		"deployments.apps istio-system/istiod": {UID: "u3", Generation: 5},
	}
	d := Compare(before, after)
	check := func(what string, got []string, want string) {
		t.Helper()
		if len(got) != 1 || !strings.HasPrefix(got[0], want) {
			t.Errorf("%s = %v, want %s", what, got, want)
		}
	}
	check("added", d.Added, "namespaces meshconform-apps")
	check("removed", d.Removed, "mutatingwebhookconfigurations.admissionregistration.k8s.io istio-sidecar-injector")
	check("replaced", d.Replaced, "configmaps user-ns/settings")
	check("changed", d.Changed, "deployments.apps istio-system/istiod (generation 4 → 5)")
	if d.Empty() || !strings.Contains(d.String(), "added (1): namespaces meshconform-apps") {
		t.Errorf("String() = %q", d.String())
	}
}

// Edits that move no generation: a label or an annotation put on or taken
// off (the controlPlaneClusters annotation, a node's locality label).
func TestCompareSeesLabelAndAnnotationEdits(t *testing.T) {
	before := Snapshot{"namespaces istio-system": {UID: "n", Meta: metaDigest(map[string]string{"topology.istio.io/network": "network1"}, map[string]string{"topology.istio.io/controlPlaneClusters": "cluster1"})}}
	after := Snapshot{"namespaces istio-system": {UID: "n", Meta: metaDigest(map[string]string{"topology.istio.io/network": "network1"}, nil)}}
	if d := Compare(before, after); len(d.Changed) != 1 || d.Changed[0] != "namespaces istio-system (labels or annotations)" {
		t.Fatalf("annotation removed: %v", d)
	}
	// The cluster's own bookkeeping is no change.
	a := metaDigest(nil, map[string]string{"node.alpha.kubernetes.io/ttl": "0"})
	b := metaDigest(nil, map[string]string{"node.alpha.kubernetes.io/ttl": "15"})
	if a != b {
		t.Fatal("a volatile annotation counted")
	}
	if metaDigest(map[string]string{"a": "b"}, nil) == metaDigest(nil, map[string]string{"a": "b"}) {
		t.Fatal("a label and an annotation of the same text digest alike")
	}
}

func TestControlledObjectsAreLeftToTheirOwner(t *testing.T) {
	yes := true
	if !controlled([]metav1.OwnerReference{{Kind: "ReplicaSet", Controller: &yes}}) || controlled(nil) || controlled([]metav1.OwnerReference{{Kind: "ConfigMap"}}) {
		t.Fatal("controlled")
	}
}

func TestParseKeyInvertsKey(t *testing.T) {
	for _, c := range []struct {
		gvr      schema.GroupVersionResource
		ns, name string
	}{
		{schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, "", "istio-system"},
		{schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, "default", "istio-ca-root-cert"},
		{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}, "", "system:aggregate-to-edit"},
	} {
		res, ns, name := ParseKey(key(c.gvr, c.ns, c.name))
		if res != resourceKey(c.gvr) || ns != c.ns || name != c.name {
			t.Errorf("ParseKey(%q) = %q, %q, %q", key(c.gvr, c.ns, c.name), res, ns, name)
		}
	}
}

// A brought cluster's audit lists the mesh and what a run may create, and
// nothing the cluster churns by itself: a node annotated by a controller,
// a kubelet's certificate request, a CronJob's namespace are outside it,
// so they never fail a correct run; a webhook, CRD, Istio or Gateway API
// resource, priority class, namespace, anything in istio-system, or the
// config map istiod writes into a user's namespace is inside it, so a run
// that changed or left one fails.
func TestMeshScope(t *testing.T) {
	s := MeshScope("istio-system", map[string][]string{"configmaps": {"istio-ca-root-cert"}})
	for r, want := range map[string]bool{
		"namespaces": true, "customresourcedefinitions.apiextensions.k8s.io": true,
		"mutatingwebhookconfigurations.admissionregistration.k8s.io": true, "validatingwebhookconfigurations.admissionregistration.k8s.io": true,
		"clusterroles.rbac.authorization.k8s.io": true, "clusterrolebindings.rbac.authorization.k8s.io": true,
		"meshconfigs.install.istio.io": true, "gatewayclasses.gateway.networking.k8s.io": true,
		"validatingadmissionpolicies.admissionregistration.k8s.io": true, "priorityclasses.scheduling.k8s.io": true,
		"nodes": false, "certificatesigningrequests.certificates.k8s.io": false, "persistentvolumes": false,
	} {
		if got := s.Cluster(r); got != want {
			t.Errorf("cluster-scoped %s listed: %t, want %t", r, got, want)
		}
	}
	cm := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	got := s.listings(cm, true)
	if len(got) != 2 || got[0].ns != "istio-system" || got[1].name != "istio-ca-root-cert" || got[1].ns != "" {
		t.Errorf("config maps listed as %+v, want istio-system's and istio-ca-root-cert in every namespace", got)
	}
	if got := s.listings(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, true); len(got) != 1 || got[0].ns != "istio-system" {
		t.Errorf("deployments listed as %+v, want istio-system's only", got)
	}
	if got := s.listings(schema.GroupVersionResource{Version: "v1", Resource: "nodes"}, false); len(got) != 0 {
		t.Errorf("nodes listed: %v", got)
	}
	var whole *Scope
	if got := whole.listings(cm, true); len(got) != 1 || got[0].ns != "" || got[0].name != "" {
		t.Errorf("without a scope, configmaps listed as %v, want once cluster-wide", got)
	}
}

// What could not be listed is reported, never read as a difference.
func TestDiffNotListed(t *testing.T) {
	d := Diff{NotListed: []string{"clusterroles.rbac.authorization.k8s.io: Forbidden"}}
	if !d.Empty() {
		t.Error("a diff with only what was not listed is not empty")
	}
	if s := d.String(); !strings.Contains(s, "as far as listed") || !strings.Contains(s, "clusterroles") {
		t.Errorf("String = %q", s)
	}
	d.Added = []string{"namespaces production"}
	if s := d.String(); !strings.Contains(s, "added (1): namespaces production") || !strings.Contains(s, "not listed (1)") {
		t.Errorf("String = %q", s)
	}
}
