// Package harness wires a run together: settings, topology, image source,
// clusters, teardown and the run's report. Suites call it; it decides
// nothing a spec asserts.
package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/internal/kvlist"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/e2e/upgrade"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// Config is a run's settings. Every field has an environment variable, so
// `make`, `go test` and CI set them the same way; `meshconform test` hands
// its suite the whole value as one file instead (SettingsEnv). No field
// holds a secret: a kubeconfig is named by its path, never copied.
type Config struct {
	// RepoRoot is the repository's root (where go.mod is).
	RepoRoot string `json:"repoRoot"`
	// Source is the image source: local (built here) or upstream.
	Source string `json:"source"` // MESHCONFORM_IMAGE_SOURCE
	// KubernetesVersion of the clusters.
	KubernetesVersion string `json:"kubernetesVersion"` // MESHCONFORM_KUBERNETES_VERSION
	// ArtifactsDir receives reports, logs and dumps.
	ArtifactsDir string `json:"artifactsDir"` // MESHCONFORM_ARTIFACTS
	// CacheDir keeps builds and the registry's storage between runs.
	CacheDir string `json:"cacheDir"` // MESHCONFORM_CACHE
	// CacheLimit is the image cache size past which a teardown prunes what
	// no current recipe uses (0: never).
	CacheLimit int64 `json:"cacheLimit"` // MESHCONFORM_CACHE_LIMIT
	// KeepClusters leaves the clusters (and registry) up after the run, for
	// debugging; the next run replaces them.
	KeepClusters bool `json:"keepClusters"` // MESHCONFORM_KEEP_CLUSTERS=1
	// RegistryPort is the local registry's port on 127.0.0.1.
	RegistryPort int `json:"registryPort"` // MESHCONFORM_REGISTRY_PORT
	// IstioVersion is the Istio release installed.
	IstioVersion string `json:"istioVersion"` // MESHCONFORM_ISTIO_VERSION
	// IstioRevision installs Istio under a revision name ("" = none).
	IstioRevision string `json:"istioRevision"` // MESHCONFORM_ISTIO_REVISION
	// Istioctl is an istioctl binary to use instead of building one (for
	// the upstream source with versions this machine cannot build).
	Istioctl string `json:"istioctl"` // MESHCONFORM_ISTIOCTL
	// Istioctls are istioctl binaries by Istio version (an upgrade's two,
	// on the upstream source): "1.27.0=/opt/istio-1.27.0/bin/istioctl,…".
	// A version without one is built from its Go module when this
	// machine knows the release (IstioctlFor).
	Istioctls map[string]string `json:"istioctls"` // MESHCONFORM_ISTIOCTLS
	// Upgrade is what the upgrade suite upgrades: from, to and methods
	// (MESHCONFORM_UPGRADE_FROM, MESHCONFORM_UPGRADE_TO,
	// MESHCONFORM_UPGRADE_METHODS), checked against what Istio supports.
	Upgrade upgrade.Plan `json:"upgrade"`

	// Bring your own clusters: with Kubeconfig set, the run creates no
	// cluster and builds no node image; it attaches to the clusters these
	// contexts reach, one per cluster of the topology.
	Kubeconfig string            `json:"kubeconfig"` // MESHCONFORM_KUBECONFIG (files joined by ':', as KUBECONFIG)
	Contexts   map[string]string `json:"contexts"`   // MESHCONFORM_CONTEXTS=cluster1=ctxA,cluster2=ctxB
	// ClustersFile describes brought clusters under any names: per
	// cluster its context, role and, optionally, Istio cluster ID
	// (topology.LoadBrought); it replaces MESHCONFORM_TOPOLOGY and
	// MESHCONFORM_CONTEXTS (Contexts is filled from it).
	ClustersFile string `json:"clustersFile,omitempty"` // MESHCONFORM_CLUSTERS
	// Mesh is MeshInstall (the run installs Istio and removes it after) or
	// MeshExisting (the run tests the mesh already installed and creates
	// nothing outside its own namespaces); MESHCONFORM_MESH.
	Mesh string `json:"mesh"`
	// FrontendAccess is how this machine reaches the sample apps'
	// frontends: FrontendLoadBalancer, FrontendPortForward, or FrontendAuto
	// (FrontendVia); MESHCONFORM_FRONTEND_ACCESS.
	FrontendAccess string `json:"frontendAccess"`
	// Topology names the file of kindconfigs/ the run's clusters and roles
	// come from (MESHCONFORM_TOPOLOGY, default topology.DefaultName).
	Topology string `json:"topology"`
	// IstiodReplicas, when not 0, overrides the topology's istiod replicas
	// per primary (MESHCONFORM_ISTIOD_REPLICAS).
	IstiodReplicas int `json:"istiodReplicas"`
	// NamespaceLabels are added to every namespace the run creates: what
	// the user's cluster wants of application namespaces (a policy
	// engine's opt-in, an owner); MESHCONFORM_NAMESPACE_LABELS=k=v,k=v.
	NamespaceLabels map[string]string `json:"namespaceLabels,omitempty"`
	// ImageRegistry is a registry of the user's holding the sample apps
	// (`meshconform images push`), host[:port][/path]: brought clusters pull
	// them from there, and the run needs no registry of its own.
	ImageRegistry string `json:"imageRegistry,omitempty"` // MESHCONFORM_IMAGE_REGISTRY
	// ImagePullSecret is the path of a docker config JSON with the
	// registry's credentials, copied into the run's namespaces as a pull
	// secret; its content never enters the settings, logs or bundle.
	ImagePullSecret string `json:"imagePullSecret,omitempty"` // MESHCONFORM_IMAGE_PULL_SECRET
	// ImageRegistryCA is a PEM file of the CA the registry's certificate
	// chains to, when the system does not trust it: for this machine's
	// own look-ups (the clusters trust it their own way).
	ImageRegistryCA string `json:"imageRegistryCA,omitempty"` // MESHCONFORM_IMAGE_REGISTRY_CA
}

