// Package images provides the images a run needs, from one of two sources:
//
//   - local: every image built on this machine from Go modules and Debian
//     packages, served to the clusters by a local OCI registry that each
//     node's containerd uses as a mirror of the public registries, and cached
//     by the content each image is built from;
//   - upstream: the official images (kindest/node and the images it
//     preloads), for machines that can reach a registry.
package images

import (
	"context"
	"fmt"
	"strings"
)

// Source names.
const (
	SourceLocal    = "local"
	SourceUpstream = "upstream"
)

// ClusterImages is what kind needs to create clusters from a source.
type ClusterImages struct {
	// Node is the kind node image.
	Node string
	// ContainerdConfigPatches go into each kind config, e.g. registry mirrors.
	ContainerdConfigPatches []string
	// NodeFiles are written into every node right after it is created
	// (path → content), before anything of the run is pulled.
	NodeFiles map[string]string
}

// Source prepares images for clusters of one Kubernetes release.
type Source interface {
	Name() string
	// Check verifies the source can work before anything is created.
	Check(ctx context.Context) error
	// Prepare makes every image available and says how clusters get them.
	// network is the Docker network the clusters' nodes join.
	Prepare(ctx context.Context, network string) (ClusterImages, error)
	// App returns the image of a sample app of fixtures/apps, built from
	// this repository (no registry publishes them) and served to the nodes.
	App(ctx context.Context, repoRoot, name string) (string, error)
}

// MirroredRegistries are the public registries whose pulls a local source
// serves; every image a cluster pulls comes from one of them.
var MirroredRegistries = []string{"registry.k8s.io", "docker.io", "quay.io", "gcr.io", "ghcr.io"}

// HostsConfigPatch points containerd's CRI registry config at hosts.toml
// files (the layout kind's local-registry guide uses, for containerd 1.7
// and 2.x node images).
const HostsConfigPatch = `[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
`

// HostsTOML makes containerd try endpoint first for registry (then the
// registry itself): images the local registry lacks fall through to it.
func HostsTOML(registry, server, endpoint string) (path, content string) {
	return "/etc/containerd/certs.d/" + registry + "/hosts.toml",
		fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", server, endpoint)
}

// MirrorPatch renders the containerd (config version 2, containerd 1.6 and
// later) patch that sends pulls from the public registries to endpoint, a
// plain-HTTP registry on the clusters' Docker network.
func MirrorPatch(endpoint string) string {
	var b strings.Builder
	for _, r := range MirroredRegistries {
		fmt.Fprintf(&b, "[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.%q]\n  endpoint = [%q]\n", r, endpoint)
	}
	return b.String()
}
