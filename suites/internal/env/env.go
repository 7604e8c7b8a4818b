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
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/e2e/verify"
)

// Run is the shared state of one suite process.
type Run struct {
	H        *harness.Harness
	Clusters []*clusters.Cluster

	mu     sync.Mutex
	failed bool
	mesh   *meshOnce
	// interrupted counts the run's interruptions (interrupt.go).
	interrupted *interrupts
	// afterSuiteDone says TeardownAndAudit finished, so the fallback of
	// AfterSuiteTeardown has nothing to do.
	afterSuiteDone atomic.Bool
}

var (
	current  *Run
	startErr error
	once     sync.Once
	// meshSpecs are the labels of the specs that install the mesh, recorded
	// while the spec tree is built, before anything runs.
	meshSpecs []Labels
)

// WillInstallMesh declares that specs with these labels (all of them, the
// container's included) install the mesh. Call it while declaring specs,
// outside any node. A run whose label filter lets such a spec run builds
// Istio's images in the background from its start (harness.PrebuildMesh).
func WillInstallMesh(l Labels) { meshSpecs = append(meshSpecs, l) }

// MeshVersions, when a suite sets it while declaring specs, names the Istio
// versions its specs install (default: the run's own): Harness.IstioVersions.
var MeshVersions func(harness.Config) []string

// meshWanted tells whether the label filter lets any spec that installs the
// mesh run. Matching the union of a container's labels is right for plain
// and or-ed labels; a filter with a negation may answer no where a spec
// would run, which only costs the head start.
func meshWanted() bool {
	for _, l := range meshSpecs {
		if l.MatchesLabelFilter(GinkgoLabelFilter()) {
			return true
		}
	}
	return false
}

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

// settings are the run's settings, read once per suite process.
var settings struct {
	once sync.Once
	cfg  harness.Config
	err  error
}

// Settings are the run's settings (harness.LoadConfig: the file
// MESHCONFORM_SETTINGS names, else the MESHCONFORM_* variables), read once
// per suite process: the specs that decide while the spec tree is built
// (brought clusters, mesh mode, topology) and Start see the same value.
func Settings() (harness.Config, error) {
	settings.once.Do(func() { settings.cfg, settings.err = harness.LoadConfig() })
	return settings.cfg, settings.err
}

var topo struct {
	once sync.Once
	t    *topology.Topology
	err  error
}

// Topology is the run's topology (of Settings), read once per suite
// process: the specs declared by it while the tree is built and the
// harness that brings it up read the same value.
func Topology() (*topology.Topology, error) {
	topo.once.Do(func() {
		cfg, err := Settings()
		if err != nil {
			topo.err = err
			return
		}
		topo.t, topo.err = cfg.LoadTopology()
	})
	return topo.t, topo.err
}

