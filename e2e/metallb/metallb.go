// Package metallb installs MetalLB in L2 mode in a cluster, from the
// manifest MetalLB publishes for its release, and gives the cluster its
// address pool, so LoadBalancer Services get addresses on the Docker network.
package metallb

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/e2e-framework/klient"

	metallbv1beta1 "go.universe.tf/metallb/api/v1beta1"

	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/poll"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/e2e/workloads"
)

const (
	// Version is the MetalLB release installed (and, for the local image
	// source, built from go.universe.tf/metallb at the version go.mod pins).
	Version = images.MetalLBVersion
	// Namespace is where MetalLB runs.
	Namespace = "metallb-system"
	// PoolName names the IPAddressPool and L2Advertisement meshconform makes.
	PoolName = "meshconform"
)

// Images are the images MetalLB's native manifest runs.
func Images() []string {
	return []string{"quay.io/metallb/controller:" + Version, "quay.io/metallb/speaker:" + Version}
}

// ManifestPath is MetalLB's native (L2, no FRR) manifest inside its module,
// which this module requires at Version.
func ManifestPath(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "go.universe.tf/metallb").Output()
	if err != nil {
		return "", fmt.Errorf("find the metallb module (go list -m go.universe.tf/metallb): %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "config", "manifests", "metallb-native.yaml"), nil
}

// Install applies MetalLB, waits for its controller and speakers, and gives
// it pool as an L2 pool.
func Install(ctx context.Context, c klient.Client, pool topology.AddrRange) error {
	manifest, err := ManifestPath(ctx)
	if err != nil {
		return err
	}
	if err := workloads.ApplyFile(ctx, c, manifest); err != nil {
		return fmt.Errorf("metallb: %w", err)
	}
	res := c.Resources(Namespace)
	if err := poll.Until(ctx, 3*time.Minute, 2*time.Second, func(ctx context.Context) error {
		var d appsv1.Deployment
		var ds appsv1.DaemonSet
		if err := res.Get(ctx, "controller", Namespace, &d); err != nil {
			return fmt.Errorf("deployment controller: %w", err)
		}
		if err := res.Get(ctx, "speaker", Namespace, &ds); err != nil {
			return fmt.Errorf("daemonset speaker: %w", err)
		}
		if d.Status.AvailableReplicas >= 1 && ds.Status.DesiredNumberScheduled > 0 &&
			ds.Status.NumberReady == ds.Status.DesiredNumberScheduled {
			return nil
		}
		return fmt.Errorf("controller %d available, speakers %d of %d ready", d.Status.AvailableReplicas, ds.Status.NumberReady, ds.Status.DesiredNumberScheduled)
	}); err != nil {
		return fmt.Errorf("metallb: wait for controller and speakers ready: %w", err)
	}
	ipPool, err := unstructuredOf("IPAddressPool", &metallbv1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Name: PoolName, Namespace: Namespace},
		Spec:       metallbv1beta1.IPAddressPoolSpec{Addresses: []string{pool.String()}},
	})
	if err != nil {
		return err
	}
	l2, err := unstructuredOf("L2Advertisement", &metallbv1beta1.L2Advertisement{
		ObjectMeta: metav1.ObjectMeta{Name: PoolName, Namespace: Namespace},
		Spec:       metallbv1beta1.L2AdvertisementSpec{IPAddressPools: []string{PoolName}},
	})
	if err != nil {
		return err
	}
	// MetalLB's validating webhook answers only once the controller has
	// written its certificate: retry creation until it does.
	err = poll.Until(ctx, 2*time.Minute, 2*time.Second, func(ctx context.Context) error {
		if err := workloads.CreateIfMissing(ctx, c, ipPool); err != nil {
			return err
		}
		return workloads.CreateIfMissing(ctx, c, l2)
	})
	if err != nil {
		return fmt.Errorf("metallb: create pool %s: %w", pool, err)
	}
	return nil
}

// unstructuredOf is one of MetalLB's typed objects as an unstructured one
// of its kind: the client then needs no scheme that knows MetalLB's types,
// so nothing writes client-go's process-wide scheme (clusters are set up
// side by side, and a shared scheme written from two goroutines races).
func unstructuredOf(kind string, obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("metallb %s: %w", kind, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(metallbv1beta1.GroupVersion.WithKind(kind))
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u, nil
}
