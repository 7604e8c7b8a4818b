package topology

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadRepositoryTopology(t *testing.T) {
	topo, err := Load("../../kindconfigs", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Clusters) != 2 {
		t.Fatalf("want 2 clusters, got %d", len(topo.Clusters))
	}
	p := topo.Primary()
	if p.Name != "cluster1" || p.Region != "us-east-1" || p.MeshNetwork != "network1" {
		t.Errorf("primary = %+v", p)
	}
	c2, err := topo.Cluster("cluster2")
	if err != nil {
		t.Fatal(err)
	}
	if p.LoadBalancerPool.Overlaps(c2.LoadBalancerPool) || p.LoadBalancerPool.Size() != 50 {
		t.Errorf("pools %s and %s", p.LoadBalancerPool, c2.LoadBalancerPool)
	}
	if c2.Region != "us-west-2" || c2.Zone != "us-west-2a" || c2.PodSubnet.String() != "10.20.0.0/16" {
		t.Errorf("cluster2 = %+v", c2)
	}
}

func writeTopology(t *testing.T, topo string, kinds map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "topology.yaml"), []byte(topo), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, body := range kinds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const kindTmpl = `kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
name: NAME
networking:
  podSubnet: POD
  serviceSubnet: SVC
nodes:
- role: control-plane
`

func kindConfig(name, pod, svc string) string {
	return strings.NewReplacer("NAME", name, "POD", pod, "SVC", svc).Replace(kindTmpl)
}

