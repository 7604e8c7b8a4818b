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
	"slices"
	"strings"

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
	// Name is the topology file's name without ".yaml" (MESHCONFORM_TOPOLOGY).
	Name     string
	Network  Network
	Clusters []Cluster
	// IstiodReplicas is how many istiod replicas each primary runs unless
	// MESHCONFORM_ISTIOD_REPLICAS says otherwise (at least 1).
	IstiodReplicas int
}

// DefaultIstioNamespace is where Istio lives unless a brought-clusters
// file says otherwise, and where an install puts it.
const DefaultIstioNamespace = "istio-system"

// IstioNamespace is the namespace of the cluster's Istio: its istiod (on a
// primary), mesh config, remote secrets, root certificate and the
// remote's controlPlaneClusters annotation.
func (c Cluster) IstioNamespace() string {
	if c.istioNamespace == "" {
		return DefaultIstioNamespace
	}
	return c.istioNamespace
}

// DefaultName is the topology a run uses when MESHCONFORM_TOPOLOGY is unset:
// Istio's "Install Primary-Remote" guide, one primary and one remote.
const DefaultName = "primary-remote"

// Network is the Docker network every node container is attached to.
type Network struct {
	Name   string
	Subnet netip.Prefix
}

// Cluster is one kind cluster of the mesh.
type Cluster struct {
	Name string
	// ClusterID is the cluster's name in Istio: the install's
	// values.global.multiCluster.clusterName, the remote secret's --name,
	// what istiod's debug/clusterz and proxy-status call it, and the
	// cluster in the injection path. The topology's name for clusters
	// meshconform makes; not assumed equal to it anywhere Istio is judged.
	ClusterID string
	// ClusterIDGiven: a brought-clusters file states ClusterID, so the
	// mesh found there must agree; otherwise an existing mesh's own ID is
	// taken.
	ClusterIDGiven bool
	Primary        bool
	// ControlPlane is the primary whose istiod serves this cluster: the
	// cluster itself for a primary, its primary for a remote.
	ControlPlane string
	MeshNetwork  string
	// istioNamespace is where the cluster's Istio lives (a brought
	// cluster's file may name one); "" is DefaultIstioNamespace.
	istioNamespace string
	PodSubnet      netip.Prefix
	ServiceSubnet  netip.Prefix
	Region         string
	Zone           string
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
	IstiodReplicas int `json:"istiodReplicas"`
	Clusters       []struct {
		Config           string `json:"config"`
		Primary          bool   `json:"primary"`
		ControlPlane     string `json:"controlPlane"`
		MeshNetwork      string `json:"meshNetwork"`
		LoadBalancerPool string `json:"loadBalancerPool"`
	} `json:"clusters"`
}

// Names lists the topologies of dir: every YAML file that parses as a
// topology (the kind configs beside them do not).
func Names(dir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range paths {
		if _, err := readFile(p); err == nil {
			names = append(names, strings.TrimSuffix(filepath.Base(p), ".yaml"))
		}
	}
	return names, nil
}

func readFile(path string) (file, error) {
	var f file
	raw, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("read topology: %w", err)
	}
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		return f, fmt.Errorf("parse %s: %w", path, err)
	}
	if len(f.Clusters) == 0 {
		return f, fmt.Errorf("%s: no clusters", path)
	}
	return f, nil
}

// Load reads the topology name ("" for DefaultName), dir/<name>.yaml, and
// the kind configs it names, and validates the result. Errors name the
// file at fault; an unknown name gets the list of topologies there.
func Load(dir, name string) (*Topology, error) {
	if name == "" {
		name = DefaultName
	}
	path := filepath.Join(dir, name+".yaml")
	f, err := readFile(path)
	if err != nil {
		if names, _ := Names(dir); !slices.Contains(names, name) {
			return nil, fmt.Errorf("no topology %q in %s (MESHCONFORM_TOPOLOGY): the topologies are %s", name, dir, strings.Join(names, ", "))
		}
		return nil, err
	}
	t := &Topology{Name: name, Network: Network{Name: f.Network.Name}, IstiodReplicas: f.IstiodReplicas}
	if t.IstiodReplicas == 0 {
		t.IstiodReplicas = 1
	}
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
		c.Primary, c.MeshNetwork, c.ControlPlane = fc.Primary, fc.MeshNetwork, fc.ControlPlane
		if fc.LoadBalancerPool != "" {
			if c.LoadBalancerPool, err = ParseAddrRange(fc.LoadBalancerPool); err != nil {
				return nil, fmt.Errorf("%s: cluster %q: loadBalancerPool: %w", path, c.Name, err)
			}
		}
		t.Clusters = append(t.Clusters, c)
	}
	t.defaultControlPlanes()
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
	c := Cluster{Name: kc.Name, ClusterID: kc.Name, Kind: kc}
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

