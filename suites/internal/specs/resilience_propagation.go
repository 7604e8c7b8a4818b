package specs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/frontend"
	"github.com/meshconform/meshconform/e2e/poll"
	"github.com/meshconform/meshconform/e2e/propagation"
	"github.com/meshconform/meshconform/e2e/upgrade"
	"github.com/meshconform/meshconform/e2e/verify"
	"github.com/meshconform/meshconform/e2e/workloads"
	"github.com/meshconform/meshconform/suites/internal/env"
)

// Propagation trials: each change made, then every frontend polled (5
// calls a poll, every 50 ms) until 3 polls running show it; bounded per
// trial. The figures are published, not judged against a time budget
// (how long istiod and the machine take is what they measure); a trial
// that never reaches a caller fails.
const (
	propagationTrials  = 5
	propagationTimeout = 90 * time.Second
	// freshHeader aims a call at the endpoint trial's new pod.
	freshHeader = "propagation-trial"
	freshSubset = "fresh"
)

func (rs *resilienceRun) propagation(ctx SpecContext) {
	r, vm := env.Get(), rs.vm
	var callers []propagation.Caller
	for _, cl := range vm.Clusters {
		base, ok := vm.Frontends[cl.Name]
		Expect(ok).To(BeTrue(), "no frontend in %s", cl.Name)
		callers = append(callers, propagation.Caller{Cluster: cl.Name, Base: base})
	}
	pl, err := vm.Placement(ctx)
	Expect(err).NotTo(HaveOccurred())
	served := func(res checks.Result) string {
		ap, err := netip.ParseAddrPort(res.PeerAddr)
		if err != nil {
			return ""
		}
		c, _ := pl.ClusterOf(ap.Addr().Unmap())
		return c
	}
	watch := propagation.Watch{Call: frontend.Call, Calls: 5, Settle: 3, Every: 50 * time.Millisecond}
	primary := vm.Primary
	for _, obj := range propagationRules(vm, "") {
		DeferCleanup(func(ctx context.Context) error { return workloads.DeleteObject(ctx, primary.Client, obj) })
	}

	By("a routing change on the primary (every call to one cluster, alternating): timed to every caller")
	var routed []time.Duration
	for i := range propagationTrials {
		// The remote first: the change made on the primary must reach the
		// remote's callers through istiod.
		target := vm.Clusters[(i+1)%len(vm.Clusters)]
		for _, obj := range propagationRules(vm, target.ClusterID) {
			Expect(workloads.ApplyObject(ctx, primary.Client, obj)).To(Succeed())
		}
		since := time.Now()
		w := watch
		w.Acted = func(res checks.Result) bool {
			return res.Error == "" && res.Cluster == target.Name && served(res) == target.Name
		}
		times, err := w.Times(ctx, callers, since, propagationTimeout)
		Expect(err).NotTo(HaveOccurred(), "trial %d: every call to %s", i+1, target.Name)
		routed = append(routed, propagation.Slowest(times))
		AddReportEntry(fmt.Sprintf("routing trial %d (all to %s)", i+1, target.Name), fmt.Sprint(times))
	}

	By("a new endpoint in the remote: timed from its pod Ready to every caller reaching it")
	away := vm.Away
	for _, obj := range propagationRules(vm, "") {
		Expect(workloads.ApplyObject(ctx, primary.Client, obj)).To(Succeed())
	}
	template := freshPodTemplate(ctx, away)
	var reached []time.Duration
	for i := range propagationTrials {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("backend-fresh-%d", i+1), Namespace: verify.AppNamespace,
			Labels: template.Labels, Annotations: template.Annotations,
		}, Spec: template.Spec}
		Expect(away.Client.Resources().Create(ctx, pod)).To(Succeed())
		DeferCleanup(func(ctx context.Context) error { return deletePodIfThere(ctx, away, pod.Name) })
		since := podReadyAt(ctx, away, pod.Name)
		w := watch
		w.Headers = []string{freshHeader + ":" + freshSubset}
		w.Acted = func(res checks.Result) bool {
			return res.Error == "" && res.Pod == pod.Name && served(res) == away.Name
		}
		times, err := w.Times(ctx, callers, since, propagationTimeout)
		Expect(err).NotTo(HaveOccurred(), "trial %d: every caller reaching %s", i+1, pod.Name)
		reached = append(reached, propagation.Slowest(times))
		AddReportEntry(fmt.Sprintf("endpoint trial %d (%s)", i+1, pod.Name), fmt.Sprint(times))
		Expect(workloads.DeletePod(ctx, away.Client, verify.AppNamespace, pod.Name)).To(Succeed())
	}

	for name, ds := range map[string][]time.Duration{"propagation_routing_change": routed, "propagation_new_endpoint": reached} {
		s, err := propagation.SpreadOf(ds)
		Expect(err).NotTo(HaveOccurred())
		r.H.Run.Figure(name, s)
		AddReportEntry(name, fmt.Sprintf("p50 %.2fs, p99 %.2fs (min %.2fs, max %.2fs) over %d trials", s.P50, s.P99, s.Min, s.Max, s.Trials))
	}
}

