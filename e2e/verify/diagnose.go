package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/topology"
)

// The diagnoses below read the configuration a failed check depends on and
// say what they find, so a failure names its likely cause. They never
// decide a verdict, and never print a secret's credentials.

// describeRemoteSecrets names each remote secret on primary with the API
// server address its kubeconfig points at (never its token).
func (m *Mesh) describeRemoteSecrets(ctx context.Context, primary *clusters.Cluster) string {
	secrets, err := mesh.RemoteSecrets(ctx, primary)
	if err != nil {
		return "cannot list remote secrets: " + err.Error()
	}
	if len(secrets) == 0 {
		return fmt.Sprintf("no remote secret (label %s) in %s/%s: no other cluster was attached to it, or the secrets were deleted", mesh.RemoteSecretSelector, primary.Name, primary.IstioNamespace())
	}
	var out []string
	for _, s := range secrets {
		out = append(out, fmt.Sprintf("remote secret %s (cluster %s): %s", s.Name, s.Cluster, describeServer(s)))
	}
	return strings.Join(out, "; ")
}

// describeServer says where a remote secret's kubeconfig points, and
// whether that address can only mean the istiod pod itself.
func describeServer(s mesh.RemoteSecret) string {
	if s.Err != nil {
		return s.Err.Error()
	}
	note := ""
	if mesh.LoopbackServer(s.Server) {
		note = " — a loopback address: istiod would be dialling itself, not the remote's API server (istio/istio#31081)"
	}
	return "server " + s.Server + note
}

// describeLeadership says what decides whether istiod manages the remote:
// the annotation on the remote's istio-system and istiod's
// EXTERNAL_ISTIOD.
func (m *Mesh) describeLeadership(ctx context.Context) string {
	var parts []string
	var ns corev1.Namespace
	if err := m.Away.Client.Resources().Get(ctx, m.Away.IstioNamespace(), "", &ns); err != nil {
		parts = append(parts, "cannot read the remote's "+m.Away.IstioNamespace()+": "+err.Error())
	} else if v, ok := ns.Annotations[mesh.ControlPlaneClustersAnnotation]; !ok {
		parts = append(parts, fmt.Sprintf("%s in %s has no %s annotation, so istiod does not lead it", m.Away.IstioNamespace(), m.Away.Name, mesh.ControlPlaneClustersAnnotation))
	} else {
		parts = append(parts, fmt.Sprintf("%s in %s is annotated %s=%s", m.Away.IstioNamespace(), m.Away.Name, mesh.ControlPlaneClustersAnnotation, v))
	}
	if v, err := m.istiodEnv(ctx, "EXTERNAL_ISTIOD"); err != nil {
		parts = append(parts, err.Error())
	} else if v != "true" {
		parts = append(parts, fmt.Sprintf("istiod on %s runs with EXTERNAL_ISTIOD=%q, so it manages no remote cluster", m.Primary.Name, v))
	} else {
		parts = append(parts, "istiod runs with EXTERNAL_ISTIOD=true")
	}
	return strings.Join(parts, "; ")
}

// istiodEnv is an environment variable of istiod's discovery container.
func (m *Mesh) istiodEnv(ctx context.Context, name string) (string, error) {
	var d appsv1.Deployment
	dep := mesh.Values{Revision: m.Istio.Revision}.IstiodService()
	if err := m.Primary.Client.Resources(m.Primary.IstioNamespace()).Get(ctx, dep, m.Primary.IstioNamespace(), &d); err != nil {
		return "", fmt.Errorf("cannot read deployment %s: %v", dep, err)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != "discovery" {
			continue
		}
		for _, e := range c.Env {
			if e.Name == name {
				return e.Value, nil
			}
		}
	}
	return "", nil
}

// describeDiscovery compares where the remote's istiod Service sends its
// pods (the remote profile's remotePilotAddress) with where istiod is
// exposed.
func (m *Mesh) describeDiscovery(ctx context.Context) string {
	svc := mesh.Values{Revision: m.Istio.Revision}.IstiodService()
	addrs, err := mesh.RemotePilotAddresses(ctx, m.Away, m.Istio.Revision)
	if err != nil {
		return "the remote's istiod Service: " + err.Error()
	}
	want := m.Istio.Discovery
	msg := fmt.Sprintf("the remote's %s Service (remotePilotAddress) points at %v; istiod is exposed at %s", svc, addrs, want)
	for _, a := range addrs {
		if a != want {
			return msg + ": the remote install's remotePilotAddress is wrong"
		}
	}
	return msg
}

