package images

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/meshconform/meshconform/e2e/internal/docker"
	"github.com/meshconform/meshconform/e2e/report"
)

// Upstream uses kind's published node image, which carries the control-plane
// images preloaded; Istio and MetalLB images are pulled from the public
// registries by the nodes themselves. Only the sample apps, which no
// registry publishes, are built here and served by the local registry
// under its own name (meshconform-registry:5000/…). Nothing of ours is
// served under a public registry's name: the registry's storage outlives
// runs and holds the local source's builds of docker.io/istio/* (without
// Envoy), which a mirror of docker.io would hand to an upstream run in
// place of the official images.
type Upstream struct {
	Release KubeRelease
	// apps builds the sample apps and runs the local registry.
	apps *Local
}

// NewUpstream returns the upstream source; apps and the registry are built
// and cached as the local source does.
func NewUpstream(release KubeRelease, cacheDir string, port int, run *report.Run, buildLog io.Writer) *Upstream {
	return &Upstream{Release: release, apps: NewLocal(release, cacheDir, port, run, buildLog)}
}

// App implements Source.
func (u *Upstream) App(ctx context.Context, repoRoot, name string) (string, error) {
	ref, err := u.apps.App(ctx, repoRoot, name)
	return RegistryName(ref), err
}

// RegistryName is a docker.io reference as the nodes pull it from the local
// registry by the registry's own name, where no mirror is involved.
func RegistryName(ref string) string {
	return RegistryHost + "/" + strings.TrimPrefix(ref, "docker.io/")
}

// Name implements Source.
func (u *Upstream) Name() string { return SourceUpstream }

// Check implements Source: the node image must be present or pullable, which
// also proves a registry can be reached before anything is created.
func (u *Upstream) Check(ctx context.Context) error {
	if err := docker.Ping(ctx); err != nil {
		return err
	}
	if _, err := docker.Run(ctx, "image", "inspect", u.Release.UpstreamNode); err == nil {
		return nil
	}
	if _, err := docker.Run(ctx, "pull", u.Release.UpstreamNode); err != nil {
		return fmt.Errorf("upstream image source: cannot pull %s (is a registry reachable from this machine? the local source builds every image here): %w", u.Release.UpstreamNode, err)
	}
	return nil
}

// Prepare implements Source.
func (u *Upstream) Prepare(ctx context.Context, network string) (ClusterImages, error) {
	if err := u.apps.StartRegistry(ctx, network); err != nil {
		return ClusterImages{}, err
	}
	return u.clusterImages(), nil
}

func (u *Upstream) clusterImages() ClusterImages {
	// The local registry by its own name, over plain HTTP; no public
	// registry is mirrored.
	path, hosts := HostsTOML(RegistryHost, RegistryEndpoint(), RegistryEndpoint())
	return ClusterImages{
		Node:                    u.Release.UpstreamNode,
		ContainerdConfigPatches: []string{HostsConfigPatch},
		NodeFiles:               map[string]string{path: hosts},
	}
}