// PodSecurity is the Pod Security level the run's namespaces enforce on
// the apps' pods: restricted where the data plane is proxyless gRPC (the
// local source: the apps and the injected agent pass it), none of the
// run's with Envoy sidecars (the upstream source), whose istio-init needs
// NET_ADMIN unless Istio's CNI plugin is installed, which meshconform
// does not install.
func (c Config) PodSecurity() string {
	if c.Source == images.SourceLocal {
		return workloads.PodSecurityRestricted
	}
	return ""
}

// How the frontends are reached.
const (
	FrontendAuto         = "auto"
	FrontendLoadBalancer = "loadbalancer"
	FrontendPortForward  = "port-forward"
)

// The two mesh modes of a run.
const (
	MeshInstall  = "install"
	MeshExisting = "existing"
)

// FrontendVia is how the frontends are reached: as FrontendAccess says,
// and for FrontendAuto by load balancer on clusters meshconform creates
// (MetalLB, on the Docker network) and by port-forward on clusters a user
// brings, where a LoadBalancer Service would be a cloud load balancer
// created, billed and deleted per run.
func (c Config) FrontendVia() string {
	if c.FrontendAccess != FrontendAuto {
		return c.FrontendAccess
	}
	if c.BringYourOwn() {
		return FrontendPortForward
	}
	return FrontendLoadBalancer
}

