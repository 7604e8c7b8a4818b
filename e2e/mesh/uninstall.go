package mesh

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/e2e-framework/klient"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/snapshot"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// Uninstall removes Istio from each cluster as the guide's cleanup does:
// `istioctl uninstall --purge -y`, then the istio-system namespace.
//
// The clusters are independent here (the guide uninstalls each on its own),
// so they are uninstalled side by side; the two halves of each are timed
// apart, so the report shows which one is slow.
//
// On the primary the namespace takes ~45 s to go, and that is Istio's own
// doing: istiod 1.29.2 with a remote cluster attached does not exit on
// SIGTERM. Its server waits for every "required termination" component,
// and the remote cluster's namespace-controller leader election
// (serviceregistry/kube/controller/multicluster.go, RunComponentAsyncAndWait
// "namespace controller") runs until the cluster's own stop channel closes,
// not the server's — a goroutine dump taken 6 s after SIGTERM shows it
// still in LeaderElector.acquire. The kubelet kills istiod at its 30 s
// grace period; the namespace controller's retry backoff adds the rest.
// This run waits it out rather than shortening istiod's grace period: the
// spec checks the guide's cleanup as users run it.
func (in *Installer) Uninstall(ctx context.Context, cls ...*clusters.Cluster) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, cl := range cls {
		g.Go(func() error {
			if err := in.step("uninstall --purge", cl.Name, func() error {
				_, err := in.Istioctl.Run(gctx, cl.Kubeconfig, "uninstall", "--purge", "-y")
				return err
			}); err != nil {
				return err
			}
			return in.step("delete namespace "+Namespace, cl.Name, func() error {
				return workloads.DeleteNamespace(gctx, cl.Client, Namespace)
			})
		})
	}
	return g.Wait()
}

// IstiodNamespaceConfigMaps are the config maps istiod's namespace
// controller writes into every namespace it sees but kube-public,
// kube-node-lease and local-path-storage (istio's
// pilot/pkg/serviceregistry/kube/controller/namespacecontroller.go,
// labelled IstiodConfigLabel): the root cert, and the CRL of a plugged-in
// CA.
var IstiodNamespaceConfigMaps = []string{"istio-ca-root-cert", "istio-ca-crl"}

// IstiodConfigLabel marks the config maps istiod writes into the
// namespaces it sees (IstiodNamespaceConfigMaps).
const IstiodConfigLabel = "istio.io/config=true"

// UpstreamLeftoverIssue is where Istio tracks the config maps its
// uninstall leaves.
const UpstreamLeftoverIssue = "https://github.com/istio/istio/issues/23706"

