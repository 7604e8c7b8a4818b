package doctor

import (
	"context"
	"strings"
	"testing"
	"time"

	judges "github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/istiodmetrics"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/topology"
)

func answers(asked []judges.Access, allowed func(judges.Access) bool) []judges.Answer {
	var out []judges.Answer
	for _, a := range asked {
		out = append(out, judges.Answer{Access: a, Allowed: allowed(a)})
	}
	return out
}

// The credential the doctor must fail: one bound to cluster-admin (it
// names it, and writing secrets with it), or to the reader role plus
// impersonation; one without the reader role fails too. The reader role
// alone passes, saying both facts.
func TestJudgeRemoteSecretRBAC(t *testing.T) {
	s := mesh.RemoteSecret{Name: "istio-remote-secret-cluster2", Cluster: "cluster2", Identity: mesh.Identity{User: "system:serviceaccount:istio-system:istio-reader-service-account"}}
	all := func(judges.Access) bool { return true }
	none := func(judges.Access) bool { return false }
	reader := mesh.CredentialRights{Needs: answers(judges.ReaderNeeds, all), Excess: answers(judges.ExcessAccess(), none)}
	if r := judgeRemoteSecretRBAC("cluster2", s, reader); r.Status != Pass || !strings.Contains(r.Reason, "istio-reader-service-account may do the") || !strings.Contains(r.Reason, "none of the") {
		t.Fatalf("reader role: %+v", r)
	}
	admin := mesh.CredentialRights{Needs: answers(judges.ReaderNeeds, all), Excess: answers(judges.ExcessAccess(), all)}
	r := judgeRemoteSecretRBAC("cluster2", s, admin)
	if r.Status != Fail || !strings.Contains(r.Reason, "istio-reader-service-account may also: cluster-admin (every verb on every resource), write secrets") {
		t.Fatalf("cluster-admin: %+v", r)
	}
	impersonate := mesh.CredentialRights{Needs: reader.Needs, Excess: answers(judges.ExcessAccess(), func(a judges.Access) bool { return a.Verb == "impersonate" && a.Resource == "users" })}
	if r := judgeRemoteSecretRBAC("cluster2", s, impersonate); r.Status != Fail || !strings.HasSuffix(r.Reason, "may also: impersonate users (istiod's reader role needs none of these)") {
		t.Fatalf("impersonate: %+v", r)
	}
	noRole := mesh.CredentialRights{Needs: answers(judges.ReaderNeeds, none), Excess: reader.Excess}
	if r := judgeRemoteSecretRBAC("cluster2", s, noRole); r.Status != Fail || !strings.Contains(r.Reason, "may not: get pods") {
		t.Fatalf("no reader role: %+v", r)
	}
	if r := judgeRemoteSecretRBAC("cluster2", s, mesh.CredentialRights{}); r.Status != Fail {
		t.Fatalf("no answers: %+v", r)
	}
}

func TestReportStatusAndJSON(t *testing.T) {
	r := Report{Results: []Result{{ID: "a", Status: Pass}, {ID: "b", Cluster: "cluster2", Status: Warn}}}
	if r.Status() != Warn || len(r.Failed()) != 0 {
		t.Fatalf("status %s failed %v", r.Status(), r.Failed())
	}
	r.Results = append(r.Results, Result{ID: "c", Cluster: "cluster2", Status: Fail})
	if r.Status() != Fail || r.Failed()[0] != "c@cluster2" {
		t.Fatalf("status %s failed %v", r.Status(), r.Failed())
	}
	var b strings.Builder
	if err := r.WriteJSON(&b); err != nil || !strings.Contains(b.String(), `"status": "fail"`) {
		t.Fatalf("json: %v %s", err, b.String())
	}
}

// A state the doctor cannot read must not pass: no PEM is no root, and a
// mesh without a remote fails outright.
func TestNothingToCheckFails(t *testing.T) {
	if fingerprint([]byte("garbage")) != "" || fingerprint(nil) != "" {
		t.Fatal("garbage has a fingerprint")
	}
	if r := run(context.Background(), scope{}); r.Status() != Fail {
		t.Fatalf("empty mesh: %+v", r)
	}
}

