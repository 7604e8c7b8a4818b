package specs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/harness"
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
		return addBackendPod(ctx, e, silentPod, func(c *corev1.Container) { c.Args = []string{"sleep"} }, nil)
	},
	repair: func(ctx context.Context, e *faultEnv) error { return removeBackendPod(ctx, e, silentPod) },
}

const silentPod = "backend-silent"

// podSecurityOff: the remote's app namespace created without Pod Security
// labels (by a GitOps tool, a namespace template), and a backend there
// whose injected agent lacks the fixtures' overlay: admitted, since
// nothing enforces, yet no hardened platform would run it.
var podSecurityOff = seededFault{
	name: "cluster2's app namespace without restricted Pod Security, and a backend whose agent is injected without the overlay",
	ref:  "Pod Security Admission: namespace labels; Istio: customizing injection", spec: "restricted-pod-security",
	unless: func(c harness.Config) string {
		if c.PodSecurity() == "" {
			return "the run enforces no Pod Security level (upstream image source: istio-init needs NET_ADMIN)"
		}
		return ""
	},
	check: func(ctx context.Context, e *faultEnv) error {
		return e.vm.AppsUnderPodSecurity(ctx, workloads.PodSecurityRestricted)
	},
	cause: func(e *faultEnv) *regexp.Regexp {
		return regexp.MustCompile(regexp.QuoteMeta(e.vm.Away.Name+": namespace production has pod-security.kubernetes.io/enforce=\"\"") +
			`[\s\S]*` + regexp.QuoteMeta(e.vm.Away.Name+": pod production/"+barePod+": restricted Pod Security refuses it") + `[\s\S]*container "istio-proxy"`)
	},
	seed: func(ctx context.Context, e *faultEnv) error {
		if err := setPodSecurity(ctx, e, ""); err != nil {
			return err
		}
		// The agent keeps its user (it must run under the pod's
		// runAsNonRoot) and loses the rest: privilege escalation allowed,
		// the runtime's default capabilities.
		return addBackendPod(ctx, e, barePod, nil, func(c *corev1.Container) {
			c.SecurityContext = &corev1.SecurityContext{RunAsUser: c.SecurityContext.RunAsUser, RunAsGroup: c.SecurityContext.RunAsGroup}
		})
	},
	repair: func(ctx context.Context, e *faultEnv) error {
		return errors.Join(removeBackendPod(ctx, e, barePod), setPodSecurity(ctx, e, workloads.PodSecurityRestricted))
	},
}

const barePod = "backend-bare"

// setPodSecurity sets the Pod Security labels of the remote's app
// namespace to level's ("" removes them).
func setPodSecurity(ctx context.Context, e *faultEnv, level string) error {
	want := workloads.PodSecurityLabels(level)
	return workloads.UpdateForeign(ctx, e.vm.Away.Client, verify.AppNamespace, "", func(ns *corev1.Namespace) {
		for k := range workloads.PodSecurityLabels(workloads.PodSecurityRestricted) {
			delete(ns.Labels, k)
		}
		for k, v := range want {
			ns.Labels[k] = v
		}
	})
}

// addBackendPod creates, in the remote, a pod named name of backend.yaml's
// first Deployment, as the fixture declares it (labels, injection,
// account), with app and overlay (the istio-proxy overlay) edited, and
// waits for it to be Ready.
func addBackendPod(ctx context.Context, e *faultEnv, name string, app, overlay func(*corev1.Container)) error {
	obj, err := conformance.Object(conformance.BackendFile, "Deployment")
	if err != nil {
		return err
	}
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &d); err != nil {
		return fmt.Errorf("%s: %w", conformance.BackendFile, err)
	}
	pod := &corev1.Pod{ObjectMeta: d.Spec.Template.ObjectMeta, Spec: d.Spec.Template.Spec}
	pod.Name, pod.Namespace = name, verify.AppNamespace
	pod.Labels[name] = "true"
	maps.Copy(pod.Labels, e.vm.Away.PodLabels())
	for i := range pod.Spec.Containers {
		edit := app
		if pod.Spec.Containers[i].Name == workloads.ProxyOverlay {
			edit = overlay
		}
		if edit != nil {
			edit(&pod.Spec.Containers[i])
		}
	}
	cl := e.vm.Away
	workloads.SetEnv(pod, map[string]string{"CLUSTER": cl.Name, "REGION": cl.Region, "ZONE": cl.Zone})
	if err := workloads.SetImages(pod, workloads.Images{"meshconform/meshapp": e.apps.image}); err != nil {
		return err
	}
	u, err := workloads.AsUnstructured(pod)
	if err != nil {
		return err
	}
	if err := workloads.ApplyObject(ctx, cl.Client, u); err != nil {
		return fmt.Errorf("create pod %s in %s: %w", name, cl.Name, err)
	}
	return workloads.WaitReady(ctx, cl.Client, verify.AppNamespace, "app=backend,"+name+"=true", 1, rolloutWait)
}

// removeBackendPod deletes the remote's pod name and waits until it is gone.
func removeBackendPod(ctx context.Context, e *faultEnv, name string) error {
	c := e.vm.Away.Client
	pod := &unstructured.Unstructured{}
	pod.SetAPIVersion("v1")
	pod.SetKind("Pod")
	pod.SetName(name)
	pod.SetNamespace(verify.AppNamespace)
	if err := workloads.DeleteObject(ctx, c, pod, resources.WithGracePeriod(0)); err != nil {
		return err
	}
	if err := poll.Until(ctx, time.Minute, time.Second, func(ctx context.Context) error {
		err := c.Resources().Get(ctx, name, verify.AppNamespace, &corev1.Pod{})
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		return errors.New("still there")
	}); err != nil {
		return fmt.Errorf("wait for pod %s/%s in %s to be gone: %w", verify.AppNamespace, name, e.vm.Away.Name, err)
	}
	return nil
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
