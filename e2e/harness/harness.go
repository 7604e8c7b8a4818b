package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/internal/docker"
	"github.com/meshconform/meshconform/e2e/internal/fsutil"
	"github.com/meshconform/meshconform/e2e/report"
	"github.com/meshconform/meshconform/e2e/runlock"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// Harness is one run: its settings, topology, images and clusters.
type Harness struct {
	Config   Config
	Topology *topology.Topology
	Release  images.KubeRelease
	Run      *report.Run
	Source   images.Source
	Clusters *clusters.Manager
	Images   images.ClusterImages

	// PrebuildMesh starts the Istio release's images and the sample apps in
	// the background as soon as the registry is up, for a run that will
	// install the mesh (see Prebuild).
	PrebuildMesh bool
	// IstioVersions are the Istio versions the run installs (default: the
	// run's own; the upgrade suite's are both of its versions): the
	// prebuild builds them, and on clusters a user brings the preflight
	// looks their images up in the user's registry.
	IstioVersions []string
	// AppNamespaces are the namespaces the specs create for their apps:
	// on clusters a user brings, attach refuses a cluster that has one
	// already, before the run creates anything.
	AppNamespaces []string

	out      io.Writer
	buildLog *os.File
	// bg runs the prebuild: it outlives the step that starts it and
	// ends at teardown.
	bg        *background
	cacheLock *images.CacheLock
	closeOnce sync.Once
	// tmp is the run's temporary directory (tools' caches), removed at
	// Close; its name carries the process ID, for the stale sweep.
	tmp string
	// platformLock is held by a run that creates clusters (runlock).
	platformLock *runlock.Lock
	mu           sync.Mutex
	created      map[string]*clusters.Cluster
	// teardownMu serializes teardowns and Close; tornDown says one
	// succeeded, closed that Close ran.
	teardownMu       sync.Mutex
	tornDown, closed bool
	// byo is set on clusters the user brought (Config.BringYourOwn).
	byo *brought
	// userRegistry serves the sample apps when the user gave one
	// (Config.ImageRegistry): nothing of them is built.
	userRegistry *images.UserRegistry
	// RunID labels what the run creates in clusters (workloads.RunLabel).
	RunID string
	// before is the machine's inventory before the run created anything
	// (a platform step), for the teardown audit; nil until taken.
	before *Inventory
	// nodeMem samples the memory of the run's kind node containers; nil
	// for clusters the user brought (not ours to measure).
	nodeMem *report.NodeMemorySampler
}

// New validates everything that needs no Docker (settings, the topology
// they name, read by the caller with Config.LoadTopology, versions) and
// returns the run. Nothing is created yet.
func New(cfg Config, topo *topology.Topology, out io.Writer) (*Harness, error) {
	if topo == nil {
		return nil, fmt.Errorf("no topology")
	}
	var err error
	release, err := images.LookupKubeRelease(cfg.KubernetesVersion)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.ArtifactsDir, 0o755); err != nil {
		return nil, fmt.Errorf("artifacts directory: %w", err)
	}
	h := &Harness{
		Config: cfg, Topology: topo, Release: release, Run: report.NewRun(out),
		out: out, created: map[string]*clusters.Cluster{},
	}
	if h.userRegistry, err = cfg.UserRegistry(); err != nil {
		return nil, err
	}
	// The locks first: a run refused because another holds the machine
	// must not touch that run's files (the same artifacts directory).
	if err := h.hold(); err != nil {
		h.release()
		return nil, err
	}
	if h.buildLog, err = os.Create(filepath.Join(cfg.ArtifactsDir, "build.log")); err != nil {
		h.release()
		return nil, err
	}
	if cfg.BringYourOwn() {
		h.Run.Figure("clusters", "brought: "+describeContexts(cfg.Contexts))
		h.Run.Figure("mesh_mode", cfg.Mesh)
	}
	h.bg = newBackground()
	// CPU use over the whole run, for the report and the Gantt chart: when
	// both cores are busy throughout, only less work makes a run faster.
	h.Run.StartCPU(report.DefaultCPUInterval)
	// The node containers' memory at its peak: what a machine must hold to
	// run this topology.
	if !cfg.BringYourOwn() {
		h.nodeMem = report.StartNodeMemory(report.DefaultNodeMemoryInterval, h.nodeContainers)
	}
	if cfg.Source == images.SourceLocal {
		h.Source = images.NewLocal(release, cfg.CacheDir, cfg.RegistryPort, h.Run, h.buildLog)
	} else {
		h.Source = images.NewUpstream(release, cfg.CacheDir, cfg.RegistryPort, h.Run, h.buildLog)
	}
	h.Clusters = clusters.NewManager(topo.Network, filepath.Join(cfg.ArtifactsDir, "kubeconfig"), out)
	h.Clusters.Time = h.Run.Time
	h.Run.Figure("image_source", cfg.Source)
	h.Run.Figure("kubernetes_version", release.Version)
	return h, nil
}

