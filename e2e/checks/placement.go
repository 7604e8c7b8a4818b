package checks

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Pod is a pod as its cluster's API server lists it.
type Pod struct {
	Cluster, Name string
	IP            netip.Addr
}

// Placement is where pods are, according to the clusters' API servers and
// the clusters' pod ranges: evidence of which cluster served a call that
// does not come from the workload (whose CLUSTER variable the harness set).
//
// Two proofs, strongest first. Where a cluster's nodes carry pod CIDRs
// (spec.podCIDRs) and no two clusters' ranges overlap, the address the
// call reached names the cluster by itself. Where they carry none (VPC
// CNIs: EKS, AKS, OVN-Kubernetes, Cilium's cluster-pool IPAM), the
// address must be listed as that pod's IP by exactly one cluster's API
// server; an address two clusters list proves nothing and is refused,
// never attributed at random. It is safe for concurrent use: a running
// traffic load places answers while a check adds pods.
type Placement struct {
	// podCIDRs are the ranges of the clusters that have one; not changed
	// after NewPlacement.
	podCIDRs map[string]netip.Prefix
	mu       sync.Mutex
	// pods maps a pod IP to every pod the API servers listed with it.
	pods map[netip.Addr][]Pod
}

// NewPlacement returns an empty placement for the clusters' pod ranges;
// a cluster whose range is not valid (its nodes carry none) is placed by
// its API server alone. Ranges must not overlap (PodRangesOverlap, which
// attaching a cluster checks): a NewPlacement given overlapping ones
// places no address by range.
func NewPlacement(podCIDRs map[string]netip.Prefix) *Placement {
	ranges := map[string]netip.Prefix{}
	for cl, p := range podCIDRs {
		if p.IsValid() {
			ranges[cl] = p.Masked()
		}
	}
	if PodRangesOverlap(ranges) != nil {
		ranges = nil
	}
	return &Placement{podCIDRs: ranges, pods: map[netip.Addr][]Pod{}}
}

// PodRangesOverlap rejects pod ranges of which two overlap: two clusters
// could then hold pods at one address, and an answer from it could not be
// placed by the network. Clusters without a range are not in podCIDRs.
func PodRangesOverlap(podCIDRs map[string]netip.Prefix) error {
	names := make([]string, 0, len(podCIDRs))
	for cl := range podCIDRs {
		names = append(names, cl)
	}
	sort.Strings(names)
	var bad []string
	for i, a := range names {
		for _, b := range names[i+1:] {
			if podCIDRs[a].Overlaps(podCIDRs[b]) {
				bad = append(bad, fmt.Sprintf("%s (%s) and %s (%s)", a, podCIDRs[a], b, podCIDRs[b]))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("pod address ranges overlap: %s; pods of two clusters may share an address, so the cluster that served a call cannot be proven (a flat multicluster network needs distinct pod ranges)", strings.Join(bad, "; "))
	}
	return nil
}

// Add records pods; a later listing adds to earlier ones, so pods deleted
// between a call and its judgement (failover) are still known.
func (p *Placement) Add(pods ...Pod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pod := range pods {
		pod.IP = pod.IP.Unmap()
		if !slices.Contains(p.pods[pod.IP], pod) {
			p.pods[pod.IP] = append(p.pods[pod.IP], pod)
		}
	}
}

// ClusterOf is the cluster that holds ip (an IPv4-mapped IPv6 address is
// placed as its IPv4 address): the one whose pod range holds it, or, in no
// range, the one cluster without a range whose API server listed a pod
// there. An address no range holds and no such cluster, or more than one,
// listed is not placed.
func (p *Placement) ClusterOf(ip netip.Addr) (string, bool) {
	ip = ip.Unmap()
	for cl, cidr := range p.podCIDRs {
		if cidr.Contains(ip) {
			return cl, true
		}
	}
	// Listed by one cluster only, and that one without a range (a ranged
	// cluster's pod outside its range is no backend of ours).
	if listed := p.listedAt(ip); len(listed) == 1 {
		if _, ranged := p.podCIDRs[listed[0]]; !ranged {
			return listed[0], true
		}
	}
	return "", false
}

// listedAt are the distinct clusters whose API servers listed a pod at ip,
// sorted.
func (p *Placement) listedAt(ip netip.Addr) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, pod := range p.pods[ip] {
		if !slices.Contains(out, pod.Cluster) {
			out = append(out, pod.Cluster)
		}
	}
	sort.Strings(out)
	return out
}

// podsAt are the pods cl's API server listed at ip.
func (p *Placement) podsAt(cl string, ip netip.Addr) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, pod := range p.pods[ip] {
		if pod.Cluster == cl {
			out = append(out, pod.Name)
		}
	}
	return out
}

// ServedFrom rejects answers whose claimed origin is not where the call
// went: for each answer, the address the frontend's own connection reached
// must be placed in one cluster (ClusterOf), that cluster's API server
// must list a pod with that IP and with the name the answer gives, and the
// cluster the answer names must be that cluster. So "answered by cluster2"
// is proven by the network (or the API servers) and the API server, not
// taken from the app.
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
	listed := p.listedAt(ip)
	cl, ok := p.ClusterOf(ip)
	switch {
	case !ok && len(listed) > 1:
		return fmt.Sprintf("answer of pod %s came from %s, which the API servers of %s all list: no proof which cluster served it", r.Pod, ip, strings.Join(listed, " and "))
	case !ok && len(listed) == 1:
		return fmt.Sprintf("answer of pod %s came from %s, outside %s's pod CIDR, though %s lists a pod there", r.Pod, ip, listed[0], listed[0])
	case !ok:
		return fmt.Sprintf("answer of pod %s (%s) came from %s, inside no cluster's pod CIDR and listed by no cluster's API server", r.Pod, r.Cluster, ip)
	}
	names := p.podsAt(cl, ip)
	switch {
	case len(names) == 0 && len(listed) > 0:
		return fmt.Sprintf("pod IP %s is in %s's pod CIDR but listed by %s", ip, cl, strings.Join(listed, " and "))
	case len(names) == 0:
		return fmt.Sprintf("answer of pod %s came from %s, which %s's API server lists for no pod", r.Pod, ip, cl)
	case !slices.Contains(names, r.Pod):
		return fmt.Sprintf("answer claims pod %s but came from %s, which is %s's pod %s", r.Pod, ip, cl, strings.Join(names, ", "))
	case r.Cluster != cl:
		return fmt.Sprintf("pod %s claims cluster %q but runs in %s (IP %s)", r.Pod, r.Cluster, cl, ip)
	}
	return ""
}
