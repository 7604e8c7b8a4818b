package harness

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
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
		"namespace label the run's":  {"MESHCONFORM_NAMESPACE_LABELS", "pod-security.kubernetes.io/enforce=privileged", "MESHCONFORM_NAMESPACE_LABELS: namespace label pod-security.kubernetes.io/enforce is the run's own"},
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

// The upgrade suite on the upstream source: each version's istioctl given
// (MESHCONFORM_ISTIOCTLS) or built from a release this machine knows. A
// version it cannot build and nobody gave an istioctl for is refused before
// anything is created, naming the variable; MESHCONFORM_ISTIOCTL stays the
// run's own version's.
func TestUpgradeIstioctlsOnTheUpstreamSource(t *testing.T) {
	up := map[string]string{"MESHCONFORM_IMAGE_SOURCE": "upstream", "MESHCONFORM_UPGRADE_FROM": "1.28.1", "MESHCONFORM_UPGRADE_TO": "1.29.2", "MESHCONFORM_UPGRADE_METHODS": "canary,in-place"}
	if _, err := ConfigFrom(lookup(up)); err == nil || !strings.Contains(err.Error(), "MESHCONFORM_ISTIOCTLS=1.28.1=PATH") {
		t.Fatalf("1.28.1 (not buildable here) without an istioctl: %v", err)
	}
	up["MESHCONFORM_ISTIOCTLS"] = "v1.28.1=/opt/istio-1.28.1/bin/istioctl, 1.29.2 = rel/istioctl"
	c, err := ConfigFrom(lookup(up))
	if err != nil {
		t.Fatal(err)
	}
	if c.IstioctlFor("1.28.1") != "/opt/istio-1.28.1/bin/istioctl" || !filepath.IsAbs(c.IstioctlFor("1.29.2")) {
		t.Errorf("istioctls = %v", c.Istioctls)
	}
	// The run's own version: MESHCONFORM_ISTIOCTLS first, then
	// MESHCONFORM_ISTIOCTL; another version never takes the latter.
	c.IstioVersion, c.Istioctl, c.Istioctls = "1.29.2", "/bin/istioctl", nil
	if c.IstioctlFor("1.29.2") != "/bin/istioctl" || c.IstioctlFor("1.27.0") != "" {
		t.Errorf("IstioctlFor with MESHCONFORM_ISTIOCTL only: %q, %q", c.IstioctlFor("1.29.2"), c.IstioctlFor("1.27.0"))
	}
	// The local source builds every version it installs: an istioctl
	// given does not make an unknown release buildable.
	up["MESHCONFORM_IMAGE_SOURCE"] = "local"
	if _, err := ConfigFrom(lookup(up)); err == nil {
		t.Error("the local source accepted an upgrade from a release it cannot build")
	}
	if _, err := ConfigFrom(lookup(map[string]string{"MESHCONFORM_ISTIOCTLS": "1.29.2"})); err == nil || !strings.Contains(err.Error(), "MESHCONFORM_ISTIOCTLS") {
		t.Errorf("a version without a path: %v", err)
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

// lookup is a getenv over a map, for ConfigFrom without the environment.
func lookup(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// Settings unlike the defaults in every field a flag or variable sets.
var broughtSettings = map[string]string{
	"MESHCONFORM_IMAGE_SOURCE":     "local",
	"MESHCONFORM_ARTIFACTS":        "/tmp/meshconform-artifacts",
	"MESHCONFORM_CACHE":            "/tmp/meshconform-cache",
	"MESHCONFORM_CACHE_LIMIT":      "1.5GiB",
	"MESHCONFORM_REGISTRY_PORT":    "5099",
	"MESHCONFORM_ISTIO_VERSION":    "v1.27.0",
	"MESHCONFORM_ISTIO_REVISION":   "canary-1",
	"MESHCONFORM_ISTIOCTL":         "/opt/istioctl",
	"MESHCONFORM_KUBECONFIG":       "/home/me/.kube/a:/home/me/.kube/b",
	"MESHCONFORM_CONTEXTS":         "cluster1=kind-cluster1, cluster2=prod-west",
	"MESHCONFORM_MESH":             "existing",
	"MESHCONFORM_FRONTEND_ACCESS":  "port-forward",
	"MESHCONFORM_TOPOLOGY":         "multi-primary",
	"MESHCONFORM_ISTIOD_REPLICAS":  "3",
	"MESHCONFORM_UPGRADE_FROM":     "1.26.0",
	"MESHCONFORM_UPGRADE_TO":       "1.27.0",
	"MESHCONFORM_UPGRADE_METHODS":  "in-place",
	"MESHCONFORM_NAMESPACE_LABELS": "team=mesh",
	"MESHCONFORM_IMAGE_REGISTRY":   "reg.acme.example:5443/mc",
}

// The settings file holds a Config exactly: what the CLI checked is what
// the suite runs with.
func TestSettingsFileRoundTrip(t *testing.T) {
	for name, vars := range map[string]map[string]string{"defaults": {}, "brought": broughtSettings} {
		t.Run(name, func(t *testing.T) {
			want, err := ConfigFrom(lookup(vars))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "settings.json")
			if err := want.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			got, err := ReadConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("read back\n%+v\nwrote\n%+v", got, want)
			}
		})
	}
}

func TestConfigFromReadsOnlyItsLookup(t *testing.T) {
	t.Setenv("MESHCONFORM_MESH", "reuse")
	t.Setenv("MESHCONFORM_TOPOLOGY", "nowhere")
	c, err := ConfigFrom(lookup(broughtSettings))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mesh != MeshExisting || c.Topology != "multi-primary" || c.IstioVersion != "1.27.0" || c.CacheLimit != 3<<29 ||
		c.Contexts["cluster2"] != "prod-west" || c.IstiodReplicas != 3 || len(c.Upgrade.Methods) != 1 {
		t.Fatalf("%+v", c)
	}
}

// With MESHCONFORM_SETTINGS set, the file is the run's settings, whole:
// no other MESHCONFORM_* variable counts, not even a bad one.
func TestLoadConfigSettingsFileWins(t *testing.T) {
	want, err := ConfigFrom(lookup(broughtSettings))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "settings.json")
	if err := want.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	t.Setenv(SettingsEnv, path)
	t.Setenv("MESHCONFORM_MESH", "reuse")
	t.Setenv("MESHCONFORM_ISTIO_VERSION", "0.1")
	t.Setenv("MESHCONFORM_KUBECONFIG", "")
	t.Setenv("MESHCONFORM_TOPOLOGY", "primary-remote")
	got, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%+v\nwant the file's\n%+v", got, want)
	}
}

