package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meshconform/meshconform/e2e/bundle"
)

// command.txt must reproduce the run: every setting once, quoted where a
// shell would split it, and the artifacts directory (the run's own) left
// out so a rerun does not overwrite the bundle's source.
func TestReproduce(t *testing.T) {
	env := []string{"HOME=/root", "MESHCONFORM_MESH=existing", "MESHCONFORM_ARTIFACTS=/tmp/a", "MESHCONFORM_CONTEXTS=cluster1=a b"}
	got := reproduce(env, []string{"/usr/bin/meshconform", "test", "--label-filter", "conformance && !mtls"})
	want := `MESHCONFORM_MESH=existing 'MESHCONFORM_CONTEXTS=cluster1=a b' meshconform test --label-filter 'conformance && !mtls'`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if shellQuote("it's") != `'it'\''s'` || shellQuote("") != "''" {
		t.Fatal("shellQuote")
	}
}

// A command's settings: its flags, then the environment, then what `up`
// kept; the process's environment is left as it was.
func TestSettingsPrecedence(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	if err := os.MkdirAll(upDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	kept := "MESHCONFORM_KUBECONFIG=/kept/cluster1.kubeconfig\nMESHCONFORM_CONTEXTS=cluster1=kind-cluster1,cluster2=kind-cluster2\nMESHCONFORM_MESH=install\nMESHCONFORM_TOPOLOGY=primary-remote\n"
	if err := os.WriteFile(filepath.Join(upDir(), "env"), []byte(kept), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MESHCONFORM_TOPOLOGY", "multi-primary")
	t.Setenv("MESHCONFORM_MESH", "")
	t.Setenv("MESHCONFORM_KUBECONFIG", "")
	t.Setenv("MESHCONFORM_CONTEXTS", "")
	t.Setenv("MESHCONFORM_ARTIFACTS", "")
	s := newSettings()
	if err := useKeptClusters(s); err != nil {
		t.Fatal(err)
	}
	s.flag("MESHCONFORM_MESH", "existing")
	s.flag("MESHCONFORM_ARTIFACTS", "")
	cfg, err := s.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mesh != "existing" || cfg.Topology != "multi-primary" || cfg.Kubeconfig != "/kept/cluster1.kubeconfig" || cfg.Contexts["cluster2"] != "kind-cluster2" {
		t.Fatalf("flag, then environment, then kept: got %+v", cfg)
	}
	if !strings.HasSuffix(cfg.ArtifactsDir, "/artifacts") {
		t.Fatalf("an empty flag is no setting: artifacts %s", cfg.ArtifactsDir)
	}
	for _, k := range []string{"MESHCONFORM_MESH", "MESHCONFORM_KUBECONFIG", "MESHCONFORM_CONTEXTS"} {
		if v := os.Getenv(k); v != "" {
			t.Errorf("%s=%s written to the environment", k, v)
		}
	}
}

// The suite gets one MESHCONFORM_* variable: the settings file.
func TestSuiteEnv(t *testing.T) {
	got := suiteEnv([]string{"HOME=/root", "MESHCONFORM_MESH=existing", "MESHCONFORM_SETTINGS=/old.json", "PATH=/bin"}, "/a/settings.json")
	want := []string{"HOME=/root", "PATH=/bin", "MESHCONFORM_SETTINGS=/a/settings.json"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// The settings file goes into a run's bundle: it must pass the secret
// guard (a kubeconfig by its path, never its contents).
func TestSettingsFileBundles(t *testing.T) {
	s := newSettings()
	for k, v := range map[string]string{
		"MESHCONFORM_KUBECONFIG": "/home/me/.kube/config", "MESHCONFORM_CONTEXTS": "cluster1=a,cluster2=b",
		"MESHCONFORM_MESH": "existing", "MESHCONFORM_ISTIO_REVISION": "canary",
	} {
		s.flag(k, v)
	}
	cfg, err := s.config()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := cfg.WriteFile(filepath.Join(dir, settingsJSON)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bundle.Write(bundle.Options{ArtifactsDir: dir, OutDir: t.TempDir(), Command: "meshconform test"}); err != nil {
		t.Fatalf("settings file not bundled: %v", err)
	}
}

// The upgrade suite runs on clusters a user brings when it may install
// Istio there (--mesh install), and is refused, before anything runs, on a
// mesh already installed: it would install a second control plane beside
// the user's and remove both. The seeded-fault suite is refused on any
// brought cluster.
func TestBroughtClustersSuites(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- {name: a, cluster: {server: "https://127.0.0.1:6443"}}
- {name: b, cluster: {server: "https://127.0.0.1:6444"}}
users:
- {name: u, user: {token: x}}
contexts:
- {name: a, context: {cluster: a, user: u}}
- {name: b, context: {cluster: b, user: u}}
`
	if err := os.WriteFile(kc, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_STATE_HOME", dir)
	for _, k := range []string{"MESHCONFORM_MESH", "MESHCONFORM_KUBECONFIG", "MESHCONFORM_CONTEXTS", "MESHCONFORM_CLUSTERS", "MESHCONFORM_TOPOLOGY", "MESHCONFORM_SETTINGS"} {
		t.Setenv(k, "")
	}
	t.Setenv("MESHCONFORM_FRONTEND_ACCESS", "")
	for _, c := range []struct {
		suite, mesh, refused string
	}{
		{"upgrade", "existing", "needs clusters without Istio and --mesh install"},
		{"upgrade", "install", "MESHCONFORM_FRONTEND_ACCESS=loadbalancer"},
		{"faults", "install", "breaks the mesh on purpose"},
		{"resilience", "install", "breaks the mesh on purpose"},
		{"conformance", "existing", ""},
	} {
		if c.suite == "upgrade" && c.mesh == "install" {
			// By default a brought cluster's frontends are port-forwarded.
			if _, _, err := (testFlags{kubeconfig: kc, contexts: "cluster1=a,cluster2=b", mesh: "install", suite: "upgrade", artifacts: filepath.Join(dir, "pf")}).checked(); err == nil || !strings.Contains(err.Error(), c.refused) {
				t.Errorf("--suite upgrade with port-forwarded frontends: %v", err)
			}
			t.Setenv("MESHCONFORM_FRONTEND_ACCESS", "loadbalancer")
			c.refused = ""
		}
		f := testFlags{kubeconfig: kc, contexts: "cluster1=a,cluster2=b", mesh: c.mesh, suite: c.suite, artifacts: filepath.Join(dir, "artifacts-"+c.suite+"-"+c.mesh)}
		_, suite, err := f.checked()
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("--suite %s --mesh %s refused: %v", c.suite, c.mesh, err)
		case c.refused == "" && suite != c.suite:
			t.Errorf("--suite %s --mesh %s ran suite %q", c.suite, c.mesh, suite)
		case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("--suite %s --mesh %s: error %v, want one saying %q", c.suite, c.mesh, err, c.refused)
		}
	}
}
