package verify

import (
	"reflect"
	"testing"
	"time"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// Waiting must carry every other exported field of the mesh: a view that
// dropped one (a field added later and forgotten here) would judge another
// mesh, or none, with the waits it was asked for.
func TestWaitingCarriesTheMesh(t *testing.T) {
	p, a := &clusters.Cluster{Kubeconfig: "/k/1"}, &clusters.Cluster{Kubeconfig: "/k/2"}
	m := &Mesh{
		Model:        mesh.Model{Clusters: []*clusters.Cluster{p, a}, Revision: "canary", TrustDomain: "example.org"},
		Primary:      p,
		Away:         a,
		Istio:        &harness.Istio{Revision: "canary"},
		RunLabels:    workloads.RunLabels{"meshconform.io/run": "r1"},
		Frontends:    map[string]string{"cluster1": "http://127.0.0.1:1"},
		Apps:         AppIntent{BackendAccount: "backend", FrontendAccount: "frontend"},
		Settle:       DefaultSettle,
		RootCertWait: DefaultRootCertWait,
	}
	v := m.Waiting(5*time.Second, 10*time.Second)
	if v.Settle != 5*time.Second || v.RootCertWait != 10*time.Second {
		t.Errorf("view waits %s, %s; want 5s, 10s", v.Settle, v.RootCertWait)
	}
	if m.Settle != DefaultSettle || m.RootCertWait != DefaultRootCertWait {
		t.Errorf("the mesh's own waits changed to %s, %s", m.Settle, m.RootCertWait)
	}
	mv, vv := reflect.ValueOf(m).Elem(), reflect.ValueOf(v).Elem()
	for i := 0; i < mv.NumField(); i++ {
		f := mv.Type().Field(i)
		if !f.IsExported() || f.Name == "Settle" || f.Name == "RootCertWait" {
			continue
		}
		if mv.Field(i).IsZero() {
			t.Fatalf("field %s is unset in the test's mesh: set it, so that the view is checked to carry it", f.Name)
		}
		if !reflect.DeepEqual(mv.Field(i).Interface(), vv.Field(i).Interface()) {
			t.Errorf("the view does not carry %s", f.Name)
		}
	}
}