// UpgradeRefusal is why the upgrade suite cannot run with these
// settings, or nil: the one place the CLI (before go test) and the suite's
// spec tree read it from.
//   - On clusters a user brings it installs Istio's older version itself,
//     upgrades it and removes it: it needs clusters without Istio, never a
//     mesh already there (it would install a second control plane beside
//     the user's and remove both).
//   - It restarts the frontends under load, and a port-forward (the default
//     on brought clusters) ends with the pod it forwards to: the load would
//     fail for the harness's reason, not the mesh's.
func (c Config) UpgradeRefusal() error {
	switch {
	case c.BringYourOwn() && c.Mesh != MeshInstall:
		return fmt.Errorf("the upgrade suite installs Istio %s itself, upgrades it to %s and removes it: on clusters you bring it needs clusters without Istio and --mesh install (MESHCONFORM_MESH=install), not a mesh already there", c.Upgrade.From, c.Upgrade.To)
	case c.FrontendVia() == FrontendPortForward:
		return errors.New("the upgrade suite restarts the frontends under load, and a port-forward ends with the pod it forwards to: set MESHCONFORM_FRONTEND_ACCESS=loadbalancer (a LoadBalancer Service per cluster, for the run)")
	}
	return nil
}

// BringYourOwn reports whether the run uses clusters the user brought.
func (c Config) BringYourOwn() bool { return c.Kubeconfig != "" }

// UserRegistry is the user's registry the sample apps are pulled from
// (ImageRegistry, with the pull secret's credentials and the CA), nil
// when none is given; an error for settings that cannot work, read
// before anything is created.
func (c Config) UserRegistry() (*images.UserRegistry, error) {
	if c.ImageRegistry == "" {
		for _, f := range []struct{ env, v string }{{pullSecretEnv, c.ImagePullSecret}, {registryCAEnv, c.ImageRegistryCA}} {
			if f.v != "" {
				return nil, fmt.Errorf("%s without %s: they are for the registry the apps are pulled from", f.env, imageRegistryEnv)
			}
		}
		return nil, nil
	}
	if !c.BringYourOwn() {
		return nil, fmt.Errorf("%s is for clusters you bring (--kubeconfig): clusters meshconform creates pull the apps from its own registry", imageRegistryEnv)
	}
	prefix, err := images.ParseRegistryPrefix(c.ImageRegistry)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", imageRegistryEnv, err)
	}
	u := &images.UserRegistry{Prefix: prefix}
	if c.ImageRegistryCA != "" {
		if _, err := os.Stat(c.ImageRegistryCA); err != nil {
			return nil, fmt.Errorf("%s: %w", registryCAEnv, err)
		}
		u.CAFile = c.ImageRegistryCA
	}
	if c.ImagePullSecret != "" {
		b, err := os.ReadFile(c.ImagePullSecret)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pullSecretEnv, err)
		}
		if u.Auth, err = images.ParseDockerConfig(b); err != nil {
			return nil, fmt.Errorf("%s=%s: %w", pullSecretEnv, c.ImagePullSecret, err)
		}
		if !u.Auth.Covers(u.Host()) {
			return nil, fmt.Errorf("%s=%s has credentials for %v, not for %s", pullSecretEnv, c.ImagePullSecret, u.Auth.Registries(), u.Host())
		}
	}
	return u, nil
}

const (
	topologyEnv        = "MESHCONFORM_TOPOLOGY"
	replicasEnv        = "MESHCONFORM_ISTIOD_REPLICAS"
	namespaceLabelsEnv = "MESHCONFORM_NAMESPACE_LABELS"
	imageRegistryEnv   = "MESHCONFORM_IMAGE_REGISTRY"
	pullSecretEnv      = "MESHCONFORM_IMAGE_PULL_SECRET"
	registryCAEnv      = "MESHCONFORM_IMAGE_REGISTRY_CA"
	clustersEnv        = "MESHCONFORM_CLUSTERS"
	istioctlsEnv       = "MESHCONFORM_ISTIOCTLS"
)

// SettingsEnv names a JSON file holding a whole Config (Config.WriteFile):
// the one way `meshconform test` hands its suite the settings it parsed and
// checked. When it is set, LoadConfig reads that file and no other
// MESHCONFORM_* variable: the file is the run's settings, whole.
const SettingsEnv = "MESHCONFORM_SETTINGS"

