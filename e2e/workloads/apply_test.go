package workloads

import (
	"encoding/base64"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshconform/meshconform/fixtures/conformance"
	"github.com/meshconform/meshconform/fixtures/platform"
)

func managed(entries ...metav1.ManagedFieldsEntry) *metav1.ObjectMeta {
	return &metav1.ObjectMeta{Name: "backend", ManagedFields: entries}
}

func TestOwned(t *testing.T) {
	for _, tc := range []struct {
		name     string
		obj      *metav1.ObjectMeta
		ours     bool
		managers []string
	}{
		{"kubectl client-side apply", managed(
			metav1.ManagedFieldsEntry{Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate},
			metav1.ManagedFieldsEntry{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, Subresource: "status"},
		), false, []string{"kubectl-client-side-apply (Update)", "kube-controller-manager (Update)"}},
		{"our server-side apply", managed(
			metav1.ManagedFieldsEntry{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply},
			metav1.ManagedFieldsEntry{Manager: "specs.test", Operation: metav1.ManagedFieldsOperationUpdate},
		), true, []string{"meshconform (Apply)", "specs.test (Update)"}},
		{"no managed fields", managed(), false, nil},
		// cmd/meshconform's default manager name, from its user agent.
		{"an update under our name", managed(
			metav1.ManagedFieldsEntry{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationUpdate},
		), false, []string{"meshconform (Update)"}},
		{"another manager's apply", managed(
			metav1.ManagedFieldsEntry{Manager: "istioctl", Operation: metav1.ManagedFieldsOperationApply},
			metav1.ManagedFieldsEntry{Manager: "istioctl", Operation: metav1.ManagedFieldsOperationApply, Subresource: "status"},
		), false, []string{"istioctl (Apply)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ours, managers := Owned(tc.obj)
			if ours != tc.ours || !reflect.DeepEqual(managers, tc.managers) {
				t.Errorf("Owned = %t, %q; want %t, %q", ours, managers, tc.ours, tc.managers)
			}
		})
	}
}

