package workloads

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
)

// TestDeleteObjectDeletesOursOnly: one object as DeleteFS deletes each of
// a manifest's — ours by its UID, with the caller's options; gone is fine;
// not ours refused, untouched.
func TestDeleteObjectDeletesOursOnly(t *testing.T) {
	f, c := startFakeAPI(t, map[string]map[string]any{})
	ctx := context.Background()
	objs, err := render(testFS, "*.yaml", "production", testOverrides)
	if err != nil {
		t.Fatal(err)
	}
	vs := objs[2]
	if err := ApplyObject(ctx, c, vs); err != nil {
		t.Fatal(err)
	}
	f.takeCalls()
	if err := DeleteObject(ctx, c, vs, resources.WithGracePeriod(0)); err != nil {
		t.Fatal(err)
	}
	if err := DeleteObject(ctx, c, vs); err != nil {
		t.Errorf("a VirtualService gone already: %v", err)
	}
	if calls := f.takeCalls(); len(calls) != 1 || calls[0] != "DELETE "+vsPath+" uid=uid-"+vsPath+" grace=0" {
		t.Errorf("calls = %q", calls)
	}

	f.mu.Lock()
	f.objects[svcPath] = foreignService()
	f.mu.Unlock()
	err = DeleteObject(ctx, c, objs[0])
	if err == nil || !strings.Contains(err.Error(), "Service production/backend exists and was not created by meshconform (managed by kubectl-client-side-apply (Update)): refusing to delete it") {
		t.Errorf("got %v", err)
	}
	if calls := f.takeCalls(); len(calls) != 0 {
		t.Errorf("deleted what is not ours: %q", calls)
	}
}

// TestCreateForeignIsNotOurs: an object CreateForeign made is someone
// else's to the suite — ApplyFS and DeleteObject refuse it, naming its
// Update manager — and only DeleteForeign removes it.
func TestCreateForeignIsNotOurs(t *testing.T) {
	f, c := startFakeAPI(t, map[string]map[string]any{})
	ctx := context.Background()
	objs, err := render(testFS, "*.yaml", "production", testOverrides)
	if err != nil {
		t.Fatal(err)
	}
	vs := objs[2]
	if err := CreateForeign(ctx, c, vs); err != nil {
		t.Fatal(err)
	}
	if vs.GetUID() != "" {
		t.Error("CreateForeign changed its argument")
	}
	if calls := f.takeCalls(); len(calls) != 1 || calls[0] != "POST /apis/networking.istio.io/v1/namespaces/production/virtualservices" {
		t.Errorf("calls = %q", calls)
	}
	if err := CreateForeign(ctx, c, vs); !apierrors.IsAlreadyExists(err) || !strings.Contains(err.Error(), "create VirtualService production/backend as someone else") {
		t.Errorf("a second create: %v", err)
	}
	err = ApplyFS(ctx, c, testFS, "rules.yaml", "production", testOverrides)
	if err == nil || !strings.Contains(err.Error(), "VirtualService production/backend exists and was not created by meshconform (managed by workloads.test (Update)): refusing") {
		t.Errorf("ApplyFS over a foreign object: %v", err)
	}
	if err := DeleteObject(ctx, c, vs); err == nil {
		t.Error("DeleteObject deleted a foreign object")
	}
	f.takeCalls()
	if err := DeleteForeign(ctx, c, vs); err != nil {
		t.Fatal(err)
	}
	if calls := f.takeCalls(); len(calls) != 1 || calls[0] != "DELETE "+vsPath+" uid=" {
		t.Errorf("calls = %q", calls)
	}
	if err := DeleteForeign(ctx, c, vs); !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "delete VirtualService production/backend") {
		t.Errorf("deleting it again: %v", err)
	}
}

// TestUpdateForeignRetriesOnConflict: read, changed and written back; on a
// conflict read afresh and changed again.
func TestUpdateForeignRetriesOnConflict(t *testing.T) {
	const nsPath = "/api/v1/namespaces/istio-system"
	f, c := startFakeAPI(t, map[string]map[string]any{nsPath: {
		"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": "istio-system", "annotations": map[string]any{"keep": "1", "drop": "x"}},
	}})
	f.conflicts = 1
	calls := 0
	err := UpdateForeign(context.Background(), c, "istio-system", "", func(ns *corev1.Namespace) {
		calls++
		delete(ns.Annotations, "drop")
		ns.Annotations["topology.istio.io/controlPlaneClusters"] = "cluster1"
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.takeCalls(); calls != 2 || strings.Join(got, ",") != "PUT "+nsPath+",PUT "+nsPath {
		t.Errorf("mutate called %d times, calls %q", calls, got)
	}
	md := f.objects[nsPath]["metadata"].(map[string]any)
	if a := md["annotations"].(map[string]any); len(a) != 2 || a["keep"] != "1" || a["topology.istio.io/controlPlaneClusters"] != "cluster1" {
		t.Errorf("annotations = %v", a)
	}
	err = UpdateForeign(context.Background(), c, "gone", "", func(*corev1.Namespace) { t.Error("mutate called for a missing namespace") })
	if !apierrors.IsNotFound(err) || !strings.HasPrefix(err.Error(), "update Namespace gone: ") {
		t.Errorf("got %v", err)
	}
}

func TestAsUnstructured(t *testing.T) {
	grace := int64(2)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"app": "backend"}},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace, Containers: []corev1.Container{{Name: "app", Image: "i"}}}}
	u, err := AsUnstructured(pod)
	if err != nil {
		t.Fatal(err)
	}
	if u.GetAPIVersion() != "v1" || u.GetKind() != "Pod" || u.GetNamespace() != "ns" || u.GetLabels()["app"] != "backend" {
		t.Errorf("pod: %v", u.Object)
	}
	if _, ok := u.Object["status"]; ok {
		t.Errorf("status kept: %v", u.Object)
	}
	if _, ok := u.Object["metadata"].(map[string]any)["creationTimestamp"]; ok {
		t.Errorf("creationTimestamp kept: %v", u.Object["metadata"])
	}
	if pod.APIVersion != "" {
		t.Error("AsUnstructured changed its argument")
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b"}, RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "cluster-admin"}}
	if u, err := AsUnstructured(crb); err != nil || u.GetAPIVersion() != "rbac.authorization.k8s.io/v1" || u.GetKind() != "ClusterRoleBinding" {
		t.Errorf("binding: %v %v", u, err)
	}
}
