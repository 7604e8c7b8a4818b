package mesh

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/e2e-framework/klient"

	"github.com/meshconform/meshconform/e2e/clusters"
)

// Ref is one object's identity in an Inventory.
type Ref struct {
	Group, Kind, Namespace, Name string
}

// String reads like kubectl's output: "ClusterRole istio-reader-clusterrole-istio-system",
// "ConfigMap default/istio-ca-root-cert". Kinds of Kubernetes' own groups
// go bare; others carry their group, so an Istio Gateway is not taken for
// a Gateway API one.
func (r Ref) String() string {
	kind := r.Kind
	if r.Group != "" && strings.Contains(r.Group, ".") && !strings.HasSuffix(r.Group, ".k8s.io") {
		kind += "." + r.Group
	}
	if r.Namespace == "" {
		return kind + " " + r.Name
	}
	return kind + " " + r.Namespace + "/" + r.Name
}

// Inventory is a cluster's objects an install could create, by identity,
// each with its UID (an object deleted and made again under the same name
// is a new one). It holds no contents: it is read with the metadata
// client, so no Secret's data is ever fetched.
//
// It answers one question, "what did the install leave", which
// e2e/snapshot's audit of brought clusters does not: that one lists every
// kind in every namespace and compares generations and labels, to prove a
// user's cluster left exactly as found; this one is bounded to the kinds
// an install creates and taken on every cluster, kind's included.
type Inventory map[Ref]string

// InventoryNamespaced are the namespaced kinds listed, in every namespace
// (one List each): those an install writes into namespaces that existed
// before it (istiod's namespace controller writes config maps into every
// namespace; charts ship service accounts, RBAC, services and workloads,
// and a CNI or gateway may go to kube-system). Objects of other kinds live
// in istio-system, which the install creates: the namespace stands for
// them.
var InventoryNamespaced = []struct {
	GVR  schema.GroupVersionResource
	Kind string
}{
	{schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, "ConfigMap"},
	{schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, "Secret"},
	{schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, "ServiceAccount"},
	{schema.GroupVersionResource{Version: "v1", Resource: "services"}, "Service"},
	{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}, "Role"},
	{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}, "RoleBinding"},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "Deployment"},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}, "DaemonSet"},
}

// InventorySkips are the cluster-scoped resources ("resource.group") an
// inventory leaves out: the cluster makes and removes them on its own, or
// they are computed on read, so a difference in them says nothing about an
// install. Every other cluster-scoped resource discovery finds with a
// "list" verb is inventoried; create-only ones (tokenreviews,
// subjectaccessreviews, selfsubject*reviews) have none and are passed over
// for that. APIServices are kept: the aggregator registers one per served
// CRD group version, so one left says an Istio API is still served.
var InventorySkips = map[string]string{
	"nodes":                            "registered by kubelets, added and removed by autoscalers",
	"csinodes.storage.k8s.io":          "one per node, follows nodes",
	"volumeattachments.storage.k8s.io": "made by the attach-detach controller as pods with CSI volumes move",
	"certificatesigningrequests.certificates.k8s.io": "kubelets file them to rotate certificates; the controller manager collects them after an hour",
	"ipaddresses.networking.k8s.io":                  "one per Service ClusterIP in any namespace, named by the IP: the Service names the leftover",
	"resourceslices.resource.k8s.io":                 "published per node by DRA drivers",
	"componentstatuses":                              "computed on each read (deprecated)",
}

// inventorySkippedGroups are API groups whose objects are computed on read
// (metrics-server's node and pod metrics): never listed, and a failure to
// discover them does not fail the inventory.
var inventorySkippedGroups = map[string]bool{"metrics.k8s.io": true}

func resourceKey(gvr schema.GroupVersionResource) string {
	if gvr.Group == "" {
		return gvr.Resource
	}
	return gvr.Resource + "." + gvr.Group
}