// describeRouting lists the Istio configuration for the backend on the
// primary (VirtualServices, DestinationRules, PeerAuthentications of the
// app namespace), spec by spec.
func (m *Mesh) describeRouting(ctx context.Context) string {
	var out []string
	for _, kind := range []schema.GroupVersionKind{
		{Group: "networking.istio.io", Version: "v1", Kind: "VirtualServiceList"},
		{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRuleList"},
		{Group: "security.istio.io", Version: "v1", Kind: "PeerAuthenticationList"},
	} {
		items, err := listIstio(ctx, m.Primary.Client, kind)
		if err != nil {
			out = append(out, err.Error())
			continue
		}
		for _, u := range items {
			out = append(out, analyzeRouting(u)...)
			spec, _ := json.Marshal(u.Object["spec"])
			out = append(out, fmt.Sprintf("%s %s %s", strings.TrimSuffix(kind.Kind, "List"), u.GetName(), spec))
		}
	}
	if len(out) == 0 {
		return fmt.Sprintf("no VirtualService, DestinationRule or PeerAuthentication in %s/%s", m.Primary.Name, AppNamespace)
	}
	return "config on " + m.Primary.Name + ": " + strings.Join(out, "; ")
}

// analyzeRouting names, for one Istio object, the misconfigurations the
// traffic checks are sensitive to: a default route that is no weighted
// split of subsets, a subset named after a version that selects another
// (subsets named vN by this suite's convention), a PeerAuthentication that
// is not STRICT.
func analyzeRouting(u unstructured.Unstructured) []string {
	var out []string
	name := u.GetKind() + " " + u.GetName()
	switch u.GetKind() {
	case "VirtualService":
		http, _, _ := unstructured.NestedSlice(u.Object, "spec", "http")
		for _, h := range http {
			hm, _ := h.(map[string]any)
			if _, hasMatch := hm["match"]; hasMatch {
				continue
			}
			routes, _ := hm["route"].([]any)
			weighted := 0
			for _, r := range routes {
				rm, _ := r.(map[string]any)
				subset, _, _ := unstructured.NestedString(rm, "destination", "subset")
				if _, ok := rm["weight"]; ok && subset != "" {
					weighted++
				}
			}
			if weighted < 2 {
				out = append(out, name+": the default route is no weighted split of subsets (plain balancing over the host's pods)")
			}
		}
	case "DestinationRule":
		subsets, _, _ := unstructured.NestedSlice(u.Object, "spec", "subsets")
		for _, s := range subsets {
			sm, _ := s.(map[string]any)
			sub, _ := sm["name"].(string)
			v, _, _ := unstructured.NestedString(sm, "labels", "version")
			if strings.HasPrefix(sub, "v") && v != "" && v != sub {
				out = append(out, fmt.Sprintf("%s: subset %s selects version=%s", name, sub, v))
			}
		}
	case "PeerAuthentication":
		if mode, _, _ := unstructured.NestedString(u.Object, "spec", "mtls", "mode"); mode != "STRICT" {
			out = append(out, fmt.Sprintf("%s: mTLS mode %s, not STRICT", name, mode))
		}
	}
	return out
}

func listIstio(ctx context.Context, c klient.Client, gvk schema.GroupVersionKind) ([]unstructured.Unstructured, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk)
	if err := c.Resources(AppNamespace).List(ctx, list); err != nil {
		return nil, fmt.Errorf("list %s: %v", gvk.Kind, err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].GetName() < list.Items[j].GetName() })
	return list.Items, nil
}

