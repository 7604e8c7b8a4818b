package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/internal/fsutil"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/rbac"
	"github.com/meshconform/meshconform/e2e/report"
	"github.com/meshconform/meshconform/e2e/snapshot"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// brought is a run on clusters the user brought: matching contexts to the
// topology, attaching, the snapshots that prove the clusters are left as
// found, and removing what the run made there and nothing else. It needs
// no Harness, so the doctor and the CLI's validation use it alone.
type brought struct {
	cfg    Config
	topo   *topology.Topology
	run    *report.Run
	out    io.Writer
	labels workloads.RunLabels

	contexts []clusters.Brought
	// kubeconfig is the user's, loaded once when the settings are checked.
	kubeconfig *clientcmdapi.Config
	// dir holds one kubeconfig per cluster (the user's credentials): 0700,
	// outside the artifacts, removed when the run closes.
	dir      string
	attached []*clusters.Cluster
	before   map[string]snapshot.Snapshot
	// notListed are what the snapshot before the run could not list, per
	// cluster (reported with the audit).
	notListed map[string][]string
}

// newRunID names a run uniquely enough to tell its namespaces from another
// run's on a shared cluster.
func newRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102t150405") + "-" + hex.EncodeToString(b)
}

// checkBrought matches the contexts to the topology's clusters and to the
// kubeconfig, before anything is touched. run and out may be nil (nothing
// to report).
func checkBrought(cfg Config, topo *topology.Topology, run *report.Run, out io.Writer, labels workloads.RunLabels) (*brought, error) {
	if run == nil {
		run = report.NewRun(io.Discard)
	}
	if out == nil {
		out = io.Discard
	}
	var names []string
	for _, c := range topo.Clusters {
		names = append(names, c.Name)
	}
	given := slices.Sorted(maps.Keys(cfg.Contexts))
	if !slices.Equal(given, slices.Sorted(slices.Values(names))) {
		return nil, fmt.Errorf("MESHCONFORM_CONTEXTS names clusters %s; the topology (kindconfigs/, MESHCONFORM_TOPOLOGY) has %s: give a context for each", strings.Join(given, ", "), strings.Join(names, ", "))
	}
	if err := checkIstioNamespaces(cfg.Mesh, topo); err != nil {
		return nil, err
	}
	kc, err := clusters.LoadKubeconfig(cfg.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("MESHCONFORM_KUBECONFIG: %w", err)
	}
	b := &brought{cfg: cfg, topo: topo, run: run, out: out, labels: labels, kubeconfig: kc}
	for _, n := range names {
		b.contexts = append(b.contexts, clusters.Brought{Name: n, Context: cfg.Contexts[n]})
	}
	if err := clusters.CheckContexts(kc, b.contexts); err != nil {
		return nil, err
	}
	return b, nil
}

// checkIstioNamespaces refuses an install into a namespace other than
// the one an install puts Istio in: istioNamespace describes a mesh found
// on the clusters, which only an existing mesh has.
func checkIstioNamespaces(how string, topo *topology.Topology) error {
	if how == MeshExisting {
		return nil
	}
	for _, c := range topo.Clusters {
		if ns := c.IstioNamespace(); ns != mesh.Namespace {
			return fmt.Errorf("cluster %s: the clusters file names istioNamespace %s, but MESHCONFORM_MESH=%s installs Istio into %s: name no istioNamespace, or judge the mesh there with MESHCONFORM_MESH=existing", c.Name, ns, how, mesh.Namespace)
		}
	}
	return nil
}

// Attach attaches the clusters cfg names, read-only: no snapshot, no
// run of any kind (the doctor; cfg.Mesh should be MeshExisting, so the
// mesh network is read from the clusters). close removes the private
// kubeconfigs.
func Attach(ctx context.Context, cfg Config, out io.Writer) (cls []*clusters.Cluster, close func() error, err error) {
	topo, err := cfg.LoadTopology()
	if err != nil {
		return nil, nil, err
	}
	b, err := checkBrought(cfg, topo, nil, out, nil)
	if err != nil {
		return nil, nil, err
	}
	if cls, err = b.attach(ctx, false, nil); err != nil {
		return nil, nil, errors.Join(err, b.close())
	}
	return cls, b.close, nil
}

