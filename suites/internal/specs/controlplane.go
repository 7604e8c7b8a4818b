package specs

import (
	"context"
	"fmt"
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
	"github.com/meshconform/meshconform/e2e/report"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/e2e/traffic"
	"github.com/meshconform/meshconform/e2e/verify"
	"github.com/meshconform/meshconform/e2e/workloads"
	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/labels"
)

// The load kept running while control-plane pods go: every frontend calls
// any backend (round robin over every cluster's), bounded in time and
// count, and stops by itself.
const (
	resilienceRate    = 5.0
	resilienceMaxLoad = 5 * time.Minute
	// resilienceDwell is the steady traffic before and after each action.
	resilienceDwell = 5 * time.Second
	// minPerStream: fewer requests in a stream is no verdict.
	minPerStream = 10
)

// controlPlaneSpecs declares, where the topology has them, the specs of a
// control plane losing pods under traffic: an HA istiod losing a replica
// (istiodReplicas > 1), and a multi-primary mesh losing one primary's
// istiod. Declared inside the conformance context where the apps run in
// every cluster with a frontend each. Not declared on a mesh the user
// brought (MESHCONFORM_MESH=existing): deleting or scaling its istiod is
// not the run's to do.
func controlPlaneSpecs(topo *topology.Topology, apps func() *sampleApps) {
	if s := treeSettings(); s.BringYourOwn() && s.Mesh == harness.MeshExisting {
		return
	}
	if topo != nil && topo.IstiodReplicas > 1 {
		It(fmt.Sprintf("HA istiod (%d replicas): spreads the proxies over more than one replica; deleting one loses no request of cross-cluster traffic, and its proxies are SYNCED with the others within budget", topo.IstiodReplicas), Label(labels.HAControlPlane), func(ctx SpecContext) {
			replicaLoss(ctx, apps().mesh)
		}, NodeTimeout(8*time.Minute))
	}
	if topo != nil && len(topo.Primaries()) > 1 {
		It("multi-primary: with one primary's istiod scaled to zero, its cluster's traffic keeps flowing, the other primary's proxies stay SYNCED, and the proxies return to their istiod", Label(labels.PrimaryLoss), func(ctx SpecContext) {
			primaryLoss(ctx, apps().mesh)
		}, NodeTimeout(8*time.Minute))
	}
}

// replicaLoss deletes the istiod replica of the primary that serves the
// most proxies, under traffic from every frontend.
func replicaLoss(ctx SpecContext, vm *verify.Mesh) {
	r := env.Get()
	want, err := vm.AppProxies(ctx)
	Expect(err).NotTo(HaveOccurred())
	rows, err := vm.ProxyRows(ctx, want)
	Expect(err).NotTo(HaveOccurred())
	primary := vm.Primary
	served := verify.ProxiesOf(want, vm.Model.ProxiesOf(primary)...)
	by, err := checks.Spread(rows[primary.Name], vm.ByClusterID(served))
	Expect(err).NotTo(HaveOccurred(), "proxies connected to the replicas of %s", primary.Name)
	AddReportEntry("proxies by istiod replica", report.Counts(by))
	r.H.Run.Figure("proxies_by_istiod_replica", by)
	victim, most := "", -1
	for pod, n := range by {
		if n > most {
			victim, most = pod, n
		}
	}

	load, streams := startLoad(ctx, vm, "before")
	defer load.Stop()
	sleepCtx(ctx, resilienceDwell)
	load.Phase("istiod replica deleted")
	By(fmt.Sprintf("deleting istiod replica %s, which serves %d proxies", victim, most))
	Expect(workloads.DeletePod(ctx, primary.Client, primary.IstioNamespace(), victim)).To(Succeed())
	took, rerr := vm.Resynced(ctx, want, victim, 2*verify.ReplicaLossBudget.MaxTime)
	load.Steady()
	sleepCtx(ctx, resilienceDwell)
	phase := judgeLoad(load, streams, "ha-replica-loss", clusters.Names(vm.Clusters))
	r.H.Run.Figure("seconds_to_resynced_after_replica_loss", took.Seconds())
	AddReportEntry("replica loss", fmt.Sprintf("proxies of %s SYNCED with the other replicas %.1fs after its deletion; %d of %d requests failed meanwhile; served by %s", victim, took.Seconds(), phase.Failed, phase.Requests, report.Counts(phase.Served)))
	Expect(rerr).NotTo(HaveOccurred(), "proxies SYNCED without replica %s", victim)
	Expect(verify.ReplicaLossBudget.Within("resync after losing istiod replica "+victim,
		traffic.Transition{Reached: true, Elapsed: took, Asked: phase.Requests, Failed: phase.Failed})).To(Succeed())

	By("the deployment brings the replica back, so later specs run on the HA control plane")
	Expect(workloads.WaitReady(ctx, primary.Client, primary.IstioNamespace(), mesh.IstiodSelector(vm.Istio.Revision), r.H.Topology.IstiodReplicas, 3*time.Minute)).To(Succeed())
}