// LoadConfig is a suite process's settings: the file SettingsEnv names when
// it is set (meshconform test), else the MESHCONFORM_* variables (go test,
// make e2e). A suite calls it once and passes the value on.
func LoadConfig() (Config, error) {
	if path := os.Getenv(SettingsEnv); path != "" {
		return ReadConfig(path)
	}
	return ConfigFromEnv()
}

// LoadTopology reads the run's topology: the brought-clusters file
// (ClustersFile), else Config.Topology from kindconfigs/; with the istiod
// replicas of MESHCONFORM_ISTIOD_REPLICAS, if set.
func (c Config) LoadTopology() (*topology.Topology, error) {
	var t *topology.Topology
	if c.ClustersFile != "" {
		b, err := topology.LoadBrought(c.ClustersFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", clustersEnv, err)
		}
		t = b.Topology
	} else {
		var err error
		if t, err = topology.Load(filepath.Join(c.RepoRoot, "kindconfigs"), c.Topology); err != nil {
			return nil, err
		}
	}
	if c.IstiodReplicas > 0 {
		t.IstiodReplicas = c.IstiodReplicas
	}
	return t, nil
}

// ConfigFromEnv reads the settings from the MESHCONFORM_* variables of this
// process's environment (SettingsEnv aside), with defaults, and rejects bad
// values.
func ConfigFromEnv() (Config, error) { return ConfigFrom(os.Getenv) }

// ConfigFrom reads the settings from getenv, which returns a MESHCONFORM_*
// variable's value ("" when unset: an empty value counts as unset), with
// defaults, and rejects bad values. The CLI passes its flags over the
// environment; nothing is written to the environment.
func ConfigFrom(getenv func(string) string) (Config, error) {
	envOr := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	root, err := RepoRoot()
	if err != nil {
		return Config{}, err
	}
	c := Config{
		RepoRoot:          root,
		Source:            envOr("MESHCONFORM_IMAGE_SOURCE", images.SourceLocal),
		KubernetesVersion: envOr("MESHCONFORM_KUBERNETES_VERSION", images.DefaultKubernetesVersion),
		ArtifactsDir:      envOr("MESHCONFORM_ARTIFACTS", filepath.Join(root, "artifacts")),
		CacheDir:          envOr("MESHCONFORM_CACHE", defaultCacheDir()),
		KeepClusters:      getenv("MESHCONFORM_KEEP_CLUSTERS") == "1",
		RegistryPort:      images.DefaultRegistryPort,
		IstioVersion:      strings.TrimPrefix(envOr("MESHCONFORM_ISTIO_VERSION", images.DefaultIstioVersion), "v"),
		IstioRevision:     getenv("MESHCONFORM_ISTIO_REVISION"),
		Istioctl:          getenv("MESHCONFORM_ISTIOCTL"),
		Kubeconfig:        getenv("MESHCONFORM_KUBECONFIG"),
		Mesh:              envOr("MESHCONFORM_MESH", MeshInstall),
		FrontendAccess:    envOr("MESHCONFORM_FRONTEND_ACCESS", FrontendAuto),
		Topology:          envOr(topologyEnv, topology.DefaultName),
	}
	if v := getenv(replicasEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5 {
			return c, fmt.Errorf("%s=%q: want a number of istiod replicas from 1 to 5", replicasEnv, v)
		}
		c.IstiodReplicas = n
	}
	if c.Contexts, err = ParseContexts(getenv("MESHCONFORM_CONTEXTS")); err != nil {
		return c, err
	}
	if f := getenv(clustersEnv); f != "" {
		if len(c.Contexts) > 0 || getenv(topologyEnv) != "" {
			return c, fmt.Errorf("%s names the clusters, their contexts and roles: give it, or MESHCONFORM_TOPOLOGY and MESHCONFORM_CONTEXTS, not both", clustersEnv)
		}
		if c.ClustersFile, err = filepath.Abs(f); err != nil {
			return c, err
		}
		b, err := topology.LoadBrought(c.ClustersFile)
		if err != nil {
			return c, fmt.Errorf("%s: %w", clustersEnv, err)
		}
		c.Contexts, c.Topology = b.Contexts, b.Name
	}
	if c.NamespaceLabels, err = workloads.ParseNamespaceLabels(getenv(namespaceLabelsEnv)); err != nil {
		return c, fmt.Errorf("%s: %w", namespaceLabelsEnv, err)
	}
	if len(c.NamespaceLabels) == 0 {
		c.NamespaceLabels = nil
	}
	given, err := kvlist.Parse(getenv(istioctlsEnv), "version", "path", false)
	if err != nil {
		return c, fmt.Errorf("%s: %w (e.g. 1.27.0=/opt/istio-1.27.0/bin/istioctl)", istioctlsEnv, err)
	}
	for v, p := range given {
		if c.Istioctls == nil {
			c.Istioctls = map[string]string{}
		}
		// Versions as MESHCONFORM_ISTIO_VERSION takes them: with or
		// without the v.
		if c.Istioctls[strings.TrimPrefix(v, "v")], err = filepath.Abs(p); err != nil {
			return c, err
		}
	}
	c.ImageRegistry = getenv(imageRegistryEnv)
	for _, f := range []struct {
		to  *string
		env string
	}{{&c.ImagePullSecret, pullSecretEnv}, {&c.ImageRegistryCA, registryCAEnv}} {
		if v := getenv(f.env); v != "" {
			if *f.to, err = filepath.Abs(v); err != nil {
				return c, err
			}
		}
	}
	if p := getenv("MESHCONFORM_REGISTRY_PORT"); p != "" {
		if c.RegistryPort, err = strconv.Atoi(p); err != nil || c.RegistryPort < 1 || c.RegistryPort > 65535 {
			return c, fmt.Errorf("MESHCONFORM_REGISTRY_PORT=%q is not a port number", p)
		}
	}
	if c.CacheLimit, err = images.ParseCacheLimit(getenv(images.CacheLimitEnv)); err != nil {
		return c, fmt.Errorf("%s: %w", images.CacheLimitEnv, err)
	}
	if c.Upgrade, err = upgrade.ParsePlan(envOr("MESHCONFORM_UPGRADE_FROM", upgrade.DefaultFrom),
		envOr("MESHCONFORM_UPGRADE_TO", upgrade.DefaultTo), envOr("MESHCONFORM_UPGRADE_METHODS", upgrade.DefaultMethods)); err != nil {
		return c, err
	}
	for _, d := range []*string{&c.ArtifactsDir, &c.CacheDir} {
		if *d, err = filepath.Abs(*d); err != nil {
			return c, err
		}
	}
	return c, c.check()
}