func TestNotOursNamesObjectAndManagers(t *testing.T) {
	obj := &unstructured.Unstructured{}
	obj.SetKind("Service")
	obj.SetNamespace("production")
	obj.SetName("backend")
	want := "Service production/backend exists and was not created by meshconform (managed by kubectl-client-side-apply (Update)): refusing to change or later delete it"
	if got := notOurs(obj, []string{"kubectl-client-side-apply (Update)"}, "change or later delete").Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	obj.SetNamespace("")
	obj.SetKind("Namespace")
	want = "Namespace backend exists and was not created by meshconform (no field manager recorded): refusing to delete it"
	if got := notOurs(obj, nil, "delete").Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

var testFS = fstest.MapFS{
	"app.yaml": {Data: []byte(`# a comment-only document first
---
apiVersion: v1
kind: Service
metadata:
  name: backend
  labels: {app: backend}
spec:
  selector: {app: backend}
  ports:
  - {name: grpc, port: 7070, targetPort: 7070}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: backend-v1
  namespace: written-in-manifest
spec:
  replicas: 3
  selector:
    matchLabels: {app: backend}
  template:
    metadata:
      labels: {app: backend}
    spec:
      initContainers:
      - name: init
        image: busybox
      containers:
      - name: app
        image: meshconform/meshapp
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
      - name: side
        image: registry.k8s.io/pause:3.10
---
`)},
	"rules.yaml": {Data: []byte(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: backend
spec:
  hosts: [backend]
  http:
  - route:
    - destination: {host: backend, subset: v1}
      weight: 30
`)},
	"notes.txt": {Data: []byte("not a manifest")},
}

func TestRenderFillsNamespaceImagesAndEnv(t *testing.T) {
	objs, err := render(testFS, "*.yaml", "production", Overrides{
		Images: Images{"meshconform/meshapp": "docker.io/meshconform/meshapp:abc"},
		Env:    map[string]string{"ZONE": "z1", "CLUSTER": "c1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.GetAPIVersion()+" "+describe(o))
	}
	want := []string{
		"v1 Service production/backend",
		"apps/v1 Deployment production/backend-v1",
		"networking.istio.io/v1 VirtualService production/backend",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("objects = %q, want %q", got, want)
	}

	// Objects without pods are applied as written, plus the namespace.
	svc := objs[0].DeepCopy()
	unstructured.RemoveNestedField(svc.Object, "metadata", "namespace")
	wantSvc := map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "backend", "labels": map[string]any{"app": "backend"}},
		"spec": map[string]any{
			"selector": map[string]any{"app": "backend"},
			"ports":    []any{map[string]any{"name": "grpc", "port": int64(7070), "targetPort": int64(7070)}},
		},
	}
	if !reflect.DeepEqual(svc.Object, wantSvc) {
		t.Errorf("service = %v\nwant %v", svc.Object, wantSvc)
	}
	if hosts, _, _ := unstructured.NestedStringSlice(objs[2].Object, "spec", "hosts"); !reflect.DeepEqual(hosts, []string{"backend"}) {
		t.Errorf("virtual service hosts = %q", hosts)
	}

	d := objs[1]
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	app, side := containers[0].(map[string]any), containers[1].(map[string]any)
	if app["image"] != "docker.io/meshconform/meshapp:abc" || side["image"] != "registry.k8s.io/pause:3.10" {
		t.Errorf("images = %v, %v", app["image"], side["image"])
	}
	wantEnv := []any{
		map[string]any{"name": "CLUSTER", "value": "c1"},
		map[string]any{"name": "ZONE", "value": "z1"},
		map[string]any{"name": "POD_NAME", "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "metadata.name"}}},
	}
	if !reflect.DeepEqual(app["env"], wantEnv) {
		t.Errorf("app env = %v\nwant %v", app["env"], wantEnv)
	}
	if len(side["env"].([]any)) != 2 {
		t.Errorf("side env = %v", side["env"])
	}
	inits, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "initContainers")
	if !reflect.DeepEqual(inits, []any{map[string]any{"name": "init", "image": "busybox"}}) {
		t.Errorf("init containers = %v", inits)
	}
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 3 {
		t.Errorf("replicas = %d", r)
	}
	// The patch body holds only what the manifest says and o fills in: no
	// zero values of a typed round trip.
	body, err := d.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"status", "creationTimestamp", "resources", "strategy"} {
		if strings.Contains(string(body), s) {
			t.Errorf("patch body has %q: %s", s, body)
		}
	}
}

func TestRenderWithoutNamespaceKeepsTheManifests(t *testing.T) {
	objs, err := render(testFS, "app.yaml", "", Overrides{Images: Images{"meshconform/meshapp": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetNamespace() != "" || objs[1].GetNamespace() != "written-in-manifest" {
		t.Errorf("namespaces = %q, %q", objs[0].GetNamespace(), objs[1].GetNamespace())
	}
	containers, _, _ := unstructured.NestedSlice(objs[1].Object, "spec", "template", "spec", "containers")
	if env := containers[0].(map[string]any)["env"].([]any); len(env) != 1 {
		t.Errorf("env without overrides = %v", env)
	}
}

func TestRenderRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, pattern, want string
		fsys                fstest.MapFS
	}{
		{"an image no one built", "app.yaml", "Deployment production/backend-v1: Deployment backend-v1: no image built for meshconform/meshapp", testFS},
		{"a pattern nothing matches", "backend.yml", `no manifest matches "backend.yml"`, testFS},
		{"a document without a kind", "x.yaml", "x.yaml: document 1", fstest.MapFS{"x.yaml": {Data: []byte("apiVersion: v1\nmetadata: {name: a}\n")}}},
		{"a document without a name", "x.yaml", "x.yaml: document 2: Service without a name", fstest.MapFS{"x.yaml": {Data: []byte("apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Service\n")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(tc.fsys, tc.pattern, "production", Overrides{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// The conformance fixtures render from the embedded FS the specs read
// their expectations from, with the replicas those expectations count.
func TestRenderConformanceManifests(t *testing.T) {
	objs, err := render(conformance.Manifests, conformance.BackendFile, "production", Overrides{
		Images: Images{"meshconform/meshapp": "meshapp:test"},
		Env:    map[string]string{"CLUSTER": "c1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want, err := conformance.BackendDeployments()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int32{}
	for _, o := range objs {
		if o.GetKind() == "Deployment" {
			r, _, _ := unstructured.NestedInt64(o.Object, "spec", "replicas")
			got[o.GetName()] = int32(r)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rendered replicas %v, expectations %v", got, want)
	}
}

// Every fixture the suites apply renders, pods of bare Pods included.
func TestRenderEveryFixture(t *testing.T) {
	for _, tc := range []struct {
		fsys fs.FS
		imgs Images
	}{
		{platform.Manifests, Images{"meshconform/probe": "probe:test"}},
		{conformance.Manifests, Images{"meshconform/meshapp": "meshapp:test"}},
	} {
		objs, err := render(tc.fsys, "*.yaml", "ns", Overrides{Images: tc.imgs, Env: map[string]string{"CLUSTER": "c1"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			body, _ := o.MarshalJSON()
			if strings.Contains(string(body), `"meshconform/`) {
				t.Errorf("%s keeps a fixture image name: %s", describe(o), body)
			}
		}
	}
}