func start(ctx context.Context) error {
	cfg, err := Settings()
	if err != nil {
		return err
	}
	t, err := Topology()
	if err != nil {
		return err
	}
	watch := watchInterrupts()
	h, err := harness.New(cfg, t, GinkgoWriter)
	if err != nil {
		return err
	}
	h.PrebuildMesh = meshWanted()
	if MeshVersions != nil {
		h.IstioVersions = MeshVersions(cfg)
	}
	h.AppNamespaces = []string{verify.AppNamespace, verify.OutsideNamespace, verify.InjectionNamespace}
	r := &Run{H: h, interrupted: watch}
	current = r
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

// Interrupted reports whether a signal or Ginkgo's timeout interrupted
// the run.
func (r *Run) Interrupted() bool { return r.interrupted.happened() }

// teardown removes what the run created. A failed run that was not
// interrupted first exports the clusters' logs, cut short by a signal;
// an interrupted one goes straight to the deletion.
func (r *Run) teardown(ctx context.Context) error {
	if r.Failed() && !r.Interrupted() {
		dctx, cancel := r.interrupted.until(ctx)
		r.H.ExportLogs(dctx)
		cancel()
	}
	return r.H.Teardown(ctx)
}

// Primary is the topology's (first) primary cluster.
func (r *Run) Primary() *clusters.Cluster { return r.byPrimary(true) }

// Remote is the (first) remote cluster.
func (r *Run) Remote() *clusters.Cluster { return r.byPrimary(false) }

// Primaries are the clusters that run istiod, in the topology's order.
func (r *Run) Primaries() []*clusters.Cluster { return mesh.Model{Clusters: r.Clusters}.Primaries() }

// Remotes are the remote clusters, in the topology's order.
func (r *Run) Remotes() []*clusters.Cluster { return mesh.Model{Clusters: r.Clusters}.Remotes() }

// Away is the cluster the checks call into from the primary: the first
// remote, or in a multi-primary mesh the second primary.
func (r *Run) Away() *clusters.Cluster {
	if rs := r.Remotes(); len(rs) > 0 {
		return rs[0]
	}
	if ps := r.Primaries(); len(ps) > 1 {
		return ps[1]
	}
	Fail("the topology has one cluster only")
	return nil
}

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
// starts the run and marks the run failed when a spec fails, dumping the
// state at the first failure. Teardown and its audit are not here but in
// TeardownAndAudit, an AfterSuite, so they run after success, after a
// failure and after an interrupt alike.
func Setup() {
	BeforeAll(func(ctx SpecContext) {
		r, err := Start(ctx)
		if err != nil {
			if current != nil && current.MarkFailed() && !current.Interrupted() {
				current.DumpState(ctx)
			}
			Fail("bring up the platform: " + err.Error())
		}
		GinkgoWriter.Printf("clusters up: %d; kubeconfigs in %s\n", len(r.Clusters), r.H.Clusters.KubeconfigDir)
	}, NodeTimeout(60*time.Minute))
	// Dump at the first failure, before inner AfterAlls clean up the
	// workloads a person would want to see.
	// An interrupted run dumps nothing: its grace period is the
	// deletion's (the teardown), and a half-cancelled dump says little.
	AfterEach(func(ctx SpecContext) {
		rep := CurrentSpecReport()
		if current == nil || !rep.Failed() {
			return
		}
		current.interrupted.saw(rep)
		if current.MarkFailed() && !current.Interrupted() {
			current.DumpState(ctx)
		}
	}, NodeTimeout(5*time.Minute))
	// A spec's report includes failures of the AfterAll nodes that ran
	// after it, which AfterEach cannot see: the teardown must know.
	ReportAfterEach(func(rep SpecReport) {
		if rep.Failed() && current != nil {
			current.interrupted.saw(rep)
			current.MarkFailed()
		}
	})
}

// teardownBudget bounds the teardown and its audit. They run on a context
// of their own, which neither an interrupt nor the node's timeout cancels
// (a clusters' deletion cut short leaves them behind), and Ginkgo waits
// that long for them after a first interrupt (GracePeriod). A second
// interrupt still makes Ginkgo give up on them: Ginkgo's rule.
const teardownBudget = 8 * time.Minute

// AfterSuiteTeardown declares TeardownAndAudit as the suite's AfterSuite,
// within its budget, and the deletion's fallback: every suite calls it
// once, at the top level.
//
// At a second interrupt Ginkgo skips cleanup nodes, and gives up on the
// one running (the AfterSuite's deletion goes on, in its goroutine, until
// the process exits); it still runs reporting nodes. So a ReportAfterSuite
// finishes the deletion: it waits for the one under way, or does it. A
// third interrupt ends the process at once: `make clean` (CI's exit trap,
// the workflow's last step) removes what is left.
func AfterSuiteTeardown() bool {
	AfterSuite(TeardownAndAudit, NodeTimeout(teardownBudget+time.Minute), GracePeriod(teardownBudget))
	// A body without a context would get Ginkgo's default 30 s grace once
	// the suite is interrupted: the deletion gets its whole budget.
	return ReportAfterSuite("the deletion, after a second interrupt", func(_ SpecContext, _ Report) { deleteAfterInterrupt() },
		NodeTimeout(teardownBudget+time.Minute), GracePeriod(teardownBudget))
}

// deleteAfterInterrupt finishes the run's deletion when Ginkgo skipped or
// abandoned the AfterSuite; after a finished AfterSuite (whatever its
// outcome: it released the platform lock, and a retry without it could
// delete the next run's clusters) it does nothing.
func deleteAfterInterrupt() {
	r := current
	if r == nil || r.H.Config.KeepClusters || r.afterSuiteDone.Load() {
		return
	}
	// A run stopped at its preflight created nothing: what exists is
	// someone else's (a mesh up keeps, for one).
	if _, taken := r.H.InventoryBefore(); !taken && !r.H.Config.BringYourOwn() {
		_ = r.H.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), teardownBudget)
	defer cancel()
	if err := r.H.Teardown(ctx); err != nil {
		GinkgoWriter.Printf("deletion after an interrupt: %v (make clean removes what is left)\n", err)
	}
	_ = r.H.Close()
}

