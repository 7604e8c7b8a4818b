package harness

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/meshconform/meshconform/e2e/topology"
)

// A dead run's credential directory goes; a live run's (this process's)
// and what is not ours stay.
func TestSweepStale(t *testing.T) {
	dir := t.TempDir()
	dead := filepath.Join(dir, credentialsPrefix+"123.999999999.tmp")
	live := filepath.Join(dir, credentialsPrefix+"456."+strconv.Itoa(os.Getpid())+".tmp")
	other := filepath.Join(dir, "someone-else.1.tmp")
	for _, d := range []string{dead, live, other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "kubeconfig"), []byte("token: secret"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sweepStale(dir, credentialsPrefix)
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("a dead run's credentials survived the sweep: %v", err)
	}
	for _, d := range []string{live, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was swept: %v", d, err)
		}
	}
}

// An istioNamespace describes a mesh found on the clusters: judged with
// an existing mesh, refused (before anything is made) with an install,
// which puts Istio in istio-system whatever the file says.
func TestCheckIstioNamespaces(t *testing.T) {
	p := filepath.Join(t.TempDir(), "acme.yaml")
	if err := os.WriteFile(p, []byte("clusters:\n- {name: east, context: e, primary: true, istioNamespace: acme-mesh}\n- {name: west, context: w}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := topology.LoadBrought(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkIstioNamespaces(MeshExisting, b.Topology); err != nil {
		t.Errorf("existing mesh: %v", err)
	}
	if err := checkIstioNamespaces(MeshInstall, b.Topology); err == nil || !strings.Contains(err.Error(), "cluster east: the clusters file names istioNamespace acme-mesh") {
		t.Errorf("install: err = %v", err)
	}
	plain := &topology.Topology{Clusters: []topology.Cluster{{Name: "cluster1", Primary: true}}}
	if err := checkIstioNamespaces(MeshInstall, plain); err != nil {
		t.Errorf("install without istioNamespace: %v", err)
	}
}
