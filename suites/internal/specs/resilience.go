package specs

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/traffic"
	"github.com/meshconform/meshconform/e2e/verify"
	"github.com/meshconform/meshconform/fixtures/conformance"
	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/labels"
)

// Resilience: each fault injected while traffic runs from every cluster's
// frontend to any backend, bounded in time, reverted in cleanup even when
// the spec fails, judged against its budget; istiod's own metrics read
// from every replica through the run; propagation timed. Only on clusters
// meshconform made (the faults scale istiod to zero and put iptables
// rules on nodes), for one primary and one remote.

// Budgets of the resilience faults. Proxies keep their last
// configuration while istiod is gone or unreachable, so no request may
// fail; the way back is the agent's reconnection (its backoff grows to
// about 10 s while istiod is away) plus a push, and for istiod scaled back
// up the pods' start (istiod is Ready in about 15 s here).
var (
	IstiodReturnBudget = traffic.Budget{MaxTime: 2 * time.Minute, MaxFailed: 0}
	ReconnectBudget    = traffic.Budget{MaxTime: 90 * time.Second, MaxFailed: 0}
)

// faultLoadMax bounds a fault's load: longer than its slowest way
// through (each wait at its limit), so a slow recovery is judged as such,
// not as a load that stopped.
const faultLoadMax = 10 * time.Minute

// syncedBefore waits, bounded, until every app proxy is SYNCED: the mesh
// healthy before a fault, or the reason the fault before did not recover.
func syncedBefore(ctx SpecContext, vm *verify.Mesh) map[string]string {
	GinkgoHelper()
	want, err := vm.AppProxies(ctx)
	Expect(err).NotTo(HaveOccurred())
	Eventually(func() error { return vm.AllSynced(ctx, want) }).WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(2*time.Second).
		Should(Succeed(), "every proxy SYNCED before the fault (if not, the fault before did not recover)")
	return want
}

// faultHold is how long istiod stays down, or the remote cut off, under
// traffic once the fault has taken effect (istiod's pods gone; istiod no
// longer listing the remote's proxies, which takes its own 30 s
// keepalive): one more keepalive period, so each side has found the
// connection dead and the proxies run on what they had, retrying.
const faultHold = 30 * time.Second

// phaseHold is how long a shorter phase of a fault (istiod restarted in
// the outage, the remote out of the mesh) runs under traffic before the
// next step: 75 calls per frontend, judged.
const phaseHold = 15 * time.Second

// Resilience declares the suite's specs. Call inside an Ordered container
// after env.Setup; shared is the apps the suite's contexts share (nil:
// the context's own). Run inside another suite (shared, in make faults),
// a topology other than one primary and one remote skips them with the
// reason; run alone (make resilience), it fails the run.
func Resilience(shared *SharedApps) {
	if refusesBrought("the resilience suite breaks the mesh on purpose (istiod scaled to zero, a remote cut off from it, its remote secret rotated and deleted)") {
		return
	}
	if shared != nil && skipsTopology("resilience", Label(labels.Resilience)) {
		return
	}
	if shared == nil && refusesTopology("resilience") {
		return
	}
	env.WillInstallMesh(Label(labels.Resilience))
	rs := &resilienceRun{}
	Context("Resilience: the mesh under control-plane and network faults, recovery measured", Ordered, Label(labels.Resilience), func() {
		BeforeAll(func(ctx SpecContext) { rs.deploy(ctx, shared) }, NodeTimeout(40*time.Minute))
		AfterAll(func(ctx SpecContext) { rs.finish(ctx, shared) }, NodeTimeout(5*time.Minute))

		It("istiod down (every replica at zero): traffic already flowing keeps succeeding, a new pod cannot be injected and the harness says why; back, every proxy is SYNCED again", Label(labels.IstiodDown), func(ctx SpecContext) {
			rs.istiodDown(ctx)
		}, NodeTimeout(10*time.Minute))

		It("the remote cut off from istiod (its nodes cannot reach the discovery address): its workloads keep serving and calling on the configuration they have; restored, every remote proxy is SYNCED again", Label(labels.RemoteCutOff), func(ctx SpecContext) {
			rs.remoteCutOff(ctx)
		}, NodeTimeout(10*time.Minute))

		It("the remote's API server unreachable from istiod (only that path dropped): traffic keeps flowing on the endpoints every caller has; an istiod restarted during the outage is Ready within PILOT_REMOTE_CLUSTER_TIMEOUT and reports the remote not synced; restored, the remote is synced and a backend added during the outage is reached", Label(labels.RemoteAPIUnreachable), func(ctx SpecContext) {
			rs.remoteAPIUnreachable(ctx)
		}, NodeTimeout(12*time.Minute))

		It("the remote secret rotated (a new token, the old one revoked), deleted and re-applied: no request fails; deleted, the remote's endpoints leave every caller's view and calls stay in the primary; re-applied, every backend is reached again (where istiod needs a restart, the suite says so and measures it)", Label(labels.RemoteSecret), func(ctx SpecContext) {
			rs.remoteSecret(ctx)
		}, NodeTimeout(12*time.Minute))

		It("pod churn: every backend pod of the remote killed under traffic: failed requests within budget, the dead endpoints gone from every caller's own xDS view, and every caller's view exactly the live backends once the replacements are Ready", Label(labels.PodChurn), func(ctx SpecContext) {
			rs.podChurn(ctx)
		}, NodeTimeout(10*time.Minute))

		It("propagation: a routing change on the primary reaches every caller in every cluster, and a new endpoint in the remote is reached by every caller, timed over repeated trials", Label(labels.Propagation), func(ctx SpecContext) {
			rs.propagation(ctx)
		}, NodeTimeout(15*time.Minute))

		It("istiod's metrics through the run: every remote synced and agreeing with debug/clusterz, no sync timeout, no xDS reject, pushes going out, proxies converging within budget", Label(labels.IstiodMetrics), func(ctx SpecContext) {
			rs.judgeMetrics(ctx)
		}, NodeTimeout(3*time.Minute))
	})
}

