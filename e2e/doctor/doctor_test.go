package doctor

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/topology"
)

func jwt(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(payload)) + ".c2ln"
}

const remoteKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: cluster2
  cluster: {server: "SERVER"}
users:
- name: cluster2
  user: {token: "TOKEN"}
contexts:
- name: cluster2
  context: {cluster: cluster2, user: cluster2}
current-context: cluster2
`

// The remote secret the doctor must reject: one whose server is loopback
// (made for kubectl on a laptop); its account is read from the token's
// subject, and the token itself is never returned.
func TestParseRemoteKubeconfig(t *testing.T) {
	tok := jwt(`{"sub":"system:serviceaccount:istio-system:istio-reader-service-account"}`)
	raw := strings.NewReplacer("SERVER", "https://127.0.0.1:6443", "TOKEN", tok).Replace(remoteKubeconfig)
	server, user, err := parseRemoteKubeconfig([]byte(raw))
	if err != nil || server != "https://127.0.0.1:6443" || user != "system:serviceaccount:istio-system:istio-reader-service-account" {
		t.Fatalf("got %q %q %v", server, user, err)
	}
	if !mesh.LoopbackServer(server) || !mesh.LoopbackServer("https://localhost:6443") || !mesh.LoopbackServer("https://[::1]:6443") {
		t.Error("loopback servers not recognised")
	}
	if mesh.LoopbackServer("https://172.30.0.3:6443") || mesh.LoopbackServer("https://api.prod.example.com") {
		t.Error("a routable server taken for loopback")
	}
	if tokenSubject("not-a-jwt") != "" || tokenSubject(jwt(`not json`)) != "" {
		t.Error("garbage token gave a subject")
	}
}

func webhook(path string, ca []byte) admissionv1.MutatingWebhookConfiguration {
	return admissionv1.MutatingWebhookConfiguration{Webhooks: []admissionv1.MutatingWebhook{{
		Name:         "rev.namespace.sidecar-injector.istio.io",
		ClientConfig: admissionv1.WebhookClientConfig{CABundle: ca, Service: &admissionv1.ServiceReference{Path: &path}},
	}}}
}

// Broken remote installs: no caBundle, another cluster's path, no webhook.
func TestJudgeWebhooks(t *testing.T) {
	want := "/inject/cluster/cluster2/net/network1"
	if r := judgeWebhooks("cluster2", want, []admissionv1.MutatingWebhookConfiguration{webhook(want, []byte("ca"))}); r.Status != Pass {
		t.Fatalf("healthy webhook: %+v", r)
	}
	for name, mwcs := range map[string][]admissionv1.MutatingWebhookConfiguration{
		"no caBundle": {webhook(want, nil)},
		"wrong path":  {webhook("/inject/cluster/cluster1/net/network1", []byte("ca"))},
		"no webhooks": nil,
	} {
		if r := judgeWebhooks("cluster2", want, mwcs); r.Status != Fail {
			t.Errorf("%s: %+v", name, r)
		}
	}
}

// An istiod replica that lists a remote unsynced, or not at all, fails.
func TestJudgeClusterz(t *testing.T) {
	ok := []mesh.RemoteCluster{{ID: "cluster1", SyncStatus: "synced"}, {ID: "cluster2", SyncStatus: "synced"}}
	if r := judgeClusterz("cluster1", "istiod-a", []string{"cluster2"}, ok); r.Status != Pass {
		t.Fatalf("synced: %+v", r)
	}
	timeout := []mesh.RemoteCluster{{ID: "cluster2", SyncStatus: "timeout"}}
	if r := judgeClusterz("cluster1", "istiod-a", []string{"cluster2"}, timeout); r.Status != Fail || !strings.Contains(r.Reason, "cluster2 timeout") {
		t.Errorf("timeout: %+v", r)
	}
	if r := judgeClusterz("cluster1", "istiod-a", []string{"cluster2", "cluster3"}, ok); r.Status != Fail || !strings.Contains(r.Reason, "cluster3 not listed") {
		t.Errorf("missing remote: %+v", r)
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
	if len(IDs()) != len(checks) {
		t.Fatal("IDs")
	}
}

func TestServiceAccountGroups(t *testing.T) {
	g := serviceAccountGroups("system:serviceaccount:istio-system:istio-reader-service-account")
	if len(g) != 3 || g[2] != "system:serviceaccounts:istio-system" {
		t.Fatalf("groups %v", g)
	}
}

// A state the doctor cannot read must not pass: no PEM is no root, and a
// mesh without a remote fails outright.
func TestNothingToCheckFails(t *testing.T) {
	if fingerprint([]byte("garbage")) != "" || fingerprint(nil) != "" {
		t.Fatal("garbage has a fingerprint")
	}
	if r := Run(context.Background(), Mesh{}); r.Status() != Fail {
		t.Fatalf("empty mesh: %+v", r)
	}
}

// A mesh of several primaries and remotes is a topology the doctor does not
// judge: it says so rather than pass on checks it cannot make.
func TestForClustersRefusesMixedTopology(t *testing.T) {
	p1 := &clusters.Cluster{Cluster: topology.Cluster{Name: "cluster1", Primary: true}}
	p2 := &clusters.Cluster{Cluster: topology.Cluster{Name: "cluster2", Primary: true}}
	r := &clusters.Cluster{Cluster: topology.Cluster{Name: "cluster3"}}
	rep := ForClusters(context.Background(), []*clusters.Cluster{p1, p2, r}, "")
	if rep.Status() != Fail || len(rep.Find("topology")) != 1 {
		t.Fatalf("mixed topology: %+v", rep)
	}
	if rep := ForClusters(context.Background(), []*clusters.Cluster{r}, ""); rep.Status() != Fail {
		t.Fatalf("no primary: %+v", rep)
	}
}

// A peer primary is not a remote: the checks of how a primary serves its
// remotes are exactly the four that judge webhooks, the annotation,
// EXTERNAL_ISTIOD and the discovery address.
func TestPeersLeaveOutThePrimaryRemoteChecks(t *testing.T) {
	var left []string
	for _, c := range checks {
		if c.primaryRemote {
			left = append(left, c.id)
		}
	}
	want := []string{"remote-injection-webhook", "control-plane-clusters", "external-istiod", "discovery-address"}
	if strings.Join(left, ",") != strings.Join(want, ",") {
		t.Errorf("left out for peers: %v, want %v", left, want)
	}
}
