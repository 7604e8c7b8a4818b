package specs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/traffic"
	"github.com/meshconform/meshconform/e2e/verify"
	"github.com/meshconform/meshconform/e2e/workloads"
	"github.com/meshconform/meshconform/fixtures/apps/meshapp/api"
	"github.com/meshconform/meshconform/fixtures/conformance"
	"github.com/meshconform/meshconform/suites/internal/env"
)

// RemoteAPIBudget is what istiod losing the remote's API server may cost:
// no request (every proxy keeps the endpoints it has, and a restarted
// istiod serves the primary's); restored, istiod has the remote synced
// and every caller holds the live backends within MaxTime (the
// informers' relist backoff, then a push).
var RemoteAPIBudget = traffic.Budget{MaxTime: 2 * time.Minute, MaxFailed: 0}

// ReadyMargin is what a restarted istiod may take beyond
// PILOT_REMOTE_CLUSTER_TIMEOUT to be Ready: its own start (about 15 s
// here) and the rollout's bookkeeping.
const ReadyMargin = 45 * time.Second

// reportMargin is what the running istiod gets beyond
// PILOT_REMOTE_CLUSTER_TIMEOUT to report the remote it can no longer
// read: the watch of its debug/clusterz in the outage lasts both.
const reportMargin = 15 * time.Second

