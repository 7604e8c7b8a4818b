package specs

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/frontend"
	"github.com/meshconform/meshconform/e2e/traffic"
	"github.com/meshconform/meshconform/e2e/verify"
	"github.com/meshconform/meshconform/e2e/workloads"
	"github.com/meshconform/meshconform/fixtures/apps/meshapp/api"
	"github.com/meshconform/meshconform/suites/internal/env"
)

// ChurnBudget is what killing every backend pod of the remote may cost:
// the calls in flight on the killed pods, and those a caller picks for a
// dead endpoint before its xDS client drops it (gRPC does not retry them);
// at 5 requests/s from each frontend, about a second of both streams.
var ChurnBudget = traffic.Budget{MaxFailed: 10, MaxTime: time.Minute}

// backendPort is the backend's gRPC port, in the name of Istio's xDS
// cluster for it.
const backendPort = 7070

// podChurn kills (grace period 0, as a crash or an OOM kill would) every
// backend pod of the remote under traffic, then reads each frontend pod's
// own xDS endpoints until none of the dead addresses is left and, once
// the Deployment's replacements are Ready, until every caller holds
// exactly the live backends.
func (rs *resilienceRun) podChurn(ctx SpecContext) {
	r, vm := env.Get(), rs.vm
	away := vm.Away
	callers := frontendPods(ctx, vm)
	victims := runningPods(ctx, away, "app=backend")
	Expect(victims).NotTo(BeEmpty(), "backend pods in %s", away.Name)
	var dead []netip.Addr
	for _, p := range victims {
		dead = append(dead, netip.MustParseAddr(p.Status.PodIP))
	}

	load, streams := startLoadFor(ctx, vm, "before", faultLoadMax)
	defer load.Stop()
	sleepCtx(ctx, resilienceDwell)
	load.Phase("backends killed")
	By(fmt.Sprintf("killing the %d backend pods of %s", len(victims), away.Name))
	killed := time.Now()
	for i := range victims {
		Expect(away.Client.Resources(verify.AppNamespace).Delete(ctx, &victims[i], resources.WithGracePeriod(0))).To(Succeed())
	}
	By("every caller's own xDS client drops the dead endpoints")
	gone, err := untilEveryCaller(ctx, vm, callers, killed, ChurnBudget.MaxTime, func(v api.Endpoints) error {
		return checks.DeadGone(v, verify.BackendHost, dead)
	})
	Expect(err).NotTo(HaveOccurred())

	By("the replacements Ready: every caller holds exactly the live backends, no stale address")
	Expect(workloads.WaitReady(ctx, away.Client, verify.AppNamespace, "app=backend", backendsPerCluster(), 3*time.Minute)).To(Succeed())
	live := liveBackends(ctx, vm.Clusters...)
	readyAt := time.Now()
	matched, err := untilEveryCaller(ctx, vm, callers, readyAt, ChurnBudget.MaxTime, func(v api.Endpoints) error {
		return checks.ViewMatches(v, checks.OutboundCluster(verify.BackendHost, backendPort), live)
	})
	Expect(err).NotTo(HaveOccurred())
	load.Steady()
	sleepCtx(ctx, resilienceDwell)

	phases := stopAndReport(load, "pod-churn", 2)
	AddReportEntry("dead endpoints gone from each caller", fmt.Sprint(gone))
	AddReportEntry("each caller holding the live backends exactly, after the replacements were Ready", fmt.Sprint(matched))
	recordFault("pod_churn", phases, "seconds_to_dead_endpoints_gone", worstOf(gone))
	// From when the harness saw the replacements Ready (its 1 s poll):
	// how long a caller lagged behind that, not since they were Ready.
	r.H.Run.Figure("resilience/pod_churn/seconds_to_view_live_after_seen_ready", worstOf(matched).Seconds())
	Expect(traffic.Budget{MaxFailed: 0, MinPerStream: minPerStream}.Judge(phases[0], phases[0], streams)).To(Succeed())
	Expect(traffic.Budget{MaxFailed: ChurnBudget.MaxFailed, MinPerStream: minPerStream}.Judge(phases[1], phases[0], streams)).To(Succeed())
	Expect(phases[1].Crossed(streams, clusters.Names(vm.Clusters))).To(Succeed())
	Expect(ChurnBudget.Within("the dead endpoints gone from every caller",
		traffic.Transition{Reached: true, Elapsed: worstOf(gone), Asked: phases[1].Requests, Failed: phases[1].Failed})).To(Succeed())
}

