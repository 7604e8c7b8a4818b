package clusters

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshconform/meshconform/e2e/poll"
)

// NotReady lists what keeps a cluster from being ready: nodes not Ready and
// kube-system pods not Running with all containers ready. Empty means ready.
func NotReady(ctx context.Context, cl *Cluster) ([]string, error) {
	var nodes corev1.NodeList
	if err := cl.Client.Resources().List(ctx, &nodes); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var problems []string
	if len(nodes.Items) == 0 {
		problems = append(problems, "no nodes registered")
	}
	for _, n := range nodes.Items {
		if !nodeReady(n) {
			problems = append(problems, "node "+n.Name+" not Ready")
		}
	}
	var pods corev1.PodList
	if err := cl.Client.Resources("kube-system").List(ctx, &pods); err != nil {
		return nil, fmt.Errorf("list kube-system pods: %w", err)
	}
	if len(pods.Items) == 0 {
		problems = append(problems, "no kube-system pods yet")
	}
	for _, p := range pods.Items {
		if why := podNotReady(p); why != "" {
			problems = append(problems, "pod kube-system/"+p.Name+" "+why)
		}
	}
	sort.Strings(problems)
	return problems, nil
}

func nodeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podNotReady says why a pod is not Running and ready ("" if it is), with
// the waiting reason of a container when there is one (ImagePullBackOff…).
func podNotReady(p corev1.Pod) string {
	if p.Status.Phase != corev1.PodRunning {
		return fmt.Sprintf("is %s%s", p.Status.Phase, waitingReasons(p))
	}
	for _, cs := range p.Status.ContainerStatuses {
		if !cs.Ready {
			return fmt.Sprintf("container %s not ready%s", cs.Name, waitingReasons(p))
		}
	}
	return ""
}

func waitingReasons(p corev1.Pod) string {
	var rs []string
	for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			rs = append(rs, cs.Name+": "+w.Reason)
		}
	}
	if len(rs) == 0 {
		return ""
	}
	return " (" + strings.Join(rs, ", ") + ")"
}

// WaitReady waits until NotReady is empty, up to timeout; its error lists
// what was still not ready.
func WaitReady(ctx context.Context, cl *Cluster, timeout time.Duration) error {
	err := poll.Until(ctx, timeout, 2*time.Second, func(ctx context.Context) error {
		// API errors are retried: the apiserver may restart during startup.
		left, err := NotReady(ctx, cl)
		if err != nil {
			return err
		}
		if len(left) > 0 {
			return errors.New(strings.Join(left, "; "))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster %s not ready: %w", cl.Name, err)
	}
	return nil
}