// remoteAPIUnreachable drops, on the primary's nodes, what istiod's pods
// send to the remote's API server (that port of that address only), under
// traffic; watches what the running istiod reports; restarts istiod
// during the outage; adds a backend in the remote; restores the path.
func (rs *resilienceRun) remoteAPIUnreachable(ctx SpecContext) {
	r, vm := env.Get(), rs.vm
	primary, remote := vm.Primary, vm.Away
	host, port, err := verify.RemoteAPIServer(ctx, primary, remote)
	Expect(err).NotTo(HaveOccurred())
	timeout, err := vm.RemoteClusterTimeout(ctx)
	Expect(err).NotTo(HaveOccurred())
	want := syncedBefore(ctx, vm)
	callers := frontendPods(ctx, vm)
	live := liveBackends(ctx, vm.Clusters...)
	backendCluster := checks.OutboundCluster(verify.BackendHost, backendPort)
	dep, replicas := oneBackendDeployment()

	rules := clusters.CutOffPort(host, port)
	restored := false
	restore := func(ctx context.Context) error {
		if restored {
			return nil
		}
		if err := r.H.Clusters.NodeRules(ctx, primary.Name, false, rules); err != nil {
			return err
		}
		restored = true
		return nil
	}
	DeferCleanup(restore)
	// After a failure the suite's AfterAll may have removed the apps
	// already: nothing to scale back then.
	DeferCleanup(func(ctx context.Context) error {
		if err := workloads.Scale(ctx, remote.Client, verify.AppNamespace, dep, replicas); err != nil && !apierrors.IsNotFound(errors.Unwrap(err)) {
			return err
		}
		return nil
	})

	load, streams := startLoadFor(ctx, vm, "before", faultLoadMax)
	defer load.Stop()
	sleepCtx(ctx, resilienceDwell)
	endFault := rs.sampler.expectFault("the remote's API server unreachable", float64(len(vm.Others(primary))))
	defer endFault()

	load.Phase("remote API unreachable")
	By(fmt.Sprintf("dropping, on %s's nodes, every packet between its pods and %s:%d (%s's API server)", primary.Name, host, port, remote.Name))
	cutAt := time.Now()
	Expect(r.H.Clusters.NodeRules(ctx, primary.Name, true, rules)).To(Succeed())
	load.Steady()
	By("what the running istiod reports of the remote, while every caller keeps the endpoints it has")
	watch := timeout + reportMargin
	reported := untilReported(ctx, vm, remote.ClusterID, watch)
	_, err = untilEveryCaller(ctx, vm, callers, cutAt, 10*time.Second, func(v api.Endpoints) error {
		return checks.ViewMatches(v, backendCluster, live)
	})
	Expect(err).NotTo(HaveOccurred(), "every caller still holds every backend, the remote's included")

	load.Phase("istiod restarted")
	By("restarting istiod during the outage: Ready within PILOT_REMOTE_CLUSTER_TIMEOUT, the remote reported not synced")
	restartAt := time.Now()
	Expect(restartIstiod(ctx, vm)).To(Succeed())
	readyIn := time.Since(restartAt)
	r.H.Run.Figure("resilience/remote_api_unreachable/seconds_to_restarted_istiod_ready", readyIn.Seconds())
	Expect(readyIn).To(BeNumerically("<=", timeout+ReadyMargin),
		"istiod restarted while the remote's API server is unreachable: Ready after %s, PILOT_REMOTE_CLUSTER_TIMEOUT is %s (+%s to start)", readyIn.Round(time.Second), timeout, ReadyMargin)
	Expect(remoteStates(ctx, vm, remote.ClusterID)).To(And(Not(BeEmpty()), HaveEach(Equal("timeout"))),
		"the restarted istiod's debug/clusterz state of %s (its initial sync cannot complete)", remote.ClusterID)
	By(fmt.Sprintf("a backend added in %s during the outage", remote.Name))
	Expect(workloads.Scale(ctx, remote.Client, verify.AppNamespace, dep, replicas+1)).To(Succeed())
	By("the primary's proxies on the restarted istiod; the remote's, which it cannot authenticate, on what they had; every caller holding live endpoints to call")
	Eventually(func() error { return vm.AllSynced(ctx, verify.ProxiesOf(want, primary)) }).WithContext(ctx).WithTimeout(RemoteAPIBudget.MaxTime).WithPolling(2*time.Second).
		Should(Succeed(), "the primary's proxies SYNCED with the restarted istiod")
	remoteProxies := verify.ProxiesOf(want, remote)
	connected, err := vm.Listed(ctx, remoteProxies)
	Expect(err).NotTo(HaveOccurred())
	primaryLive := liveBackends(ctx, primary)
	var mu sync.Mutex
	remoteKept := map[string]int{}
	_, err = untilEveryCaller(ctx, vm, callers, time.Now(), 30*time.Second, func(v api.Endpoints) error {
		have, err := checks.LiveSubset(v, backendCluster, live)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		remoteKept[v.Frontend.Pod] = 0
		for _, a := range have {
			if !slices.Contains(primaryLive, a) {
				remoteKept[v.Frontend.Pod]++
			}
		}
		return nil
	})
	Expect(err).NotTo(HaveOccurred())
	load.Steady()
	sleepCtx(ctx, phaseHold)

	load.Phase("remote API restored")
	By("restoring the path: the remote synced again, and every caller holds every live backend, the new one included")
	Expect(restore(ctx)).To(Succeed())
	restoredAt := time.Now()
	Eventually(func() error { return vm.RemoteSynced(ctx) }).WithContext(ctx).WithTimeout(2*RemoteAPIBudget.MaxTime).WithPolling(time.Second).
		Should(Succeed(), "istiod has %s synced again", remote.ClusterID)
	synced := time.Since(restoredAt)
	_, err = vm.Resynced(ctx, want, "", 2*RemoteAPIBudget.MaxTime)
	Expect(err).NotTo(HaveOccurred(), "every proxy SYNCED again, the remote's on the restarted istiod")
	proxiesBack := time.Since(restoredAt)
	Expect(workloads.WaitReady(ctx, remote.Client, verify.AppNamespace, "app=backend", backendsPerCluster()+1, 3*time.Minute)).To(Succeed())
	all := liveBackends(ctx, vm.Clusters...)
	views, err := untilEveryCaller(ctx, vm, callers, restoredAt, 2*RemoteAPIBudget.MaxTime, func(v api.Endpoints) error {
		return checks.ViewMatches(v, backendCluster, all)
	})
	Expect(err).NotTo(HaveOccurred())
	endFault()
	Expect(vm.ReachesAllEverywhere(ctx)).To(Succeed(), "every caller reaches every backend, the one added during the outage included")
	load.Steady()
	sleepCtx(ctx, resilienceDwell)

	phases := stopAndReport(load, "remote-api-unreachable", 4)
	AddReportEntry("the running istiod, with the remote's API server unreachable", reported.describe(watch))
	AddReportEntry("the remote's proxies on the restarted istiod during the outage", describeConnected(connected, remoteProxies))
	AddReportEntry("endpoints of the remote each caller kept from the restarted istiod (it cannot read the remote, so it has none to give)", fmt.Sprint(remoteKept))
	AddReportEntry("each caller holding every live backend after the restore", fmt.Sprint(views))
	recordFault("remote_api_unreachable", phases, "seconds_to_remote_synced", synced)
	r.H.Run.Figure("resilience/remote_api_unreachable/seconds_to_views_complete", worstOf(views).Seconds())
	r.H.Run.Figure("resilience/remote_api_unreachable/seconds_to_every_proxy_synced", proxiesBack.Seconds())
	r.H.Run.Figure("resilience/remote_api_unreachable/remote_proxies_on_restarted_istiod", len(connected))
	r.H.Run.Figure("resilience/remote_api_unreachable/remote_endpoints_kept", remoteKept)
	r.H.Run.Figure("resilience/remote_api_unreachable/running_istiod_reported_unsynced_seconds", reported.figure())
	names := clusters.Names(vm.Clusters)
	for i, p := range phases {
		Expect(traffic.Budget{MaxFailed: RemoteAPIBudget.MaxFailed, MinPerStream: minPerStream}.Judge(p, phases[0], streams)).To(Succeed())
		cross := streams
		if p.Name == "istiod restarted" {
			// The primary's callers, served by the restarted istiod, call
			// the primary only; the remote's keep what they had.
			cross = streamsFrom(streams, remote.Name)
		}
		Expect(p.Crossed(cross, names)).To(Succeed(), "phase %d", i)
	}
	Expect(RemoteAPIBudget.Within("the remote synced and every caller holding every backend after the restore",
		traffic.Transition{Reached: true, Elapsed: max(synced, proxiesBack, worstOf(views)), Asked: phases[3].Requests, Failed: phases[3].Failed})).To(Succeed())
	By("removing the backend added during the outage")
	Expect(workloads.Scale(ctx, remote.Client, verify.AppNamespace, dep, replicas)).To(Succeed())
	Expect(workloads.WaitReady(ctx, remote.Client, verify.AppNamespace, "app=backend", backendsPerCluster(), 3*time.Minute)).To(Succeed())
}

