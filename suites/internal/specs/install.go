package specs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/doctor"
	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/snapshot"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/e2e/verify"
	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/labels"
)

// Install declares the specs of Istio's install guides for the run's
// topology ("Install Primary-Remote" for a primary and its remotes,
// "Install Multi-Primary" between primaries): the install runs once (shared
// with later suites), then one spec per effect the guide's steps should have
// had, on every cluster of that role. Call inside an Ordered container after
// env.Setup.
func Install() {
	env.WillInstallMesh(Label(labels.Install))
	var m *harness.Istio
	r := func() *env.Run { return env.Get() }
	vm := func() *verify.Mesh { return r().Verify(m) }
	// onRemote is the checks' view with remote as the cluster they look at.
	onRemote := func(remote *clusters.Cluster) *verify.Mesh {
		v := vm()
		v.Away = remote
		return v
	}
	// Specs of remote clusters are declared only where the topology has
	// some (not in multi-primary), decided while the tree is built.
	topo := specTopology()
	hasRemotes := topo != nil && len(topo.Remotes()) > 0

	Context("Install Istio multicluster", Ordered, Label(labels.Install), func() {
		BeforeAll(func(ctx SpecContext) {
			var err error
			m, err = r().Mesh(ctx)
			Expect(err).NotTo(HaveOccurred(), "install Istio")
		}, NodeTimeout(30*time.Minute))

		It("runs istiod on every primary, every replica Ready, at the version asked for", func(ctx SpecContext) {
			Expect(vm().IstiodsRunning(ctx, r().H.Topology.IstiodReplicas, 2*time.Minute)).To(Succeed())
		}, NodeTimeout(3*time.Minute))

		It("lists every other cluster as a synced cluster of every istiod replica (remote secrets applied)", func(ctx SpecContext) {
			Eventually(func() error { return vm().RemoteSynced(ctx) }).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		}, NodeTimeout(3*time.Minute))

		// RBAC answers deterministically: asked once, not polled.
		It("holds, in each remote secret, a credential with no more rights than istiod's reader role needs", func(ctx SpecContext) {
			Expect(vm().RemoteCredentialsLeastPrivilege(ctx)).To(Succeed())
		}, NodeTimeout(2*time.Minute))

		if hasRemotes {
			It("gives each remote's injection webhooks istiod's caBundle", func(ctx SpecContext) {
				Expect(r().Remotes()).NotTo(BeEmpty(), "no remote cluster")
				for _, remote := range r().Remotes() {
					expectRemoteWebhooks(ctx, remote, m.Revision)
				}
			}, NodeTimeout(3*time.Minute))

			It("writes istio-ca-root-cert into a namespace created in each remote", func(ctx SpecContext) {
				Expect(r().Remotes()).NotTo(BeEmpty(), "no remote cluster")
				for _, remote := range r().Remotes() {
					Expect(onRemote(remote).RootCertDistributed(ctx)).To(Succeed())
				}
			}, NodeTimeout(2*time.Minute))
		}

		It("passes every doctor check (the same as `meshconform doctor`), and records the environment it judged", func(ctx SpecContext) {
			Expect(r().H.WriteEnvironment(ctx, r().Clusters, m)).To(Succeed())
			rep := doctor.Examine(ctx, vm().Model)
			var table strings.Builder
			Expect(rep.WriteTable(&table)).To(Succeed())
			AddReportEntry("doctor", table.String())
			f, err := os.Create(filepath.Join(r().H.Config.ArtifactsDir, "doctor.json"))
			Expect(err).NotTo(HaveOccurred())
			Expect(rep.WriteJSON(f)).To(Succeed())
			Expect(f.Close()).To(Succeed())
			Expect(rep.Results).NotTo(BeEmpty(), "the doctor ran no check")
			Expect(rep.Failed()).To(BeEmpty(), "doctor:\n%s", table.String())
		}, NodeTimeout(2*time.Minute))

		if hasRemotes {
			It("injects the agent into a pod of each remote, which connects to istiod on its primary", func(ctx SpecContext) {
				Expect(r().Remotes()).NotTo(BeEmpty(), "no remote cluster")
				for i, remote := range r().Remotes() {
					DeferCleanup(onRemote(remote).RemoveInjectionNamespace, NodeTimeout(4*time.Minute))
					took, err := onRemote(remote).RemoteInjection(ctx, 3*time.Minute)
					Expect(err).NotTo(HaveOccurred())
					if i == 0 {
						r().H.Run.Figure("seconds_to_first_remote_proxy", took.Seconds())
					}
				}
			}, NodeTimeout(8*time.Minute))
		}
	})
}