// TeardownAndAudit is every suite's AfterSuite: it removes everything the
// run created (clusters, registry, network; logs exported first when the
// run failed), then audits the machine against the inventory taken before
// the run and fails, naming each leftover, when anything remains. As an
// AfterSuite it runs after an interrupt too, and its outcome is a testcase
// of its own in the JUnit report ("[AfterSuite] …").
func TeardownAndAudit(sctx SpecContext) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(sctx), teardownBudget)
	defer cancel()
	r := current
	if r == nil {
		AddReportEntry("teardown audit", "the run created nothing (it stopped before its harness existed)")
		return
	}
	defer func() {
		AddReportEntry("phases", r.H.Run.Phases())
		_ = r.H.Close()
		r.afterSuiteDone.Store(true)
	}()
	if r.H.Config.KeepClusters {
		_ = r.teardown(ctx)
		// Skipped, not passed: a verdict must not count an audit never made.
		Skip("teardown audit not run: MESHCONFORM_KEEP_CLUSTERS=1 keeps the clusters")
	}
	if r.H.Config.BringYourOwn() {
		auditBrought(ctx, r)
		return
	}
	before, taken := r.H.InventoryBefore()
	if !taken {
		// The inventory is the step after the preflight: a run that
		// stopped before it created nothing, and has nothing to remove.
		AddReportEntry("teardown audit", "the run created nothing: it stopped at its preflight, before its inventory")
		return
	}
	// Teardown comes first whatever else fails: an inventory that cannot
	// be taken must not leave clusters behind.
	during, derr := r.H.Snapshot(ctx)
	terr := r.teardown(ctx)
	after, aerr := r.H.Snapshot(ctx)
	Expect(terr).NotTo(HaveOccurred(), "teardown")
	Expect(derr).NotTo(HaveOccurred(), "inventory before teardown")
	Expect(aerr).NotTo(HaveOccurred(), "inventory after teardown")
	AddReportEntry("teardown audit", fmt.Sprintf("before the run: %s; during: %s; after teardown: %s", before, during, after))
	r.H.Run.Figure("audit_before", before)
	r.H.Run.Figure("audit_during", during)
	r.H.Run.Figure("audit_after", after)
	names, nerr := r.H.ClusterNames()
	Expect(nerr).NotTo(HaveOccurred(), "the topologies' cluster names")
	left, lerr := r.H.Leftovers(ctx, names...)
	r.H.Run.Figure("audit_leftovers", len(after.NewSince(before))+len(left))
	Expect(lerr).NotTo(HaveOccurred(), "list meshconform's objects")
	Expect(after.NewSince(before)).To(BeEmpty(), "created by the run and still present")
	Expect(left).To(BeEmpty(), "meshconform's objects still present")
}

