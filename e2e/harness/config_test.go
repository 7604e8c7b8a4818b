package harness

import (
	"strings"
	"testing"
)

func TestConfigFromEnvDefaults(t *testing.T) {
	for _, k := range []string{"MESHCONFORM_IMAGE_SOURCE", "MESHCONFORM_KUBERNETES_VERSION", "MESHCONFORM_ISTIO_VERSION", "MESHCONFORM_ISTIO_REVISION", "MESHCONFORM_REGISTRY_PORT", "MESHCONFORM_ISTIOCTL", "MESHCONFORM_ARTIFACTS"} {
		t.Setenv(k, "")
	}
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != "local" || c.KubernetesVersion != "v1.33.13" || c.IstioVersion != "1.29.2" || c.RegistryPort != 5001 || c.IstioRevision != "" {
		t.Errorf("defaults = %+v", c)
	}
	if !strings.HasSuffix(c.ArtifactsDir, "/artifacts") {
		t.Errorf("artifacts dir %s", c.ArtifactsDir)
	}
}

func TestConfigFromEnvRejectsBadInput(t *testing.T) {
	cases := map[string]struct{ key, value, want string }{
		"unknown Kubernetes version": {"MESHCONFORM_KUBERNETES_VERSION", "v1.99.0", "unknown Kubernetes version \"v1.99.0\": known versions are v1.33.13"},
		"unknown Istio version":      {"MESHCONFORM_ISTIO_VERSION", "1.28.0", "unknown Istio version \"1.28.0\" for the local image source: buildable versions are 1.26.0, 1.27.0, 1.29.2"},
		"bad source":                 {"MESHCONFORM_IMAGE_SOURCE", "hub", "want \"local\" or \"upstream\""},
		"bad port":                   {"MESHCONFORM_REGISTRY_PORT", "99999", "is not a port number"},
		"bad revision":               {"MESHCONFORM_ISTIO_REVISION", "Canary_1", "a revision is a DNS label"},
		"unbuildable upgrade target": {"MESHCONFORM_UPGRADE_TO", "1.27.5", "unknown Istio version \"1.27.5\""},
		"upgrade method":             {"MESHCONFORM_UPGRADE_METHODS", "rolling", "unknown method \"rolling\""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Setenv(tc.key, tc.value)
			_, err := ConfigFromEnv()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestUpstreamAcceptsAnyIstioVersionWithAnIstioctl(t *testing.T) {
	t.Setenv("MESHCONFORM_IMAGE_SOURCE", "upstream")
	t.Setenv("MESHCONFORM_ISTIO_VERSION", "1.28.0")
	t.Setenv("MESHCONFORM_ISTIOCTL", "/usr/local/bin/istioctl")
	if _, err := ConfigFromEnv(); err != nil {
		t.Fatal(err)
	}
}

// An upgrade Istio does not support is refused with Istio's reason before
// anything is created.
func TestConfigRejectsUnsupportedUpgrade(t *testing.T) {
	t.Setenv("MESHCONFORM_UPGRADE_FROM", "1.27.0")
	t.Setenv("MESHCONFORM_UPGRADE_TO", "1.29.2")
	t.Setenv("MESHCONFORM_UPGRADE_METHODS", "canary,in-place")
	if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "one minor version at a time") {
		t.Fatalf("in-place 1.27.0 → 1.29.2 accepted or refused without the reason: %v", err)
	}
	t.Setenv("MESHCONFORM_UPGRADE_METHODS", "canary")
	if _, err := ConfigFromEnv(); err != nil {
		t.Fatalf("canary 1.27.0 → 1.29.2 is supported: %v", err)
	}
}

func TestParseContexts(t *testing.T) {
	got, err := ParseContexts(" cluster1=kind-cluster1, cluster2 = prod-west ")
	if err != nil || got["cluster1"] != "kind-cluster1" || got["cluster2"] != "prod-west" || len(got) != 2 {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"cluster1", "cluster1=", "=ctx", "cluster1=a,cluster1=b"} {
		if _, err := ParseContexts(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Settings that cannot work together are refused before anything runs.
func TestBringYourOwnSettingsRefused(t *testing.T) {
	for name, c := range map[string]Config{
		"contexts without kubeconfig":   {Mesh: MeshInstall, Contexts: map[string]string{"cluster1": "a"}},
		"kubeconfig without contexts":   {Mesh: MeshInstall, Kubeconfig: "/k"},
		"existing mesh on our clusters": {Mesh: MeshExisting},
		"unknown mesh mode":             {Mesh: "reuse"},
		"keep clusters not ours":        {Mesh: MeshInstall, Kubeconfig: "/k", Contexts: map[string]string{"cluster1": "a"}, KeepClusters: true},
	} {
		if err := c.checkBringYourOwn(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ok := Config{Mesh: MeshExisting, Kubeconfig: "/k", Contexts: map[string]string{"cluster1": "a"}}
	if err := ok.checkBringYourOwn(); err != nil {
		t.Errorf("a valid setting refused: %v", err)
	}
}