// hold takes what the run holds until Close: the image cache (no prune
// while it is used), its temporary directory, and, for clusters it
// creates, the platform lock (no other run replaces or deletes them); for
// brought clusters, their check.
func (h *Harness) hold() (err error) {
	if h.cacheLock, err = images.LockCacheShared(h.Config.CacheDir); err != nil {
		return err
	}
	h.RunID = newRunID()
	sweepStale(os.TempDir(), runTempPrefix)
	if h.tmp, err = os.MkdirTemp("", runTempPrefix+"*"+fsutil.Owned(".tmp")); err != nil {
		return fmt.Errorf("the run's temporary directory: %w", err)
	}
	if h.Config.BringYourOwn() {
		h.byo, err = checkBrought(h.Config, h.Topology, h.Run, h.out, h.RunLabels())
		return err
	}
	h.platformLock, err = runlock.Acquire(StateDir(), h.owner())
	return err
}

// release lets go of what hold took, for a run that never started.
func (h *Harness) release() {
	if h.buildLog != nil {
		h.buildLog.Close()
	}
	if h.tmp != "" {
		_ = os.RemoveAll(h.tmp)
	}
	_ = h.cacheLock.Unlock()
	_ = h.platformLock.Release()
}

// runTempPrefix names the runs' temporary directories.
const runTempPrefix = "meshconform-run-"

// owner is this run as the platform lock records it.
func (h *Harness) owner() runlock.Owner {
	cmd := strings.Join(append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...), " ")
	if len(cmd) > 300 {
		cmd = cmd[:300] + "…"
	}
	return runlock.Owner{PID: os.Getpid(), RunID: h.RunID, Command: cmd, Artifacts: h.Config.ArtifactsDir, Started: time.Now()}
}

// RunLabels are the labels every namespace the run creates carries (its
// ID, the Pod Security level it enforces, the user's namespace labels):
// pass them to workloads.CreateNamespace.
func (h *Harness) RunLabels() workloads.RunLabels {
	return workloads.ForRun(h.RunID).With(h.Config.NamespaceLabels, workloads.PodSecurityLabels(h.Config.PodSecurity()))
}

// nodeContainers lists the running kind node containers of this run's
// clusters (other kind clusters on the machine are not ours), with full IDs:
// the names of their cgroups.
func (h *Harness) nodeContainers() ([]report.NodeContainer, error) {
	// Bounded: the sampler waits for it, and Close waits for the sampler.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lines, err := docker.Lines(ctx, "ps", "--no-trunc", "--filter", "label=io.x-k8s.kind.cluster",
		"--format", `{{.ID}} {{.Label "io.x-k8s.kind.cluster"}}`)
	if err != nil {
		return nil, err
	}
	var out []report.NodeContainer
	for _, l := range lines {
		id, cluster, _ := strings.Cut(l, " ")
		for _, c := range h.Topology.Clusters {
			if c.Name == cluster {
				out = append(out, report.NodeContainer{ID: id, Cluster: cluster})
			}
		}
	}
	return out, nil
}

// removeStaleTemp deletes what builds of an earlier, killed run left half
// done in the cache (unfinished build directories and root filesystem
// trees, a killed debootstrap's /proc and /sys mounts detached first):
// they are never reused, only in the way. A build of a process still
// running (a prebuild beside this run) is left alone.
func (h *Harness) removeStaleTemp() {
	for _, pattern := range []string{"*/*.tmp", "*/*.tree"} {
		matches, _ := filepath.Glob(filepath.Join(h.Config.CacheDir, pattern))
		for _, m := range matches {
			if !fsutil.StaleTemp(m) {
				continue
			}
			if err := fsutil.RemoveTree(m); err != nil {
				fmt.Fprintf(h.out, "   could not remove %s, left by an interrupted build: %v\n", m, err)
			} else {
				fmt.Fprintf(h.out, "   removed %s, left by an interrupted build\n", m)
			}
		}
	}
}