// propagationRules are the trials' rules on the backend: a subset per
// cluster (by the label istiod gives each endpoint) and the fresh subset
// (the endpoint trial's pods); calls with freshHeader go to the fresh
// subset, every other call to the subset of cluster ID to ("" = any).
func propagationRules(vm *verify.Mesh, to string) []*unstructured.Unstructured {
	subsets := []any{map[string]any{"name": freshSubset, "labels": map[string]any{"version": freshSubset}}}
	for _, cl := range vm.Clusters {
		subsets = append(subsets, map[string]any{"name": cl.ClusterID, "labels": map[string]any{upgrade.ClusterLabel: cl.ClusterID}})
	}
	rest := map[string]any{"destination": map[string]any{"host": verify.BackendHost}}
	if to != "" {
		rest = map[string]any{"destination": map[string]any{"host": verify.BackendHost, "subset": to}}
	}
	routes := []any{
		map[string]any{
			"match": []any{map[string]any{"headers": map[string]any{freshHeader: map[string]any{"exact": freshSubset}}}},
			"route": []any{map[string]any{"destination": map[string]any{"host": verify.BackendHost, "subset": freshSubset}}},
		},
		map[string]any{"route": []any{rest}},
	}
	obj := func(kind string, spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "networking.istio.io/v1", "kind": kind,
			"metadata": map[string]any{"name": "backend-propagation", "namespace": verify.AppNamespace},
			"spec":     spec,
		}}
	}
	return []*unstructured.Unstructured{
		obj("DestinationRule", map[string]any{"host": verify.BackendHost, "subsets": subsets}),
		obj("VirtualService", map[string]any{"hosts": []any{verify.BackendHost}, "http": routes}),
	}
}

// freshPodTemplate is the backend's v2 pod template as deployed in cl
// (its image, pull secret, security context and environment), labelled
// for the fresh subset: a pod of it is one more backend endpoint, which
// only calls carrying freshHeader reach.
func freshPodTemplate(ctx context.Context, cl *clusters.Cluster) corev1.PodTemplateSpec {
	GinkgoHelper()
	var d appsv1.Deployment
	Expect(cl.Client.Resources().Get(ctx, "backend-v2", verify.AppNamespace, &d)).To(Succeed())
	t := *d.Spec.Template.DeepCopy()
	t.Labels["version"] = freshSubset
	return t
}

// podReadyAt waits for the pod to be Ready and returns when it was first
// seen so (polled every 20 ms, a few seconds at most): the moment its
// endpoint exists, give or take the poll.
func podReadyAt(ctx context.Context, cl *clusters.Cluster, name string) time.Time {
	GinkgoHelper()
	var at time.Time
	Expect(poll.Until(ctx, 3*time.Minute, 20*time.Millisecond, func(ctx context.Context) error {
		var p corev1.Pod
		if err := cl.Client.Resources(verify.AppNamespace).Get(ctx, name, verify.AppNamespace, &p); err != nil {
			return err
		}
		if err := checks.NotReady(p); err != nil {
			return err
		}
		at = time.Now()
		return nil
	})).To(Succeed(), "pod %s in %s Ready", name, cl.Name)
	return at
}

// deletePodIfThere deletes an app pod of cl unless it is gone already.
func deletePodIfThere(ctx context.Context, cl *clusters.Cluster, name string) error {
	err := workloads.DeletePod(ctx, cl.Client, verify.AppNamespace, name)
	if apierrors.IsNotFound(errors.Unwrap(err)) {
		return nil
	}
	return err
}
