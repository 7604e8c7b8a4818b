package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// Placement lists the backend pods of every cluster from its API server
// (terminating ones too) and adds them to what was seen before, so answers
// from a pod deleted since (failover) are still attributed.
func (m *Mesh) Placement(ctx context.Context) (*checks.Placement, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.placement == nil {
		m.placement = m.newPlacement()
	}
	pl := m.placement
	for _, cl := range m.Clusters {
		var pods corev1.PodList
		if err := cl.Client.Resources(AppNamespace).List(ctx, &pods, resources.WithLabelSelector("app=backend")); err != nil {
			return nil, fmt.Errorf("list backend pods in %s: %w", cl.Name, err)
		}
		for _, p := range pods.Items {
			if ip, err := netip.ParseAddr(p.Status.PodIP); err == nil {
				pl.Add(checks.Pod{Cluster: cl.Name, Name: p.Name, IP: ip})
			}
		}
	}
	return pl, nil
}

func (m *Mesh) newPlacement() *checks.Placement {
	cidrs := map[string]netip.Prefix{}
	for _, cl := range m.Clusters {
		cidrs[cl.Name] = cl.PodSubnet
	}
	return checks.NewPlacement(cidrs)
}

// Measure asks from's frontend for n calls and judges them with c, and
// always with ServedFrom: every answer's cluster is proven by the address
// the call reached and the API servers' pod lists.
func (m *Mesh) Measure(ctx context.Context, from string, n int, c checks.Checker, headers ...string) (checks.Calls, error) {
	base, ok := m.Frontends[from]
	if !ok {
		return checks.Calls{}, fmt.Errorf("no frontend in %s", from)
	}
	calls, err := checks.Call(ctx, base, n, headers...)
	if err != nil {
		return calls, err
	}
	pl, err := m.Placement(ctx)
	if err != nil {
		return calls, err
	}
	if err := checks.And(checks.ServedFrom(pl), c)(calls); err != nil {
		return calls, fmt.Errorf("%d calls from %s's frontend%s: %w", n, from, headerNote(headers), err)
	}
	return calls, nil
}

// Settled polls small batches until c passes (configuration reaching the
// proxies), then judges one measured batch of n calls. Only the measured
// batch is the verdict: retrying until a statistical check passes would
// let chance decide.
func (m *Mesh) Settled(ctx context.Context, from string, n int, c checks.Checker, headers ...string) (checks.Calls, error) {
	if err := poll(ctx, m.settle(), 2*time.Second, func() error {
		_, err := m.Measure(ctx, from, SettleCalls, c, headers...)
		return err
	}); err != nil {
		return checks.Calls{}, fmt.Errorf("not settled after %s: %w", m.settle(), err)
	}
	return m.Measure(ctx, from, n, c, headers...)
}

func headerNote(h []string) string {
	if len(h) == 0 {
		return ""
	}
	return " with header " + strings.Join(h, ", ")
}

// CrossCluster rejects a mesh whose calls from one cluster do not all reach
// the backends in the others (their endpoints unknown to istiod, the flat
// network broken): every one of CrossClusterCalls calls from from's
// frontend is answered, in the clusters to, and each of them answers some
// (round robin over every endpoint cannot miss one: see ReachCalls).
func (m *Mesh) CrossCluster(ctx context.Context, from string, to ...string) error {
	if len(to) == 0 {
		return fmt.Errorf("cross-cluster calls from %s: no cluster to call", from)
	}
	_, err := m.Settled(ctx, from, CrossClusterCalls, checks.And(checks.NoFailures(), checks.OnlyClusters(to...), checks.ReachedClusters(to...)))
	return withDiagnosis(err, func() string { return m.describeControlPlane(ctx) })
}

// ReachesAll rejects a mesh that hides one cluster's endpoints from a
// caller: ReachCalls calls from from's frontend, none failed, answered by
// every cluster. A correct mesh (round robin over every endpoint) cannot
// miss one.
func (m *Mesh) ReachesAll(ctx context.Context, from string) error {
	if len(m.Clusters) < 2 {
		return fmt.Errorf("reaching every cluster needs two, the mesh has %d", len(m.Clusters))
	}
	var names []string
	for _, cl := range m.Clusters {
		names = append(names, cl.Name)
	}
	_, err := m.Settled(ctx, from, ReachCalls, checks.And(checks.NoFailures(), checks.ReachedClusters(names...)))
	return withDiagnosis(err, func() string { return m.describeControlPlane(ctx) + "; " + m.describeTrust(ctx) })
}

