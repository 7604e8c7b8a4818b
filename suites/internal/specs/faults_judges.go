package specs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/poll"
	"github.com/meshconform/meshconform/e2e/verify"
	"github.com/meshconform/meshconform/e2e/workloads"
	"github.com/meshconform/meshconform/fixtures/conformance"
)

// Faults of the classes a check judged from one caller, one pod, or the
// object under test would pass: each passes the former check and must fail
// the one the specs run now.

// oneCallerLocality breaks locality for one cluster's callers only:
// cluster2's frontends carry Istio's istio-locality label with cluster1's
// region and zone, so istiod takes cluster1's endpoints for theirs. The
// primary's callers stay local; judged only from the primary, the mesh
// passed.
var oneCallerLocality = seededFault{
	name: "cluster2's frontends labelled istio-locality with cluster1's region (locality wrong for one cluster's callers)",
	ref:  "Locality Load Balancing: the istio-locality label overrides the node's locality", spec: "locality-failover",
	rules: []string{conformance.FailoverFile},
	check: func(ctx context.Context, e *faultEnv) error { return e.vm.StaysLocalEverywhere(ctx) },
	cause: func(e *faultEnv) *regexp.Regexp {
		p, r := e.vm.Primary, e.vm.Away
		return regexp.MustCompile(`calls from ` + regexp.QuoteMeta(r.Name) + `'s frontend: want every answer from \[` + regexp.QuoteMeta(r.Name) + `\], got \d+ from ` + regexp.QuoteMeta(p.Name) +
			`[\s\S]*of ` + regexp.QuoteMeta(r.Name) + ` carries istio-locality=` + regexp.QuoteMeta(p.Region+"."+p.Zone))
	},
	seed: func(ctx context.Context, e *faultEnv) error {
		return labelRemoteFrontends(ctx, e, e.vm.Primary.Region+"."+e.vm.Primary.Zone)
	},
	repair: func(ctx context.Context, e *faultEnv) error { return labelRemoteFrontends(ctx, e, "") },
}

// labelRemoteFrontends sets (or, with "", removes) the istio-locality
// label of the remote's frontend pods; the rollout waits for the new pods.
func labelRemoteFrontends(ctx context.Context, e *faultEnv, locality string) error {
	return workloads.UpdateDeployment(ctx, e.vm.Away.Client, verify.AppNamespace, "frontend", rolloutWait, func(d *appsv1.Deployment) {
		if locality == "" {
			delete(d.Spec.Template.Labels, "istio-locality")
			return
		}
		d.Spec.Template.Labels["istio-locality"] = locality
	})
}

// silentBackend adds to cluster2 a backend pod that is Ready and SYNCED
// but never answers (the backend's own pod template, sleeping instead of
// serving): gRPC's round robin skips an endpoint it cannot connect to, so
// no call fails and every cluster is still reached.
var silentBackend = seededFault{
	name: "a backend pod in cluster2 that is Ready and SYNCED but never answers",
	ref:  "Istio proxyless gRPC: an endpoint the client cannot connect to is skipped, not failed", spec: "reach-all-clusters",
	check: func(ctx context.Context, e *faultEnv) error { return e.vm.ReachesAllEverywhere(ctx) },
	cause: re(`backend pods ` + silentPod + ` answered none of \d+ calls`),
	seed: func(ctx context.Context, e *faultEnv) error {
		pod, err := silentBackendPod(e)
		if err != nil {
			return err
		}
		if err := workloads.ApplyObject(ctx, e.vm.Away.Client, pod); err != nil {
			return fmt.Errorf("create pod %s in %s: %w", silentPod, e.vm.Away.Name, err)
		}
		return workloads.WaitReady(ctx, e.vm.Away.Client, verify.AppNamespace, "app=backend,silent=true", 1, rolloutWait)
	},
	repair: func(ctx context.Context, e *faultEnv) error {
		c := e.vm.Away.Client
		pod := &unstructured.Unstructured{}
		pod.SetAPIVersion("v1")
		pod.SetKind("Pod")
		pod.SetName(silentPod)
		pod.SetNamespace(verify.AppNamespace)
		if err := workloads.DeleteObject(ctx, c, pod, resources.WithGracePeriod(0)); err != nil {
			return err
		}
		if err := poll.Until(ctx, time.Minute, time.Second, func(ctx context.Context) error {
			err := c.Resources().Get(ctx, silentPod, verify.AppNamespace, &corev1.Pod{})
			switch {
			case apierrors.IsNotFound(err):
				return nil
			case err != nil:
				return err
			}
			return errors.New("still there")
		}); err != nil {
			return fmt.Errorf("wait for pod %s/%s in %s to be gone: %w", verify.AppNamespace, silentPod, e.vm.Away.Name, err)
		}
		return nil
	},
}

const silentPod = "backend-silent"