// check rejects settings that cannot run, read from variables or from a
// settings file alike; its messages name the variables.
func (c Config) check() error {
	if c.IstiodReplicas < 0 || c.IstiodReplicas > 5 {
		return fmt.Errorf("%s=%d: want a number of istiod replicas from 1 to 5", replicasEnv, c.IstiodReplicas)
	}
	switch c.FrontendAccess {
	case FrontendAuto, FrontendLoadBalancer, FrontendPortForward:
	default:
		return fmt.Errorf("MESHCONFORM_FRONTEND_ACCESS=%q: want %s, %s or %s", c.FrontendAccess, FrontendAuto, FrontendLoadBalancer, FrontendPortForward)
	}
	if err := c.checkBringYourOwn(); err != nil {
		return err
	}
	if c.ClustersFile != "" {
		b, err := topology.LoadBrought(c.ClustersFile)
		if err != nil {
			return fmt.Errorf("%s: %w", clustersEnv, err)
		}
		if !maps.Equal(b.Contexts, c.Contexts) {
			return fmt.Errorf("%s=%s names contexts %v, the settings %v: one source of contexts", clustersEnv, c.ClustersFile, b.Contexts, c.Contexts)
		}
	}
	if err := workloads.CheckNamespaceLabels(c.NamespaceLabels); err != nil {
		return fmt.Errorf("%s: %w", namespaceLabelsEnv, err)
	}
	if _, err := c.UserRegistry(); err != nil {
		return err
	}
	if c.RegistryPort < 1 || c.RegistryPort > 65535 {
		return fmt.Errorf("MESHCONFORM_REGISTRY_PORT=%d is not a port number", c.RegistryPort)
	}
	if c.CacheLimit < 0 {
		return fmt.Errorf("%s: %d bytes: want a size ≥ 0", images.CacheLimitEnv, c.CacheLimit)
	}
	if c.Source != images.SourceLocal && c.Source != images.SourceUpstream {
		return fmt.Errorf("MESHCONFORM_IMAGE_SOURCE=%q: want %q or %q", c.Source, images.SourceLocal, images.SourceUpstream)
	}
	if _, err := images.LookupKubeRelease(c.KubernetesVersion); err != nil {
		return fmt.Errorf("MESHCONFORM_KUBERNETES_VERSION: %w", err)
	}
	if _, err := images.LookupIstioRelease(c.IstioVersion); err != nil && (c.Source == images.SourceLocal || c.IstioctlFor(c.IstioVersion) == "") {
		return fmt.Errorf("MESHCONFORM_ISTIO_VERSION: %w", err)
	}
	if c.IstioRevision != "" && !revisionName.MatchString(c.IstioRevision) {
		return fmt.Errorf("MESHCONFORM_ISTIO_REVISION=%q: a revision is a DNS label (lower-case letters, digits, '-')", c.IstioRevision)
	}
	// The plan again through its one parser: a settings file's plan gets
	// the checks the variables' does.
	methods := make([]string, len(c.Upgrade.Methods))
	for i, m := range c.Upgrade.Methods {
		methods[i] = string(m)
	}
	if _, err := upgrade.ParsePlan(c.Upgrade.From, c.Upgrade.To, strings.Join(methods, ",")); err != nil {
		return err
	}
	for v, p := range c.Istioctls {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("%s: %s=%q: want an absolute path", istioctlsEnv, v, p)
		}
	}
	for _, v := range []string{c.Upgrade.From, c.Upgrade.To} {
		_, err := images.LookupIstioRelease(v)
		switch {
		case err == nil:
		case c.Source == images.SourceLocal:
			return fmt.Errorf("MESHCONFORM_UPGRADE_FROM/_TO: %w", err)
		case c.IstioctlFor(v) == "":
			return fmt.Errorf("MESHCONFORM_UPGRADE_FROM/_TO: Istio %s on the upstream source needs its istioctl, which this machine cannot build (%v): set %s=%s=PATH", v, err, istioctlsEnv, v)
		}
	}
	if c.Topology == "" {
		return fmt.Errorf("%s: no topology named", topologyEnv)
	}
	for _, d := range []struct{ name, path string }{{"the repository root", c.RepoRoot}, {"MESHCONFORM_ARTIFACTS", c.ArtifactsDir}, {"MESHCONFORM_CACHE", c.CacheDir}} {
		if !filepath.IsAbs(d.path) {
			return fmt.Errorf("%s=%q: want an absolute path", d.name, d.path)
		}
	}
	return nil
}

