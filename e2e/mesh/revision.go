package mesh

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/e2e-framework/klient"

	"github.com/meshconform/meshconform/e2e/clusters"
)

// RevisionName is the revision Istio's canary guide names a version by:
// its dots made dashes (1.27.0 → 1-27-0), since a revision is a DNS label.
func RevisionName(version string) string { return strings.ReplaceAll(version, ".", "-") }

// Step names of a canary upgrade, as the upgrade guide's headings.
const (
	StepCanary  = "install the canary revision"
	StepTag     = "move the revision tag"
	StepRemove  = "remove the old revision"
	StepInPlace = "upgrade in place"
)

// AddRevision installs the installer's revision beside a running one, as
// "Canary Upgrades" does on a primary-remote mesh: the new istiod on the
// primary, exposed to the remote by its own address, and the remote given
// the new revision's remote install (its injection webhook and discovery
// address). Trust (cacerts) and the remote secret are the mesh's and stay
// as they are. It returns the new revision's discovery address.
func (in *Installer) AddRevision(ctx context.Context, primary, remote *clusters.Cluster) (string, error) {
	if in.Values.Revision == "" {
		return "", fmt.Errorf("a canary install needs a revision name")
	}
	if err := in.step(StepCanary+": "+StepPrimary, primary.Name, func() error {
		return in.istioctlInstall(ctx, primary, PrimaryTemplate, in.revisionPrimaryValues(primary), "primary-"+in.Values.Revision)
	}); err != nil {
		return "", err
	}
	var discovery string
	if err := in.step(StepCanary+": "+StepExpose, primary.Name, func() error {
		var err error
		discovery, err = in.exposeIstiod(ctx, primary)
		return err
	}); err != nil {
		return "", err
	}
	err := in.step(StepCanary+": "+StepRemote, remote.Name, func() error {
		v := in.clusterValues(remote)
		v.RemotePilotAddress = discovery
		return in.istioctlInstall(ctx, remote, RemoteTemplate, v, "remote-"+in.Values.Revision)
	})
	return discovery, err
}

// revisionPrimaryValues are the primary's values for an upgrade of a
// primary-remote mesh: the new control plane serves the remote, so it is
// an external istiod (without it, the remote's pods are never injected by
// the new revision: seen in CI when this was left to the default).
func (in *Installer) revisionPrimaryValues(primary *clusters.Cluster) Values {
	v := in.clusterValues(primary)
	v.ExternalIstiod = true
	return v
}

// UpgradeInPlace installs the installer's version over the running
// control plane of the same revision: the primary first, then the remote
// pointed at the same discovery address, as "In-place Upgrades" does for
// each cluster.
func (in *Installer) UpgradeInPlace(ctx context.Context, primary, remote *clusters.Cluster, discovery string) error {
	if err := in.step(StepInPlace+": "+StepPrimary, primary.Name, func() error {
		return in.istioctlInstall(ctx, primary, PrimaryTemplate, in.revisionPrimaryValues(primary), "primary-inplace-"+in.Values.Tag)
	}); err != nil {
		return err
	}
	return in.step(StepInPlace+": "+StepRemote, remote.Name, func() error {
		v := in.clusterValues(remote)
		v.RemotePilotAddress = discovery
		return in.istioctlInstall(ctx, remote, RemoteTemplate, v, "remote-inplace-"+in.Values.Tag)
	})
}

