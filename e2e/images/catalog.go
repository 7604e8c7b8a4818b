package images

import (
	"fmt"
	"sort"
	"strings"
)

// KubeRelease is what one Kubernetes release runs in a kind cluster: the
// versions kubeadm of that release asks for (its constants package,
// cmd/kubeadm/app/constants), and where each comes from.
type KubeRelease struct {
	Version string // e.g. v1.33.13
	// EtcdTag is kubeadm's image tag for etcd; EtcdModule the etcd module
	// version it is built from.
	EtcdTag, EtcdModule string
	CoreDNSTag          string
	PauseTag            string
	// UpstreamNode is kind's published node image for the upstream source.
	UpstreamNode string
}

// kubeReleases are the Kubernetes versions this harness can build here. A
// version joins when its module and its components' modules are on the Go
// module proxy and a cluster of it has passed suites/platform.
var kubeReleases = map[string]KubeRelease{
	"v1.33.13": {
		Version: "v1.33.13", EtcdTag: "3.5.24-0", EtcdModule: "v3.5.24",
		CoreDNSTag: "v1.12.0", PauseTag: "3.10",
		// kind v0.30.0 publishes v1.33.4 for the 1.33 line.
		UpstreamNode: "kindest/node:v1.33.4",
	},
}

// DefaultKubernetesVersion is what a run uses unless told otherwise.
const DefaultKubernetesVersion = "v1.33.13"

// LookupKubeRelease returns the release, or an error that lists the versions
// that can be built.
func LookupKubeRelease(version string) (KubeRelease, error) {
	if !strings.HasPrefix(version, "v") {
		version = "v" + version
	}
	r, ok := kubeReleases[version]
	if !ok {
		return KubeRelease{}, fmt.Errorf("unknown Kubernetes version %q: known versions are %s", version, strings.Join(KubeVersions(), ", "))
	}
	return r, nil
}

// KubeVersions lists the known Kubernetes versions, sorted.
func KubeVersions() []string {
	var vs []string
	for v := range kubeReleases {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	return vs
}

// stagingVersion is the version Kubernetes' staging modules (k8s.io/api,
// client-go, ...) are published at for the release: v0.33.13 for v1.33.13.
func (r KubeRelease) stagingVersion() string { return "v0" + strings.TrimPrefix(r.Version, "v1") }

// minor is "33" for v1.33.13.
func (r KubeRelease) minor() string {
	parts := strings.Split(strings.TrimPrefix(r.Version, "v"), ".")
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}