type resilienceRun struct {
	apps    *sampleApps
	vm      *verify.Mesh
	sampler *metricsSampler
}

// deploy starts reading istiod's metrics as soon as the mesh is there
// (the apps' first configuration, and any reject of it, fall in the
// window, unless the apps are shared and there already), then puts a
// frontend and the backend in every cluster.
func (rs *resilienceRun) deploy(ctx SpecContext, shared *SharedApps) {
	r := env.Get()
	m, err := r.Mesh(ctx)
	Expect(err).NotTo(HaveOccurred(), "install Istio primary-remote")
	rs.sampler = startMetricsSampler(ctx, r.Verify(m))
	rs.apps = shared.take(ctx)
	rs.vm = rs.apps.mesh
}

// finish stops the metrics and releases the apps.
func (rs *resilienceRun) finish(ctx SpecContext, shared *SharedApps) {
	if rs.sampler != nil {
		rs.sampler.stop()
	}
	shared.release(ctx, rs.apps)
}

// istiodDown scales every istiod replica of the primary to zero under
// traffic, tries to inject a pod in the remote, and scales it back.
func (rs *resilienceRun) istiodDown(ctx SpecContext) {
	r, vm := env.Get(), rs.vm
	primary := vm.Primary
	want := syncedBefore(ctx, vm)

	load, streams := startLoadFor(ctx, vm, "before", faultLoadMax)
	defer load.Stop()
	sleepCtx(ctx, resilienceDwell)
	load.Phase("istiod at zero")
	back := istiodToZero(ctx, vm, primary, r.H.Topology.IstiodReplicas)
	downAt := time.Now()
	load.Steady()

	By("a new pod in the remote cannot be injected, and the harness says why")
	why, err := vm.InjectionRefused(ctx)
	Expect(err).NotTo(HaveOccurred())
	AddReportEntry("injection with istiod down", why)
	// The refusal (the API server's 10 s webhook timeout) is part of the hold.
	sleepCtx(ctx, faultHold-time.Since(downAt))

	load.Phase("istiod back")
	By("scaling istiod back: every proxy reconnects and is SYNCED")
	Expect(back(ctx)).To(Succeed())
	took, rerr := vm.Resynced(ctx, want, "", 2*IstiodReturnBudget.MaxTime)
	Expect(rerr).NotTo(HaveOccurred(), "proxies SYNCED with istiod back")
	load.Steady()
	sleepCtx(ctx, resilienceDwell)
	phases := judgePhases(load, streams, "istiod-down", clusters.Names(vm.Clusters))
	recordFault("istiod_down", phases, "seconds_to_synced", took)
	Expect(IstiodReturnBudget.Within("every proxy back on istiod",
		traffic.Transition{Reached: true, Elapsed: took, Asked: phases[len(phases)-1].Requests, Failed: phases[len(phases)-1].Failed})).To(Succeed())
}

