package upgrade

import (
	"strings"
	"testing"
)

func TestParsePlan(t *testing.T) {
	p, err := ParsePlan(DefaultFrom, DefaultTo, DefaultMethods)
	if err != nil || !p.Has(Canary) || !p.Has(InPlace) {
		t.Fatalf("defaults: %+v %v", p, err)
	}
	if _, err := ParsePlan("1.27.0", "1.29.2", "canary"); err != nil {
		t.Errorf("a two-minor canary jump is supported by Istio: %v", err)
	}
	for name, c := range map[string][3]string{
		"in-place two minors":  {"1.27.0", "1.29.2", "in-place"},
		"default methods jump": {"1.27.0", "1.29.2", DefaultMethods},
		"canary three minors":  {"1.26.0", "1.29.2", "canary"},
		"a downgrade":          {"1.27.0", "1.26.0", "canary"},
		"same version":         {"1.27.0", "1.27.0", "canary"},
		"unknown method":       {"1.26.0", "1.27.0", "blue-green"},
		"not a version":        {"latest", "1.27.0", "canary"},
	} {
		if _, err := ParsePlan(c[0], c[1], c[2]); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	_, err = ParsePlan("1.27.0", "1.29.2", "in-place")
	if err == nil || !strings.Contains(err.Error(), "one minor version at a time") {
		t.Errorf("the refusal must say Istio's reason: %v", err)
	}
}

func TestExpect(t *testing.T) {
	p := Plan{From: "1.26.0", To: "1.27.0"}
	for phase, want := range map[string][2]string{
		Before: {"1.26.0", "1.26.0"}, CanaryInstalled: {"1.26.0", "1.26.0"}, PrimaryMoved: {"1.27.0", "1.26.0"},
		RemoteMoved: {"1.27.0", "1.27.0"}, RolledBack: {"1.26.0", "1.26.0"}, RolledForward: {"1.27.0", "1.27.0"},
		OldRemoved: {"1.27.0", "1.27.0"}, ControlPlaneUp: {"1.26.0", "1.26.0"}, PrimaryRestarted: {"1.27.0", "1.26.0"},
	} {
		if a, b, err := p.Expect(phase); err != nil || a != want[0] || b != want[1] {
			t.Errorf("%s: %s/%s (%v), want %v", phase, a, b, err, want)
		}
	}
	if _, _, err := p.Expect("roll forwrad"); err == nil {
		t.Error("a misspelled phase got versions")
	}
	for _, m := range []Method{Canary, InPlace} {
		for _, ph := range Phases(m) {
			if Budget(m, ph).MinPerStream == 0 {
				t.Errorf("%s %s: a budget that judges no requests", m, ph)
			}
		}
	}
	if Budget(InPlace, Before).MaxFailed != 0 || Budget(Canary, RolledBack).MaxFailed != 0 || Budget(InPlace, ControlPlaneUp).MaxFailed >= 0 {
		t.Error("budgets: before and canary phases fail nothing; in-place is measured")
	}
}

func TestClusterRoutes(t *testing.T) {
	objs := ClusterRoutes("backend.production.svc.cluster.local", "production", []string{"cluster1", "cluster2"})
	if len(objs) != 2 || objs[0].GetKind() != "DestinationRule" || objs[1].GetKind() != "VirtualService" {
		t.Fatalf("objects %v", objs)
	}
	http := objs[1].Object["spec"].(map[string]any)["http"].([]any)
	if len(http) != 3 {
		t.Fatalf("want a route per cluster and a default, got %d", len(http))
	}
	last := http[2].(map[string]any)
	if _, ok := last["match"]; ok {
		t.Error("the last route must match every call")
	}
}
