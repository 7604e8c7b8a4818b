package harness

import (
	"strings"
	"testing"
)

func TestConfigFromEnvDefaults(t *testing.T) {
	for _, k := range []string{"MESHCONFORM_IMAGE_SOURCE", "MESHCONFORM_KUBERNETES_VERSION", "MESHCONFORM_ISTIO_VERSION", "MESHCONFORM_ISTIO_REVISION", "MESHCONFORM_REGISTRY_PORT", "MESHCONFORM_ISTIOCTL"} {
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
