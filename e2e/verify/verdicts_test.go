package verify

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/fixtures/conformance"
)

// The traffic-rules verdict, with the weights and replica counts the
// fixtures really use: a correct mesh fails it at most SplitAlpha of the
// time, and each broken mesh below passes it with negligible probability.
func TestSplitVerdictDiscriminates(t *testing.T) {
	w, err := conformance.SplitWeights()
	if err != nil {
		t.Fatal(err)
	}
	replicas, err := conformance.BackendReplicas()
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 2 || len(replicas) != 2 {
		t.Fatalf("want two versions, got weights %v, replicas %v", w, replicas)
	}
	pods := 0
	for _, n := range replicas {
		pods += n
	}
	v := "v2"
	band := checks.Band(SplitCalls, w[v], SplitAlpha)
	if fail := 1 - checks.AcceptProbability(SplitCalls, w[v], band); fail > SplitAlpha {
		t.Errorf("a correct mesh fails with probability %g > α=%g", fail, SplitAlpha)
	}
	t.Logf("weights %v, %d calls: %s answers from %s accepted (α=%g)", w, SplitCalls, band, v, SplitAlpha)
	broken := map[string]float64{
		"balances over pods, ignoring the weights":  float64(replicas[v]) / float64(pods),
		"splits evenly over the subsets":            0.5,
		"swaps the subsets (v1 selects version v2)": w["v1"],
		"sends everything to v2":                    1,
		"sends everything to v1":                    0,
	}
	for name, p := range broken {
		pass := checks.AcceptProbability(SplitCalls, p, band)
		t.Logf("mesh that %s (v2 share %.3f): passes with probability %.3g", name, p, pass)
		if pass > 1e-9 {
			t.Errorf("a mesh that %s (v2 %.3f) passes with probability %g", name, p, pass)
		}
	}
}

// "Stays local": a window of LocalWindow calls, all local, catches a 1 %
// cross-region leak with probability ≥ 99.9 %.
func TestLocalWindowCatchesOnePercentLeak(t *testing.T) {
	caught := checks.LeakCaught(LocalWindow, 0.01)
	t.Logf("a 1%% leak is caught by %d calls with probability %.5f; 0.1%% with %.3f", LocalWindow, caught, checks.LeakCaught(LocalWindow, 0.001))
	if caught < 0.999 {
		t.Errorf("window %d catches a 1%% leak with probability %g", LocalWindow, caught)
	}
	if LocalWindow < checks.WindowFor(0.01, 0.001) {
		t.Errorf("window %d < %d", LocalWindow, checks.WindowFor(0.01, 0.001))
	}
}

func TestFixtureFacts(t *testing.T) {
	d, err := conformance.BackendDeployments()
	if err != nil || d["backend-v1"] != 3 || d["backend-v2"] != 1 {
		t.Errorf("backend deployments %v, %v", d, err)
	}
	if n, err := conformance.FrontendReplicas(); err != nil || n != 2 {
		t.Errorf("frontend replicas %d, %v", n, err)
	}
}

func TestDescribeKubeconfigServerFlagsLoopback(t *testing.T) {
	kc := []byte(`apiVersion: v1
kind: Config
clusters:
- name: cluster2
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: secret-token-never-printed}
contexts:
- name: c
  context: {cluster: cluster2, user: u}
current-context: c
`)
	s := mesh.RemoteSecret{Name: "istio-remote-secret-cluster2", Cluster: "cluster2"}
	s.Server, s.Identity, s.Err = mesh.ParseRemoteKubeconfig(kc)
	got := describeServer(s)
	if want := "server https://127.0.0.1:6443 — a loopback address"; len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("got %q", got)
	}
	if strings.Contains(got, "secret-token") || strings.Contains(fmt.Sprintf("%+v", s), "secret-token") {
		t.Error("the token reached the description")
	}
	if got := describeServer(mesh.RemoteSecret{Server: "https://172.30.0.3:6443"}); got != "server https://172.30.0.3:6443" {
		t.Errorf("got %q", got)
	}
	s.Server, s.Identity, s.Err = mesh.ParseRemoteKubeconfig([]byte("clusters: [token: secret-token-never-printed"))
	if got := describeServer(s); got != "unreadable kubeconfig" {
		t.Errorf("got %q", got)
	}
}

