package verify

import (
	"strings"
	"testing"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/topology"
)

// judgeOn is ProxiesOn without the clusters: want grouped by control
// plane, each primary's expectations built per revision from its running
// istiod pods (istiods: primary → revision → pod names), each primary's
// rows judged by checks.Synced.
func judgeOn(t *testing.T, cls []*clusters.Cluster, want map[string]ProxyOn, istiods map[string]map[string][]string, rows map[string][]checks.ProxyStatus) error {
	t.Helper()
	where := map[string]string{}
	for pod, w := range want {
		where[pod] = w.Cluster
	}
	byPrimary, err := byControlPlane(where, cls)
	if err != nil {
		return err
	}
	m := &Mesh{Model: mesh.Model{Clusters: cls}}
	for primary, sub := range byPrimary {
		expect := map[string]checks.Expect{}
		for rev, pods := range istiods[primary] {
			expectRevision(expect, m.ByClusterID(sub), want, rev, pods)
		}
		if err := checks.Synced(rows[primary], expect); err != nil {
			return err
		}
	}
	return nil
}

func row(pod, cluster, istiod, version string) checks.ProxyStatus {
	return checks.ProxyStatus{Pod: pod, Namespace: AppNamespace, Cluster: cluster, Istiod: istiod, Version: version,
		Types: map[string]string{"CDS": "SYNCED", "LDS": "SYNCED", "EDS": "SYNCED", "RDS": "SYNCED"}}
}

func cluster(name, cp string, primary bool) *clusters.Cluster {
	return &clusters.Cluster{Cluster: topology.Cluster{Name: name, ClusterID: name, ControlPlane: cp, Primary: primary}}
}

// Istio's cluster ID is what proxy-status lists, not the topology's name:
// with the two apart, a proxy listed under its cluster's ID passes and one
// listed under the topology's name (a proxy whose ISTIO_META_CLUSTER_ID is
// not the ID its cluster was installed with) fails.
func TestProxiesJudgedByClusterID(t *testing.T) {
	primary, remote := cluster("cluster1", "cluster1", true), cluster("cluster2", "cluster1", false)
	primary.ClusterID, remote.ClusterID = "east", "west"
	cls := []*clusters.Cluster{primary, remote}
	cp := &harness.Istio{Version: "1.29.2"}
	want := map[string]ProxyOn{"a": {Cluster: "cluster1", Istio: cp, Version: "1.29.2"}, "b": {Cluster: "cluster2", Istio: cp, Version: "1.29.2"}}
	istiods := map[string]map[string][]string{"cluster1": {"": {"istiod-1"}}}
	rows := map[string][]checks.ProxyStatus{"cluster1": {row("a", "east", "istiod-1", "1.29.2"), row("b", "west", "istiod-1", "1.29.2")}}
	if err := judgeOn(t, cls, want, istiods, rows); err != nil {
		t.Errorf("proxies listed under their clusters' IDs rejected: %v", err)
	}
	rows["cluster1"][1] = row("b", "cluster2", "istiod-1", "1.29.2")
	if err := judgeOn(t, cls, want, istiods, rows); err == nil || !strings.Contains(err.Error(), "west") {
		t.Errorf("proxy listed under the topology's name, not its cluster ID: %v", err)
	}
}

// Multi-primary: each cluster's proxies are judged against its own
// primary's istiod pods. A proxy of cluster2 served by cluster1's istiod
// (reaching another primary's control plane) fails, naming both.
func TestProxiesOnOwnPrimary(t *testing.T) {
	cls := []*clusters.Cluster{cluster("cluster1", "cluster1", true), cluster("cluster2", "cluster2", true)}
	cp := &harness.Istio{Version: "1.29.2"}
	want := map[string]ProxyOn{
		"a": {Cluster: "cluster1", Istio: cp, Version: "1.29.2"},
		"b": {Cluster: "cluster2", Istio: cp, Version: "1.29.2"},
	}
	istiods := map[string]map[string][]string{"cluster1": {"": {"istiod-1"}}, "cluster2": {"": {"istiod-2"}}}
	rows := map[string][]checks.ProxyStatus{
		"cluster1": {row("a", "cluster1", "istiod-1", "1.29.2")},
		"cluster2": {row("b", "cluster2", "istiod-2", "1.29.2")},
	}
	if err := judgeOn(t, cls, want, istiods, rows); err != nil {
		t.Errorf("correct multi-primary mesh rejected: %v", err)
	}
	rows["cluster2"] = []checks.ProxyStatus{row("b", "cluster2", "istiod-1", "1.29.2")}
	if err := judgeOn(t, cls, want, istiods, rows); err == nil || !strings.Contains(err.Error(), `pod b (cluster2) is connected to istiod "istiod-1", want one of [istiod-2]`) {
		t.Errorf("proxy on the other primary's istiod: %v", err)
	}
}

