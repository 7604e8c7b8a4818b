package specs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sync/errgroup"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/report"
	"github.com/meshconform/meshconform/e2e/traffic"
	"github.com/meshconform/meshconform/e2e/upgrade"
	"github.com/meshconform/meshconform/e2e/verify"
	"github.com/meshconform/meshconform/e2e/workloads"
	"github.com/meshconform/meshconform/fixtures/conformance"
	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/labels"
)

// RevisionTag is the stable revision tag the canary upgrade moves (the
// guide's "prod-stable").
const RevisionTag = "prod-stable"

// Upgrade declares the upgrade suite: Istio's "Canary Upgrades" (with a
// rollback) and "In-place Upgrades" of the primary-remote mesh, each on
// its own fresh install, under continuous traffic from the frontends of
// both clusters, every phase judged as it ends and the whole time line at
// the end. Call inside an Ordered container after env.Setup.
func Upgrade() {
	if err := treeSettings().UpgradeRefusal(); err != nil {
		It("refuses these settings", func() { Fail(err.Error()) })
		return
	}
	if refusesTopology("upgrade") {
		return
	}
	env.WillInstallMesh(Label(labels.Upgrade))
	env.MeshVersions = func(c harness.Config) []string { return []string{c.Upgrade.From, c.Upgrade.To} }
	canaryUpgrade()
	inPlaceUpgrade()
}

func canaryUpgrade() {
	u := &upgradeRun{method: upgrade.Canary}
	Context("Canary upgrade with rollback, under traffic", Ordered, Label(labels.Upgrade, labels.CanaryUpgrade), func() {
		u.declareStart()

		It("installs the new version as a canary revision beside the old one: both istiods sync the remote, no proxy moves", func(ctx SpecContext) {
			u.phase(ctx, upgrade.CanaryInstalled, func() {
				var err error
				u.to.Discovery, err = u.to.Installer.AddRevision(ctx, u.primary, u.remote)
				Expect(err).NotTo(HaveOccurred())
				u.live = append(u.live, u.to)
			})
		}, NodeTimeout(10*time.Minute))

		It("moves the revision tag to the new revision in both clusters and restarts the primary's workloads onto it", func(ctx SpecContext) {
			u.phase(ctx, upgrade.PrimaryMoved, func() {
				Expect(u.to.Installer.SetTag(ctx, RevisionTag, u.primary, u.remote)).To(Succeed())
				u.restart(ctx, u.primary)
			})
		}, NodeTimeout(10*time.Minute))

		It("restarts the remote's workloads onto the new revision", func(ctx SpecContext) {
			u.phase(ctx, upgrade.RemoteMoved, func() { u.restart(ctx, u.remote) })
		}, NodeTimeout(10*time.Minute))

		It("rolls back: the tag moved back to the old revision, every workload restarted onto it", func(ctx SpecContext) {
			u.phase(ctx, upgrade.RolledBack, func() {
				Expect(u.from.Installer.SetTag(ctx, RevisionTag, u.primary, u.remote)).To(Succeed())
				u.restart(ctx, u.primary)
				u.restart(ctx, u.remote)
			})
		}, NodeTimeout(10*time.Minute))

		It("rolls forward again: the tag on the new revision, every workload restarted onto it", func(ctx SpecContext) {
			u.phase(ctx, upgrade.RolledForward, func() {
				Expect(u.to.Installer.SetTag(ctx, RevisionTag, u.primary, u.remote)).To(Succeed())
				u.restart(ctx, u.primary)
				u.restart(ctx, u.remote)
			})
		}, NodeTimeout(10*time.Minute))

		It("removes the old revision: nothing of it remains in either cluster, its LoadBalancer included", func(ctx SpecContext) {
			u.phase(ctx, upgrade.OldRemoved, func() {
				// The search must find the revision first, or "nothing
				// remains" would prove nothing.
				for _, cl := range []*clusters.Cluster{u.primary, u.remote} {
					Expect(mesh.RevisionRemains(ctx, cl.Client, u.from.Revision)).NotTo(BeEmpty(), "revision %s found in %s before removal", u.from.Revision, cl.Name)
				}
				Expect(u.from.Installer.RemoveRevision(ctx, u.primary, u.primary, u.remote)).To(Succeed())
				u.live = []*harness.Istio{u.to}
				env.Get().UseMesh(u.to)
				for _, cl := range []*clusters.Cluster{u.primary, u.remote} {
					Eventually(func() ([]string, error) { return mesh.RevisionRemains(ctx, cl.Client, u.from.Revision) }).
						WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(2*time.Second).Should(BeEmpty(), "revision %s left in %s", u.from.Revision, cl.Name)
				}
			})
		}, NodeTimeout(10*time.Minute))

		It("kept every request answered through the whole canary upgrade and rollback: the time line judged", func(ctx SpecContext) {
			u.finish()
		}, NodeTimeout(2*time.Minute))
	})
}

