// Package harness wires a run together: settings, topology, image source,
// clusters, teardown and the run's report. Suites call it; it decides
// nothing a spec asserts.
package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/upgrade"
)

// Config is a run's settings. Every field has an environment variable, so
// `make`, `go test` and CI set them the same way.
type Config struct {
	// RepoRoot is the repository's root (where go.mod is).
	RepoRoot string
	// Source is the image source: local (built here) or upstream.
	Source string // MESHCONFORM_IMAGE_SOURCE
	// KubernetesVersion of the clusters.
	KubernetesVersion string // MESHCONFORM_KUBERNETES_VERSION
	// ArtifactsDir receives reports, logs and dumps.
	ArtifactsDir string // MESHCONFORM_ARTIFACTS
	// CacheDir keeps builds and the registry's storage between runs.
	CacheDir string // MESHCONFORM_CACHE
	// CacheLimit is the image cache size past which a teardown prunes what
	// no current recipe uses (0: never).
	CacheLimit int64 // MESHCONFORM_CACHE_LIMIT
	// KeepClusters leaves the clusters (and registry) up after the run, for
	// debugging; the next run replaces them.
	KeepClusters bool // MESHCONFORM_KEEP_CLUSTERS=1
	// RegistryPort is the local registry's port on 127.0.0.1.
	RegistryPort int // MESHCONFORM_REGISTRY_PORT
	// IstioVersion is the Istio release installed.
	IstioVersion string // MESHCONFORM_ISTIO_VERSION
	// IstioRevision installs Istio under a revision name ("" = none).
	IstioRevision string // MESHCONFORM_ISTIO_REVISION
	// Istioctl is an istioctl binary to use instead of building one (for
	// the upstream source with versions this machine cannot build).
	Istioctl string // MESHCONFORM_ISTIOCTL
	// Upgrade is what the upgrade suite upgrades: from, to and methods
	// (MESHCONFORM_UPGRADE_FROM, MESHCONFORM_UPGRADE_TO,
	// MESHCONFORM_UPGRADE_METHODS), checked against what Istio supports.
	Upgrade upgrade.Plan
}

// ConfigFromEnv reads the settings, with defaults, and rejects bad values.
func ConfigFromEnv() (Config, error) {
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
		KeepClusters:      os.Getenv("MESHCONFORM_KEEP_CLUSTERS") == "1",
		RegistryPort:      images.DefaultRegistryPort,
		IstioVersion:      strings.TrimPrefix(envOr("MESHCONFORM_ISTIO_VERSION", images.DefaultIstioVersion), "v"),
		IstioRevision:     os.Getenv("MESHCONFORM_ISTIO_REVISION"),
		Istioctl:          os.Getenv("MESHCONFORM_ISTIOCTL"),
	}
	if p := os.Getenv("MESHCONFORM_REGISTRY_PORT"); p != "" {
		if c.RegistryPort, err = strconv.Atoi(p); err != nil || c.RegistryPort < 1 || c.RegistryPort > 65535 {
			return c, fmt.Errorf("MESHCONFORM_REGISTRY_PORT=%q is not a port number", p)
		}
	}
	if c.CacheLimit, err = images.CacheLimitFromEnv(); err != nil {
		return c, err
	}
	if c.Source != images.SourceLocal && c.Source != images.SourceUpstream {
		return c, fmt.Errorf("MESHCONFORM_IMAGE_SOURCE=%q: want %q or %q", c.Source, images.SourceLocal, images.SourceUpstream)
	}
	if _, err := images.LookupKubeRelease(c.KubernetesVersion); err != nil {
		return c, fmt.Errorf("MESHCONFORM_KUBERNETES_VERSION: %w", err)
	}
	if _, err := images.LookupIstioRelease(c.IstioVersion); err != nil && (c.Source == images.SourceLocal || c.Istioctl == "") {
		return c, fmt.Errorf("MESHCONFORM_ISTIO_VERSION: %w", err)
	}
	if c.IstioRevision != "" && !revisionName.MatchString(c.IstioRevision) {
		return c, fmt.Errorf("MESHCONFORM_ISTIO_REVISION=%q: a revision is a DNS label (lower-case letters, digits, '-')", c.IstioRevision)
	}
	if c.Upgrade, err = upgrade.ParsePlan(envOr("MESHCONFORM_UPGRADE_FROM", upgrade.DefaultFrom),
		envOr("MESHCONFORM_UPGRADE_TO", upgrade.DefaultTo), envOr("MESHCONFORM_UPGRADE_METHODS", upgrade.DefaultMethods)); err != nil {
		return c, err
	}
	if c.Source == images.SourceLocal {
		for _, v := range []string{c.Upgrade.From, c.Upgrade.To} {
			if _, err := images.LookupIstioRelease(v); err != nil {
				return c, fmt.Errorf("MESHCONFORM_UPGRADE_FROM/_TO: %w", err)
			}
		}
	}
	for _, d := range []*string{&c.ArtifactsDir, &c.CacheDir} {
		if *d, err = filepath.Abs(*d); err != nil {
			return c, err
		}
	}
	return c, nil
}

var revisionName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

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