// HeaderRoutes rejects a mesh whose header matches or subsets are wrong
// (a match ignored, a subset selecting the other version's pods): for each
// version, HeaderCalls calls with header "version: <v>" are all answered
// by that version.
func (m *Mesh) HeaderRoutes(ctx context.Context, from string, versions ...string) error {
	if len(versions) == 0 {
		return fmt.Errorf("no version to route to: nothing to judge")
	}
	for _, v := range versions {
		if _, err := m.Settled(ctx, from, HeaderCalls, checks.And(checks.NoFailures(), checks.OnlyVersion(v)), "version:"+v); err != nil {
			return withDiagnosis(err, func() string { return m.describeRouting(ctx) })
		}
	}
	return nil
}

// Split rejects a mesh that ignores the route's weights (balancing over
// pods, or evenly over subsets, or with subsets swapped): SplitCalls calls
// without a header, none failed, split by version within the exact
// binomial band of the weights at SplitAlpha. It returns the counts.
func (m *Mesh) Split(ctx context.Context, from string, weights map[string]float64) (map[string]int, error) {
	calls, err := m.Settled(ctx, from, SplitCalls, checks.NoFailures())
	if err != nil {
		return nil, withDiagnosis(err, func() string { return m.describeRouting(ctx) })
	}
	counts := checks.Counts(calls.Results, checks.ByVersion)
	if err := checks.Split(weights, SplitAlpha)(calls); err != nil {
		return counts, withDiagnosis(fmt.Errorf("%d calls from %s's frontend: %w", SplitCalls, from, err), func() string { return m.describeRouting(ctx) })
	}
	return counts, nil
}