// remoteCutOff drops, on every node of the remote, what goes to and
// comes from istiod's discovery address, under traffic, then restores it.
func (rs *resilienceRun) remoteCutOff(ctx SpecContext) {
	r, vm := env.Get(), rs.vm
	remote := vm.Away
	discovery := vm.Istio.Discovery
	Expect(discovery).NotTo(BeEmpty(), "istiod's discovery address for the remote")
	want := syncedBefore(ctx, vm)
	remoteProxies := verify.ProxiesOf(want, remote)
	Expect(remoteProxies).NotTo(BeEmpty(), "app proxies in %s", remote.Name)
	rules := clusters.CutOff(discovery)
	restored := false
	DeferCleanup(func(ctx context.Context) error {
		if restored {
			return nil
		}
		return r.H.Clusters.NodeRules(ctx, remote.Name, false, rules)
	})

	load, streams := startLoadFor(ctx, vm, "before", faultLoadMax)
	defer load.Stop()
	sleepCtx(ctx, resilienceDwell)
	load.Phase("remote cut off")
	By(fmt.Sprintf("dropping, on %s's nodes, every packet to and from %s", remote.Name, discovery))
	Expect(r.H.Clusters.NodeRules(ctx, remote.Name, true, rules)).To(Succeed())
	By("the cut takes: istiod no longer lists the remote's proxies")
	cutAt := time.Now()
	Eventually(func() ([]string, error) { return vm.Listed(ctx, remoteProxies) }).WithContext(ctx).
		WithTimeout(2*time.Minute).WithPolling(2*time.Second).Should(BeEmpty(), "proxies of %s still connected to istiod", remote.Name)
	r.H.Run.Figure("resilience/remote_cut_off/seconds_to_proxies_disconnected", time.Since(cutAt).Seconds())
	load.Steady()
	sleepCtx(ctx, faultHold)

	load.Phase("remote restored")
	By("restoring the path: every remote proxy reconnects and is SYNCED")
	Expect(r.H.Clusters.NodeRules(ctx, remote.Name, false, rules)).To(Succeed())
	restored = true
	took, rerr := vm.Resynced(ctx, want, "", 2*ReconnectBudget.MaxTime)
	Expect(rerr).NotTo(HaveOccurred(), "the remote's proxies SYNCED again")
	load.Steady()
	sleepCtx(ctx, resilienceDwell)
	phases := judgePhases(load, streams, "remote-cut-off", clusters.Names(vm.Clusters))
	recordFault("remote_cut_off", phases, "seconds_to_synced", took)
	Expect(ReconnectBudget.Within("the remote's proxies back on istiod",
		traffic.Transition{Reached: true, Elapsed: took, Asked: phases[len(phases)-1].Requests, Failed: phases[len(phases)-1].Failed})).To(Succeed())
}

// judgePhases stops the load, writes its time line and judges every phase
// against the first: no request failed, enough in every stream, every
// answer from where the network says, every caller's traffic crossing.
func judgePhases(load *traffic.Load, streams []traffic.Stream, name string, clusterNames []string) []traffic.Phase {
	GinkgoHelper()
	phases := stopAndReport(load, name, 0)
	for _, p := range phases {
		Expect(traffic.Budget{MaxFailed: 0, MinPerStream: minPerStream}.Judge(p, phases[0], streams)).To(Succeed())
		Expect(p.Crossed(streams, clusterNames)).To(Succeed())
	}
	return phases
}

// stopAndReport stops the load, writes its time line (name.svg) and puts
// each phase in the report; want, when not 0, is how many phases the
// fault marked.
func stopAndReport(load *traffic.Load, name string, want int) []traffic.Phase {
	GinkgoHelper()
	rec := load.Stop()
	writeTimeline(rec, name)
	phases := rec.Phases()
	if want > 0 {
		Expect(phases).To(HaveLen(want))
	}
	for _, p := range phases {
		AddReportEntry("phase "+p.Name, describePhase(p))
	}
	return phases
}

// recordFault puts a fault's figures in phases.json (resilience/<fault>/
// <phase>/<what>): requests sent and failed and the longest gap per phase,
// and the recovery time under its own name (resilience/<fault>/<recovery>).
func recordFault(name string, phases []traffic.Phase, recovery string, took time.Duration) {
	run := env.Get().H.Run
	for _, p := range phases {
		key := "resilience/" + name + "/" + p.Name + "/"
		run.Figure(key+"requests", p.Requests)
		run.Figure(key+"failed", p.Failed)
		run.Figure(key+"longest_gap_seconds", p.LongestGap.Seconds())
	}
	run.Figure("resilience/"+name+"/"+recovery, took.Seconds())
}

// deployFrontendsAndBackends puts the sample apps in every cluster: a
// frontend and the backend in each.
func deployFrontendsAndBackends(ctx SpecContext) *sampleApps {
	apps := deploySampleApps(ctx)
	for _, cl := range apps.mesh.Clusters {
		apps.frontendApplied(ctx, cl)
		apps.apply(ctx, cl, conformance.BackendFile, verify.AppNamespace)
	}
	for _, cl := range apps.mesh.Clusters {
		apps.waitBackend(ctx, cl)
		apps.frontendReady(ctx, cl)
	}
	return apps
}
