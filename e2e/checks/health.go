package checks

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// PodsHealthy rejects a platform whose system pods are failing even though
// their phase says Running: every pod must exist (an empty list fails), be
// Ready, and no container may have restarted (a CrashLoopBackOff pod stays
// in phase Running). Pods that finished (Succeeded) are fine.
func PodsHealthy(where string, pods []corev1.Pod) error {
	if len(pods) == 0 {
		return fmt.Errorf("%s: no pods", where)
	}
	var bad []string
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded {
			continue
		}
		var why []string
		if !PodReady(p) {
			why = append(why, fmt.Sprintf("not Ready (phase %s)", p.Status.Phase))
		}
		for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			if cs.RestartCount > 0 {
				last := ""
				if t := cs.LastTerminationState.Terminated; t != nil {
					last = fmt.Sprintf(", last exit %d %s", t.ExitCode, t.Reason)
				}
				why = append(why, fmt.Sprintf("container %s restarted %d times%s", cs.Name, cs.RestartCount, last))
			}
		}
		why = append(why, waiting(p, false)...)
		if len(why) > 0 {
			bad = append(bad, p.Name+": "+strings.Join(why, "; "))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%s: %d of %d pods unhealthy: %s", where, len(bad), len(pods), strings.Join(bad, " | "))
	}
	return nil
}

// NotReady says why a pod is not Ready, nil when it is: its phase and
// what each container waits on, with the kubelet's message (an image that
// cannot be pulled names the image and the registry's answer).
func NotReady(p corev1.Pod) error {
	if PodReady(p) {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(append([]string{fmt.Sprintf("not Ready (phase %s)", p.Status.Phase)}, waiting(p, true)...), "; "))
}

// waiting is what the pod's containers wait on, past their creation.
func waiting(p corev1.Pod, messages bool) []string {
	var why []string
	for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		w := cs.State.Waiting
		if w == nil || w.Reason == "" || w.Reason == "PodInitializing" || w.Reason == "ContainerCreating" {
			continue
		}
		line := fmt.Sprintf("container %s waiting: %s", cs.Name, w.Reason)
		if messages && w.Message != "" {
			line += " (" + w.Message + ")"
		}
		why = append(why, line)
	}
	return why
}

// PodReady reports whether the pod's Ready condition is true.
func PodReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
