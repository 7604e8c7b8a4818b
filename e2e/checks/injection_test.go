package checks

import (
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
