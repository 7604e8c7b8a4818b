package specs

import (
	"context"
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/verify"
	"github.com/meshconform/meshconform/e2e/workloads"
	"github.com/meshconform/meshconform/fixtures/conformance"
	"github.com/meshconform/meshconform/suites/internal/env"
)

// sampleApps deploys the sample apps of fixtures/conformance to the run's
// clusters and describes where they are to the checks (a verify.Mesh).
// Every manifest is applied from the bytes compiled into the suite
// (conformance.Manifests), the same bytes the checks' expectations are
// read from, never from the files on disk, which may have changed since.
type sampleApps struct {
	image string
	// pull is what pods pulling image need beside them (nil: nothing).
	pull *workloads.PullSecret
	mesh *verify.Mesh
	// forwards are the port-forwards to frontends, stopped by remove.
	forwards []func()
}

// deploySampleApps installs the mesh if needed, builds the app image and
// creates the apps' namespace, injection on, in every cluster.
func deploySampleApps(ctx context.Context) *sampleApps {
	GinkgoHelper()
	r := env.Get()
	m, err := r.Mesh(ctx)
	Expect(err).NotTo(HaveOccurred(), "install Istio primary-remote")
	image, err := r.H.App(ctx, "meshapp")
	Expect(err).NotTo(HaveOccurred())
	a := &sampleApps{
		image: image,
		pull:  r.H.PullSecret(),
		mesh:  r.Verify(m),
	}
	a.mesh.Apps = appIntent()
	for _, cl := range r.Clusters {
		Expect(workloads.CreateNamespace(ctx, cl.Client, r.H.RunLabels(), verify.AppNamespace, injectionLabels(m))).To(Succeed())
	}
	return a
}

// appIntent is what the apps' fixtures declare, for the checks to judge
// against.
func appIntent() verify.AppIntent {
	GinkgoHelper()
	backend, err := conformance.ServiceAccount(conformance.BackendFile)
	Expect(err).NotTo(HaveOccurred())
	frontend, err := conformance.ServiceAccount(conformance.FrontendFile)
	Expect(err).NotTo(HaveOccurred())
	return verify.AppIntent{BackendAccount: backend, FrontendAccount: frontend}
}

func injectionLabels(m *harness.Istio) map[string]string {
	if m.Revision != "" {
		return map[string]string{"istio.io/rev": m.Revision}
	}
	return map[string]string{"istio-injection": "enabled"}
}

// apply applies a fixture to cl, telling the app which cluster and
// locality it runs in (a pod cannot read its node's labels; the checks
// never trust this, see checks.ServedFrom).
func (a *sampleApps) apply(ctx context.Context, cl *clusters.Cluster, file, ns string) {
	GinkgoHelper()
	Expect(workloads.ApplyFS(ctx, cl.Client, conformance.Manifests, file, ns, workloads.Overrides{
		Images:     workloads.Images{"meshconform/meshapp": a.image},
		Env:        map[string]string{"CLUSTER": cl.Name, "REGION": cl.Region, "ZONE": cl.Zone},
		PodLabels:  cl.PodLabels(),
		PullSecret: a.pull,
	})).To(Succeed(), "deploy %s to %s/%s", file, cl.Name, ns)
}

func (a *sampleApps) waitBackend(ctx context.Context, cl *clusters.Cluster) {
	GinkgoHelper()
	replicas, err := conformance.BackendReplicas()
	Expect(err).NotTo(HaveOccurred())
	n := 0
	for _, r := range replicas {
		n += r
	}
	Expect(workloads.WaitReady(ctx, cl.Client, verify.AppNamespace, "app=backend", n, 3*time.Minute)).To(Succeed())
}

// serviceOnly creates the backend Service without pods, as the guide does
// for clusters that only call it.
func (a *sampleApps) serviceOnly(ctx context.Context, cl *clusters.Cluster) {
	GinkgoHelper()
	a.apply(ctx, cl, conformance.BackendServiceFile, verify.AppNamespace)
}

// frontendApplied deploys the frontend to cl without waiting.
func (a *sampleApps) frontendApplied(ctx context.Context, cl *clusters.Cluster) {
	GinkgoHelper()
	a.apply(ctx, cl, conformance.FrontendFile, verify.AppNamespace)
	if env.Get().H.Config.FrontendVia() == harness.FrontendLoadBalancer {
		a.apply(ctx, cl, conformance.FrontendServiceFile, verify.AppNamespace)
	}
}

// frontendReady waits for cl's frontend and records its address.
func (a *sampleApps) frontendReady(ctx context.Context, cl *clusters.Cluster) {
	GinkgoHelper()
	n, err := conformance.FrontendReplicas()
	Expect(err).NotTo(HaveOccurred())
	Expect(workloads.WaitReady(ctx, cl.Client, verify.AppNamespace, "app=frontend", n, 3*time.Minute)).To(Succeed())
	if env.Get().H.Config.FrontendVia() == harness.FrontendLoadBalancer {
		// An IP, or the host name a cloud load balancer gets.
		addr, err := mesh.LoadBalancerAddress(ctx, cl.Client, verify.AppNamespace, "frontend", 2*time.Minute)
		Expect(err).NotTo(HaveOccurred(), "frontend in %s", cl.Name)
		a.mesh.Frontends[cl.Name] = "http://" + net.JoinHostPort(addr, "80")
		return
	}
	// Outlives this node: the forward serves every later spec, until remove.
	base, stop, err := workloads.PortForward(context.WithoutCancel(ctx), cl.Client, verify.AppNamespace, "app=frontend", conformance.FrontendPort)
	Expect(err).NotTo(HaveOccurred(), "port-forward to the frontend in %s", cl.Name)
	a.forwards = append(a.forwards, stop)
	a.mesh.Frontends[cl.Name] = base
}