// IstioctlFor is the istioctl given for an Istio version: MESHCONFORM_ISTIOCTLS
// for it, else MESHCONFORM_ISTIOCTL for the run's own version, else ""
// (the harness builds it).
func (c Config) IstioctlFor(version string) string {
	if p := c.Istioctls[version]; p != "" {
		return p
	}
	if version == c.IstioVersion {
		return c.Istioctl
	}
	return ""
}

// WriteFile writes c as the JSON file SettingsEnv names, for ReadConfig.
// It holds no secret (a kubeconfig by its path, contexts by their names),
// so it is readable by all and goes into a run's bundle like its reports.
func (c Config) WriteFile(path string) error {
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(raw, '\n'), 0o644)
}

// ReadConfig reads the settings file Config.WriteFile wrote (every field;
// no defaults are filled in, no unknown field is accepted) and checks it as
// ConfigFrom checks the variables.
func ReadConfig(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", SettingsEnv, err)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%s=%s: %w", SettingsEnv, path, err)
	}
	if dec.More() {
		return Config{}, fmt.Errorf("%s=%s: more than one JSON value", SettingsEnv, path)
	}
	if err := c.check(); err != nil {
		return c, fmt.Errorf("%s=%s: %w", SettingsEnv, path, err)
	}
	return c, nil
}

