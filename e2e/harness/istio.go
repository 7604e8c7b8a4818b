package harness

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"strings"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/dump"
	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/snapshot"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// Istio is one Istio release prepared for the clusters (its images, istioctl
// and installer) and, once installed, the control plane it runs: version,
// revision, the address remotes reach istiod at.
type Istio struct {
	Installer *mesh.Installer
	Istioctl  mesh.Istioctl
	Version   string
	Revision  string
	// TrustDomain is the mesh's: the one installed, or the one an
	// existing mesh's config names.
	TrustDomain string
	// Discovery is the address the remotes reach the (first) primary's
	// istiod at; Discoveries has it for every primary that serves remotes.
	Discovery   string
	Discoveries map[string]string
	// EchoImage is Istio's echo app of the same version, for proxyless
	// workloads (local source); "" on a mesh meshconform did not install,
	// whose version it need not build: the injection check then runs the
	// sample app (SidecarImage) as a proxyless backend.
	EchoImage string
	// Sidecars: the data plane is Envoy (upstream source), not proxyless
	// gRPC; the injection check then uses SidecarImage, the sample app.
	Sidecars     bool
	SidecarImage string
	// PullSecret is what a pod pulling SidecarImage needs beside it (nil:
	// nothing).
	PullSecret *workloads.PullSecret
	// Before is, by cluster name, the snapshot taken before this mesh
	// was first installed there: what its uninstall is proven against
	// (mesh.Leftovers). Missing for a mesh installed some other way.
	Before map[string]snapshot.Snapshot
}

// PrepareIstio builds (local source) the Istio images and istioctl of the
// run's version, and returns an installer set up for the topology; nothing
// is installed yet.
func (h *Harness) PrepareIstio(ctx context.Context) (*Istio, error) {
	h.Run.Figure("istio_version", h.Config.IstioVersion)
	return h.PrepareIstioVersion(ctx, h.Config.IstioVersion, h.Config.IstioRevision)
}

// PrepareIstioVersion is PrepareIstio for any version and revision (an
// upgrade's two), with the istioctl given for it (Config.IstioctlFor) or
// else built.
func (h *Harness) PrepareIstioVersion(ctx context.Context, version, revision string) (*Istio, error) {
	return h.prepareIstio(ctx, version, revision, h.Config.IstioctlFor(version))
}

