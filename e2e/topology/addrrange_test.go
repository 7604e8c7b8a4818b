package topology

import (
	"net/netip"
	"testing"
)

func TestParseAddrRange(t *testing.T) {
	r, err := ParseAddrRange("172.30.255.200-172.30.255.249")
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != 50 || !r.Contains(netip.MustParseAddr("172.30.255.220")) || r.Contains(netip.MustParseAddr("172.30.255.250")) {
		t.Errorf("range %s size %d", r, r.Size())
	}
	c, err := ParseAddrRange("10.0.0.0/30")
	if err != nil || c.String() != "10.0.0.0-10.0.0.3" {
		t.Errorf("cidr → %s, %v", c, err)
	}
	for _, bad := range []string{"10.0.0.9-10.0.0.1", "x-10.0.0.1", "10.0.0.1", "10.0.0.1-::1"} {
		if _, err := ParseAddrRange(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAddrRangeOverlapsAndWithin(t *testing.T) {
	a, _ := ParseAddrRange("10.0.0.10-10.0.0.20")
	b, _ := ParseAddrRange("10.0.0.20-10.0.0.30")
	c, _ := ParseAddrRange("10.0.0.21-10.0.0.30")
	if !a.Overlaps(b) || !b.Overlaps(a) || a.Overlaps(c) || c.Overlaps(a) {
		t.Error("overlap arithmetic wrong")
	}
	net := PrefixRange(netip.MustParsePrefix("10.0.0.0/24"))
	if !a.Within(net) || net.Within(a) {
		t.Error("within arithmetic wrong")
	}
}

func TestDefaultPoolsAreDisjointAtTheEnd(t *testing.T) {
	n := Network{Name: "x", Subnet: netip.MustParsePrefix("172.30.0.0/16")}
	pools, err := n.DefaultPools(2, 50)
	if err != nil {
		t.Fatal(err)
	}
	if pools[0].String() != "172.30.255.205-172.30.255.254" || pools[1].String() != "172.30.255.155-172.30.255.204" {
		t.Errorf("pools = %v", pools)
	}
	if pools[0].Overlaps(pools[1]) {
		t.Error("pools overlap")
	}
	if n.NodeRange().String() != "172.30.0.0/17" {
		t.Errorf("node range %s", n.NodeRange())
	}
	small := Network{Name: "s", Subnet: netip.MustParsePrefix("172.30.0.0/26")}
	if _, err := small.DefaultPools(2, 50); err == nil {
		t.Error("pools larger than the upper half accepted")
	}
}
