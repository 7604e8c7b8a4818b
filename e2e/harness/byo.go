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
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/report"
	"github.com/meshconform/meshconform/e2e/snapshot"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// byo is the state of a run on clusters the user brought.
type byo struct {
	brought []clusters.Brought
	// kubeconfig is the user's, loaded once when the settings are checked.
	kubeconfig *clientcmdapi.Config
	// dir holds one kubeconfig per cluster (the user's credentials): 0700,
	// outside the artifacts, removed when the run closes.
	dir      string
	attached []*clusters.Cluster
	before   map[string]snapshot.Snapshot
}

// newRunID names a run uniquely enough to tell its namespaces from another
// run's on a shared cluster.
func newRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102t150405") + "-" + hex.EncodeToString(b)
}

// checkBrought matches the contexts to the topology's clusters and to the
// kubeconfig, before anything is touched.
func (h *Harness) checkBrought() error {
	var names []string
	for _, c := range h.Topology.Clusters {
		names = append(names, c.Name)
	}
	given := slices.Sorted(maps.Keys(h.Config.Contexts))
	if !slices.Equal(given, slices.Sorted(slices.Values(names))) {
		return fmt.Errorf("MESHCONFORM_CONTEXTS names clusters %s; the topology (kindconfigs/, MESHCONFORM_TOPOLOGY) has %s: give a context for each", strings.Join(given, ", "), strings.Join(names, ", "))
	}
	cfg, err := clusters.LoadKubeconfig(h.Config.Kubeconfig)
	if err != nil {
		return fmt.Errorf("MESHCONFORM_KUBECONFIG: %w", err)
	}
	h.byo = &byo{kubeconfig: cfg}
	for _, n := range names {
		h.byo.brought = append(h.byo.brought, clusters.Brought{Name: n, Context: h.Config.Contexts[n]})
	}
	return clusters.CheckContexts(cfg, h.byo.brought)
}

// attachClusters attaches the brought clusters side by side, checks that an
// install has a clean slate, and snapshots every cluster before the run
// creates anything (see ClustersAsFound).
func (h *Harness) attachClusters(ctx context.Context) ([]*clusters.Cluster, error) {
	return h.attach(ctx, true)
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
	h := &Harness{Config: cfg, Topology: topo, Run: report.NewRun(io.Discard), out: out}
	if err := h.checkBrought(); err != nil {
		return nil, nil, err
	}
	if cls, err = h.attach(ctx, false); err != nil {
		return nil, nil, errors.Join(err, h.closeBrought())
	}
	return cls, h.closeBrought, nil
}

