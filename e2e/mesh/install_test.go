package mesh

import (
	"fmt"
	"testing"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/topology"
)

func cluster(name string, primary bool, controlPlane string) *clusters.Cluster {
	return &clusters.Cluster{Cluster: topology.Cluster{Name: name, ClusterID: name, Primary: primary, ControlPlane: controlPlane}}
}

func pairNames(pairs [][2]*clusters.Cluster) string {
	var out []string
	for _, p := range pairs {
		out = append(out, p[1].Name+"→"+p[0].Name)
	}
	return fmt.Sprint(out)
}

// Every primary gets the remote secret of every other cluster: a remote's
// to its primary, and in multi-primary each primary's to the other (the
// guide's "Enable Endpoint Discovery", both directions). A mesh missing one
// direction is the seeded fault the multi-primary suite must catch.
func TestSecretPairs(t *testing.T) {
	pr := []*clusters.Cluster{cluster("cluster1", true, "cluster1"), cluster("cluster2", false, "cluster1"), cluster("cluster3", false, "cluster1")}
	if got := pairNames(secretPairs(pr)); got != "[cluster2→cluster1 cluster3→cluster1]" {
		t.Errorf("primary-remotes: %s", got)
	}
	mp := []*clusters.Cluster{cluster("cluster1", true, "cluster1"), cluster("cluster2", true, "cluster2")}
	if got := pairNames(secretPairs(mp)); got != "[cluster2→cluster1 cluster1→cluster2]" {
		t.Errorf("multi-primary: %s", got)
	}
}

// externalIstiod only where a primary serves remotes: a multi-primary
// primary with it would write webhooks and root certs into clusters whose
// own istiod does.
func TestPrimaryValuesExternalIstiod(t *testing.T) {
	in := &Installer{Values: Values{Replicas: 3}}
	pr := []*clusters.Cluster{cluster("cluster1", true, "cluster1"), cluster("cluster2", false, "cluster1")}
	if v := in.primaryValues(pr[0], pr); !v.ExternalIstiod || v.Cluster != "cluster1" || v.Replicas != 3 {
		t.Errorf("primary with a remote: %+v", v)
	}
	mp := []*clusters.Cluster{cluster("cluster1", true, "cluster1"), cluster("cluster2", true, "cluster2")}
	for _, p := range mp {
		if v := in.primaryValues(p, mp); v.ExternalIstiod {
			t.Errorf("multi-primary %s rendered as an external istiod", p.Name)
		}
	}
}

// An upgrade's new control plane serves the remote: rendered without
// externalIstiod, the canary's remote pods were never injected (a rollout
// stuck at 0 updated pods, in CI).
func TestRevisionPrimaryIsExternalIstiod(t *testing.T) {
	in := &Installer{Values: Values{Revision: "canary", Replicas: 1}}
	v := in.revisionPrimaryValues(cluster("cluster1", true, "cluster1"))
	if !v.ExternalIstiod || v.Cluster != "cluster1" || v.Revision != "canary" {
		t.Errorf("canary primary values: %+v", v)
	}
	doc := renderYAML(t, PrimaryTemplate, Values{Hub: "h", Tag: "1.27.0", Profile: "minimal", MeshID: "mesh1", Cluster: v.Cluster, Network: "n", Revision: v.Revision, Replicas: v.Replicas, ExternalIstiod: v.ExternalIstiod})
	if dig(doc, "spec", "values", "global", "externalIstiod") != true {
		t.Error("the canary's primary renders without externalIstiod")
	}
}
