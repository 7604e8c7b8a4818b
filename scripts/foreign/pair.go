package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"

	"github.com/meshconform/meshconform/e2e/cni"
	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/report"
)

// The foreign pair: two clusters as a vendor's platform has them, made
// with kind's library directly (none of meshconform's topology or cluster
// code), so that nothing meshconform assumes of its own clusters holds:
// other names; nodes without spec.podCIDRs (the controller manager
// allocates none; the CNI takes its ranges from its own plan, as
// VPC-style CNIs and Cilium's cluster-pool do); no region labels;
// restricted Pod Security by default for every namespace but the
// platform's (the API server's admission configuration, as hardened
// distributions ship it); istiod behind a load balancer that hands out a
// host name.

// pairNetwork is the pair's Docker network: not meshconform's.
const pairNetwork = "acme"

// site is one cluster of the pair.
type site struct {
	// name is the kind cluster's (its nodes are <name>-control-plane).
	name string
	// context is its kubeconfig context, as the vendor names it.
	context string
	// clusterID is its Istio cluster ID.
	clusterID string
	// podSubnet is the cluster's pod network (kube-proxy's cluster CIDR);
	// nodeRange is the one node's part of it, known to the CNI alone.
	podSubnet, nodeRange netip.Prefix
	serviceSubnet        netip.Prefix
	primary              bool
}

var sites = []site{
	{name: "acme-east", context: "east", clusterID: "east-1", primary: true,
		podSubnet: netip.MustParsePrefix("10.60.0.0/16"), nodeRange: netip.MustParsePrefix("10.60.7.0/24"), serviceSubnet: netip.MustParsePrefix("10.96.60.0/24")},
	{name: "acme-west", context: "west", clusterID: "west-1",
		podSubnet: netip.MustParsePrefix("10.61.0.0/16"), nodeRange: netip.MustParsePrefix("10.61.7.0/24"), serviceSubnet: netip.MustParsePrefix("10.96.61.0/24")},
}

// podSecurityExempt are the platform's own namespaces, left out of the
// restricted default (kind's storage provisioner and the mesh's control
// plane run privileged or as root).
var podSecurityExempt = []string{"kube-system", "local-path-storage", istioNamespace}

// admissionConfig makes restricted the default Pod Security level of
// every namespace without labels of its own.
func admissionConfig() string {
	return `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      enforce: restricted
      enforce-version: latest
      audit: restricted
      warn: restricted
    exemptions:
      namespaces: [` + strings.Join(podSecurityExempt, ", ") + `]
`
}

// kubeadmPatch turns off node CIDR allocation and points the API server
// at the admission configuration mounted into the node.
const kubeadmPatch = `kind: ClusterConfiguration
controllerManager:
  extraArgs:
    allocate-node-cidrs: "false"
apiServer:
  extraArgs:
    admission-control-config-file: /etc/kubernetes/acme/admission.yaml
  extraVolumes:
  - name: acme-admission
    hostPath: /etc/kubernetes/acme
    mountPath: /etc/kubernetes/acme
    readOnly: true
    pathType: DirectoryOrCreate
`

func kindConfig(s site, admissionDir string, imgs images.ClusterImages) *v1alpha4.Cluster {
	cfg := &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Name:     s.name,
		Networking: v1alpha4.Networking{
			DisableDefaultCNI: true, PodSubnet: s.podSubnet.String(), ServiceSubnet: s.serviceSubnet.String(),
		},
		Nodes: []v1alpha4.Node{{
			Role:        v1alpha4.ControlPlaneRole,
			ExtraMounts: []v1alpha4.Mount{{HostPath: admissionDir, ContainerPath: "/etc/kubernetes/acme", Readonly: true}},
		}},
		KubeadmConfigPatches:    []string{kubeadmPatch},
		ContainerdConfigPatches: imgs.ContainerdConfigPatches,
	}
	v1alpha4.SetDefaultsCluster(cfg)
	return cfg
}

// pairEnv is what the pair's bring-up needs of meshconform: the image
// source (the node image, the control plane's and Istio's images, an
// istioctl), nothing of its topology.
type pairEnv struct {
	dir      string
	local    *images.Local
	cfg      harness.Config
	provider *cluster.Provider
}

