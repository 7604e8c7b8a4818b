// Package env is the one run a suite binary drives: the harness, the
// clusters and, once installed, the mesh. Specs of every suite share it, so
// `make e2e` brings clusters up once and installs Istio once for platform,
// install and conformance specs alike.
//
// It is process-wide state on purpose: Ginkgo specs are declared as closures
// before anything runs, and this is where they find what BeforeAll made.
package env

import (
	"context"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/harness"
)

// Run is the shared state of one suite process.
type Run struct {
	H        *harness.Harness
	Clusters []*clusters.Cluster
	// Before is the machine's inventory before the run created anything,
	// for the teardown audit.
	Before harness.Inventory

	mu     sync.Mutex
	failed bool
	mesh   *meshOnce
}

var (
	current  *Run
	startErr error
	once     sync.Once
)

// Start brings up the platform (images, clusters, flat network, MetalLB)
// the first time it is called and returns the run; later calls return the
// same run. It registers the teardown with Ginkgo's cleanup, so the clusters
// go away when the suite ends, fails or is interrupted (unless kept).
func Start(ctx context.Context) (*Run, error) {
	once.Do(func() {
		startErr = start(ctx)
	})
	return current, startErr
}

func start(ctx context.Context) error {
	cfg, err := harness.ConfigFromEnv()
	if err != nil {
		return err
	}
	h, err := harness.New(cfg, GinkgoWriter)
	if err != nil {
		return err
	}
	r := &Run{H: h}
	current = r
	if r.Before, err = h.Snapshot(ctx); err != nil {
		return err
	}
	r.Clusters, err = h.SetUpPlatform(ctx)
	return err
}

// Get returns the started run; specs call it after BeforeAll ran Start.
func Get() *Run {
	if current == nil {
		Fail("env.Start did not run: no clusters")
	}
	return current
}

// MarkFailed records that a spec failed; it reports whether this is the
// first failure (whose state is then dumped).
func (r *Run) MarkFailed() (first bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	first = !r.failed
	r.failed = true
	return first
}

// Failed reports whether any spec failed.
func (r *Run) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// Primary is the topology's primary cluster.
func (r *Run) Primary() *clusters.Cluster { return r.byPrimary(true) }

// Remote is the (first) remote cluster.
func (r *Run) Remote() *clusters.Cluster { return r.byPrimary(false) }

func (r *Run) byPrimary(primary bool) *clusters.Cluster {
	if c := r.byPrimaryUnlocked(primary); c != nil {
		return c
	}
	Fail(fmt.Sprintf("the topology has no %s cluster", map[bool]string{true: "primary", false: "remote"}[primary]))
	return nil
}

// Other returns the cluster that is not cl.
func (r *Run) Other(cl *clusters.Cluster) *clusters.Cluster {
	for _, o := range r.Clusters {
		if o.Name != cl.Name {
			return o
		}
	}
	Fail("the topology has one cluster only")
	return nil
}

// Setup is what every suite's top-level Ordered container calls first: it
// starts the run, registers its teardown, and marks the run failed when a
// spec fails.
func Setup() {
	BeforeAll(func(ctx SpecContext) {
		r, err := Start(ctx)
		DeferCleanup(func(ctx SpecContext) {
			if current == nil {
				return
			}
			if err != nil && current.MarkFailed() {
				current.DumpState(ctx)
			}
			if terr := current.H.Teardown(ctx, err != nil || current.Failed()); terr != nil {
				Fail(terr.Error())
			}
			AddReportEntry("phases", current.H.Run.Phases())
			_ = current.H.Close()
		}, NodeTimeout(10*time.Minute))
		if err != nil {
			Fail("bring up the platform: " + err.Error())
		}
		GinkgoWriter.Printf("clusters up: %d; kubeconfigs in %s\n", len(r.Clusters), r.H.Clusters.KubeconfigDir)
	}, NodeTimeout(60*time.Minute))
	// Dump at the first failure, before inner AfterAlls clean up the
	// workloads a person would want to see.
	AfterEach(func(ctx SpecContext) {
		if CurrentSpecReport().Failed() && current != nil && current.MarkFailed() {
			current.DumpState(ctx)
		}
	}, NodeTimeout(5*time.Minute))
}

// Mesh installs Istio primary-remote the first time it is called (the
// primary and the first remote of the topology) and returns it; later calls
// return the same mesh, so every spec shares one install.
func (r *Run) Mesh(ctx context.Context) (*harness.Mesh, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mesh != nil {
		return r.mesh.m, r.mesh.err
	}
	r.mesh = &meshOnce{}
	m, err := r.H.PrepareIstio(ctx)
	if err == nil {
		r.mesh.m = m
		err = m.Install(ctx, r.byPrimaryUnlocked(true), r.byPrimaryUnlocked(false))
	}
	r.mesh.err = err
	return r.mesh.m, err
}

// InstalledMesh returns the mesh if Mesh ran, else nil.
func (r *Run) InstalledMesh() *harness.Mesh {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mesh == nil {
		return nil
	}
	return r.mesh.m
}

// ForgetMesh records that the mesh was uninstalled.
func (r *Run) ForgetMesh() {
	r.mu.Lock()
	r.mesh = nil
	r.mu.Unlock()
}

type meshOnce struct {
	m   *harness.Mesh
	err error
}

func (r *Run) byPrimaryUnlocked(primary bool) *clusters.Cluster {
	for _, c := range r.Clusters {
		if c.Primary == primary {
			return c
		}
	}
	return nil
}

// DumpState writes what a person needs to debug the failure.
func (r *Run) DumpState(ctx context.Context) {
	r.H.DumpState(ctx, r.Clusters, r.InstalledMesh(), r.byPrimaryUnlocked(true))
}
