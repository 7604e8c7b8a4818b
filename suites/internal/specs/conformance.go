package specs

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/report"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/e2e/traffic"
	"github.com/meshconform/meshconform/e2e/verify"
	"github.com/meshconform/meshconform/fixtures/conformance"
	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/labels"
)

// Conformance declares what users run meshconform for: traffic across the
// clusters of the mesh (primary-remote with any number of remotes, or
// multi-primary), every proxy in sync with its control plane, rules written
// on the primaries governing every cluster, mTLS across clusters, locality
// failover to the region the rule names, and a control plane that survives
// losing an istiod. Each spec composes checks of
// package verify, whose comments state the broken mesh each rejects. Call
// inside an Ordered container after env.Setup; it installs the mesh if no
// earlier spec did.
func Conformance() {
	env.WillInstallMesh(Label(labels.Conformance, labels.CrossCluster, labels.ReachAll, labels.ProxyStatus, labels.TrafficRules, labels.MTLS, labels.Failover, labels.PodSecurity))
	var apps *sampleApps
	vm := func() *verify.Mesh { return apps.mesh }
	r := func() *env.Run { return env.Get() }

	topo := specTopology()
	Context("Conformance: traffic in the multicluster mesh", Ordered, Label(labels.Conformance), func() {
		BeforeAll(func(ctx SpecContext) {
			apps = deploySampleApps(ctx)
			apps.frontendHereBackendsAway(ctx, r().Primary(), othersThan(r().Clusters, r().Primary()))
		}, NodeTimeout(40*time.Minute))

		AfterAll(func(ctx SpecContext) {
			if apps != nil {
				apps.remove(ctx)
			}
		}, NodeTimeout(5*time.Minute))

		It("cross-cluster call: every request from the frontend in the primary reaches a backend in another cluster", Label(labels.CrossCluster), func(ctx SpecContext) {
			Expect(vm().CrossCluster(ctx, vm().Primary.Name, clusters.Names(othersThan(vm().Clusters, vm().Primary))...)).To(Succeed())
		}, NodeTimeout(4*time.Minute))

		Context("with the backend in every cluster and a frontend in each", func() {
			BeforeAll(func(ctx SpecContext) { apps.everywhere(ctx) }, NodeTimeout(6*time.Minute))

			It("reaches every cluster and every backend pod from every cluster's frontend", Label(labels.ReachAll), func(ctx SpecContext) {
				Expect(vm().ReachesAllEverywhere(ctx)).To(Succeed())
			}, NodeTimeout(5*time.Minute))

			It("lists every proxy of every cluster in istioctl proxy-status on its own control plane, with its cluster, on a running istiod of the revision, at the installed version, every subscribed type SYNCED", Label(labels.ProxyStatus), func(ctx SpecContext) {
				want, err := vm().AppProxies(ctx)
				Expect(err).NotTo(HaveOccurred())
				Expect(want).To(HaveLen(expectedProxies(len(vm().Clusters))))
				Expect(vm().AllSynced(ctx, want)).To(Succeed())
			}, NodeTimeout(2*time.Minute))

			It("admits every app pod of every cluster, as injected, under restricted Pod Security, which each cluster enforces on the run's namespaces", Label(labels.PodSecurity), func(ctx SpecContext) {
				level := r().H.Config.PodSecurity()
				if level == "" {
					Skip("upstream image source: Envoy sidecars' istio-init needs NET_ADMIN, which restricted forbids without Istio's CNI plugin (not installed by meshconform), so the run enforces no Pod Security level")
				}
				Expect(vm().AppsUnderPodSecurity(ctx, level)).To(Succeed())
			}, NodeTimeout(2*time.Minute))

			It("applies traffic rules set on the primaries to callers in every cluster", Label(labels.TrafficRules), func(ctx SpecContext) {
				trafficRulesFromEveryCluster(ctx, apps)
			}, NodeTimeout(10*time.Minute))

			It("carries mTLS under STRICT from every cluster's frontend with the identities the fixtures declare, and every backend pod refuses plaintext from outside the mesh", Label(labels.MTLS), func(ctx SpecContext) {
				for _, cl := range vm().Clusters {
					apps.outsider(ctx, cl)
				}
				By("before STRICT, every backend pod answers a plaintext call from outside the mesh, so a refusal later is STRICT's doing")
				Eventually(func() error { return vm().PlaintextAnswered(ctx) }).WithContext(ctx).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(Succeed())
				apps.applyRules(ctx, conformance.MTLSFile)
				By("plaintext refused at the TLS handshake by every backend pod, each answering mesh calls that carry both declared identities from every caller")
				Eventually(func() error { return vm().MTLSStrict(ctx) }).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
			}, NodeTimeout(8*time.Minute))

			It("keeps every caller's traffic in its locality, fails over within budget from every region to the region the failover rule names, and returns", Label(labels.Failover), func(ctx SpecContext) {
				localityAndFailover(ctx, apps)
			}, NodeTimeout(failoverTimeout(topo)))

			controlPlaneSpecs(topo, func() *sampleApps { return apps })
		})
	})
}