func newPairEnv(dir string) (*pairEnv, error) {
	cfg, err := harness.ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	kube, err := images.LookupKubeRelease(cfg.KubernetesVersion)
	if err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "build.log"))
	if err != nil {
		return nil, err
	}
	// kind's Docker provider reads its network from the environment only.
	os.Setenv("KIND_EXPERIMENTAL_DOCKER_NETWORK", pairNetwork)
	return &pairEnv{
		dir: dir, cfg: cfg,
		local:    images.NewLocal(kube, cfg.CacheDir, cfg.RegistryPort, report.NewRun(io.Discard), log),
		provider: cluster.NewProvider(cluster.ProviderWithDocker()),
	}, nil
}

func (e *pairEnv) kubeconfig(s site) string { return filepath.Join(e.dir, s.name+".kubeconfig") }

// pairUp creates the pair and writes DIR/kubeconfig (contexts east and
// west) and the node files; the mesh comes after (meshUp).
func pairUp(ctx context.Context, dir string) error {
	e, err := newPairEnv(dir)
	if err != nil {
		return err
	}
	if err := ensurePairNetwork(ctx); err != nil {
		return err
	}
	// The control plane's images come from meshconform's registry as a
	// mirror on the pair's network: the platform's own image source.
	imgs, err := e.local.Prepare(ctx, pairNetwork)
	if err != nil {
		return err
	}
	admission := filepath.Join(dir, "admission")
	if err := os.MkdirAll(admission, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(admission, "admission.yaml"), []byte(admissionConfig()), 0o644); err != nil {
		return err
	}
	g, _ := errgroup.WithContext(ctx)
	for _, s := range sites {
		g.Go(func() error {
			err := e.provider.Create(s.name,
				cluster.CreateWithV1Alpha4Config(kindConfig(s, admission, imgs)),
				cluster.CreateWithNodeImage(imgs.Node),
				cluster.CreateWithKubeconfigPath(e.kubeconfig(s)),
				cluster.CreateWithWaitForReady(0),
				cluster.CreateWithDisplayUsage(false),
				cluster.CreateWithDisplaySalutation(false))
			if err != nil {
				return fmt.Errorf("create %s: %w", s.name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	infos := map[string]cni.NodeInfo{}
	for _, s := range sites {
		ip, err := e.nodeIP(s)
		if err != nil {
			return err
		}
		infos[s.name] = cni.NodeInfo{Name: s.name + "-control-plane", IP: netip.MustParseAddr(ip), PodCIDR: s.nodeRange}
	}
	var all []cni.NodeInfo
	for _, s := range sites {
		all = append(all, infos[s.name])
	}
	for _, s := range sites {
		n, _ := e.node(s)
		conf, err := cni.RenderConflist(s.nodeRange, 1500)
		if err != nil {
			return err
		}
		if err := nodeutils.WriteFile(n, cni.ConfigPath, string(conf)); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		for _, r := range cni.RoutesFor(infos[s.name], all) {
			if err := n.CommandContext(ctx, "ip", "route", "replace", r.Dst.String(), "via", r.Via.String()).Run(); err != nil {
				return fmt.Errorf("%s: route %s via %s: %w", s.name, r.Dst, r.Via, err)
			}
		}
	}
	return e.writeKubeconfig(infos)
}

// ensurePairNetwork creates the pair's network with a subnet of its own
// (an address of it is given to the registry, which Docker allows only on
// networks whose subnet was given): the first private /16 Docker takes.
func ensurePairNetwork(ctx context.Context) error {
	if _, err := docker(ctx, nil, "network", "inspect", pairNetwork); err == nil {
		return nil
	}
	var errs []string
	for n := 28; n >= 20; n-- {
		_, err := docker(ctx, nil, "network", "create", "--label", images.OwnerLabel+"=true", "--subnet", fmt.Sprintf("172.%d.0.0/16", n), pairNetwork)
		if err == nil {
			return nil
		}
		errs = append(errs, err.Error())
	}
	return fmt.Errorf("create network %s: %s", pairNetwork, strings.Join(errs, "; "))
}

// nodeIP is the address of s's one node on the pair's network.
func (e *pairEnv) nodeIP(s site) (string, error) {
	n, err := e.node(s)
	if err != nil {
		return "", err
	}
	ip, _, err := n.IP()
	return ip, err
}

func (e *pairEnv) node(s site) (nodes.Node, error) {
	ns, err := e.provider.ListNodes(s.name)
	if err != nil || len(ns) != 1 {
		return nil, fmt.Errorf("cluster %s: want its one node, have %d (%v)", s.name, len(ns), err)
	}
	return ns[0], nil
}

// writeKubeconfig joins the clusters' admin kubeconfigs into DIR/kubeconfig
// under the vendor's context names, each server at its node's address on
// the pair's network (reached from this machine and from the other
// cluster's istiod alike).
func (e *pairEnv) writeKubeconfig(infos map[string]cni.NodeInfo) error {
	out := clientcmdapi.NewConfig()
	for _, s := range sites {
		c, err := clientcmd.LoadFromFile(e.kubeconfig(s))
		if err != nil {
			return err
		}
		kctx := c.Contexts[c.CurrentContext]
		if kctx == nil {
			return fmt.Errorf("%s: kubeconfig without a current context", s.name)
		}
		cl := c.Clusters[kctx.Cluster]
		cl.Server = fmt.Sprintf("https://%s:6443", infos[s.name].IP)
		out.Clusters[s.context] = cl
		out.AuthInfos[s.context+"-admin"] = c.AuthInfos[kctx.AuthInfo]
		out.Contexts[s.context] = &clientcmdapi.Context{Cluster: s.context, AuthInfo: s.context + "-admin"}
		if err := clientcmd.WriteToFile(clientcmdapi.Config{
			Clusters: map[string]*clientcmdapi.Cluster{s.context: cl}, AuthInfos: map[string]*clientcmdapi.AuthInfo{"admin": c.AuthInfos[kctx.AuthInfo]},
			Contexts: map[string]*clientcmdapi.Context{s.context: {Cluster: s.context, AuthInfo: "admin"}}, CurrentContext: s.context,
		}, e.kubeconfig(s)); err != nil {
			return err
		}
	}
	out.CurrentContext = sites[0].context
	return clientcmd.WriteToFile(*out, filepath.Join(e.dir, "kubeconfig"))
}

// pairDown deletes the pair's clusters and network (and meshconform's
// registry, which served them on it); each is ours by name.
func pairDown(ctx context.Context) error {
	os.Setenv("KIND_EXPERIMENTAL_DOCKER_NETWORK", pairNetwork)
	p := cluster.NewProvider(cluster.ProviderWithDocker())
	// kind removes the cluster's context from a kubeconfig as it deletes
	// it: from a throwaway one, never the user's ~/.kube/config (kind
	// would create ~/.kube for its lock).
	tmp, err := os.MkdirTemp("", "meshconform-foreign-kubeconfig-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var errs []string
	for _, s := range sites {
		if err := p.Delete(s.name, filepath.Join(tmp, "kubeconfig")); err != nil {
			errs = append(errs, err.Error())
		}
	}
	// meshconform's registry, if a pair-up that stopped early left it on
	// the pair's network; on another network it is another run's.
	if nets, err := docker(ctx, nil, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", images.RegistryContainer); err == nil && slices.Contains(strings.Fields(nets), pairNetwork) {
		if err := images.RemoveRegistry(ctx); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if _, err := docker(ctx, nil, "network", "inspect", pairNetwork); err == nil {
		if _, err := docker(ctx, nil, "network", "rm", pairNetwork); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("pair-down: %s", strings.Join(errs, "; "))
	}
	return nil
}

// kubectl runs kubectl on one of the pair's clusters, its discovery cache
// in DIR (never ~/.kube).
func kubectl(ctx context.Context, dir string, s site, stdin io.Reader, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", filepath.Join(dir, "kubeconfig"), "--context", s.context, "--cache-dir", filepath.Join(dir, "kube-cache")}, args...)...)
	// Whatever kubectl keeps under $HOME/.kube stays in DIR.
	cmd.Env = append(os.Environ(), "HOME="+dir)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kubectl --context %s %s: %w: %s", s.context, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}
