// Package clusters creates, readies, exports and deletes the kind clusters of
// a topology with kind's Go library, on a Docker network of meshconform's own.
package clusters

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/klient/conf"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindlog "sigs.k8s.io/kind/pkg/log"

	"github.com/meshconform/meshconform/e2e/cni"
	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/internal/docker"
	"github.com/meshconform/meshconform/e2e/poll"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// Manager runs the lifecycle of the topology's clusters.
type Manager struct {
	Network       topology.Network
	KubeconfigDir string
	provider      *cluster.Provider
	logger        kindlog.Logger
	logOut        io.Writer
	// Time, when set, times the steps of a cluster's creation as phases of
	// the run's report (kind's create, then what follows it).
	Time func(name string, fn func() error) error

	mu sync.Mutex
	// creating holds, per cluster, a channel closed when kind's create of
	// it returns: one given up on (an interrupt) goes on making nodes, and
	// a deletion that ran before it ended would leave those behind.
	creating map[string]chan struct{}
}

func (m *Manager) time(name string, fn func() error) error {
	if m.Time == nil {
		return fn()
	}
	return m.Time(name, fn)
}

// NewManager returns a manager writing kubeconfigs (one file per cluster,
// never the user's ~/.kube/config) to kubeconfigDir, and kind's status lines
// to logOut.
func NewManager(network topology.Network, kubeconfigDir string, logOut io.Writer) *Manager {
	// kind's Docker provider takes its network from the environment only
	// (KIND_EXPERIMENTAL_DOCKER_NETWORK, read in Provision; sigs.k8s.io/kind
	// v0.30 has no provider or create option for it). Set here, once, when
	// the run's manager is made, before any cluster is created side by
	// side, not in each Create.
	os.Setenv("KIND_EXPERIMENTAL_DOCKER_NETWORK", network.Name)
	logger := NewWriterLogger(logOut, "   kind: ", 0)
	return &Manager{
		Network: network, KubeconfigDir: kubeconfigDir, logger: logger, logOut: logOut, creating: map[string]chan struct{}{},
		provider: cluster.NewProvider(cluster.ProviderWithDocker(), cluster.ProviderWithLogger(logger)),
	}
}

// creator is a provider whose status lines name the cluster, since clusters
// are created side by side.
func (m *Manager) creator(name string) *cluster.Provider {
	return cluster.NewProvider(cluster.ProviderWithDocker(),
		cluster.ProviderWithLogger(NewWriterLogger(m.logOut, "   kind "+name+": ", 0)))
}

// Cluster is a created cluster.
type Cluster struct {
	topology.Cluster
	// Kubeconfig is a file whose server is the control-plane container's
	// address on the Docker network: it works from this machine and from
	// inside the other clusters.
	Kubeconfig string
	Client     klient.Client
	// PodLocality: the cluster's locality (Region, Zone) is not its nodes'
	// but the run's, carried by its app pods' LocalityLabel (PlanLocality).
	PodLocality bool
}

// KubeconfigPath is where the cluster's kubeconfig is written.
func (m *Manager) KubeconfigPath(name string) string {
	return filepath.Join(m.KubeconfigDir, name+".kubeconfig")
}

// Context is the kubeconfig context kind names after the cluster.
func Context(name string) string { return "kind-" + name }

// Exists reports whether a kind cluster of that name exists, and if so
// whether it is ours (its nodes are on our network).
func (m *Manager) Exists(ctx context.Context, name string) (exists, ours bool, err error) {
	list, err := m.provider.List()
	if err != nil {
		return false, false, fmt.Errorf("list kind clusters: %w", err)
	}
	if !slices.Contains(list, name) {
		return false, false, nil
	}
	ns, err := m.provider.ListNodes(name)
	if err != nil {
		return true, false, err
	}
	for _, n := range ns {
		nets, err := docker.Run(ctx, "inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", n.String())
		if err != nil {
			return true, false, err
		}
		if !slices.Contains(strings.Fields(nets), m.Network.Name) {
			return true, false, nil
		}
	}
	return true, true, nil
}

// CheckName fails when the name is taken by a kind cluster that is not ours.
func (m *Manager) CheckName(ctx context.Context, name string) error {
	exists, ours, err := m.Exists(ctx, name)
	if err != nil {
		return err
	}
	if exists && !ours {
		return fmt.Errorf("a kind cluster named %q exists and is not meshconform's (its nodes are not on docker network %s): delete it or rename the cluster in kindconfigs/", name, m.Network.Name)
	}
	return nil
}

