package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/metallb"
	"github.com/meshconform/meshconform/e2e/topology"
)

// step is one stage of bringing up the platform, in the manner of kind's
// create actions: the steps run in order, each timed and printed as one
// status line, each reading and extending the same platform.
type step struct {
	name string
	run  func(ctx context.Context, p *platform) error
}

// platform is what the steps share: the clusters so far.
type platform struct {
	clusters []*clusters.Cluster
}

// clusterStep is one stage of one cluster's bring-up. The clusters go
// through theirs side by side, each cluster to its next stage as soon as
// its own previous one is done, without waiting for the others.
type clusterStep struct {
	name func(c *clusterUp) string
	run  func(ctx context.Context, c *clusterUp) error
}

// clusterUp is one cluster on its way up: the topology's cluster, and the
// cluster once created.
type clusterUp struct {
	spec topology.Cluster
	cl   *clusters.Cluster
}

// SetUpPlatform brings up what every suite stands on, step by step (see
// platformSteps), and returns the clusters in the topology's order.
func (h *Harness) SetUpPlatform(ctx context.Context) ([]*clusters.Cluster, error) {
	var p platform
	for _, s := range h.platformSteps() {
		if err := h.Run.Time(s.name, func() error { return s.run(ctx, &p) }); err != nil {
			return p.clusters, err
		}
	}
	return p.clusters, nil
}

// platformSteps are the bring-up of the run: on clusters the user brought,
// the machine's check and the attach; otherwise the checks before
// anything is created, the machine's inventory (for the teardown audit),
// the Docker network, the local registry (and the
// prebuild, which starts there and runs beside the rest), the cluster
// images, every cluster (created, ready, MetalLB with its pool) and the
// flat network between them.
func (h *Harness) platformSteps() []step {
	if h.byo != nil {
		return []step{
			{"preflight", func(ctx context.Context, _ *platform) error {
				return h.byo.preflight(ctx, h.Source, h.userRegistry, h.istioVersions())
			}},
			{"attach clusters", func(ctx context.Context, p *platform) (err error) {
				p.clusters, err = h.byo.attach(ctx, true, h.AppNamespaces)
				return err
			}},
		}
	}
	steps := []step{
		{"preflight", h.preflight},
		// After the preflight (no Docker is its error, not the
		// inventory's), before anything is created.
		{"inventory before the run", func(ctx context.Context, _ *platform) error {
			inv, err := h.Snapshot(ctx)
			if err == nil {
				h.before = &inv
			}
			return err
		}},
		{"docker network " + h.Topology.Network.Name, func(ctx context.Context, _ *platform) error {
			return clusters.EnsureNetwork(ctx, h.Topology.Network)
		}},
	}
	if local, ok := h.Source.(*images.Local); ok && h.PrebuildMesh {
		steps = append(steps, step{"local registry; prebuild started", func(ctx context.Context, _ *platform) error {
			if err := local.StartRegistry(ctx, h.Topology.Network.Name); err != nil {
				return err
			}
			h.prebuild(local)
			return nil
		}})
	}
	steps = append(steps,
		step{"images", func(ctx context.Context, _ *platform) (err error) {
			h.Images, err = h.Source.Prepare(ctx, h.Topology.Network.Name)
			return err
		}},
		step{"clusters", h.bringUpClusters},
	)
	if len(h.Topology.Clusters) > 1 {
		steps = append(steps, step{"flat network between clusters", func(ctx context.Context, p *platform) error {
			return h.Clusters.JoinFlat(ctx, p.clusters)
		}})
	}
	return steps
}

// preflight checks what must hold before anything is created: no mesh
// kept by up, the source's tools and Docker daemon, the machine's memory,
// disk and privileged containers for the topology, the network, and that
// no cluster name is taken by something not ours.
func (h *Harness) preflight(ctx context.Context, _ *platform) error {
	if err := NoKeptMesh(); err != nil {
		return err
	}
	if err := h.Source.Check(ctx); err != nil {
		return err
	}
	c, err := readCapacity(ctx, h.Config.CacheDir)
	if err != nil {
		return err
	}
	if err := c.check(len(h.Topology.Clusters)); err != nil {
		return err
	}
	h.removeStaleTemp()
	if err := clusters.CheckNetwork(ctx, h.Topology.Network); err != nil {
		return err
	}
	for _, c := range h.Topology.Clusters {
		if err := h.Clusters.CheckName(ctx, c.Name); err != nil {
			return err
		}
	}
	return nil
}

// NoKeptMesh refuses to create clusters while `meshconform up` keeps a
// mesh on this machine: its clusters have the topologies' names, and a run
// would replace them as stale or delete them at its teardown. A second
// `up` is refused the same way (before it writes its report where the
// kept one's is): one at a time.
func NoKeptMesh() error {
	kept := filepath.Join(UpDir(), KeptMeshFile)
	if _, err := os.Stat(kept); err != nil {
		return nil
	}
	return fmt.Errorf("a mesh kept by `meshconform up` is on this machine (%s): test it with `meshconform test --kubeconfig … --contexts …` "+
		"(the command up printed), or remove it first with `meshconform down`; this run would delete its clusters", kept)
}

// clusterSteps are each cluster's bring-up. MetalLB waits for the
// cluster to be ready, not only created: an addon started before
// kube-proxy has written its rules cannot reach the API server's Service
// IP, and MetalLB's controller, for one, exits and is restarted (seen when
// it was installed side by side with the readiness wait).
func (h *Harness) clusterSteps() []clusterStep {
	return []clusterStep{
		{func(c *clusterUp) string { return "create cluster " + c.spec.Name }, func(ctx context.Context, c *clusterUp) error {
			cl, err := h.Clusters.Create(ctx, c.spec, h.Images)
			// Remembered even when creation failed (cl is nil): kind may
			// have left nodes whose logs are worth exporting.
			h.mu.Lock()
			h.created[c.spec.Name] = cl
			h.mu.Unlock()
			c.cl = cl
			return err
		}},
		{func(c *clusterUp) string { return "cluster " + c.spec.Name + " ready" }, func(ctx context.Context, c *clusterUp) error {
			return clusters.WaitReady(ctx, c.cl, 4*time.Minute)
		}},
		{func(c *clusterUp) string {
			return fmt.Sprintf("metallb %s on %s (pool %s)", metallb.Version, c.spec.Name, c.spec.LoadBalancerPool)
		}, func(ctx context.Context, c *clusterUp) error {
			return metallb.Install(ctx, c.cl.Client, c.spec.LoadBalancerPool)
		}},
	}
}

// bringUpClusters takes every cluster of the topology through the
// cluster steps, side by side.
func (h *Harness) bringUpClusters(ctx context.Context, p *platform) error {
	ups := make([]*clusterUp, len(h.Topology.Clusters))
	g, gctx := errgroup.WithContext(ctx)
	for i, spec := range h.Topology.Clusters {
		ups[i] = &clusterUp{spec: spec}
		g.Go(func() error {
			for _, s := range h.clusterSteps() {
				if err := h.Run.Time(s.name(ups[i]), func() error { return s.run(gctx, ups[i]) }); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := g.Wait()
	for _, u := range ups {
		if u.cl != nil {
			p.clusters = append(p.clusters, u.cl)
		}
	}
	return err
}
