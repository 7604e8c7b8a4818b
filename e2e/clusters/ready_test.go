package clusters

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPodNotReadyNamesTheReason(t *testing.T) {
	p := corev1.Pod{Status: corev1.PodStatus{
		Phase: corev1.PodPending,
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "coredns", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}},
		}},
	}}
	if got := podNotReady(p); got != "is Pending (coredns: ImagePullBackOff)" {
		t.Errorf("got %q", got)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.ContainerStatuses[0].State = corev1.ContainerState{}
	if got := podNotReady(p); got != "container coredns not ready" {
		t.Errorf("got %q", got)
	}
	p.Status.ContainerStatuses[0].Ready = true
	if got := podNotReady(p); got != "" {
		t.Errorf("ready pod reported %q", got)
	}
}
