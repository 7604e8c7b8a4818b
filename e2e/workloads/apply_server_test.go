package workloads

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/e2e-framework/klient"
)

// fakeAPI is an API server just large enough for ApplyFS, DeleteFS and
// the foreign edits: discovery, and GET, PATCH (apply), POST (create), PUT
// (update) and DELETE of objects kept by path.
type fakeAPI struct {
	mu      sync.Mutex
	objects map[string]map[string]any
	calls   []string // "PATCH path fieldManager=… force=…", "DELETE path uid=…", "POST path", "PUT path"
	bodies  map[string]map[string]any
	// conflicts is how many PUTs are answered 409 Conflict before one is
	// taken, as when someone else changed the object since it was read.
	conflicts int
	// webhookDown is how many PATCHes are refused as the API server
	// refuses a write Istio's validation webhook cannot judge (istiod
	// restarting); denied refuses every PATCH as the webhook denying it.
	webhookDown int
	denied      bool
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	reply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	resources := func(gv string, rs ...metav1.APIResource) *metav1.APIResourceList {
		return &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv, APIResources: rs}
	}
	verbs := metav1.Verbs{"get", "patch", "delete", "create", "update", "list"}
	switch r.URL.Path {
	case "/api":
		reply(200, &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
		return
	case "/apis":
		reply(200, &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: []metav1.APIGroup{
			{Name: "apps", Versions: []metav1.GroupVersionForDiscovery{{GroupVersion: "apps/v1", Version: "v1"}}, PreferredVersion: metav1.GroupVersionForDiscovery{GroupVersion: "apps/v1", Version: "v1"}},
			{Name: "networking.istio.io", Versions: []metav1.GroupVersionForDiscovery{{GroupVersion: "networking.istio.io/v1", Version: "v1"}}, PreferredVersion: metav1.GroupVersionForDiscovery{GroupVersion: "networking.istio.io/v1", Version: "v1"}},
		}})
		return
	case "/api/v1":
		reply(200, resources("v1",
			metav1.APIResource{Name: "services", Namespaced: true, Kind: "Service", Verbs: verbs},
			metav1.APIResource{Name: "namespaces", Namespaced: false, Kind: "Namespace", Verbs: verbs}))
		return
	case "/apis/apps/v1":
		reply(200, resources("apps/v1", metav1.APIResource{Name: "deployments", Namespaced: true, Kind: "Deployment", Verbs: verbs}))
		return
	case "/apis/networking.istio.io/v1":
		reply(200, resources("networking.istio.io/v1", metav1.APIResource{Name: "virtualservices", Namespaced: true, Kind: "VirtualService", Verbs: verbs}))
		return
	}
	notFound := &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure", Reason: metav1.StatusReasonNotFound, Code: 404}
	obj, exists := f.objects[r.URL.Path]
	switch r.Method {
	case http.MethodGet:
		if !exists {
			reply(404, notFound)
			return
		}
		reply(200, obj)
	case http.MethodPatch:
		q := r.URL.Query()
		f.calls = append(f.calls, "PATCH "+r.URL.Path+" "+r.Header.Get("Content-Type")+" fieldManager="+q.Get("fieldManager")+" force="+q.Get("force"))
		if f.webhookDown > 0 {
			f.webhookDown--
			reply(500, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure", Reason: metav1.StatusReasonInternalError, Code: 500,
				Message: `Internal error occurred: failed calling webhook "rev.validation.istio.io": failed to call webhook: Post "https://istiod.istio-system.svc:443/validate?timeout=10s": dial tcp 10.96.0.12:443: connect: connection refused`})
			return
		}
		if f.denied {
			reply(400, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure", Reason: metav1.StatusReasonBadRequest, Code: 400,
				Message: `admission webhook "rev.validation.istio.io" denied the request: configuration is invalid: total destination weight 90 != 100`})
			return
		}
		var body map[string]any
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil {
			reply(400, &metav1.Status{Status: "Failure", Message: err.Error(), Code: 400})
			return
		}
		f.bodies[r.URL.Path] = body
		stored := map[string]any{}
		for k, v := range body {
			stored[k] = v
		}
		md := body["metadata"].(map[string]any)
		stored["metadata"] = map[string]any{
			"name": md["name"], "namespace": md["namespace"], "uid": "uid-" + r.URL.Path,
			"managedFields": []any{map[string]any{"manager": q.Get("fieldManager"), "operation": "Apply"}},
		}
		f.objects[r.URL.Path] = stored
		reply(200, stored)
	case http.MethodPost:
		// A create, as kubectl create: its fields managed by Update.
		f.calls = append(f.calls, "POST "+r.URL.Path)
		body, err := decodeBody(r)
		if err != nil {
			reply(400, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure", Message: err.Error(), Code: 400})
			return
		}
		path := r.URL.Path + "/" + body["metadata"].(map[string]any)["name"].(string)
		if _, taken := f.objects[path]; taken {
			reply(409, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure", Reason: metav1.StatusReasonAlreadyExists, Code: 409})
			return
		}
		body["metadata"].(map[string]any)["uid"] = "uid-" + path
		body["metadata"].(map[string]any)["managedFields"] = []any{map[string]any{"manager": "workloads.test", "operation": "Update"}}
		f.objects[path] = body
		reply(201, body)
	case http.MethodPut:
		f.calls = append(f.calls, "PUT "+r.URL.Path)
		if !exists {
			reply(404, notFound)
			return
		}
		if f.conflicts > 0 {
			f.conflicts--
			reply(409, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure", Reason: metav1.StatusReasonConflict, Code: 409})
			return
		}
		body, err := decodeBody(r)
		if err != nil {
			reply(400, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure", Message: err.Error(), Code: 400})
			return
		}
		f.objects[r.URL.Path] = body
		reply(200, body)
	case http.MethodDelete:
		var opts metav1.DeleteOptions
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &opts)
		uid := ""
		if opts.Preconditions != nil && opts.Preconditions.UID != nil {
			uid = string(*opts.Preconditions.UID)
		}
		call := "DELETE " + r.URL.Path + " uid=" + uid
		if opts.GracePeriodSeconds != nil {
			call += fmt.Sprintf(" grace=%d", *opts.GracePeriodSeconds)
		}
		f.calls = append(f.calls, call)
		if !exists {
			reply(404, notFound)
			return
		}
		delete(f.objects, r.URL.Path)
		reply(200, &metav1.Status{Status: "Success", Code: 200})
	default:
		reply(405, &metav1.Status{Status: "Failure", Code: 405})
	}
}

// decodeBody reads a create's or an update's object: JSON, or protobuf,
// which the client sends for Kubernetes' own kinds.
func decodeBody(r *http.Request) (map[string]any, error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	if r.Header.Get("Content-Type") != "application/vnd.kubernetes.protobuf" {
		var body map[string]any
		return body, json.Unmarshal(raw, &body)
	}
	obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(raw, nil, nil)
	if err != nil {
		return nil, err
	}
	body, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	body["apiVersion"], body["kind"] = gvk.GroupVersion().String(), gvk.Kind
	return body, nil
}

func startFakeAPI(t *testing.T, objects map[string]map[string]any) (*fakeAPI, klient.Client) {
	t.Helper()
	f := &fakeAPI{objects: objects, bodies: map[string]map[string]any{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := klient.New(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func (f *fakeAPI) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	calls := f.calls
	f.calls = nil
	return calls
}

const (
	svcPath    = "/api/v1/namespaces/production/services/backend"
	deployPath = "/apis/apps/v1/namespaces/production/deployments/backend-v1"
	vsPath     = "/apis/networking.istio.io/v1/namespaces/production/virtualservices/backend"
)

var testOverrides = Overrides{Images: Images{"meshconform/meshapp": "meshapp:abc"}}

func TestApplyFSAppliesNewThenForcesOverOurs(t *testing.T) {
	f, c := startFakeAPI(t, map[string]map[string]any{})
	ctx := context.Background()
	if err := ApplyFS(ctx, c, testFS, "*.yaml", "production", testOverrides); err != nil {
		t.Fatal(err)
	}
	apply := "application/apply-patch+yaml fieldManager=meshconform"
	want := []string{
		"PATCH " + svcPath + " " + apply + " force=false",
		"PATCH " + deployPath + " " + apply + " force=false",
		"PATCH " + vsPath + " " + apply + " force=false",
	}
	if got := f.takeCalls(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("first apply:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rendered, err := render(testFS, "*.yaml", "production", testOverrides)
	if err != nil {
		t.Fatal(err)
	}
	for i, path := range []string{svcPath, deployPath, vsPath} {
		gotJSON, _ := json.Marshal(f.bodies[path])
		wantJSON, _ := json.Marshal(rendered[i].Object)
		if string(gotJSON) != string(wantJSON) {
			t.Errorf("body of %s:\n%s\nwant\n%s", path, gotJSON, wantJSON)
		}
	}

	if err := ApplyFS(ctx, c, testFS, "*.yaml", "production", testOverrides); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		want[i] = strings.Replace(want[i], "force=false", "force=true", 1)
	}
	if got := f.takeCalls(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("re-apply:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func foreignService() map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "backend", "namespace": "production", "uid": "theirs",
			"managedFields": []any{map[string]any{"manager": "kubectl-client-side-apply", "operation": "Update"}}},
	}
}

func TestApplyFSRefusesAnObjectNotOurs(t *testing.T) {
	f, c := startFakeAPI(t, map[string]map[string]any{svcPath: foreignService()})
	err := ApplyFS(context.Background(), c, testFS, "app.yaml", "production", testOverrides)
	want := `apply app.yaml to namespace "production": Service production/backend exists and was not created by meshconform (managed by kubectl-client-side-apply (Update)): refusing to change or later delete it`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	if calls := f.takeCalls(); len(calls) != 0 {
		t.Errorf("changed something: %q", calls)
	}
}

func TestDeleteFSDeletesOursOnlyAndNamesTheRest(t *testing.T) {
	f, c := startFakeAPI(t, map[string]map[string]any{})
	ctx := context.Background()
	if err := ApplyFS(ctx, c, testFS, "*.yaml", "production", testOverrides); err != nil {
		t.Fatal(err)
	}
	f.takeCalls()
	f.mu.Lock()
	f.objects[svcPath] = foreignService()
	delete(f.objects, vsPath)
	f.mu.Unlock()

	err := DeleteFS(ctx, c, testFS, "*.yaml", "production")
	want := `delete *.yaml from namespace "production": Service production/backend exists and was not created by meshconform (managed by kubectl-client-side-apply (Update)): refusing to delete it`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	// The VirtualService is gone already: nothing to delete, no error.
	calls := f.takeCalls()
	if len(calls) != 1 || calls[0] != "DELETE "+deployPath+" uid=uid-"+deployPath {
		t.Errorf("calls = %q", calls)
	}
	if _, ok := f.objects[svcPath]; !ok {
		t.Error("deleted the Service that is not ours")
	}
}

func TestApplyFSDropsTheNamespaceOfClusterScopedObjects(t *testing.T) {
	f, c := startFakeAPI(t, map[string]map[string]any{})
	fsys := map[string]string{"ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: extra}\n"}
	mfs := testFSFrom(fsys)
	if err := ApplyFS(context.Background(), c, mfs, "ns.yaml", "production", Overrides{}); err != nil {
		t.Fatal(err)
	}
	calls := f.takeCalls()
	if len(calls) != 1 || !strings.HasPrefix(calls[0], "PATCH /api/v1/namespaces/extra ") {
		t.Errorf("calls = %q", calls)
	}
	if md := f.bodies["/api/v1/namespaces/extra"]["metadata"].(map[string]any); md["namespace"] != nil {
		t.Errorf("namespace in the body of a cluster-scoped object: %v", md)
	}
	if err := ApplyFS(context.Background(), c, testFS, "app.yaml", "", testOverrides); err == nil ||
		!strings.Contains(err.Error(), "Service backend is namespaced, but neither its manifest nor the caller names a namespace") {
		t.Errorf("got %v", err)
	}
}

func testFSFrom(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, data := range files {
		m[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return m
}

func TestApplyObjectForcesOverOursAndRefusesTheRest(t *testing.T) {
	f, c := startFakeAPI(t, map[string]map[string]any{svcPath: foreignService()})
	ctx := context.Background()
	objs, err := render(testFS, "*.yaml", "production", testOverrides)
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyObject(ctx, c, objs[0]); err == nil || !strings.Contains(err.Error(), "Service production/backend exists and was not created by meshconform") {
		t.Errorf("got %v", err)
	}
	vs := objs[2]
	for _, force := range []string{"false", "true"} {
		if err := ApplyObject(ctx, c, vs); err != nil {
			t.Fatal(err)
		}
		if calls := f.takeCalls(); len(calls) != 1 || !strings.HasSuffix(calls[0], "force="+force) {
			t.Errorf("calls = %q, want one with force=%s", calls, force)
		}
	}
	if vs.GetNamespace() != "production" || vs.GetManagedFields() != nil {
		t.Errorf("ApplyObject changed its argument: %v", vs.Object["metadata"])
	}
}

// A write Istio's webhook could not judge (istiod restarting) is tried
// again until it lands; one the webhook denied is returned at once, with
// the denial: a retry must never turn a refused rule into an applied one.
func TestApplyRetriesOnlyWhileIstioWebhookUnreachable(t *testing.T) {
	f, c := startFakeAPI(t, map[string]map[string]any{})
	ctx := context.Background()
	vs := testVirtualService(t)
	f.webhookDown = 2
	if err := ApplyObject(ctx, c, vs); err != nil {
		t.Fatalf("apply with the webhook back after two refusals: %v", err)
	}
	if calls := f.takeCalls(); len(calls) != 3 {
		t.Errorf("calls = %q, want three PATCHes", calls)
	}
	f.denied = true
	if err := ApplyObject(ctx, c, vs); err == nil || !strings.Contains(err.Error(), "denied the request") {
		t.Errorf("denied: got %v", err)
	}
	if calls := f.takeCalls(); len(calls) != 1 {
		t.Errorf("denied: calls = %q, want one PATCH", calls)
	}
}

// testVirtualService is testFS's VirtualService, rendered into
// namespace production.
func testVirtualService(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	objs, err := render(testFS, "*.yaml", "production", testOverrides)
	if err != nil {
		t.Fatal(err)
	}
	vs := objs[2]
	if vs.GetKind() != "VirtualService" {
		t.Fatalf("testFS's third object is a %s, want the VirtualService", vs.GetKind())
	}
	return vs
}
