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
	"github.com/meshconform/meshconform/e2e/frontend"
	"github.com/meshconform/meshconform/e2e/poll"
	"github.com/meshconform/meshconform/e2e/traffic"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// Placement lists the backend pods of every cluster from its API server
// (terminating ones too) and adds them to what was seen before, so answers
// from a pod deleted since (failover) are still attributed.
func (m *Mesh) Placement(ctx context.Context) (*checks.Placement, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pl := m.placementLocked()
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

// sharedPlacement is the placement Placement adds to, for a traffic load
// (checks.Placement is safe while Placement adds pods; a load places
// again, at each Snapshot, answers from pods listed after they came).
func (m *Mesh) sharedPlacement() *checks.Placement {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.placementLocked()
}

// placementLocked is the mesh's one placement, made from the clusters'
// pod CIDRs on first use; m.mu is held.
func (m *Mesh) placementLocked() *checks.Placement {
	if m.placement == nil {
		cidrs := map[string]netip.Prefix{}
		for _, cl := range m.Clusters {
			cidrs[cl.Name] = cl.PodSubnet
		}
		m.placement = checks.NewPlacement(cidrs)
	}
	return m.placement
}

// Measure asks from's frontend for n calls and judges them with c, and
// always with ServedFrom: every answer's cluster is proven by the address
// the call reached and the API servers' pod lists.
func (m *Mesh) Measure(ctx context.Context, from string, n int, c checks.Checker, headers ...string) (checks.Calls, error) {
	base, ok := m.Frontends[from]
	if !ok {
		return checks.Calls{}, fmt.Errorf("no frontend in %s", from)
	}
	calls, err := frontend.Call(ctx, base, n, headers...)
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
	if err := poll.Until(ctx, m.settle(), 2*time.Second, func(ctx context.Context) error {
		_, err := m.Measure(ctx, from, SettleCalls, c, headers...)
		return err
	}); err != nil {
		return checks.Calls{}, fmt.Errorf("not settled: %w", err)
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
// caller, or one in which a backend pod serves nothing (Ready and SYNCED
// but not listening, or skipped by the clients' load balancer, which fails
// no call): after settling, a window of calls from from's frontend, none
// failed, is answered by every cluster and by every Ready backend pod the
// API servers list, within the settle bound. The window is sized from the pods' count so that a
// correct mesh misses a pod with probability at most PodMiss
// (checks.CallsToReachEach), and is never under ReachCalls.
func (m *Mesh) ReachesAll(ctx context.Context, from string) error {
	if len(m.Clusters) < 2 {
		return fmt.Errorf("reaching every cluster needs two, the mesh has %d", len(m.Clusters))
	}
	names := clusters.Names(m.Clusters)
	reached := checks.And(checks.NoFailures(), checks.ReachedClusters(names...))
	diagnose := func() string { return m.describeControlPlane(ctx) + "; " + m.describeTrust(ctx) }
	if _, err := m.Settled(ctx, from, SettleCalls, reached); err != nil {
		return withDiagnosis(err, diagnose)
	}
	pods, err := m.backendPods(ctx, m.Clusters...)
	if err != nil {
		return err
	}
	n := max(ReachCalls, checks.CallsToReachEach(len(pods), PodMiss))
	judge := checks.And(reached, checks.ReachedPods(podNames(pods)...))
	// A window passes once every pod answers in it. A pod a caller's
	// client has just learned of may want a few seconds for its first
	// connection (seen once: a Ready, SYNCED pod of the other cluster
	// answered none of 171 calls in the first window of a correct mesh),
	// so windows are measured until one passes, within the settle bound; a
	// pod that never answers fails every window.
	err = poll.Until(ctx, m.settle(), 2*time.Second, func(ctx context.Context) error {
		_, err := m.Measure(ctx, from, n, judge)
		return err
	})
	return withDiagnosis(err, diagnose)
}

// ReachesAllEverywhere is ReachesAll from the caller of every cluster
// that runs one: a pod that never answers, or a cluster hidden from one
// cluster's callers, is found whichever caller it hides from.
func (m *Mesh) ReachesAllEverywhere(ctx context.Context) error {
	return m.fromEveryCaller(func(from string) error { return m.ReachesAll(ctx, from) })
}

// backendPods are the Ready backend pods of cls, not being deleted,
// sorted by cluster and name.
func (m *Mesh) backendPods(ctx context.Context, cls ...*clusters.Cluster) ([]clusterPod, error) {
	var out []clusterPod
	for _, cl := range cls {
		pods, err := readyPods(ctx, cl, AppNamespace, "app=backend")
		if err != nil {
			return nil, err
		}
		for _, p := range pods {
			out = append(out, clusterPod{cluster: cl, pod: p})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no ready backend pod in %v: nothing to judge", clusters.Names(cls))
	}
	return out, nil
}

// clusterPod is a pod and the cluster it runs in.
type clusterPod struct {
	cluster *clusters.Cluster
	pod     corev1.Pod
}

func podNames(ps []clusterPod) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.pod.Name
	}
	return out
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

// StaysLocalEverywhere is StaysLocal for the caller of every cluster
// that runs one: a mesh whose locality is right for the primary's callers
// and wrong for another cluster's (that frontend's locality overridden, or
// its cluster's endpoints mislabelled) is rejected too.
func (m *Mesh) StaysLocalEverywhere(ctx context.Context) error {
	return m.fromEveryCaller(func(from string) error { return m.StaysLocal(ctx, from) })
}

// fromEveryCaller runs check for the caller of every cluster that runs
// one, stopping at the first failure; no caller at all is a failure, not
// a pass.
func (m *Mesh) fromEveryCaller(check func(from string) error) error {
	callers := m.callers()
	if len(callers) == 0 {
		return fmt.Errorf("no frontend in any cluster: no caller to judge")
	}
	for _, cl := range callers {
		if err := check(cl.Name); err != nil {
			return err
		}
	}
	return nil
}

// callers are the clusters where a frontend runs, in the topology's order.
func (m *Mesh) callers() []*clusters.Cluster {
	return clusters.Filter(m.Clusters, func(c *clusters.Cluster) bool { _, ok := m.Frontends[c.Name]; return ok })
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

// Transition measures traffic from from's frontend moving to cluster want
// (a failover, a failback): a traffic.Load of one stream, transitionRate
// single-call requests per second, each answer placed by the pod CIDR its
// address is in, read with traffic.Record.TransitionTo. It runs until the
// new steady state is seen (consecutive requests all answered in want, by
// the network's proof and the backend's word) and AfterWindow requests
// after it are recorded, or until timeout passes without it being seen,
// then stops the load and reads the whole record. Every request started
// counts as asked, failed requests and those the frontend could not make
// alike, so requests lost just after the new steady state is first seen
// (the other frontend replica still on the old endpoints) count against
// the budget too; answers from elsewhere in that window are Strays.
//
// It judges nothing: traffic.Budget.Within rejects a transition never
// reached, slower than its budget or with more failed requests than it
// allows, and one measured over no request (no frontend in from, or the
// load not started).
func (m *Mesh) Transition(ctx context.Context, from, want string, timeout time.Duration) traffic.Transition {
	window := time.Duration(float64(AfterWindow) / transitionRate * float64(time.Second))
	bound := timeout + window + 30*time.Second
	cfg := traffic.Config{Rate: transitionRate, MaxDuration: bound, MaxRequests: int(transitionRate * bound.Seconds()), Placement: m.sharedPlacement()}
	load, err := traffic.Start(ctx, cfg, []traffic.Stream{{Name: from, From: from, Base: m.Frontends[from]}}, "transition to "+want)
	if err != nil {
		return traffic.Transition{NotStarted: err.Error()}
	}
	// The wait's error is not the verdict: the record is, whatever ended
	// the wait (seen with its window, never seen in time, ctx ended).
	_ = poll.Until(ctx, timeout+window, 250*time.Millisecond, func(ctx context.Context) error {
		// Backends started by the transition (a failback) are listed,
		// so that clusters without pod ranges place their answers.
		if m.placedByListing() {
			_, _ = m.Placement(ctx)
		}
		t := load.Snapshot().TransitionTo(from, want, AfterWindow)
		switch {
		case t.Reached && t.Window >= AfterWindow, !t.Reached && t.Elapsed >= timeout, !load.Running():
			return nil
		case t.Reached:
			return fmt.Errorf("%d of the %d requests after the new steady state recorded", t.Window, AfterWindow)
		}
		return fmt.Errorf("not reached yet (last answers by cluster %v)", t.Last)
	})
	rec := load.Stop()
	if m.placedByListing() {
		if _, err := m.Placement(ctx); err == nil {
			rec = load.Snapshot()
		}
	}
	return rec.TransitionTo(from, want, AfterWindow)
}

// placedByListing reports whether some cluster has no pod range, so that
// its answers are placed only by the pods its API server listed.
func (m *Mesh) placedByListing() bool {
	for _, cl := range m.Clusters {
		if !cl.PodSubnet.IsValid() {
			return true
		}
	}
	return false
}

// transitionRate is the requests per second a Transition sends: the run
// that shows the new steady state spans a quarter of a second, and the
// window after it AfterWindow/transitionRate = 5 s.
const transitionRate = 20

// AfterWindow is how many requests a Transition keeps recording once the
// new steady state is first seen, counted against its budget.
const AfterWindow = 100

// MTLSStrict rejects a mesh that does not enforce STRICT mTLS between the
// clusters' workloads, or whose identities are not the ones the fixtures
// declare:
//   - every Ready backend pod of every cluster (each primary of a
//     multi-primary mesh enforces its own configuration, and one pod
//     outside the mesh would answer plaintext) refuses a plaintext call
//     from outside the mesh at the handshake, while its address accepts
//     TCP and presents the backend's workload certificate
//     (PlaintextRefusedByMTLS);
//   - every cluster's frontend makes a window of mesh calls, none failed,
//     each carrying exactly the backend's and the frontend's SPIFFE IDs
//     as the fixtures declare their service accounts (m.Apps), and
//     answered by every one of those pods: so each refusal is mTLS, not a
//     dead pod, and every caller authenticates with every cluster. The
//     window is sized so that a correct mesh leaves a pod unanswered with
//     probability at most PodMiss per caller.
//
// It needs the outsider pod in every cluster.
func (m *Mesh) MTLSStrict(ctx context.Context) error {
	err := m.mtlsStrict(ctx)
	return withDiagnosis(err, func() string { return m.describeRouting(ctx) + "; " + m.describeTrust(ctx) })
}

func (m *Mesh) mtlsStrict(ctx context.Context) error {
	backendID, frontendID, err := m.identities()
	if err != nil {
		return err
	}
	pods, err := m.backendPods(ctx, m.Clusters...)
	if err != nil {
		return err
	}
	for _, p := range pods {
		o, err := m.plaintextTo(ctx, p.cluster, p.pod)
		if err != nil {
			return err
		}
		if err := checks.PlaintextRefusedByMTLS(o, backendID); err != nil {
			return fmt.Errorf("in %s: %w%s", p.cluster.Name, err, m.accountsAgainstIntent(ctx))
		}
	}
	callers := m.callers()
	if len(callers) == 0 {
		return fmt.Errorf("no frontend in any cluster: no mesh call to judge")
	}
	// Each caller must reach every pod: a caller whose handshakes with one
	// cluster fail (another root) loses those endpoints silently, since
	// gRPC keeps only the endpoints it can connect to.
	n := max(CrossClusterCalls, checks.CallsToReachEach(len(pods), PodMiss))
	judge := checks.And(checks.NoFailures(), checks.PeerIdentities(backendID, frontendID), checks.ReachedPods(podNames(pods)...))
	for _, cl := range callers {
		if _, err := m.Measure(ctx, cl.Name, n, judge); err != nil {
			return fmt.Errorf("%w%s", err, m.accountsAgainstIntent(ctx))
		}
	}
	return nil
}

// accountsAgainstIntent names the sample-app pods that run under another
// service account than their fixture declares: the cause of a wrong
// identity on the wire. "" when every pod runs as declared.
func (m *Mesh) accountsAgainstIntent(ctx context.Context) string {
	want := map[string]string{"backend": m.Apps.BackendAccount, "frontend": m.Apps.FrontendAccount}
	var off []string
	for _, cl := range m.Clusters {
		for app, sa := range want {
			pods, err := readyPods(ctx, cl, AppNamespace, "app="+app)
			if err != nil {
				continue
			}
			for _, p := range pods {
				if p.Spec.ServiceAccountName != sa {
					off = append(off, fmt.Sprintf("%s pod %s in %s runs as service account %q, its fixture declares %q", app, p.Name, cl.Name, p.Spec.ServiceAccountName, sa))
				}
			}
		}
	}
	if len(off) == 0 {
		return ""
	}
	sort.Strings(off)
	return "\n  cause: " + strings.Join(off, "; ")
}

// PlaintextAnswered rejects a mesh in which a backend pod cannot be
// called in plaintext from outside the mesh before STRICT is applied: the
// precondition that makes every later refusal STRICT's doing (and not a
// pod the outsider cannot reach at all).
func (m *Mesh) PlaintextAnswered(ctx context.Context) error {
	pods, err := m.backendPods(ctx, m.Clusters...)
	if err != nil {
		return err
	}
	for _, p := range pods {
		o, err := m.plaintextTo(ctx, p.cluster, p.pod)
		if err != nil {
			return err
		}
		if !o.Answered {
			return fmt.Errorf("before STRICT, a plaintext call to %s (pod %s) in %s was not answered: %s %s", o.Addr, p.pod.Name, p.cluster.Name, o.Code, o.Error)
		}
	}
	return nil
}

// plaintextTo makes a plaintext call from cl's outsider to pod's gRPC port.
func (m *Mesh) plaintextTo(ctx context.Context, cl *clusters.Cluster, pod corev1.Pod) (checks.PlaintextOutcome, error) {
	var o checks.PlaintextOutcome
	addr := netip.AddrPortFrom(netip.MustParseAddr(pod.Status.PodIP), 7070).String()
	out, err := workloads.Exec(ctx, cl.Client, OutsideNamespace, "outsider", "app", "meshapp", "call", addr)
	if err != nil {
		return o, fmt.Errorf("plaintext call from outside the mesh to %s in %s: %w", pod.Name, cl.Name, err)
	}
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		return o, fmt.Errorf("plaintext call from outside the mesh to %s in %s: unreadable outcome %q: %w", pod.Name, cl.Name, out, err)
	}
	return o, nil
}

// readyPods are the Running, Ready pods of the selector in cl, not being
// deleted, sorted by name; none is an error.
func readyPods(ctx context.Context, cl *clusters.Cluster, ns, selector string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := cl.Client.Resources(ns).List(ctx, &pods, resources.WithLabelSelector(selector)); err != nil {
		return nil, fmt.Errorf("list %s in %s/%s: %w", selector, cl.Name, ns, err)
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	var out []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.PodIP != "" && checks.PodReady(p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no ready pod %s in %s/%s", selector, cl.Name, ns)
	}
	return out, nil
}
