package specs

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/doctor"
	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/verify"
	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/labels"
)

// Install declares the specs of Istio's "Install Primary-Remote" guide: the
// install runs once (shared with later suites), then one spec per effect
// the guide's steps should have had. Call inside an Ordered container after
// env.Setup.
func Install() {
	env.WillInstallMesh(Label(labels.Install))
	var m *harness.Mesh
	r := func() *env.Run { return env.Get() }
	vm := func() *verify.Mesh { return r().Verify(m) }

	Context("Install Primary-Remote", Ordered, Label(labels.Install), func() {
		BeforeAll(func(ctx SpecContext) {
			var err error
			m, err = r().Mesh(ctx)
			Expect(err).NotTo(HaveOccurred(), "install Istio primary-remote")
		}, NodeTimeout(30*time.Minute))

		It("runs istiod on the primary, Ready, at the version asked for", func(ctx SpecContext) {
			primary := r().Primary()
			name := "istiod"
			if m.Revision != "" {
				name += "-" + m.Revision
			}
			Eventually(func(g Gomega) {
				var d appsv1.Deployment
				g.Expect(primary.Client.Resources(mesh.Namespace).Get(ctx, name, mesh.Namespace, &d)).To(Succeed())
				g.Expect(d.Status.ReadyReplicas).To(BeNumerically(">=", 1), "deployment %s ready replicas", name)
			}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
			pods, err := mesh.IstiodPods(ctx, primary.Client, m.Revision)
			Expect(err).NotTo(HaveOccurred())
			Expect(pods).NotTo(BeEmpty())
			Expect(mesh.ImageVersion(pods[0].Spec.Containers[0].Image)).To(Equal(m.Version), "istiod image %s", pods[0].Spec.Containers[0].Image)
		}, NodeTimeout(3*time.Minute))

		It("lists the remote as a synced cluster of istiod (remote secret applied)", func(ctx SpecContext) {
			Eventually(func() error { return vm().RemoteSynced(ctx) }).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		}, NodeTimeout(3*time.Minute))

		It("gives the remote's injection webhooks istiod's caBundle", func(ctx SpecContext) {
			remote := r().Remote()
			rev := m.Revision
			if rev == "" {
				rev = "default"
			}
			Eventually(func(g Gomega) {
				var list admissionv1.MutatingWebhookConfigurationList
				g.Expect(remote.Client.Resources().List(ctx, &list, resources.WithLabelSelector("istio.io/rev="+rev))).To(Succeed())
				g.Expect(list.Items).NotTo(BeEmpty(), "no injection webhook for revision %s in %s", rev, remote.Name)
				for _, mwc := range list.Items {
					for _, wh := range mwc.Webhooks {
						g.Expect(wh.ClientConfig.CABundle).NotTo(BeEmpty(), "webhook %s/%s has no caBundle", mwc.Name, wh.Name)
						if wh.ClientConfig.Service != nil {
							g.Expect(*wh.ClientConfig.Service.Path).To(Equal("/inject/cluster/"+remote.Name+"/net/"+remote.MeshNetwork),
								"webhook %s/%s injection path", mwc.Name, wh.Name)
						}
					}
				}
			}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		}, NodeTimeout(3*time.Minute))

		It("writes istio-ca-root-cert into a namespace created in the remote", func(ctx SpecContext) {
			Expect(vm().RootCertDistributed(ctx)).To(Succeed())
		}, NodeTimeout(2*time.Minute))

		It("passes every doctor check (the same as `meshconform doctor`), and records the environment it judged", func(ctx SpecContext) {
			rep := doctor.Run(ctx, doctor.Mesh{Primary: r().Primary(), Remotes: []*clusters.Cluster{r().Remote()}, Revision: m.Revision})
			var table strings.Builder
			Expect(rep.WriteTable(&table)).To(Succeed())
			AddReportEntry("doctor", table.String())
			f, err := os.Create(filepath.Join(r().H.Config.ArtifactsDir, "doctor.json"))
			Expect(err).NotTo(HaveOccurred())
			Expect(rep.WriteJSON(f)).To(Succeed())
			Expect(f.Close()).To(Succeed())
			Expect(r().H.WriteEnvironment(ctx, r().Clusters, m)).To(Succeed())
			Expect(rep.Failed()).To(BeEmpty(), "doctor:\n%s", table.String())
		}, NodeTimeout(2*time.Minute))

		It("injects the agent into a pod of the remote, which connects to istiod on the primary", func(ctx SpecContext) {
			took, err := vm().RemoteInjection(ctx, 3*time.Minute)
			Expect(err).NotTo(HaveOccurred())
			r().H.Run.Figure("seconds_to_first_remote_proxy", took.Seconds())
		}, NodeTimeout(8*time.Minute))
	})
}

// refusesBrought declares, on clusters the user brought, one failing spec
// in place of a suite that must never run there, and reports whether it did
// (the caller then declares nothing else). Decided while the tree is built,
// so nothing of such a suite can run, not even its BeforeAll.
func refusesBrought(why string) bool {
	if !harness.BringYourOwnFromEnv() {
		return false
	}
	It("refuses clusters brought by MESHCONFORM_KUBECONFIG", func() {
		Fail(why + ": it runs only on clusters meshconform creates, never on yours")
	})
	return true
}

// Uninstall declares the guide's cleanup and checks nothing of Istio
// remains in either cluster.
func Uninstall() {
	// A mesh the run did not install is not the run's to remove: the spec
	// is not declared at all, so a certified verdict never rests on a skip.
	if harness.MeshModeFromEnv() == harness.MeshExisting {
		return
	}
	It("uninstalls Istio as the guide's cleanup does, leaving no CRD, webhook, namespace or cluster role", Label(labels.Install), func(ctx SpecContext) {
		run := env.Get()
		m := run.InstalledMesh()
		if m == nil {
			Skip("Istio was not installed in this run")
		}
		Expect(m.Installer.Uninstall(ctx, run.Primary(), run.Remote())).To(Succeed())
		run.ForgetMesh()
		for _, cl := range run.Clusters {
			left, err := mesh.Remains(ctx, cl.Client)
			Expect(err).NotTo(HaveOccurred())
			Expect(left).To(BeEmpty(), "Istio left in %s", cl.Name)
		}
	}, NodeTimeout(10*time.Minute))
}
