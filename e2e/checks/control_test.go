package checks

import (
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Watched rejects each way an istiod replica can fail to watch a cluster,
// names every cluster found wrong, and passes a replica that watches all.
func TestWatched(t *testing.T) {
	synced := func(id string) RemoteCluster {
		return RemoteCluster{ID: id, SecretName: "istio-system/istio-remote-secret-" + id, SyncStatus: "synced"}
	}
	good := []RemoteCluster{{ID: "cluster1", SyncStatus: "synced"}, synced("cluster2"), synced("cluster3")}
	if err := Watched("cluster1", "istiod-a", "istio-system", []string{"cluster2", "cluster3"}, good); err != nil {
		t.Errorf("every cluster synced through its secret: %v", err)
	}
	for name, tc := range map[string]struct {
		cs   []RemoteCluster
		want []string
	}{
		"not listed":   {nil, []string{"istiod istiod-a on cluster1 does not list cluster cluster2 in debug/clusterz", "does not list cluster cluster3"}},
		"other secret": {[]RemoteCluster{{ID: "cluster2", SecretName: "istio-system/other", SyncStatus: "synced"}, synced("cluster3")}, []string{`lists cluster2 through "istio-system/other"`}},
		"not synced":   {[]RemoteCluster{{ID: "cluster2", SecretName: "istio-system/istio-remote-secret-cluster2", SyncStatus: "timeout"}, synced("cluster3")}, []string{`lists cluster cluster2 as "timeout", want synced`, "could not list that cluster's API server (the server of istio-system/istio-remote-secret-cluster2)", "reachable from istiod's pods"}},
		"one missing":  {[]RemoteCluster{synced("cluster2")}, []string{"does not list cluster cluster3"}},
	} {
		err := Watched("cluster1", "istiod-a", "istio-system", []string{"cluster2", "cluster3"}, tc.cs)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: want %q in %v", name, w, err)
			}
		}
	}
	if err := Watched("cluster1", "istiod-a", "istio-system", nil, good); err == nil {
		t.Error("nothing wanted passed: a judge must not pass on nothing")
	}
}

func webhook(path string, ca []byte) admissionv1.MutatingWebhookConfiguration {
	return admissionv1.MutatingWebhookConfiguration{Webhooks: []admissionv1.MutatingWebhook{{
		Name:         "rev.namespace.sidecar-injector.istio.io",
		ClientConfig: admissionv1.WebhookClientConfig{CABundle: ca, Service: &admissionv1.ServiceReference{Path: &path}},
	}}}
}

// Broken remote installs: no caBundle, another cluster's path, no webhook.
func TestInjectionWebhooks(t *testing.T) {
	want := InjectionPath("cluster2", "network1")
	if want != "/inject/cluster/cluster2/net/network1" {
		t.Fatalf("path %q", want)
	}
	if n, err := InjectionWebhooks("cluster2", want, []admissionv1.MutatingWebhookConfiguration{webhook(want, []byte("ca"))}); err != nil || n != 1 {
		t.Fatalf("healthy webhook: %d %v", n, err)
	}
	url := "https://istiod.example:15017" + want
	byURL := admissionv1.MutatingWebhookConfiguration{Webhooks: []admissionv1.MutatingWebhook{{Name: "w", ClientConfig: admissionv1.WebhookClientConfig{CABundle: []byte("ca"), URL: &url}}}}
	if _, err := InjectionWebhooks("cluster2", want, []admissionv1.MutatingWebhookConfiguration{byURL}); err != nil {
		t.Errorf("healthy webhook by URL: %v", err)
	}
	for name, tc := range map[string]struct {
		mwcs []admissionv1.MutatingWebhookConfiguration
		want string
	}{
		"no caBundle": {[]admissionv1.MutatingWebhookConfiguration{webhook(want, nil)}, "no caBundle"},
		"wrong path":  {[]admissionv1.MutatingWebhookConfiguration{webhook("/inject/cluster/cluster1/net/network1", []byte("ca"))}, `injects through "/inject/cluster/cluster1/net/network1"`},
		"no webhooks": {nil, "no injection webhook"},
	} {
		if _, err := InjectionWebhooks("cluster2", want, tc.mwcs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q, got %v", name, tc.want, err)
		}
	}
}

// An HA istiod judged pod by pod: the right count, each Ready, each at the
// installed version; a replica short, one not Ready or one left at the old
// version fails, named.
func TestIstiodReplicas(t *testing.T) {
	pod := func(name, image string, ready bool) corev1.Pod {
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		return corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Image: image}}},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
		}
	}
	tag := func(image string) string { return image[strings.LastIndex(image, ":")+1:] }
	good := []corev1.Pod{pod("istiod-a", "istio/pilot:1.29.2", true), pod("istiod-b", "istio/pilot:1.29.2", true)}
	if err := IstiodReplicas("cluster1", good, tag, 2, "1.29.2"); err != nil {
		t.Errorf("two Ready replicas at the version: %v", err)
	}
	for name, tc := range map[string]struct {
		pods     []corev1.Pod
		replicas int
		want     string
	}{
		"a replica short": {good[:1], 2, "1 istiod pods running, 1 Ready, want 2"},
		"not Ready":       {[]corev1.Pod{good[0], pod("istiod-b", "istio/pilot:1.29.2", false)}, 2, "istiod pod istiod-b is not Ready"},
		"old version":     {[]corev1.Pod{good[0], pod("istiod-b", "istio/pilot:1.28.1", true)}, 2, `istiod pod istiod-b runs istio/pilot:1.28.1 ("1.28.1"), want 1.29.2`},
		"none wanted":     {good, 0, "nothing to judge"},
	} {
		if err := IstiodReplicas("cluster1", tc.pods, tag, tc.replicas, "1.29.2"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q, got %v", name, tc.want, err)
		}
	}
}

// The annotation names istiod by its Istio cluster ID: a remote that names
// the primary by a topology name (not its ID), names another istiod, or
// has no annotation is refused.
func TestControlPlaneClusters(t *testing.T) {
	for _, ok := range []struct {
		v  string
		id string
	}{{"east-1", "east-1"}, {"east-1, west-1", "west-1"}, {"*", "east-1"}} {
		if err := ControlPlaneClusters(ok.v, true, ok.id); err != nil {
			t.Errorf("%q for %s: %v", ok.v, ok.id, err)
		}
	}
	for name, tc := range map[string]struct {
		v       string
		present bool
		want    string
	}{
		"missing":             {"", false, "no topology.istio.io/controlPlaneClusters annotation"},
		"the topology's name": {"east", true, `="east" does not name Istio cluster east-1`},
		"another istiod":      {"west-1", true, "does not name Istio cluster east-1"},
		"empty":               {"", true, "does not name"},
	} {
		if err := ControlPlaneClusters(tc.v, tc.present, "east-1"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}