// expectRemoteWebhooks checks the remote's injection webhooks of the
// revision carry istiod's caBundle and the remote's own injection path
// (checks.InjectionWebhooks, the doctor's judge too), polled while the
// remote install settles.
func expectRemoteWebhooks(ctx SpecContext, remote *clusters.Cluster, revision string) {
	GinkgoHelper()
	Eventually(func() error {
		mwcs, err := mesh.InjectionWebhooks(ctx, remote.Client, revision)
		if err != nil {
			return err
		}
		_, err = checks.InjectionWebhooks(remote.Name, checks.InjectionPath(remote.ClusterID, remote.MeshNetwork), mwcs)
		return err
	}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
}

// refusesBrought declares, on clusters the user brought, one failing spec
// in place of a suite that must never run there, and reports whether it did
// (the caller then declares nothing else). Decided while the tree is built,
// so nothing of such a suite can run, not even its BeforeAll.
func refusesBrought(why string) bool {
	if !treeSettings().BringYourOwn() {
		return false
	}
	It("refuses clusters brought by MESHCONFORM_KUBECONFIG", func() {
		Fail(why + ": it runs only on clusters meshconform creates, never on yours")
	})
	return true
}

// treeSettings are the run's settings (env.Settings) for what is decided
// while the spec tree is built. When they cannot be read, the defaults'
// answers stand (clusters meshconform creates, a mesh the run installs)
// and the run's BeforeAll fails with the reason.
func treeSettings() harness.Config {
	cfg, err := env.Settings()
	if err != nil {
		return harness.Config{Mesh: harness.MeshInstall}
	}
	return cfg
}

// specTopology is the run's topology for specs declared by it. When it
// cannot be read, one failing spec says why and nil is returned: the
// caller then declares none of its topology's specs, and no shape is
// guessed.
func specTopology() *topology.Topology {
	topo, err := env.Topology()
	if err != nil {
		It("reads the topology (MESHCONFORM_TOPOLOGY)", func() { Fail(err.Error()) })
		return nil
	}
	return topo
}

// refusesTopology declares, for a topology other than the default's shape
// (one primary, one remote), one failing spec in place of a suite written
// for that shape, and reports whether it did.
func refusesTopology(suite string) bool {
	return declinesTopology(suite, "refuses", Fail)
}

// skipsTopology is refusesTopology for specs run inside another suite
// (the resilience specs in make faults): the spec declared in their place
// is skipped with the reason, so the suite's own specs still decide the
// run; it carries label, so a filter leaving the specs out leaves it out.
func skipsTopology(suite string, label Labels) bool {
	return declinesTopology(suite, "skips", Skip, label)
}

func declinesTopology(suite, verb string, decline func(string, ...int), args ...any) bool {
	topo := specTopology()
	if topo == nil {
		return true
	}
	if len(topo.Primaries()) == 1 && len(topo.Remotes()) == 1 {
		return false
	}
	why := fmt.Sprintf("the %s suite is written for one primary and one remote (MESHCONFORM_TOPOLOGY=primary-remote); %s has %d primaries and %d remotes", suite, topo.Name, len(topo.Primaries()), len(topo.Remotes()))
	It(fmt.Sprintf("%s the %s specs on topology %s", verb, suite, topo.Name), append(args, func() { decline(why) })...)
	return true
}

// Uninstall declares the guide's cleanup and checks that nothing the
// install created remains in any cluster: every object since the
// snapshot taken before the install (harness.Istio.Before), whatever its
// name, and nothing that was there before is blamed (mesh.Leftovers).
func Uninstall() {
	// A mesh the run did not install is not the run's to remove: the spec
	// is not declared at all, so a certified verdict never rests on a skip.
	if treeSettings().Mesh == harness.MeshExisting {
		return
	}
	It("uninstalls Istio as the guide's cleanup does, leaving nothing the install created", Label(labels.Install), func(ctx SpecContext) {
		run := env.Get()
		m := run.InstalledMesh()
		if m == nil {
			Skip("Istio was not installed in this run")
		}
		Expect(m.Installer.Uninstall(ctx, run.Clusters...)).To(Succeed())
		run.ForgetMesh()
		// Without a snapshot there is nothing to prove the cleanup
		// against: fail, rather than pass on an empty comparison.
		var missing []string
		for _, cl := range run.Clusters {
			if _, ok := m.Before[cl.Name]; !ok {
				missing = append(missing, cl.Name)
			}
		}
		Expect(missing).To(BeEmpty(), "no snapshot was taken before Istio was installed on these clusters (installed by hand, or by another process than this run's install): nothing to prove the uninstall against")
		for _, cl := range run.Clusters {
			By("nothing created since the install remains in " + cl.Name)
			before := m.Before[cl.Name]
			var known []string
			// Bounded wait, not a retry: deletions the cleanup starts end
			// on their own (a CRD goes once its objects are gone, and the
			// aggregator then drops its APIServices).
			Eventually(func(g Gomega) {
				after, err := snapshot.Take(ctx, cl.Client.RESTConfig())
				g.Expect(err).NotTo(HaveOccurred(), "snapshot of %s after the uninstall", cl.Name)
				var left []string
				left, known = mesh.Leftovers(before, after)
				g.Expect(left).To(BeEmpty(), "created since the install and still in %s", cl.Name)
			}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(Succeed())
			// The guide's cleanup leaves istiod's config maps in the
			// namespaces that were there before: upstream's known
			// leftover (see mesh.Leftovers), named here, not failed.
			run.H.Run.Figure("uninstall_known_leftovers_"+cl.Name, len(known))
			if len(known) > 0 {
				AddReportEntry("left by the guide's cleanup in "+cl.Name+" (known upstream: "+mesh.UpstreamLeftoverIssue+")",
					fmt.Sprintf("%d: %s", len(known), strings.Join(known, ", ")))
			}
		}
	}, NodeTimeout(10*time.Minute))
}
