package checks

import (
	"fmt"
	"maps"
	"slices"
	"sort"
)

// ProxyStatus is one row of `istioctl proxy-status`.
type ProxyStatus struct {
	// Pod and Namespace come from NAME ("pod.namespace").
	Pod, Namespace string
	Cluster        string
	// Istiod is the name of the istiod pod the proxy is connected to.
	Istiod string
	// Version is the proxy's Istio version (from its node metadata).
	Version string
	// Types maps an xDS type (CDS, LDS, EDS, RDS, ECDS) to its status word
	// (SYNCED, NOT SENT, STALE, ERROR, IGNORED), when the output has one
	// column per type (1.26, or 1.27+ with -v 1).
	Types map[string]string
	// Subscribed lists the types a proxy subscribes to, from 1.27+'s
	// "SUBSCRIBED TYPES" column ("4 (CDS,LDS,EDS,RDS)").
	Subscribed []string
}

// Expect is what proxy-status should say of one proxy: the cluster it
// runs in, the istiod pods that should serve it, and its version.
type Expect struct {
	// Cluster is the cluster the pod runs in (CLUSTER: the proxy's
	// ISTIO_META_CLUSTER_ID).
	Cluster string
	// Istiods are the names of the running istiod pods of the primary and
	// revision that should serve the proxy. ISTIOD is the POD_NAME of the
	// istiod the proxy is connected to (pilot/pkg/xds/xdsgen.go in 1.26 to
	// 1.29), so a proxy on another primary's, another revision's, or a
	// gone istiod names a pod not in this list.
	Istiods []string
	// Version is the Istio version the proxy should report. VERSION is the
	// proxy's own ISTIO_VERSION node metadata (istioctl calls it
	// istiodVersion, but fills it from the proxy's node, 1.26 to 1.29),
	// which the agent sets from its build (pkg/bootstrap SetIstioVersion)
	// for Envoy sidecars and proxyless gRPC (grpc-agent) pods alike: the
	// agent writes the gRPC bootstrap's node from the same metadata. It is
	// never empty for a released agent, so an empty VERSION fails too.
	Version string
}

// Synced judges proxy-status (rows, the concatenated output of the
// istiods asked) against the proxies that should be there (want, pod →
// Expect). Each pod of want must be listed, in its cluster, connected to
// one of the istiod pods that should serve it, at the expected version,
// with every xDS type it subscribes to SYNCED (IGNORED = not subscribed).
// It rejects a proxy unknown to istiod, listed in another cluster (a
// wrong ISTIO_META_CLUSTER_ID), served by another primary's istiod, by
// another revision's, or by one not running (a deleted replica), running
// another version, or behind on configuration. Pods are judged in name
// order, the first failure returned. It refuses to pass when no pod is
// wanted, or when a pod has no istiod or version to be judged against.
//
// A correct, settled mesh fails it only while a proxy reconnects (its
// istiod restarted or deleted: listed on the old pod, or not yet SYNCED on
// the new one, for about a second plus a push); callers poll.
func Synced(rows []ProxyStatus, want map[string]Expect) error {
	if len(want) == 0 {
		return fmt.Errorf("no proxies to look for: nothing to judge")
	}
	seen := byPod(rows)
	for _, pod := range slices.Sorted(maps.Keys(want)) {
		w := want[pod]
		switch {
		case len(w.Istiods) == 0:
			return fmt.Errorf("pod %s (%s): no istiod pod should serve it: nothing to judge it against", pod, w.Cluster)
		case w.Version == "":
			return fmt.Errorf("pod %s (%s): no expected version: nothing to judge it against", pod, w.Cluster)
		}
		row, err := listed(seen, len(rows), pod, w.Cluster)
		if err != nil {
			return err
		}
		if !slices.Contains(w.Istiods, row.Istiod) {
			return fmt.Errorf("pod %s (%s) is connected to istiod %q, want one of %v", pod, w.Cluster, row.Istiod, w.Istiods)
		}
		if row.Version != w.Version {
			return fmt.Errorf("pod %s (%s) runs proxy version %q, want %s", pod, w.Cluster, row.Version, w.Version)
		}
		if err := synced(pod, row); err != nil {
			return err
		}
	}
	return nil
}

func byPod(rows []ProxyStatus) map[string]ProxyStatus {
	seen := map[string]ProxyStatus{}
	for _, row := range rows {
		seen[row.Pod] = row
	}
	return seen
}

// listed is pod's row, which must name cluster.
func listed(seen map[string]ProxyStatus, n int, pod, cluster string) (ProxyStatus, error) {
	row, ok := seen[pod]
	if !ok {
		return row, fmt.Errorf("pod %s (%s) not in proxy-status (%d rows)", pod, cluster, n)
	}
	if row.Cluster != cluster {
		return row, fmt.Errorf("pod %s listed in cluster %q, runs in %s", pod, row.Cluster, cluster)
	}
	return row, nil
}

// synced passes a row whose every type is SYNCED or IGNORED, one at least
// SYNCED.
func synced(pod string, row ProxyStatus) error {
	n := 0
	for _, t := range slices.Sorted(maps.Keys(row.Types)) {
		switch st := row.Types[t]; st {
		case "SYNCED":
			n++
		case "IGNORED":
		default:
			return fmt.Errorf("pod %s: %s is %s", pod, t, st)
		}
	}
	if n == 0 {
		return fmt.Errorf("pod %s: no type SYNCED (%v)", pod, row.Types)
	}
	return nil
}

// ByReplica counts the proxies of want (pod → cluster) that rows list, by
// the istiod pod they are connected to.
func ByReplica(rows []ProxyStatus, want map[string]string) map[string]int {
	out := map[string]int{}
	for _, r := range rows {
		if _, ok := want[r.Pod]; ok {
			out[r.Istiod]++
		}
	}
	return out
}

// Spread rejects an HA control plane that serves every proxy of want
// from one replica (the others not serving, or not reachable through the
// Service the proxies dial): the proxies rows list are connected to at
// least two istiod pods. With n proxies connecting at random over k
// replicas, a correct mesh fails it with probability k·(1/k)^n (3 replicas,
// 10 proxies: 5e-5). No proxy listed is an error.
func Spread(rows []ProxyStatus, want map[string]string) (map[string]int, error) {
	by := ByReplica(rows, want)
	n := 0
	for _, c := range by {
		n += c
	}
	switch {
	case n == 0:
		return by, fmt.Errorf("no proxy of %d listed in proxy-status: nothing to judge", len(want))
	case len(by) < 2:
		return by, fmt.Errorf("all %d proxies are connected to one istiod replica (%v): the others serve none", n, by)
	}
	return by, nil
}

// OffReplica rejects proxies still connected to the istiod pod gone: after a
// replica is deleted its proxies must reconnect to the others.
func OffReplica(rows []ProxyStatus, want map[string]string, gone string) error {
	var still []string
	for _, r := range rows {
		if _, ok := want[r.Pod]; ok && r.Istiod == gone {
			still = append(still, r.Pod)
		}
	}
	if len(still) > 0 {
		sort.Strings(still)
		return fmt.Errorf("%d proxies still listed on deleted istiod %s: %v", len(still), gone, still)
	}
	return nil
}