// A canary upgrade before the remote's workloads restarted: the primary's
// proxies are on the new revision at the new version, the remote's still
// on the old revision at the old version. Said per proxy (ProxyOn), the
// mesh passes; judged as AllSynced judges a mesh at rest on the new
// revision, it fails on the remote's proxy, which is right for a mesh at
// rest and is why the upgrade names each proxy's revision and version.
// A proxy that should have moved but stayed on the old revision fails.
func TestProxiesOnCanaryWindow(t *testing.T) {
	cls := []*clusters.Cluster{cluster("cluster1", "cluster1", true), cluster("cluster2", "cluster1", false)}
	from := &harness.Istio{Version: "1.28.1", Revision: mesh.RevisionName("1.28.1")}
	to := &harness.Istio{Version: "1.29.2", Revision: mesh.RevisionName("1.29.2")}
	istiods := map[string]map[string][]string{"cluster1": {from.Revision: {"istiod-1-28-1-x"}, to.Revision: {"istiod-1-29-2-y"}}}
	// The rows of both revisions' istioctl, as ProxiesOn concatenates them.
	rows := map[string][]checks.ProxyStatus{"cluster1": {
		row("a", "cluster1", "istiod-1-29-2-y", "1.29.2"),
		row("b", "cluster2", "istiod-1-28-1-x", "1.28.1"),
	}}
	window := map[string]ProxyOn{
		"a": {Cluster: "cluster1", Istio: to, Version: to.Version},
		"b": {Cluster: "cluster2", Istio: from, Version: from.Version},
	}
	if err := judgeOn(t, cls, window, istiods, rows); err != nil {
		t.Errorf("correct canary window rejected: %v", err)
	}
	atRest := map[string]ProxyOn{
		"a": {Cluster: "cluster1", Istio: to, Version: to.Version},
		"b": {Cluster: "cluster2", Istio: to, Version: to.Version},
	}
	if err := judgeOn(t, cls, atRest, istiods, rows); err == nil || !strings.Contains(err.Error(), `pod b (cluster2) is connected to istiod "istiod-1-28-1-x", want one of [istiod-1-29-2-y]`) {
		t.Errorf("a proxy left on the old revision, judged at rest on the new: %v", err)
	}
	// In place: one revision, the new istiod serving a proxy still at the
	// old version until its pod restarts; one that restarted at the old
	// version fails.
	inPlace := &harness.Istio{Version: "1.29.2"}
	one := map[string]map[string][]string{"cluster1": {"": {"istiod-z"}}}
	rows = map[string][]checks.ProxyStatus{"cluster1": {row("a", "cluster1", "istiod-z", "1.29.2"), row("b", "cluster2", "istiod-z", "1.28.1")}}
	before := map[string]ProxyOn{
		"a": {Cluster: "cluster1", Istio: inPlace, Version: "1.29.2"},
		"b": {Cluster: "cluster2", Istio: inPlace, Version: "1.28.1"},
	}
	if err := judgeOn(t, cls, before, one, rows); err != nil {
		t.Errorf("correct in-place window rejected: %v", err)
	}
	before["b"] = ProxyOn{Cluster: "cluster2", Istio: inPlace, Version: "1.29.2"}
	if err := judgeOn(t, cls, before, one, rows); err == nil || !strings.Contains(err.Error(), `pod b (cluster2) runs proxy version "1.28.1", want 1.29.2`) {
		t.Errorf("a proxy at the old version after its restart: %v", err)
	}
}

// RemoteInjection's pod: listed on the primary with the remote's cluster,
// on the primary's istiod, at the version, but not yet served (STALE, NOT
// SENT) fails; SYNCED passes.
func TestInjectedPodMustBeSynced(t *testing.T) {
	cls := []*clusters.Cluster{cluster("cluster1", "cluster1", true), cluster("cluster2", "cluster1", false)}
	cp := &harness.Istio{Version: "1.29.2"}
	want := map[string]ProxyOn{"echo-1": {Cluster: "cluster2", Istio: cp, Version: cp.Version}}
	istiods := map[string]map[string][]string{"cluster1": {"": {"istiod-1"}}}
	for st, ok := range map[string]bool{"SYNCED": true, "STALE": false, "NOT SENT": false} {
		r := checks.ProxyStatus{Pod: "echo-1", Namespace: InjectionNamespace, Cluster: "cluster2", Istiod: "istiod-1", Version: "1.29.2",
			Types: map[string]string{"CDS": "IGNORED", "LDS": st}}
		err := judgeOn(t, cls, want, istiods, map[string][]checks.ProxyStatus{"cluster1": {r}})
		if ok != (err == nil) {
			t.Errorf("injected pod with LDS %s: %v", st, err)
		}
	}
}