// istioVersions are IstioVersions, or else the run's own version.
func (h *Harness) istioVersions() []string {
	if len(h.IstioVersions) == 0 {
		return []string{h.Config.IstioVersion}
	}
	return h.IstioVersions
}

// prebuild starts, in the background, what the install and the sample apps
// will wait for: the Istio release's images and istioctl, and every app of
// fixtures/apps. They overlap the cluster images, the clusters' bring-up
// and the platform specs instead of following them; the Istio build runs at
// a lower CPU priority so the cluster images, needed first, get the cores
// first. PrepareIstio and App later join these builds (each runs once).
// Errors surface there, when the result is asked for.
func (h *Harness) prebuild(local *images.Local) {
	for _, v := range h.istioVersions() {
		if rel, err := images.LookupIstioRelease(v); err == nil {
			h.bg.start(func(ctx context.Context) { _, _ = local.Istio(ctx, rel) })
		}
	}
	apps, _ := images.SampleApps(h.Config.RepoRoot)
	for _, name := range apps {
		h.bg.start(func(ctx context.Context) { _, _ = local.App(ctx, h.Config.RepoRoot, name) })
	}
}

// App returns the image reference of a sample app in fixtures/apps: in
// the user's registry when one is given (the preflight found it there),
// else from the image source. Pods that run it take PullSecret.
func (h *Harness) App(ctx context.Context, name string) (string, error) {
	var ref string
	var err error
	if h.userRegistry != nil {
		var rt string
		rt, err = images.AppRepoTag(h.Config.RepoRoot, name)
		ref = h.userRegistry.Ref(rt)
	} else {
		err = h.Run.Time("app image "+name, func() error {
			var err error
			ref, err = h.Source.App(ctx, h.Config.RepoRoot, name)
			return err
		})
	}
	if err == nil {
		// The report names what the pods ran, and where it came from.
		h.Run.Figure("app_image_"+name, ref)
	}
	return ref, err
}

// PullSecret is what pods pulling App's images need beside them: the
// user's registry credentials, nil when none are given.
func (h *Harness) PullSecret() *workloads.PullSecret {
	if h.userRegistry == nil || h.userRegistry.Auth == nil {
		return nil
	}
	// Only the registry's own credentials go into the clusters; the
	// settings' check made sure the config has them.
	only, err := h.userRegistry.Auth.For(h.userRegistry.Host())
	if err != nil {
		return nil
	}
	return workloads.NewPullSecret(only)
}

// DeleteCluster deletes one cluster of the run.
func (h *Harness) DeleteCluster(ctx context.Context, name string) error {
	err := h.Run.Time("delete cluster "+name, func() error { return h.Clusters.Delete(ctx, name) })
	if err == nil {
		h.mu.Lock()
		delete(h.created, name)
		h.mu.Unlock()
	}
	return err
}

// ExportBudget bounds the export of every cluster's logs at teardown: a
// diagnostic, it must never hold back the deletion that follows it.
const ExportBudget = 90 * time.Second

// ExportLogs writes kind's log bundle of every cluster of the run to
// artifacts/logs, within ExportBudget. kind's bundle lacks images.log (no
// crictl in the node image); the rest is written whatever fails.
func (h *Harness) ExportLogs(ctx context.Context) {
	_ = h.Run.Time("export logs", func() error { h.exportLogs(ctx); return nil })
}

func (h *Harness) exportLogs(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, ExportBudget)
	defer cancel()
	h.mu.Lock()
	names := make([]string, 0, len(h.created))
	for n := range h.created {
		names = append(names, n)
	}
	h.mu.Unlock()
	for _, n := range names {
		dir := filepath.Join(h.Config.ArtifactsDir, "logs")
		if err := h.Clusters.ExportLogs(ctx, n, dir); err != nil {
			fmt.Fprintf(h.out, "   export logs of %s (partial): %v\n", n, err)
		}
	}
}

// Teardown removes everything the run created — clusters, the registry
// container, the Docker network — unless KeepClusters is set. A failed
// run that was not interrupted calls ExportLogs first; an interrupted one
// goes straight here, since a CI runner's short grace period must be spent
// on the deletion.
//
// One teardown runs at a time: a second caller (the suite's fallback,
// after Ginkgo gave up on the first at a second interrupt) waits for the
// first to end and returns at once if it succeeded, else tries again.
func (h *Harness) Teardown(ctx context.Context) error {
	h.bg.stop()
	h.teardownMu.Lock()
	defer h.teardownMu.Unlock()
	if h.tornDown || h.closed {
		// Closed: the platform lock is let go, and what exists may be
		// the next run's.
		return nil
	}
	err := h.teardown(ctx)
	h.tornDown = err == nil
	return err
}

