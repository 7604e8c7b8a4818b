package checks

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/meshconform/meshconform/fixtures/apps/meshapp/api"
)

const host = "backend.production.svc.cluster.local"

func view(clusters map[string][]string) api.Endpoints {
	v := api.Endpoints{Frontend: api.Identity{Cluster: "cluster1"}, Clusters: map[string][]api.Endpoint{}}
	for name, addrs := range clusters {
		for _, a := range addrs {
			v.Clusters[name] = append(v.Clusters[name], api.Endpoint{Address: a, Health: "HEALTHY"})
		}
	}
	return v
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// A caller that dropped the killed pods passes; one holding a dead address
// in any of the service's clusters (a subset's too) fails, naming it; the
// view of another service does not count.
func TestDeadGone(t *testing.T) {
	def := OutboundCluster(host, 7070)
	clean := view(map[string][]string{def: {"10.10.0.5:7070", "10.20.0.9:7070"}, "outbound|7070||other.production.svc.cluster.local": {"10.20.0.7:7070"}})
	if err := DeadGone(clean, host, addrs("10.20.0.7")); err != nil {
		t.Errorf("a clean view: %v", err)
	}
	stale := view(map[string][]string{def: {"10.10.0.5:7070"}, "outbound|7070|v2|" + host: {"10.20.0.7:7070"}})
	if err := DeadGone(stale, host, addrs("10.20.0.7")); err == nil || !strings.Contains(err.Error(), "10.20.0.7 (in outbound|7070|v2|"+host+")") {
		t.Errorf("a stale subset: %v", err)
	}
	if err := DeadGone(clean, host, nil); err == nil {
		t.Error("nothing to look for passed")
	}
	// A caller that holds nothing of the service holds no dead address
	// either: no view, no pass.
	if err := DeadGone(view(map[string][]string{"outbound|7070||other.production.svc.cluster.local": {"10.20.0.7:7070"}}), host, addrs("10.20.0.7")); err == nil || !strings.Contains(err.Error(), "holds no endpoint of") {
		t.Errorf("an empty view: %v", err)
	}
}

// The default cluster must hold exactly the live pods: a missing live
// endpoint and a stale one both fail, and an absent cluster or nothing
// expected is an error, not a pass.
func TestViewMatches(t *testing.T) {
	def := OutboundCluster(host, 7070)
	live := addrs("10.10.0.5", "10.20.0.9")
	if err := ViewMatches(view(map[string][]string{def: {"10.20.0.9:7070", "10.10.0.5:7070"}}), def, live); err != nil {
		t.Errorf("the live pods exactly: %v", err)
	}
	for name, c := range map[string]struct {
		v    api.Endpoints
		live []netip.Addr
		want string
	}{
		"missing":    {view(map[string][]string{def: {"10.10.0.5:7070"}}), live, "lacks 1 live endpoints [10.20.0.9]"},
		"stale":      {view(map[string][]string{def: {"10.10.0.5:7070", "10.20.0.9:7070", "10.20.0.7:7070"}}), live, "holds 1 that no live pod has [10.20.0.7]"},
		"no cluster": {view(map[string][]string{}), live, "holds no xDS cluster"},
		"no live":    {view(map[string][]string{def: {"10.10.0.5:7070"}}), nil, "no live address"},
	} {
		if err := ViewMatches(c.v, def, c.live); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// A caller holding some live endpoints passes and says which; one holding
// none, or a stale one, fails.
func TestLiveSubset(t *testing.T) {
	def := OutboundCluster(host, 7070)
	live := addrs("10.10.0.5", "10.20.0.9")
	have, err := LiveSubset(view(map[string][]string{def: {"10.10.0.5:7070"}}), def, live)
	if err != nil || len(have) != 1 || have[0] != live[0] {
		t.Errorf("a view of the primary's backend only: %v %v", have, err)
	}
	if _, err := LiveSubset(view(map[string][]string{def: {"10.10.0.5:7070", "10.20.0.7:7070"}}), def, live); err == nil || !strings.Contains(err.Error(), "10.20.0.7") {
		t.Errorf("a stale endpoint: %v", err)
	}
	for _, v := range []api.Endpoints{view(nil), view(map[string][]string{"outbound|7070||other.production.svc.cluster.local": {"10.10.0.5:7070"}})} {
		if _, err := LiveSubset(v, def, live); err == nil || !strings.Contains(err.Error(), "nothing to call") {
			t.Errorf("an empty view: %v", err)
		}
	}
}
