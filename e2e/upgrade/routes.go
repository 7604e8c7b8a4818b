package upgrade

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TargetHeader is the request header that aims a call at one cluster's
// backends ("target-cluster: cluster2").
const TargetHeader = "target-cluster"

// ClusterLabel is the label istiod gives every endpoint with its cluster's
// ID, which a subset can select on.
const ClusterLabel = "topology.istio.io/cluster"

// ClusterRoutes are the Istio rules that send a call carrying
// TargetHeader: <cluster> to that cluster's backends only (a
// DestinationRule with a subset per cluster and a VirtualService matching
// the header), and every other call to any backend. The cross-cluster
// streams of the load use them, so "cross-cluster only" is the mesh's own
// routing, proven per answer by the address it came from.
func ClusterRoutes(host, namespace string, clusters []string) []*unstructured.Unstructured {
	var subsets, routes []any
	for _, cl := range clusters {
		subsets = append(subsets, map[string]any{"name": cl, "labels": map[string]any{ClusterLabel: cl}})
		routes = append(routes, map[string]any{
			"match": []any{map[string]any{"headers": map[string]any{TargetHeader: map[string]any{"exact": cl}}}},
			"route": []any{map[string]any{"destination": map[string]any{"host": host, "subset": cl}}},
		})
	}
	routes = append(routes, map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": host}}}})
	obj := func(kind string, spec map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "networking.istio.io/v1", "kind": kind,
			"metadata": map[string]any{"name": "backend-by-cluster", "namespace": namespace},
			"spec":     spec,
		}}
		return u
	}
	return []*unstructured.Unstructured{
		obj("DestinationRule", map[string]any{"host": host, "subsets": subsets}),
		obj("VirtualService", map[string]any{"hosts": []any{host}, "http": routes}),
	}
}
