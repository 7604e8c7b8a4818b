package clusters

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshconform/meshconform/e2e/workloads"
)

// Every write of the run must carry its field manager: the API server
// records a write that names none under its client's user agent (up to the
// first '/'), and a brought cluster's audit tells the run's changes from
// others' by it. A client with client-go's default agent would write as
// "<binary>.test" or "meshconform" by chance of the binary's name.
func TestNewClientWritesAsTheFieldManager(t *testing.T) {
	agents := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case agents <- r.UserAgent():
		default:
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	raw := "apiVersion: v1\nkind: Config\nclusters:\n- {name: c, cluster: {server: \"" + srv.URL + "\"}}\nusers:\n- {name: u, user: {token: x}}\ncontexts:\n- {name: c, context: {cluster: c, user: u}}\ncurrent-context: c\n"
	if err := os.WriteFile(kc, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(kc)
	if err != nil {
		t.Fatal(err)
	}
	var ns corev1.Namespace
	_ = c.Resources().Get(t.Context(), "x", "", &ns)
	if got := <-agents; got != workloads.FieldManager {
		t.Errorf("user agent %q, want %q", got, workloads.FieldManager)
	}
}