// auditBrought is the teardown audit on clusters the user brought: the
// run's namespaces are removed, then the audit's scope of every cluster
// (snapshot.MeshScope) is compared with the snapshot taken before the run.
// Anything added, removed, replaced or edited fails the audit, named; on a
// mesh the run did not install, an addition or edit made under another
// field manager than the run's is the cluster's own churn, reported, not
// failed (snapshot.CompareAttributed).
func auditBrought(ctx context.Context, r *Run) {
	// A mesh the run installed goes even when the uninstall spec did not
	// run (a failure before it, a filter, an interrupt).
	var uerr error
	if m := r.InstalledMesh(); m != nil && r.H.Config.Mesh == harness.MeshInstall {
		uerr = m.Installer.Uninstall(ctx, r.Clusters...)
		r.ForgetMesh()
	}
	terr := r.teardown(ctx)
	Expect(uerr).NotTo(HaveOccurred(), "uninstall the Istio the run installed")
	diffs, derr := r.H.ClustersAsFound(ctx)
	Expect(terr).NotTo(HaveOccurred(), "remove the run's namespaces")
	Expect(derr).NotTo(HaveOccurred(), "snapshot the clusters after the run")
	changed := 0
	for name, d := range diffs {
		AddReportEntry("clusters as found: "+name, d.String())
		changed += len(d.Added) + len(d.Removed) + len(d.Replaced) + len(d.Changed)
	}
	r.H.Run.Figure("audit_objects_changed", changed)
	for name, d := range diffs {
		Expect(d.Empty()).To(BeTrue(), "cluster %s not left as found:\n%s", name, d)
	}
}

// Mesh installs Istio the first time it is called, on every cluster of the
// topology by its role, and returns it; later calls
// return the same mesh, so every spec shares one install. With
// MESHCONFORM_MESH=existing it installs nothing and describes the mesh
// found on the brought clusters.
func (r *Run) Mesh(ctx context.Context) (*harness.Istio, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mesh != nil {
		return r.mesh.m, r.mesh.err
	}
	r.mesh = &meshOnce{}
	if r.H.Config.Mesh == harness.MeshExisting {
		r.mesh.m, r.mesh.err = r.H.ExistingMesh(ctx, r.byPrimaryUnlocked(true), r.Clusters)
		return r.mesh.m, r.mesh.err
	}
	m, err := r.H.PrepareIstio(ctx)
	if err == nil {
		r.mesh.m = m
		err = m.Install(ctx, r.Clusters...)
	}
	r.mesh.err = err
	return r.mesh.m, err
}

// Verify describes the installed mesh m to the checks of package verify
// (no sample apps: their frontends are added by whoever deploys them).
func (r *Run) Verify(m *harness.Istio) *verify.Mesh {
	return &verify.Mesh{Model: mesh.Model{Clusters: r.Clusters, Revision: m.Revision, TrustDomain: m.TrustDomain}, Primary: r.Primary(), Away: r.Away(), Istio: m, RunLabels: r.H.RunLabels(), Frontends: map[string]string{}}
}

// InstalledMesh returns the mesh if Mesh ran, else nil.
func (r *Run) InstalledMesh() *harness.Istio {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mesh == nil {
		return nil
	}
	return r.mesh.m
}

// UseMesh records a mesh a suite installed itself (the upgrade suite
// installs several), so a failure's dump shows its control plane.
func (r *Run) UseMesh(m *harness.Istio) {
	r.mu.Lock()
	r.mesh = &meshOnce{m: m}
	r.mu.Unlock()
}

// ForgetMesh records that the mesh was uninstalled.
func (r *Run) ForgetMesh() {
	r.mu.Lock()
	r.mesh = nil
	r.mu.Unlock()
}

type meshOnce struct {
	m   *harness.Istio
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
