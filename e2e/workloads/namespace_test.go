package workloads

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/e2e-framework/klient"
)

// Every namespace a run creates carries the run's label beside its own
// labels; with no run (empty labels) it carries its own only.
func TestCreateNamespaceStampsTheRunLabels(t *testing.T) {
	var (
		mu      sync.Mutex
		created []map[string]string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reply := func(v any) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(v)
		}
		switch {
		case r.URL.Path == "/api":
			reply(&metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
		case r.URL.Path == "/apis":
			reply(&metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}})
		case r.URL.Path == "/api/v1":
			reply(&metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "v1",
				APIResources: []metav1.APIResource{{Name: "namespaces", Kind: "Namespace", Verbs: metav1.Verbs{"create"}}}})
		case r.URL.Path == "/api/v1/namespaces" && r.Method == http.MethodPost:
			raw, _ := io.ReadAll(r.Body)
			var ns struct {
				Metadata struct {
					Labels map[string]string `json:"labels"`
				} `json:"metadata"`
			}
			_ = json.Unmarshal(raw, &ns)
			mu.Lock()
			created = append(created, ns.Metadata.Labels)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write(raw)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := klient.New(&rest.Config{Host: srv.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := CreateNamespace(t.Context(), c, ForRun("r1"), "apps", map[string]string{"istio-injection": "enabled"}); err != nil {
		t.Fatal(err)
	}
	if err := CreateNamespace(t.Context(), c, ForRun(""), "plain", nil); err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{{RunLabel: "r1", "istio-injection": "enabled"}, {}}
	if len(created) != len(want) {
		t.Fatalf("created %v", created)
	}
	for i := range want {
		if !maps.Equal(created[i], want[i]) {
			t.Errorf("namespace %d labels %v, want %v", i, created[i], want[i])
		}
	}
}
