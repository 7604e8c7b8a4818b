package checks

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// PodSecurity rejects a pod that level (latest version) would not admit,
// naming every check it fails. The evaluator is the one the API server's
// Pod Security admission runs: a pod this passes, that admits.
func PodSecurity(level string, meta metav1.ObjectMeta, spec corev1.PodSpec) error {
	lvl, err := psapi.ParseLevel(level)
	if err != nil {
		return err
	}
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		return err
	}
	res := policy.AggregateCheckResults(ev.EvaluatePod(psapi.LevelVersion{Level: lvl, Version: psapi.LatestVersion()}, &meta, &spec))
	if res.Allowed {
		return nil
	}
	return fmt.Errorf("%s Pod Security refuses it: %s (%s)", level, res.ForbiddenReason(), res.ForbiddenDetail())
}

// PodsPassPodSecurity rejects app pods, as their clusters run them (after
// injection), that level would not admit: an injected container without
// the fixtures' overlay, a fixture that lost its securityContext, a
// webhook that adds a privileged container. Each pod failing is named
// with its cluster. Clusters with no pod listed are an error: nothing
// judged is no pass.
func PodsPassPodSecurity(level string, byCluster map[string][]corev1.Pod) error {
	if len(byCluster) == 0 {
		return fmt.Errorf("no cluster's pods to judge")
	}
	var errs []error
	for _, cl := range sortedKeys(byCluster) {
		pods := byCluster[cl]
		if len(pods) == 0 {
			errs = append(errs, fmt.Errorf("%s: no app pod to judge", cl))
		}
		for _, p := range pods {
			if err := PodSecurity(level, p.ObjectMeta, p.Spec); err != nil {
				errs = append(errs, fmt.Errorf("%s: pod %s/%s: %w", cl, p.Namespace, p.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}
