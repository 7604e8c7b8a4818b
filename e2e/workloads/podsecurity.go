package workloads

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	psapi "k8s.io/pod-security-admission/api"

	"github.com/meshconform/meshconform/e2e/internal/kvlist"
)

// PodSecurityRestricted is the Pod Security Standard the sample apps are
// written to pass: what hardened platforms (OpenShift, Rancher's hardened
// profile, many vendors' defaults) enforce on application namespaces.
const PodSecurityRestricted = string(psapi.LevelRestricted)

// PodSecurityLabels are the namespace labels under which the API server's
// Pod Security admission enforces level (latest version) on every pod the
// namespace admits; "" enforces nothing of ours (the cluster's default).
func PodSecurityLabels(level string) map[string]string {
	if level == "" {
		return nil
	}
	return map[string]string{psapi.EnforceLevelLabel: level, psapi.EnforceVersionLabel: psapi.VersionLatest}
}

// ParseNamespaceLabels reads "key=value,key=value" (spaces allowed): the
// labels a user's cluster wants on the run's namespaces (a policy engine's
// opt-in, a cost centre). Each must be a valid label, and none may take
// over a label the run sets itself (its ID, the Pod Security it proves).
func ParseNamespaceLabels(s string) (map[string]string, error) {
	out, err := kvlist.Parse(s, "namespace label key", "value", true)
	if err != nil {
		return nil, err
	}
	return out, CheckNamespaceLabels(out)
}

// CheckNamespaceLabels rejects labels the API server would refuse and
// labels the run owns.
func CheckNamespaceLabels(m map[string]string) error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(m)) {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, fmt.Errorf("namespace label key %q: %s", k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(m[k]) {
			errs = append(errs, fmt.Errorf("namespace label %s value %q: %s", k, m[k], msg))
		}
		switch {
		case k == RunLabel || strings.HasPrefix(k, "pod-security.kubernetes.io/enforce"):
			errs = append(errs, fmt.Errorf("namespace label %s is the run's own (its ID, or the Pod Security its pods are proven to pass)", k))
		case k == "istio-injection" || strings.HasPrefix(k, "istio.io/"):
			errs = append(errs, fmt.Errorf("namespace label %s decides Istio's injection, which each of the run's namespaces sets for itself (the outsider's namespace must stay out of the mesh)", k))
		}
	}
	return errors.Join(errs...)
}
