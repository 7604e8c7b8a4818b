// Package cni gives a kind cluster's pods a network without kind's default
// CNI (kindnetd, which cannot be built here): on every node, the standard
// ptp and host-local plugins hand out addresses from the node's podCIDR, and
// each node routes the other nodes' podCIDRs to them. The same routes, to
// another cluster's nodes, make the flat network between clusters.
package cni

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// ConfigPath is where the network config is written on each node.
const ConfigPath = "/etc/cni/net.d/10-meshconform.conflist"

// NetworkName is the CNI network's name.
const NetworkName = "meshconform"

// RenderConflist returns the CNI config for a node whose pods take addresses
// from podCIDR. No masquerading: pod addresses stay visible across the flat
// network, as a multicluster mesh on one network expects.
func RenderConflist(podCIDR netip.Prefix, mtu int) ([]byte, error) {
	if !podCIDR.IsValid() || podCIDR.Masked() != podCIDR {
		return nil, fmt.Errorf("pod CIDR %q is not a network address", podCIDR)
	}
	if podCIDR.Bits() > 30 {
		return nil, fmt.Errorf("pod CIDR %s is too small for pods", podCIDR)
	}
	defaultRoute := "0.0.0.0/0"
	if podCIDR.Addr().Is6() {
		defaultRoute = "::/0"
	}
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       NetworkName,
		"plugins": []any{
			map[string]any{
				"type":   "ptp",
				"ipMasq": false,
				"mtu":    mtu,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]map[string]string{{{"subnet": podCIDR.String()}}},
					"routes": []map[string]string{{"dst": defaultRoute}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// Route is one route a node needs: Dst reached via the node at Via.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// NodeInfo is what routing needs to know of a node.
type NodeInfo struct {
	Name    string
	IP      netip.Addr
	PodCIDR netip.Prefix
}

// RoutesFor returns the routes node self needs to reach every other node's
// pods (within its own cluster or across clusters).
func RoutesFor(self NodeInfo, all []NodeInfo) []Route {
	var routes []Route
	for _, n := range all {
		if n.Name == self.Name || !n.PodCIDR.IsValid() {
			continue
		}
		routes = append(routes, Route{Dst: n.PodCIDR, Via: n.IP})
	}
	return routes
}

// RejectUnservedServiceIPs is the iptables rule (arguments after
// `iptables`) that refuses, on a node, pod traffic to the cluster's own
// service range that no proxy rule has translated. kube-proxy rewrites a
// Service IP to an endpoint before routing (nat PREROUTING), so only
// packets it has not translated reach FORWARD with such a destination.
// Without the rule they follow the node's default route out to the Docker
// network's gateway, and a client that starts before kube-proxy has
// written its rules — CoreDNS, every cluster start — waits out a 30 s dial
// timeout (seen: readiness took 40–50 s); with it the dial fails at once and
// the client's retry, a second later, goes through.
func RejectUnservedServiceIPs(serviceSubnet netip.Prefix) []string {
	return []string{"FORWARD", "-d", serviceSubnet.String(), "-m", "comment", "--comment", "meshconform: service IP not translated by kube-proxy", "-j", "REJECT"}
}
