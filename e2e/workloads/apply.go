package workloads

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/klient/k8s"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
	"sigs.k8s.io/yaml"

	"github.com/meshconform/meshconform/e2e/checks"
)

// FieldManager is the field manager of every object the suite applies: an
// object is ours when it has a server-side apply entry of this manager
// (Owned), and only ours are changed or deleted.
const FieldManager = "meshconform"

// ApplyFS server-side applies, as FieldManager, every object of the
// manifests matching pattern in fsys: in namespace ns when ns is not ""
// and the object is namespaced, with o filled in. Pass the fs.FS the
// expectations are read from (fixtures/conformance's Manifests), so the
// mesh gets the very bytes the checks judge by.
//
// An object that exists and is not ours is left alone and refused with an
// error: the suite neither changes nor later deletes what it did not make.
// Over objects of ours ownership is forced, so a re-apply puts back fields
// another manager changed since (replicas after Scale, say); for a new
// object it is not, so one someone else creates between our read and our
// apply conflicts (on every field it sets differently) instead of being
// taken over.
func ApplyFS(ctx context.Context, c klient.Client, fsys fs.FS, pattern, ns string, o Overrides) error {
	objs, err := render(fsys, pattern, ns, o)
	if err == nil {
		for _, obj := range objs {
			if isPullSecret(obj) {
				err = createPullSecret(ctx, c, obj)
			} else {
				err = apply(ctx, c, obj)
			}
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("apply %s to namespace %q: %w", pattern, ns, err)
	}
	return nil
}

// ApplyObject server-side applies one object as ApplyFS applies each of a
// manifest's, with the same refusal of objects not ours: for an object a
// caller renders or changes itself (a fixture with a fault seeded into
// it). Replace, an update, would take from FieldManager every field it
// changes, and with all of them an object stops being ours (a
// PeerAuthentication whose one field, mtls.mode, changed), so DeleteFS
// would later refuse it.
func ApplyObject(ctx context.Context, c klient.Client, obj *unstructured.Unstructured) error {
	return apply(ctx, c, obj.DeepCopy())
}

// DeleteObject deletes one object — named by its kind, namespace and name
// — as DeleteFS deletes each of a manifest's, if it is ours: one gone
// already is fine, one that is not ours is left and refused with an error
// naming its managers. opts add to the deletion (a grace period); it is
// bound to the UID judged ours whatever they say.
func DeleteObject(ctx context.Context, c klient.Client, obj *unstructured.Unstructured, opts ...resources.DeleteOption) error {
	return remove(ctx, c, obj.DeepCopy(), opts...)
}

// DeleteFS deletes every object of the manifests matching pattern in fsys
// from namespace ns (as ApplyFS places them), last first, if it is ours.
// An object already gone is fine; one that is not ours is left and named in
// the error, after the others are deleted.
func DeleteFS(ctx context.Context, c klient.Client, fsys fs.FS, pattern, ns string) error {
	objs, err := manifests(fsys, pattern, ns)
	if err != nil {
		return fmt.Errorf("delete %s from namespace %q: %w", pattern, ns, err)
	}
	var errs []error
	for i := len(objs) - 1; i >= 0; i-- {
		if err := remove(ctx, c, objs[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete %s from namespace %q: %w", pattern, ns, err)
	}
	return nil
}

// Owned tells whether obj is ours: whether FieldManager server-side
// applied it. managers lists every entry of its managedFields as
// "manager (operation)", for the error that refuses it. The operation
// counts, not only the name: a client that sets no field manager gets its
// binary's name, so an Update by cmd/meshconform is also recorded as
// "meshconform", on objects it may not have made.
func Owned(obj metav1.Object) (ours bool, managers []string) {
	seen := map[string]bool{}
	for _, e := range obj.GetManagedFields() {
		if e.Manager == FieldManager && e.Operation == metav1.ManagedFieldsOperationApply {
			ours = true
		}
		m := fmt.Sprintf("%s (%s)", e.Manager, e.Operation)
		if !seen[m] {
			seen[m] = true
			managers = append(managers, m)
		}
	}
	return ours, managers
}

// apply server-side applies obj if it is new or ours.
func apply(ctx context.Context, c klient.Client, obj *unstructured.Unstructured) error {
	if err := place(c, obj); err != nil {
		return err
	}
	existing := &unstructured.Unstructured{}
	existing.SetGroupVersionKind(obj.GroupVersionKind())
	force := false
	switch err := c.Resources().Get(ctx, obj.GetName(), obj.GetNamespace(), existing); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("read %s: %w", describe(obj), err)
	default:
		if ours, managers := Owned(existing); !ours {
			return notOurs(obj, managers, "change or later delete")
		}
		force = true
	}
	body, err := obj.MarshalJSON()
	if err != nil {
		return fmt.Errorf("%s: %w", describe(obj), err)
	}
	// The response is decoded into the object patched: a copy keeps obj
	// as rendered.
	err = retry.OnError(webhookBackoff, istioWebhookUnreachable, func() error {
		return c.Resources().Patch(ctx, obj.DeepCopy(), k8s.Patch{PatchType: types.ApplyPatchType, Data: body},
			func(po *metav1.PatchOptions) {
				po.FieldManager = FieldManager
				po.Force = &force
			})
	})
	if err != nil {
		if why, ok := checks.IstioWebhookUnreachable(err); ok {
			return fmt.Errorf("server-side apply %s (force %t): %s, still after retrying for about %s (is istiod running?): %w", describe(obj), force, why, webhookRetry, err)
		}
		return fmt.Errorf("server-side apply %s (force %t): %w", describe(obj), force, err)
	}
	return nil
}

// An apply that Istio's webhooks cannot judge is tried again for about
// webhookRetry: while istiod restarts (a rollout, a changed setting) its
// old pod shuts its webhook server down before its address stops being
// routed to, and the API server refuses writes of Istio's kinds,
// "connection refused". Any other refusal, a webhook's denial included, is
// returned at once.
const webhookRetry = time.Minute

// webhookBackoff spreads the tries over about webhookRetry: 1 s, growing
// to 5 s, 15 of them.
var webhookBackoff = wait.Backoff{Duration: time.Second, Factor: 1.5, Cap: 5 * time.Second, Steps: 15}

func istioWebhookUnreachable(err error) bool {
	_, ok := checks.IstioWebhookUnreachable(err)
	return ok
}

// remove deletes obj if it exists and is ours; the deletion is bound to
// the UID that was judged ours.
func remove(ctx context.Context, c klient.Client, obj *unstructured.Unstructured, opts ...resources.DeleteOption) error {
	if err := place(c, obj); err != nil {
		return err
	}
	existing := &unstructured.Unstructured{}
	existing.SetGroupVersionKind(obj.GroupVersionKind())
	if err := c.Resources().Get(ctx, obj.GetName(), obj.GetNamespace(), existing); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read %s: %w", describe(obj), err)
	}
	if ours, managers := Owned(existing); !ours {
		return notOurs(obj, managers, "delete")
	}
	uid := existing.GetUID()
	opts = append(slices.Clip(opts), func(do *metav1.DeleteOptions) {
		do.Preconditions = &metav1.Preconditions{UID: &uid}
	})
	err := c.Resources().Delete(ctx, obj.DeepCopy(), opts...)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s: %w", describe(obj), err)
	}
	return nil
}

