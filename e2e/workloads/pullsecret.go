package workloads

import (
	"context"
	"encoding/base64"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/e2e-framework/klient"
)

// PullSecretName is the Secret of the user's registry credentials the run
// puts beside every pod that pulls a sample app from the user's registry.
const PullSecretName = "meshconform-image-pull"

// PullSecret is the user's registry credentials (a docker config JSON) as
// the run copies them into its namespaces: a Secret of its own in each
// namespace it pulls an app into, named by those pods' imagePullSecrets.
// Only the run's pods name it, and it goes with their namespace. It never
// prints its content.
type PullSecret struct {
	dockerConfigJSON []byte
}

// NewPullSecret holds a docker config JSON (already checked by the caller).
func NewPullSecret(dockerConfigJSON []byte) *PullSecret {
	return &PullSecret{dockerConfigJSON: dockerConfigJSON}
}

// String keeps the credentials out of any log that prints the secret.
func (p *PullSecret) String() string { return "Secret " + PullSecretName + " (content not shown)" }

// object is the Secret in namespace ns.
func (p *PullSecret) object(ns string) *unstructured.Unstructured {
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata":   map[string]any{"name": PullSecretName, "namespace": ns},
		"type":       string(corev1.SecretTypeDockerConfigJson),
		"data":       map[string]any{corev1.DockerConfigJsonKey: base64.StdEncoding.EncodeToString(p.dockerConfigJSON)},
	}}
	return obj
}

// Ensure puts the Secret into namespace ns (applied as the run's own).
func (p *PullSecret) Ensure(ctx context.Context, c klient.Client, ns string) error {
	return apply(ctx, c, p.object(ns))
}

// AddTo makes a pod spec pull with the secret.
func (p *PullSecret) AddTo(spec *corev1.PodSpec) {
	for _, s := range spec.ImagePullSecrets {
		if s.Name == PullSecretName {
			return
		}
	}
	spec.ImagePullSecrets = append(spec.ImagePullSecrets, corev1.LocalObjectReference{Name: PullSecretName})
}
