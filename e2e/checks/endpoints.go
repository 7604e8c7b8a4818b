package checks

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/meshconform/meshconform/fixtures/apps/meshapp/api"
)

// A caller's view of a service: the endpoints its own xDS client holds
// (api.Endpoints, from the frontend's CSDS), by xDS cluster. Istio names a
// service's clusters outbound|PORT|SUBSET|HOST; the default one has no
// subset.

// OutboundCluster is Istio's xDS cluster name for host:port (no subset).
func OutboundCluster(host string, port int) string {
	return fmt.Sprintf("outbound|%d||%s", port, host)
}

// heldFor lists the addresses of every xDS cluster of host in the view,
// with the clusters that hold each.
func heldFor(v api.Endpoints, host string) map[netip.Addr][]string {
	out := map[netip.Addr][]string{}
	for name, eps := range v.Clusters {
		if !strings.HasSuffix(name, "|"+host) {
			continue
		}
		for _, e := range eps {
			if ap, err := netip.ParseAddrPort(e.Address); err == nil {
				out[ap.Addr().Unmap()] = append(out[ap.Addr().Unmap()], name)
			}
		}
	}
	return out
}

// DeadGone rejects a caller's view that still holds, in any xDS cluster of
// host, an address of dead (pods that were killed): a stale endpoint. A
// view without any endpoint of host is an error too (a caller that lost
// the service, or a view not read, holds no dead address either), and so
// is an empty dead: nothing to look for.
func DeadGone(v api.Endpoints, host string, dead []netip.Addr) error {
	if len(dead) == 0 {
		return fmt.Errorf("no dead address to look for")
	}
	held := heldFor(v, host)
	if len(held) == 0 {
		return fmt.Errorf("the caller in %s holds no endpoint of %s (%d xDS clusters): no view to judge", v.Frontend.Cluster, host, len(v.Clusters))
	}
	var stale []string
	for _, a := range dead {
		if cs, ok := held[a]; ok {
			stale = append(stale, fmt.Sprintf("%s (in %s)", a, strings.Join(cs, ", ")))
		}
	}
	if len(stale) > 0 {
		return fmt.Errorf("the caller in %s still holds %d dead endpoints of %s: %s", v.Frontend.Cluster, len(stale), host, strings.Join(stale, "; "))
	}
	return nil
}

// ViewMatches rejects a caller's view of cluster (Istio's default xDS
// cluster of a service) that is not exactly live: an address it lacks (a
// backend the caller cannot reach) or one it holds that no live pod has
// (stale). An empty live, or a view without the cluster, is an error.
func ViewMatches(v api.Endpoints, cluster string, live []netip.Addr) error {
	if len(live) == 0 {
		return fmt.Errorf("no live address to expect")
	}
	eps, ok := v.Clusters[cluster]
	if !ok {
		return fmt.Errorf("the caller in %s holds no xDS cluster %s (it holds %d others)", v.Frontend.Cluster, cluster, len(v.Clusters))
	}
	var have []netip.Addr
	for _, e := range eps {
		ap, err := netip.ParseAddrPort(e.Address)
		if err != nil {
			return fmt.Errorf("the caller in %s: endpoint %q of %s: %w", v.Frontend.Cluster, e.Address, cluster, err)
		}
		have = append(have, ap.Addr().Unmap())
	}
	var missing, stale []string
	for _, a := range live {
		if !slices.Contains(have, a) {
			missing = append(missing, a.String())
		}
	}
	for _, a := range have {
		if !slices.Contains(live, a) {
			stale = append(stale, a.String())
		}
	}
	if len(missing)+len(stale) > 0 {
		return fmt.Errorf("the caller in %s: %s lacks %d live endpoints [%s] and holds %d that no live pod has [%s]", v.Frontend.Cluster, cluster, len(missing), strings.Join(missing, " "), len(stale), strings.Join(stale, " "))
	}
	return nil
}

// LiveSubset rejects a caller's view of cluster that is empty, or that
// holds an address no live pod has (stale): the view of a caller whose
// control plane lost some endpoints (a remote it cannot read) but must
// keep serving it live ones. It returns the addresses held.
func LiveSubset(v api.Endpoints, cluster string, live []netip.Addr) ([]netip.Addr, error) {
	eps := v.Clusters[cluster]
	if len(eps) == 0 {
		return nil, fmt.Errorf("the caller in %s holds no endpoint of %s: it has nothing to call", v.Frontend.Cluster, cluster)
	}
	var have []netip.Addr
	var stale []string
	for _, e := range eps {
		ap, err := netip.ParseAddrPort(e.Address)
		if err != nil {
			return nil, fmt.Errorf("the caller in %s: endpoint %q of %s: %w", v.Frontend.Cluster, e.Address, cluster, err)
		}
		a := ap.Addr().Unmap()
		have = append(have, a)
		if !slices.Contains(live, a) {
			stale = append(stale, a.String())
		}
	}
	if len(stale) > 0 {
		return have, fmt.Errorf("the caller in %s: %s holds %d endpoints that no live pod has [%s]", v.Frontend.Cluster, cluster, len(stale), strings.Join(stale, " "))
	}
	return have, nil
}