// place drops the namespace of a cluster-scoped object (as the API server
// would) and refuses a namespaced one that no one gave a namespace.
func place(c klient.Client, obj *unstructured.Unstructured) error {
	namespaced, err := c.Resources().GetControllerRuntimeClient().IsObjectNamespaced(obj)
	if err != nil {
		return fmt.Errorf("%s: %w", describe(obj), err)
	}
	if !namespaced {
		obj.SetNamespace("")
	} else if obj.GetNamespace() == "" {
		return fmt.Errorf("%s is namespaced, but neither its manifest nor the caller names a namespace", describe(obj))
	}
	return nil
}

func notOurs(obj *unstructured.Unstructured, managers []string, what string) error {
	by := "no field manager recorded"
	if len(managers) > 0 {
		by = "managed by " + strings.Join(managers, ", ")
	}
	return fmt.Errorf("%s exists and was not created by %s (%s): refusing to %s it", describe(obj), FieldManager, by, what)
}

// describe names an object as "Kind namespace/name", or "Kind name" when
// cluster-scoped.
func describe(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() == "" {
		return obj.GetKind() + " " + obj.GetName()
	}
	return fmt.Sprintf("%s %s/%s", obj.GetKind(), obj.GetNamespace(), obj.GetName())
}

// render returns the objects ApplyFS applies, in the order of the files
// (sorted by name) and of their documents: the manifests as written, in
// namespace ns, with o filled into the images and environment of workloads
// and nothing else added (a typed round trip would add the zero values of
// every field the manifest leaves out: status, creationTimestamp: null).
func render(fsys fs.FS, pattern, ns string, o Overrides) ([]*unstructured.Unstructured, error) {
	objs, err := manifests(fsys, pattern, ns)
	if err != nil {
		return nil, err
	}
	var secrets []*unstructured.Unstructured
	seen := map[string]bool{}
	for _, obj := range objs {
		pods, err := override(obj, o)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", describe(obj), err)
		}
		// The pull secret goes first into each namespace whose pods name it.
		if pods && o.PullSecret != nil && !seen[obj.GetNamespace()] {
			seen[obj.GetNamespace()] = true
			secrets = append(secrets, o.PullSecret.object(obj.GetNamespace()))
		}
	}
	return append(secrets, objs...), nil
}