// SetTag points the revision tag at the installer's revision in each
// cluster (`istioctl tag set <tag> --revision <rev> --overwrite`): the
// namespaces labelled istio.io/rev=<tag> get the new revision's injection
// from their next pod on.
func (in *Installer) SetTag(ctx context.Context, tag string, cls ...*clusters.Cluster) error {
	for _, cl := range cls {
		err := in.step(StepTag+" "+tag+" → "+in.Values.Revision, cl.Name, func() error {
			_, err := in.Istioctl.Run(ctx, cl.Kubeconfig, "tag", "set", tag, "--revision", in.Values.Revision, "--overwrite", "-y")
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// RemoveTag removes a revision tag from each cluster (`istioctl tag remove`),
// as the canary guide does before uninstalling: `istioctl uninstall
// --purge` (1.27.0) leaves the tag's webhook on the primary.
func (in *Installer) RemoveTag(ctx context.Context, tag string, cls ...*clusters.Cluster) error {
	for _, cl := range cls {
		err := in.step("remove the revision tag "+tag, cl.Name, func() error {
			_, err := in.Istioctl.Run(ctx, cl.Kubeconfig, "tag", "remove", tag, "-y")
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// RemoveRevision removes the installer's revision from each cluster, as
// the canary guide's last step (`istioctl uninstall --revision <rev>`), and
// the LoadBalancer Service this harness made to expose it.
func (in *Installer) RemoveRevision(ctx context.Context, primary *clusters.Cluster, cls ...*clusters.Cluster) error {
	rev := in.Values.Revision
	if rev == "" {
		return fmt.Errorf("removing a revision needs its name")
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, cl := range cls {
		g.Go(func() error {
			return in.step(StepRemove+" "+rev, cl.Name, func() error {
				_, err := in.Istioctl.Run(gctx, cl.Kubeconfig, "uninstall", "--revision", rev, "-y")
				return err
			})
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: in.Values.IstiodService() + "-remote", Namespace: Namespace}}
	if err := primary.Client.Resources().Delete(ctx, svc); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s/%s on %s: %w", Namespace, svc.Name, primary.Name, err)
	}
	return nil
}

// Precheck runs `istioctl x precheck` against a cluster and returns its
// output; a failed precheck is an error carrying what it found.
func (i Istioctl) Precheck(ctx context.Context, kubeconfig string) (string, error) {
	return i.RunAll(ctx, kubeconfig, "x", "precheck")
}

// revisionKinds are the kinds an Istio revision installs per cluster that
// carry its istio.io/rev label.
var revisionKinds = []schema.GroupVersionKind{
	{Group: "apps", Version: "v1", Kind: "DeploymentList"},
	{Version: "v1", Kind: "ServiceList"},
	{Version: "v1", Kind: "ConfigMapList"},
	{Version: "v1", Kind: "ServiceAccountList"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfigurationList"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfigurationList"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleList"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBindingList"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleList"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBindingList"},
	{Group: "policy", Version: "v1", Kind: "PodDisruptionBudgetList"},
	{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscalerList"},
	// The remote's selector-less istiod-<rev> Service points at the
	// primary through these.
	{Version: "v1", Kind: "EndpointsList"},
	{Group: "discovery.k8s.io", Version: "v1", Kind: "EndpointSliceList"},
}

// RevisionRemains lists what of a revision is still in a cluster: every
// object of revisionKinds labelled istio.io/rev=<rev>, every object named
// after it (istiod-<rev>, istio-sidecar-injector-<rev>…, found by name too
// since not every chart labels everything), and pods of it. Empty after
// the revision was removed.
func RevisionRemains(ctx context.Context, c klient.Client, rev string) ([]string, error) {
	if rev == "" {
		return nil, fmt.Errorf("no revision named: nothing to look for")
	}
	seen := map[string]bool{}
	for _, gvk := range append(revisionKinds, schema.GroupVersionKind{Version: "v1", Kind: "PodList"}) {
		items, err := listKind(ctx, c, gvk)
		if err != nil {
			return nil, err
		}
		for _, u := range items {
			if u.GetLabels()["istio.io/rev"] == rev || strings.HasSuffix(u.GetName(), "-"+rev) || strings.Contains(u.GetName(), "-"+rev+"-") {
				if u.GetDeletionTimestamp() != nil && gvk.Kind == "PodList" {
					continue
				}
				name := u.GetName()
				if ns := u.GetNamespace(); ns != "" {
					name = ns + "/" + name
				}
				seen[strings.TrimSuffix(gvk.Kind, "List")+" "+name] = true
			}
		}
	}
	var left []string
	for k := range seen {
		left = append(left, k)
	}
	sort.Strings(left)
	return left, nil
}
