package mesh

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/meshconform/meshconform/e2e/clusters"
)

// modelCluster is a cluster whose Istio cluster ID is not its name.
func modelCluster(name, id, cp string, primary bool) *clusters.Cluster {
	c := cluster(name, primary, cp)
	c.ClusterID = id
	return c
}

// Roles and the primary serving each remote come from the clusters; a
// model no multicluster mesh fits is refused, naming why.
func TestModel(t *testing.T) {
	p := modelCluster("cluster1", "east", "cluster1", true)
	r2 := modelCluster("cluster2", "west", "cluster1", false)
	r3 := modelCluster("cluster3", "south", "cluster1", false)
	m := Model{Clusters: []*clusters.Cluster{p, r2, r3}}
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
	if got := clusters.Names(m.ServedBy(p)); strings.Join(got, ",") != "cluster2,cluster3" {
		t.Errorf("served by cluster1: %v", got)
	}
	if got := clusters.Names(m.ProxiesOf(p)); strings.Join(got, ",") != "cluster1,cluster2,cluster3" {
		t.Errorf("proxies of cluster1's istiod: %v", got)
	}
	if got := ClusterIDs(m.Others(r2)); strings.Join(got, ",") != "east,south" {
		t.Errorf("others of cluster2: %v", got)
	}
	for name, tc := range map[string]struct {
		m    Model
		want string
	}{
		"no primary":       {Model{Clusters: []*clusters.Cluster{r2}}, "no primary"},
		"orphan remote":    {Model{Clusters: []*clusters.Cluster{p, modelCluster("cluster4", "north", "cluster9", false)}}, `names control plane "cluster9"`},
		"remote as server": {Model{Clusters: []*clusters.Cluster{p, r2, modelCluster("cluster4", "north", "cluster2", false)}}, `names control plane "cluster2"`},
		"no cluster ID":    {Model{Clusters: []*clusters.Cluster{p, modelCluster("cluster4", "", "cluster1", false)}}, "no Istio cluster ID"},
		"one ID twice":     {Model{Clusters: []*clusters.Cluster{p, modelCluster("cluster4", "east", "cluster1", false)}}, "appears twice"},
		"pod ranges overlap": {Model{Clusters: []*clusters.Cluster{withRange(p, "10.244.0.0/16"), withRange(r2, "10.244.3.0/24")}},
			"cluster1 (10.244.0.0/16) and cluster2 (10.244.3.0/24)"},
	} {
		if err := tc.m.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q, got %v", name, tc.want, err)
		}
	}
}

func withRange(c *clusters.Cluster, r string) *clusters.Cluster {
	cp := *c
	cp.PodSubnet = netip.MustParsePrefix(r)
	return &cp
}

// Clusters without pod ranges (VPC CNIs) are placed by their API servers:
// they never count as overlapping.
func TestModelWithoutPodRanges(t *testing.T) {
	p := modelCluster("eks-a", "east-1", "eks-a", true)
	r := modelCluster("eks-b", "west-1", "eks-a", false)
	if err := (Model{Clusters: []*clusters.Cluster{p, r, withRange(modelCluster("kind", "k", "eks-a", false), "10.244.0.0/16")}}).Check(); err != nil {
		t.Fatal(err)
	}
}
