package topology

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeBrought(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "acme.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Any names, any contexts, cluster IDs given or not; the one primary
// serves a remote that names none.
func TestLoadBrought(t *testing.T) {
	b, err := LoadBrought(writeBrought(t, `
istiodReplicas: 2
clusters:
- {name: east, context: "arn:aws:eks:us-east-1:1:cluster/east", primary: true, clusterID: east-1, istioNamespace: acme-mesh}
- {name: west, context: gke_proj_us-west1_west}
`))
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "acme" || b.IstiodReplicas != 2 || len(b.Clusters) != 2 {
		t.Fatalf("%+v", b.Topology)
	}
	east, west := b.Clusters[0], b.Clusters[1]
	if east.ClusterID != "east-1" || !east.Primary || east.ControlPlane != "east" || !east.ClusterIDGiven {
		t.Errorf("east = %+v", east)
	}
	if west.ClusterID != "west" || west.Primary || west.ControlPlane != "east" || west.ClusterIDGiven {
		t.Errorf("west = %+v", west)
	}
	// A namespace named is kept; one not named is Istio's default.
	if east.IstioNamespace() != "acme-mesh" || west.IstioNamespace() != DefaultIstioNamespace {
		t.Errorf("istio namespaces = %s, %s", east.IstioNamespace(), west.IstioNamespace())
	}
	if b.Contexts["west"] != "gke_proj_us-west1_west" {
		t.Errorf("contexts = %v", b.Contexts)
	}
}

func TestLoadBroughtRefusesBadFiles(t *testing.T) {
	for name, tc := range map[string]struct{ body, want string }{
		"unknown field":      {"clusters:\n- {name: a, context: x, primary: true, contxt: y}\n", "unknown field"},
		"name not a label":   {"clusters:\n- {name: East_1, context: x, primary: true}\n", `name "East_1"`},
		"no context":         {"clusters:\n- {name: a, primary: true}\n", "names no context"},
		"one context twice":  {"clusters:\n- {name: a, context: x, primary: true}\n- {name: b, context: x}\n", `both name context "x"`},
		"no primary":         {"clusters:\n- {name: a, context: x}\n", "no primary"},
		"remote of a remote": {"clusters:\n- {name: a, context: x, primary: true}\n- {name: p, context: z, primary: true}\n- {name: b, context: y, controlPlane: c}\n- {name: c, context: w, controlPlane: a}\n", `controlPlane "c" is not a primary`},
		"no clusters":        {"clusters: []\n", "no clusters"},
		"one ID twice":       {"clusters:\n- {name: a, context: x, primary: true, clusterID: b}\n- {name: b, context: y}\n", `both have Istio cluster ID "b"`},
		"an ID not a label":  {"clusters:\n- {name: a, context: x, primary: true, clusterID: A_1}\n", `clusterID "A_1"`},
		"a bad namespace":    {"clusters:\n- {name: a, context: x, primary: true, istioNamespace: Istio.System}\n", `istioNamespace "Istio.System"`},
	} {
		if _, err := LoadBrought(writeBrought(t, tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	if _, err := LoadBrought(filepath.Join(t.TempDir(), "none.yaml")); err == nil {
		t.Error("a missing file read")
	}
}