// credentialsPrefix names the directories that hold a run's flattened
// kubeconfigs (inline tokens); their names carry the owner's process ID.
const credentialsPrefix = "meshconform-byo-"

// sweepStale removes the directories named prefix* in dir whose owner (the
// process ID their name carries) is dead: a run that died before its Close
// (a panic, a second interrupt, SIGKILL) must not leave tokens or caches
// on disk for ever. A live run's directory is left alone.
func sweepStale(dir, prefix string) {
	matches, _ := filepath.Glob(filepath.Join(dir, prefix+"*"))
	for _, m := range matches {
		if fsutil.StaleTemp(m) {
			_ = os.RemoveAll(m)
		}
	}
}

// attach attaches the brought clusters side by side and checks that an
// install has a clean slate and that none of appNamespaces exists; with
// snap, it snapshots every cluster before the run creates anything (see
// asFound).
func (h *brought) attach(ctx context.Context, snap bool, appNamespaces []string) ([]*clusters.Cluster, error) {
	cfg := h.kubeconfig
	var err error
	sweepStale(os.TempDir(), credentialsPrefix)
	if h.dir, err = os.MkdirTemp("", credentialsPrefix+"*"+fsutil.Owned(".tmp")); err != nil {
		return nil, err
	}
	out := make([]*clusters.Cluster, len(h.contexts))
	snaps := make([]snapshot.Snapshot, len(h.contexts))
	notListed := make([][]string, len(h.contexts))
	g, gctx := errgroup.WithContext(ctx)
	for i, b := range h.contexts {
		role, err := h.topo.Cluster(b.Name)
		if err != nil {
			return nil, err
		}
		g.Go(func() error {
			return h.run.Time("attach cluster "+b.Name+" (context "+b.Context+")", func() error {
				// Before anything is read: every right the run lacks, named.
				if snap {
					if err := h.checkCredentials(gctx, role, b.Context); err != nil {
						return err
					}
				}
				cl, err := clusters.Attach(gctx, cfg, role, b.Context, h.dir)
				if err != nil {
					return err
				}
				if err := h.checkMeshSlate(gctx, cl); err != nil {
					return err
				}
				if err := checkNamespacesFree(gctx, cl, appNamespaces); err != nil {
					return err
				}
				out[i] = cl
				if !snap {
					return nil
				}
				snaps[i], notListed[i], err = snapshot.TakeScoped(gctx, cl.Client.RESTConfig(), auditScope(cl))
				if err != nil {
					return fmt.Errorf("cluster %s: snapshot before the run: %w", cl.Name, err)
				}
				h.run.Figure("objects_before_"+cl.Name, len(snaps[i]))
				return nil
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := (mesh.Model{Clusters: out}).PodRanges(); err != nil {
		return nil, err
	}
	how, err := clusters.PlanLocality(out)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(h.out, "   %s\n", how)
	h.attached, h.before, h.notListed = out, map[string]snapshot.Snapshot{}, map[string][]string{}
	for i, cl := range out {
		h.before[cl.Name] = snaps[i]
		h.notListed[cl.Name] = notListed[i]
		fmt.Fprintf(h.out, "   cluster %s: context %s, region %s, zone %q, pod CIDRs %s, mesh network %s\n",
			cl.Name, h.cfg.Contexts[cl.Name], cl.Region, cl.Zone, describePodRange(cl), cl.MeshNetwork)
		if cl.PodLocality {
			h.run.Figure("locality_"+cl.Name, "pod label "+clusters.LocalityLabel)
		}
	}
	return out, nil
}

// checkMeshSlate refuses to install Istio over a cluster that has some, and
// reads the mesh network of a mesh already installed.
func (h *brought) checkMeshSlate(ctx context.Context, cl *clusters.Cluster) error {
	if h.cfg.Mesh == MeshInstall {
		found, err := mesh.Remains(ctx, cl.Client)
		if err != nil {
			return err
		}
		if len(found) > 0 {
			return fmt.Errorf("cluster %s already has Istio (%s): MESHCONFORM_MESH=install needs clusters without it; MESHCONFORM_MESH=existing tests the mesh installed", cl.Name, strings.Join(found[:min(3, len(found))], "; "))
		}
		return nil
	}
	var ns corev1.Namespace
	if err := cl.Client.Resources().Get(ctx, cl.IstioNamespace(), "", &ns); err != nil {
		return fmt.Errorf("cluster %s: MESHCONFORM_MESH=existing, but %s cannot be read: %w", cl.Name, cl.IstioNamespace(), err)
	}
	if n := ns.Labels[mesh.NetworkLabel]; n != "" {
		cl.MeshNetwork = n
	}
	return nil
}

// checkNamespacesFree refuses a brought cluster that has one of the
// namespaces the specs create for their apps: the run would fail creating
// it mid-way (after an install), and the namespace is not its to use.
func checkNamespacesFree(ctx context.Context, cl *clusters.Cluster, names []string) error {
	var taken []string
	for _, name := range names {
		var ns corev1.Namespace
		err := cl.Client.Resources().Get(ctx, name, "", &ns)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("cluster %s: look for namespace %s: %w", cl.Name, name, err)
		case ns.Labels[workloads.RunLabel] != "":
			taken = append(taken, fmt.Sprintf("%s (left by meshconform run %s)", name, ns.Labels[workloads.RunLabel]))
		default:
			taken = append(taken, name)
		}
	}
	if len(taken) > 0 {
		return fmt.Errorf("cluster %s already has namespace %s: the run creates its apps' namespaces (%s) and removes them after, so they must not exist; remove them or bring other clusters",
			cl.Name, strings.Join(taken, ", "), strings.Join(names, ", "))
	}
	return nil
}

// removeRunNamespaces deletes, on the brought clusters, every namespace
// labelled with this run's ID, whatever spec made it and however it ended:
// the run removes what it created and nothing else.
func (h *brought) removeRunNamespaces(ctx context.Context) error {
	var nss []workloads.Namespace
	for _, cl := range h.attached {
		names, err := runNamespaces(ctx, cl, h.labels)
		if err != nil {
			return err
		}
		for _, n := range names {
			nss = append(nss, workloads.Namespace{Client: cl.Client, Name: n})
		}
	}
	return h.run.Time(fmt.Sprintf("remove the run's namespaces (%d)", len(nss)), func() error {
		return workloads.DeleteNamespaces(ctx, nss...)
	})
}

// ClustersAsFound snapshots every brought cluster again and compares it with
// the snapshot taken before the run: empty diffs prove the run left them
// exactly as found.
func (h *Harness) ClustersAsFound(ctx context.Context) (map[string]snapshot.Diff, error) {
	if h.byo == nil || h.byo.before == nil {
		return nil, errors.New("no snapshot was taken before the run")
	}
	return h.byo.asFound(ctx)
}

func (h *brought) asFound(ctx context.Context) (map[string]snapshot.Diff, error) {
	out := map[string]snapshot.Diff{}
	var errs []error
	for _, cl := range h.attached {
		after, notListed, err := snapshot.TakeScoped(ctx, cl.Client.RESTConfig(), auditScope(cl))
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: snapshot after the run: %w", cl.Name, err))
			continue
		}
		// The cluster's own writes go on during the run; the run's carry
		// its field manager. A run that installs Istio answers for all
		// that Istio's install and istiod wrote, under whatever manager,
		// so nothing is attributed there ("": every difference the run's).
		runManager := ""
		if h.cfg.Mesh == MeshExisting {
			runManager = workloads.FieldManager
		}
		d := snapshot.CompareAttributed(h.before[cl.Name], after, runManager)
		if runManager != "" {
			h.run.Figure("audit_by_others_"+cl.Name, len(d.Others))
		}
		d.NotListed = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(h.notListed[cl.Name]), notListed...))))
		out[cl.Name] = d
		if len(d.NotListed) > 0 {
			h.run.Figure("audit_not_listed_"+cl.Name, d.NotListed)
		}
	}
	return out, errors.Join(errs...)
}

