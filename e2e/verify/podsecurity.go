package verify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// AppsUnderPodSecurity rejects a run whose sample apps would not be
// admitted on a cluster that enforces level, or whose clusters did not
// enforce it: every cluster's app namespace carries level's enforce label,
// its API server refuses (server-side dry run: nothing is created) a pod
// level forbids, and every app pod, as the cluster runs it (after
// injection), passes level (checks.PodsPassPodSecurity).
func (m *Mesh) AppsUnderPodSecurity(ctx context.Context, level string) error {
	byCluster := map[string][]corev1.Pod{}
	var errs []error
	for _, cl := range m.Clusters {
		if err := enforces(ctx, cl, level); err != nil {
			errs = append(errs, err)
		}
		var pods corev1.PodList
		if err := cl.Client.Resources(AppNamespace).List(ctx, &pods, resources.WithLabelSelector("app in (frontend,backend)")); err != nil {
			return fmt.Errorf("list app pods in %s: %w", cl.Name, err)
		}
		byCluster[cl.Name] = nil
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				byCluster[cl.Name] = append(byCluster[cl.Name], p)
			}
		}
	}
	return errors.Join(append(errs, checks.PodsPassPodSecurity(level, byCluster))...)
}

// enforces rejects a cluster whose app namespace does not enforce level:
// the label missing, or an API server without Pod Security admission (a
// platform that turned it off for a policy engine of its own) that admits
// a pod level forbids.
func enforces(ctx context.Context, cl *clusters.Cluster, level string) error {
	var ns corev1.Namespace
	if err := cl.Client.Resources().Get(ctx, AppNamespace, "", &ns); err != nil {
		return fmt.Errorf("%s: read namespace %s: %w", cl.Name, AppNamespace, err)
	}
	want := workloads.PodSecurityLabels(level)
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if ns.Labels[k] != want[k] {
			return fmt.Errorf("%s: namespace %s has %s=%q, want %q", cl.Name, AppNamespace, k, ns.Labels[k], want[k])
		}
	}
	// A pod every level but privileged refuses; not injected, so only
	// Pod Security judges it.
	yes := true
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "pod-security-probe-", Namespace: AppNamespace, Annotations: map[string]string{"sidecar.istio.io/inject": "false"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "pod-security-probe", SecurityContext: &corev1.SecurityContext{Privileged: &yes}}}},
	}
	err := cl.Client.Resources().Create(ctx, probe, func(o *metav1.CreateOptions) { o.DryRun = []string{metav1.DryRunAll} })
	switch {
	case err == nil:
		return fmt.Errorf("%s: the API server admitted (dry run) a privileged pod into %s, labelled %s: Pod Security admission is not enforcing there", cl.Name, AppNamespace, level)
	case !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity"):
		return fmt.Errorf("%s: a privileged pod (dry run) into %s was refused, but not by Pod Security: %w", cl.Name, AppNamespace, err)
	}
	return nil
}
