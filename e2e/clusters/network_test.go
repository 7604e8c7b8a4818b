package clusters

import (
	"net/netip"
	"testing"
)

func TestNodeIPRangeIsLowerHalf(t *testing.T) {
	if got := NodeIPRange(netip.MustParsePrefix("172.30.0.0/16")); got.String() != "172.30.0.0/17" {
		t.Errorf("got %s", got)
	}
}

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
