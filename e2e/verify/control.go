package verify

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/poll"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/e2e/traffic"
	"github.com/meshconform/meshconform/e2e/workloads"
	"github.com/meshconform/meshconform/fixtures/install"
)

// Namespaces the control-plane checks create in the remote (and delete).
const (
	rootCertNSPrefix = "verify-rootcert-"
	// InjectionNamespace holds the pods the injection check creates.
	InjectionNamespace = "verify-injection"
)

// DefaultRootCertWait is how long a new remote namespace may wait for
// istiod to write istio-ca-root-cert into it (it takes about a second).
const DefaultRootCertWait = 30 * time.Second

// IstiodsRunning rejects a mesh whose control plane is not what was
// installed: on every primary, exactly replicas running istiod pods of
// the revision, each Ready and at the installed version
// (checks.IstiodReplicas), polled for at most timeout while a rollout
// settles. No primary is an error, not a pass.
func (m *Mesh) IstiodsRunning(ctx context.Context, replicas int, timeout time.Duration) error {
	if len(m.Primaries()) == 0 {
		return fmt.Errorf("no primary cluster: no istiod to judge")
	}
	return poll.Until(ctx, timeout, 2*time.Second, func(ctx context.Context) error {
		for _, p := range m.Primaries() {
			pods, err := mesh.IstiodPods(ctx, p, m.Istio.Revision)
			if err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
			if err := checks.IstiodReplicas(p.Name, pods, mesh.ImageVersion, replicas, m.Istio.Version); err != nil {
				return err
			}
		}
		return nil
	})
}

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
		pods, err := mesh.IstiodPods(ctx, p, m.Istio.Revision)
		if err != nil {
			return err
		}
		if len(pods) == 0 {
			return fmt.Errorf("no running istiod pod on %s (%s)", p.Name, mesh.IstiodSelector(m.Istio.Revision))
		}
		var others []string
		for _, c := range m.Clusters {
			if c != p {
				others = append(others, c.ClusterID)
			}
		}
		for _, pod := range pods {
			cs, err := mesh.RemoteClustersOf(ctx, p, pod.Name)
			if err != nil {
				return err
			}
			if err := checks.Watched(p.Name, pod.Name, p.IstioNamespace(), others, cs); err != nil {
				return withDiagnosis(err, func() string { return m.describeRemoteSecrets(ctx, p) })
			}
		}
	}
	return nil
}

