package harness

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/e2e-framework/klient"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// A brought cluster that has one of the apps' namespaces already is
// refused at attach, naming it (and the run that left it, if one did),
// before the run creates anything; a cluster without them passes. What it
// must not do: take a user's namespace of that name for the run's (and
// delete it after), or fail the run halfway, after an install.
func TestCheckNamespacesFree(t *testing.T) {
	existing := map[string]map[string]string{
		"production": nil,
		"outside":    {workloads.RunLabel: "20261206t120000-abc123"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reply := func(v any) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(v)
		}
		switch r.URL.Path {
		case "/api":
			reply(&metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
			return
		case "/apis":
			reply(&metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}})
			return
		case "/api/v1":
			reply(&metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "v1",
				APIResources: []metav1.APIResource{{Name: "namespaces", Kind: "Namespace", Verbs: metav1.Verbs{"get"}}}})
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, "/api/v1/namespaces/")
		labels, found := existing[name]
		if !ok || !found {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(&metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Reason: metav1.StatusReasonNotFound, Code: http.StatusNotFound})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&corev1.Namespace{TypeMeta: metav1.TypeMeta{Kind: "Namespace", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
	}))
	t.Cleanup(srv.Close)
	c, err := klient.New(&rest.Config{Host: srv.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	cl := &clusters.Cluster{Cluster: topology.Cluster{Name: "east"}, Client: c}
	if err := checkNamespacesFree(t.Context(), cl, []string{"verify-injection", "apps-2"}); err != nil {
		t.Errorf("free namespaces refused: %v", err)
	}
	err = checkNamespacesFree(t.Context(), cl, []string{"production", "outside", "verify-injection"})
	for _, want := range []string{"cluster east already has namespace production, outside (left by meshconform run 20261206t120000-abc123)", "(production, outside, verify-injection)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to say %q", err, want)
		}
	}
}