// close removes the private kubeconfigs.
func (h *brought) close() error {
	if h == nil || h.dir == "" {
		return nil
	}
	return os.RemoveAll(h.dir)
}

// teardown removes what the run made on the clusters (its namespaces, the
// config maps istiod wrote into the user's) and the private kubeconfigs;
// the clients keep their configuration in memory for the audit.
func (h *brought) teardown(ctx context.Context) error {
	return errors.Join(h.removeRunNamespaces(ctx), h.removeIstiodConfigMapsLeft(ctx), h.close())
}

// describeContexts is the settings line that reproduces a run on these
// clusters.
func describeContexts(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// preflight checks that the clusters can get the sample apps, and Istio's
// images when the run installs Istio from the local source (istioVersions,
// each version it installs): the user's registry holds this checkout's
// build of each (`meshconform images push`), or else meshconform's own
// registry, which `meshconform up` leaves running, serves them (the local
// source on kept clusters).
func (h *brought) preflight(ctx context.Context, source images.Source, reg *images.UserRegistry, istioVersions []string) error {
	_, local := source.(*images.Local)
	if reg != nil {
		tags, err := images.AppRepoTags(h.cfg.RepoRoot)
		if err != nil {
			return err
		}
		want := slices.Sorted(maps.Values(tags))
		push := "meshconform images push " + reg.Prefix
		if local && h.cfg.Mesh == MeshInstall {
			for _, v := range istioVersions {
				rel, err := images.LookupIstioRelease(v)
				if err != nil {
					return err
				}
				pilot, proxy := images.IstioUserRepoTags(rel)
				want = append(want, pilot, proxy)
				push += " --istio-version " + v
			}
		}
		missing, err := reg.Missing(ctx, want)
		if err != nil {
			return fmt.Errorf("the run's images in %s: %w", reg.Prefix, err)
		}
		if len(missing) > 0 {
			return fmt.Errorf("%s lacks this checkout's build of %s: run `%s` (or `images save` here and `images push --from` where the registry is reached)",
				reg.Prefix, strings.Join(missing, ", "), push)
		}
		return nil
	}
	if local {
		return images.RegistryServing(ctx, h.cfg.RegistryPort)
	}
	return fmt.Errorf("MESHCONFORM_IMAGE_SOURCE=upstream on brought clusters: the sample apps are built here; push them to a registry of yours (`meshconform images push REGISTRY`) and give it with --image-registry")
}

// Validate checks settings against the topology and, for brought clusters,
// the kubeconfig, creating nothing: the CLI's one clear error before a
// suite is even built.
func Validate(cfg Config) error {
	topo, err := cfg.LoadTopology()
	if err != nil {
		return err
	}
	if _, err := images.LookupKubeRelease(cfg.KubernetesVersion); err != nil {
		return err
	}
	if !cfg.BringYourOwn() {
		return nil
	}
	_, err = checkBrought(cfg, topo, nil, nil, nil)
	return err
}

// dumpNamespaces are the namespaces a failure's dump may read on cl: all
// of them on clusters the run created (nil), only Istio's and the run's own
// on clusters the user brought — their workloads' logs are not ours to copy.
func (h *brought) dumpNamespaces(ctx context.Context, cl *clusters.Cluster) []string {
	if h == nil {
		return nil
	}
	// A failed listing still leaves Istio's namespace to dump.
	names, _ := runNamespaces(ctx, cl, h.labels)
	return append([]string{cl.IstioNamespace()}, names...)
}

// runNamespaces names the namespaces of cl that carry the run's labels.
func runNamespaces(ctx context.Context, cl *clusters.Cluster, run workloads.RunLabels) ([]string, error) {
	sel := run.Selector()
	if sel == "" {
		// An empty selector is every namespace: never the run's.
		return nil, fmt.Errorf("cluster %s: the run has no ID to find its namespaces by", cl.Name)
	}
	var list corev1.NamespaceList
	if err := cl.Client.Resources().List(ctx, &list, resources.WithLabelSelector(sel)); err != nil {
		return nil, fmt.Errorf("cluster %s: list the run's namespaces: %w", cl.Name, err)
	}
	var names []string
	for _, ns := range list.Items {
		names = append(names, ns.Name)
	}
	return names, nil
}

// checkCredentials refuses, before the run touches anything, credentials
// that lack a right a run on an existing mesh needs (rbac.RunRoles),
// naming every one. An install needs far more (the whole of Istio's
// install): it is not judged here.
func (h *brought) checkCredentials(ctx context.Context, role topology.Cluster, kubeContext string) error {
	name := role.Name
	if h.cfg.Mesh != MeshExisting {
		return nil
	}
	rc, err := clientcmd.NewNonInteractiveClientConfig(*h.kubeconfig, kubeContext, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return fmt.Errorf("cluster %s (context %s): %w", name, kubeContext, err)
	}
	// About a hundred reviews: client-go's default 5 requests/s would
	// take 20 s.
	rc.QPS, rc.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	missing, err := rbac.Lacking(ctx, cs, role.IstioNamespace())
	if err != nil {
		return fmt.Errorf("cluster %s (context %s): %w", name, kubeContext, err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("cluster %s (context %s): the credentials lack %d rights a run on an existing mesh needs: %s; `meshconform rbac` prints the roles to bind (--istio-namespace %s)", name, kubeContext, len(missing), strings.Join(missing, ", "), role.IstioNamespace())
	}
	return nil
}

// auditScope is what the audit of a brought cluster lists: the mesh and
// what a run may touch, and in every namespace the config maps istiod
// writes into each (which an uninstall leaves, istio/istio#23706).
func auditScope(cl *clusters.Cluster) snapshot.Scope {
	return snapshot.MeshScope(cl.IstioNamespace(), map[string][]string{"configmaps": mesh.IstiodNamespaceConfigMaps})
}

// removeIstiodConfigMapsLeft deletes, after a run that installed Istio on
// brought clusters, the config maps its istiod wrote into the user's
// namespaces (mesh.IstiodNamespaceConfigMaps, which an uninstall leaves:
// istio/istio#23706): those the snapshot before the run did not have.
func (h *brought) removeIstiodConfigMapsLeft(ctx context.Context) error {
	if h.cfg.Mesh != MeshInstall {
		return nil
	}
	var errs []error
	for _, cl := range h.attached {
		var list corev1.ConfigMapList
		if err := cl.Client.Resources().List(ctx, &list, resources.WithLabelSelector(mesh.IstiodConfigLabel)); err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: list config maps %s: %w", cl.Name, mesh.IstiodConfigLabel, err))
			continue
		}
		for i, cm := range list.Items {
			if _, existed := h.before[cl.Name]["configmaps "+cm.Namespace+"/"+cm.Name]; existed || !slices.Contains(mesh.IstiodNamespaceConfigMaps, cm.Name) {
				continue
			}
			if err := cl.Client.Resources().Delete(ctx, &list.Items[i]); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("cluster %s: delete %s/%s: %w", cl.Name, cm.Namespace, cm.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// describePodRange says how the cluster's answers are placed.
func describePodRange(cl *clusters.Cluster) string {
	if !cl.PodSubnet.IsValid() {
		return "none on the nodes (calls placed by the API server's pods)"
	}
	return "within " + cl.PodSubnet.String()
}