// Leftovers is what an uninstall left in a cluster, from the snapshots
// taken before the install and after the uninstall (snapshot.Compare):
// every object Added, or Replaced (a new UID under an old name: deleted
// and made again), split into those that fail the cleanup (left) and the
// known upstream leftovers (known). Both are sorted, by snapshot key
// ("clusterroles.rbac.authorization.k8s.io istio-reader-clusterrole-istio-system",
// "configmaps default/istio-ca-root-cert"); a Replaced one is marked
// " (new UID)".
//
//   - Objects inside a namespace that is new (not in before, or Replaced)
//     are left out: the namespace, if still there, is reported and stands
//     for them (istio-system, the apps' namespaces).
//   - IstiodNamespaceConfigMaps in namespaces that existed before go to
//     known.
//
// Removed and Changed are not this question's: the spec proves that
// nothing the install created remains, which only an Added or Replaced
// object answers; what went missing, or a label or generation that moved
// on an object that was there, is no creation, and the guide's cleanup
// (delete what Istio made) would not undo an edit anyway. A cluster the run did not create (a
// brought one) gets the exact-as-found audit of its scope, every difference
// of the run's failing it, from the same package: harness.ClustersAsFound
// (e2e/harness/byo.go, snapshot.Compare against the snapshot taken when
// the cluster was attached), in the teardown audit (suites/internal/env,
// auditBrought). Clusters the run made (kind) go with the run.
//
// Why the config maps are known, not failed: `istioctl uninstall --purge`
// prunes only objects carrying the operator.istio.io/component label
// (istio's operator/pkg/uninstall/prune.go, GetPrunedResources), which
// istiod's own writes do not carry, and the guide's Cleanup
// (setup/install/multicluster/primary-remote, "Cleanup") is that command
// plus `kubectl delete ns istio-system`, nothing about them. Upstream
// knows (istio/istio#23706, #38497; #41607: "expected", they let injected
// pods survive a reinstall) and declined the fix (istio/istio#38774
// closed: another control plane may share them). The run reports them,
// by name, and fails on anything else. Brought clusters get them removed
// by the harness's teardown (harness.IstiodConfigLabel).
func Leftovers(before, after snapshot.Snapshot) (left, known []string) {
	d := snapshot.Compare(before, after)
	// Namespaces that were there before, less those made again: an
	// object anywhere else is in a new namespace.
	was := map[string]bool{}
	for k := range before {
		if res, _, name := snapshot.ParseKey(k); res == "namespaces" {
			was[name] = true
		}
	}
	for _, k := range d.Replaced {
		if res, _, name := snapshot.ParseKey(k); res == "namespaces" {
			was[name] = false
		}
	}
	add := func(k, mark string) {
		res, ns, name := snapshot.ParseKey(k)
		switch {
		case ns != "" && !was[ns]:
			// In a new namespace: the namespace stands for it.
		case res == "configmaps" && ns != "" && slices.Contains(IstiodNamespaceConfigMaps, name):
			known = append(known, k+mark)
		default:
			left = append(left, k+mark)
		}
	}
	for _, k := range d.Added {
		add(k, "")
	}
	for _, k := range d.Replaced {
		add(k, " (new UID)")
	}
	sort.Strings(left)
	sort.Strings(known)
	return left, known
}

// Remains lists what of Istio is still in the cluster, by name: Istio
// CRDs, webhook configurations, the istio-system namespace, Istio cluster
// roles and bindings. Empty after a clean uninstall. It needs no snapshot,
// so it serves where none was taken before Istio came (a brought cluster's
// clean slate, an upgrade's end); the Uninstall spec proves the cleanup
// against the snapshot taken before the install instead (Leftovers), which
// sees what an install made under other names and blames nothing that was
// there before.
func Remains(ctx context.Context, c klient.Client) ([]string, error) {
	var left []string
	kinds := []struct {
		gvk   schema.GroupVersionKind
		match func(u unstructured.Unstructured) bool
	}{
		{schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinitionList"},
			func(u unstructured.Unstructured) bool { return strings.HasSuffix(u.GetName(), "istio.io") }},
		{schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfigurationList"}, nameHasIstio},
		{schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfigurationList"}, nameHasIstio},
		{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleList"}, nameHasIstio},
		{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBindingList"}, nameHasIstio},
		{schema.GroupVersionKind{Version: "v1", Kind: "NamespaceList"},
			func(u unstructured.Unstructured) bool { return u.GetName() == Namespace }},
	}
	for _, k := range kinds {
		items, err := listKind(ctx, c, k.gvk)
		if err != nil {
			return nil, err
		}
		for _, u := range items {
			if k.match(u) {
				left = append(left, strings.TrimSuffix(k.gvk.Kind, "List")+" "+u.GetName())
			}
		}
	}
	sort.Strings(left)
	return left, nil
}

func nameHasIstio(u unstructured.Unstructured) bool { return strings.Contains(u.GetName(), "istio") }

// listKind lists every object of a list kind (all namespaces).
func listKind(ctx context.Context, c klient.Client, gvk schema.GroupVersionKind) ([]unstructured.Unstructured, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk)
	if err := c.Resources().List(ctx, list); err != nil {
		return nil, fmt.Errorf("list %s: %w", gvk.Kind, err)
	}
	return list.Items, nil
}
