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
	env.WillInstallMesh(Label(labels.Conformance, labels.CrossCluster, labels.ReachAll, labels.ProxyStatus, labels.TrafficRules, labels.MTLS, labels.Failover))
	var apps *sampleApps
	vm := func() *verify.Mesh { return apps.mesh }
	r := func() *env.Run { return env.Get() }

	topo := specTopology()
	Context("Conformance: traffic in the multicluster mesh", Ordered, Label(labels.Conformance), func() {
		BeforeAll(func(ctx SpecContext) {
			apps = deploySampleApps(ctx)
			primary, away := r().Primary(), othersThan(r().Clusters, r().Primary())
			By("frontend in " + primary.Name + ", backend v1 and v2 in " + clusterNames(away))
			apps.frontendApplied(ctx, primary)
			apps.serviceOnly(ctx, primary)
			for _, cl := range away {
				apps.apply(ctx, cl, conformance.BackendFile, verify.AppNamespace)
			}
			for _, cl := range away {
				apps.waitBackend(ctx, cl)
			}
			apps.frontendReady(ctx, primary)
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
			BeforeAll(func(ctx SpecContext) {
				away := othersThan(vm().Clusters, vm().Primary)
				for _, cl := range away {
					apps.frontendApplied(ctx, cl)
				}
				apps.apply(ctx, vm().Primary, conformance.BackendFile, verify.AppNamespace)
				// Time to SYNCED runs from the last workload applied to every
				// proxy SYNCED, here and not in a spec, so label filters do
				// not change it.
				lastApplied := time.Now()
				apps.waitBackend(ctx, vm().Primary)
				for _, cl := range away {
					apps.frontendReady(ctx, cl)
				}
				var want map[string]string
				Eventually(func() error {
					var err error
					if want, err = vm().AppProxies(ctx); err != nil {
						return err
					}
					if len(want) != expectedProxies(len(vm().Clusters)) {
						return fmt.Errorf("%d app pods, want %d", len(want), expectedProxies(len(vm().Clusters)))
					}
					return vm().AllSynced(ctx, want)
				}).WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(500*time.Millisecond).Should(Succeed(), "every proxy SYNCED")
				secs := time.Since(lastApplied).Seconds()
				r().H.Run.Figure("seconds_to_all_synced", secs)
				AddReportEntry("time to SYNCED", fmt.Sprintf("%.1fs from applying the last workload; %d proxies", secs, len(want)))
			}, NodeTimeout(6*time.Minute))

			It("reaches every cluster", Label(labels.ReachAll), func(ctx SpecContext) {
				for _, cl := range vm().Clusters {
					Expect(vm().ReachesAll(ctx, cl.Name)).To(Succeed())
				}
			}, NodeTimeout(5*time.Minute))

			It("lists every proxy of every cluster in istioctl proxy-status on its own control plane, with its cluster, every subscribed type SYNCED", Label(labels.ProxyStatus), func(ctx SpecContext) {
				want, err := vm().AppProxies(ctx)
				Expect(err).NotTo(HaveOccurred())
				Expect(want).To(HaveLen(expectedProxies(len(vm().Clusters))))
				Expect(vm().AllSynced(ctx, want)).To(Succeed())
			}, NodeTimeout(2*time.Minute))

			It("applies traffic rules set on the primaries to callers in every cluster", Label(labels.TrafficRules), func(ctx SpecContext) {
				apps.applyRules(ctx, conformance.TrafficRulesFile)
				weights, err := conformance.SplitWeights()
				Expect(err).NotTo(HaveOccurred())
				for _, cl := range vm().Clusters {
					By(fmt.Sprintf("from %s: header version: vN → vN only; no header → the weights %v", cl.Name, weights))
					counts, err := vm().TrafficRules(ctx, cl.Name, weights)
					Expect(err).NotTo(HaveOccurred())
					band := checks.Band(verify.SplitCalls, weights["v2"], verify.SplitAlpha)
					AddReportEntry("split from "+cl.Name, fmt.Sprintf("%v of %d (v2 accepted in %s at α=%g)", counts, verify.SplitCalls, band, verify.SplitAlpha))
					r().H.Run.Figure("split_v2_share_from_"+cl.Name, float64(counts["v2"])/verify.SplitCalls)
				}
			}, NodeTimeout(10*time.Minute))

			It("carries mTLS across clusters under STRICT, with the workloads' exact SPIFFE identities, and refuses plaintext from outside the mesh", Label(labels.MTLS), func(ctx SpecContext) {
				for _, cl := range vm().Clusters {
					apps.outsider(ctx, cl)
				}
				By("before STRICT, a plaintext call from outside the mesh is answered, so a refusal later is STRICT's doing")
				Eventually(func() error { return plaintextAnswered(ctx, vm()) }).WithContext(ctx).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(Succeed())
				apps.applyRules(ctx, conformance.MTLSFile)
				By("plaintext refused at the TLS handshake by a backend that answers mesh calls with both identities")
				Eventually(func() error { return vm().MTLSStrict(ctx) }).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
			}, NodeTimeout(8*time.Minute))

			It("keeps traffic in the caller's locality, fails over within budget to the region the failover rule names, and returns", Label(labels.Failover), func(ctx SpecContext) {
				primary := vm().Primary
				targets := otherRegions(vm().Clusters, primary)
				Expect(targets).NotTo(BeEmpty(), "no cluster outside %s's region %s: nothing to fail over to", primary.Name, primary.Region)
				first := targets[0]
				apps.applyFailover(ctx, primary.Region, first.Region)
				By(fmt.Sprintf("every one of %d calls from %s stays in %s", verify.LocalWindow, primary.Name, primary.Region))
				Expect(vm().StaysLocal(ctx, primary.Name)).To(Succeed())

				By("scaling " + primary.Name + "'s backends to zero: the rule " + primary.Region + " → " + first.Region + " decides where traffic goes")
				apps.scaleBackend(ctx, primary, 0)
				failover := vm().Transition(ctx, primary.Name, first.Name, 90*time.Second)
				reportTransition("failover", failover)
				Expect(verify.FailoverBudget.Within("failover to "+first.Name, failover)).To(Succeed())

				// With two regions the rule's from → to cannot be told apart
				// from the default order (any other region comes next): what
				// is judged there is the cost of failing over. With three,
				// the rule is proven to choose: all of a window goes to the
				// region it names, none to the other — and pointed at the
				// other region, the reverse.
				for i, to := range targets {
					if i > 0 {
						By("the rule pointed at " + to.Region + " instead: traffic moves to " + to.Name + " and only there")
						apps.applyFailover(ctx, primary.Region, to.Region)
						moved := vm().Transition(ctx, primary.Name, to.Name, 90*time.Second)
						reportTransition("failover_rule_to_"+to.Region, moved)
						Expect(verify.FailoverBudget.Within("failover rule moved to "+to.Region, moved)).To(Succeed())
					}
					if len(targets) > 1 {
						By(fmt.Sprintf("every one of %d calls from %s answered in %s (%s), none in %s", verify.LocalWindow, primary.Name, to.Name, to.Region, clusterNames(othersThan(targets, to))))
						counts, err := vm().ServedOnlyBy(ctx, primary.Name, to.Name)
						Expect(err).NotTo(HaveOccurred())
						AddReportEntry("failover "+primary.Region+" → "+to.Region, fmt.Sprintf("%v of %d calls", counts, verify.LocalWindow))
						r().H.Run.Figure("failover_to_"+to.Region+"_calls_by_cluster", counts)
					}
				}

				By("scaling them back: traffic returns to " + primary.Name + " and stays there")
				apps.scaleBackend(ctx, primary, 1)
				// Timed from the scale-up: the pods' start is part of failback.
				failback := vm().Transition(ctx, primary.Name, primary.Name, 3*time.Minute)
				reportTransition("failback", failback)
				Expect(verify.FailbackBudget.Within("failback to "+primary.Name, failback)).To(Succeed())
				apps.waitBackend(ctx, primary)
				Expect(vm().StaysLocal(ctx, primary.Name)).To(Succeed())
			}, NodeTimeout(12*time.Minute))

			controlPlaneSpecs(topo, func() *sampleApps { return apps })
		})
	})
}

// plaintextAnswered passes when, in every cluster, a plaintext call from
// the outsider to a backend is answered: the precondition that makes a
// later refusal STRICT's doing.
func plaintextAnswered(ctx context.Context, vm *verify.Mesh) error {
	for _, cl := range vm.Clusters {
		o, _, err := vm.PlaintextToBackend(ctx, cl)
		if err != nil {
			return err
		}
		if !o.Answered {
			return fmt.Errorf("before STRICT, a plaintext call to %s in %s was not answered: %s %s", o.Addr, cl.Name, o.Code, o.Error)
		}
	}
	return nil
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

func reportTransition(what string, t checks.Transition) {
	r := env.Get()
	r.H.Run.Figure(what+"_seconds", t.Elapsed.Seconds())
	r.H.Run.Figure(what+"_failed_requests", t.Failed)
	r.H.Run.Figure(what+"_requests", t.Asked)
	AddReportEntry(what, fmt.Sprintf("%.2fs, %d of %d calls failed meanwhile", t.Elapsed.Seconds(), t.Failed, t.Asked))
}