// ParseContexts reads "cluster1=ctxA,cluster2=ctxB" (spaces allowed).
func ParseContexts(s string) (map[string]string, error) {
	out, err := kvlist.Parse(s, "cluster", "context", false)
	if err != nil {
		return nil, fmt.Errorf("MESHCONFORM_CONTEXTS: %w (e.g. cluster1=kind-cluster1,cluster2=kind-cluster2)", err)
	}
	return out, nil
}

// checkBringYourOwn refuses settings that only make sense together, before
// anything runs. Which names the topology has is checked by New.
func (c Config) checkBringYourOwn() error {
	switch {
	case c.ClustersFile != "" && c.Kubeconfig == "":
		return fmt.Errorf("%s describes clusters you bring: point MESHCONFORM_KUBECONFIG at the kubeconfig holding their contexts", clustersEnv)
	case c.Mesh != MeshInstall && c.Mesh != MeshExisting:
		return fmt.Errorf("MESHCONFORM_MESH=%q: want %q (install Istio, remove it after) or %q (test the mesh already installed)", c.Mesh, MeshInstall, MeshExisting)
	case c.Kubeconfig == "" && len(c.Contexts) > 0:
		return fmt.Errorf("MESHCONFORM_CONTEXTS is set but MESHCONFORM_KUBECONFIG is not: name the kubeconfig that holds these contexts")
	case c.Kubeconfig != "" && len(c.Contexts) == 0:
		return fmt.Errorf("MESHCONFORM_KUBECONFIG is set but MESHCONFORM_CONTEXTS is not: say which context is which cluster (cluster1=ctxA,cluster2=ctxB)")
	case c.Mesh == MeshExisting && c.Kubeconfig == "":
		return fmt.Errorf("MESHCONFORM_MESH=existing tests a mesh already installed: point MESHCONFORM_KUBECONFIG and MESHCONFORM_CONTEXTS at its clusters")
	case c.Kubeconfig != "" && c.KeepClusters:
		return fmt.Errorf("MESHCONFORM_KEEP_CLUSTERS applies to clusters meshconform creates; with MESHCONFORM_KUBECONFIG the clusters are yours and always stay")
	}
	return nil
}

var revisionName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// StateDir holds what outlives one process of meshconform's on this
// machine: the platform lock (package runlock) and what `meshconform up`
// keeps (UpDir). Not under artifacts/, which a run empties, and not in the
// user's ~/.kube: meshconform never edits the user's kubeconfig.
func StateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "meshconform")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "meshconform")
}

// UpDir holds what `meshconform up` keeps for later runs: the clusters'
// kubeconfigs, its report and the env file that says a mesh is kept.
func UpDir() string { return filepath.Join(StateDir(), "up") }

// KeptMeshFile is the file in UpDir whose presence says `meshconform up`
// keeps a mesh on this machine.
const KeptMeshFile = "env"

func defaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "meshconform")
	}
	return filepath.Join(os.TempDir(), "meshconform-cache")
}

// RepoRoot walks up from the working directory to the directory holding
// this module's go.mod (suites run from their own directories).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if raw, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && isOurModule(raw) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("not inside the meshconform repository (no go.mod of module github.com/meshconform/meshconform above the working directory)")
		}
		dir = parent
	}
}

func isOurModule(gomod []byte) bool {
	const want = "module github.com/meshconform/meshconform\n"
	return len(gomod) >= len(want) && string(gomod[:len(want)]) == want
}
