package clusters

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshconform/meshconform/e2e/topology"
)

// Brought is a cluster the user brings (bring your own): which kubeconfig
// context reaches it and which role of the topology it plays.
type Brought struct {
	// Name is the topology's cluster name (cluster1, …).
	Name string
	// Context is the kubeconfig context that reaches it.
	Context string
}

// LoadKubeconfig reads a kubeconfig path list (several files joined by the
// path separator, as KUBECONFIG) the way kubectl does.
func LoadKubeconfig(paths string) (*clientcmdapi.Config, error) {
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(paths)}
	for _, p := range rules.Precedence {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", p, err)
		}
	}
	cfg, err := rules.Load()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", paths, err)
	}
	return cfg, nil
}

// CheckContexts fails, naming what is missing, unless every context of bs
// exists in cfg and no two roles share one: bad input is refused before
// anything touches a cluster.
func CheckContexts(cfg *clientcmdapi.Config, bs []Brought) error {
	seen := map[string]string{}
	var available []string
	for name := range cfg.Contexts {
		available = append(available, name)
	}
	sort.Strings(available)
	for _, b := range bs {
		if _, ok := cfg.Contexts[b.Context]; !ok {
			return fmt.Errorf("cluster %s: context %q is not in the kubeconfig (it has: %s)", b.Name, b.Context, strings.Join(available, ", "))
		}
		if other, dup := seen[b.Context]; dup {
			return fmt.Errorf("clusters %s and %s both name context %q: each role needs its own cluster", other, b.Name, b.Context)
		}
		seen[b.Context] = b.Name
	}
	return nil
}

// Attach makes a Cluster of a cluster the user brought: it writes a
// kubeconfig holding only that context (istioctl and istiod's remote
// secret need one file per cluster) into dir, which the caller keeps
// private (0700) and removes at the end, never in the artifacts: it holds
// the user's credentials. Locality and pod CIDRs are read from the nodes,
// not from the topology's kind configs, which describe clusters we create
// (no pod CIDR on any node leaves PodSubnet invalid).
func Attach(ctx context.Context, cfg *clientcmdapi.Config, role topology.Cluster, context, dir string) (*Cluster, error) {
	one := cfg.DeepCopy()
	one.CurrentContext = context
	if err := clientcmdapi.MinifyConfig(one); err != nil {
		return nil, fmt.Errorf("cluster %s: context %s: %w", role.Name, context, err)
	}
	if err := clientcmdapi.FlattenConfig(one); err != nil {
		return nil, fmt.Errorf("cluster %s: context %s: %w", role.Name, context, err)
	}
	path := filepath.Join(dir, role.Name+".kubeconfig")
	if err := clientcmd.WriteToFile(*one, path); err != nil {
		return nil, fmt.Errorf("cluster %s: write kubeconfig: %w", role.Name, err)
	}
	client, err := NewClient(path)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: client for context %s: %w", role.Name, context, err)
	}
	var nodes corev1.NodeList
	if err := client.Resources().List(ctx, &nodes); err != nil {
		return nil, fmt.Errorf("cluster %s (context %s): list nodes: %w", role.Name, context, err)
	}
	c := role
	// Nothing of the kind config applies to a cluster we did not create.
	c.Kind, c.LoadBalancerPool = nil, topology.AddrRange{}
	// Nodes without one region each leave the locality to PlanLocality.
	c.Region, c.Zone, _ = NodeLocality(nodes.Items)
	// Nodes on VPC-style CNIs carry no pod CIDRs: the cluster's calls are
	// then placed by its API server's pods (checks.Placement).
	c.PodSubnet, _ = PodCIDRCover(nodes.Items)
	return &Cluster{Cluster: c, Kubeconfig: path, Client: client}, nil
}

