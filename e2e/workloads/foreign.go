package workloads

import (
	"context"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/klient/k8s"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
)

// Edits of objects that are not ours, for the seeded faults only. The
// suite changes what it made with ApplyFS and ApplyObject and deletes it
// with DeleteFS and DeleteObject, which refuse anything else. A fault must
// sometimes touch what the suite did not make — a node's labels, the
// remote secret the install attached, an object created as a user would —
// and does so here, by name, never with a raw client in a spec. None of
// these makes an object ours (Owned).

// CreateForeign creates obj as someone other than the suite would — a
// user's kubectl create: a plain create, whose fields are then managed by
// Update, so the object is not ours, and ApplyFS, ApplyObject and DeleteFS
// refuse it. A fault seeder's tool, for a fault that puts a foreign object
// where one of ours goes.
func CreateForeign(ctx context.Context, c klient.Client, obj k8s.Object) error {
	// A copy: Create writes the server's answer into its argument.
	o := obj.DeepCopyObject().(k8s.Object)
	if err := c.Resources().Create(ctx, o); err != nil {
		return fmt.Errorf("create %s as someone else: %w", describeObject(obj), err)
	}
	return nil
}

// UpdateForeign changes, as a user's kubectl edit would, an object the
// suite did not make (a node, a namespace the install made): it reads the
// object named name in namespace ns ("" when cluster-scoped), calls mutate
// on it and updates it, read afresh and changed again on each conflict
// (the kubelet updates its node all the time). For fault seeders and their
// repairs; the object stays not ours.
func UpdateForeign[T any, PT interface {
	*T
	k8s.Object
}](ctx context.Context, c klient.Client, name, ns string, mutate func(PT)) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj := PT(new(T))
		if err := c.Resources().Get(ctx, name, ns, obj); err != nil {
			return err
		}
		mutate(obj)
		return c.Resources().Update(ctx, obj)
	})
	if err != nil {
		return fmt.Errorf("update %s %s: %w", reflect.TypeFor[T]().Name(), qualified(ns, name), err)
	}
	return nil
}

// DeleteForeign deletes obj (named by its name and namespace) whoever made
// it, without the check DeleteFS and DeleteObject make that it is ours: for
// a fault seeder that removes what the install made (a remote secret), and
// for the repair of a fault CreateForeign seeded. An object already gone is
// an error the caller can tell with apierrors.IsNotFound.
func DeleteForeign(ctx context.Context, c klient.Client, obj k8s.Object, opts ...resources.DeleteOption) error {
	if err := c.Resources().Delete(ctx, obj.DeepCopyObject().(k8s.Object), opts...); err != nil {
		return fmt.Errorf("delete %s: %w", describeObject(obj), err)
	}
	return nil
}

// AsUnstructured is a typed object (a Pod, a ClusterRoleBinding the
// caller builds) as ApplyObject and DeleteObject take it: its kind set
// from the client's scheme, and without the empty status and null
// creationTimestamp a typed object always carries, which are no part of
// what the caller means to apply.
func AsUnstructured(obj k8s.Object) (*unstructured.Unstructured, error) {
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil {
		return nil, fmt.Errorf("%T %s: %w", obj, obj.GetName(), err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", gvks[0].Kind, obj.GetName(), err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvks[0])
	unstructured.RemoveNestedField(u.Object, "status")
	if ts, found, _ := unstructured.NestedFieldNoCopy(u.Object, "metadata", "creationTimestamp"); found && ts == nil {
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	}
	return u, nil
}

// describeObject names a typed or unstructured object as describe does:
// "Kind namespace/name", or "Kind name" when cluster-scoped.
func describeObject(obj k8s.Object) string {
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		if gvks, _, err := scheme.Scheme.ObjectKinds(obj); err == nil {
			kind = gvks[0].Kind
		} else {
			kind = fmt.Sprintf("%T", obj)
		}
	}
	return kind + " " + qualified(obj.GetNamespace(), obj.GetName())
}

func qualified(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}