// Without MESHCONFORM_SETTINGS (go test, make e2e) the variables count.
func TestLoadConfigWithoutSettingsReadsVariables(t *testing.T) {
	t.Setenv(SettingsEnv, "")
	t.Setenv("MESHCONFORM_TOPOLOGY", "primary-remotes")
	c, err := LoadConfig()
	if err != nil || c.Topology != "primary-remotes" {
		t.Fatalf("%+v, %v", c, err)
	}
	t.Setenv("MESHCONFORM_MESH", "reuse")
	if _, err := LoadConfig(); err == nil {
		t.Fatal("a bad MESHCONFORM_MESH accepted")
	}
}

// A settings file gets the variables' checks, and no field is guessed.
func TestReadConfigRejectsBadFiles(t *testing.T) {
	good, err := ConfigFrom(lookup(broughtSettings))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(good)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	for name, tc := range map[string]struct{ file, want string }{
		"unknown field":     {edit(func(m map[string]any) { m["istioVersoin"] = "1.27.0" }), "unknown field"},
		"bad source":        {edit(func(m map[string]any) { m["source"] = "hub" }), "MESHCONFORM_IMAGE_SOURCE"},
		"bad mesh":          {edit(func(m map[string]any) { m["mesh"] = "reuse" }), "MESHCONFORM_MESH"},
		"no contexts":       {edit(func(m map[string]any) { delete(m, "contexts") }), "MESHCONFORM_CONTEXTS is not"},
		"bad port":          {edit(func(m map[string]any) { m["registryPort"] = 0 }), "is not a port number"},
		"bad replicas":      {edit(func(m map[string]any) { m["istiodReplicas"] = 9 }), "MESHCONFORM_ISTIOD_REPLICAS=9"},
		"bad label":         {edit(func(m map[string]any) { m["namespaceLabels"] = map[string]any{"a b": "c"} }), "MESHCONFORM_NAMESPACE_LABELS"},
		"no upgrade method": {edit(func(m map[string]any) { m["upgrade"] = map[string]any{"from": "1.26.0", "to": "1.27.0"} }), "unknown method"},
		"relative dir":      {edit(func(m map[string]any) { m["artifactsDir"] = "artifacts" }), "want an absolute path"},
		"two values":        {string(raw) + "{}", "more than one JSON value"},
		"not JSON":          {"MESHCONFORM_MESH=existing", "invalid character"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "settings.json")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadConfig(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), SettingsEnv) {
				t.Fatalf("want an error naming %s and containing %q, got %v", SettingsEnv, tc.want, err)
			}
		})
	}
	if _, err := ReadConfig(filepath.Join(t.TempDir(), "none.json")); err == nil {
		t.Fatal("a missing settings file accepted")
	}
}

