package mesh

import (
	"slices"
	"testing"

	"github.com/meshconform/meshconform/e2e/snapshot"
)

// snap builds a Snapshot from key, UID pairs.
func snap(pairs ...string) snapshot.Snapshot {
	s := snapshot.Snapshot{}
	for i := 0; i < len(pairs); i += 2 {
		s[pairs[i]] = snapshot.Object{UID: pairs[i+1]}
	}
	return s
}

const (
	nsDefault    = "namespaces default"
	nsKubeSystem = "namespaces kube-system"
	reader       = "clusterroles.rbac.authorization.k8s.io istio-reader-clusterrole-istio-system"
	rootCert     = "configmaps default/istio-ca-root-cert"
	kubeRootCA   = "configmaps default/kube-root-ca.crt"
)

func wantLeft(t *testing.T, before, after snapshot.Snapshot, want ...string) {
	t.Helper()
	left, known := Leftovers(before, after)
	if !slices.Equal(left, want) || len(known) != 0 {
		t.Errorf("Leftovers = %q, known %q; want %q, none known", left, known, want)
	}
}

func TestLeftoversAddedObject(t *testing.T) {
	before := snap(nsDefault, "ns-default", kubeRootCA, "cm-1")
	after := snap(nsDefault, "ns-default", kubeRootCA, "cm-1", reader, "cr-1")
	wantLeft(t, before, after, reader)
	wantLeft(t, after, after)
}

// Deleted and made again under the same name is new: the UID tells.
func TestLeftoversSameNameNewUID(t *testing.T) {
	before := snap(nsDefault, "ns-default", kubeRootCA, "cm-1", reader, "cr-1")
	after := snap(nsDefault, "ns-default", kubeRootCA, "cm-1", reader, "cr-2")
	wantLeft(t, before, after, reader+" (new UID)")
}

// What was there before and is gone is not a leftover; nor is an edit.
func TestLeftoversRemovedAndChangedNotReported(t *testing.T) {
	before := snap(nsDefault, "ns-default", kubeRootCA, "cm-1", reader, "cr-1")
	wantLeft(t, before, snap(nsDefault, "ns-default"))
	edited := snap(nsDefault, "ns-default", kubeRootCA, "cm-1", reader, "cr-1")
	edited[reader] = snapshot.Object{UID: "cr-1", Generation: 2, Meta: "other"}
	wantLeft(t, before, edited)
}

// Objects in a namespace the run made are left out (the namespace speaks
// for them); so are those of a namespace deleted and made again, and
// istiod's config maps there are not "known" either: the namespace is.
func TestLeftoversFoldedIntoNewNamespaces(t *testing.T) {
	before := snap(nsDefault, "ns-default")
	after := snap(nsDefault, "ns-default", "namespaces istio-system", "ns-is",
		"configmaps istio-system/istio", "cm-2",
		"configmaps istio-system/istio-ca-root-cert", "cm-3",
		"deployments.apps istio-system/istiod", "d-1")
	wantLeft(t, before, after, "namespaces istio-system")
	remade := snap(nsDefault, "ns-default-2", rootCert, "cm-3", "services default/kubernetes", "svc-2")
	wantLeft(t, before, remade, "namespaces default (new UID)")
}

func TestLeftoversOrderDeterministic(t *testing.T) {
	before := snap(nsDefault, "ns-default", nsKubeSystem, "ns-ks", kubeRootCA, "cm-1")
	after := snap(nsDefault, "ns-default", nsKubeSystem, "ns-ks", kubeRootCA, "cm-1b",
		reader, "cr-1",
		"mutatingwebhookconfigurations.admissionregistration.k8s.io istio-sidecar-injector", "mw-1",
		"customresourcedefinitions.apiextensions.k8s.io gateways.networking.istio.io", "crd-1",
		"gateways.networking.istio.io kube-system/eastwest", "gw-1",
		"serviceaccounts kube-system/istio-cni", "sa-1",
	)
	want := []string{
		reader,
		kubeRootCA + " (new UID)",
		"customresourcedefinitions.apiextensions.k8s.io gateways.networking.istio.io",
		"gateways.networking.istio.io kube-system/eastwest",
		"mutatingwebhookconfigurations.admissionregistration.k8s.io istio-sidecar-injector",
		"serviceaccounts kube-system/istio-cni",
	}
	for range 20 {
		wantLeft(t, before, after, want...)
	}
}

// istiod's config maps in namespaces that were there are the known
// upstream leftover; everything else fails the cleanup.
func TestLeftoversSplitsKnown(t *testing.T) {
	before := snap(nsDefault, "ns-default", nsKubeSystem, "ns-ks")
	after := snap(nsDefault, "ns-default", nsKubeSystem, "ns-ks", rootCert, "cm-3",
		"configmaps kube-system/istio-ca-root-cert", "cm-4",
		"configmaps default/istio-ca-crl", "cm-5",
		"secrets default/istio-ca-root-cert", "s-1",
		reader, "cr-1")
	left, known := Leftovers(before, after)
	if want := []string{reader, "secrets default/istio-ca-root-cert"}; !slices.Equal(left, want) {
		t.Errorf("left = %q, want %q", left, want)
	}
	if want := []string{"configmaps default/istio-ca-crl", rootCert, "configmaps kube-system/istio-ca-root-cert"}; !slices.Equal(known, want) {
		t.Errorf("known = %q, want %q", known, want)
	}
}