func TestAnalyzeRoutingNamesTheMisconfiguration(t *testing.T) {
	obj := func(kind string, spec map[string]any) unstructured.Unstructured {
		u := unstructured.Unstructured{Object: map[string]any{"kind": kind, "metadata": map[string]any{"name": "x"}, "spec": spec}}
		return u
	}
	dest := func(subset string, weight int64) map[string]any {
		d := map[string]any{"destination": map[string]any{"host": BackendHost, "subset": subset}}
		if weight > 0 {
			d["weight"] = weight
		}
		return d
	}
	good := obj("VirtualService", map[string]any{"http": []any{map[string]any{"route": []any{dest("v1", 30), dest("v2", 70)}}}})
	if got := analyzeRouting(good); len(got) != 0 {
		t.Errorf("correct VS flagged: %v", got)
	}
	plain := obj("VirtualService", map[string]any{"http": []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": BackendHost}}}}}})
	if got := strings.Join(analyzeRouting(plain), ""); !strings.Contains(got, "no weighted split") {
		t.Errorf("plain route not flagged: %q", got)
	}
	swapped := obj("DestinationRule", map[string]any{"subsets": []any{
		map[string]any{"name": "v1", "labels": map[string]any{"version": "v2"}},
		map[string]any{"name": "v2", "labels": map[string]any{"version": "v1"}}}})
	if got := strings.Join(analyzeRouting(swapped), "|"); got != "DestinationRule x: subset v1 selects version=v2|DestinationRule x: subset v2 selects version=v1" {
		t.Errorf("swapped subsets: %q", got)
	}
	pa := obj("PeerAuthentication", map[string]any{"mtls": map[string]any{"mode": "PERMISSIVE"}})
	if got := strings.Join(analyzeRouting(pa), ""); got != "PeerAuthentication x: mTLS mode PERMISSIVE, not STRICT" {
		t.Errorf("PA: %q", got)
	}
}

// Every proxy is judged by the istiod serving its cluster; none is left
// out for want of one.
func TestByControlPlane(t *testing.T) {
	cl := func(name, cp string, primary bool) *clusters.Cluster {
		return &clusters.Cluster{Cluster: topology.Cluster{Name: name, ControlPlane: cp, Primary: primary}}
	}
	pr := []*clusters.Cluster{cl("cluster1", "cluster1", true), cl("cluster2", "cluster1", false), cl("cluster3", "cluster1", false)}
	got, err := byControlPlane(map[string]string{"a": "cluster1", "b": "cluster2", "c": "cluster3"}, pr)
	if err != nil || len(got) != 1 || len(got["cluster1"]) != 3 {
		t.Errorf("primary-remotes: %v, %v", got, err)
	}
	mp := []*clusters.Cluster{cl("cluster1", "cluster1", true), cl("cluster2", "cluster2", true)}
	got, err = byControlPlane(map[string]string{"a": "cluster1", "b": "cluster2"}, mp)
	if err != nil || got["cluster1"]["a"] != "cluster1" || got["cluster2"]["b"] != "cluster2" {
		t.Errorf("multi-primary: %v, %v", got, err)
	}
	orphan := []*clusters.Cluster{cl("cluster1", "cluster1", true), cl("cluster2", "", false)}
	if _, err := byControlPlane(map[string]string{"b": "cluster2"}, orphan); err == nil || !strings.Contains(err.Error(), "no primary of the mesh") {
		t.Errorf("a cluster without a control plane: %v", err)
	}
	if _, err := byControlPlane(map[string]string{"x": "cluster9"}, mp); err == nil {
		t.Error("a pod of an unknown cluster accepted")
	}
	if _, err := byControlPlane(nil, mp); err == nil {
		t.Error("no proxies judged")
	}
}
