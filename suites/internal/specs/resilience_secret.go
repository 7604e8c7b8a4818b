package specs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/poll"
	"github.com/meshconform/meshconform/e2e/traffic"
	"github.com/meshconform/meshconform/e2e/verify"
	"github.com/meshconform/meshconform/e2e/workloads"
	"github.com/meshconform/meshconform/fixtures/apps/meshapp/api"
	"github.com/meshconform/meshconform/suites/internal/env"
)

// SecretBudget is what rotating, deleting and re-applying the remote
// secret may cost: no request (istiod keeps serving what it has, and a
// restart is a rollout, the new replica Ready before the old goes), and
// each change in every caller's view within MaxTime of istiod acting.
var SecretBudget = traffic.Budget{MaxTime: 90 * time.Second, MaxFailed: 0}

// secretPickup is how long istiod gets to act on a changed remote secret
// before the suite takes it for stuck and restarts it, as a user must:
// istiod's secret controller acts on the event, a deletion or a
// re-apply in under a second here.
const secretPickup = 15 * time.Second

// remoteSecret rotates the remote secret's token (a new token of istiod's
// reader account, written into the secret, the old one revoked), deletes
// the secret, and re-applies it as the install did, under traffic.
func (rs *resilienceRun) remoteSecret(ctx SpecContext) {
	r, vm := env.Get(), rs.vm
	primary, remote := vm.Primary, vm.Away
	syncedBefore(ctx, vm)
	callers := frontendPods(ctx, vm)
	backendCluster := checks.OutboundCluster(verify.BackendHost, backendPort)
	primaryIPs, remoteIPs := liveBackends(ctx, primary), liveBackends(ctx, remote)
	all := append(slices.Clone(primaryIPs), remoteIPs...)
	// Whatever step failed, the specs after this one need the remote
	// attached and synced: re-applied if deleted, istiod restarted if it
	// does not have the remote synced (a hang of istio/istio#58047).
	attached := true
	DeferCleanup(func(ctx context.Context) error {
		if !attached {
			if err := vm.Istio.Installer.AttachRemote(ctx, primary, remote); err != nil {
				return err
			}
		}
		if attached && vm.RemoteSynced(ctx) == nil {
			return nil
		}
		if err := restartIstiod(ctx, vm); err != nil {
			return err
		}
		return poll.Until(ctx, SecretBudget.MaxTime, 2*time.Second, vm.RemoteSynced)
	})

	load, streams := startLoadFor(ctx, vm, "before", faultLoadMax)
	defer load.Stop()
	sleepCtx(ctx, resilienceDwell)
	endFault := rs.sampler.expectFault("the remote secret rotated, deleted and re-applied", 0)
	defer endFault()
	restarted := map[string]bool{}

	load.Phase("token rotated")
	By("a new token of istiod's reader account in " + remote.Name + ", written into the remote secret")
	ns, sa, old := readerTokens(ctx, vm)
	token := newReaderToken(ctx, remote, ns, sa)
	at := time.Now()
	Expect(rotateRemoteSecret(ctx, vm, token)).To(Succeed())
	var rotated, dropped time.Duration
	rotated, restarted["rotated"] = untilIstiodActs(ctx, vm, "the rotated remote secret", at, func(ctx context.Context, fresh bool) error {
		if !fresh {
			if err := updateLogged(ctx, vm, at); err != nil {
				return err
			}
		}
		return vm.RemoteSynced(ctx)
	})
	By("the old token revoked; a new pod of the remote gets on istiod, which checks its token with the new credential")
	revokedAt := time.Now()
	for _, name := range old {
		s := &corev1.Secret{}
		s.Name, s.Namespace = name, ns
		Expect(workloads.DeleteForeign(ctx, remote.Client, s)).To(Succeed())
	}
	replaced := runningPods(ctx, remote, "app=backend")[0]
	Expect(remote.Client.Resources(verify.AppNamespace).Delete(ctx, &replaced)).To(Succeed())
	Expect(workloads.WaitReady(ctx, remote.Client, verify.AppNamespace, "app=backend", backendsPerCluster(), 2*time.Minute)).To(Succeed())
	Eventually(func() error {
		now, err := vm.AppProxies(ctx)
		if err != nil {
			return err
		}
		return vm.AllSynced(ctx, now)
	}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(2*time.Second).
		Should(Succeed(), func() string {
			return "every app proxy SYNCED, the new pod's included (" + describeAuthFailures(ctx, vm, revokedAt) + ")"
		})
	remoteIPs = liveBackends(ctx, remote)
	all = append(slices.Clone(primaryIPs), remoteIPs...)
	// The new pod's endpoint comes from istiod's watch of the remote, made
	// with the new credential.
	_, err := untilEveryCaller(ctx, vm, callers, time.Now(), SecretBudget.MaxTime, func(v api.Endpoints) error {
		return checks.ViewMatches(v, backendCluster, all)
	})
	Expect(err).NotTo(HaveOccurred(), "every caller holds the new pod of %s", remote.Name)
	load.Steady()
	sleepCtx(ctx, resilienceDwell)

	load.Phase("secret deleted")
	By("deleting the remote secret: the remote's endpoints leave every caller's view")
	at = time.Now()
	s := &corev1.Secret{}
	s.Name, s.Namespace = checks.RemoteSecretName(remote.ClusterID), primary.IstioNamespace()
	Expect(workloads.DeleteForeign(ctx, primary.Client, s)).To(Succeed())
	attached = false
	dropped, restarted["deleted"] = untilIstiodActs(ctx, vm, "the deleted remote secret", at, func(ctx context.Context, _ bool) error {
		states, err := remoteStates(ctx, vm, remote.ClusterID)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(states, func(s string) bool { return s != "absent" }) {
			return fmt.Errorf("istiod still lists %s in debug/clusterz: %v", remote.ClusterID, states)
		}
		return nil
	})
	gone, err := untilEveryCaller(ctx, vm, callers, at, dropped+SecretBudget.MaxTime, func(v api.Endpoints) error {
		return checks.DeadGone(v, verify.BackendHost, remoteIPs)
	})
	Expect(err).NotTo(HaveOccurred())
	load.Steady()
	load.Phase("remote out of the mesh")
	sleepCtx(ctx, phaseHold)

	load.Phase("secret re-applied")
	By("re-applying the remote secret as the install did: every caller holds every backend again")
	at = time.Now()
	Expect(vm.Istio.Installer.AttachRemote(ctx, primary, remote)).To(Succeed())
	attached = true
	var back time.Duration
	back, restarted["re-applied"] = untilIstiodActs(ctx, vm, "the re-applied remote secret", at, func(ctx context.Context, _ bool) error {
		return vm.RemoteSynced(ctx)
	})
	views, err := untilEveryCaller(ctx, vm, callers, at, back+SecretBudget.MaxTime, func(v api.Endpoints) error {
		return checks.ViewMatches(v, backendCluster, all)
	})
	Expect(err).NotTo(HaveOccurred())
	endFault()
	load.Steady()
	sleepCtx(ctx, phaseHold)

	phases := stopAndReport(load, "remote-secret", 5)
	AddReportEntry("remote's endpoints gone from each caller after the deletion", fmt.Sprint(gone))
	AddReportEntry("each caller holding every backend after the re-apply", fmt.Sprint(views))
	run := r.H.Run
	recordFault("remote_secret", phases, "seconds_to_rotation_synced", rotated)
	run.Figure("resilience/remote_secret/seconds_to_deletion_acted", dropped.Seconds())
	run.Figure("resilience/remote_secret/seconds_to_remote_gone_from_views", worstOf(gone).Seconds())
	run.Figure("resilience/remote_secret/seconds_to_reapplied_synced", back.Seconds())
	run.Figure("resilience/remote_secret/seconds_to_every_backend_in_views", worstOf(views).Seconds())
	run.Figure("resilience/remote_secret/istiod_restart_needed", restarted)
	names := clusters.Names(vm.Clusters)
	for _, p := range phases {
		b := traffic.Budget{MaxFailed: SecretBudget.MaxFailed, MinPerStream: minPerStream}
		switch p.Name {
		case "remote out of the mesh":
			Expect(p.StayedIn(streams, []string{primary.Name})).To(Succeed())
		case "secret deleted":
			// As long as istiod and the callers take to drop the remote,
			// often under a second: its failures are judged, not its count.
			b.MinPerStream = 0
		default:
			Expect(p.Crossed(streams, names)).To(Succeed())
		}
		Expect(b.Judge(p, phases[0], streams)).To(Succeed())
	}
	Expect(SecretBudget.Within("the remote's endpoints gone from every caller after istiod dropped it",
		traffic.Transition{Reached: true, Elapsed: worstOf(gone) - dropped, Asked: phases[2].Requests, Failed: phases[2].Failed})).To(Succeed())
	Expect(SecretBudget.Within("every backend in every caller's view after istiod had the remote again",
		traffic.Transition{Reached: true, Elapsed: worstOf(views) - back, Asked: phases[4].Requests, Failed: phases[4].Failed})).To(Succeed())
}

// untilIstiodActs waits up to secretPickup for acted (istiod acting on a
// change of the remote secret made at at). If it has not, it says what
// istiod's debug/clusterz shows, restarts istiod as a user must
// (istio/istio#58047: istiod's secret controller hangs stopping the old
// remote cluster, and later secret events wait for a restart), and waits
// for acted again, fresh set. It returns the time from at, and whether a
// restart was needed.
func untilIstiodActs(ctx SpecContext, vm *verify.Mesh, what string, at time.Time, acted func(ctx context.Context, fresh bool) error) (time.Duration, bool) {
	GinkgoHelper()
	err := poll.Until(ctx, secretPickup, time.Second, func(ctx context.Context) error { return acted(ctx, false) })
	if err == nil {
		return time.Since(at), false
	}
	states, serr := remoteStates(ctx, vm, vm.Away.ClusterID)
	if serr != nil {
		states = []string{serr.Error()}
	}
	AddReportEntry("istiod did not act on "+what, fmt.Sprintf("within %s: %v (debug/clusterz: %v); istiod restarted, as a user must (istio/istio#58047)",
		secretPickup, err, states))
	Expect(restartIstiod(ctx, vm)).To(Succeed())
	Eventually(func() error { return acted(ctx, true) }).WithContext(ctx).WithTimeout(SecretBudget.MaxTime).WithPolling(time.Second).
		Should(Succeed(), "%s, istiod restarted", what)
	return time.Since(at), true
}

// updateLogged rejects an istiod replica that has not logged, since at,
// rebuilding the remote from its changed secret.
func updateLogged(ctx context.Context, vm *verify.Mesh, at time.Time) error {
	logs, err := mesh.IstiodLogsSince(ctx, vm.Primary, vm.Istio.Revision, at)
	if err != nil {
		return err
	}
	var errs []error
	for pod, log := range logs {
		if !mesh.ClusterUpdated(log, vm.Away.ClusterID) {
			errs = append(errs, fmt.Errorf("istiod %s has not rebuilt %s from the changed secret (no \"Update cluster\" in its log since %s)", pod, vm.Away.ClusterID, at.Format(time.TimeOnly)))
		}
	}
	return errors.Join(errs...)
}

// describeAuthFailures says how often istiod could not check the token
// of a proxy of the remote since t: with a revoked credential, a new pod
// of the remote gets no certificate and no configuration.
func describeAuthFailures(ctx context.Context, vm *verify.Mesh, t time.Time) string {
	logs, err := mesh.IstiodLogsSince(ctx, vm.Primary, vm.Istio.Revision, t)
	if err != nil {
		return err.Error()
	}
	n := 0
	for _, log := range logs {
		n += mesh.AuthFailures(log, vm.Away.ClusterID)
	}
	return fmt.Sprintf("istiod could not check a token of %s %d times since %s", vm.Away.ClusterID, n, t.Format(time.TimeOnly))
}

// readerTokens are the namespace of istiod's reader account in the remote
// (the account of the remote secret's token) and the names of its token
// Secrets there.
func readerTokens(ctx context.Context, vm *verify.Mesh) (ns, sa string, names []string) {
	GinkgoHelper()
	secrets, err := mesh.RemoteSecrets(ctx, vm.Primary)
	Expect(err).NotTo(HaveOccurred())
	i := slices.IndexFunc(secrets, func(s mesh.RemoteSecret) bool { return s.Cluster == vm.Away.ClusterID && s.Err == nil })
	Expect(i).To(BeNumerically(">=", 0), "a readable remote secret for %s on %s", vm.Away.ClusterID, vm.Primary.Name)
	ns, sa, ok := secrets[i].Identity.ServiceAccount()
	Expect(ok).To(BeTrue(), "the remote secret of %s holds a service account token (it holds %s)", vm.Away.ClusterID, secrets[i].Identity.Auth)
	var list corev1.SecretList
	Expect(vm.Away.Client.Resources(ns).List(ctx, &list)).To(Succeed())
	for _, s := range list.Items {
		if s.Type == corev1.SecretTypeServiceAccountToken && s.Annotations[corev1.ServiceAccountNameKey] == sa {
			names = append(names, s.Name)
		}
	}
	Expect(names).NotTo(BeEmpty(), "token Secrets of %s/%s in %s", ns, sa, vm.Away.Name)
	// Revoking them must revoke what istiod uses: the remote secret's
	// token is one of theirs (compared in memory, neither printed).
	in := &corev1.Secret{}
	Expect(vm.Primary.Client.Resources(vm.Primary.IstioNamespace()).Get(ctx, secrets[i].Name, vm.Primary.IstioNamespace(), in)).To(Succeed())
	inUse := slices.ContainsFunc(list.Items, func(s corev1.Secret) bool {
		return slices.Contains(names, s.Name) && mesh.HoldsToken(in.Data[vm.Away.ClusterID], string(s.Data[corev1.ServiceAccountTokenKey]))
	})
	Expect(inUse).To(BeTrue(), "the remote secret's token is one of %v's (compared in memory)", names)
	return ns, sa, names
}

// newReaderToken creates, as a user rotating it would, a new token Secret
// of account ns/sa in cl, and returns the token once the token controller
// has issued it. It stays in memory only; the Secret stays too, as the
// credential the mesh then uses (it goes with the namespace at uninstall).
func newReaderToken(ctx context.Context, cl *clusters.Cluster, ns, sa string) string {
	GinkgoHelper()
	s := &corev1.Secret{Type: corev1.SecretTypeServiceAccountToken}
	s.Name, s.Namespace = fmt.Sprintf("%s-rotated-%d", sa, time.Now().Unix()), ns
	s.Annotations = map[string]string{corev1.ServiceAccountNameKey: sa}
	Expect(workloads.CreateForeign(ctx, cl.Client, s)).To(Succeed())
	var token string
	Eventually(func() bool {
		got := &corev1.Secret{}
		if err := cl.Client.Resources(ns).Get(ctx, s.Name, ns, got); err != nil {
			return false
		}
		token = string(got.Data[corev1.ServiceAccountTokenKey])
		return token != ""
	}).WithContext(ctx).WithTimeout(30*time.Second).WithPolling(500*time.Millisecond).Should(BeTrue(), "the token controller issued a token in %s/%s", ns, s.Name)
	return token
}

// rotateRemoteSecret writes token into the remote secret attaching vm's
// remote, in place of the one it holds.
func rotateRemoteSecret(ctx context.Context, vm *verify.Mesh, token string) error {
	id := vm.Away.ClusterID
	var werr error
	err := workloads.UpdateForeign(ctx, vm.Primary.Client, checks.RemoteSecretName(id), vm.Primary.IstioNamespace(), func(s *corev1.Secret) {
		var out []byte
		if out, werr = mesh.WithToken(s.Data[id], token); werr == nil {
			s.Data[id] = out
		}
	})
	if werr != nil {
		return fmt.Errorf("rotate the token of %s's remote secret: %w", id, werr)
	}
	return err
}
