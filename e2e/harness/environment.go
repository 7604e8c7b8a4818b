package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/discovery"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/mesh"
)

// EnvironmentFile is the fingerprint of what a run judged, in the artifacts
// (and so in a results bundle): a verdict is about these clusters and this
// Istio, nothing else.
const EnvironmentFile = "environment.json"

// Environment is the fingerprint.
type Environment struct {
	RunID       string `json:"runId"`
	ImageSource string `json:"imageSource"`
	Brought     bool   `json:"broughtClusters"`
	MeshMode    string `json:"meshMode"`
	// PodSecurity is the Pod Security level the run's namespaces enforced
	// on the apps' pods ("" = none of the run's; the cluster's default).
	PodSecurity string `json:"podSecurity,omitempty"`
	// Topology is the topology file's name; IstiodReplicas per primary.
	Topology       string               `json:"topology"`
	IstiodReplicas int                  `json:"istiodReplicas"`
	Clusters       []ClusterFingerprint `json:"clusters"`
	// Istio is the first primary's control plane; IstiodByPrimary has
	// every primary's (a multi-primary mesh runs one istiod per cluster,
	// and a skew between them must show).
	Istio           IstioFingerprint            `json:"istio"`
	IstiodByPrimary map[string]IstioFingerprint `json:"istiodByPrimary,omitempty"`
}

// ClusterFingerprint is one cluster: Kubernetes, nodes, network, role.
type ClusterFingerprint struct {
	Name         string `json:"name"`
	Primary      bool   `json:"primary"`
	ControlPlane string `json:"controlPlane"`
	Region       string `json:"region"`
	Zone         string `json:"zone,omitempty"`
	MeshNetwork  string `json:"meshNetwork"`
	PodCIDRs     string `json:"podCIDRs"`
	// LocalityFrom is where Region and Zone come from: the nodes' labels,
	// or the run's istio-locality label on its app pods.
	LocalityFrom  string            `json:"localityFrom"`
	ServerVersion string            `json:"serverVersion"`
	Nodes         []NodeFingerprint `json:"nodes"`
	// DaemonSets of kube-system name the CNI and node agents.
	SystemDaemonSets []string `json:"kubeSystemDaemonSets"`
}

// NodeFingerprint is what the kubelet reports of its node.
type NodeFingerprint struct {
	Name             string `json:"name"`
	OSImage          string `json:"osImage"`
	Kernel           string `json:"kernel"`
	ContainerRuntime string `json:"containerRuntime"`
	Kubelet          string `json:"kubelet"`
	Arch             string `json:"arch"`
}

// IstioFingerprint is the control plane: version, revision, the images the
// istiod pods run by digest, and the mesh config.
type IstioFingerprint struct {
	Version    string            `json:"version"`
	Revision   string            `json:"revision,omitempty"`
	Images     map[string]string `json:"images"` // image → digest (imageID)
	MeshConfig string            `json:"meshConfig"`
}

// WriteEnvironment fingerprints the clusters and the mesh into the
// artifacts. It reads only: versions, node info, istiod's pods and the mesh
// config map.
func (h *Harness) WriteEnvironment(ctx context.Context, cls []*clusters.Cluster, m *Istio) error {
	env := Environment{RunID: h.RunID, ImageSource: h.Config.Source, Brought: h.Config.BringYourOwn(), MeshMode: h.Config.Mesh, PodSecurity: h.Config.PodSecurity(),
		Topology: h.Topology.Name, IstiodReplicas: h.Topology.IstiodReplicas, IstiodByPrimary: map[string]IstioFingerprint{}}
	for _, cl := range cls {
		fp, err := fingerprintCluster(ctx, cl)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", cl.Name, err)
		}
		env.Clusters = append(env.Clusters, fp)
		if cl.Primary && m != nil {
			ifp, err := fingerprintIstio(ctx, cl, m)
			if err != nil {
				return fmt.Errorf("cluster %s: %w", cl.Name, err)
			}
			if len(env.IstiodByPrimary) == 0 {
				env.Istio = ifp
			}
			env.IstiodByPrimary[cl.Name] = ifp
		}
	}
	raw, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(h.Config.ArtifactsDir, EnvironmentFile), append(raw, '\n'), 0o644)
}

func fingerprintCluster(ctx context.Context, cl *clusters.Cluster) (ClusterFingerprint, error) {
	fp := ClusterFingerprint{Name: cl.Name, Primary: cl.Primary, ControlPlane: cl.ControlPlane, Region: cl.Region, Zone: cl.Zone, MeshNetwork: cl.MeshNetwork}
	if cl.PodSubnet.IsValid() {
		fp.PodCIDRs = cl.PodSubnet.String()
	}
	fp.LocalityFrom = "nodes"
	if cl.PodLocality {
		fp.LocalityFrom = "pod label " + clusters.LocalityLabel
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cl.Client.RESTConfig())
	if err != nil {
		return fp, err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return fp, fmt.Errorf("server version: %w", err)
	}
	fp.ServerVersion = v.GitVersion
	var nodes corev1.NodeList
	if err := cl.Client.Resources().List(ctx, &nodes); err != nil {
		return fp, fmt.Errorf("list nodes: %w", err)
	}
	for _, n := range nodes.Items {
		i := n.Status.NodeInfo
		fp.Nodes = append(fp.Nodes, NodeFingerprint{Name: n.Name, OSImage: i.OSImage, Kernel: i.KernelVersion,
			ContainerRuntime: i.ContainerRuntimeVersion, Kubelet: i.KubeletVersion, Arch: i.Architecture})
	}
	sort.Slice(fp.Nodes, func(a, b int) bool { return fp.Nodes[a].Name < fp.Nodes[b].Name })
	var dss appsv1.DaemonSetList
	if err := cl.Client.Resources("kube-system").List(ctx, &dss); err != nil {
		return fp, fmt.Errorf("list kube-system daemonsets: %w", err)
	}
	for _, ds := range dss.Items {
		fp.SystemDaemonSets = append(fp.SystemDaemonSets, ds.Name)
	}
	sort.Strings(fp.SystemDaemonSets)
	return fp, nil
}

func fingerprintIstio(ctx context.Context, primary *clusters.Cluster, m *Istio) (IstioFingerprint, error) {
	fp := IstioFingerprint{Version: m.Version, Revision: m.Revision, Images: map[string]string{}}
	pods, err := mesh.IstiodPods(ctx, primary, m.Revision)
	if err != nil {
		return fp, err
	}
	for _, p := range pods {
		for _, s := range p.Status.ContainerStatuses {
			fp.Images[s.Image] = s.ImageID
		}
	}
	cm := "istio"
	if m.Revision != "" {
		cm += "-" + m.Revision
	}
	var c corev1.ConfigMap
	if err := primary.Client.Resources(primary.IstioNamespace()).Get(ctx, cm, primary.IstioNamespace(), &c); err != nil {
		return fp, fmt.Errorf("mesh config %s: %w", cm, err)
	}
	fp.MeshConfig = c.Data["mesh"]
	return fp, nil
}
