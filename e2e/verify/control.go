package verify

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/e2e/workloads"
	"github.com/meshconform/meshconform/fixtures/install"
)

// Namespaces the control-plane checks create in the remote (and delete).
const (
	rootCertNSPrefix = "verify-rootcert-"
	// InjectionNamespace holds the pods the injection check creates.
	InjectionNamespace = "verify-injection"
)

// RootCertWait is how long a new remote namespace may wait for istiod to
// write istio-ca-root-cert into it (it takes about a second).
const RootCertWait = 30 * time.Second

// RemoteSynced rejects a mesh in which an istiod does not watch a cluster
// whose endpoints it must know (a remote secret missing, or pointing where
// istiod cannot reach), or in which one replica of an HA istiod lags the
// others: every istiod replica of every primary lists, in its own
// debug/clusterz, every other cluster of the mesh through that cluster's
// remote secret, synced. No istiod pod is an error, not a pass.
func (m *Mesh) RemoteSynced(ctx context.Context) error {
	if len(m.Primaries()) == 0 || len(m.Clusters) < 2 {
		return fmt.Errorf("%d primaries among %d clusters: no multicluster mesh to judge", len(m.Primaries()), len(m.Clusters))
	}
	for _, p := range m.Primaries() {
		pods, err := mesh.IstiodPods(ctx, p.Client, m.Istio.Revision)
		if err != nil {
			return err
		}
		if len(pods) == 0 {
			return fmt.Errorf("no running istiod pod on %s (%s)", p.Name, mesh.IstiodSelector(m.Istio.Revision))
		}
		for _, pod := range pods {
			cs, err := mesh.RemoteClustersOf(ctx, p.Client, pod.Name)
			if err != nil {
				return err
			}
			for _, c := range m.Clusters {
				if c == p {
					continue
				}
				if err := judgeListed(p.Name, pod.Name, c.Name, cs); err != nil {
					return withDiagnosis(err, func() string { return m.describeRemoteSecrets(ctx, p) })
				}
			}
		}
	}
	return nil
}

// judgeListed passes when istiod pod (of primary) lists cluster through
// its remote secret, synced.
func judgeListed(primary, pod, cluster string, cs []mesh.RemoteCluster) error {
	secret := mesh.Namespace + "/istio-remote-secret-" + cluster
	for _, c := range cs {
		if c.ID != cluster {
			continue
		}
		switch {
		case c.SecretName != secret:
			return fmt.Errorf("istiod %s on %s lists %s through %q, want the remote secret %s", pod, primary, cluster, c.SecretName, secret)
		case c.SyncStatus != "synced":
			return fmt.Errorf("istiod %s on %s lists cluster %s as %q, want synced", pod, primary, cluster, c.SyncStatus)
		}
		return nil
	}
	return fmt.Errorf("istiod %s on %s does not list cluster %s in debug/clusterz (lists %v)", pod, primary, cluster, cs)
}