// RootCertDistributed rejects a mesh whose istiod does not manage the
// remote (no topology.istio.io/controlPlaneClusters annotation on the
// remote's istio-system, or istiod without EXTERNAL_ISTIOD): a namespace
// created in the remote must get istio-ca-root-cert within m.RootCertWait.
// Without it, no injected pod can start in a new namespace of the remote.
func (m *Mesh) RootCertDistributed(ctx context.Context) error {
	wait := m.RootCertWait
	if wait <= 0 {
		wait = DefaultRootCertWait
	}
	ns := fmt.Sprintf("%s%d", rootCertNSPrefix, time.Now().UnixNano())
	if err := workloads.CreateNamespace(ctx, m.Away.Client, m.RunLabels, ns, nil); err != nil {
		return err
	}
	defer func() {
		// Not waited for: namespaces go with the clusters, and the check
		// stays fast.
		_ = m.Away.Client.Resources().Delete(context.WithoutCancel(ctx), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}()
	err := poll.Until(ctx, wait, time.Second, func(ctx context.Context) error {
		var cm corev1.ConfigMap
		if err := m.Away.Client.Resources(ns).Get(ctx, "istio-ca-root-cert", ns, &cm); err != nil {
			return err
		}
		if !strings.Contains(cm.Data["root-cert.pem"], "BEGIN CERTIFICATE") {
			return fmt.Errorf("istio-ca-root-cert has no certificate")
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("namespace %s created in %s got no istio-ca-root-cert within %s: istiod on %s does not manage %s (%w)", ns, m.Away.Name, wait, m.Primary.Name, m.Away.Name, err)
	}
	return withDiagnosis(err, func() string { return m.describeLeadership(ctx) })
}

// RemoteInjection rejects a remote whose pods do not join the mesh (the
// injection webhook unreachable, the agent unable to reach istiod — a wrong
// remotePilotAddress, or an agent that connects but is never served): a
// pod created in an injection-enabled namespace of the remote gets the
// istio-proxy container, becomes Ready, and shows in proxy-status on the
// primary serving the remote with the remote's cluster, connected to one
// of that primary's running istiod pods of the mesh's revision, at the
// mesh's version, every type it subscribes to SYNCED (ProxiesOn, the
// judge of every proxy). Being Ready, or merely listed, proves neither
// that the agent got its configuration nor from which istiod; a STALE or
// NOT SENT proxy is polled until timeout, then fails. The pod is deleted
// afterwards.
func (m *Mesh) RemoteInjection(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	err := m.remoteInjection(ctx, timeout)
	return time.Since(start), withDiagnosis(err, func() string { return m.describeDiscovery(ctx) })
}

// injectionPod is the pod the injection checks create in m.Away's
// injection namespace (created if need be): Istio's echo app, or the
// sample app with the pull secret beside it.
func (m *Mesh) injectionPod(ctx context.Context) (*corev1.Pod, error) {
	if err := m.ensureInjectionNamespace(ctx); err != nil {
		return nil, err
	}
	var pod *corev1.Pod
	var err error
	if m.Istio.EchoImage != "" {
		pod, err = install.EchoPod(InjectionNamespace, m.Istio.EchoImage)
	} else {
		pod, err = install.AppPod(InjectionNamespace, m.Istio.SidecarImage)
	}
	if err != nil {
		return nil, err
	}
	if m.Istio.Sidecars {
		pod = install.SidecarPod(InjectionNamespace, m.Istio.SidecarImage)
	}
	// The pod runs the sample app (SidecarImage) unless it is Istio's echo
	// image, which the image source serves: only then the pull secret.
	if ps := m.Istio.PullSecret; ps != nil && (m.Istio.Sidecars || m.Istio.EchoImage == "") {
		if err := ps.Ensure(ctx, m.Away.Client, InjectionNamespace); err != nil {
			return nil, err
		}
		ps.AddTo(&pod.Spec)
	}
	return pod, nil
}

// InjectionRefused creates, while istiod is down, the injection check's
// pod in m.Away and expects the API server to refuse it because Istio's
// injection webhook cannot be called (checks.WebhookUnreachable); it
// returns that refusal, explained. A pod the API server takes (the
// webhook set to ignore failures, or another injector) is an error and
// is deleted: with istiod down, pods would start outside the mesh.
func (m *Mesh) InjectionRefused(ctx context.Context) (string, error) {
	pod, err := m.injectionPod(ctx)
	if err != nil {
		return "", err
	}
	err = m.Away.Client.Resources().Create(ctx, pod)
	if err == nil {
		_ = m.Away.Client.Resources().Delete(context.WithoutCancel(ctx), pod)
		return "", fmt.Errorf("pod %s/%s was created in %s with istiod down: the injection webhook did not refuse it (%s), so pods would start outside the mesh", InjectionNamespace, pod.Name, m.Away.Name, injectedOrNot(*pod))
	}
	why, ok := checks.WebhookUnreachable(err)
	if !ok {
		return "", fmt.Errorf("creating a pod in %s/%s with istiod down failed, but not at Istio's injection webhook: %w", m.Away.Name, InjectionNamespace, err)
	}
	return fmt.Sprintf("a new pod in %s cannot be created: %s", m.Away.Name, why), nil
}

// injectedOrNot says whether a pod the API server took was injected.
func injectedOrNot(pod corev1.Pod) string {
	if err := checks.Injected(pod); err != nil {
		return err.Error()
	}
	return "injected by something that is not istiod"
}

// Listed returns, sorted, those proxies of pods (pod → cluster) that the
// proxy-status of the primary serving them still lists: empty once every
// one of them has lost its connection to istiod (the pods running on).
func (m *Mesh) Listed(ctx context.Context, pods map[string]string) ([]string, error) {
	byPrimary, err := byControlPlane(pods, m.Clusters)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range m.Primaries() {
		sub, ok := byPrimary[p.Name]
		if !ok {
			continue
		}
		rows, err := m.Istio.ProxyStatus(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("proxy-status on %s: %w", p.Name, err)
		}
		for _, r := range rows {
			if _, ok := sub[r.Pod]; ok {
				out = append(out, r.Pod)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func (m *Mesh) remoteInjection(ctx context.Context, timeout time.Duration) error {
	pod, err := m.injectionPod(ctx)
	if err != nil {
		return err
	}
	if err := m.Away.Client.Resources().Create(ctx, pod); err != nil {
		return fmt.Errorf("create an injected pod in %s/%s: %w", m.Away.Name, InjectionNamespace, err)
	}
	defer func() { _ = m.Away.Client.Resources().Delete(context.WithoutCancel(ctx), pod) }()
	// The pod as created is the webhook's answer.
	if err := checks.Injected(*pod); err != nil {
		return fmt.Errorf("in %s: %w", m.Away.Name, err)
	}
	if err := poll.Until(ctx, timeout, time.Second, func(ctx context.Context) error {
		var p corev1.Pod
		if err := m.Away.Client.Resources(InjectionNamespace).Get(ctx, pod.Name, InjectionNamespace, &p); err != nil {
			return err
		}
		return checks.NotReady(p)
	}); err != nil {
		return fmt.Errorf("wait for injected pod %s in %s to be Ready: %w", pod.Name, m.Away.Name, err)
	}
	// The same judge as every other proxy's: on the primary serving the
	// remote, with the remote's cluster, on one of that primary's running
	// istiod pods of the revision, at the mesh's version, SYNCED.
	want := map[string]ProxyOn{pod.Name: {Cluster: m.Away.Name, Istio: m.Istio, Version: m.Istio.Version}}
	if err := poll.Until(ctx, timeout, 2*time.Second, func(ctx context.Context) error {
		_, err := m.ProxiesOn(ctx, want)
		return err
	}); err != nil {
		return fmt.Errorf("wait for injected pod %s in %s to be SYNCED: %w", pod.Name, m.Away.Name, err)
	}
	return nil
}

// RemoveInjectionNamespace deletes the namespace RemoteInjection creates
// in m.Away and waits until it is gone: the check's only object, which
// must not outlive the run (the uninstall spec proves nothing the run
// made remains).
func (m *Mesh) RemoveInjectionNamespace(ctx context.Context) error {
	return workloads.DeleteNamespace(ctx, m.Away.Client, InjectionNamespace)
}

func (m *Mesh) ensureInjectionNamespace(ctx context.Context) error {
	labels := map[string]string{"istio-injection": "enabled"}
	if m.Istio.Revision != "" {
		labels = map[string]string{"istio.io/rev": m.Istio.Revision}
	}
	err := workloads.CreateNamespace(ctx, m.Away.Client, m.RunLabels, InjectionNamespace, labels)
	if err == nil || !apierrors.IsAlreadyExists(err) {
		return err
	}
	// Made by an earlier check of this run (an upgrade checks injection
	// at each step); anyone else's is not the run's to put pods and a
	// pull secret into.
	var ns corev1.Namespace
	if err := m.Away.Client.Resources().Get(ctx, InjectionNamespace, "", &ns); err != nil {
		return fmt.Errorf("namespace %s on %s: %w", InjectionNamespace, m.Away.Name, err)
	}
	if id, mine := m.RunLabels[workloads.RunLabel]; mine && ns.Labels[workloads.RunLabel] != id {
		return fmt.Errorf("namespace %s exists on %s and is not this run's (label %s=%q, want %q): remove it or let its owner finish", InjectionNamespace, m.Away.Name, workloads.RunLabel, ns.Labels[workloads.RunLabel], id)
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
// in the wrong cluster, connected to the wrong control plane (another
// primary's istiod, another revision's, or a replica not running), at
// another version than the mesh's, or behind on configuration: every pod
// of want (pod → cluster) is in proxy-status on its cluster's control
// plane (the primary serving it, or its own in a multi-primary mesh),
// with its cluster, connected to a running istiod pod of that primary and
// of m.Istio's revision, reporting m.Istio.Version, every type it
// subscribes to SYNCED. An empty want is an error. It is for a mesh at
// rest on one revision; while proxies are meant to be on different
// revisions or versions (an upgrade before every workload restarted), say
// so with ProxiesOn.
func (m *Mesh) AllSynced(ctx context.Context, want map[string]string) error {
	_, err := m.ProxyRows(ctx, want)
	return err
}

// ProxyRows is AllSynced that also returns the rows it judged, by primary.
func (m *Mesh) ProxyRows(ctx context.Context, want map[string]string) (map[string][]checks.ProxyStatus, error) {
	on := map[string]ProxyOn{}
	for pod, cl := range want {
		on[pod] = ProxyOn{Cluster: cl, Istio: m.Istio, Version: m.Istio.Version}
	}
	return m.ProxiesOn(ctx, on)
}

// ProxyOn is where one proxy should be: the cluster it runs in, the
// control plane (revision) that should serve it, and the Istio version its
// proxy should run. The version is the proxy's, not its istiod's: in an
// in-place upgrade the new istiod serves proxies still at the old version
// until their pods restart; in a canary upgrade a proxy is on the old
// revision, at the old version, until its pod restarts onto the new one.
type ProxyOn struct {
	Cluster string
	// Istio is the control plane that should serve the proxy: its
	// revision selects the istiod pods, and its istioctl asks them.
	Istio   *harness.Istio
	Version string
}

// ProxiesOn judges each proxy of want (pod → where it should be) with
// checks.Synced on the proxy-status of the primary serving its cluster
// (byControlPlane): listed with its cluster, connected to a running istiod
// pod of that primary and of its revision, at its version, SYNCED. Each
// revision named is asked once per primary; the rows returned are, by
// primary, those of every revision asked. A proxy on a revision not asked
// shows as missing. An empty want is an error.
func (m *Mesh) ProxiesOn(ctx context.Context, want map[string]ProxyOn) (map[string][]checks.ProxyStatus, error) {
	where := map[string]string{}
	for pod, w := range want {
		if w.Istio == nil {
			return nil, fmt.Errorf("pod %s (%s): no control plane named to serve it", pod, w.Cluster)
		}
		where[pod] = w.Cluster
	}
	byPrimary, err := byControlPlane(where, m.Clusters)
	if err != nil {
		return nil, err
	}
	rows := map[string][]checks.ProxyStatus{}
	for _, p := range m.Primaries() {
		sub, ok := byPrimary[p.Name]
		if !ok {
			continue
		}
		expect, err := m.expectOn(ctx, p, sub, want, rows)
		if err != nil {
			return rows, err
		}
		if err := checks.Synced(rows[p.Name], expect); err != nil {
			return rows, withDiagnosis(fmt.Errorf("proxy-status on %s: %w", p.Name, err), func() string { return describeIstiods(expect) })
		}
	}
	return rows, nil
}

// expectOn asks primary p's istiods of every revision its proxies (sub,
// pod → cluster) should be on for their proxy-status, appended to
// rows[p.Name], and returns what each proxy should show there.
func (m *Mesh) expectOn(ctx context.Context, p *clusters.Cluster, sub map[string]string, want map[string]ProxyOn, rows map[string][]checks.ProxyStatus) (map[string]checks.Expect, error) {
	// Two meshes of one revision (in place: the old and the new version)
	// are one control plane; the first pod's, in name order, asks it.
	pods := make([]string, 0, len(sub))
	for pod := range sub {
		pods = append(pods, pod)
	}
	sort.Strings(pods)
	revs := map[string]*harness.Istio{}
	for _, pod := range pods {
		cp := want[pod].Istio
		if _, ok := revs[cp.Revision]; !ok {
			revs[cp.Revision] = cp
		}
	}
	names := make([]string, 0, len(revs))
	for rev := range revs {
		names = append(names, rev)
	}
	sort.Strings(names)
	expect := map[string]checks.Expect{}
	for _, rev := range names {
		r, err := revs[rev].ProxyStatus(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("proxy-status on %s (revision %q): %w", p.Name, rev, err)
		}
		rows[p.Name] = append(rows[p.Name], r...)
		// Listed after the rows were taken: every istiod a row names was
		// running then, so a replica that started in between cannot fail
		// a correct mesh; one deleted in between fails it once (polled).
		running, err := mesh.IstiodPods(ctx, p, rev)
		if err != nil {
			return nil, fmt.Errorf("istiod pods of %s (revision %q): %w", p.Name, rev, err)
		}
		var istiods []string
		for _, ip := range running {
			istiods = append(istiods, ip.Name)
		}
		if len(istiods) == 0 {
			return nil, fmt.Errorf("no running istiod pod on %s (%s): no control plane to serve its proxies", p.Name, mesh.IstiodSelector(rev))
		}
		expectRevision(expect, m.ByClusterID(sub), want, rev, istiods)
	}
	return expect, nil
}

// expectRevision adds to expect what proxy-status should show of each pod
// of sub (pod → Istio cluster ID) that should be on revision rev, whose running
// istiod pods on the primary asked are istiods.
func expectRevision(expect map[string]checks.Expect, sub map[string]string, want map[string]ProxyOn, rev string, istiods []string) {
	for pod, cl := range sub {
		if w := want[pod]; w.Istio.Revision == rev {
			expect[pod] = checks.Expect{Cluster: cl, Istiods: istiods, Version: w.Version}
		}
	}
}

// describeIstiods names the istiod pods each revision's proxies should be
// on, for a failed ProxiesOn.
func describeIstiods(expect map[string]checks.Expect) string {
	seen := map[string]bool{}
	var out []string
	for _, e := range expect {
		k := fmt.Sprint(e.Istiods)
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return "running istiod pods asked: " + strings.Join(out, ", ")
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
	ReplicaLossBudget   = traffic.Budget{MaxTime: 60 * time.Second, MaxFailed: 0}
	PrimaryReturnBudget = traffic.Budget{MaxTime: 2 * time.Minute, MaxFailed: 0}
)

// Resynced polls, for at most timeout, until every proxy of want is SYNCED
// on its control plane (AllSynced) and none is listed on the istiod pod
// gone (checks.OffReplica; "" for none); it returns how long that took and the
// last error if it never held. It rejects a mesh whose proxies stay on a
// deleted replica, or do not come back to their istiod.
func (m *Mesh) Resynced(ctx context.Context, want map[string]string, gone string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	err := poll.Until(ctx, timeout, time.Second, func(ctx context.Context) error {
		rows, err := m.ProxyRows(ctx, want)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := checks.OffReplica(r, m.ByClusterID(want), gone); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("wait for every proxy SYNCED on its control plane: %w", err)
	}
	return time.Since(start), err
}

// ByClusterID maps want (pod → cluster, by the topology's name) to the
// clusters' Istio cluster IDs: what proxy-status lists a proxy under. A
// cluster unknown to the mesh keeps its name, and fails the judge.
func (m *Mesh) ByClusterID(want map[string]string) map[string]string {
	ids := map[string]string{}
	for _, c := range m.Clusters {
		ids[c.Name] = c.ClusterID
	}
	out := make(map[string]string, len(want))
	for pod, name := range want {
		if id, ok := ids[name]; ok {
			out[pod] = id
		} else {
			out[pod] = name
		}
	}
	return out
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