// NodeLocality is a cluster's region and zone from its nodes' well-known
// topology labels. Every node must name the same region: the locality
// checks place a cluster in one region. Nodes in several zones give the
// zone "" (the checks judge regions).
func NodeLocality(nodes []corev1.Node) (region, zone string, err error) {
	if len(nodes) == 0 {
		return "", "", fmt.Errorf("no nodes")
	}
	regions, zones := map[string]bool{}, map[string]bool{}
	for _, n := range nodes {
		regions[n.Labels[topology.RegionLabel]] = true
		zones[n.Labels[topology.ZoneLabel]] = true
	}
	if regions[""] {
		return "", "", fmt.Errorf("a node has no %s label: locality failover needs every node's region", topology.RegionLabel)
	}
	if len(regions) > 1 {
		return "", "", fmt.Errorf("nodes span regions %s: meshconform places each cluster in one region", strings.Join(sortedKeys(regions), ", "))
	}
	region = nodes[0].Labels[topology.RegionLabel]
	if len(zones) == 1 {
		zone = nodes[0].Labels[topology.ZoneLabel]
	}
	return region, zone, nil
}

// PodCIDRCover is the smallest prefix holding every node's pod CIDRs (IPv4),
// which the checks use to tell which cluster served a call from its peer
// address alone; an error when no node has one.
func PodCIDRCover(nodes []corev1.Node) (netip.Prefix, error) {
	var cidrs []netip.Prefix
	for _, n := range nodes {
		for _, s := range append([]string{n.Spec.PodCIDR}, n.Spec.PodCIDRs...) {
			if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is4() {
				cidrs = append(cidrs, p.Masked())
			}
		}
	}
	if len(cidrs) == 0 {
		return netip.Prefix{}, fmt.Errorf("no node has an IPv4 podCIDR: meshconform tells clusters apart by their pod addresses and needs the nodes' spec.podCIDRs")
	}
	cover := cidrs[0]
	for _, p := range cidrs[1:] {
		for !cover.Contains(p.Addr()) || cover.Bits() > p.Bits() {
			cover = netip.PrefixFrom(cover.Addr(), cover.Bits()-1).Masked()
		}
	}
	return cover, nil
}

func sortedKeys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// LocalityLabel is Istio's pod label that sets a workload's locality
// ("region.zone"), in place of its node's: every Istio release honours it
// (1.29 also reads topology.istio.io/locality, first).
const LocalityLabel = "istio-locality"

// PlanLocality decides where the brought clusters' localities come from,
// and says so. From their nodes' region and zone labels when every
// cluster's nodes name one region and the clusters span two regions at
// least (the failover spec moves traffic between regions). Otherwise each
// cluster gets a region and zone of its own, named after it, which its app
// pods carry in LocalityLabel, as Istio's own multicluster tests place
// workloads: the locality capability is then judged on pod-label
// localities, and node-label locality not at all.
func PlanLocality(cls []*Cluster) (string, error) {
	regions := map[string]bool{}
	var missing []string
	for _, c := range cls {
		if c.Region == "" {
			missing = append(missing, c.Name)
		}
		regions[c.Region] = true
	}
	var why string
	switch {
	case len(missing) > 0:
		why = "the nodes of " + strings.Join(missing, ", ") + " name no single region"
	case len(regions) < 2 && len(cls) > 1:
		why = "every cluster's nodes are in region " + cls[0].Region
	default:
		return "localities from the nodes' region and zone labels", nil
	}
	for _, c := range cls {
		c.Region, c.Zone, c.PodLocality = c.Name, c.Name+"-z", true
		if v := c.PodLabels()[LocalityLabel]; strings.Count(v, ".") != 1 || len(validation.IsValidLabelValue(v)) > 0 {
			return "", fmt.Errorf("cluster %s: its nodes carry no usable locality (%s), and its name makes no %s label value (%q): name it with letters, digits and '-', 30 characters at most", c.Name, why, LocalityLabel, v)
		}
	}
	return "localities set by the run on its app pods (" + LocalityLabel + "), one region per cluster: " + why, nil
}

// PodLabels are the labels the run puts on c's app pods: its locality,
// where that is the run's (PlanLocality).
func (c *Cluster) PodLabels() map[string]string {
	if !c.PodLocality {
		return nil
	}
	return map[string]string{LocalityLabel: c.Region + "." + c.Zone}
}
