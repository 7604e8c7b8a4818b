package verify

import (
	"errors"
	"testing"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/topology"
)

// A mesh with no caller is never judged healthy from every caller, and
// every caller is judged: one failing caller fails the whole.
func TestFromEveryCallerJudgesEachAndNeverNone(t *testing.T) {
	m := &Mesh{Model: mesh.Model{Clusters: []*clusters.Cluster{{Cluster: topology.Cluster{Name: "cluster1"}}, {Cluster: topology.Cluster{Name: "cluster2"}}}}, Frontends: map[string]string{}}
	if err := m.fromEveryCaller(func(string) error { return nil }); err == nil {
		t.Fatal("passed with no frontend in any cluster")
	}
	m.Frontends = map[string]string{"cluster1": "http://a", "cluster2": "http://b"}
	var judged []string
	if err := m.fromEveryCaller(func(from string) error { judged = append(judged, from); return nil }); err != nil || len(judged) != 2 {
		t.Fatalf("judged %v, err %v: want both callers", judged, err)
	}
	broken := errors.New("calls from cluster2 stray")
	if err := m.fromEveryCaller(func(from string) error {
		if from == "cluster2" {
			return broken
		}
		return nil
	}); !errors.Is(err, broken) {
		t.Fatalf("a mesh broken for cluster2's callers passed: %v", err)
	}
}