// A mesh of several primaries and remotes is a topology the doctor does not
// judge: it says so rather than pass on checks it cannot make.
func TestExamineRefusesMixedTopology(t *testing.T) {
	p1 := &clusters.Cluster{Cluster: topology.Cluster{Name: "cluster1", ClusterID: "cluster1", ControlPlane: "cluster1", Primary: true}}
	p2 := &clusters.Cluster{Cluster: topology.Cluster{Name: "cluster2", ClusterID: "cluster2", ControlPlane: "cluster2", Primary: true}}
	r := &clusters.Cluster{Cluster: topology.Cluster{Name: "cluster3", ClusterID: "cluster3", ControlPlane: "cluster1"}}
	rep := Examine(context.Background(), mesh.Model{Clusters: []*clusters.Cluster{p1, p2, r}})
	if rep.Status() != Fail || len(rep.Find("topology")) != 1 || !strings.Contains(rep.Results[0].Reason, "2 primaries and 1 remotes") {
		t.Fatalf("mixed topology: %+v", rep)
	}
	if rep := Examine(context.Background(), mesh.Model{Clusters: []*clusters.Cluster{r}}); rep.Status() != Fail {
		t.Fatalf("no primary: %+v", rep)
	}
}

// A peer primary is not a remote: the checks of how a primary serves its
// remotes are exactly the four that judge webhooks, the annotation,
// EXTERNAL_ISTIOD and the discovery address.
func TestPeersLeaveOutThePrimaryRemoteChecks(t *testing.T) {
	var left []string
	for _, c := range checks {
		if c.servesRemotes {
			left = append(left, c.id)
		}
	}
	want := []string{"remote-injection-webhook", "control-plane-clusters", "external-istiod", "discovery-address"}
	if strings.Join(left, ",") != strings.Join(want, ",") {
		t.Errorf("left out for peers: %v, want %v", left, want)
	}
}

// The metrics check: a replica whose gauge and clusterz agree, every
// remote synced, with nothing rejected, passes; one behind in clusterz,
// or whose gauge disagrees on a fixed version, fails; istio/istio#60082's
// stuck timeout on 1.29.2 and past rejects warn, saying so.
func TestJudgeIstiodMetrics(t *testing.T) {
	synced := []judges.RemoteCluster{{ID: "west-1", SyncStatus: "synced"}}
	reading := func(state string, rejects float64) istiodmetrics.Reading {
		return istiodmetrics.Reading{Pod: "istiod-a", At: time.Now(), RemoteSync: map[string]string{"west-1": state},
			Counters: map[string]float64{istiodmetrics.XDSRejects: rejects}}
	}
	if r := judgeIstiodMetrics("east", reading("synced", 0), synced, []string{"west-1"}, "1.30.0"); r.Status != Pass {
		t.Errorf("healthy: %+v", r)
	}
	if r := judgeIstiodMetrics("east", reading("synced", 0), []judges.RemoteCluster{{ID: "west-1", SyncStatus: "syncing"}}, []string{"west-1"}, "1.30.0"); r.Status != Fail || !strings.Contains(r.Reason, `is "syncing" in debug/clusterz`) {
		t.Errorf("clusterz behind: %+v", r)
	}
	if r := judgeIstiodMetrics("east", reading("timeout", 0), synced, []string{"west-1"}, "1.30.0"); r.Status != Fail {
		t.Errorf("a stuck gauge on a fixed version: %+v", r)
	}
	if r := judgeIstiodMetrics("east", reading("timeout", 0), synced, []string{"west-1"}, "1.29.2"); r.Status != Warn || !strings.Contains(r.Reason, "istio/istio#60082") {
		t.Errorf("#60082 on 1.29.2: %+v", r)
	}
	if r := judgeIstiodMetrics("east", reading("synced", 3), synced, []string{"west-1"}, "1.30.0"); r.Status != Warn || !strings.Contains(r.Reason, "pilot_total_xds_rejects is 3") {
		t.Errorf("past rejects: %+v", r)
	}
}