func TestValidateRejects(t *testing.T) {
	cases := map[string]struct {
		topo  string
		kinds map[string]string
		want  string
	}{
		"overlapping pod CIDRs": {
			topo: "network: {name: net, subnet: 172.30.0.0/16}\nclusters:\n- {config: a.yaml, primary: true}\n- {config: b.yaml}\n",
			kinds: map[string]string{
				"a.yaml": kindConfig("a", "10.10.0.0/16", "10.255.10.0/24"),
				"b.yaml": kindConfig("b", "10.10.128.0/17", "10.255.20.0/24"),
			},
			want: `cluster "a" pod subnet 10.10.0.0/16 overlaps cluster "b" pod subnet 10.10.128.0/17`,
		},
		"service CIDR inside docker network": {
			topo:  "network: {name: net, subnet: 10.0.0.0/8}\nclusters:\n- {config: a.yaml, primary: true}\n",
			kinds: map[string]string{"a.yaml": kindConfig("a", "192.168.0.0/16", "10.255.10.0/24")},
			want:  "docker network net 10.0.0.0/8 overlaps cluster \"a\" service subnet",
		},
		"no primary": {
			topo: "network: {name: net, subnet: 172.30.0.0/16}\nclusters:\n- {config: a.yaml}\n- {config: b.yaml}\n",
			kinds: map[string]string{
				"a.yaml": kindConfig("a", "10.10.0.0/16", "10.255.10.0/24"),
				"b.yaml": kindConfig("b", "10.20.0.0/16", "10.255.20.0/24"),
			},
			want: "no primary cluster",
		},
		"remote of two primaries names none": {
			topo: "network: {name: net, subnet: 172.30.0.0/16}\nclusters:\n- {config: a.yaml, primary: true}\n- {config: b.yaml, primary: true}\n- {config: c.yaml}\n",
			kinds: map[string]string{
				"a.yaml": kindConfig("a", "10.10.0.0/16", "10.255.10.0/24"),
				"b.yaml": kindConfig("b", "10.20.0.0/16", "10.255.20.0/24"),
				"c.yaml": kindConfig("c", "10.30.0.0/16", "10.255.30.0/24"),
			},
			want: `remote cluster "c" names no controlPlane, and the topology has 2 primaries`,
		},
		"remote served by a remote": {
			topo: "network: {name: net, subnet: 172.30.0.0/16}\nclusters:\n- {config: a.yaml, primary: true}\n- {config: b.yaml}\n- {config: c.yaml, controlPlane: b}\n",
			kinds: map[string]string{
				"a.yaml": kindConfig("a", "10.10.0.0/16", "10.255.10.0/24"),
				"b.yaml": kindConfig("b", "10.20.0.0/16", "10.255.20.0/24"),
				"c.yaml": kindConfig("c", "10.30.0.0/16", "10.255.30.0/24"),
			},
			want: `remote cluster "c": controlPlane "b" is not a primary`,
		},
		"zero replicas": {
			topo:  "network: {name: net, subnet: 172.30.0.0/16}\nistiodReplicas: -1\nclusters:\n- {config: a.yaml, primary: true}\n",
			kinds: map[string]string{"a.yaml": kindConfig("a", "10.10.0.0/16", "10.255.10.0/24")},
			want:  "istiodReplicas -1",
		},
		"typo in kind config": {
			topo:  "network: {name: net, subnet: 172.30.0.0/16}\nclusters:\n- {config: a.yaml, primary: true}\n",
			kinds: map[string]string{"a.yaml": kindConfig("a", "10.10.0.0/16", "10.255.10.0/24") + "nodez: []\n"},
			want:  "parse kind config",
		},
		"pool outside the network": {
			topo:  "network: {name: net, subnet: 172.30.0.0/16}\nclusters:\n- {config: a.yaml, primary: true, loadBalancerPool: 172.31.0.10-172.31.0.20}\n",
			kinds: map[string]string{"a.yaml": kindConfig("a", "10.10.0.0/16", "10.255.10.0/24")},
			want:  "does not fit docker network net 172.30.0.0/16",
		},
		"pool in the node range": {
			topo:  "network: {name: net, subnet: 172.30.0.0/16}\nclusters:\n- {config: a.yaml, primary: true, loadBalancerPool: 172.30.0.10-172.30.0.20}\n",
			kinds: map[string]string{"a.yaml": kindConfig("a", "10.10.0.0/16", "10.255.10.0/24")},
			want:  "where Docker assigns node addresses",
		},
		"overlapping pools": {
			topo: "network: {name: net, subnet: 172.30.0.0/16}\nclusters:\n- {config: a.yaml, primary: true, loadBalancerPool: 172.30.200.10-172.30.200.20}\n- {config: b.yaml, loadBalancerPool: 172.30.200.20-172.30.200.30}\n",
			kinds: map[string]string{
				"a.yaml": kindConfig("a", "10.10.0.0/16", "10.255.10.0/24"),
				"b.yaml": kindConfig("b", "10.20.0.0/16", "10.255.20.0/24"),
			},
			want: "pools of clusters \"a\" (172.30.200.10-172.30.200.20) and \"b\" (172.30.200.20-172.30.200.30) overlap",
		},
		"bad CIDR": {
			topo:  "network: {name: net, subnet: 172.30.0.0/16}\nclusters:\n- {config: a.yaml, primary: true}\n",
			kinds: map[string]string{"a.yaml": kindConfig("a", "10.10.0.0/33", "10.255.10.0/24")},
			want:  "podSubnet",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load(writeTopology(t, tc.topo, tc.kinds), "topology")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestDefaultPoolsAvoidExplicitOnes(t *testing.T) {
	dir := writeTopology(t,
		"network: {name: net, subnet: 172.30.0.0/16}\nclusters:\n- {config: a.yaml, primary: true, loadBalancerPool: 172.30.255.205-172.30.255.254}\n- {config: b.yaml}\n",
		map[string]string{
			"a.yaml": kindConfig("a", "10.10.0.0/16", "10.255.10.0/24"),
			"b.yaml": kindConfig("b", "10.20.0.0/16", "10.255.20.0/24"),
		})
	topo, err := Load(dir, "topology")
	if err != nil {
		t.Fatal(err)
	}
	if got := topo.Clusters[1].LoadBalancerPool.String(); got != "172.30.255.155-172.30.255.204" {
		t.Errorf("default pool of b = %s", got)
	}
}

// Every topology of the repository loads, with the roles its file states:
// the names MESHCONFORM_TOPOLOGY accepts are exactly these.
func TestRepositoryTopologies(t *testing.T) {
	names, err := Names("../../kindconfigs")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		kind               string
		primaries, remotes int
		replicas           int
	}{
		"primary-remote":  {"primary-remote", 1, 1, 1},
		"primary-remotes": {"primary-remote", 1, 2, 3},
		"multi-primary":   {"multi-primary", 2, 0, 1},
	}
	if len(names) != len(want) {
		t.Fatalf("topologies %v, want %d", names, len(want))
	}
	for _, name := range names {
		topo, err := Load("../../kindconfigs", name)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := want[name]
		if !ok {
			t.Fatalf("unexpected topology %s", name)
		}
		if topo.Kind() != w.kind || len(topo.Primaries()) != w.primaries || len(topo.Remotes()) != w.remotes || topo.IstiodReplicas != w.replicas {
			t.Errorf("%s: %s, %d primaries, %d remotes, %d replicas; want %+v", name, topo.Kind(), len(topo.Primaries()), len(topo.Remotes()), topo.IstiodReplicas, w)
		}
		for _, r := range topo.Remotes() {
			if r.ControlPlane != "cluster1" {
				t.Errorf("%s: remote %s served by %q", name, r.Name, r.ControlPlane)
			}
		}
		// Istio knows the clusters meshconform makes by their own names.
		for _, c := range topo.Clusters {
			if c.ClusterID != c.Name {
				t.Errorf("%s: cluster %s has Istio cluster ID %q", name, c.Name, c.ClusterID)
			}
		}
	}
	// Three regions, one per cluster: the failover rule can pick among two.
	topo, _ := Load("../../kindconfigs", "primary-remotes")
	regions := map[string]bool{}
	for _, c := range topo.Clusters {
		regions[c.Region] = true
	}
	if len(regions) != 3 {
		t.Errorf("primary-remotes has regions %v, want 3", regions)
	}
}

func TestUnknownTopologyListsTheOthers(t *testing.T) {
	_, err := Load("../../kindconfigs", "primary-remote-typo")
	if err == nil || !strings.Contains(err.Error(), "the topologies are multi-primary, primary-remote, primary-remotes") {
		t.Fatalf("got %v", err)
	}
	// A kind config is not a topology.
	if _, err := Load("../../kindconfigs", "cluster1"); err == nil || !strings.Contains(err.Error(), "no topology \"cluster1\"") {
		t.Fatalf("got %v", err)
	}
}