// Pod labels go on the pods a workload makes (beside the template's own),
// never on the workload or on objects without pods.
func TestRenderAddsPodLabels(t *testing.T) {
	objs, err := render(testFS, "*.yaml", "production", Overrides{
		Images:    Images{"meshconform/meshapp": "x"},
		PodLabels: map[string]string{"istio-locality": "east-1-region.east-1-zone"},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := objs[1]
	got, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "labels")
	if got["istio-locality"] != "east-1-region.east-1-zone" || got["app"] != "backend" {
		t.Errorf("pod labels = %v", got)
	}
	if l := d.GetLabels(); l["istio-locality"] != "" {
		t.Errorf("the Deployment itself labelled: %v", l)
	}
	if l := objs[0].GetLabels(); l["istio-locality"] != "" {
		t.Errorf("the Service labelled: %v", l)
	}
}

func TestRenderPullSecret(t *testing.T) {
	config := []byte(`{"auths": {"reg.acme.example:5443": {"auth": "Y2k6czNjcmV0"}}}`)
	pull := NewPullSecret(config)
	objs, err := render(testFS, "*.yaml", "production", Overrides{Images: Images{"meshconform/meshapp": "x"}, PullSecret: pull})
	if err != nil {
		t.Fatal(err)
	}
	// The Secret comes first (pods created before it would fail to pull),
	// once for the namespace, of the type kubelet reads.
	if objs[0].GetKind() != "Secret" || objs[0].GetName() != PullSecretName || objs[0].GetNamespace() != "production" {
		t.Fatalf("first object %s %s/%s, want the pull secret", objs[0].GetKind(), objs[0].GetNamespace(), objs[0].GetName())
	}
	if typ, _, _ := unstructured.NestedString(objs[0].Object, "type"); typ != "kubernetes.io/dockerconfigjson" {
		t.Errorf("secret type %q", typ)
	}
	if data, _, _ := unstructured.NestedString(objs[0].Object, "data", ".dockerconfigjson"); data != base64.StdEncoding.EncodeToString(config) {
		t.Errorf("secret data %q", data)
	}
	secrets := 0
	for _, o := range objs {
		if o.GetKind() == "Secret" {
			secrets++
		}
		if o.GetKind() != "Deployment" {
			continue
		}
		refs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "imagePullSecrets")
		if len(refs) != 1 || refs[0].(map[string]any)["name"] != PullSecretName {
			t.Errorf("%s imagePullSecrets = %v", o.GetName(), refs)
		}
	}
	if secrets != 1 {
		t.Errorf("%d secrets rendered, want 1", secrets)
	}
	if strings.Contains(fmt.Sprintf("%v %+v", pull, pull), "Y2k6czNjcmV0") {
		t.Error("the pull secret prints its content")
	}

	// Without one, nothing of it.
	objs, _ = render(testFS, "*.yaml", "production", Overrides{Images: Images{"meshconform/meshapp": "x"}})
	for _, o := range objs {
		if o.GetKind() == "Secret" {
			t.Error("a pull secret rendered without one given")
		}
		if _, found, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "imagePullSecrets"); found {
			t.Errorf("%s names a pull secret without one given", o.GetName())
		}
	}
}
