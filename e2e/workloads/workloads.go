// Package workloads applies the manifests in fixtures/ to a cluster, with
// the namespace and the images of this run filled in, and runs commands in
// the pods they make.
package workloads

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/klient/decoder"
	"sigs.k8s.io/e2e-framework/klient/k8s"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/poll"
)

// Images maps an image name used in fixtures (e.g. "meshconform/probe") to
// the reference this run built or chose for it.
type Images map[string]string

// Overrides are what a run fills into fixtures: the images it built and
// environment variables for every container (a cluster's name and
// locality, which a pod cannot read for itself).
type Overrides struct {
	Images Images
	Env    map[string]string
	// PodLabels are added to every pod the workload makes (a cluster's
	// istio-locality, where its nodes carry none).
	PodLabels map[string]string
	// PullSecret, when set, is put into the namespace first and named by
	// every pod (the sample apps pulled from the user's registry).
	PullSecret *PullSecret
}

// SetImages rewrites the images of a workload's containers; an image that is
// a key of imgs becomes its value. Objects without pods pass unchanged.
func SetImages(obj k8s.Object, imgs Images) error {
	spec := podSpec(obj)
	if spec == nil {
		return nil
	}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			if ref, ok := imgs[cs[i].Image]; ok {
				cs[i].Image = ref
			} else if strings.HasPrefix(cs[i].Image, "meshconform/") {
				return fmt.Errorf("%s %s: no image built for %s", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), cs[i].Image)
			}
		}
	}
	return nil
}

// SetEnv adds env to every container of a workload, before the variables
// its manifest sets (so a manifest can still refer to them).
func SetEnv(obj k8s.Object, env map[string]string) {
	spec := podSpec(obj)
	if spec == nil || len(env) == 0 {
		return
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var add []corev1.EnvVar
	for _, k := range keys {
		add = append(add, corev1.EnvVar{Name: k, Value: env[k]})
	}
	for i := range spec.Containers {
		// The istio-proxy overlay is Istio's container, not the app's.
		if spec.Containers[i].Name == ProxyOverlay {
			continue
		}
		spec.Containers[i].Env = append(append([]corev1.EnvVar(nil), add...), spec.Containers[i].Env...)
	}
}

// ProxyOverlay is the name of the container the injector adds, which the
// sample apps also declare: Istio merges the declared one into the one it
// injects (its securityContext, for restricted Pod Security).
const ProxyOverlay = "istio-proxy"

// Scale sets a Deployment's replicas, retrying when the controller updated
// the Deployment in between (a conflict is expected right after a scale).
func Scale(ctx context.Context, c klient.Client, ns, name string, replicas int32) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var d appsv1.Deployment
		if err := c.Resources(ns).Get(ctx, name, ns, &d); err != nil {
			return err
		}
		d.Spec.Replicas = &replicas
		return c.Resources(ns).Update(ctx, &d)
	})
	if err != nil {
		return fmt.Errorf("scale deployment %s/%s to %d: %w", ns, name, replicas, err)
	}
	return nil
}

func podSpec(obj k8s.Object) *corev1.PodSpec {
	spec, _ := podSpecAt(obj)
	return spec
}

// podSpecAt returns a workload's pod spec and where it sits in the
// object's JSON; nil for objects without pods.
func podSpecAt(obj k8s.Object) (*corev1.PodSpec, []string) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return &o.Spec, []string{"spec"}
	case *appsv1.Deployment:
		return &o.Spec.Template.Spec, []string{"spec", "template", "spec"}
	case *appsv1.StatefulSet:
		return &o.Spec.Template.Spec, []string{"spec", "template", "spec"}
	case *appsv1.DaemonSet:
		return &o.Spec.Template.Spec, []string{"spec", "template", "spec"}
	}
	return nil, nil
}

// RunLabel marks every namespace a run creates with the run's ID, so a
// clean-up on clusters the user brought removes exactly what this run made
// and nothing else (the harness removes them on brought clusters).
const RunLabel = "meshconform.io/run"

// RunLabels are the labels a run stamps on every namespace it creates:
// RunLabel with the run's ID, and what the namespace's pods must pass (Pod
// Security) and the user's cluster wants (With). The harness makes them
// once per run (harness.Harness.RunLabels) and whoever creates a namespace
// passes them to CreateNamespace. Empty (no run) stamps nothing.
type RunLabels map[string]string

// ForRun are the labels of the run with that ID ("": none).
func ForRun(id string) RunLabels {
	if id == "" {
		return RunLabels{}
	}
	return RunLabels{RunLabel: id}
}

