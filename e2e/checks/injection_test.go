package checks

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestInjected(t *testing.T) {
	overlay := []corev1.Container{{Name: "app"}, {Name: "istio-proxy", Image: "auto"}}
	pod := func(ann map[string]string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Annotations: ann}, Spec: corev1.PodSpec{Containers: overlay}}
	}
	// The broken mesh: the webhook never saw the pod. The pod still has the
	// overlay container named istio-proxy, which must not count.
	for name, tc := range map[string]struct {
		ann  map[string]string
		want string
	}{
		"webhook not called":        {nil, "no sidecar.istio.io/status"},
		"not the injector's JSON":   {map[string]string{InjectionStatusAnnotation: "yes"}, "not the injector's JSON"},
		"template without a proxy":  {map[string]string{InjectionStatusAnnotation: `{"containers":["other"]}`}, "without istio-proxy"},
		"no containers in the note": {map[string]string{InjectionStatusAnnotation: `{"volumes":["istio-xds"]}`}, "without istio-proxy"},
	} {
		err := Injected(pod(tc.ann))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	// A correct mesh: what Istio's injector writes (grpc-agent template).
	ok := `{"initContainers":null,"containers":["istio-proxy"],"volumes":["workload-socket","istio-xds","istio-token"],"imagePullSecrets":null,"revision":"default"}`
	if err := Injected(pod(map[string]string{InjectionStatusAnnotation: ok})); err != nil {
		t.Errorf("an injected pod rejected: %v", err)
	}
}

// With istiod down, the API server's refusal names Istio's webhook: read
// as such, with where it was called and why. Another webhook's failure,
// or a refusal of another kind, is not istiod being down.
func TestWebhookUnreachable(t *testing.T) {
	down := errors.New(`Internal error occurred: failed calling webhook "rev.namespace.sidecar-injector.istio.io": failed to call webhook: Post "https://istiod-1-29-2.istio-system.svc:443/inject/cluster/cluster2/net/network1?timeout=10s": dial tcp 172.30.255.200:443: connect: connection refused`)
	why, ok := WebhookUnreachable(down)
	if !ok || !strings.Contains(why, "rev.namespace.sidecar-injector.istio.io at https://istiod-1-29-2.istio-system.svc:443/inject/cluster/cluster2") || !strings.Contains(why, "connection refused") {
		t.Errorf("istiod down: %q, %v", why, ok)
	}
	noEndpoints := errors.New(`Internal error occurred: failed calling webhook "namespace.sidecar-injector.istio.io": failed to call webhook: Post "https://istiod.istio-system.svc:443/inject?timeout=10s": no endpoints available for service "istiod"`)
	if why, ok := WebhookUnreachable(noEndpoints); !ok || !strings.Contains(why, `no endpoints available for service "istiod"`) {
		t.Errorf("no endpoints: %q, %v", why, ok)
	}
	for name, err := range map[string]error{
		"another webhook": errors.New(`Internal error occurred: failed calling webhook "validate.kyverno.svc-fail": failed to call webhook: Post "https://kyverno-svc.kyverno.svc:443/validate": context deadline exceeded`),
		"pod security":    errors.New(`pods "echo" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true`),
		// istiod up, answering with an error: not istiod down.
		"webhook answered": errors.New(`Internal error occurred: failed calling webhook "namespace.sidecar-injector.istio.io": received invalid webhook response: expected response.uid="1", got ""`),
		"nil":              nil,
	} {
		if why, ok := WebhookUnreachable(err); ok {
			t.Errorf("%s read as istiod down: %q", name, why)
		}
	}
}

// A write refused because istiod's validation webhook could not be called
// (istiod restarting) is read as such, so the write can be retried; a
// webhook that answered and denied it, another webhook's failure, or any
// other refusal is not, and must not be retried into a pass.
func TestIstioWebhookUnreachable(t *testing.T) {
	refused := errors.New(`server-side apply VirtualService sample/backend (force true): Internal error occurred: failed calling webhook "rev.validation.istio.io": failed to call webhook: Post "https://istiod-1-29-2.istio-system.svc:443/validate?timeout=10s": dial tcp 10.96.140.12:443: connect: connection refused`)
	why, ok := IstioWebhookUnreachable(refused)
	if !ok || !strings.Contains(why, "rev.validation.istio.io at https://istiod-1-29-2.istio-system.svc:443/validate") || !strings.Contains(why, "connection refused") {
		t.Errorf("validation webhook refused: %q, %v", why, ok)
	}
	injection := errors.New(`Internal error occurred: failed calling webhook "namespace.sidecar-injector.istio.io": failed to call webhook: Post "https://istiod.istio-system.svc:443/inject?timeout=10s": no endpoints available for service "istiod"`)
	if _, ok := IstioWebhookUnreachable(injection); !ok {
		t.Errorf("injection webhook unreachable not read as such")
	}
	for name, err := range map[string]error{
		"denied":          errors.New(`admission webhook "validation.istio.io" denied the request: configuration is invalid: weights must sum to 100`),
		"bad response":    errors.New(`Internal error occurred: failed calling webhook "validation.istio.io": received invalid webhook response: expected response.uid="1", got ""`),
		"another webhook": errors.New(`Internal error occurred: failed calling webhook "validate.kyverno.svc-fail": failed to call webhook: Post "https://kyverno-svc.kyverno.svc:443/validate": context deadline exceeded`),
		"conflict":        errors.New(`Apply failed with 1 conflict: conflict with "kubectl" using networking.istio.io/v1: .spec.http`),
		"nil":             nil,
	} {
		if why, ok := IstioWebhookUnreachable(err); ok {
			t.Errorf("%s read as Istio's webhook unreachable: %q", name, why)
		}
	}
}