// oneBackendDeployment is the first of the backend fixture's Deployments,
// with its replicas.
func oneBackendDeployment() (string, int32) {
	GinkgoHelper()
	ds, err := conformance.BackendDeployments()
	Expect(err).NotTo(HaveOccurred())
	Expect(ds).NotTo(BeEmpty(), "Deployments in %s", conformance.BackendFile)
	names := make([]string, 0, len(ds))
	for n := range ds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names[0], ds[names[0]]
}

// backendsPerCluster is how many backend pods the fixture runs in each
// cluster.
func backendsPerCluster() int {
	GinkgoHelper()
	ds, err := conformance.BackendDeployments()
	Expect(err).NotTo(HaveOccurred())
	n := 0
	for _, r := range ds {
		n += int(r)
	}
	return n
}

// worstOf is the longest of per-caller times.
func worstOf(m map[string]time.Duration) time.Duration {
	var w time.Duration
	for _, d := range m {
		w = max(w, d)
	}
	return w
}

// remoteStates is the state of remote id in every istiod replica's
// debug/clusterz ("absent" when one does not list it); an error when no
// replica runs or one cannot be read.
func remoteStates(ctx context.Context, vm *verify.Mesh, id string) ([]string, error) {
	pods, err := mesh.IstiodPods(ctx, vm.Primary, vm.Istio.Revision)
	if err != nil {
		return nil, err
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("no running istiod pod on %s", vm.Primary.Name)
	}
	var out []string
	for _, p := range pods {
		cs, err := mesh.RemoteClustersOf(ctx, vm.Primary, p.Name)
		if err != nil {
			return nil, err
		}
		state := "absent"
		for _, c := range cs {
			if c.ID == id {
				state = c.SyncStatus
			}
		}
		out = append(out, state)
	}
	return out, nil
}

// streamsFrom are the streams whose caller runs in cluster.
func streamsFrom(streams []traffic.Stream, cluster string) []traffic.Stream {
	var out []traffic.Stream
	for _, s := range streams {
		if s.From == cluster {
			out = append(out, s)
		}
	}
	return out
}

// describeConnected says how many of the remote's proxies (all) the
// restarted istiod served (connected) while it could not reach the
// remote's API server.
func describeConnected(connected []string, all map[string]string) string {
	if len(connected) == len(all) {
		return fmt.Sprintf("all %d connected", len(all))
	}
	var out []string
	for p := range all {
		if !slices.Contains(connected, p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return fmt.Sprintf("%d of %d not connected (%s): istiod authenticates a remote proxy by a TokenReview on its cluster's API server (KubeJWTAuthenticator), which it could not reach; they served and called on the configuration they had", len(out), len(all), strings.Join(out, ", "))
}

// unsyncedReport is what the running istiod said of a remote it could no
// longer read: the first state other than synced, and when.
type unsyncedReport struct {
	state string
	after time.Duration
}

// untilReported polls every istiod replica's debug/clusterz for hold,
// until one reports remote id other than synced.
func untilReported(ctx context.Context, vm *verify.Mesh, id string, hold time.Duration) unsyncedReport {
	GinkgoHelper()
	start := time.Now()
	for time.Since(start) < hold {
		states, err := remoteStates(ctx, vm, id)
		Expect(err).NotTo(HaveOccurred())
		for _, s := range states {
			if s != "synced" {
				rep := unsyncedReport{state: s, after: time.Since(start)}
				sleepCtx(ctx, hold-time.Since(start))
				return rep
			}
		}
		sleepCtx(ctx, 2*time.Second)
	}
	return unsyncedReport{}
}

func (u unsyncedReport) describe(hold time.Duration) string {
	if u.state == "" {
		return fmt.Sprintf("debug/clusterz said synced for all %s: a running istiod's state is that of its initial sync (Istio's pkg/kube/multicluster sets it once), so a remote lost later is not reported; traffic kept the last endpoints", hold)
	}
	return fmt.Sprintf("debug/clusterz said %s after %s", u.state, u.after.Round(time.Second))
}

// figure is the seconds to the report, or -1 for none within the hold.
func (u unsyncedReport) figure() float64 {
	if u.state == "" {
		return -1
	}
	return u.after.Seconds()
}