// outsider runs a client outside the mesh in cl (its namespace has no
// injection), for plaintext calls.
func (a *sampleApps) outsider(ctx context.Context, cl *clusters.Cluster) {
	GinkgoHelper()
	Expect(workloads.CreateNamespace(ctx, cl.Client, a.mesh.RunLabels, verify.OutsideNamespace, nil)).To(Succeed())
	a.apply(ctx, cl, conformance.OutsiderFile, verify.OutsideNamespace)
	Expect(workloads.WaitReady(ctx, cl.Client, verify.OutsideNamespace, "app=outsider", 1, 2*time.Minute)).To(Succeed())
}

// applyRules applies an Istio config fixture on every primary (a
// multi-primary mesh has no shared configuration: the guide applies it to
// each) and removes it when the spec ends. The failover rule is rendered
// for the caller's region → the away cluster's (applyFailover).
func (a *sampleApps) applyRules(ctx context.Context, file string) {
	GinkgoHelper()
	if file == conformance.FailoverFile {
		a.applyFailover(ctx, a.mesh.Primary.Region, a.mesh.Away.Region)
		return
	}
	for _, p := range a.mesh.Primaries() {
		Expect(workloads.ApplyFS(ctx, p.Client, conformance.Manifests, file, verify.AppNamespace, workloads.Overrides{})).To(Succeed(), "apply %s on %s", file, p.Name)
		DeferCleanup(workloads.DeleteFS, p.Client, conformance.Manifests, file, verify.AppNamespace)
	}
}

// applyFailover applies (or replaces) the failover rule from region from
// to region to on every primary, and removes it when the spec ends.
func (a *sampleApps) applyFailover(ctx context.Context, from, to string) {
	GinkgoHelper()
	for _, p := range a.mesh.Primaries() {
		u := failoverRule(from, to)
		Expect(workloads.ApplyObject(ctx, p.Client, u)).To(Succeed(), "failover rule %s → %s on %s", from, to, p.Name)
		DeferCleanup(func(ctx context.Context) error { return workloads.DeleteObject(ctx, p.Client, failoverRule(from, to)) })
	}
}

// failoverRule is the rendered failover DestinationRule in the apps'
// namespace.
func failoverRule(from, to string) *unstructured.Unstructured {
	GinkgoHelper()
	obj, err := conformance.FailoverRule(from, to)
	Expect(err).NotTo(HaveOccurred())
	return appObject(obj)
}

// appObject is a fixture's object (Istio's kinds have no Go types here) in
// the apps' namespace.
func appObject(obj map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: obj}
	u.SetNamespace(verify.AppNamespace)
	return u
}

// scaleBackend scales every backend deployment of cl to its fixture's
// replicas times factor (0 or 1).
func (a *sampleApps) scaleBackend(ctx context.Context, cl *clusters.Cluster, factor int32) {
	GinkgoHelper()
	ds, err := conformance.BackendDeployments()
	Expect(err).NotTo(HaveOccurred())
	for name, replicas := range ds {
		Expect(workloads.Scale(ctx, cl.Client, verify.AppNamespace, name, replicas*factor)).To(Succeed())
	}
}

// remove deletes the apps' namespaces from every cluster.
func (a *sampleApps) remove(ctx context.Context) {
	GinkgoHelper()
	for _, stop := range a.forwards {
		stop()
	}
	a.forwards = nil
	var nss []workloads.Namespace
	for _, cl := range a.mesh.Clusters {
		nss = append(nss, workloads.Namespace{Client: cl.Client, Name: verify.AppNamespace},
			workloads.Namespace{Client: cl.Client, Name: verify.OutsideNamespace})
	}
	if env.Get().H.Config.BringYourOwn() {
		// The teardown waits for every namespace of the run at once (and
		// the audit needs them gone): no wait here, one wait there.
		for _, ns := range nss {
			Expect(workloads.StartDeletingNamespace(ctx, ns.Client, ns.Name)).To(Succeed())
		}
		return
	}
	Expect(workloads.DeleteNamespaces(ctx, nss...)).To(Succeed())
}

// expectedProxies is how many app proxies run with the backend and the
// frontend in every cluster.
func expectedProxies(clusterCount int) int {
	GinkgoHelper()
	replicas, err := conformance.BackendReplicas()
	Expect(err).NotTo(HaveOccurred())
	f, err := conformance.FrontendReplicas()
	Expect(err).NotTo(HaveOccurred())
	n := f
	for _, r := range replicas {
		n += r
	}
	return n * clusterCount
}