// RootCertDistributed rejects a mesh whose istiod does not manage the
// remote (no topology.istio.io/controlPlaneClusters annotation on the
// remote's istio-system, or istiod without EXTERNAL_ISTIOD): a namespace
// created in the remote must get istio-ca-root-cert within RootCertWait.
// Without it, no injected pod can start in a new namespace of the remote.
func (m *Mesh) RootCertDistributed(ctx context.Context) error {
	ns := fmt.Sprintf("%s%d", rootCertNSPrefix, time.Now().UnixNano())
	if err := workloads.CreateNamespace(ctx, m.Remote.Client, ns, nil); err != nil {
		return err
	}
	defer func() {
		// Not waited for: namespaces go with the clusters, and the check
		// stays fast.
		_ = m.Remote.Client.Resources().Delete(context.WithoutCancel(ctx), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}()
	err := poll(ctx, RootCertWait, time.Second, func() error {
		var cm corev1.ConfigMap
		if err := m.Remote.Client.Resources(ns).Get(ctx, "istio-ca-root-cert", ns, &cm); err != nil {
			return err
		}
		if !strings.Contains(cm.Data["root-cert.pem"], "BEGIN CERTIFICATE") {
			return fmt.Errorf("istio-ca-root-cert has no certificate")
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("namespace %s created in %s got no istio-ca-root-cert within %s: istiod on %s does not manage %s (%v)", ns, m.Remote.Name, RootCertWait, m.Primary.Name, m.Remote.Name, err)
	}
	return withDiagnosis(err, func() string { return m.describeLeadership(ctx) })
}

// RemoteInjection rejects a remote whose pods do not join the mesh (the
// injection webhook unreachable, the agent unable to reach istiod — a wrong
// remotePilotAddress): a pod created in an injection-enabled namespace of
// the remote gets the istio-proxy container, becomes Ready, and shows in
// proxy-status on the primary with the remote's cluster and the mesh's
// version. The pod is deleted afterwards.
func (m *Mesh) RemoteInjection(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	err := m.remoteInjection(ctx, timeout)
	return time.Since(start), withDiagnosis(err, func() string { return m.describeDiscovery(ctx) })
}

func (m *Mesh) remoteInjection(ctx context.Context, timeout time.Duration) error {
	if err := m.ensureInjectionNamespace(ctx); err != nil {
		return err
	}
	pod, err := install.EchoPod(InjectionNamespace, m.Istio.EchoImage)
	if err != nil {
		return err
	}
	if m.Istio.Sidecars {
		pod = install.SidecarPod(InjectionNamespace, m.Istio.SidecarImage)
	}
	if err := m.Remote.Client.Resources().Create(ctx, pod); err != nil {
		return fmt.Errorf("create an injected pod in %s/%s: %w", m.Remote.Name, InjectionNamespace, err)
	}
	defer func() { _ = m.Remote.Client.Resources().Delete(context.WithoutCancel(ctx), pod) }()
	hasProxy := false
	for _, c := range pod.Spec.Containers {
		hasProxy = hasProxy || c.Name == "istio-proxy"
	}
	if !hasProxy {
		return fmt.Errorf("pod %s/%s in %s was not injected (no istio-proxy container)", InjectionNamespace, pod.Name, m.Remote.Name)
	}
	if err := poll(ctx, timeout, time.Second, func() error {
		var p corev1.Pod
		if err := m.Remote.Client.Resources(InjectionNamespace).Get(ctx, pod.Name, InjectionNamespace, &p); err != nil {
			return err
		}
		if !checks.PodReady(p) {
			return fmt.Errorf("not Ready (phase %s)", p.Status.Phase)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("injected pod %s in %s after %s: %w", pod.Name, m.Remote.Name, timeout, err)
	}
	return poll(ctx, timeout, 2*time.Second, func() error {
		rows, err := m.Istio.ProxyStatus(ctx, m.Primary)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.Pod == pod.Name && r.Namespace == InjectionNamespace {
				if r.Cluster != m.Remote.Name || r.Version != m.Istio.Version {
					return fmt.Errorf("pod %s is in proxy-status with cluster %q and version %q, want %s and %s", pod.Name, r.Cluster, r.Version, m.Remote.Name, m.Istio.Version)
				}
				return nil
			}
		}
		return fmt.Errorf("pod %s (%s) is Ready but not in proxy-status (%d rows)", pod.Name, m.Remote.Name, len(rows))
	})
}

func (m *Mesh) ensureInjectionNamespace(ctx context.Context) error {
	labels := map[string]string{"istio-injection": "enabled"}
	if m.Istio.Revision != "" {
		labels = map[string]string{"istio.io/rev": m.Istio.Revision}
	}
	err := workloads.CreateNamespace(ctx, m.Remote.Client, InjectionNamespace, labels)
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// AppProxies maps every sample-app pod of every cluster to its cluster.
func (m *Mesh) AppProxies(ctx context.Context) (map[string]string, error) {
	want := map[string]string{}
	for _, cl := range m.Clusters {
		var pods corev1.PodList
		if err := cl.Client.Resources(AppNamespace).List(ctx, &pods, resources.WithLabelSelector("app in (frontend,backend)")); err != nil {
			return nil, fmt.Errorf("list app pods in %s: %w", cl.Name, err)
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				want[p.Name] = cl.Name
			}
		}
	}
	return want, nil
}

// AllSynced rejects a mesh in which a proxy is unknown to istiod, listed
// in the wrong cluster, connected to another cluster's control plane, or
// behind on configuration: every pod of want (pod → cluster) is in
// proxy-status on its cluster's control plane (the primary serving it, or
// its own in a multi-primary mesh) with its cluster and every type it
// subscribes to SYNCED. An empty want is an error.
func (m *Mesh) AllSynced(ctx context.Context, want map[string]string) error {
	_, err := m.ProxyRows(ctx, want)
	return err
}

// ProxyRows is AllSynced that also returns the rows it judged, by primary.
func (m *Mesh) ProxyRows(ctx context.Context, want map[string]string) (map[string][]mesh.ProxyStatus, error) {
	byPrimary, err := byControlPlane(want, m.Clusters)
	if err != nil {
		return nil, err
	}
	rows := map[string][]mesh.ProxyStatus{}
	for _, p := range m.Primaries() {
		sub, ok := byPrimary[p.Name]
		if !ok {
			continue
		}
		r, err := m.Istio.ProxyStatus(ctx, p)
		if err != nil {
			return rows, err
		}
		rows[p.Name] = r
		if err := mesh.CheckSynced(r, sub); err != nil {
			return rows, fmt.Errorf("proxy-status on %s: %w", p.Name, err)
		}
	}
	return rows, nil
}

// NodeLocality rejects a cluster whose nodes do not carry its locality
// (region and zone labels), from which istiod derives every endpoint's
// locality: each node of each cluster is labelled with its cluster's
// region and zone from the topology.
func NodeLocality(ctx context.Context, cls []*clusters.Cluster) error {
	for _, cl := range cls {
		var nodes corev1.NodeList
		if err := cl.Client.Resources().List(ctx, &nodes); err != nil {
			return fmt.Errorf("list nodes of %s: %w", cl.Name, err)
		}
		if len(nodes.Items) == 0 {
			return fmt.Errorf("cluster %s has no nodes", cl.Name)
		}
		for _, n := range nodes.Items {
			if r, z := n.Labels[topology.RegionLabel], n.Labels[topology.ZoneLabel]; r != cl.Region || z != cl.Zone {
				return fmt.Errorf("node %s of %s is labelled %s/%s, want %s/%s", n.Name, cl.Name, r, z, cl.Region, cl.Zone)
			}
		}
	}
	return nil
}

// SystemPodsHealthy rejects a platform whose system pods fail while their
// phase says Running: every pod of the namespaces in each cluster is
// Ready with no container restarted (checks.PodsHealthy).
func SystemPodsHealthy(ctx context.Context, cls []*clusters.Cluster, namespaces ...string) error {
	for _, cl := range cls {
		for _, ns := range namespaces {
			var pods corev1.PodList
			if err := cl.Client.Resources(ns).List(ctx, &pods); err != nil {
				return fmt.Errorf("list pods of %s in %s: %w", ns, cl.Name, err)
			}
			if err := checks.PodsHealthy(ns+" in "+cl.Name, pods.Items); err != nil {
				return err
			}
		}
	}
	return nil
}

// Budgets for losing control-plane pods under traffic. Proxies keep their
// last configuration while their istiod goes, so no request may fail.
// Reconnecting is the agent's xDS retry (about a second) plus a push; a
// replica's proxies are SYNCED with another within ReplicaLossBudget, and
// a primary's with its istiod back within PrimaryReturnBudget, which
// includes the pod's start (istiod is Ready in about 15 s here).
var (
	ReplicaLossBudget   = checks.Budget{MaxTime: 60 * time.Second, MaxFailed: 0}
	PrimaryReturnBudget = checks.Budget{MaxTime: 2 * time.Minute, MaxFailed: 0}
)

// Resynced polls, for at most timeout, until every proxy of want is SYNCED
// on its control plane (AllSynced) and none is listed on the istiod pod
// gone (mesh.CheckOff; "" for none); it returns how long that took and the
// last error if it never held. It rejects a mesh whose proxies stay on a
// deleted replica, or do not come back to their istiod.
func (m *Mesh) Resynced(ctx context.Context, want map[string]string, gone string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	err := poll(ctx, timeout, time.Second, func() error {
		rows, err := m.ProxyRows(ctx, want)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := mesh.CheckOff(r, want, gone); err != nil {
				return err
			}
		}
		return nil
	})
	return time.Since(start), err
}

// byControlPlane groups want (pod → cluster) by the primary serving each
// pod's cluster. It refuses an empty want, a pod of a cluster not in the
// mesh, and a cluster whose control plane is no primary of the mesh: no
// proxy goes unjudged for want of an istiod to ask.
func byControlPlane(want map[string]string, cls []*clusters.Cluster) (map[string]map[string]string, error) {
	if len(want) == 0 {
		return nil, fmt.Errorf("no proxies to look for: nothing to judge")
	}
	primaries := map[string]bool{}
	for _, c := range cls {
		if c.Primary {
			primaries[c.Name] = true
		}
	}
	out := map[string]map[string]string{}
	for pod, cluster := range want {
		var cl *clusters.Cluster
		for _, c := range cls {
			if c.Name == cluster {
				cl = c
			}
		}
		switch {
		case cl == nil:
			return nil, fmt.Errorf("pod %s: no cluster %q in the mesh", pod, cluster)
		case !primaries[cl.ControlPlane]:
			return nil, fmt.Errorf("pod %s: cluster %s names control plane %q, which is no primary of the mesh", pod, cluster, cl.ControlPlane)
		}
		if out[cl.ControlPlane] == nil {
			out[cl.ControlPlane] = map[string]string{}
		}
		out[cl.ControlPlane][pod] = cluster
	}
	return out, nil
}

// ProxiesOf is the subset of want (pod → cluster) running in cls.
func ProxiesOf(want map[string]string, cls ...*clusters.Cluster) map[string]string {
	out := map[string]string{}
	for pod, cl := range want {
		for _, c := range cls {
			if c.Name == cl {
				out[pod] = cl
			}
		}
	}
	return out
}
