package checks

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Pod is a pod as its cluster's API server lists it.
type Pod struct {
	Cluster, Name string
	IP            netip.Addr
}

// Placement is where pods are, according to the clusters' API servers and
// the topology's pod CIDRs: evidence of which cluster served a call that
// does not come from the workload (whose CLUSTER variable the harness set).
type Placement struct {
	// PodCIDRs maps each cluster to its pod CIDR; it is not changed after
	// NewPlacement (ClusterOf reads it without a lock).
	PodCIDRs map[string]netip.Prefix
	// Pods maps pod IPs to the pods the API servers list with them.
	Pods map[netip.Addr]Pod
}

// NewPlacement returns an empty placement for the clusters' pod CIDRs.
func NewPlacement(podCIDRs map[string]netip.Prefix) *Placement {
	return &Placement{PodCIDRs: podCIDRs, Pods: map[netip.Addr]Pod{}}
}

// Add records pods; a later listing adds to earlier ones, so pods deleted
// between a call and its judgement (failover) are still known.
func (p *Placement) Add(pods ...Pod) {
	for _, pod := range pods {
		p.Pods[pod.IP] = pod
	}
}

// ClusterOf is the cluster whose pod CIDR holds ip (an IPv4-mapped IPv6
// address is placed as its IPv4 address). It reads only PodCIDRs, which
// nothing changes after NewPlacement, never Pods, which Add grows: so a
// running traffic load may place its answers with it while another
// goroutine adds pods (under its own lock).
func (p *Placement) ClusterOf(ip netip.Addr) (string, bool) {
	ip = ip.Unmap()
	for cl, cidr := range p.PodCIDRs {
		if cidr.Contains(ip) {
			return cl, true
		}
	}
	return "", false
}

// ServedFrom rejects answers whose claimed origin is not where the call
// went: for each answer, the address the frontend's own connection reached
// must be a pod IP inside a cluster's pod CIDR, that cluster's API server
// must list a pod with that IP and with the name the answer gives, and the
// cluster the answer names must be that cluster. So "answered by cluster2"
// is proven by the network and the API server, not taken from the app.
func ServedFrom(p *Placement) Checker {
	return func(c Calls) error {
		if err := someAnswered(c); err != nil {
			return err
		}
		bad := map[string]int{}
		for _, r := range answered(c.Results) {
			if msg := p.disprove(r); msg != "" {
				bad[msg]++
			}
		}
		if len(bad) > 0 {
			var lines []string
			for _, k := range sortedKeys(bad) {
				lines = append(lines, fmt.Sprintf("%s (×%d)", k, bad[k]))
			}
			sort.Strings(lines)
			return fmt.Errorf("answers not proven to come from where they say (of %d calls): %s", c.Asked, strings.Join(lines, "; "))
		}
		return nil
	}
}

// disprove says why r's claim is not borne out, or "".
func (p *Placement) disprove(r Result) string {
	ap, err := netip.ParseAddrPort(r.PeerAddr)
	if err != nil {
		return fmt.Sprintf("answer of pod %s (%s) has no peer address (%q)", r.Pod, r.Cluster, r.PeerAddr)
	}
	ip := ap.Addr().Unmap()
	cl, ok := p.ClusterOf(ip)
	if !ok {
		return fmt.Sprintf("answer of pod %s (%s) came from %s, inside no cluster's pod CIDR", r.Pod, r.Cluster, ip)
	}
	pod, ok := p.Pods[ip]
	switch {
	case !ok:
		return fmt.Sprintf("answer of pod %s came from %s, which %s's API server lists for no pod", r.Pod, ip, cl)
	case pod.Cluster != cl:
		return fmt.Sprintf("pod IP %s is in %s's pod CIDR but listed by %s", ip, cl, pod.Cluster)
	case pod.Name != r.Pod:
		return fmt.Sprintf("answer claims pod %s but came from %s, which is %s's pod %s", r.Pod, ip, cl, pod.Name)
	case r.Cluster != cl:
		return fmt.Sprintf("pod %s claims cluster %q but runs in %s (IP %s)", r.Pod, r.Cluster, cl, ip)
	}
	return ""
}
