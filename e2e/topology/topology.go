// Package topology is the one description of the mesh's clusters: the Docker
// network they share, and for each cluster its kind config, role and mesh
// network. Everything else in the harness reads names, CIDRs and localities
// from here, the way Istio's test framework derives cluster roles from its
// topology data (istio/pkg/test/framework/components/cluster/topology.go).
package topology

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

// Well-known node labels that carry a cluster's locality.
const (
	RegionLabel = "topology.kubernetes.io/region"
	ZoneLabel   = "topology.kubernetes.io/zone"
)

// Topology is the whole set of clusters and the network joining them.
type Topology struct {
	Network  Network
	Clusters []Cluster
}

// Network is the Docker network every node container is attached to.
type Network struct {
	Name   string
	Subnet netip.Prefix
}

// Cluster is one kind cluster of the mesh.
type Cluster struct {
	Name          string
	Primary       bool
	MeshNetwork   string
	PodSubnet     netip.Prefix
	ServiceSubnet netip.Prefix
	Region        string
	Zone          string
	// LoadBalancerPool is the cluster's MetalLB address pool, inside the
	// Docker network's upper half.
	LoadBalancerPool AddrRange
	// Kind is the parsed kind config the cluster is created from.
	Kind *v1alpha4.Cluster
}

// file is topology.yaml as written.
type file struct {
	Network struct {
		Name   string `json:"name"`
		Subnet string `json:"subnet"`
	} `json:"network"`
	Clusters []struct {
		Config           string `json:"config"`
		Primary          bool   `json:"primary"`
		MeshNetwork      string `json:"meshNetwork"`
		LoadBalancerPool string `json:"loadBalancerPool"`
	} `json:"clusters"`
}

// Load reads dir/topology.yaml and the kind configs it names, and validates
// the result. Errors name the file at fault.
func Load(dir string) (*Topology, error) {
	path := filepath.Join(dir, "topology.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read topology: %w", err)
	}
	var f file
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	t := &Topology{Network: Network{Name: f.Network.Name}}
	if t.Network.Subnet, err = netip.ParsePrefix(f.Network.Subnet); err != nil {
		return nil, fmt.Errorf("%s: network subnet: %w", path, err)
	}
	for _, fc := range f.Clusters {
		kindPath := filepath.Join(dir, fc.Config)
		kc, err := LoadKindConfig(kindPath)
		if err != nil {
			return nil, err
		}
		c, err := fromKind(kc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kindPath, err)
		}
		c.Primary, c.MeshNetwork = fc.Primary, fc.MeshNetwork
		if fc.LoadBalancerPool != "" {
			if c.LoadBalancerPool, err = ParseAddrRange(fc.LoadBalancerPool); err != nil {
				return nil, fmt.Errorf("%s: cluster %q: loadBalancerPool: %w", path, c.Name, err)
			}
		}
		t.Clusters = append(t.Clusters, c)
	}
	if err := t.defaultPools(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// LoadKindConfig parses a kind v1alpha4 cluster config strictly, so a typo
// in a field name is an error rather than a silently ignored setting.
func LoadKindConfig(path string) (*v1alpha4.Cluster, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kind config: %w", err)
	}
	kc := &v1alpha4.Cluster{}
	if err := yaml.UnmarshalStrict(raw, kc); err != nil {
		return nil, fmt.Errorf("parse kind config %s: %w", path, err)
	}
	if kc.Kind != "Cluster" || kc.APIVersion != "kind.x-k8s.io/v1alpha4" {
		return nil, fmt.Errorf("parse kind config %s: want kind Cluster, apiVersion kind.x-k8s.io/v1alpha4, got %q %q", path, kc.Kind, kc.APIVersion)
	}
	return kc, nil
}

func fromKind(kc *v1alpha4.Cluster) (Cluster, error) {
	c := Cluster{Name: kc.Name, Kind: kc}
	if c.Name == "" {
		return c, fmt.Errorf("kind config has no cluster name")
	}
	var err error
	if c.PodSubnet, err = netip.ParsePrefix(kc.Networking.PodSubnet); err != nil {
		return c, fmt.Errorf("cluster %q: podSubnet: %w", c.Name, err)
	}
	if c.ServiceSubnet, err = netip.ParsePrefix(kc.Networking.ServiceSubnet); err != nil {
		return c, fmt.Errorf("cluster %q: serviceSubnet: %w", c.Name, err)
	}
	if len(kc.Nodes) == 0 {
		return c, fmt.Errorf("cluster %q: no nodes", c.Name)
	}
	// Locality is a property of the cluster here: every node must agree.
	for i, n := range kc.Nodes {
		r, z := n.Labels[RegionLabel], n.Labels[ZoneLabel]
		if i == 0 {
			c.Region, c.Zone = r, z
		} else if r != c.Region || z != c.Zone {
			return c, fmt.Errorf("cluster %q: node %d has locality %s/%s, node 0 has %s/%s", c.Name, i, r, z, c.Region, c.Zone)
		}
	}
	return c, nil
}

