package mesh

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/e2e-framework/klient"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// Uninstall removes Istio from each cluster as the guide's cleanup does:
// `istioctl uninstall --purge -y`, then the istio-system namespace.
func (in *Installer) Uninstall(ctx context.Context, cls ...*clusters.Cluster) error {
	for _, cl := range cls {
		err := in.step("uninstall", cl.Name, func() error {
			if _, err := in.Istioctl.Run(ctx, cl.Kubeconfig, "uninstall", "--purge", "-y"); err != nil {
				return err
			}
			return workloads.DeleteNamespace(ctx, cl.Client, Namespace)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Remains lists what of Istio is still in the cluster: Istio CRDs, webhook
// configurations, the istio-system namespace, Istio cluster roles and
// bindings. Empty after a clean uninstall.
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
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(k.gvk)
		if err := c.Resources().List(ctx, list); err != nil {
			return nil, fmt.Errorf("list %s: %w", k.gvk.Kind, err)
		}
		for _, u := range list.Items {
			if k.match(u) {
				left = append(left, strings.TrimSuffix(k.gvk.Kind, "List")+" "+u.GetName())
			}
		}
	}
	sort.Strings(left)
	return left, nil
}

func nameHasIstio(u unstructured.Unstructured) bool { return strings.Contains(u.GetName(), "istio") }
