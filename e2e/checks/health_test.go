package checks

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func pod(name string, ready bool, restarts int32, waiting string) corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	cs := corev1.ContainerStatus{Name: "c", RestartCount: restarts}
	if waiting != "" {
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: waiting}
	}
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{
		Phase:             corev1.PodRunning,
		Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: st}},
		ContainerStatuses: []corev1.ContainerStatus{cs},
	}}
}

func TestPodsHealthy(t *testing.T) {
	if err := PodsHealthy("kube-system in c1", []corev1.Pod{pod("a", true, 0, ""), pod("b", true, 0, "")}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, PodsHealthy("kube-system in c1", nil), "no pods")
	// CrashLoopBackOff keeps phase Running: the old check passed it.
	wantErr(t, PodsHealthy("kube-system in c1", []corev1.Pod{pod("a", true, 0, ""), pod("coredns-x", false, 4, "CrashLoopBackOff")}),
		"1 of 2 pods unhealthy", "coredns-x: not Ready (phase Running)", "restarted 4 times", "waiting: CrashLoopBackOff")
	// Ready now, but it restarted: flapping.
	wantErr(t, PodsHealthy("x", []corev1.Pod{pod("etcd", true, 1, "")}), "etcd: container c restarted 1 times")
}

// A pod that cannot pull its image must say which image and why, not only
// "Pending"; a Ready pod has nothing to say.
func TestNotReady(t *testing.T) {
	pending := corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{
		{Name: "app", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
		{Name: "istio-proxy", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "docker.io/istio/proxyv2:1.29.2"`}}},
	}}}
	err := NotReady(pending)
	if err == nil {
		t.Fatal("a pending pod passed")
	}
	for _, want := range []string{"phase Pending", "container istio-proxy waiting: ImagePullBackOff", "docker.io/istio/proxyv2:1.29.2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	ready := corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	if err := NotReady(ready); err != nil {
		t.Errorf("a Ready pod: %v", err)
	}
}