// manifests decodes every document of the files matching pattern in fsys,
// skipping empty ones (only comments), and sets the namespace of each to
// ns unless ns is "" (as the e2e-framework's decoder.MutateNamespace did).
func manifests(fsys fs.FS, pattern, ns string) ([]*unstructured.Unstructured, error) {
	files, err := fs.Glob(fsys, pattern)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no manifest matches %q", pattern)
	}
	var objs []*unstructured.Unstructured
	for _, file := range files {
		docs, err := documents(fsys, file)
		if err != nil {
			return nil, err
		}
		for i, doc := range docs {
			js, err := yaml.YAMLToJSON(doc)
			if err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", file, i+1, err)
			}
			if s := strings.TrimSpace(string(js)); s == "null" || s == "{}" {
				continue
			}
			obj := &unstructured.Unstructured{}
			if err := obj.UnmarshalJSON(js); err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", file, i+1, err)
			}
			if obj.GetName() == "" {
				return nil, fmt.Errorf("%s: document %d: %s without a name", file, i+1, obj.GetKind())
			}
			if ns != "" {
				obj.SetNamespace(ns)
			}
			objs = append(objs, obj)
		}
	}
	return objs, nil
}

// documents splits a YAML file into its documents.
func documents(fsys fs.FS, file string) ([][]byte, error) {
	f, err := fsys.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		docs = append(docs, doc)
	}
}

// override fills o into a workload (SetEnv, SetImages) and writes back
// into obj the fields they may change: each container's image and, when
// o has any, env. Objects without pods (Services, Istio's CRDs) pass
// unchanged.
func override(obj *unstructured.Unstructured, o Overrides) (pods bool, err error) {
	typed, err := scheme.Scheme.New(obj.GroupVersionKind())
	if runtime.IsNotRegisteredError(err) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	w, ok := typed.(k8s.Object)
	if !ok {
		return false, nil
	}
	if spec, _ := podSpecAt(w); spec == nil {
		return false, nil
	}
	return true, overridePods(obj, w, o)
}

// overridePods fills o into obj, a workload with pods (w is it typed).
func overridePods(obj *unstructured.Unstructured, w k8s.Object, o Overrides) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, w); err != nil {
		return err
	}
	SetEnv(w, o.Env)
	if err := SetImages(w, o.Images); err != nil {
		return err
	}
	spec, path := podSpecAt(w)
	if o.PullSecret != nil {
		at := append(append([]string(nil), path...), "imagePullSecrets")
		refs, _, err := unstructured.NestedSlice(obj.Object, at...)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(refs, func(r any) bool { m, _ := r.(map[string]any); return m["name"] == PullSecretName }) {
			refs = append(refs, map[string]any{"name": PullSecretName})
		}
		if err := unstructured.SetNestedSlice(obj.Object, refs, at...); err != nil {
			return err
		}
	}
	for _, part := range []struct {
		field string
		cs    []corev1.Container
		env   bool
	}{{"initContainers", spec.InitContainers, false}, {"containers", spec.Containers, len(o.Env) > 0}} {
		at := append(append([]string(nil), path...), part.field)
		raw, found, err := unstructured.NestedSlice(obj.Object, at...)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		if len(raw) != len(part.cs) {
			return fmt.Errorf("%s: %d containers decoded from %d", strings.Join(at, "."), len(part.cs), len(raw))
		}
		for i, c := range part.cs {
			m, ok := raw[i].(map[string]any)
			if !ok {
				return fmt.Errorf("%s[%d] is not an object", strings.Join(at, "."), i)
			}
			if img, _ := m["image"].(string); img != c.Image {
				m["image"] = c.Image
			}
			// Nothing to write where SetEnv added nothing (the istio-proxy
			// overlay): an empty env there would reach the injector's merge.
			if !part.env || len(c.Env) == 0 {
				continue
			}
			env := make([]any, len(c.Env))
			for j := range c.Env {
				if env[j], err = runtime.DefaultUnstructuredConverter.ToUnstructured(&c.Env[j]); err != nil {
					return err
				}
			}
			m["env"] = env
		}
		if err := unstructured.SetNestedSlice(obj.Object, raw, at...); err != nil {
			return err
		}
	}
	if len(o.PodLabels) == 0 {
		return nil
	}
	// The pod's metadata sits beside its spec.
	at := append(append([]string(nil), path[:len(path)-1]...), "metadata", "labels")
	labels, _, err := unstructured.NestedStringMap(obj.Object, at...)
	if err != nil {
		return err
	}
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, o.PodLabels)
	return unstructured.SetNestedStringMap(obj.Object, labels, at...)
}