// primaryLoss scales the second primary's istiod to zero under traffic,
// then back.
func primaryLoss(ctx SpecContext, vm *verify.Mesh) {
	r := env.Get()
	primaries := vm.Primaries()
	Expect(len(primaries)).To(BeNumerically(">=", 2), "multi-primary needs two primaries")
	lost := primaries[1]
	kept := othersThan(vm.Clusters, lost)
	want, err := vm.AppProxies(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(vm.AllSynced(ctx, want)).To(Succeed(), "every proxy SYNCED before")

	load, streams := startLoad(ctx, vm, "before")
	defer load.Stop()
	sleepCtx(ctx, resilienceDwell)
	load.Phase("istiod of " + lost.Name + " at zero")
	back := istiodToZero(ctx, vm, lost, r.H.Topology.IstiodReplicas)
	load.Steady()
	By("the other primary's proxies stay SYNCED with their own istiod while " + lost.Name + "'s is gone")
	keptProxies := verify.ProxiesOf(want, kept...)
	Expect(vm.AllSynced(ctx, keptProxies)).To(Succeed())
	sleepCtx(ctx, 3*resilienceDwell)
	Expect(vm.AllSynced(ctx, keptProxies)).To(Succeed())

	load.Phase("istiod of " + lost.Name + " back")
	By("scaling it back: " + lost.Name + "'s proxies reconnect and are SYNCED")
	Expect(back(ctx)).To(Succeed())
	took, rerr := vm.Resynced(ctx, want, "", 2*verify.PrimaryReturnBudget.MaxTime)
	load.Steady()
	sleepCtx(ctx, resilienceDwell)
	rec := load.Stop()
	phases := rec.Phases()
	writeTimeline(rec, "primary-loss")
	r.H.Run.Figure("seconds_to_resynced_after_primary_return", took.Seconds())
	for _, p := range phases {
		AddReportEntry("phase "+p.Name, fmt.Sprintf("%d of %d requests failed; served by %s", p.Failed, p.Requests, report.Counts(p.Served)))
		Expect(traffic.Budget{MaxFailed: 0, MinPerStream: minPerStream}.Judge(p, phases[0], streams)).To(Succeed())
		if p.Name != phases[0].Name {
			// Every caller's traffic keeps crossing: calls that stayed
			// local would fail no request.
			Expect(p.Crossed(streams, clusters.Names(vm.Clusters))).To(Succeed())
		}
	}
	Expect(rerr).NotTo(HaveOccurred(), "proxies of %s SYNCED with their istiod back", lost.Name)
	Expect(verify.PrimaryReturnBudget.Within("proxies of "+lost.Name+" back on their istiod",
		traffic.Transition{Reached: true, Elapsed: took, Asked: phases[len(phases)-1].Requests, Failed: phases[len(phases)-1].Failed})).To(Succeed())
}

// istiodToZero scales cl's istiod of the mesh's revision to zero and
// waits until no pod of it is left, terminating ones included (one still
// draining still serves xDS). Whatever happens later, cleanup scales it
// back to replicas for the specs after this one; back does so now.
func istiodToZero(ctx SpecContext, vm *verify.Mesh, cl *clusters.Cluster, replicas int) (back func(context.Context) error) {
	GinkgoHelper()
	istiod := mesh.Values{Revision: vm.Istio.Revision}.IstiodService()
	back = func(ctx context.Context) error {
		return workloads.Scale(ctx, cl.Client, cl.IstioNamespace(), istiod, int32(replicas))
	}
	DeferCleanup(back)
	By("scaling istiod of " + cl.Name + " to zero")
	Expect(workloads.Scale(ctx, cl.Client, cl.IstioNamespace(), istiod, 0)).To(Succeed())
	Eventually(func() ([]string, error) { return istiodPodNames(ctx, cl, vm.Istio.Revision) }).
		WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(time.Second).Should(BeEmpty(), "istiod pods of %s, terminating or not", cl.Name)
	return back
}

// istiodPodNames lists every istiod pod of the revision in cl, whatever
// its phase, terminating ones included.
func istiodPodNames(ctx context.Context, cl *clusters.Cluster, revision string) ([]string, error) {
	var pods corev1.PodList
	err := cl.Client.Resources(cl.IstioNamespace()).List(ctx, &pods, resources.WithLabelSelector(mesh.IstiodSelector(revision)))
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	return names, err
}

// startLoad starts a stream from every frontend of vm to any backend.
func startLoad(ctx context.Context, vm *verify.Mesh, first string) (*traffic.Load, []traffic.Stream) {
	GinkgoHelper()
	return startLoadFor(ctx, vm, first, resilienceMaxLoad)
}

// startLoadFor is startLoad bounded to maxLoad.
func startLoadFor(ctx context.Context, vm *verify.Mesh, first string, maxLoad time.Duration) (*traffic.Load, []traffic.Stream) {
	GinkgoHelper()
	var streams []traffic.Stream
	for _, cl := range vm.Clusters {
		if base, ok := vm.Frontends[cl.Name]; ok {
			streams = append(streams, traffic.Stream{Name: cl.Name + "→any", From: cl.Name, Base: base})
		}
	}
	// Placed by pod range, or by the backends listed now where the
	// clusters have none (the action restarts no backend).
	pl, err := vm.Placement(ctx)
	Expect(err).NotTo(HaveOccurred())
	load, err := traffic.Start(context.WithoutCancel(ctx), traffic.Config{
		Rate: resilienceRate, MaxDuration: maxLoad, MaxRequests: int(resilienceRate*maxLoad.Seconds()) * len(streams), Placement: pl,
	}, streams, first)
	Expect(err).NotTo(HaveOccurred())
	return load, streams
}

// judgeLoad stops the load, writes its time line and judges its last
// phase (the action's) against the first: no request failed, enough of
// them in every stream, every answer from where the network says, and
// traffic crossing to every cluster.
func judgeLoad(load *traffic.Load, streams []traffic.Stream, name string, clusterNames []string) traffic.Phase {
	GinkgoHelper()
	rec := load.Stop()
	writeTimeline(rec, name)
	phases := rec.Phases()
	Expect(phases).To(HaveLen(2))
	p := phases[1]
	Expect(traffic.Budget{MaxFailed: 0, MinPerStream: minPerStream}.Judge(p, phases[0], streams)).To(Succeed())
	Expect(p.Crossed(streams, clusterNames)).To(Succeed())
	return p
}

func writeTimeline(rec traffic.Record, name string) {
	path := filepath.Join(env.Get().H.Config.ArtifactsDir, name+".svg")
	if err := rec.WriteSVG(path, name); err != nil {
		GinkgoWriter.Printf("time line %s: %v\n", path, err)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
