package workloads

import (
	"context"
	"encoding/base64"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// Ensure puts the Secret into namespace ns, one of the run's: created,
// never read (the run's credentials need not read secrets there), and
// one already there is this run's own from an earlier workload.
func (p *PullSecret) Ensure(ctx context.Context, c klient.Client, ns string) error {
	return createPullSecret(ctx, c, p.object(ns))
}

func createPullSecret(ctx context.Context, c klient.Client, obj *unstructured.Unstructured) error {
	if err := c.Resources().Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Secret %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// isPullSecret says whether a rendered object is the pull secret.
func isPullSecret(obj *unstructured.Unstructured) bool {
	return obj.GetKind() == "Secret" && obj.GetName() == PullSecretName
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