// With is r and the labels of each of more; r's own win.
func (r RunLabels) With(more ...map[string]string) RunLabels {
	out := RunLabels{}
	for _, m := range more {
		maps.Copy(out, m)
	}
	maps.Copy(out, r)
	return out
}

// Selector selects the run's namespaces by its ID alone.
func (r RunLabels) Selector() string {
	if id, ok := r[RunLabel]; ok {
		return RunLabel + "=" + id
	}
	return ""
}

// CreateNamespace creates ns with labels and the run's labels.
func CreateNamespace(ctx context.Context, c klient.Client, run RunLabels, ns string, labels map[string]string) error {
	all := map[string]string{}
	for k, v := range run {
		all[k] = v
	}
	for k, v := range labels {
		all[k] = v
	}
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: all}}
	if err := c.Resources().Create(ctx, obj); err != nil {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return nil
}

// Exec runs cmd in a pod's container and returns its stdout; the error
// carries stderr.
func Exec(ctx context.Context, c klient.Client, ns, pod, container string, cmd ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	if err := c.Resources().ExecInPod(ctx, ns, pod, container, cmd, &stdout, &stderr); err != nil {
		return stdout.String(), fmt.Errorf("exec %q in %s/%s: %w: %s", strings.Join(cmd, " "), ns, pod, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// ApplyFile creates every object of a manifest file, each in the namespace
// its manifest names; objects that already exist are left as they are, so
// a repeated install is harmless.
func ApplyFile(ctx context.Context, c klient.Client, path string) error {
	err := decoder.DecodeEachFile(ctx, os.DirFS(filepath.Dir(path)), filepath.Base(path),
		decoder.CreateIgnoreAlreadyExists(c.Resources()))
	if err != nil {
		return fmt.Errorf("apply %s: %w", path, err)
	}
	return nil
}

// CreateIfMissing creates obj unless it exists.
func CreateIfMissing(ctx context.Context, c klient.Client, obj k8s.Object) error {
	if err := c.Resources().Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create %s %s/%s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// DeleteNamespace deletes ns and waits until it is gone.
func DeleteNamespace(ctx context.Context, c klient.Client, ns string) error {
	if err := StartDeletingNamespace(ctx, c, ns); err != nil {
		return err
	}
	err := poll.Until(ctx, 3*time.Minute, time.Second, func(ctx context.Context) error {
		var n corev1.Namespace
		err := c.Resources().Get(ctx, ns, "", &n)
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		return fmt.Errorf("namespace %s still exists (%s)", ns, n.Status.Phase)
	})
	if err != nil {
		return fmt.Errorf("wait for namespace %s to be gone: %w", ns, err)
	}
	return nil
}

// StartDeletingNamespace deletes ns and its pods at once, without waiting
// for the namespace to be gone (whoever needs it gone waits: DeleteNamespace,
// or a teardown that waits for all of a run's namespaces together).
func StartDeletingNamespace(ctx context.Context, c klient.Client, ns string) error {
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	// Conflict: already being deleted, which is what is asked.
	if err := c.Resources().Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete namespace %s: %w", ns, err)
	}
	// The namespace is going: its pods need no graceful end. Without this
	// the namespace controller waits out each pod's drain and grace period
	// and retries on a backoff: 20-25 s for the sample apps, now a few.
	var pods corev1.PodList
	if err := c.Resources(ns).List(ctx, &pods); err == nil {
		for i := range pods.Items {
			_ = c.Resources(ns).Delete(ctx, &pods.Items[i], resources.WithGracePeriod(0))
		}
	}
	return nil
}

// Namespace names a namespace of one cluster.
type Namespace struct {
	Client klient.Client
	Name   string
}

// DeleteNamespaces deletes namespaces, of one cluster or several, side by
// side and waits until all are gone: each deletion waits on its pods'
// termination and on the namespace controller's retries, which overlap
// instead of adding up.
func DeleteNamespaces(ctx context.Context, nss ...Namespace) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, ns := range nss {
		g.Go(func() error { return DeleteNamespace(gctx, ns.Client, ns.Name) })
	}
	return g.Wait()
}

// WaitReady waits until every pod of ns matching selector is Ready and
// there are want of them.
func WaitReady(ctx context.Context, c klient.Client, ns, selector string, want int, timeout time.Duration) error {
	err := poll.Until(ctx, timeout, time.Second, func(ctx context.Context) error {
		var pods corev1.PodList
		if err := c.Resources(ns).List(ctx, &pods, resources.WithLabelSelector(selector)); err != nil {
			return err
		}
		ready := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && checks.PodReady(p) {
				ready++
			}
		}
		if ready == want && len(pods.Items) == want {
			return nil
		}
		return fmt.Errorf("%d of %d pods ready (%d wanted)", ready, len(pods.Items), want)
	})
	if err != nil {
		return fmt.Errorf("wait for pods %s in %s to be ready: %w", selector, ns, err)
	}
	return nil
}

// Terminating lists the pods of ns matching selector ("" = every pod)
// that are being deleted.
func Terminating(ctx context.Context, c klient.Client, ns, selector string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := c.Resources(ns).List(ctx, &pods, resources.WithLabelSelector(selector)); err != nil {
		return nil, fmt.Errorf("list pods %s in %s: %w", selector, ns, err)
	}
	var out []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// WaitNoneTerminating waits until no pod of ns is being deleted: after a
// rollout, only the pods that should serve are left.
func WaitNoneTerminating(ctx context.Context, c klient.Client, ns string, timeout time.Duration) error {
	err := poll.Until(ctx, timeout, time.Second, func(ctx context.Context) error {
		pods, err := Terminating(ctx, c, ns, "")
		if err != nil {
			return err
		}
		if len(pods) > 0 {
			left := make([]string, len(pods))
			for i, p := range pods {
				left[i] = p.Name
			}
			return fmt.Errorf("still terminating: %v", left)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("wait for no pod of %s terminating: %w", ns, err)
	}
	return nil
}

// Replace creates obj, or replaces the existing object's content with it
// (Istio's CRDs too, as unstructured objects).
func Replace(ctx context.Context, c klient.Client, obj k8s.Object) error {
	// An object read from the API carries a resourceVersion, which Create
	// refuses.
	obj.SetResourceVersion("")
	err := c.Resources().Create(ctx, obj)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		existing := obj.DeepCopyObject().(k8s.Object)
		if err := c.Resources().Get(ctx, obj.GetName(), obj.GetNamespace(), existing); err != nil {
			return err
		}
		obj.SetResourceVersion(existing.GetResourceVersion())
		return c.Resources().Update(ctx, obj)
	})
}

// RestartDeployment restarts a Deployment's pods the way `kubectl rollout
// restart` does, and waits until the rollout is complete.
func RestartDeployment(ctx context.Context, c klient.Client, ns, name string, timeout time.Duration) error {
	return UpdateDeployment(ctx, c, ns, name, timeout, func(d *appsv1.Deployment) {
		if d.Spec.Template.Annotations == nil {
			d.Spec.Template.Annotations = map[string]string{}
		}
		d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] = time.Now().Format(time.RFC3339Nano)
	})
}

// UpdateDeployment changes a Deployment with mutate (retrying on
// conflicts) and waits until the rollout is complete: every replica
// updated and available, and no old pod counted. An old pod still
// terminating is not counted (a Deployment's status leaves it out): wait
// for it with WaitNoneTerminating where it matters.
func UpdateDeployment(ctx context.Context, c klient.Client, ns, name string, timeout time.Duration, mutate func(*appsv1.Deployment)) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var d appsv1.Deployment
		if err := c.Resources(ns).Get(ctx, name, ns, &d); err != nil {
			return err
		}
		mutate(&d)
		return c.Resources(ns).Update(ctx, &d)
	})
	if err != nil {
		return fmt.Errorf("update deployment %s/%s: %w", ns, name, err)
	}
	err = poll.Until(ctx, timeout, time.Second, func(ctx context.Context) error {
		var d appsv1.Deployment
		if err := c.Resources(ns).Get(ctx, name, ns, &d); err != nil {
			return err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		if s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.AvailableReplicas == want && s.Replicas == want {
			return nil
		}
		return fmt.Errorf("%d updated, %d available, %d total of %d (generation %d observed %d)", s.UpdatedReplicas, s.AvailableReplicas, s.Replicas, want, d.Generation, s.ObservedGeneration)
	})
	if err != nil {
		return fmt.Errorf("wait for the rollout of %s/%s: %w", ns, name, err)
	}
	return nil
}

// SetContainerEnv sets one environment variable of a container of the
// Deployment's pods.
func SetContainerEnv(d *appsv1.Deployment, container, name, value string) {
	for i := range d.Spec.Template.Spec.Containers {
		c := &d.Spec.Template.Spec.Containers[i]
		if c.Name != container {
			continue
		}
		for j := range c.Env {
			if c.Env[j].Name == name {
				c.Env[j] = corev1.EnvVar{Name: name, Value: value}
				return
			}
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
	}
}

// DeletePod deletes a pod with its own grace period, as a node drain or a
// crash-free eviction would.
func DeletePod(ctx context.Context, c klient.Client, ns, name string) error {
	if err := c.Resources(ns).Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}); err != nil {
		return fmt.Errorf("delete pod %s/%s: %w", ns, name, err)
	}
	return nil
}