func (h *Harness) teardown(ctx context.Context) error {
	if h.byo != nil {
		// The clusters are the user's: only what the run made there goes.
		return h.byo.teardown(ctx)
	}
	if h.Config.KeepClusters {
		fmt.Fprintf(h.out, "   keeping clusters (MESHCONFORM_KEEP_CLUSTERS=1); kubeconfigs in %s; the next run replaces them\n", h.Clusters.KubeconfigDir)
		return nil
	}
	if h.before == nil {
		// Stopped at its preflight, before its inventory: the run made
		// nothing, and what exists (a mesh up keeps, a name taken) is not
		// its to remove.
		return nil
	}
	return h.RemoveOurs(ctx)
}

// RemoveOurs removes every cluster of meshconform's topologies that is
// ours (its nodes on our network), the local registry and the network:
// what a run made, or, for `meshconform down` and `clean`, what runs left.
// The platform lock, held since New, means no live run owns them.
func (h *Harness) RemoveOurs(ctx context.Context) error {
	h.Clusters.WaitCreates(ctx)
	names, err := h.ClusterNames()
	errs := []error{err}
	for _, name := range names {
		exists, ours, err := h.Clusters.Exists(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if exists && ours {
			errs = append(errs, h.DeleteCluster(ctx, name))
		}
	}
	regErr := h.Run.Time("remove local registry", func() error { return images.RemoveRegistry(ctx) })
	errs = append(errs, regErr)
	if regErr == nil {
		h.pruneCache(ctx)
	}
	errs = append(errs, h.Run.Time("remove docker network", func() error { return clusters.RemoveNetwork(ctx, h.Topology.Network) }))
	return errors.Join(errs...)
}

// ClusterNames names the clusters of every topology of kindconfigs/: a
// teardown removes (and a leftover check looks for) any of them that is
// ours, so clusters kept by a run of another topology go too.
func (h *Harness) ClusterNames() ([]string, error) {
	return topology.AllClusterNames(filepath.Join(h.Config.RepoRoot, "kindconfigs"))
}

// pruneCache keeps the image cache bounded: past MESHCONFORM_CACHE_LIMIT it
// removes what no current recipe uses. It runs once the registry is gone
// (its storage is pruned offline); a failed prune is reported and fails no
// run.
func (h *Harness) pruneCache(ctx context.Context) {
	_, _ = h.Run.TimeNote("prune image cache", func() (string, error) {
		if ok, err := h.cacheLock.TryExclusive(); !ok {
			return "skipped: another run uses the cache", err
		}
		res, pruned, err := images.PruneIfOver(ctx, h.Config.CacheDir, h.Config.CacheLimit, images.PruneOptions{RepoRoot: h.Config.RepoRoot, Log: h.out})
		// The prune measured the cache (after itself): no second walk.
		if err == nil {
			h.Run.Figure("image_cache_bytes_after_run", res.After)
		}
		if !pruned {
			return "under limit", err
		}
		return "removed " + images.FormatBytes(res.RemovedBytes()), err
	})
}

// Close writes the run's report (phases.json and its Gantt chart,
// phases.svg), closes its logs and lets go of its locks. Only the first
// call does: the suite's fallback may call it after the AfterSuite did.
func (h *Harness) Close() error {
	var err error
	h.closeOnce.Do(func() { err = h.close() })
	return err
}

func (h *Harness) close() error {
	// A teardown under way ends first; none starts after.
	h.teardownMu.Lock()
	h.closed = true
	h.teardownMu.Unlock()
	cpu := h.Run.StopCPU()
	if h.nodeMem != nil {
		for k, v := range h.nodeMem.Stop().Figures() {
			h.Run.Figure(k, v)
		}
	}
	err := h.Run.WriteJSON(filepath.Join(h.Config.ArtifactsDir, "phases.json"))
	if f, ferr := os.Create(filepath.Join(h.Config.ArtifactsDir, "phases.svg")); ferr == nil {
		err = errors.Join(err, report.WriteGanttCPU(f, h.Run.Phases(), cpu), f.Close())
	} else {
		err = errors.Join(err, ferr)
	}
	h.buildLog.Close()
	return errors.Join(err, h.byo.close(), os.RemoveAll(h.tmp), h.cacheLock.Unlock(), h.platformLock.Release())
}