// defaultControlPlanes makes each primary its own control plane and gives a
// remote that names none the topology's only primary (Validate refuses it
// when there are several).
func (t *Topology) defaultControlPlanes() {
	var primaries []string
	for _, c := range t.Clusters {
		if c.Primary {
			primaries = append(primaries, c.Name)
		}
	}
	for i, c := range t.Clusters {
		switch {
		case c.Primary && c.ControlPlane == "":
			t.Clusters[i].ControlPlane = c.Name
		case !c.Primary && c.ControlPlane == "" && len(primaries) == 1:
			t.Clusters[i].ControlPlane = primaries[0]
		}
	}
}

// Validate checks what must hold before anything is created: the roles
// (validateRoles), and no two address ranges (Docker network, each
// cluster's pod and service CIDRs) overlapping, since the clusters'
// networks are joined.
func (t *Topology) Validate() error {
	if t.Network.Name == "" {
		return fmt.Errorf("network has no name")
	}
	if err := t.validateRoles(); err != nil {
		return err
	}
	ranges := []namedPrefix{{"docker network " + t.Network.Name, t.Network.Subnet}}
	for _, c := range t.Clusters {
		ranges = append(ranges,
			namedPrefix{fmt.Sprintf("cluster %q pod subnet", c.Name), c.PodSubnet},
			namedPrefix{fmt.Sprintf("cluster %q service subnet", c.Name), c.ServiceSubnet})
	}
	if err := checkDisjoint(ranges); err != nil {
		return err
	}
	return t.validatePools()
}

// validateRoles checks the mesh's shape, of clusters made or brought:
// unique names, at least one primary, each remote served by a primary of
// the topology, at least one istiod replica.
func (t *Topology) validateRoles() error {
	if len(t.Clusters) == 0 {
		return fmt.Errorf("no clusters")
	}
	names := map[string]bool{}
	primaries := 0
	for _, c := range t.Clusters {
		if names[c.Name] {
			return fmt.Errorf("cluster name %q used twice", c.Name)
		}
		names[c.Name] = true
		if c.Primary {
			primaries++
		}
	}
	if primaries == 0 {
		return fmt.Errorf("no primary cluster: at least one must run istiod")
	}
	if t.IstiodReplicas < 1 {
		return fmt.Errorf("istiodReplicas %d: want at least 1", t.IstiodReplicas)
	}
	for _, c := range t.Clusters {
		cp, err := t.Cluster(c.ControlPlane)
		switch {
		case c.Primary && c.ControlPlane != c.Name:
			return fmt.Errorf("cluster %q is a primary: its control plane is its own, not %q", c.Name, c.ControlPlane)
		case c.ControlPlane == "":
			return fmt.Errorf("remote cluster %q names no controlPlane, and the topology has %d primaries", c.Name, primaries)
		case err != nil || !cp.Primary:
			return fmt.Errorf("remote cluster %q: controlPlane %q is not a primary cluster of the topology", c.Name, c.ControlPlane)
		}
	}
	return nil
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

// Primary returns the first primary cluster.
func (t *Topology) Primary() Cluster {
	for _, c := range t.Clusters {
		if c.Primary {
			return c
		}
	}
	panic("topology: validated topology has no primary")
}

// Primaries returns the primary clusters, in the file's order.
func (t *Topology) Primaries() []Cluster {
	var out []Cluster
	for _, c := range t.Clusters {
		if c.Primary {
			out = append(out, c)
		}
	}
	return out
}

// Remotes returns the remote clusters, in the file's order.
func (t *Topology) Remotes() []Cluster {
	var out []Cluster
	for _, c := range t.Clusters {
		if !c.Primary {
			out = append(out, c)
		}
	}
	return out
}

// Kind says what the topology is: "multi-primary" with several primaries,
// else "primary-remote" (one primary, any number of remotes).
func (t *Topology) Kind() string {
	if len(t.Primaries()) > 1 {
		return "multi-primary"
	}
	return "primary-remote"
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

// AllClusterNames is every cluster name of every topology of dir, sorted:
// what a teardown or a leftover check looks for, so clusters kept by a run
// of another topology are not missed.
func AllClusterNames(dir string) ([]string, error) {
	names, err := Names(dir)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, n := range names {
		t, err := Load(dir, n)
		if err != nil {
			return nil, err
		}
		for _, c := range t.Clusters {
			seen[c.Name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}
