package cni

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestRenderConflist(t *testing.T) {
	raw, err := RenderConflist(netip.MustParsePrefix("10.10.0.0/24"), 1500)
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Plugins    []struct {
			Type   string `json:"type"`
			IPMasq bool   `json:"ipMasq"`
			MTU    int    `json:"mtu"`
			IPAM   struct {
				Type   string                `json:"type"`
				Ranges [][]map[string]string `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &conf); err != nil {
		t.Fatal(err)
	}
	p := conf.Plugins[0]
	if p.Type != "ptp" || p.IPMasq || p.MTU != 1500 || p.IPAM.Type != "host-local" || p.IPAM.Ranges[0][0]["subnet"] != "10.10.0.0/24" {
		t.Errorf("ptp plugin = %+v", p)
	}
	if conf.Plugins[1].Type != "portmap" {
		t.Errorf("second plugin = %+v", conf.Plugins[1])
	}
}

func TestRenderConflistRejectsBadCIDRs(t *testing.T) {
	for _, c := range []string{"10.10.0.1/24", "10.10.0.0/31"} {
		if _, err := RenderConflist(netip.MustParsePrefix(c), 1500); err == nil {
			t.Errorf("%s accepted", c)
		}
	}
	if _, err := RenderConflist(netip.Prefix{}, 1500); err == nil {
		t.Error("empty CIDR accepted")
	}
}

func TestRoutesForSkipsSelfAndNodesWithoutCIDR(t *testing.T) {
	nodes := []NodeInfo{
		{Name: "a", IP: netip.MustParseAddr("172.30.0.2"), PodCIDR: netip.MustParsePrefix("10.10.0.0/24")},
		{Name: "b", IP: netip.MustParseAddr("172.30.0.3"), PodCIDR: netip.MustParsePrefix("10.10.1.0/24")},
		{Name: "c", IP: netip.MustParseAddr("172.30.0.4")},
	}
	got := RoutesFor(nodes[0], nodes)
	want := []Route{{Dst: netip.MustParsePrefix("10.10.1.0/24"), Via: netip.MustParseAddr("172.30.0.3")}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v want %v", got, want)
	}
}

func TestRejectUnservedServiceIPs(t *testing.T) {
	got := strings.Join(RejectUnservedServiceIPs(netip.MustParsePrefix("10.255.10.0/24")), " ")
	// Only the cluster's own service range, and only in filter FORWARD,
	// which packets reach after kube-proxy's DNAT (nat PREROUTING, or the
	// nftables dstnat hook): a translated packet no longer matches. Traffic
	// of the node itself (OUTPUT) is never refused.
	want := `FORWARD -d 10.255.10.0/24 -m comment --comment meshconform: service IP not translated by kube-proxy -j REJECT`
	if got != want {
		t.Errorf("rule = %q, want %q", got, want)
	}
}