// failoverFrom judges locality failover for from's callers: the rule
// from's region → the first other region applied, from's backends scaled
// to zero, traffic moves within budget and a window after it is served
// only there; with a third region the rule is proven to choose (pointed at
// the other region, traffic moves there and only there); scaled back,
// traffic returns within budget and stays.
func failoverFrom(ctx context.Context, apps *sampleApps, from *clusters.Cluster) {
	GinkgoHelper()
	vm := apps.mesh
	targets := otherRegions(vm.Clusters, from)
	apps.applyFailover(ctx, from.Region, targets[0].Region)
	By(fmt.Sprintf("%s: every one of %d calls stays in %s", from.Name, verify.LocalWindow, from.Region))
	Expect(vm.StaysLocal(ctx, from.Name)).To(Succeed())

	By("scaling " + from.Name + "'s backends to zero: the rule " + from.Region + " → " + targets[0].Region + " decides where traffic goes")
	apps.scaleBackend(ctx, from, 0)
	// With two regions the rule's from → to cannot be told apart from the
	// default order (any other region comes next): what is judged there is
	// the cost of failing over and the window after it. With three, the
	// rule is proven to choose: all of a window goes to the region it
	// names, none to the other — and pointed at the other region, the
	// reverse.
	for i, to := range targets {
		what := "failover_from_" + from.Name
		if i > 0 {
			By("the rule pointed at " + to.Region + " instead: traffic moves to " + to.Name + " and only there")
			apps.applyFailover(ctx, from.Region, to.Region)
			what += "_rule_to_" + to.Region
		}
		moved := vm.Transition(ctx, from.Name, to.Name, 90*time.Second)
		reportTransition(what, moved)
		Expect(verify.FailoverBudget.Within(what, moved)).To(Succeed())
		By(fmt.Sprintf("every one of %d calls from %s answered in %s (%s)%s", verify.LocalWindow, from.Name, to.Name, to.Region, noneIn(othersThan(targets, to))))
		counts, err := vm.ServedOnlyBy(ctx, from.Name, to.Name)
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("failover "+from.Region+" → "+to.Region, fmt.Sprintf("%s of %d calls", report.Counts(counts), verify.LocalWindow))
		env.Get().H.Run.Figure(what+"_calls_by_cluster", counts)
	}

	By("scaling them back: traffic returns to " + from.Name + " and stays there")
	apps.scaleBackend(ctx, from, 1)
	// Timed from the scale-up: the pods' start is part of failback.
	failback := vm.Transition(ctx, from.Name, from.Name, 3*time.Minute)
	reportTransition("failback_to_"+from.Name, failback)
	Expect(verify.FailbackBudget.Within("failback to "+from.Name, failback)).To(Succeed())
	apps.waitBackend(ctx, from)
	Expect(vm.StaysLocal(ctx, from.Name)).To(Succeed())
}

// failoverTimeout bounds the failover spec: a few minutes per cluster
// (failover, the windows, failback with the pods' start).
func failoverTimeout(topo *topology.Topology) time.Duration {
	n := 3
	if topo != nil {
		n = len(topo.Clusters)
	}
	return time.Duration(4+8*n) * time.Minute
}

func noneIn(cls []*clusters.Cluster) string {
	if len(cls) == 0 {
		return ""
	}
	return ", none in " + clusterNames(cls)
}

// othersThan are the clusters of cls other than cl, in order.
func othersThan(cls []*clusters.Cluster, cl *clusters.Cluster) []*clusters.Cluster {
	return clusters.Filter(cls, func(c *clusters.Cluster) bool { return c.Name != cl.Name })
}

// otherRegions are the clusters outside cl's region, in order: where its
// traffic may fail over to.
func otherRegions(cls []*clusters.Cluster, cl *clusters.Cluster) []*clusters.Cluster {
	return clusters.Filter(cls, func(c *clusters.Cluster) bool { return c.Region != cl.Region })
}

func clusterNames(cls []*clusters.Cluster) string { return strings.Join(clusters.Names(cls), ", ") }

func reportTransition(what string, t traffic.Transition) {
	r := env.Get()
	r.H.Run.Figure(what+"_seconds", t.Elapsed.Seconds())
	r.H.Run.Figure(what+"_failed_requests", t.Failed)
	r.H.Run.Figure(what+"_requests", t.Asked)
	r.H.Run.Figure(what+"_strays_after", t.Strays)
	AddReportEntry(what, fmt.Sprintf("%.2fs, %d of %d requests failed meanwhile and in the %d of %d requests after; %d of those answered elsewhere", t.Elapsed.Seconds(), t.Failed, t.Asked, t.Window, verify.AfterWindow, t.Strays))
}

