// Package workloads applies the manifests in fixtures/ to a cluster, with
// the namespace and the images of this run filled in, and runs commands in
// the pods they make.
package workloads

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/klient/decoder"
	"sigs.k8s.io/e2e-framework/klient/k8s"
)

// Images maps an image name used in fixtures (e.g. "meshconform/probe") to
// the reference this run built or chose for it.
type Images map[string]string

// Apply creates every object of the manifests matching pattern in dir, in
// namespace ns, with fixture image names replaced per imgs.
func Apply(ctx context.Context, c klient.Client, dir, pattern, ns string, imgs Images) error {
	err := decoder.DecodeEachFile(ctx, os.DirFS(dir), pattern,
		decoder.CreateHandler(c.Resources(ns)),
		decoder.MutateNamespace(ns),
		decoder.MutateOption(func(obj k8s.Object) error { return SetImages(obj, imgs) }))
	if err != nil {
		return fmt.Errorf("apply %s/%s to namespace %s: %w", dir, pattern, ns, err)
	}
	return nil
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

func podSpec(obj k8s.Object) *corev1.PodSpec {
	switch o := obj.(type) {
	case *corev1.Pod:
		return &o.Spec
	case *appsv1.Deployment:
		return &o.Spec.Template.Spec
	case *appsv1.StatefulSet:
		return &o.Spec.Template.Spec
	case *appsv1.DaemonSet:
		return &o.Spec.Template.Spec
	}
	return nil
}

// CreateNamespace creates ns with labels.
func CreateNamespace(ctx context.Context, c klient.Client, ns string, labels map[string]string) error {
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}
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