// prepareIstio is PrepareIstioVersion with the istioctl to use ("": the
// one built for the version: with its images on the local source, alone
// from its Go module on the upstream source).
func (h *Harness) prepareIstio(ctx context.Context, version, revision, istioctl string) (*Istio, error) {
	m := &Istio{Version: version, Revision: revision, TrustDomain: mesh.DefaultTrustDomain}
	_, _, m.EchoImage = images.IstioImages(m.Version)
	local, isLocal := h.Source.(*images.Local)
	// On clusters a user brings, with a registry of theirs, the local
	// source's Istio images are there (the preflight found them): nothing
	// is pushed to meshconform's own registry, which need not exist.
	fromUser := isLocal && h.userRegistry != nil
	if isLocal && !fromUser {
		rel, err := images.LookupIstioRelease(m.Version)
		if err != nil {
			return nil, err
		}
		// Usually started by the prebuild already: this waits for it.
		err = h.Run.Time("istio "+m.Version+" images and istioctl", func() error {
			built, err := local.Istio(ctx, rel)
			if istioctl == "" {
				istioctl = built
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	if istioctl == "" {
		rel, err := images.LookupIstioRelease(m.Version)
		if err != nil {
			return nil, fmt.Errorf("no istioctl for Istio %s (%w): set MESHCONFORM_ISTIOCTLS=%s=PATH", m.Version, err, m.Version)
		}
		// The upstream source's images are Istio's own, and those in a
		// user's registry were pushed there; istioctl, which only renders
		// and applies, is the release's source built here.
		err = h.Run.Time("istioctl "+m.Version+" (built from its Go module)", func() error {
			istioctl, err = images.BuildIstioctl(ctx, h.Config.CacheDir, h.buildLog, rel)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	m.Istioctl = h.istioctl(istioctl)
	if h.Config.Source == images.SourceUpstream {
		m.Sidecars = true
		var err error
		if m.SidecarImage, err = h.App(ctx, "meshapp"); err != nil {
			return nil, err
		}
		m.PullSecret = h.PullSecret()
	}
	values, exposure := installValues(h.Config.Source, h.Topology, m.Version, m.Revision)
	m.Installer = &mesh.Installer{
		Istioctl:     m.Istioctl,
		ManifestsDir: filepath.Join(h.Config.ArtifactsDir, "istio", "manifests"),
		Values:       values,
		Exposure:     exposure,
		Run:          h.Run,
	}
	if fromUser {
		if err := h.fromUserRegistry(ctx, m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// fromUserRegistry points m's install at the local source's Istio images
// in the user's registry, with its credentials in Istio's namespace; the
// injection check runs the sample app from there too (Istio's echo app
// is not pushed).
func (h *Harness) fromUserRegistry(ctx context.Context, m *Istio) error {
	rel, err := images.LookupIstioRelease(m.Version)
	if err != nil {
		return err
	}
	in := m.Installer
	in.Values.Hub, in.Values.Tag = h.userRegistry.IstioHubTag(rel)
	h.Run.Figure("istio_images_"+m.Version, in.Values.Hub+"/{pilot,proxyv2}:"+in.Values.Tag)
	if ps := h.PullSecret(); ps != nil {
		in.Values.ImagePullSecret, in.PullSecret = workloads.PullSecretName, ps
	}
	m.EchoImage = ""
	if m.SidecarImage, err = h.App(ctx, "meshapp"); err != nil {
		return err
	}
	m.PullSecret = h.PullSecret()
	return nil
}

// installValues are the install's values and istiod's exposure for an
// Istio version and revision from an image source: Istio's own hub and the
// version's tag on both (the local source's registry mirrors docker.io),
// the guide's default profile and east-west gateway for the upstream
// source's Envoy data plane, the minimal profile and a LoadBalancer for
// istiod where the data plane is proxyless gRPC.
func installValues(source string, topo *topology.Topology, version, revision string) (mesh.Values, mesh.Exposure) {
	profile, exposure := "minimal", mesh.ExposeLoadBalancer
	if source == images.SourceUpstream {
		profile, exposure = "default", mesh.ExposeEastWest
	}
	return mesh.Values{
		Hub: "docker.io/istio", Tag: version, Profile: profile,
		MeshID: "mesh1", Network: topo.Primary().MeshNetwork, Revision: revision,
		Replicas: topo.IstiodReplicas,
	}, exposure
}

// istioctl is the istioctl binary at path, its cache and HOME in the
// run's temporary directory.
func (h *Harness) istioctl(path string) mesh.Istioctl {
	return mesh.Istioctl{Path: path, KubeCache: filepath.Join(h.tmp, "kube-cache")}
}

// Install runs the install of the topology (primary-remote, multi-primary)
// on the clusters cls, each by its role.
//
// Each cluster's inventory (a snapshot) is taken first, read-only, unless
// this mesh has one of it already (a second Install must not take the
// first one's objects for the cluster's own).
func (m *Istio) Install(ctx context.Context, cls ...*clusters.Cluster) error {
	var fresh []*clusters.Cluster
	for _, c := range cls {
		if _, ok := m.Before[c.Name]; !ok {
			fresh = append(fresh, c)
		}
	}
	before, err := m.Installer.Inventories(ctx, fresh...)
	if err != nil {
		return err
	}
	if m.Before == nil {
		m.Before = map[string]snapshot.Snapshot{}
	}
	maps.Copy(m.Before, before)
	m.Discoveries, err = m.Installer.Install(ctx, cls...)
	for _, c := range cls {
		if a, ok := m.Discoveries[c.Name]; ok && c.Primary {
			m.Discovery = a
			break
		}
	}
	return err
}

// DumpState writes, for a failed run, each cluster's pods, events and logs
// and, when a mesh is installed, its control plane's view, to the artifacts.
func (h *Harness) DumpState(ctx context.Context, cls []*clusters.Cluster, m *Istio, primary *clusters.Cluster) {
	dir := filepath.Join(h.Config.ArtifactsDir, "dump")
	for _, cl := range cls {
		if err := dump.Cluster(ctx, filepath.Join(dir, cl.Name), cl.Client, h.byo.dumpNamespaces(ctx, cl)...); err != nil {
			fmt.Fprintf(h.out, "   dump %s (partial): %v\n", cl.Name, err)
		}
	}
	if m != nil && primary != nil {
		if err := mesh.DumpMesh(ctx, filepath.Join(dir, "mesh"), m.Istioctl, m.Revision, primary, h.byo == nil); err != nil {
			fmt.Fprintf(h.out, "   dump mesh (partial): %v\n", err)
		}
	}
}

// ProxyStatus is `istioctl proxy-status` against the primary, with one
// column per xDS type whatever the version.
// Without an istioctl (a mesh meshconform did not install, and no
// MESHCONFORM_ISTIOCTL) it is read from istiod's debug/syncz, as istioctl
// itself reads it.
func (m *Istio) ProxyStatus(ctx context.Context, primary *clusters.Cluster) ([]checks.ProxyStatus, error) {
	if m.Istioctl.Path == "" {
		return mesh.ProxyStatusFromIstiod(ctx, primary, m.Revision)
	}
	perType := !strings.HasPrefix(m.Version, "1.26.")
	rows, _, err := m.Istioctl.ProxyStatus(ctx, primary, m.Revision, perType)
	return rows, err
}

// ExistingMesh describes the mesh already installed on the brought clusters
// cls (MESHCONFORM_MESH=existing): its revision and version (Istio.Version)
// are read from the primary's istiod, where the remote reaches it from its
// exposure Service, and each cluster's Istio cluster ID and the trust
// domain from what the mesh tells its proxies (mesh.ReadInstalled): the
// topology's names need not be the mesh's IDs. Nothing is installed and
// nothing of Istio is built, so a mesh of any version can be judged:
// proxy-status is read from istiod (Istio.ProxyStatus) unless
// MESHCONFORM_ISTIOCTL names an istioctl, and the injection check runs the
// sample app. The run's settings stay as given (Config.IstioVersion is what
// was asked, Istio.Version what was found).
func (h *Harness) ExistingMesh(ctx context.Context, primary *clusters.Cluster, cls []*clusters.Cluster) (*Istio, error) {
	revision, version, err := mesh.FindIstiod(ctx, primary, h.Config.IstioRevision)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", primary.Name, err)
	}
	trust, err := InstalledIDs(ctx, cls, revision, h.out)
	if err != nil {
		return nil, err
	}
	for _, cl := range cls {
		h.Run.Figure("istio_cluster_id_"+cl.Name, cl.ClusterID)
		h.Run.Figure("istio_namespace_"+cl.Name, cl.IstioNamespace())
	}
	h.Run.Figure("istio_trust_domain", trust)
	h.Run.Figure("istio_version", version)
	m := &Istio{Version: version, Revision: revision, TrustDomain: trust, Sidecars: h.Config.Source == images.SourceUpstream}
	// The istioctl given for the version found, else the one given for
	// the run (MESHCONFORM_ISTIOCTL names the user's, whatever version
	// the settings ask for).
	if p := cmp.Or(h.Config.IstioctlFor(version), h.Config.Istioctl); p != "" {
		m.Istioctl = h.istioctl(p)
	}
	if m.SidecarImage, err = h.App(ctx, "meshapp"); err != nil {
		return nil, err
	}
	m.PullSecret = h.PullSecret()
	m.Discovery, _, _ = mesh.ExposedAddress(ctx, primary, revision)
	return m, nil
}

// InstalledIDs sets each cluster's Istio cluster ID to the one the mesh
// installed there gives its proxies (mesh.ReadInstalled), and returns the
// mesh's trust domain. It refuses a cluster whose ID a clusters file
// states otherwise, clusters that disagree on the trust domain, and a
// model no mesh fits (two clusters of one ID). out hears of each ID that
// is not the cluster's name.
func InstalledIDs(ctx context.Context, cls []*clusters.Cluster, revision string, out io.Writer) (string, error) {
	trust := ""
	ids := make([]string, len(cls))
	for i, cl := range cls {
		in, err := mesh.ReadInstalled(ctx, cl, revision)
		if err != nil {
			return "", fmt.Errorf("cluster %s: %w", cl.Name, err)
		}
		switch {
		case in.TrustDomain == "":
			// A remote served by an external istiod has no mesh config.
		case trust != "" && in.TrustDomain != trust:
			return "", fmt.Errorf("cluster %s: trust domain %s, another cluster's is %s: one mesh has one trust domain", cl.Name, in.TrustDomain, trust)
		default:
			trust = in.TrustDomain
		}
		if cl.ClusterIDGiven && in.ClusterID != cl.ClusterID {
			return "", fmt.Errorf("cluster %s: the clusters file gives Istio cluster ID %s, but the mesh there injects its proxies as %s", cl.Name, cl.ClusterID, in.ClusterID)
		}
		ids[i] = in.ClusterID
	}
	if trust == "" {
		return "", fmt.Errorf("no cluster has a mesh config (config map istio in its istio namespace): the trust domain is not known")
	}
	// The clusters keep their IDs unless the mesh's fit a model.
	found := make([]*clusters.Cluster, len(cls))
	for i, cl := range cls {
		c := *cl
		c.ClusterID = ids[i]
		found[i] = &c
	}
	if err := (mesh.Model{Clusters: found}).Check(); err != nil {
		return "", err
	}
	for i, cl := range cls {
		if ids[i] != cl.ClusterID {
			fmt.Fprintf(out, "   cluster %s: Istio cluster ID %s (as the mesh injects its proxies)\n", cl.Name, ids[i])
		}
		cl.ClusterID = ids[i]
	}
	return trust, nil
}
