package mesh

import (
	"fmt"
	"net/netip"

	"github.com/meshconform/meshconform/e2e/checks"

	"github.com/meshconform/meshconform/e2e/clusters"
)

// Model is one multicluster mesh as every part of meshconform reads it:
// the installer, the specs' checks (package verify), the doctor and the
// bundle. It is built once, from the topology for clusters meshconform
// makes or from the contexts of clusters a user brings; each cluster
// carries its role, the primary whose istiod serves it (ControlPlane), its
// network, its Istio cluster ID and its kubeconfig.
type Model struct {
	// Clusters in the topology's order.
	Clusters []*clusters.Cluster
	// Revision of the control plane ("" = default).
	Revision string
	// TrustDomain of the workloads' SPIFFE identities.
	TrustDomain string
}

// Primaries are the clusters that run istiod, in order.
func (m Model) Primaries() []*clusters.Cluster {
	return clusters.Filter(m.Clusters, func(c *clusters.Cluster) bool { return c.Primary })
}

// Remotes are the clusters without an istiod of their own, in order.
func (m Model) Remotes() []*clusters.Cluster {
	return clusters.Filter(m.Clusters, func(c *clusters.Cluster) bool { return !c.Primary })
}

// Others are the clusters of the mesh other than c, in order: those an
// istiod of c must watch when c is a primary.
func (m Model) Others(c *clusters.Cluster) []*clusters.Cluster {
	return clusters.Filter(m.Clusters, func(o *clusters.Cluster) bool { return o != c })
}

// ServedBy are the remotes whose control plane is primary p.
func (m Model) ServedBy(p *clusters.Cluster) []*clusters.Cluster {
	return clusters.Filter(m.Clusters, func(c *clusters.Cluster) bool { return !c.Primary && c.ControlPlane == p.Name })
}

// ProxiesOf are the clusters whose proxies primary p's istiod serves: p
// itself and the remotes it serves, in order.
func (m Model) ProxiesOf(p *clusters.Cluster) []*clusters.Cluster {
	return clusters.Filter(m.Clusters, func(c *clusters.Cluster) bool { return c.ControlPlane == p.Name })
}

// ClusterIDs are the clusters' Istio cluster IDs, in order.
func ClusterIDs(cls []*clusters.Cluster) []string {
	out := make([]string, 0, len(cls))
	for _, c := range cls {
		out = append(out, c.ClusterID)
	}
	return out
}

// Check rejects a model no multicluster mesh fits: no primary, a remote
// whose control plane is no primary of the mesh, a cluster without an
// Istio cluster ID, two clusters of one name or of one ID.
func (m Model) Check() error {
	if len(m.Primaries()) == 0 {
		return fmt.Errorf("%d clusters and no primary: no istiod to judge", len(m.Clusters))
	}
	names, ids := map[string]bool{}, map[string]bool{}
	for _, c := range m.Clusters {
		if c.ClusterID == "" {
			return fmt.Errorf("cluster %s has no Istio cluster ID", c.Name)
		}
		if names[c.Name] || ids[c.ClusterID] {
			return fmt.Errorf("cluster %s (Istio cluster ID %q) appears twice", c.Name, c.ClusterID)
		}
		names[c.Name], ids[c.ClusterID] = true, true
	}
	for _, r := range m.Remotes() {
		if p := m.byName(r.ControlPlane); p == nil || !p.Primary {
			return fmt.Errorf("remote %s names control plane %q, which is no primary of the mesh", r.Name, r.ControlPlane)
		}
	}
	return m.PodRanges()
}

// PodRanges rejects clusters whose pod ranges overlap (checks.
// PodRangesOverlap); clusters without one (no pod CIDR on their nodes)
// are placed by their API servers and take no part.
func (m Model) PodRanges() error {
	ranges := map[string]netip.Prefix{}
	for _, c := range m.Clusters {
		if c.PodSubnet.IsValid() {
			ranges[c.Name] = c.PodSubnet
		}
	}
	return checks.PodRangesOverlap(ranges)
}

func (m Model) byName(name string) *clusters.Cluster {
	for _, c := range m.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}