// Validate checks what must hold before anything is created: unique names,
// one primary, and no two address ranges (Docker network, each cluster's pod
// and service CIDRs) overlapping, since the clusters' networks are joined.
func (t *Topology) Validate() error {
	if t.Network.Name == "" {
		return fmt.Errorf("network has no name")
	}
	if len(t.Clusters) == 0 {
		return fmt.Errorf("no clusters")
	}
	names := map[string]bool{}
	primaries := 0
	ranges := []namedPrefix{{"docker network " + t.Network.Name, t.Network.Subnet}}
	for _, c := range t.Clusters {
		if names[c.Name] {
			return fmt.Errorf("cluster name %q used twice", c.Name)
		}
		names[c.Name] = true
		if c.Primary {
			primaries++
		}
		ranges = append(ranges,
			namedPrefix{fmt.Sprintf("cluster %q pod subnet", c.Name), c.PodSubnet},
			namedPrefix{fmt.Sprintf("cluster %q service subnet", c.Name), c.ServiceSubnet})
	}
	if primaries != 1 {
		return fmt.Errorf("want exactly one primary cluster, have %d", primaries)
	}
	if err := checkDisjoint(ranges); err != nil {
		return err
	}
	return t.validatePools()
}

// DefaultPoolSize is how many addresses a cluster's pool has when
// topology.yaml names none.
const DefaultPoolSize = 50

// defaultPools gives every cluster without a pool one carved from the end of
// the network, skipping what explicit pools already hold.
func (t *Topology) defaultPools() error {
	missing := 0
	for _, c := range t.Clusters {
		if !c.LoadBalancerPool.First.IsValid() {
			missing++
		}
	}
	if missing == 0 {
		return nil
	}
	candidates, err := t.Network.DefaultPools(len(t.Clusters)+missing, DefaultPoolSize)
	if err != nil {
		return err
	}
	for i := range t.Clusters {
		if t.Clusters[i].LoadBalancerPool.First.IsValid() {
			continue
		}
		for len(candidates) > 0 {
			p := candidates[0]
			candidates = candidates[1:]
			if !t.poolTaken(p) {
				t.Clusters[i].LoadBalancerPool = p
				break
			}
		}
	}
	return nil
}

func (t *Topology) poolTaken(p AddrRange) bool {
	for _, c := range t.Clusters {
		if c.LoadBalancerPool.First.IsValid() && c.LoadBalancerPool.Overlaps(p) {
			return true
		}
	}
	return false
}

// validatePools checks each pool fits the Docker network outside the range
// Docker gives containers, and that no two pools share an address.
func (t *Topology) validatePools() error {
	whole := PrefixRange(t.Network.Subnet)
	usable := AddrRange{whole.First.Next(), whole.Last.Prev()}
	nodes := PrefixRange(t.Network.NodeRange())
	for i, c := range t.Clusters {
		p := c.LoadBalancerPool
		if !p.First.IsValid() {
			return fmt.Errorf("cluster %q has no load balancer pool", c.Name)
		}
		if !p.Within(usable) {
			return fmt.Errorf("cluster %q: load balancer pool %s does not fit docker network %s %s", c.Name, p, t.Network.Name, t.Network.Subnet)
		}
		if p.Overlaps(nodes) {
			return fmt.Errorf("cluster %q: load balancer pool %s overlaps %s, where Docker assigns node addresses; use the upper half of %s", c.Name, p, t.Network.NodeRange(), t.Network.Subnet)
		}
		for _, o := range t.Clusters[i+1:] {
			if p.Overlaps(o.LoadBalancerPool) {
				return fmt.Errorf("load balancer pools of clusters %q (%s) and %q (%s) overlap", c.Name, p, o.Name, o.LoadBalancerPool)
			}
		}
	}
	return nil
}

type namedPrefix struct {
	name   string
	prefix netip.Prefix
}

func checkDisjoint(ranges []namedPrefix) error {
	for i := range ranges {
		for j := i + 1; j < len(ranges); j++ {
			if ranges[i].prefix.Overlaps(ranges[j].prefix) {
				return fmt.Errorf("%s %s overlaps %s %s", ranges[i].name, ranges[i].prefix, ranges[j].name, ranges[j].prefix)
			}
		}
	}
	return nil
}

// Primary returns the primary cluster.
func (t *Topology) Primary() Cluster {
	for _, c := range t.Clusters {
		if c.Primary {
			return c
		}
	}
	panic("topology: validated topology has no primary")
}

// Cluster returns the cluster of that name.
func (t *Topology) Cluster(name string) (Cluster, error) {
	for _, c := range t.Clusters {
		if c.Name == name {
			return c, nil
		}
	}
	return Cluster{}, fmt.Errorf("no cluster %q in the topology", name)
}
