// Package dump writes what a person needs to debug a failed run into the
// artifacts directory: every pod with its status, events, and container logs
// of the namespaces that matter. Secrets are never read.
package dump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/e2e-framework/klient"
)

// TailLines is how much of each container's log is kept.
const TailLines = 500

// Cluster writes dir/pods.txt, dir/events.txt and dir/logs/<ns>/<pod>/<container>.log
// for every namespace except kube-* and local-path-storage (kind's log bundle
// has those), or only for the namespaces named: on a cluster the user
// brought, the run's own and Istio's, never the user's workloads. It
// collects as much as it can and returns every error.
func Cluster(ctx context.Context, dir string, c klient.Client, only ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	var pods corev1.PodList
	var events corev1.EventList
	if len(only) == 0 {
		if err := c.Resources().List(ctx, &pods); err != nil {
			return fmt.Errorf("list pods: %w", err)
		}
		if err := c.Resources().List(ctx, &events); err != nil {
			errs = append(errs, fmt.Errorf("list events: %w", err))
		}
	}
	for _, ns := range only {
		var p corev1.PodList
		var e corev1.EventList
		errs = append(errs, c.Resources(ns).List(ctx, &p), c.Resources(ns).List(ctx, &e))
		pods.Items, events.Items = append(pods.Items, p.Items...), append(events.Items, e.Items...)
	}
	errs = append(errs, writePods(filepath.Join(dir, "pods.txt"), pods.Items),
		writeEvents(filepath.Join(dir, "events.txt"), events.Items))
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, p := range pods.Items {
		if strings.HasPrefix(p.Namespace, "kube-") || p.Namespace == "local-path-storage" {
			continue
		}
		for _, ctr := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			errs = append(errs, writeLog(ctx, cs, filepath.Join(dir, "logs", p.Namespace, p.Name, ctr.Name+".log"), p, ctr.Name))
		}
	}
	return errors.Join(errs...)
}

func writePods(path string, pods []corev1.Pod) error {
	sort.Slice(pods, func(i, j int) bool {
		return pods[i].Namespace+"/"+pods[i].Name < pods[j].Namespace+"/"+pods[j].Name
	})
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := tabwriter.NewWriter(f, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAMESPACE\tNAME\tPHASE\tREADY\tRESTARTS\tNODE\tIP\tWAITING")
	for _, p := range pods {
		ready, restarts := 0, int32(0)
		var waiting []string
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready {
				ready++
			}
			restarts += cs.RestartCount
			if cs.State.Waiting != nil {
				waiting = append(waiting, cs.Name+":"+cs.State.Waiting.Reason)
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%d\t%s\t%s\t%s\n", p.Namespace, p.Name, p.Status.Phase, ready,
			len(p.Spec.Containers), restarts, p.Spec.NodeName, p.Status.PodIP, strings.Join(waiting, ","))
	}
	return w.Flush()
}

func writeEvents(path string, events []corev1.Event) error {
	sort.Slice(events, func(i, j int) bool { return eventTime(events[i]) < eventTime(events[j]) })
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, e := range events {
		fmt.Fprintf(f, "%s %s %s/%s %s: %s (x%d)\n", eventTime(e), e.Type, e.InvolvedObject.Kind,
			e.Namespace+"/"+e.InvolvedObject.Name, e.Reason, strings.TrimSpace(e.Message), max(e.Count, 1))
	}
	return nil
}

func eventTime(e corev1.Event) string {
	t := e.LastTimestamp.Time
	if t.IsZero() {
		t = e.EventTime.Time
	}
	return t.UTC().Format("15:04:05")
}

func writeLog(ctx context.Context, cs kubernetes.Interface, path string, p corev1.Pod, container string) error {
	tail := int64(TailLines)
	req := cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: container, TailLines: &tail})
	stream, err := req.Stream(ctx)
	if err != nil {
		return nil // a container that never started has no log; pods.txt says why
	}
	defer stream.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, stream)
	return err
}
