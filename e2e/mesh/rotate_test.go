package mesh

import (
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

const rotateKubeconfig = `apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://172.30.0.3:6443
  name: west
contexts:
- context:
    cluster: west
    user: west
  name: west
current-context: west
users:
- name: west
  user:
    token: OLD-TOKEN
`

// A rotation replaces the token and nothing else; a kubeconfig without a
// token, or no new token, is refused, quoting neither.
func TestWithToken(t *testing.T) {
	out, err := WithToken([]byte(rotateKubeconfig), "NEW-TOKEN")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.AuthInfos["west"].Token; got != "NEW-TOKEN" {
		t.Errorf("token after rotation: %q", got)
	}
	if got := cfg.Clusters["west"].Server; got != "https://172.30.0.3:6443" {
		t.Errorf("server changed to %q", got)
	}
	if strings.Contains(string(out), "OLD-TOKEN") {
		t.Error("the old token is still in the kubeconfig")
	}
	if !HoldsToken(out, "NEW-TOKEN") || HoldsToken(out, "OLD-TOKEN") || HoldsToken(out, "") || HoldsToken([]byte("not: [yaml"), "NEW-TOKEN") {
		t.Error("HoldsToken does not tell the rotated kubeconfig's token")
	}
	noToken := strings.Replace(rotateKubeconfig, "token: OLD-TOKEN", "client-certificate-data: Zm9v", 1)
	if _, err := WithToken([]byte(noToken), "NEW-TOKEN"); err == nil {
		t.Error("a kubeconfig without a token was rotated")
	}
	for _, in := range []string{"", "not: [yaml"} {
		_, err := WithToken([]byte(rotateKubeconfig+in), "")
		if err == nil || strings.Contains(err.Error(), "TOKEN") {
			t.Errorf("no new token: %v", err)
		}
	}
}

// The update of the remote is what istiod logs when it rebuilds it from a
// changed secret; its first add, another cluster's update, and the
// skipped update of an identical secret are not.
func TestClusterUpdated(t *testing.T) {
	updated := "2026-12-06T22:18:11.591957Z\tinfo\tUpdate cluster\tcluster=west-1 secret=istio-system/istio-remote-secret-west-1\n"
	if !ClusterUpdated(updated, "west-1") {
		t.Error("the update of west-1 not seen")
	}
	for _, log := range []string{
		"2026-12-06T22:18:11.591957Z\tinfo\tAdd cluster\tcluster=west-1 secret=istio-system/istio-remote-secret-west-1\n",
		"2026-12-06T22:18:11.591957Z\tinfo\tUpdate cluster\tcluster=west-10 secret=istio-system/istio-remote-secret-west-10\n",
		"2026-12-06T22:18:11.591957Z\tinfo\tskipping update (kubeconfig are identical)\tcluster=west-1 secret=istio-system/istio-remote-secret-west-1\n",
		"",
	} {
		if ClusterUpdated(log, "west-1") {
			t.Errorf("taken for the update of west-1: %q", log)
		}
	}
}

// A TokenReview that failed for the remote's proxies is counted; one for
// another cluster, or istiod's other errors, are not.
func TestAuthFailures(t *testing.T) {
	line := func(id string) string {
		return "2026-12-06T22:01:17.408004Z\terror\tsecurity\tFailed to authenticate client from 10.10.0.1:3519: Authenticator ClientCertAuthenticator: no verified chain is found; Authenticator KubeJWTAuthenticator: failed to validate the JWT from cluster \"" + id + "\": Post \"https://172.30.0.3:6443/apis/authentication.k8s.io/v1/tokenreviews\": dial tcp 172.30.0.3:6443: connect: connection refused\n"
	}
	log := line("west-1") + line("west-10") + line("west-1") + "2026-12-06T22:01:14.906611Z\terror\tremote cluster west-1 failed to sync after 30s\n"
	if n := AuthFailures(log, "west-1"); n != 2 {
		t.Errorf("%d failures for west-1, want 2", n)
	}
	if n := AuthFailures("", "west-1"); n != 0 {
		t.Errorf("%d failures in no log", n)
	}
}
