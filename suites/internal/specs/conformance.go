package specs

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/workloads"
	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/labels"
)

const (
	// appNS is the guide's namespace for the sample apps, injection on.
	appNS = "production"
	// outsideNS holds a client outside the mesh (no injection).
	outsideNS = "outside"
	// trustDomain is Istio's default.
	trustDomain = "cluster.local"
	// splitAlpha is the significance of the traffic-split test: a correct
	// mesh fails it once in a thousand runs.
	splitAlpha = 0.001
)

// Conformance declares what users run meshconform for: traffic across the
// clusters of a primary-remote mesh, every proxy in sync with the one
// control plane, rules written on the primary governing both clusters, mTLS
// across clusters, and locality failover. Call inside an Ordered container
// after env.Setup; it installs the mesh if no earlier spec did.
func Conformance() {
	var (
		m                *harness.Mesh
		primary, remote  *clusters.Cluster
		app              string
		frontendOf       = map[string]string{} // cluster → frontend base URL
		conformanceDir   string
		deployedBackends = map[string]int{} // cluster → backend pods
	)
	r := func() *env.Run { return env.Get() }
	fixture := func(name string) string { return filepath.Join(conformanceDir, name) }

	deploy := func(ctx context.Context, cl *clusters.Cluster, file string) {
		GinkgoHelper()
		deployTo(ctx, cl, conformanceDir, file, appNS, app)
	}
	// onlyService creates the backend Service without its pods, as the
	// guide does for clusters that only call it.
	onlyService := func(ctx context.Context, cl *clusters.Cluster) {
		GinkgoHelper()
		Expect(workloads.Apply(ctx, cl.Client, conformanceDir, "backend-service.yaml", appNS, workloads.Overrides{})).To(Succeed())
	}
	frontendURL := func(ctx context.Context, cl *clusters.Cluster) string {
		GinkgoHelper()
		Expect(workloads.WaitReady(ctx, cl.Client, appNS, "app=frontend", 2, 3*time.Minute)).To(Succeed())
		ip, err := mesh.LoadBalancerAddress(ctx, cl.Client, appNS, "frontend", 2*time.Minute)
		Expect(err).NotTo(HaveOccurred())
		return "http://" + ip.String()
	}
	// calls asks cl's frontend for n calls and judges them, retrying until
	// the check passes (config takes a moment to reach every proxy).
	eventually := func(ctx context.Context, cl *clusters.Cluster, n int, check checks.Checker, headers ...string) checks.Response {
		GinkgoHelper()
		var last checks.Response
		Eventually(func() error {
			var err error
			if last, err = checks.Call(ctx, frontendOf[cl.Name], n, headers...); err != nil {
				return err
			}
			return check(last)
		}).WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(2*time.Second).Should(Succeed(), "calls from %s's frontend", cl.Name)
		return last
	}
	measured := func(ctx context.Context, cl *clusters.Cluster, n int, check checks.Checker, headers ...string) checks.Response {
		GinkgoHelper()
		resp, err := checks.Call(ctx, frontendOf[cl.Name], n, headers...)
		Expect(err).NotTo(HaveOccurred())
		Expect(check(resp)).To(Succeed(), "%d calls from %s's frontend", n, cl.Name)
		return resp
	}

	Context("Conformance: traffic in the primary-remote mesh", Ordered, Label(labels.Conformance), func() {
		BeforeAll(func(ctx SpecContext) {
			var err error
			m, err = r().Mesh(ctx)
			Expect(err).NotTo(HaveOccurred(), "install Istio primary-remote")
			primary, remote = r().Primary(), r().Remote()
			conformanceDir = filepath.Join(r().H.Config.RepoRoot, "fixtures", "conformance")
			app, err = r().H.App(ctx, "meshapp")
			Expect(err).NotTo(HaveOccurred())
			injection := map[string]string{"istio-injection": "enabled"}
			if m.Revision != "" {
				injection = map[string]string{"istio.io/rev": m.Revision}
			}
			for _, cl := range r().Clusters {
				Expect(workloads.CreateNamespace(ctx, cl.Client, appNS, injection)).To(Succeed())
			}
			By("frontend (2 replicas) in " + primary.Name + ", backend v1 (3) and v2 (1) in " + remote.Name)
			deploy(ctx, primary, "frontend.yaml")
			onlyService(ctx, primary)
			deploy(ctx, remote, "backend.yaml")
			Expect(workloads.WaitReady(ctx, remote.Client, appNS, "app=backend", 4, 3*time.Minute)).To(Succeed())
			deployedBackends[remote.Name] = 4
			frontendOf[primary.Name] = frontendURL(ctx, primary)
		}, NodeTimeout(40*time.Minute))

		AfterAll(func(ctx SpecContext) {
			for _, cl := range r().Clusters {
				Expect(workloads.DeleteNamespace(ctx, cl.Client, appNS)).To(Succeed())
				Expect(workloads.DeleteNamespace(ctx, cl.Client, outsideNS)).To(Succeed())
			}
		}, NodeTimeout(5*time.Minute))

		It("cross-cluster call: every request from the frontend in the primary reaches the backend in the remote", Label(labels.CrossCluster), func(ctx SpecContext) {
			eventually(ctx, primary, 10, checks.And(checks.NoFailures(), checks.OnlyClusters(remote.Name)))
			resp := measured(ctx, primary, 100, checks.And(checks.NoFailures(), checks.OnlyClusters(remote.Name)))
			AddReportEntry("cross-cluster answers", checks.Counts(resp.Results, checks.ByCluster))
		}, NodeTimeout(4*time.Minute))

		Context("with the backend in both clusters and a frontend in each", func() {
			var deployedAt time.Time
			BeforeAll(func(ctx SpecContext) {
				deployedAt = time.Now()
				deploy(ctx, primary, "backend.yaml")
				deploy(ctx, remote, "frontend.yaml")
				Expect(workloads.WaitReady(ctx, primary.Client, appNS, "app=backend", 4, 3*time.Minute)).To(Succeed())
				deployedBackends[primary.Name] = 4
				frontendOf[remote.Name] = frontendURL(ctx, remote)
			}, NodeTimeout(6*time.Minute))

			It("reaches every cluster", Label(labels.ReachAll), func(ctx SpecContext) {
				for _, cl := range r().Clusters {
					eventually(ctx, cl, 40, checks.And(checks.NoFailures(), checks.ReachedClusters(primary.Name, remote.Name)))
				}
			}, NodeTimeout(5*time.Minute))

			It("lists every proxy of both clusters in istioctl proxy-status, with its cluster, every subscribed type SYNCED", Label(labels.ProxyStatus), func(ctx SpecContext) {
				want := map[string]string{} // pod → cluster
				for _, cl := range r().Clusters {
					var pods corev1.PodList
					Expect(cl.Client.Resources(appNS).List(ctx, &pods, resources.WithLabelSelector("app in (frontend,backend)"))).To(Succeed())
					for _, p := range pods.Items {
						want[p.Name] = cl.Name
					}
				}
				Expect(want).To(HaveLen(deployedBackends[primary.Name] + deployedBackends[remote.Name] + 4))
				Eventually(func() error {
					rows, err := m.ProxyStatus(ctx, primary)
					if err != nil {
						return err
					}
					return mesh.CheckSynced(rows, want)
				}).WithContext(ctx).WithTimeout(3 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
				secs := time.Since(deployedAt).Seconds()
				r().H.Run.Figure("seconds_to_all_synced", secs)
				AddReportEntry("time to SYNCED", fmt.Sprintf("%.1fs from deploying the second cluster's workloads; %d proxies", secs, len(want)))
			}, NodeTimeout(5*time.Minute))

			It("applies traffic rules set on the primary to callers in both clusters", Label(labels.TrafficRules), func(ctx SpecContext) {
				Expect(workloads.ApplyObjects(ctx, primary.Client, fixture("traffic-rules.yaml"), appNS)).To(Succeed())
				DeferCleanup(workloads.DeleteFile, primary.Client, fixture("traffic-rules.yaml"), appNS)
				for _, cl := range r().Clusters {
					By("header version: v2 → subset v2 only, from " + cl.Name)
					eventually(ctx, cl, 20, checks.And(checks.NoFailures(), checks.OnlyVersion("v2")), "version:v2")
					measured(ctx, cl, 100, checks.And(checks.NoFailures(), checks.OnlyVersion("v2")), "version:v2")
					By("no header → v1/v2 at 80/20, from " + cl.Name)
					eventually(ctx, cl, 20, checks.NoFailures())
					resp := measured(ctx, cl, 500, checks.And(checks.NoFailures(), checks.Split(map[string]float64{"v1": 0.8, "v2": 0.2}, splitAlpha)))
					counts := checks.Counts(resp.Results, checks.ByVersion)
					AddReportEntry("split from "+cl.Name, fmt.Sprintf("%v of 500 (v2 expected 100 ± %.1f at α=%g)", counts, checks.SplitTolerance(500, 0.2, splitAlpha), splitAlpha))
					r().H.Run.Figure("split_v2_share_from_"+cl.Name, float64(counts["v2"])/500)
				}
			}, NodeTimeout(10*time.Minute))

			It("carries mTLS across clusters under STRICT, with SPIFFE identities, and refuses plaintext from outside the mesh", Label(labels.MTLS), func(ctx SpecContext) {
				Expect(workloads.CreateNamespace(ctx, remote.Client, outsideNS, nil)).To(Succeed())
				deployTo(ctx, remote, conformanceDir, "outsider.yaml", outsideNS, app)
				Expect(workloads.WaitReady(ctx, remote.Client, outsideNS, "app=outsider", 1, 2*time.Minute)).To(Succeed())
				target := backendAddress(ctx, remote)
				By("before STRICT, a plaintext call from outside the mesh is answered (so a refusal later is STRICT's doing)")
				Eventually(func() (string, error) {
					return workloads.Exec(ctx, remote.Client, outsideNS, "outsider", "app", "meshapp", "call", target)
				}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(ContainSubstring("answered by pod"))

				Expect(workloads.ApplyObjects(ctx, primary.Client, fixture("mtls.yaml"), appNS)).To(Succeed())
				DeferCleanup(workloads.DeleteFile, primary.Client, fixture("mtls.yaml"), appNS)
				By("mesh calls from the primary's frontend succeed in both clusters and carry both SPIFFE identities")
				eventually(ctx, primary, 40, checks.And(checks.NoFailures(), checks.ReachedClusters(primary.Name, remote.Name), checks.PeerIdentities(trustDomain)))
				resp := measured(ctx, primary, 100, checks.And(checks.NoFailures(), checks.PeerIdentities(trustDomain)))
				AddReportEntry("mTLS identities", fmt.Sprintf("backend %s, frontend %s", resp.Results[0].PeerIdentity, resp.Results[0].CallerIdentity))
				By("a plaintext call from outside the mesh is refused")
				Eventually(func() error {
					_, err := workloads.Exec(ctx, remote.Client, outsideNS, "outsider", "app", "meshapp", "call", target)
					return err
				}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(HaveOccurred())
			}, NodeTimeout(8*time.Minute))

			It("keeps traffic in the caller's locality, fails over to the other region when its backends go, and returns", Label(labels.Failover), func(ctx SpecContext) {
				Expect(workloads.ApplyObjects(ctx, primary.Client, fixture("failover.yaml"), appNS)).To(Succeed())
				DeferCleanup(workloads.DeleteFile, primary.Client, fixture("failover.yaml"), appNS)
				By("while " + primary.Name + "'s backends are healthy, the primary's frontend is answered in " + primary.Region)
				eventually(ctx, primary, 40, checks.And(checks.NoFailures(), checks.OnlyClusters(primary.Name)))

				By("scaling " + primary.Name + "'s backends to zero")
				for _, d := range []string{"backend-v1", "backend-v2"} {
					Expect(workloads.Scale(ctx, primary.Client, appNS, d, 0)).To(Succeed())
				}
				out := pollUntil(ctx, frontendOf[primary.Name], remote.Name, 90*time.Second)
				Expect(out.reached).To(BeTrue(), "traffic did not move to %s within 90s: %v", remote.Name, out.last)
				r().H.Run.Figure("failover_seconds", out.elapsed.Seconds())
				r().H.Run.Figure("failover_failed_requests", out.failed)
				AddReportEntry("failover", fmt.Sprintf("%.1fs to %s, %d of %d requests failed meanwhile", out.elapsed.Seconds(), remote.Name, out.failed, out.total))

				By("scaling them back: traffic returns to " + primary.Name)
				Expect(workloads.Scale(ctx, primary.Client, appNS, "backend-v1", 3)).To(Succeed())
				Expect(workloads.Scale(ctx, primary.Client, appNS, "backend-v2", 1)).To(Succeed())
				Expect(workloads.WaitReady(ctx, primary.Client, appNS, "app=backend", 4, 3*time.Minute)).To(Succeed())
				back := pollUntil(ctx, frontendOf[primary.Name], primary.Name, 90*time.Second)
				Expect(back.reached).To(BeTrue(), "traffic did not return to %s within 90s: %v", primary.Name, back.last)
				r().H.Run.Figure("failback_seconds", back.elapsed.Seconds())
				r().H.Run.Figure("failback_failed_requests", back.failed)
				AddReportEntry("failback", fmt.Sprintf("%.1fs back to %s, %d of %d requests failed meanwhile", back.elapsed.Seconds(), primary.Name, back.failed, back.total))
			}, NodeTimeout(10*time.Minute))
		})
	})
}

type pollResult struct {
	reached       bool
	elapsed       time.Duration
	failed, total int
	last          map[string]int
}

// pollUntil calls the frontend in small batches, every 250ms, until a batch
// is answered entirely by cluster, or timeout: a bounded loop that counts
// the requests that failed on the way.
func pollUntil(ctx context.Context, frontend, cluster string, timeout time.Duration) pollResult {
	start := time.Now()
	var out pollResult
	for time.Since(start) < timeout && ctx.Err() == nil {
		resp, err := checks.Call(ctx, frontend, 5)
		if err == nil {
			out.total += len(resp.Results)
			for _, r := range resp.Results {
				if r.Error != "" {
					out.failed++
				}
			}
			out.last = checks.Counts(resp.Results, checks.ByCluster)
			if checks.And(checks.NoFailures(), checks.OnlyClusters(cluster))(resp) == nil {
				out.reached, out.elapsed = true, time.Since(start)
				return out
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	out.elapsed = time.Since(start)
	return out
}

// backendAddress is a backend pod's IP:7070 in cl, for calls that bypass
// the mesh's routing.
func backendAddress(ctx context.Context, cl *clusters.Cluster) string {
	GinkgoHelper()
	var pods corev1.PodList
	Expect(cl.Client.Resources(appNS).List(ctx, &pods, resources.WithLabelSelector("app=backend"))).To(Succeed())
	for _, p := range pods.Items {
		if ip, err := netip.ParseAddr(p.Status.PodIP); err == nil && p.DeletionTimestamp == nil {
			return netip.AddrPortFrom(ip, 7070).String()
		}
	}
	Fail("no backend pod with an IP in " + cl.Name)
	return ""
}

// deployTo applies a fixture of the sample app to cl, telling the app which
// cluster and locality it runs in (a pod cannot read its node's labels).
func deployTo(ctx context.Context, cl *clusters.Cluster, dir, file, ns, app string) {
	GinkgoHelper()
	Expect(workloads.Apply(ctx, cl.Client, dir, file, ns, workloads.Overrides{
		Images: workloads.Images{"meshconform/meshapp": app},
		Env:    map[string]string{"CLUSTER": cl.Name, "REGION": cl.Region, "ZONE": cl.Zone},
	})).To(Succeed(), "deploy %s to %s/%s", file, cl.Name, ns)
}