// describeLocality says what istiod derives localities from — each
// cluster's node labels — and whether the DestinationRules turn locality
// priorities on (outlierDetection).
func (m *Mesh) describeLocality(ctx context.Context) string {
	parts := []string{describeNodeLocalities(ctx, m.Clusters)}
	if o := describeLocalityOverrides(ctx, m.Clusters); o != "" {
		parts = append(parts, o)
	}
	items, err := listIstio(ctx, m.Primary.Client, schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRuleList"})
	if err != nil {
		return strings.Join(append(parts, err.Error()), "; ")
	}
	if len(items) == 0 {
		parts = append(parts, "no DestinationRule for the backend: locality priorities are off")
	}
	for _, u := range items {
		if _, ok, _ := unstructured.NestedMap(u.Object, "spec", "trafficPolicy", "outlierDetection"); ok {
			parts = append(parts, "DestinationRule "+u.GetName()+" has outlierDetection (locality priorities on)")
		} else {
			parts = append(parts, "DestinationRule "+u.GetName()+" has no outlierDetection, so locality priorities are off")
		}
	}
	return strings.Join(parts, "; ")
}

// describeNodeLocalities lists each cluster's node labels against the
// locality the topology gives it.
func describeNodeLocalities(ctx context.Context, cls []*clusters.Cluster) string {
	var out []string
	for _, cl := range cls {
		var nodes corev1.NodeList
		if err := cl.Client.Resources().List(ctx, &nodes); err != nil {
			out = append(out, cl.Name+": "+err.Error())
			continue
		}
		if cl.PodLocality {
			out = append(out, fmt.Sprintf("%s's locality %s/%s is the run's, on its app pods (%s): its nodes carry none usable", cl.Name, cl.Region, cl.Zone, clusters.LocalityLabel))
			continue
		}
		for _, n := range nodes.Items {
			got := n.Labels[topology.RegionLabel] + "/" + n.Labels[topology.ZoneLabel]
			note := ""
			if got != cl.Region+"/"+cl.Zone {
				note = fmt.Sprintf(" but %s is %s/%s in the topology", cl.Name, cl.Region, cl.Zone)
			}
			out = append(out, fmt.Sprintf("node %s of %s is labelled %s%s", n.Name, cl.Name, got, note))
		}
	}
	return strings.Join(out, "; ")
}

// describeLocalityOverrides names the sample-app pods whose istio-locality
// label overrides the locality istiod would read from their node (or, on
// a cluster whose locality is the run's, differs from it): such a caller's
// "local" endpoints are another region's.
func describeLocalityOverrides(ctx context.Context, cls []*clusters.Cluster) string {
	var out []string
	for _, cl := range cls {
		var pods corev1.PodList
		if err := cl.Client.Resources(AppNamespace).List(ctx, &pods, resources.WithLabelSelector(localityOverrideLabel)); err != nil {
			out = append(out, cl.Name+": "+err.Error())
			continue
		}
		for _, p := range pods.Items {
			if p.Labels[localityOverrideLabel] == cl.PodLabels()[localityOverrideLabel] {
				continue
			}
			out = append(out, fmt.Sprintf("pod %s of %s carries %s=%s, overriding its node's locality (%s/%s in the topology)", p.Name, cl.Name, localityOverrideLabel, p.Labels[localityOverrideLabel], cl.Region, cl.Zone))
		}
	}
	return strings.Join(out, "; ")
}

// localityOverrideLabel is Istio's pod label that replaces the locality
// the registry reads from the node ("region.zone.subzone").
const localityOverrideLabel = clusters.LocalityLabel

// describeTrust compares the root CA each cluster's workloads trust
// (istio-ca-root-cert in istio-system): workloads under different roots
// cannot authenticate each other, and a gRPC client then keeps only the
// endpoints whose handshake succeeds, so cross-cluster calls stop while
// local ones go on.
func (m *Mesh) describeTrust(ctx context.Context) string {
	var parts []string
	roots := map[string]bool{}
	for _, cl := range m.Clusters {
		var cm corev1.ConfigMap
		if err := cl.Client.Resources(cl.IstioNamespace()).Get(ctx, "istio-ca-root-cert", cl.IstioNamespace(), &cm); err != nil {
			parts = append(parts, fmt.Sprintf("%s: no istio-ca-root-cert (%v)", cl.Name, err))
			continue
		}
		fp := mesh.RootFingerprint([]byte(cm.Data["root-cert.pem"]))
		roots[fp] = true
		parts = append(parts, fmt.Sprintf("%s trusts root %s", cl.Name, fp))
	}
	msg := strings.Join(parts, ", ")
	if len(roots) > 1 {
		return msg + fmt.Sprintf(": %d different roots — workloads of different roots cannot authenticate each other (every cluster's cacerts must come from one root)", len(roots))
	}
	return msg
}

// describeControlPlane is the remote secret and node picture for checks
// whose failure could come from either.
func (m *Mesh) describeControlPlane(ctx context.Context) string {
	var parts []string
	for _, p := range m.Primaries() {
		parts = append(parts, m.describeRemoteSecrets(ctx, p))
	}
	return strings.Join(append(parts, describeNodeLocalities(ctx, m.Clusters)), "; ")
}
