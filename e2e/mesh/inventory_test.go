package mesh

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ns(name, uid string) (Ref, string) { return Ref{Kind: "Namespace", Name: name}, uid }

// inventory builds an Inventory from ref, uid pairs.
func inventory(pairs ...any) Inventory {
	inv := Inventory{}
	for i := 0; i < len(pairs); i += 2 {
		inv[pairs[i].(Ref)] = pairs[i+1].(string)
	}
	return inv
}

var (
	nsDefault, uidDefault = ns("default", "ns-default")
	nsKubeSystem, uidKS   = ns("kube-system", "ns-ks")
	reader                = Ref{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "istio-reader-clusterrole-istio-system"}
	rootCert              = Ref{Kind: "ConfigMap", Namespace: "default", Name: "istio-ca-root-cert"}
	kubeRootCA            = Ref{Kind: "ConfigMap", Namespace: "default", Name: "kube-root-ca.crt"}
)

func TestInventoryNewObject(t *testing.T) {
	before := inventory(nsDefault, uidDefault, kubeRootCA, "cm-1")
	after := inventory(nsDefault, uidDefault, kubeRootCA, "cm-1", reader, "cr-1")
	if got, want := before.New(after), []string{"ClusterRole istio-reader-clusterrole-istio-system"}; !slices.Equal(got, want) {
		t.Errorf("New = %q, want %q", got, want)
	}
	if got := after.New(after); len(got) != 0 {
		t.Errorf("an inventory against itself: %q", got)
	}
}

// Deleted and made again under the same name is new: the UID tells.
func TestInventorySameNameNewUID(t *testing.T) {
	before := inventory(nsDefault, uidDefault, kubeRootCA, "cm-1", reader, "cr-1")
	after := inventory(nsDefault, uidDefault, kubeRootCA, "cm-1", reader, "cr-2")
	if got, want := before.New(after), []string{"ClusterRole istio-reader-clusterrole-istio-system"}; !slices.Equal(got, want) {
		t.Errorf("New = %q, want %q", got, want)
	}
}

// What was there before and is gone is not a leftover.
func TestInventoryRemovedNotReported(t *testing.T) {
	before := inventory(nsDefault, uidDefault, kubeRootCA, "cm-1", reader, "cr-1")
	after := inventory(nsDefault, uidDefault)
	if got := before.New(after); len(got) != 0 {
		t.Errorf("New = %q, want nothing", got)
	}
}

// Objects in a namespace the run made are left out (the namespace speaks
// for them); so are those of a namespace deleted and made again.
func TestInventoryNewNamespaces(t *testing.T) {
	istioSystem, uidIS := ns("istio-system", "ns-is")
	before := inventory(nsDefault, uidDefault)
	after := inventory(nsDefault, uidDefault, istioSystem, uidIS,
		Ref{Kind: "ConfigMap", Namespace: "istio-system", Name: "istio"}, "cm-2")
	if got, want := before.New(after), []string{"Namespace istio-system"}; !slices.Equal(got, want) {
		t.Errorf("New = %q, want %q", got, want)
	}
	remade := inventory(nsDefault, "ns-default-2", rootCert, "cm-3")
	if got, want := before.New(remade), []string{"Namespace default"}; !slices.Equal(got, want) {
		t.Errorf("namespace made again: New = %q, want %q", got, want)
	}
}

func TestInventoryOrderDeterministic(t *testing.T) {
	before := inventory(nsDefault, uidDefault, nsKubeSystem, uidKS)
	after := inventory(nsDefault, uidDefault, nsKubeSystem, uidKS,
		reader, "cr-1",
		Ref{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration", Name: "istio-sidecar-injector"}, "mw-1",
		Ref{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition", Name: "gateways.networking.istio.io"}, "crd-1",
		Ref{Group: "networking.istio.io", Kind: "Gateway", Namespace: "kube-system", Name: "eastwest"}, "gw-1",
		Ref{Kind: "ConfigMap", Namespace: "kube-system", Name: "istio-ca-root-cert"}, "cm-4",
		rootCert, "cm-3",
	)
	want := []string{
		"ClusterRole istio-reader-clusterrole-istio-system",
		"ConfigMap default/istio-ca-root-cert",
		"ConfigMap kube-system/istio-ca-root-cert",
		"CustomResourceDefinition gateways.networking.istio.io",
		"Gateway.networking.istio.io kube-system/eastwest",
		"MutatingWebhookConfiguration istio-sidecar-injector",
	}
	for range 20 {
		if got := before.New(after); !slices.Equal(got, want) {
			t.Fatalf("New = %q, want %q", got, want)
		}
	}
}

// istiod's config maps in namespaces that were there are the known
// upstream leftover; everything else fails the cleanup.
func TestLeftoversSplitsKnown(t *testing.T) {
	before := inventory(nsDefault, uidDefault)
	after := inventory(nsDefault, uidDefault, rootCert, "cm-3",
		Ref{Kind: "ConfigMap", Namespace: "default", Name: "istio-ca-crl"}, "cm-5",
		Ref{Kind: "Secret", Namespace: "default", Name: "istio-ca-root-cert"}, "s-1",
		reader, "cr-1")
	left, known := Leftovers(before, after)
	if want := []string{"ClusterRole istio-reader-clusterrole-istio-system", "Secret default/istio-ca-root-cert"}; !slices.Equal(left, want) {
		t.Errorf("left = %q, want %q", left, want)
	}
	if want := []string{"ConfigMap default/istio-ca-crl", "ConfigMap default/istio-ca-root-cert"}; !slices.Equal(known, want) {
		t.Errorf("known = %q, want %q", known, want)
	}
}

// Cluster-scoped and listable, less the kinds that churn on their own and
// the groups computed on read.
func TestInventoriedKinds(t *testing.T) {
	list := func(gv string, rs ...metav1.APIResource) *metav1.APIResourceList {
		return &metav1.APIResourceList{GroupVersion: gv, APIResources: rs}
	}
	listable := []string{"list", "get"}
	got, err := inventoriedKinds([]*metav1.APIResourceList{
		list("v1",
			metav1.APIResource{Name: "namespaces", Kind: "Namespace", Verbs: listable},
			metav1.APIResource{Name: "namespaces/status", Kind: "Namespace", Verbs: listable},
			metav1.APIResource{Name: "nodes", Kind: "Node", Verbs: listable},
			metav1.APIResource{Name: "configmaps", Kind: "ConfigMap", Namespaced: true, Verbs: listable}),
		list("authentication.k8s.io/v1", metav1.APIResource{Name: "tokenreviews", Kind: "TokenReview", Verbs: []string{"create"}}),
		list("rbac.authorization.k8s.io/v1", metav1.APIResource{Name: "clusterroles", Kind: "ClusterRole", Verbs: listable}),
		list("certificates.k8s.io/v1", metav1.APIResource{Name: "certificatesigningrequests", Kind: "CertificateSigningRequest", Verbs: listable}),
		list("metrics.k8s.io/v1beta1", metav1.APIResource{Name: "nodes", Kind: "NodeMetrics", Verbs: listable}),
		list("apiregistration.k8s.io/v1", metav1.APIResource{Name: "apiservices", Kind: "APIService", Verbs: listable}),
	})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, k := range got {
		kinds = append(kinds, k.kind)
	}
	if want := []string{"Namespace", "ClusterRole", "APIService"}; !slices.Equal(kinds, want) {
		t.Errorf("kinds = %q, want %q", kinds, want)
	}
}