// liveBackends are the addresses of the Ready backend pods of cls.
func liveBackends(ctx context.Context, cls ...*clusters.Cluster) []netip.Addr {
	GinkgoHelper()
	var live []netip.Addr
	for _, cl := range cls {
		for _, p := range runningPods(ctx, cl, "app=backend") {
			if checks.NotReady(p) == nil {
				live = append(live, netip.MustParseAddr(p.Status.PodIP))
			}
		}
	}
	Expect(live).NotTo(BeEmpty(), "Ready backend pods in %s", clusters.Names(cls))
	return live
}

// frontendPods are the running frontend pods of every cluster, by cluster.
func frontendPods(ctx context.Context, vm *verify.Mesh) map[string][]string {
	GinkgoHelper()
	out := map[string][]string{}
	for _, cl := range vm.Clusters {
		for _, p := range runningPods(ctx, cl, "app=frontend") {
			out[cl.Name] = append(out[cl.Name], p.Name)
		}
		Expect(out[cl.Name]).NotTo(BeEmpty(), "frontend pods in %s", cl.Name)
	}
	return out
}

// runningPods lists the app pods of cl matching selector that run and are
// not going.
func runningPods(ctx context.Context, cl *clusters.Cluster, selector string) []corev1.Pod {
	GinkgoHelper()
	var list corev1.PodList
	Expect(cl.Client.Resources(verify.AppNamespace).List(ctx, &list, resources.WithLabelSelector(selector))).To(Succeed())
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && p.Status.PodIP != "" {
			out = append(out, p)
		}
	}
	return out
}

// untilEveryCaller reads the xDS endpoints of every frontend pod of
// callers (cluster → pods) through its cluster's frontend address, which
// reaches one replica per request, until each pod's view has passed cond
// once; it returns, per pod, the time from since to that view (an upper
// bound: a replica is read about every 200 ms). A pod never seen to pass
// within timeout is an error naming what its last view failed on.
func untilEveryCaller(ctx context.Context, vm *verify.Mesh, callers map[string][]string, since time.Time, timeout time.Duration, cond func(api.Endpoints) error) (map[string]time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var mu sync.Mutex
	done := map[string]time.Duration{}
	last := map[string]string{}
	var wg sync.WaitGroup
	for cl, pods := range callers {
		base := vm.Frontends[cl]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				v, err := frontend.Endpoints(ctx, base)
				at := time.Now()
				mu.Lock()
				switch {
				case err != nil:
					last[cl] = err.Error()
				case done[v.Frontend.Pod] == 0:
					if err := cond(v); err != nil {
						last[v.Frontend.Pod] = err.Error()
					} else {
						done[v.Frontend.Pod] = at.Sub(since)
					}
				}
				all := true
				for _, p := range pods {
					all = all && done[p] > 0
				}
				mu.Unlock()
				if all {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
	}
	wg.Wait()
	var missing []string
	for cl, pods := range callers {
		for _, p := range pods {
			if done[p] == 0 {
				why := last[p]
				if why == "" {
					why = "never read; the frontend in " + cl + " last said: " + last[cl]
				}
				missing = append(missing, fmt.Sprintf("%s (last: %s)", p, why))
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return done, fmt.Errorf("within %s, not every caller's view passed: %s", timeout, strings.Join(missing, "; "))
	}
	return done, nil
}