// TakeInventory lists, read-only and metadata only, every cluster-scoped
// resource kind discovery finds (less InventorySkips), and the
// InventoryNamespaced kinds in every namespace: one List per kind (paged).
// An API group that cannot be discovered fails it: an inventory that
// passed over a group would prove nothing about it.
func TakeInventory(ctx context.Context, c klient.Client) (Inventory, error) {
	// ~30 lists; client-go's default 5 requests/s would make that 6 s.
	cfg := rest.CopyConfig(c.RESTConfig())
	cfg.QPS, cfg.Burst = 100, 200
	cfg.WarningHandler = rest.NoWarnings{}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	kinds, err := clusterScopedKinds(dc)
	if err != nil {
		return nil, err
	}
	for _, n := range InventoryNamespaced {
		kinds = append(kinds, listedKind{n.GVR, n.Kind})
	}
	inv := Inventory{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, k := range kinds {
		g.Go(func() error {
			opts := metav1.ListOptions{Limit: 500}
			for {
				list, err := mc.Resource(k.gvr).List(gctx, opts)
				if err != nil {
					return fmt.Errorf("inventory: list %s: %w", resourceKey(k.gvr), err)
				}
				mu.Lock()
				for _, o := range list.Items {
					inv[Ref{Group: k.gvr.Group, Kind: k.kind, Namespace: o.Namespace, Name: o.Name}] = string(o.UID)
				}
				mu.Unlock()
				if opts.Continue = list.Continue; opts.Continue == "" {
					return nil
				}
			}
		})
	}
	return inv, g.Wait()
}

type listedKind struct {
	gvr  schema.GroupVersionResource
	kind string
}

func clusterScopedKinds(dc discovery.DiscoveryInterface) ([]listedKind, error) {
	lists, err := dc.ServerPreferredResources()
	if err != nil {
		var failed *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &failed) {
			return nil, fmt.Errorf("inventory: discover API resources: %w", err)
		}
		for gv, gerr := range failed.Groups {
			if !inventorySkippedGroups[gv.Group] {
				return nil, fmt.Errorf("inventory: discover API group %s (every group must be listable to prove the uninstall): %w", gv, gerr)
			}
		}
	}
	return inventoriedKinds(lists)
}

// inventoriedKinds are the cluster-scoped, listable resources of lists,
// less InventorySkips and inventorySkippedGroups.
func inventoriedKinds(lists []*metav1.APIResourceList) ([]listedKind, error) {
	var out []listedKind
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			return nil, err
		}
		if inventorySkippedGroups[gv.Group] {
			continue
		}
		for _, r := range l.APIResources {
			gvr := gv.WithResource(r.Name)
			if r.Namespaced || strings.Contains(r.Name, "/") || !hasVerb(r.Verbs, "list") || InventorySkips[resourceKey(gvr)] != "" {
				continue
			}
			out = append(out, listedKind{gvr, r.Kind})
		}
	}
	return out, nil
}

func hasVerb(verbs []string, verb string) bool {
	for _, v := range verbs {
		if v == verb {
			return true
		}
	}
	return false
}

// namespaces maps each namespace of the inventory to its UID.
func (inv Inventory) namespaces() map[string]string {
	ns := map[string]string{}
	for r, uid := range inv {
		if r.Group == "" && r.Kind == "Namespace" {
			ns[r.Name] = uid
		}
	}
	return ns
}

// NewObjects is what after holds that before did not (by UID, so an object
// deleted and made again counts), sorted by name. Objects of a namespace
// that did not exist before (the install's istio-system, the apps') are
// left out: the namespace itself is reported if it is still there, and
// stands for what is in it.
func (before Inventory) NewObjects(after Inventory) []Ref {
	was, now := before.namespaces(), after.namespaces()
	var out []Ref
	for r, uid := range after {
		if before[r] == uid {
			continue
		}
		if r.Namespace != "" && (was[r.Namespace] == "" || was[r.Namespace] != now[r.Namespace]) {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// New names what after holds that before did not (NewObjects), sorted:
// "ClusterRole istio-reader-clusterrole-istio-system".
func (before Inventory) New(after Inventory) []string {
	return names(before.NewObjects(after))
}

func names(refs []Ref) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, r.String())
	}
	return out
}

// Inventories takes the inventory of each cluster side by side, each timed
// as an install step, so the report shows its cost.
func (in *Installer) Inventories(ctx context.Context, cls ...*clusters.Cluster) (map[string]Inventory, error) {
	out := make(map[string]Inventory, len(cls))
	var mu sync.Mutex
	err := eachOf(ctx, cls, func(ctx context.Context, cl *clusters.Cluster) error {
		return in.step("inventory before the install", cl.Name, func() error {
			inv, err := TakeInventory(ctx, cl.Client)
			if err != nil {
				return err
			}
			mu.Lock()
			out[cl.Name] = inv
			mu.Unlock()
			in.Run.Figure("inventory_objects_"+cl.Name, len(inv))
			return nil
		})
	})
	return out, err
}
