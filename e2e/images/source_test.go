package images

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestMirrorPatchIsValidTOMLForEveryRegistry(t *testing.T) {
	patch := MirrorPatch(RegistryEndpoint())
	var doc map[string]any
	if _, err := toml.Decode(patch, &doc); err != nil {
		t.Fatalf("patch is not TOML: %v\n%s", err, patch)
	}
	mirrors := doc["plugins"].(map[string]any)["io.containerd.grpc.v1.cri"].(map[string]any)["registry"].(map[string]any)["mirrors"].(map[string]any)
	for _, r := range MirroredRegistries {
		m, ok := mirrors[r].(map[string]any)
		if !ok {
			t.Fatalf("no mirror for %s in\n%s", r, patch)
		}
		ep := m["endpoint"].([]any)
		if len(ep) != 1 || ep[0] != "http://meshconform-registry:5000" {
			t.Errorf("%s endpoint = %v", r, ep)
		}
	}
}

func TestLookupKubeRelease(t *testing.T) {
	r, err := LookupKubeRelease("1.33.13")
	if err != nil {
		t.Fatal(err)
	}
	if r.minor() != "33" {
		t.Errorf("minor = %q", r.minor())
	}
	if r.Version != "v1.33.13" || r.EtcdTag != "3.5.24-0" || r.PauseTag != "3.10" {
		t.Errorf("release %+v", r)
	}
	_, err = LookupKubeRelease("v1.99.0")
	if err == nil || !strings.Contains(err.Error(), "unknown Kubernetes version") || !strings.Contains(err.Error(), "v1.33.13") {
		t.Errorf("want an error listing known versions, got %v", err)
	}
}

func TestRecipeRepoTagStripsRegistryHost(t *testing.T) {
	cases := map[string][2]string{
		"registry.k8s.io/coredns/coredns:v1.12.0": {"coredns/coredns", "v1.12.0"},
		"docker.io/istio/pilot:1.29.2":            {"istio/pilot", "1.29.2"},
		"localhost:5000/x:y":                      {"x", "y"},
		"meshconform/app:v1":                      {"meshconform/app", "v1"},
	}
	for ref, want := range cases {
		repo, tag := recipe{ref: ref}.repoTag()
		if repo != want[0] || tag != want[1] {
			t.Errorf("%s → %s %s, want %v", ref, repo, tag, want)
		}
	}
}

func TestNodeContainerdConfigRestrictsOOMScoreAdj(t *testing.T) {
	cfg := nodeContainerdConfig("registry.k8s.io/pause:3.10")
	var doc map[string]any
	if _, err := toml.Decode(cfg, &doc); err != nil {
		t.Fatal(err)
	}
	cri := doc["plugins"].(map[string]any)["io.containerd.grpc.v1.cri"].(map[string]any)
	if cri["restrict_oom_score_adj"] != true || cri["sandbox_image"] != "registry.k8s.io/pause:3.10" {
		t.Errorf("cri = %v", cri)
	}
}

// An upstream run after a local one must never pull the local source's
// Envoy-less docker.io/istio/proxyv2 (the registry's storage survives in the
// cache): the nodes get no mirror of any public registry, only the local
// registry by its own name, and the sample apps are named after it.
func TestUpstreamShadowsNoOfficialImage(t *testing.T) {
	r, _ := LookupKubeRelease(DefaultKubernetesVersion)
	got := (&Upstream{Release: r}).clusterImages()
	if !strings.HasPrefix(got.Node, "kindest/node:v1.33.") {
		t.Errorf("node image %s", got.Node)
	}
	for _, p := range got.ContainerdConfigPatches {
		var cfg map[string]any
		if _, err := toml.Decode(p, &cfg); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(p, "mirrors") {
			t.Errorf("upstream patch mirrors a registry:\n%s", p)
		}
	}
	if len(got.NodeFiles) != 1 {
		t.Fatalf("node files = %v", got.NodeFiles)
	}
	for path, hosts := range got.NodeFiles {
		for _, public := range MirroredRegistries {
			if strings.Contains(path, "/"+public+"/") {
				t.Errorf("hosts file for public registry %s: %s", public, path)
			}
		}
		if path != "/etc/containerd/certs.d/meshconform-registry:5000/hosts.toml" {
			t.Errorf("hosts file %s", path)
		}
		var h struct {
			Server string
			Host   map[string]struct{ Capabilities []string }
		}
		if _, err := toml.Decode(hosts, &h); err != nil {
			t.Fatalf("hosts.toml: %v\n%s", err, hosts)
		}
		if h.Server != "http://meshconform-registry:5000" {
			t.Errorf("hosts.toml = %+v", h)
		}
	}
	if got := RegistryName("docker.io/meshconform/meshapp:abc"); got != "meshconform-registry:5000/meshconform/meshapp:abc" {
		t.Errorf("app reference %s", got)
	}
}