func inPlaceUpgrade() {
	u := &upgradeRun{method: upgrade.InPlace}
	Context("In-place upgrade, under traffic", Ordered, Label(labels.Upgrade, labels.InPlaceUpgrade), func() {
		u.declareStart()

		It("upgrades the control plane in place, primary then remote: istiod runs the new version and syncs the remote", func(ctx SpecContext) {
			u.phase(ctx, upgrade.ControlPlaneUp, func() {
				Expect(u.to.Installer.UpgradeInPlace(ctx, u.primary, u.remote, u.from.Discovery)).To(Succeed())
				u.to.Discovery = u.from.Discovery
				u.live = []*harness.Istio{u.to}
				env.Get().UseMesh(u.to)
				Expect(workloads.WaitReady(ctx, u.primary.Client, u.primary.IstioNamespace(), mesh.IstiodSelector(""), 1, 5*time.Minute)).To(Succeed())
				Eventually(func(g Gomega) {
					pods, err := mesh.IstiodPods(ctx, u.primary, "")
					g.Expect(err).NotTo(HaveOccurred())
					g.Expect(pods).To(HaveLen(1))
					g.Expect(pods[0].Spec.Containers[0].Image).To(HaveSuffix(":"+u.plan.To), "istiod image")
				}).WithContext(ctx).WithTimeout(3 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
			})
		}, NodeTimeout(10*time.Minute))

		It("restarts the primary's workloads onto the new version", func(ctx SpecContext) {
			u.phase(ctx, upgrade.PrimaryRestarted, func() { u.restart(ctx, u.primary) })
		}, NodeTimeout(10*time.Minute))

		It("restarts the remote's workloads onto the new version", func(ctx SpecContext) {
			u.phase(ctx, upgrade.RemoteMoved, func() { u.restart(ctx, u.remote) })
		}, NodeTimeout(10*time.Minute))

		It("kept serving through the in-place upgrade: failures and gaps measured, the time line judged", func(ctx SpecContext) {
			u.finish()
		}, NodeTimeout(2*time.Minute))
	})
}

// declareStart declares what each method's context begins with: the old
// version installed with the apps and the load (BeforeAll), the clean-up
// (AfterAll), the judged "before" phase and the precheck.
func (u *upgradeRun) declareStart() {
	BeforeAll(func(ctx SpecContext) { u.start(ctx) }, NodeTimeout(40*time.Minute))
	AfterAll(func(ctx SpecContext) { u.cleanUp(ctx) }, NodeTimeout(10*time.Minute))

	It("serves every request before the upgrade, every proxy on the old version and SYNCED", func(ctx SpecContext) {
		u.settle(ctx, upgrade.Before)
	}, NodeTimeout(5*time.Minute))

	It("passes the new version's istioctl x precheck in both clusters", func(ctx SpecContext) {
		u.precheck(ctx)
	}, NodeTimeout(3*time.Minute))
}

// upgradeRun is one method's upgrade: its two control planes, the sample
// apps and the load.
type upgradeRun struct {
	method          upgrade.Method
	plan            upgrade.Plan
	primary, remote *clusters.Cluster
	from, to        *harness.Istio
	// live are the control planes installed now (one, or both revisions).
	live    []*harness.Istio
	apps    *sampleApps
	streams []traffic.Stream
	load    *traffic.Load
	dir     string
	done    bool
	// appNamespaces are the namespaces this method created: the clean-up
	// deletes these and no other (on a cluster a user brought, a
	// namespace of the same name may be theirs).
	appNamespaces []workloads.Namespace
}

// start installs the old version, deploys the apps in both clusters,
// routes a stream at each other cluster and starts the load.
func (u *upgradeRun) start(ctx context.Context) {
	GinkgoHelper()
	r := env.Get()
	u.plan = r.H.Config.Upgrade
	if !u.plan.Has(u.method) {
		Skip(fmt.Sprintf("MESHCONFORM_UPGRADE_METHODS does not include %s", u.method))
	}
	Expect(u.plan.Supported(u.method)).To(Succeed())
	u.primary, u.remote = r.Primary(), r.Remote()
	// The load places each answer by the serving pod's address in its
	// cluster's pod range, read once: pods that restart during the
	// upgrade could not be placed by listing them when it started.
	for _, cl := range []*clusters.Cluster{u.primary, u.remote} {
		Expect(cl.PodSubnet.IsValid()).To(BeTrue(), "cluster %s: its nodes carry no spec.podCIDRs; the upgrade suite restarts the backends under load and places their answers by pod range", cl.Name)
	}
	u.dir = filepath.Join(r.H.Config.ArtifactsDir, string(u.method))
	Expect(os.MkdirAll(u.dir, 0o755)).To(Succeed())
	var err error
	revFrom, revTo := "", ""
	if u.method == upgrade.Canary {
		revFrom, revTo = mesh.RevisionName(u.plan.From), mesh.RevisionName(u.plan.To)
	}
	u.from, err = r.H.PrepareIstioVersion(ctx, u.plan.From, revFrom)
	Expect(err).NotTo(HaveOccurred())
	u.to, err = r.H.PrepareIstioVersion(ctx, u.plan.To, revTo)
	Expect(err).NotTo(HaveOccurred())
	for _, m := range []*harness.Istio{u.from, u.to} {
		m.Installer.ManifestsDir = filepath.Join(u.dir, "manifests")
	}
	r.UseMesh(u.from)
	Expect(u.from.Install(ctx, u.primary, u.remote)).To(Succeed(), "install Istio %s", u.plan.From)
	u.live = []*harness.Istio{u.from}
	inject := map[string]string{"istio-injection": "enabled"}
	if u.method == upgrade.Canary {
		Expect(u.from.Installer.SetTag(ctx, RevisionTag, u.primary, u.remote)).To(Succeed())
		inject = map[string]string{"istio.io/rev": RevisionTag}
	}
	image, err := r.H.App(ctx, "meshapp")
	Expect(err).NotTo(HaveOccurred())
	u.apps = &sampleApps{image: image, pull: r.H.PullSecret(), mesh: r.Verify(u.from)}
	u.apps.mesh.Apps = appIntent()
	cls := []*clusters.Cluster{u.primary, u.remote}
	for _, cl := range cls {
		Expect(workloads.CreateNamespace(ctx, cl.Client, r.H.RunLabels(), verify.AppNamespace, inject)).To(Succeed())
		u.appNamespaces = append(u.appNamespaces, workloads.Namespace{Client: cl.Client, Name: verify.AppNamespace})
		u.apps.apply(ctx, cl, conformance.BackendFile, verify.AppNamespace)
		u.apps.frontendApplied(ctx, cl)
	}
	var names []string
	for _, cl := range cls {
		names = append(names, cl.Name)
	}
	for _, obj := range upgrade.ClusterRoutes(verify.BackendHost, verify.AppNamespace, names) {
		Expect(workloads.Replace(ctx, u.primary.Client, obj)).To(Succeed())
	}
	for _, cl := range cls {
		u.apps.waitBackend(ctx, cl)
		u.apps.frontendReady(ctx, cl)
	}
	// The load starts once each cluster's frontend reaches the other's
	// backends by header: a "before" phase judged while the routes were
	// still on their way would blame the mesh for the harness's haste.
	vm := u.apps.mesh
	for _, cl := range cls {
		other := r.Other(cl).Name
		_, err := vm.Settled(ctx, cl.Name, verify.SettleCalls, checks.And(checks.NoFailures(), checks.OnlyClusters(other)), upgrade.TargetHeader+":"+other)
		Expect(err).NotTo(HaveOccurred(), "route to %s by header from %s", other, cl.Name)
		base := vm.Frontends[cl.Name]
		u.streams = append(u.streams,
			traffic.Stream{Name: cl.Name + "→any", From: cl.Name, Base: base},
			traffic.Stream{Name: cl.Name + "→" + other, From: cl.Name, Base: base, Headers: []string{upgrade.TargetHeader + ":" + other}, Only: other})
	}
	pl, err := vm.Placement(ctx)
	Expect(err).NotTo(HaveOccurred())
	u.load, err = traffic.Start(context.WithoutCancel(ctx), traffic.Config{
		Rate: upgrade.Rate, MaxDuration: upgrade.MaxLoad, MaxRequests: upgrade.MaxRequests(len(u.streams)), Placement: pl,
	}, u.streams, upgrade.Before)
	Expect(err).NotTo(HaveOccurred())
}

// phase runs one step of the upgrade as a phase of the time line: the
// action, then the mesh settled (no pod terminating, every proxy SYNCED on
// its expected revision and version, every istiod syncing the remote),
// then Dwell of steady traffic, judged.
func (u *upgradeRun) phase(ctx context.Context, name string, action func()) {
	GinkgoHelper()
	Expect(u.load.Running()).To(BeTrue(), "the load stopped before phase %q (a bound was reached)", name)
	u.load.Phase(name)
	start := time.Now()
	action()
	env.Get().H.Run.Figure(figure(u.method, name, "action_seconds"), time.Since(start).Seconds())
	u.settle(ctx, name)
}

// settle waits for the mesh to settle after phase's action and judges the
// phase: its control planes, its proxies, then its traffic.
func (u *upgradeRun) settle(ctx context.Context, name string) {
	GinkgoHelper()
	for _, cl := range []*clusters.Cluster{u.primary, u.remote} {
		// The steady span starts with only the pods that should serve.
		Expect(workloads.WaitNoneTerminating(ctx, cl.Client, verify.AppNamespace, 2*time.Minute)).To(Succeed())
	}
	u.load.Steady()
	for _, m := range u.live {
		vm := env.Get().Verify(m)
		Eventually(func() error { return vm.RemoteSynced(ctx) }).WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(2*time.Second).
			Should(Succeed(), "istiod %s (revision %q) syncs the remote", m.Version, m.Revision)
	}
	Eventually(func() error { return u.proxiesAsExpected(ctx, name) }).WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(2*time.Second).
		Should(Succeed(), "proxy-status in phase %q", name)
	time.Sleep(upgrade.Dwell)
	rec := u.load.Snapshot()
	phases := rec.Phases()
	p := phases[len(phases)-1]
	Expect(p.Name).To(Equal(name))
	AddReportEntry("phase "+name, describePhase(p))
	Expect(upgrade.Budget(u.method, name).Judge(p, phases[0], u.streams)).To(Succeed())
	want, err := u.wantVersions(name)
	Expect(err).NotTo(HaveOccurred())
	Expect(p.Versions(want)).To(Succeed())
}

// proxiesAsExpected judges every app proxy with verify.ProxiesOn, the
// judge of every proxy: each on the live control plane that should serve
// it (in place, the one istiod; in a canary, the revision of the version
// its cluster should run), connected to a running istiod pod of it,
// SYNCED, at that version. A pod on another revision is missing from the
// one it should be on, so no other app pod can be connected anywhere else.
func (u *upgradeRun) proxiesAsExpected(ctx context.Context, phase string) error {
	want, err := u.wantVersions(phase)
	if err != nil {
		return err
	}
	where, err := u.apps.mesh.AppProxies(ctx)
	if err != nil {
		return err
	}
	if len(where) != expectedProxies(2) {
		return fmt.Errorf("%d app pods, want %d", len(where), expectedProxies(2))
	}
	on := map[string]verify.ProxyOn{}
	for pod, cl := range where {
		cp, err := u.servingAt(want[cl])
		if err != nil {
			return fmt.Errorf("pod %s (%s): %w", pod, cl, err)
		}
		on[pod] = verify.ProxyOn{Cluster: cl, Istio: cp, Version: want[cl]}
	}
	// A live revision no proxy should be on must still run: its empty
	// share proves nothing unless its istiod is there to be asked.
	for _, m := range u.live {
		if running, err := mesh.IstiodPods(ctx, u.primary, m.Revision); err != nil || len(running) == 0 {
			return fmt.Errorf("no running istiod of revision %q (%v)", m.Revision, err)
		}
	}
	_, err = u.apps.mesh.ProxiesOn(ctx, on)
	return err
}

// servingAt is the live control plane that should serve a proxy at
// version: in place, the one istiod; in a canary, the revision named for
// that version.
func (u *upgradeRun) servingAt(version string) (*harness.Istio, error) {
	for _, m := range u.live {
		if u.method == upgrade.InPlace || mesh.RevisionName(version) == m.Revision {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no live control plane serves version %s", version)
}

func (u *upgradeRun) wantVersions(phase string) (map[string]string, error) {
	p, r, err := u.plan.Expect(phase)
	return map[string]string{u.primary.Name: p, u.remote.Name: r}, err
}

// restart restarts every sample-app Deployment of cl, as `kubectl rollout
// restart` does, side by side, and waits for the rollouts.
func (u *upgradeRun) restart(ctx context.Context, cl *clusters.Cluster) {
	GinkgoHelper()
	ds, err := conformance.BackendDeployments()
	Expect(err).NotTo(HaveOccurred())
	names := []string{"frontend"}
	for name := range ds {
		names = append(names, name)
	}
	err = env.Get().H.Run.Time(fmt.Sprintf("upgrade %s: restart the workloads of %s", u.method, cl.Name), func() error {
		g, gctx := errgroup.WithContext(ctx)
		for _, name := range names {
			g.Go(func() error {
				return workloads.RestartDeployment(gctx, cl.Client, verify.AppNamespace, name, 5*time.Minute)
			})
		}
		return g.Wait()
	})
	Expect(err).NotTo(HaveOccurred())
}

// precheck runs the new version's `istioctl x precheck` against each
// cluster and keeps its output in the artifacts.
func (u *upgradeRun) precheck(ctx context.Context) {
	GinkgoHelper()
	for _, cl := range []*clusters.Cluster{u.primary, u.remote} {
		out, err := u.to.Istioctl.Precheck(ctx, cl.Kubeconfig)
		path := filepath.Join(u.dir, "precheck-"+cl.Name+".txt")
		text := out
		if err != nil {
			text += "\n" + err.Error()
		}
		Expect(os.WriteFile(path, []byte(text), 0o644)).To(Succeed())
		AddReportEntry("precheck "+cl.Name, strings.TrimSpace(text))
		Expect(err).NotTo(HaveOccurred(), "istioctl %s x precheck on %s", u.plan.To, cl.Name)
	}
}

// finish stops the load and judges the whole time line: every phase
// against its budget, with the record, the figures and the picture
// written to the artifacts first, so a failure still leaves them.
func (u *upgradeRun) finish() {
	GinkgoHelper()
	if u.load == nil || u.done {
		return
	}
	u.done = true
	rec := u.load.Stop()
	phases := rec.Phases()
	run := env.Get().H.Run
	for _, p := range phases {
		run.Figure(figure(u.method, p.Name, "requests"), p.Requests)
		run.Figure(figure(u.method, p.Name, "failed"), p.Failed)
		run.Figure(figure(u.method, p.Name, "longest_gap_seconds"), p.LongestGap.Seconds())
		run.Figure(figure(u.method, p.Name, "p50_ms"), float64(p.P50.Microseconds())/1000)
		run.Figure(figure(u.method, p.Name, "p99_ms"), float64(p.P99.Microseconds())/1000)
		run.Figure(figure(u.method, p.Name, "steady_p99_ms"), float64(p.SteadyP99.Microseconds())/1000)
	}
	Expect(u.writeRecord(rec, phases, "")).To(Succeed())
	var errs []string
	for _, p := range phases {
		AddReportEntry("time line: "+p.Name, describePhase(p))
		if err := upgrade.Budget(u.method, p.Name).Judge(p, phases[0], u.streams); err != nil {
			errs = append(errs, err.Error())
		}
	}
	Expect(errs).To(BeEmpty(), "the time line of the %s upgrade", u.method)
	want := len(upgrade.Phases(u.method))
	Expect(phases).To(HaveLen(want), "every phase of the %s upgrade ran", u.method)
}

// writeRecord writes the load's record, its phases and its time line to
// the method's artifacts.
func (u *upgradeRun) writeRecord(rec traffic.Record, phases []traffic.Phase, note string) error {
	title := fmt.Sprintf("Istio %s → %s, %s upgrade%s: requests per second (%d streams at %.0f/s)", u.plan.From, u.plan.To, u.method, note, len(u.streams), upgrade.Rate)
	return errors.Join(rec.WriteSVG(filepath.Join(u.dir, "timeline.svg"), title),
		writeJSON(filepath.Join(u.dir, "phases.json"), phases),
		writeJSON(filepath.Join(u.dir, "requests.json"), rec))
}

// cleanUp stops the load (keeping its record), removes the apps and
// uninstalls every revision as the guide's cleanup does.
func (u *upgradeRun) cleanUp(ctx context.Context) {
	if u.load != nil && !u.done {
		u.done = true
		rec := u.load.Stop()
		_ = u.writeRecord(rec, rec.Phases(), " (stopped early)")
	}
	if u.from == nil {
		return
	}
	r := env.Get()
	Expect(workloads.DeleteNamespaces(ctx, u.appNamespaces...)).To(Succeed())
	// The newest istioctl knows every revision's objects; --purge removes
	// them all, tags included.
	last := u.live[len(u.live)-1]
	if u.method == upgrade.Canary {
		Expect(last.Installer.RemoveTag(ctx, RevisionTag, u.primary, u.remote)).To(Succeed())
	}
	Expect(last.Installer.Uninstall(ctx, u.primary, u.remote)).To(Succeed())
	r.ForgetMesh()
	for _, cl := range []*clusters.Cluster{u.primary, u.remote} {
		left, err := mesh.Remains(ctx, cl.Client)
		Expect(err).NotTo(HaveOccurred())
		Expect(left).To(BeEmpty(), "Istio left in %s", cl.Name)
	}
}

func describePhase(p traffic.Phase) string {
	return fmt.Sprintf("%.0fs–%.0fs (steady from %.0fs): %d requests, %d failed (%s), longest gap %s (%s), p50 %s, p99 %s (steady %s), served by %s, misplaced %s, frontends' proxies %s, backends' proxies %s",
		p.Start.Seconds(), p.End.Seconds(), p.SteadyFrom.Seconds(), p.Requests, p.Failed, report.Counts(p.Errors), p.LongestGap.Round(time.Millisecond), p.GapStream,
		p.P50.Round(100*time.Microsecond), p.P99.Round(100*time.Microsecond), p.SteadyP99.Round(100*time.Microsecond), report.Counts(p.Served), report.Counts(p.Misplaced), report.Counts(p.CallerVersions), report.Counts(p.ServerVersions))
}

// figure names a figure of phases.json: upgrade/<method>/<phase>/<what>.
func figure(m upgrade.Method, phase, what string) string {
	return "upgrade/" + string(m) + "/" + phase + "/" + what
}

func writeJSON(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o644)
}