// frontendHereBackendsAway deploys the frontend in primary (with the
// backend's Service only) and backends v1 and v2 in every cluster of away.
func (a *sampleApps) frontendHereBackendsAway(ctx SpecContext, primary *clusters.Cluster, away []*clusters.Cluster) {
	By("frontend in " + primary.Name + ", backend v1 and v2 in " + clusterNames(away))
	a.frontendApplied(ctx, primary)
	a.serviceOnly(ctx, primary)
	for _, cl := range away {
		a.apply(ctx, cl, conformance.BackendFile, verify.AppNamespace)
	}
	for _, cl := range away {
		a.waitBackend(ctx, cl)
	}
	a.frontendReady(ctx, primary)
}

// everywhere adds a frontend in every other cluster and the backend in the
// primary, then waits for every proxy SYNCED and records how long that
// took from the last workload applied (here, not in a spec, so label
// filters do not change it).
func (a *sampleApps) everywhere(ctx SpecContext) {
	away := othersThan(a.mesh.Clusters, a.mesh.Primary)
	for _, cl := range away {
		a.frontendApplied(ctx, cl)
	}
	a.apply(ctx, a.mesh.Primary, conformance.BackendFile, verify.AppNamespace)
	// Time to SYNCED runs from the last workload applied to every
	// proxy SYNCED, here and not in a spec, so label filters do
	// not change it.
	lastApplied := time.Now()
	a.waitBackend(ctx, a.mesh.Primary)
	for _, cl := range away {
		a.frontendReady(ctx, cl)
	}
	var want map[string]string
	Eventually(func() error {
		var err error
		if want, err = a.mesh.AppProxies(ctx); err != nil {
			return err
		}
		if len(want) != expectedProxies(len(a.mesh.Clusters)) {
			return fmt.Errorf("%d app pods, want %d", len(want), expectedProxies(len(a.mesh.Clusters)))
		}
		return a.mesh.AllSynced(ctx, want)
	}).WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(500*time.Millisecond).Should(Succeed(), "every proxy SYNCED")
	secs := time.Since(lastApplied).Seconds()
	env.Get().H.Run.Figure("seconds_to_all_synced", secs)
	AddReportEntry("time to SYNCED", fmt.Sprintf("%.1fs from applying the last workload; %d proxies", secs, len(want)))
}

// trafficRulesFromEveryCluster applies the header and weight rules on the
// primaries and judges them from every cluster's frontend.
func trafficRulesFromEveryCluster(ctx SpecContext, apps *sampleApps) {
	apps.applyRules(ctx, conformance.TrafficRulesFile)
	weights, err := conformance.SplitWeights()
	Expect(err).NotTo(HaveOccurred())
	for _, cl := range apps.mesh.Clusters {
		By(fmt.Sprintf("from %s: header version: vN → vN only; no header → the weights %v", cl.Name, weights))
		counts, err := apps.mesh.TrafficRules(ctx, cl.Name, weights)
		Expect(err).NotTo(HaveOccurred())
		band := checks.Band(verify.SplitCalls, weights["v2"], verify.SplitAlpha)
		AddReportEntry("split from "+cl.Name, fmt.Sprintf("%s of %d (v2 accepted in %s at α=%g)", report.Counts(counts), verify.SplitCalls, band, verify.SplitAlpha))
		env.Get().H.Run.Figure("split_v2_share_from_"+cl.Name, float64(counts["v2"])/verify.SplitCalls)
	}
}

// localityAndFailover applies the failover rule between the first two
// regions, then judges every caller local and every region's failover
// and failback in turn.
func localityAndFailover(ctx SpecContext, apps *sampleApps) {
	movers := clusters.Filter(apps.mesh.Clusters, func(c *clusters.Cluster) bool { return len(otherRegions(apps.mesh.Clusters, c)) > 0 })
	Expect(movers).NotTo(BeEmpty(), "every cluster is in one region: nothing to fail over to")
	for _, from := range apps.mesh.Clusters {
		if len(otherRegions(apps.mesh.Clusters, from)) == 0 {
			By(fmt.Sprintf("%s: no other region to fail over to, locality judged only", from.Name))
		}
	}
	apps.applyFailover(ctx, movers[0].Region, otherRegions(apps.mesh.Clusters, movers[0])[0].Region)
	By(fmt.Sprintf("every one of %d calls from each cluster's frontend stays in its own cluster", verify.LocalWindow))
	Expect(apps.mesh.StaysLocalEverywhere(ctx)).To(Succeed())
	for _, from := range movers {
		failoverFrom(ctx, apps, from)
	}
}
