package snapshot

import (
	"reflect"
	"strings"
	"testing"
	"time"

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

// entries is a managedFields list: manager, operation and the time of its
// last write, seconds after t0.
func entries(es ...any) []metav1.ManagedFieldsEntry {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var out []metav1.ManagedFieldsEntry
	for i := 0; i < len(es); i += 3 {
		at := metav1.NewTime(t0.Add(time.Duration(es[i+2].(int)) * time.Second))
		out = append(out, metav1.ManagedFieldsEntry{
			Manager: es[i].(string), Operation: metav1.ManagedFieldsOperationType(es[i+1].(string)), Time: &at,
			FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{}}}`),
		})
	}
	return out
}

// On a cluster that churns while the run goes on, a difference is the
// run's when its field manager wrote it. What it must reject: an object
// the run added or edited (its entry new or moved), an edit nobody can be
// named for, any removal or replacement whoever made it. What it must not
// fail a correct run for: an annotation another manager moved, an object
// another manager added — the chance of that is the rate of the cluster's
// own writes in scope, which is why attribution exists.
func TestCompareAttributedNamesWhoChangedWhat(t *testing.T) {
	const run = "meshconform"
	annotated := func(v string) string { return metaDigest(nil, map[string]string{"acme.example/heartbeat": v}) }
	before := Snapshot{
		"configmaps istio-system/acme-inventory":              {UID: "c1", Meta: annotated("1"), Managers: managerDigests(entries("kubectl-create", "Update", 0, "kubectl-annotate", "Update", 10))},
		"clusterroles.rbac.authorization.k8s.io acme-auditor": {UID: "r1", Meta: annotated("1"), Managers: managerDigests(entries("kubectl-annotate", "Update", 10))},
		// Written by an earlier run: the old entry alone names nobody now.
		"mutatingwebhookconfigurations.admissionregistration.k8s.io istio-sidecar-injector": {UID: "w1", Generation: 3, Managers: managerDigests(entries("pilot-discovery", "Update", 5, run, "Update", 1))},
		"namespaces istio-system":              {UID: "n1", Meta: annotated("a"), Managers: managerDigests(entries("kubectl-create", "Update", 0))},
		"configmaps istio-system/istio":        {UID: "c2", Managers: managerDigests(entries("istio-operator", "Apply", 0))},
		"configmaps istio-system/acme-gone":    {UID: "c3", Managers: managerDigests(entries("kubectl-create", "Update", 0))},
		"services istio-system/acme-discovery": {UID: "s1", Managers: managerDigests(entries("kubectl-create", "Update", 0))},
	}
	after := Snapshot{
		// Others' churn: not the run's.
		"configmaps istio-system/acme-inventory":                                            {UID: "c1", Meta: annotated("2"), Managers: managerDigests(entries("kubectl-create", "Update", 0, "kubectl-annotate", "Update", 20))},
		"clusterroles.rbac.authorization.k8s.io acme-auditor":                               {UID: "r1", Meta: annotated("2"), Managers: managerDigests(entries("kubectl-annotate", "Update", 20))},
		"configmaps istio-system/acme-started":                                              {UID: "c4", Managers: managerDigests(entries("kubectl-create", "Update", 15))},
		"mutatingwebhookconfigurations.admissionregistration.k8s.io istio-sidecar-injector": {UID: "w1", Generation: 4, Managers: managerDigests(entries("pilot-discovery", "Update", 25, run, "Update", 1))},
		// The run's: its entry is new.
		"namespaces istio-system": {UID: "n1", Meta: annotated("b"), Managers: managerDigests(entries("kubectl-create", "Update", 0, run, "Update", 30))},
		"namespaces left-behind":  {UID: "n2", Managers: managerDigests(entries(run, "Update", 12))},
		// Nobody's entry moved (managed fields stripped): the run's.
		"configmaps istio-system/istio": {UID: "c2", Meta: annotated("x"), Managers: managerDigests(entries("istio-operator", "Apply", 0))},
		// Replaced by another manager: still the run's to answer for.
		"services istio-system/acme-discovery": {UID: "s2", Managers: managerDigests(entries("kubectl-create", "Update", 40))},
	}
	d := CompareAttributed(before, after, run)
	want := Diff{
		Added:    []string{"namespaces left-behind"},
		Removed:  []string{"configmaps istio-system/acme-gone"},
		Replaced: []string{"services istio-system/acme-discovery"},
		Changed:  []string{"configmaps istio-system/istio (labels or annotations)", "namespaces istio-system (labels or annotations)"},
		Others: []string{
			"clusterroles.rbac.authorization.k8s.io acme-auditor (labels or annotations by kubectl-annotate)",
			"configmaps istio-system/acme-inventory (labels or annotations by kubectl-annotate)",
			"configmaps istio-system/acme-started (added by kubectl-create)",
			"mutatingwebhookconfigurations.admissionregistration.k8s.io istio-sidecar-injector (generation 3 → 4 by pilot-discovery)",
		},
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("CompareAttributed =\n%#v\nwant\n%#v", d, want)
	}
	// Compare (a cluster the run made, or a mesh it installed) attributes
	// nothing: every difference is the run's.
	if strict := Compare(before, after); len(strict.Others) != 0 || len(strict.Changed) != 5 || len(strict.Added) != 2 {
		t.Errorf("Compare = %+v", strict)
	}
	// Only others' churn: a correct run passes, and the report names it.
	churn := CompareAttributed(
		Snapshot{"configmaps istio-system/acme-inventory": before["configmaps istio-system/acme-inventory"]},
		Snapshot{"configmaps istio-system/acme-inventory": after["configmaps istio-system/acme-inventory"]}, run)
	if !churn.Empty() || !strings.Contains(churn.String(), "by others, not the run (1): configmaps istio-system/acme-inventory") {
		t.Errorf("churn only: empty %t, %q", churn.Empty(), churn.String())
	}
}

// A manager's digest moves with each of its writes (time, fields,
// operation) and with nothing another manager does.
func TestManagerDigests(t *testing.T) {
	a := managerDigests(entries("kubectl-annotate", "Update", 10, "meshconform", "Apply", 3))
	b := managerDigests(entries("kubectl-annotate", "Update", 11, "meshconform", "Apply", 3))
	if a["meshconform"] != b["meshconform"] || a["kubectl-annotate"] == b["kubectl-annotate"] {
		t.Errorf("digests %v → %v", a, b)
	}
	if c := managerDigests(entries("meshconform", "Update", 3)); c["meshconform"] == a["meshconform"] {
		t.Error("an Update and an Apply at the same time digest alike")
	}
	if got := moved(a, map[string]string{"kubectl-annotate": a["kubectl-annotate"]}); !reflect.DeepEqual(got, []string{"meshconform"}) {
		t.Errorf("a manager gone: moved = %v", got)
	}
}