// TrafficRules is the traffic-rules verdict from one caller: HeaderRoutes
// for every version of the weights, then Split. It returns the split's
// counts by version.
func (m *Mesh) TrafficRules(ctx context.Context, from string, weights map[string]float64) (map[string]int, error) {
	versions := make([]string, 0, len(weights))
	for v := range weights {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	if err := m.HeaderRoutes(ctx, from, versions...); err != nil {
		return nil, err
	}
	return m.Split(ctx, from, weights)
}

// StaysLocal rejects a mesh without locality priorities, or one whose
// localities are wrong (another cluster's endpoints looking local): after
// settling, every one of LocalWindow consecutive calls from from's
// frontend is answered in from, as proven by ServedFrom.
func (m *Mesh) StaysLocal(ctx context.Context, from string) error {
	_, err := m.Settled(ctx, from, LocalWindow, checks.And(checks.NoFailures(), checks.OnlyClusters(from)))
	return withDiagnosis(err, func() string { return m.describeLocality(ctx) })
}

// ServedOnlyBy rejects a mesh whose failover rule does not choose the
// region it names (traffic spread over every other region, or sent to
// another one): after settling, every one of LocalWindow calls from from's
// frontend is answered in cluster to, as proven by ServedFrom. A mesh that
// ignores the rule and splits between two equal regions passes with
// probability 2·0.5^1000; a correct mesh sends no call elsewhere. It
// returns the window's calls by cluster.
func (m *Mesh) ServedOnlyBy(ctx context.Context, from, to string) (map[string]int, error) {
	calls, err := m.Settled(ctx, from, LocalWindow, checks.And(checks.NoFailures(), checks.OnlyClusters(to)))
	if err != nil {
		return nil, withDiagnosis(err, func() string { return m.describeLocality(ctx) })
	}
	return checks.Counts(calls.Results, checks.ByCluster), nil
}

// Transition calls from's frontend in small batches until a batch is
// answered entirely by cluster want, or timeout: a bounded loop that counts
// every call asked for, failed calls and calls the frontend could not make
// alike.
func (m *Mesh) Transition(ctx context.Context, from, want string, timeout time.Duration) checks.Transition {
	const batch = 5
	start := time.Now()
	var t checks.Transition
	for time.Since(start) < timeout && ctx.Err() == nil {
		calls, err := checks.Call(ctx, m.Frontends[from], batch)
		t.Asked += batch
		if err != nil {
			t.Failed += batch
		} else {
			// Calls the frontend did not answer for count as failed too.
			t.Failed += max(0, batch-len(calls.Results)) + failedCount(calls.Results)
			t.Last = checks.Counts(calls.Results, checks.ByCluster)
			pl, perr := m.Placement(ctx)
			if perr == nil && checks.And(checks.ServedFrom(pl), checks.NoFailures(), checks.OnlyClusters(want))(calls) == nil {
				t.Reached, t.Elapsed = true, time.Since(start)
				return t
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Elapsed = time.Since(start)
	return t
}

func failedCount(rs []checks.Result) int {
	n := 0
	for _, r := range rs {
		if r.Error != "" {
			n++
		}
	}
	return n
}

// MTLSStrict rejects a mesh that does not enforce STRICT mTLS between the
// clusters' workloads, or whose identities are not the workloads' own:
//   - in every cluster (each primary of a multi-primary mesh enforces its
//     own configuration), a plaintext call from outside the mesh to a
//     backend pod fails at the handshake while that address accepts TCP
//     and presents the backend's workload certificate
//     (PlaintextRefusedByMTLS);
//   - at that moment the same pod answers mesh calls from the primary's
//     frontend, so the refusal is mTLS and not a dead pod;
//   - every mesh call carries exactly the backend's and the frontend's
//     SPIFFE IDs, read from the pods' service accounts.
//
// It needs the outsider pod in every cluster.
func (m *Mesh) MTLSStrict(ctx context.Context) error {
	for _, cl := range m.Clusters {
		if err := m.mtlsStrict(ctx, cl); err != nil {
			return withDiagnosis(fmt.Errorf("in %s: %w", cl.Name, err), func() string { return m.describeRouting(ctx) + "; " + m.describeTrust(ctx) })
		}
	}
	return nil
}

func (m *Mesh) mtlsStrict(ctx context.Context, cl *clusters.Cluster) error {
	o, target, err := m.PlaintextToBackend(ctx, cl)
	if err != nil {
		return err
	}
	front, err := runningPod(ctx, m.Primary, AppNamespace, "app=frontend")
	if err != nil {
		return err
	}
	backendID := checks.SpiffeID(TrustDomain, AppNamespace, target.Spec.ServiceAccountName)
	frontendID := checks.SpiffeID(TrustDomain, AppNamespace, front.Spec.ServiceAccountName)
	if err := checks.PlaintextRefusedByMTLS(o, backendID); err != nil {
		return err
	}
	// The same pod answers mesh calls now. Round robin over 8 backends
	// reaches it in any 100 calls; three batches bound the loop.
	for i := 0; i < 3; i++ {
		calls, err := m.Measure(ctx, m.Primary.Name, CrossClusterCalls, checks.And(checks.NoFailures(), checks.PeerIdentities(backendID, frontendID)))
		if err != nil {
			return err
		}
		for _, r := range calls.Results {
			if r.Pod == target.Name {
				return nil
			}
		}
	}
	return fmt.Errorf("backend pod %s refused plaintext but answered none of %d mesh calls: cannot tell mTLS from a dead pod", target.Name, 3*CrossClusterCalls)
}

// PlaintextToBackend makes a plaintext call from the outsider pod of cl
// (outside the mesh) to a ready backend pod of cl, by pod IP, and returns
// how it went and the pod called.
func (m *Mesh) PlaintextToBackend(ctx context.Context, cl *clusters.Cluster) (checks.PlaintextOutcome, corev1.Pod, error) {
	var o checks.PlaintextOutcome
	target, err := runningPod(ctx, cl, AppNamespace, "app=backend")
	if err != nil {
		return o, target, err
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr(target.Status.PodIP), 7070).String()
	out, err := workloads.Exec(ctx, cl.Client, OutsideNamespace, "outsider", "app", "meshapp", "call", addr)
	if err != nil {
		return o, target, fmt.Errorf("plaintext call from outside the mesh: %w", err)
	}
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		return o, target, fmt.Errorf("plaintext call from outside the mesh: unreadable outcome %q: %w", out, err)
	}
	return o, target, nil
}

// runningPod is a Running, Ready pod of the selector in cl, not being
// deleted, chosen by name for repeatability.
func runningPod(ctx context.Context, cl *clusters.Cluster, ns, selector string) (corev1.Pod, error) {
	var pods corev1.PodList
	if err := cl.Client.Resources(ns).List(ctx, &pods, resources.WithLabelSelector(selector)); err != nil {
		return corev1.Pod{}, fmt.Errorf("list %s in %s/%s: %w", selector, cl.Name, ns, err)
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.PodIP != "" && checks.PodReady(p) {
			return p, nil
		}
	}
	return corev1.Pod{}, fmt.Errorf("no ready pod %s in %s/%s", selector, cl.Name, ns)
}
