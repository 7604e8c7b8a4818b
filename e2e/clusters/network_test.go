package clusters

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/meshconform/meshconform/e2e/cni"
)

func TestOverlappingRoute(t *testing.T) {
	routes := `default via 10.0.2.2 dev eth0
10.0.2.0/24 dev eth0 proto kernel scope link src 10.0.2.15
172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1 linkdown
192.168.1.7 dev wg0 scope link
`
	cases := map[string]string{
		"172.30.0.0/16":  "",
		"172.16.0.0/12":  "172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1 linkdown",
		"10.0.0.0/8":     "10.0.2.0/24 dev eth0 proto kernel scope link src 10.0.2.15",
		"192.168.1.0/24": "192.168.1.7 dev wg0 scope link",
	}
	for subnet, want := range cases {
		if got := overlappingRoute(routes, netip.MustParsePrefix(subnet)); got != want {
			t.Errorf("%s: got %q want %q", subnet, got, want)
		}
	}
}

func TestCrossClusterRoutes(t *testing.T) {
	nodes := []cni.NodeInfo{
		{Name: "c2-control-plane", IP: netip.MustParseAddr("172.30.0.3"), PodCIDR: netip.MustParsePrefix("10.20.0.0/24")},
		{Name: "c2-worker", IP: netip.MustParseAddr("172.30.0.4"), PodCIDR: netip.MustParsePrefix("10.20.1.0/24")},
	}
	got := CrossClusterRoutes(netip.MustParsePrefix("10.255.20.0/24"), nodes)
	want := []cni.Route{
		{Dst: netip.MustParsePrefix("10.20.0.0/24"), Via: netip.MustParseAddr("172.30.0.3")},
		{Dst: netip.MustParsePrefix("10.20.1.0/24"), Via: netip.MustParseAddr("172.30.0.4")},
		{Dst: netip.MustParsePrefix("10.255.20.0/24"), Via: netip.MustParseAddr("172.30.0.3")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}
