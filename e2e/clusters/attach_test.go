package clusters

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshconform/meshconform/e2e/topology"
)

func node(region, zone string, cidrs ...string) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{}}}
	if region != "" {
		n.Labels[topology.RegionLabel] = region
	}
	if zone != "" {
		n.Labels[topology.ZoneLabel] = zone
	}
	n.Spec.PodCIDRs = cidrs
	return n
}

func TestNodeLocality(t *testing.T) {
	r, z, err := NodeLocality([]corev1.Node{node("us-east-1", "us-east-1a"), node("us-east-1", "us-east-1a")})
	if err != nil || r != "us-east-1" || z != "us-east-1a" {
		t.Fatalf("one region, one zone: %q %q %v", r, z, err)
	}
	if r, z, err = NodeLocality([]corev1.Node{node("us-east-1", "a"), node("us-east-1", "b")}); err != nil || r != "us-east-1" || z != "" {
		t.Fatalf("two zones: %q %q %v", r, z, err)
	}
	// A cluster whose locality cannot be told must be refused, not guessed:
	// the failover checks would judge a wrong region.
	for name, nodes := range map[string][]corev1.Node{
		"no label":    {node("", "")},
		"two regions": {node("us-east-1", ""), node("eu-west-1", "")},
		"no nodes":    nil,
	} {
		if _, _, err := NodeLocality(nodes); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPodCIDRCover(t *testing.T) {
	got, err := PodCIDRCover([]corev1.Node{node("", "", "10.10.0.0/24"), node("", "", "10.10.1.0/24"), node("", "", "10.10.3.0/24", "fd00::/64")})
	if err != nil || got.String() != "10.10.0.0/22" {
		t.Fatalf("cover = %v %v, want 10.10.0.0/22", got, err)
	}
	if got, err := PodCIDRCover([]corev1.Node{node("", "", "10.20.0.0/24")}); err != nil || got.String() != "10.20.0.0/24" {
		t.Fatalf("one node: %v %v", got, err)
	}
	if _, err := PodCIDRCover([]corev1.Node{node("", "")}); err == nil {
		t.Fatal("no podCIDR accepted: the checks could not tell clusters apart")
	}
}

func TestCheckContexts(t *testing.T) {
	cfg := clientcmdapi.NewConfig()
	cfg.Contexts["kind-cluster1"] = &clientcmdapi.Context{}
	cfg.Contexts["kind-cluster2"] = &clientcmdapi.Context{}
	if err := CheckContexts(cfg, []Brought{{"cluster1", "kind-cluster1"}, {"cluster2", "kind-cluster2"}}); err != nil {
		t.Fatal(err)
	}
	err := CheckContexts(cfg, []Brought{{"cluster1", "kind-cluster1"}, {"cluster2", "prod"}})
	if err == nil || !strings.Contains(err.Error(), `context "prod" is not in the kubeconfig (it has: kind-cluster1, kind-cluster2)`) {
		t.Fatalf("missing context: %v", err)
	}
	if err := CheckContexts(cfg, []Brought{{"cluster1", "kind-cluster1"}, {"cluster2", "kind-cluster1"}}); err == nil {
		t.Fatal("one context for two roles accepted")
	}
}

func TestFilterKeepsOrder(t *testing.T) {
	mk := func(name string, primary bool) *Cluster {
		return &Cluster{Cluster: topology.Cluster{Name: name, Primary: primary}}
	}
	cls := []*Cluster{mk("a", true), mk("b", false), mk("c", true)}
	got := Filter(cls, func(c *Cluster) bool { return c.Primary })
	if len(got) != 2 || got[0].Name != "a" || got[1].Name != "c" {
		t.Errorf("primaries = %v", got)
	}
	if got := Filter(cls, func(*Cluster) bool { return false }); len(got) != 0 {
		t.Errorf("none kept: %v", got)
	}
}

func TestByRoleAndNames(t *testing.T) {
	mk := func(name string, primary bool) *Cluster {
		return &Cluster{Cluster: topology.Cluster{Name: name, Primary: primary}}
	}
	cls := []*Cluster{mk("a", true), mk("b", false), mk("c", true)}
	p, r := ByRole(cls)
	if fmt.Sprint(Names(p)) != "[a c]" || fmt.Sprint(Names(r)) != "[b]" {
		t.Errorf("primaries %v, remotes %v", Names(p), Names(r))
	}
}

func planned(names []string, regions ...string) []*Cluster {
	var out []*Cluster
	for i, n := range names {
		c := &Cluster{}
		c.Name, c.Region, c.Zone = n, regions[i], "z"
		out = append(out, c)
	}
	return out
}

// Node localities are kept where they can carry the failover spec (one
// region per cluster, two regions at least); anything else gives every
// cluster a pod-label locality of its own, never a mix.
func TestPlanLocality(t *testing.T) {
	cls := planned([]string{"a", "b"}, "us-east-1", "us-west-2")
	if how, err := PlanLocality(cls); err != nil || cls[0].PodLocality || cls[0].Region != "us-east-1" || !strings.Contains(how, "nodes'") {
		t.Fatalf("%q %v %+v", how, err, cls[0])
	}
	for name, cls := range map[string][]*Cluster{
		"no region labels":  planned([]string{"east-1", "west-1"}, "", ""),
		"one without":       planned([]string{"east-1", "west-1"}, "us-east-1", ""),
		"all in one region": planned([]string{"east-1", "west-1"}, "eu-west-1", "eu-west-1"),
	} {
		how, err := PlanLocality(cls)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(how, LocalityLabel) {
			t.Errorf("%s: %q", name, how)
		}
		for _, c := range cls {
			if !c.PodLocality || c.Region != c.Name || c.PodLabels()[LocalityLabel] != c.Name+"."+c.Name+"-z" {
				t.Errorf("%s: %s: %+v %v", name, c.Name, c, c.PodLabels())
			}
		}
		if cls[0].Region == cls[1].Region {
			t.Errorf("%s: one region for both: failover could not be judged", name)
		}
	}
	if _, err := PlanLocality(planned([]string{"prod.eu", "b"}, "", "")); err == nil {
		t.Error("a name with a dot accepted")
	}
	if planned([]string{"a"}, "r")[0].PodLabels() != nil {
		t.Error("node locality labels pods")
	}
}
