package snapshot

import (
	"strings"
	"testing"
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
