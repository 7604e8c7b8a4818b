package checks

import (
	"encoding/json"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// InjectionStatusAnnotation is the annotation Istio's injector writes on
// every pod it injects, naming the containers and volumes it added.
const InjectionStatusAnnotation = "sidecar.istio.io/status"

// Injected rejects a pod the injector did not inject: the webhook not
// called (namespace not selected, webhook missing) or a template that adds
// no istio-proxy. The proof is the injector's own status annotation naming
// istio-proxy, not a container of that name: the sample apps declare an
// istio-proxy container themselves (the overlay that makes the injected one
// pass restricted Pod Security), so a pod the webhook never saw has one too.
func Injected(pod corev1.Pod) error {
	raw, ok := pod.Annotations[InjectionStatusAnnotation]
	if !ok {
		return fmt.Errorf("pod %s/%s was not injected: no %s annotation (the injection webhook did not mutate it)", pod.Namespace, pod.Name, InjectionStatusAnnotation)
	}
	var status struct {
		Containers []string `json:"containers"`
	}
	if err := json.Unmarshal([]byte(raw), &status); err != nil {
		return fmt.Errorf("pod %s/%s: %s is not the injector's JSON: %w", pod.Namespace, pod.Name, InjectionStatusAnnotation, err)
	}
	if !slices.Contains(status.Containers, "istio-proxy") {
		return fmt.Errorf("pod %s/%s was injected without istio-proxy (%s names containers %v)", pod.Namespace, pod.Name, InjectionStatusAnnotation, status.Containers)
	}
	return nil
}