func (h *Harness) attach(ctx context.Context, snap bool) ([]*clusters.Cluster, error) {
	cfg := h.byo.kubeconfig
	var err error
	if h.byo.dir, err = os.MkdirTemp("", "meshconform-byo-"); err != nil {
		return nil, err
	}
	out := make([]*clusters.Cluster, len(h.byo.brought))
	snaps := make([]snapshot.Snapshot, len(h.byo.brought))
	g, gctx := errgroup.WithContext(ctx)
	for i, b := range h.byo.brought {
		role, err := h.Topology.Cluster(b.Name)
		if err != nil {
			return nil, err
		}
		g.Go(func() error {
			return h.Run.Time("attach cluster "+b.Name+" (context "+b.Context+")", func() error {
				cl, err := clusters.Attach(gctx, cfg, role, b.Context, h.byo.dir)
				if err != nil {
					return err
				}
				if err := h.checkMeshSlate(gctx, cl); err != nil {
					return err
				}
				out[i] = cl
				if !snap {
					return nil
				}
				snaps[i], err = snapshot.Take(gctx, cl.Client.RESTConfig())
				if err != nil {
					return fmt.Errorf("cluster %s: snapshot before the run: %w", cl.Name, err)
				}
				h.Run.Figure("objects_before_"+cl.Name, len(snaps[i]))
				return nil
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	h.byo.attached, h.byo.before = out, map[string]snapshot.Snapshot{}
	for i, cl := range out {
		h.byo.before[cl.Name] = snaps[i]
		fmt.Fprintf(h.out, "   cluster %s: context %s, region %s, zone %q, pod CIDRs within %s, mesh network %s\n",
			cl.Name, h.Config.Contexts[cl.Name], cl.Region, cl.Zone, cl.PodSubnet, cl.MeshNetwork)
	}
	return out, nil
}

// checkMeshSlate refuses to install Istio over a cluster that has some, and
// reads the mesh network of a mesh already installed.
func (h *Harness) checkMeshSlate(ctx context.Context, cl *clusters.Cluster) error {
	if h.Config.Mesh == MeshInstall {
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
	if err := cl.Client.Resources().Get(ctx, mesh.Namespace, "", &ns); err != nil {
		return fmt.Errorf("cluster %s: MESHCONFORM_MESH=existing, but %s cannot be read: %w", cl.Name, mesh.Namespace, err)
	}
	if n := ns.Labels[mesh.NetworkLabel]; n != "" {
		cl.MeshNetwork = n
	}
	return nil
}

// RemoveRunNamespaces deletes, on the brought clusters, every namespace
// labelled with this run's ID, whatever spec made it and however it ended:
// the run removes what it created and nothing else.
func (h *Harness) RemoveRunNamespaces(ctx context.Context) error {
	if h.byo == nil {
		return nil
	}
	var nss []workloads.Namespace
	for _, cl := range h.byo.attached {
		names, err := runNamespaces(ctx, cl)
		if err != nil {
			return err
		}
		for _, n := range names {
			nss = append(nss, workloads.Namespace{Client: cl.Client, Name: n})
		}
	}
	return h.Run.Time(fmt.Sprintf("remove the run's namespaces (%d)", len(nss)), func() error {
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
	out := map[string]snapshot.Diff{}
	var errs []error
	for _, cl := range h.byo.attached {
		after, err := snapshot.Take(ctx, cl.Client.RESTConfig())
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: snapshot after the run: %w", cl.Name, err))
			continue
		}
		out[cl.Name] = snapshot.Compare(h.byo.before[cl.Name], after)
	}
	return out, errors.Join(errs...)
}

// closeBrought removes the private kubeconfigs.
func (h *Harness) closeBrought() error {
	if h.byo == nil || h.byo.dir == "" {
		return nil
	}
	return os.RemoveAll(h.byo.dir)
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

// preflightBrought checks what a run on brought clusters needs from this
// machine: the local source serves the sample apps from meshconform's
// registry, which `meshconform up` leaves running.
func (h *Harness) preflightBrought(ctx context.Context) error {
	if _, ok := h.Source.(*images.Local); ok {
		return images.RegistryServing(ctx, h.Config.RegistryPort)
	}
	return fmt.Errorf("MESHCONFORM_IMAGE_SOURCE=upstream on brought clusters: the sample apps are built here and no registry of yours can be named yet; use the local source on clusters made by `meshconform up`")
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
	h := &Harness{Config: cfg, Topology: topo}
	return h.checkBrought()
}

// dumpNamespaces are the namespaces a failure's dump may read on cl: all
// of them on clusters the run created (nil), only Istio's and the run's own
// on clusters the user brought — their workloads' logs are not ours to copy.
func (h *Harness) dumpNamespaces(ctx context.Context, cl *clusters.Cluster) []string {
	if h.byo == nil {
		return nil
	}
	// A failed listing still leaves Istio's namespace to dump.
	names, _ := runNamespaces(ctx, cl)
	return append([]string{mesh.Namespace}, names...)
}

// runNamespaces names the namespaces of cl that carry this run's ID.
func runNamespaces(ctx context.Context, cl *clusters.Cluster) ([]string, error) {
	var list corev1.NamespaceList
	if err := cl.Client.Resources().List(ctx, &list, resources.WithLabelSelector(labels.SelectorFromSet(workloads.RunLabels).String())); err != nil {
		return nil, fmt.Errorf("cluster %s: list the run's namespaces: %w", cl.Name, err)
	}
	var names []string
	for _, ns := range list.Items {
		names = append(names, ns.Name)
	}
	return names, nil
}

// IstiodConfigLabel marks the config maps istiod writes into every
// namespace it sees (istio-ca-root-cert, and istio-ca-crl since 1.2x); an
// uninstall leaves them behind (istio/istio#23706). The audit found the
// CRL maps left in default, kube-system and metallb-system.
const IstiodConfigLabel = "istio.io/config=true"

// removeIstiodConfigMapsLeft deletes, after a run that installed Istio on brought
// clusters, the config maps its istiod wrote into the user's namespaces:
// those the snapshot before the run did not have.
func (h *Harness) removeIstiodConfigMapsLeft(ctx context.Context) error {
	if h.byo == nil || h.Config.Mesh != MeshInstall {
		return nil
	}
	var errs []error
	for _, cl := range h.byo.attached {
		var list corev1.ConfigMapList
		if err := cl.Client.Resources().List(ctx, &list, resources.WithLabelSelector(IstiodConfigLabel)); err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: list config maps %s: %w", cl.Name, IstiodConfigLabel, err))
			continue
		}
		for i, cm := range list.Items {
			if _, existed := h.byo.before[cl.Name]["configmaps "+cm.Namespace+"/"+cm.Name]; existed {
				continue
			}
			if err := cl.Client.Resources().Delete(ctx, &list.Items[i]); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("cluster %s: delete %s/%s: %w", cl.Name, cm.Namespace, cm.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}
