package images

import (
	"context"
	"fmt"

	"github.com/meshconform/meshconform/e2e/internal/docker"
)

// Upstream uses kind's published node image, which carries the control-plane
// images preloaded; everything else a cluster runs is pulled from the public
// registries by the nodes themselves.
type Upstream struct {
	Release KubeRelease
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
	return ClusterImages{Node: u.Release.UpstreamNode}, nil
}
