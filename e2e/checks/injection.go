package checks

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

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

// webhookCall matches the API server's error for a webhook it could not
// call: `failed calling webhook "NAME": failed to call webhook: Post
// "URL": CAUSE`.
var webhookCall = regexp.MustCompile(`failed calling webhook "([^"]+)": (?:failed to call webhook: )?(?:Post "([^"]+)": )?(.*)`)

// WebhookUnreachable reads an object creation's error as Istio's
// injection webhook (a *sidecar-injector.istio.io webhook) not answering
// (istiod down or unreachable), and says so with the webhook, where the
// API server called it and why that failed. Any other error (another
// webhook, a quota, Pod Security) is not it.
func WebhookUnreachable(err error) (string, bool) {
	name, url, cause, ok := uncalledWebhook(err)
	if !ok || !strings.HasSuffix(name, "sidecar-injector.istio.io") {
		return "", false
	}
	return fmt.Sprintf("the API server could not call Istio's injection webhook %s at %s (%s): no istiod answers it, and the webhook fails closed", name, url, cause), true
}

// IstioWebhookUnreachable reads a write's error as any of Istio's webhooks
// (named *.istio.io: injection, validation) not answering, as
// WebhookUnreachable does for injection: what a write sees while istiod
// restarts, its old pod shutting its servers with its address still
// routed to. A webhook that answered, whatever it said, is not it.
func IstioWebhookUnreachable(err error) (string, bool) {
	name, url, cause, ok := uncalledWebhook(err)
	if !ok || !strings.HasSuffix(name, ".istio.io") {
		return "", false
	}
	return fmt.Sprintf("the API server could not call Istio's webhook %s at %s (%s)", name, url, cause), true
}

// uncalledWebhook parses the API server's error for a webhook it could not
// call. Only a failed call (Post "URL": the connection's error) counts: a
// webhook that answered with an error or a bad response is up, and
// refusing for another reason.
func uncalledWebhook(err error) (name, url, cause string, ok bool) {
	if err == nil {
		return "", "", "", false
	}
	m := webhookCall.FindStringSubmatch(err.Error())
	if m == nil || m[2] == "" {
		return "", "", "", false
	}
	return m[1], m[2], strings.TrimSpace(m[3]), true
}