// silentBackendPod is backend.yaml's first Deployment's pod, as the
// fixture declares it (labels, injection, account), with the app asleep,
// as ApplyObject takes it.
func silentBackendPod(e *faultEnv) (*unstructured.Unstructured, error) {
	obj, err := conformance.Object(conformance.BackendFile, "Deployment")
	if err != nil {
		return nil, err
	}
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", conformance.BackendFile, err)
	}
	pod := &corev1.Pod{ObjectMeta: d.Spec.Template.ObjectMeta, Spec: d.Spec.Template.Spec}
	pod.Name, pod.Namespace = silentPod, verify.AppNamespace
	pod.Labels["silent"] = "true"
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].Args = []string{"sleep"}
	}
	cl := e.vm.Away
	workloads.SetEnv(pod, map[string]string{"CLUSTER": cl.Name, "REGION": cl.Region, "ZONE": cl.Zone})
	if err := workloads.SetImages(pod, workloads.Images{"meshconform/meshapp": e.apps.image}); err != nil {
		return nil, err
	}
	return workloads.AsUnstructured(pod)
}

// backendsAsFrontend runs cluster2's backends under the frontend's service
// account. The identity check read its expectation from the pods'
// serviceAccountName, so it expected what the pods carried and passed;
// the fixtures declare the backend's own account.
var backendsAsFrontend = seededFault{
	name: "cluster2's backends running under the frontend's service account",
	ref:  "Security: workload identities are service accounts (SPIFFE IDs)", spec: "mtls",
	rules: []string{conformance.MTLSFile},
	check: func(ctx context.Context, e *faultEnv) error { return e.vm.MTLSStrict(ctx) },
	cause: re(`(showed identity "spiffe://[^"]+/sa/frontend"|want backend spiffe://\S+/sa/backend and)[\s\S]*backend pod \S+ in \S+ runs as service account "frontend", its fixture declares "backend"`),
	seed: func(ctx context.Context, e *faultEnv) error {
		return setBackendAccount(ctx, e, e.vm.Apps.FrontendAccount)
	},
	repair: func(ctx context.Context, e *faultEnv) error {
		return setBackendAccount(ctx, e, e.vm.Apps.BackendAccount)
	},
}

// setBackendAccount sets the service account of the remote's backend
// Deployments and waits for their rollouts.
func setBackendAccount(ctx context.Context, e *faultEnv, account string) error {
	ds, err := conformance.BackendDeployments()
	if err != nil {
		return err
	}
	for name := range ds {
		if err := workloads.UpdateDeployment(ctx, e.vm.Away.Client, verify.AppNamespace, name, rolloutWait, func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.ServiceAccountName = account
		}); err != nil {
			return err
		}
	}
	return workloads.WaitNoneTerminating(ctx, e.vm.Away.Client, verify.AppNamespace, rolloutWait)
}

// foreignRules puts, in place of the suite's VirtualService, one of the
// same name that someone else created (a user's, or another tool's). The
// suite once kept such an object as if it were its own, judged the mesh
// against rules it had not written, and deleted it at the end: applying
// the rules now refuses it, naming its manager, and leaves it alone.
var foreignRules = seededFault{
	name: "a VirtualService of the same name as the suite's, created by someone else",
	ref:  "Kubernetes server-side apply: field managers", spec: "traffic-rules (applying the rules)",
	rules: []string{conformance.TrafficRulesFile},
	check: func(ctx context.Context, e *faultEnv) error {
		return workloads.ApplyFS(ctx, e.vm.Primary.Client, conformance.Manifests, conformance.TrafficRulesFile, verify.AppNamespace, workloads.Overrides{})
	},
	cause: re(`VirtualService production/\S+ exists and was not created by meshconform \(managed by [^)]*\(Update\)\): refusing`),
	seed: func(ctx context.Context, e *faultEnv) error {
		obj, err := conformance.Object(conformance.TrafficRulesFile, "VirtualService")
		if err != nil {
			return err
		}
		u, c := appObject(obj), e.vm.Primary.Client
		// Ours, applied with the rules: deleted as ours.
		if err := workloads.DeleteObject(ctx, c, u); err != nil {
			return err
		}
		// A plain create, as kubectl create does: another field manager,
		// by Update, not ours.
		return workloads.CreateForeign(ctx, c, u)
	},
	repair: func(ctx context.Context, e *faultEnv) error {
		obj, err := conformance.Object(conformance.TrafficRulesFile, "VirtualService")
		if err != nil {
			return err
		}
		// Whoever's it is now: the foreign one the seed made, or ours.
		if err := workloads.DeleteForeign(ctx, e.vm.Primary.Client, appObject(obj)); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return workloads.ApplyFS(ctx, e.vm.Primary.Client, conformance.Manifests, conformance.TrafficRulesFile, verify.AppNamespace, workloads.Overrides{})
	},
}