// Create creates c from imgs, replacing a stale cluster of ours with the same
// name (left by a killed run), then gives its pods a network.
func (m *Manager) Create(ctx context.Context, c topology.Cluster, imgs images.ClusterImages) (*Cluster, error) {
	if err := m.CheckName(ctx, c.Name); err != nil {
		return nil, err
	}
	if exists, _, _ := m.Exists(ctx, c.Name); exists {
		m.logger.Warnf("cluster %s: replacing a stale cluster of an earlier run", c.Name)
		if err := m.Delete(ctx, c.Name); err != nil {
			return nil, fmt.Errorf("replace stale cluster %s: %w", c.Name, err)
		}
	}
	cfg := c.Kind.DeepCopy()
	cfg.ContainerdConfigPatches = append(cfg.ContainerdConfigPatches, imgs.ContainerdConfigPatches...)
	// meshconform gives pods their network itself (package cni).
	cfg.Networking.DisableDefaultCNI = true
	if err := os.MkdirAll(m.KubeconfigDir, 0o700); err != nil {
		return nil, err
	}
	kc := m.KubeconfigPath(c.Name)
	created := make(chan struct{})
	m.mu.Lock()
	m.creating[c.Name] = created
	m.mu.Unlock()
	err := m.time("kind create "+c.Name, func() error {
		return bounded(ctx, "kind create "+c.Name, func() error {
			defer close(created)
			return m.creator(c.Name).Create(c.Name,
				cluster.CreateWithV1Alpha4Config(cfg),
				cluster.CreateWithNodeImage(imgs.Node),
				cluster.CreateWithKubeconfigPath(kc),
				cluster.CreateWithWaitForReady(0),
				cluster.CreateWithDisplayUsage(false),
				cluster.CreateWithDisplaySalutation(false),
			)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("create cluster %s: %w", c.Name, err)
	}
	if err := m.writeNodeFiles(c.Name, imgs.NodeFiles); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	if err := m.writeInternalKubeconfig(c.Name, kc); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	client, err := NewClient(kc)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: client: %w", c.Name, err)
	}
	cl := &Cluster{Cluster: c, Kubeconfig: kc, Client: client}
	if err := m.time("pod network "+c.Name, func() error { return m.installPodNetwork(ctx, cl) }); err != nil {
		return nil, fmt.Errorf("cluster %s: pod network: %w", c.Name, err)
	}
	return cl, nil
}

// NewClient is a client of the cluster a kubeconfig file names, whose
// user agent is workloads.FieldManager: the API server records every
// write that names no field manager (creates, updates, scales) under the
// user agent's name, so all the harness writes carries that one manager,
// as its server-side applies do, and a brought cluster's audit can tell
// the run's changes from the cluster's own (snapshot.CompareAttributed).
func NewClient(kubeconfig string) (klient.Client, error) {
	cfg, err := conf.New(kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = workloads.FieldManager
	return klient.New(cfg)
}

func (m *Manager) writeNodeFiles(name string, files map[string]string) error {
	if len(files) == 0 {
		return nil
	}
	ns, err := m.provider.ListNodes(name)
	if err != nil {
		return err
	}
	for _, n := range ns {
		for path, content := range files {
			if err := n.Command("mkdir", "-p", filepath.Dir(path)).Run(); err != nil {
				return fmt.Errorf("node %s: mkdir for %s: %w", n, path, err)
			}
			if err := nodeutils.WriteFile(n, path, content); err != nil {
				return fmt.Errorf("node %s: write %s: %w", n, path, err)
			}
		}
	}
	return nil
}

// writeInternalKubeconfig replaces the kubeconfig kind wrote (server on a
// random host port of 127.0.0.1) with one whose server is the control-plane
// container's IP, as Istio's multicluster CI does, so the same file serves
// this machine and istiod in another cluster.
func (m *Manager) writeInternalKubeconfig(name, path string) error {
	raw, err := m.provider.KubeConfig(name, true)
	if err != nil {
		return fmt.Errorf("internal kubeconfig: %w", err)
	}
	ip, err := m.controlPlaneIP(name)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.Load([]byte(raw))
	if err != nil {
		return err
	}
	for _, cl := range cfg.Clusters {
		cl.Server = strings.Replace(cl.Server, name+"-control-plane", ip.String(), 1)
	}
	return clientcmd.WriteToFile(*cfg, path)
}

func (m *Manager) controlPlaneIP(name string) (netip.Addr, error) {
	ns, err := m.provider.ListNodes(name)
	if err != nil {
		return netip.Addr{}, err
	}
	cp, err := nodeutils.ControlPlaneNodes(ns)
	if err != nil || len(cp) == 0 {
		return netip.Addr{}, fmt.Errorf("no control-plane node: %v", err)
	}
	return nodeIP(cp[0])
}

func nodeIP(n nodes.Node) (netip.Addr, error) {
	v4, _, err := n.IP()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("node %s address: %w", n, err)
	}
	return netip.ParseAddr(v4)
}

// Nodes returns routing facts of every node of the cluster: name, address on
// the Docker network and podCIDR (waiting, bounded, for the controller
// manager to allocate one).
func (m *Manager) Nodes(ctx context.Context, cl *Cluster) ([]cni.NodeInfo, error) {
	kindNodes, err := m.provider.ListInternalNodes(cl.Name)
	if err != nil {
		return nil, err
	}
	var infos []cni.NodeInfo
	for _, kn := range kindNodes {
		ip, err := nodeIP(kn)
		if err != nil {
			return nil, err
		}
		var node corev1.Node
		var cidr netip.Prefix
		err = poll.Until(ctx, 2*time.Minute, time.Second, func(ctx context.Context) error {
			if err := cl.Client.Resources().Get(ctx, kn.String(), "", &node); err != nil {
				return err
			}
			if node.Spec.PodCIDR == "" {
				return fmt.Errorf("node %s has no podCIDR yet", kn)
			}
			var err error
			cidr, err = netip.ParsePrefix(node.Spec.PodCIDR)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("wait for node %s's podCIDR: %w", kn, err)
		}
		infos = append(infos, cni.NodeInfo{Name: kn.String(), IP: ip, PodCIDR: cidr})
	}
	return infos, nil
}

// installPodNetwork writes each node's CNI config and routes each node's
// pod CIDR to the node that owns it.
func (m *Manager) installPodNetwork(ctx context.Context, cl *Cluster) error {
	infos, err := m.Nodes(ctx, cl)
	if err != nil {
		return err
	}
	kindNodes, err := m.provider.ListInternalNodes(cl.Name)
	if err != nil {
		return err
	}
	for _, kn := range kindNodes {
		var self cni.NodeInfo
		for _, i := range infos {
			if i.Name == kn.String() {
				self = i
			}
		}
		// Before any pod has a network (the conflist below), so no client
		// ever dials a Service IP into the void.
		rule := cni.RejectUnservedServiceIPs(cl.ServiceSubnet)
		if err := kn.CommandContext(ctx, "iptables", append([]string{"-w", "-I"}, rule...)...).Run(); err != nil {
			return fmt.Errorf("node %s: iptables rule for untranslated service IPs: %w", kn, err)
		}
		conf, err := cni.RenderConflist(self.PodCIDR, 1500)
		if err != nil {
			return fmt.Errorf("node %s: %w", kn, err)
		}
		if err := nodeutils.WriteFile(kn, cni.ConfigPath, string(conf)); err != nil {
			return fmt.Errorf("node %s: write %s: %w", kn, cni.ConfigPath, err)
		}
		if err := AddRoutes(ctx, kn, cni.RoutesFor(self, infos)); err != nil {
			return err
		}
	}
	return nil
}

// AddRoutes installs routes on a node (idempotent: `ip route replace`).
func AddRoutes(ctx context.Context, n nodes.Node, routes []cni.Route) error {
	for _, r := range routes {
		if err := n.CommandContext(ctx, "ip", "route", "replace", r.Dst.String(), "via", r.Via.String()).Run(); err != nil {
			return fmt.Errorf("node %s: route %s via %s: %w", n, r.Dst, r.Via, err)
		}
	}
	return nil
}

// ExportLogs writes kind's log bundle for the cluster (journal, kubelet and
// containerd logs, container logs, docker inspect) under dir/name.
func (m *Manager) ExportLogs(ctx context.Context, name, dir string) error {
	return bounded(ctx, "export the logs of "+name, func() error { return m.provider.CollectLogs(name, filepath.Join(dir, name)) })
}

// Delete deletes the cluster, its kubeconfig file and its context.
func (m *Manager) Delete(ctx context.Context, name string) error {
	m.waitCreate(ctx, name)
	kc := m.KubeconfigPath(name)
	if err := bounded(ctx, "kind delete "+name, func() error { return m.provider.Delete(name, kc) }); err != nil {
		return fmt.Errorf("delete cluster %s: %w", name, err)
	}
	if err := os.Remove(kc); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// JoinFlat makes the clusters' networks one flat network, as Istio's
// multicluster CI does for kind: on every node, each other cluster's pod
// CIDRs are routed to the nodes that own them, and its service CIDR to its
// first control-plane node (whose kube-proxy implements those Services).
func (m *Manager) JoinFlat(ctx context.Context, all []*Cluster) error {
	type clusterNodes struct {
		cl    *Cluster
		infos []cni.NodeInfo
		kind  []nodes.Node
	}
	var cs []clusterNodes
	for _, cl := range all {
		infos, err := m.Nodes(ctx, cl)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", cl.Name, err)
		}
		kn, err := m.provider.ListInternalNodes(cl.Name)
		if err != nil {
			return err
		}
		cs = append(cs, clusterNodes{cl, infos, kn})
	}
	for _, self := range cs {
		var routes []cni.Route
		for _, other := range cs {
			if other.cl.Name == self.cl.Name {
				continue
			}
			routes = append(routes, CrossClusterRoutes(other.cl.ServiceSubnet, other.infos)...)
		}
		for _, n := range self.kind {
			if err := AddRoutes(ctx, n, routes); err != nil {
				return fmt.Errorf("cluster %s: %w", self.cl.Name, err)
			}
		}
	}
	return nil
}

// CrossClusterRoutes are the routes into another cluster: each of its nodes'
// pod CIDRs via that node, and its service CIDR via its first node.
func CrossClusterRoutes(serviceCIDR netip.Prefix, nodes []cni.NodeInfo) []cni.Route {
	var routes []cni.Route
	for _, n := range nodes {
		routes = append(routes, cni.Route{Dst: n.PodCIDR, Via: n.IP})
	}
	if len(nodes) > 0 {
		routes = append(routes, cni.Route{Dst: serviceCIDR, Via: nodes[0].IP})
	}
	return routes
}

// Filter returns the clusters of cls that keep says to keep, in order: the
// one way the harness picks clusters by role, region or name.
func Filter(cls []*Cluster, keep func(*Cluster) bool) []*Cluster {
	var out []*Cluster
	for _, c := range cls {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// ByRole splits cls into primaries and remotes, keeping their order.
func ByRole(cls []*Cluster) (primaries, remotes []*Cluster) {
	return Filter(cls, func(c *Cluster) bool { return c.Primary }), Filter(cls, func(c *Cluster) bool { return !c.Primary })
}

// Names are the clusters' names, in order.
func Names(cls []*Cluster) []string {
	out := make([]string, 0, len(cls))
	for _, c := range cls {
		out = append(out, c.Name)
	}
	return out
}

// WaitCreates waits, within ctx, until every kind create this manager
// began has returned: one given up on (an interrupt) still makes nodes
// (kubeadm's init takes under a minute), which a deletion that looked
// before they existed would leave behind.
func (m *Manager) WaitCreates(ctx context.Context) {
	m.mu.Lock()
	pending := make([]chan struct{}, 0, len(m.creating))
	for _, created := range m.creating {
		pending = append(pending, created)
	}
	m.mu.Unlock()
	for _, created := range pending {
		select {
		case <-created:
		case <-ctx.Done():
			return
		}
	}
}

func (m *Manager) waitCreate(ctx context.Context, name string) {
	m.mu.Lock()
	created := m.creating[name]
	m.mu.Unlock()
	if created == nil {
		return
	}
	select {
	case <-created:
	case <-ctx.Done():
	}
}

// bounded runs one of kind's calls, which take no context, within ctx:
// when ctx ends first, the caller gets ctx's error at once and the call is
// left to finish or fail on its own (its containers are what the caller's
// next step — a deletion, the clean-up's sweep by name — removes).
func bounded(ctx context.Context, what string, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%s: gave up: %w", what, context.Cause(ctx))
	}
}