// A clusters file names brought clusters under any names: it gives the
// contexts and the topology, and refuses to be combined with either.
func TestClustersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acme.yaml")
	if err := os.WriteFile(path, []byte("clusters:\n- {name: east, context: ctx-east, primary: true, clusterID: east-1}\n- {name: west, context: ctx-west}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"MESHCONFORM_KUBECONFIG": "/k", "MESHCONFORM_CLUSTERS": path, "MESHCONFORM_MESH": "existing"}
	c, err := ConfigFrom(lookup(vars))
	if err != nil {
		t.Fatal(err)
	}
	if c.Topology != "acme" || c.Contexts["east"] != "ctx-east" || c.Contexts["west"] != "ctx-west" || c.ClustersFile != path {
		t.Fatalf("%+v", c)
	}
	topo, err := c.LoadTopology()
	if err != nil || topo.Clusters[0].ClusterID != "east-1" || !topo.Clusters[0].ClusterIDGiven || topo.Clusters[1].ControlPlane != "east" {
		t.Fatalf("%+v %v", topo, err)
	}
	// Round trip through the settings file, and a file changed since.
	settings := filepath.Join(t.TempDir(), "settings.json")
	if err := c.WriteFile(settings); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadConfig(settings); err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("%+v %v", got, err)
	}
	if err := os.WriteFile(path, []byte("clusters:\n- {name: east, context: other, primary: true}\n- {name: west, context: ctx-west}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadConfig(settings); err == nil || !strings.Contains(err.Error(), "one source of contexts") {
		t.Errorf("a changed clusters file: %v", err)
	}
	for name, extra := range map[string]map[string]string{
		"with contexts":    {"MESHCONFORM_CONTEXTS": "east=x"},
		"with a topology":  {"MESHCONFORM_TOPOLOGY": "multi-primary"},
		"no kubeconfig":    {"MESHCONFORM_KUBECONFIG": ""},
		"a file not there": {"MESHCONFORM_CLUSTERS": path + ".missing"},
	} {
		v := maps.Clone(vars)
		maps.Copy(v, extra)
		if _, err := ConfigFrom(lookup(v)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestUserRegistrySettings(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// ci:s3cret
	pull := write("pull.json", `{"auths": {"reg.acme.example:5443": {"auth": "Y2k6czNjcmV0"}}}`)
	otherPull := write("other.json", `{"auths": {"ghcr.io": {"auth": "Y2k6czNjcmV0"}}}`)
	ca := write("ca.pem", "-----BEGIN CERTIFICATE-----\n")
	brought := map[string]string{
		"MESHCONFORM_KUBECONFIG": "/k", "MESHCONFORM_CONTEXTS": "cluster1=a,cluster2=b", "MESHCONFORM_MESH": "existing",
	}
	with := func(more map[string]string) map[string]string {
		m := maps.Clone(brought)
		maps.Copy(m, more)
		return m
	}

	cfg, err := ConfigFrom(lookup(with(map[string]string{
		"MESHCONFORM_IMAGE_REGISTRY": "reg.acme.example:5443/mc/", "MESHCONFORM_IMAGE_PULL_SECRET": pull, "MESHCONFORM_IMAGE_REGISTRY_CA": ca,
	})))
	if err != nil {
		t.Fatal(err)
	}
	u, err := cfg.UserRegistry()
	if err != nil || u.Prefix != "reg.acme.example:5443/mc" || u.CAFile != ca || u.Auth == nil || !u.Auth.Covers("reg.acme.example:5443") {
		t.Fatalf("UserRegistry = %+v, %v", u, err)
	}
	// The settings (handed to the suite, kept in the bundle) name the
	// file; its content is not in them.
	b, _ := json.Marshal(cfg)
	if strings.Contains(string(b), "Y2k6") || !strings.Contains(string(b), pull) {
		t.Errorf("settings JSON: %s", b)
	}

	none, err := ConfigFrom(lookup(brought))
	if err != nil {
		t.Fatal(err)
	}
	if u, err := none.UserRegistry(); u != nil || err != nil {
		t.Errorf("no registry given: %v, %v", u, err)
	}

	for name, tc := range map[string]struct {
		vars map[string]string
		want string
	}{
		"on clusters meshconform makes": {map[string]string{"MESHCONFORM_IMAGE_REGISTRY": "reg.acme.example"}, "is for clusters you bring"},
		"pull secret alone":             {with(map[string]string{"MESHCONFORM_IMAGE_PULL_SECRET": pull}), "MESHCONFORM_IMAGE_PULL_SECRET without MESHCONFORM_IMAGE_REGISTRY"},
		"CA alone":                      {with(map[string]string{"MESHCONFORM_IMAGE_REGISTRY_CA": ca}), "MESHCONFORM_IMAGE_REGISTRY_CA without"},
		"no host":                       {with(map[string]string{"MESHCONFORM_IMAGE_REGISTRY": "myteam/apps"}), "must be a registry host"},
		"scheme":                        {with(map[string]string{"MESHCONFORM_IMAGE_REGISTRY": "https://reg.acme.example"}), "without a scheme"},
		"secret for another registry":   {with(map[string]string{"MESHCONFORM_IMAGE_REGISTRY": "reg.acme.example:5443", "MESHCONFORM_IMAGE_PULL_SECRET": otherPull}), "not for reg.acme.example:5443"},
		"secret not a config":           {with(map[string]string{"MESHCONFORM_IMAGE_REGISTRY": "reg.acme.example:5443", "MESHCONFORM_IMAGE_PULL_SECRET": ca}), "not a docker config JSON"},
		"secret missing":                {with(map[string]string{"MESHCONFORM_IMAGE_REGISTRY": "reg.acme.example:5443", "MESHCONFORM_IMAGE_PULL_SECRET": filepath.Join(dir, "nope")}), "MESHCONFORM_IMAGE_PULL_SECRET"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ConfigFrom(lookup(tc.vars))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}
