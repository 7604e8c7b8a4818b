package doctor

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	// The judges, named so beside this package's own checks.
	judges "github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/istiodmetrics"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/topology"
)

// remoteSecretsRead is the primary's remote secrets, read once per Run
// for the checks that need them.
type remoteSecretsRead struct {
	once    sync.Once
	secrets map[string]mesh.RemoteSecret
	err     error
}

// readRemoteSecrets parses the primary's remote secrets (once per Run), by
// the cluster each attaches. What the doctor keeps of one is where it
// points and whose it is, never the credential itself.
func readRemoteSecrets(ctx context.Context, m scope) (map[string]mesh.RemoteSecret, error) {
	if m.secrets == nil {
		return listRemoteSecrets(ctx, m)
	}
	m.secrets.once.Do(func() { m.secrets.secrets, m.secrets.err = listRemoteSecrets(ctx, m) })
	return m.secrets.secrets, m.secrets.err
}

func listRemoteSecrets(ctx context.Context, m scope) (map[string]mesh.RemoteSecret, error) {
	list, err := mesh.RemoteSecrets(ctx, m.Primary)
	if err != nil {
		return nil, err
	}
	out := map[string]mesh.RemoteSecret{}
	for _, s := range list {
		if s.Err != nil {
			return nil, fmt.Errorf("remote secret %s: %w", s.Name, s.Err)
		}
		out[s.Cluster] = s
	}
	return out, nil
}

// remoteSecrets: each remote has a remote secret on the primary whose
// server is not loopback. Rejects a remote never attached, a deleted
// secret, and a secret pointing at 127.0.0.1.
func remoteSecrets(ctx context.Context, m scope) []Result {
	secrets, err := readRemoteSecrets(ctx, m)
	if err != nil {
		return []Result{fail(m.Primary.Name, "%v", err)}
	}
	var out []Result
	for _, r := range m.Others {
		s, ok := secrets[r.ClusterID]
		switch {
		case !ok:
			out = append(out, fail(r.Name, "no remote secret for Istio cluster %s on %s (label istio/multiCluster=true in %s; secrets there name %s): the remote was never attached, its secret was deleted, or it was attached under another ID than its proxies are injected with", r.ClusterID, m.Primary.Name, m.Primary.IstioNamespace(), strings.Join(slices.Sorted(maps.Keys(secrets)), ", ")))
		case mesh.LoopbackServer(s.Server):
			out = append(out, fail(r.Name, "remote secret %s points at %s, a loopback address: istiod would dial itself, not %s's API server", s.Name, s.Server, r.Name))
		default:
			out = append(out, pass(r.Name, "remote secret %s → %s", s.Name, s.Server))
		}
	}
	return out
}

// remoteSecretRBAC: the account of each remote secret may do what istiod
// needs (get, list and watch what it reads, review tokens) and nothing of
// what it never needs (checks.ExcessRights: cluster-admin, writing
// secrets, escalating, binding, impersonating…), asked of the remote's own
// API server, one SubjectAccessReview per right (mesh.AskCredentialRights,
// which says why reviews about the account rather than the credential).
// Rejects a secret made for an account without the reader role, and one
// whose account can do far more: either fails. Deterministic: a correct
// mesh never fails it. A credential no review can ask about (an exec
// plugin) warns.
func remoteSecretRBAC(ctx context.Context, m scope) []Result {
	secrets, err := readRemoteSecrets(ctx, m)
	if err != nil {
		return []Result{fail(m.Primary.Name, "%v", err)}
	}
	var out []Result
	for _, r := range m.Others {
		s, ok := secrets[r.ClusterID]
		if !ok {
			out = append(out, fail(r.Name, "no remote secret: nothing to check"))
			continue
		}
		if s.Identity.User == "" {
			out = append(out, warn(r.Name, "remote secret %s authenticates with %s, not a service account token or a client certificate: its rights cannot be checked", s.Name, s.Identity.Auth))
			continue
		}
		rights, err := mesh.AskCredentialRights(ctx, r.Client, s.Identity)
		if err != nil {
			out = append(out, fail(r.Name, "ask %s's API server about remote secret %s: %v", r.Name, s.Name, err))
			continue
		}
		out = append(out, judgeRemoteSecretRBAC(r.Name, s, rights))
	}
	return out
}

// judgeRemoteSecretRBAC is remoteSecretRBAC's verdict on one remote
// secret from the remote's answers: fail naming every need denied and
// every excess right granted, else pass stating both facts.
func judgeRemoteSecretRBAC(cluster string, s mesh.RemoteSecret, rights mesh.CredentialRights) Result {
	who := s.Identity.Name()
	var why []string
	if err := judges.JudgeReaderNeeds(who, rights.Needs); err != nil {
		why = append(why, fmt.Sprintf("%v: istiod cannot do its work in %s", err, cluster))
	}
	if err := judges.JudgeLeastPrivilege(who, rights.Excess); err != nil {
		why = append(why, err.Error())
	}
	if len(why) > 0 {
		return fail(cluster, "remote secret %s: %s", s.Name, strings.Join(why, "; "))
	}
	return pass(cluster, "%s may do the %d things istiod needs (get, list and watch what it reads, review tokens) and none of the %d it never needs (cluster-admin, writing secrets, impersonating…)", who, len(judges.ReaderNeeds), len(judges.ExcessRights))
}

// rootCerts: every cluster's workloads trust one root (istio-ca-root-cert)
// and every cluster's cacerts, where present, chains to that same root.
// Rejects a cluster plugged with another root, where cross-cluster mTLS
// fails.
func rootCerts(ctx context.Context, m scope) []Result {
	trusted := map[string]string{}
	var out []Result
	for _, cl := range m.all() {
		var cm corev1.ConfigMap
		if err := cl.Client.Resources(cl.IstioNamespace()).Get(ctx, "istio-ca-root-cert", cl.IstioNamespace(), &cm); err != nil {
			out = append(out, fail(cl.Name, "no istio-ca-root-cert in %s: istiod has not reached this cluster (%v)", cl.IstioNamespace(), err))
			continue
		}
		// What workloads trust, as each cluster's istiod (or, for a remote,
		// the primary's) distributes it. cacerts is not read: a Secret
		// holding the CA's key is none of a read-only check's business.
		fp := fingerprint([]byte(cm.Data["root-cert.pem"]))
		if fp == "" {
			out = append(out, fail(cl.Name, "istio-ca-root-cert in %s holds no PEM certificate", cl.IstioNamespace()))
			continue
		}
		trusted[cl.Name] = fp
	}
	if len(trusted) < len(m.all()) {
		return out
	}
	roots := map[string][]string{}
	for where, fp := range trusted {
		roots[fp] = append(roots[fp], where)
	}
	if len(roots) > 1 {
		var parts []string
		for fp, where := range roots {
			sort.Strings(where)
			parts = append(parts, fp+" in "+strings.Join(where, ", "))
		}
		sort.Strings(parts)
		return append(out, fail("", "%d different roots: %s — workloads of different roots cannot authenticate each other", len(roots), strings.Join(parts, "; ")))
	}
	for fp := range roots {
		out = append(out, pass("", "one root %s in %d clusters", fp, len(m.all())))
	}
	return out
}

// fingerprint is mesh.RootFingerprint: one way to name a root, for the
// doctor and the checks' diagnoses alike.
var fingerprint = mesh.RootFingerprint

// remoteWebhooks: each remote has the revision's injection webhooks with a
// caBundle and the path that names the remote and its network
// (checks.InjectionWebhooks, the install spec's judge too).
func remoteWebhooks(ctx context.Context, m scope) []Result {
	var out []Result
	for _, r := range m.Others {
		mwcs, err := mesh.InjectionWebhooks(ctx, r.Client, m.Revision)
		if err != nil {
			out = append(out, fail(r.Name, "%v", err))
			continue
		}
		want := judges.InjectionPath(r.ClusterID, r.MeshNetwork)
		n, err := judges.InjectionWebhooks(r.Name, want, mwcs)
		if err != nil {
			out = append(out, fail(r.Name, "%v", err))
			continue
		}
		out = append(out, pass(r.Name, "%d injection webhooks with a caBundle and path %s", n, want))
	}
	return out
}

// controlPlaneClusters: each remote's istio-system names the primary in
// topology.istio.io/controlPlaneClusters. Rejects a remote whose namespace
// lacks it (istiod then does not manage it: no root cert, no injection CA).
func controlPlaneClusters(ctx context.Context, m scope) []Result {
	var out []Result
	for _, r := range m.Others {
		var ns corev1.Namespace
		if err := r.Client.Resources().Get(ctx, r.IstioNamespace(), "", &ns); err != nil {
			out = append(out, fail(r.Name, "cannot read %s: %v", r.IstioNamespace(), err))
			continue
		}
		v, ok := ns.Annotations[mesh.ControlPlaneClustersAnnotation]
		if err := judges.ControlPlaneClusters(v, ok, m.Primary.ClusterID); err != nil {
			out = append(out, fail(r.Name, "%s: %v: istiod on %s will not manage this cluster", r.IstioNamespace(), err, m.Primary.Name))
		} else {
			out = append(out, pass(r.Name, "%s=%s", mesh.ControlPlaneClustersAnnotation, v))
		}
	}
	return out
}

// externalIstiod: the primary's istiod runs with EXTERNAL_ISTIOD=true.
// Rejects a primary installed without it (remotes get no CA bundle).
func externalIstiod(ctx context.Context, m scope) []Result {
	var d appsv1.Deployment
	name := mesh.Values{Revision: m.Revision}.IstiodService()
	if err := m.Primary.Client.Resources(m.Primary.IstioNamespace()).Get(ctx, name, m.Primary.IstioNamespace(), &d); err != nil {
		return []Result{fail(m.Primary.Name, "cannot read deployment %s: %v", name, err)}
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if c.Name == "discovery" && e.Name == "EXTERNAL_ISTIOD" {
				if e.Value == "true" {
					return []Result{pass(m.Primary.Name, "%s runs with EXTERNAL_ISTIOD=true", name)}
				}
				return []Result{fail(m.Primary.Name, "%s runs with EXTERNAL_ISTIOD=%q: the primary was not installed to serve remotes (values.pilot.env.EXTERNAL_ISTIOD)", name, e.Value)}
			}
		}
	}
	return []Result{fail(m.Primary.Name, "%s has no EXTERNAL_ISTIOD: the primary was not installed to serve remotes (values.pilot.env.EXTERNAL_ISTIOD)", name)}
}

// clusterz: every istiod replica lists every remote (or peer) synced,
// through its remote secret (checks.Watched, the install spec's judge
// too). Rejects a replica that cannot reach a remote's API server (a
// secret's address istiod cannot dial, rights missing) and an unattached
// remote.
func clusterz(ctx context.Context, m scope) []Result {
	pods, err := mesh.IstiodPods(ctx, m.Primary, m.Revision)
	if err != nil || len(pods) == 0 {
		return []Result{fail(m.Primary.Name, "no running istiod (%s): %v", mesh.IstiodSelector(m.Revision), err)}
	}
	var out []Result
	for _, p := range pods {
		cs, err := mesh.RemoteClustersOf(ctx, m.Primary, p.Name)
		if err == nil {
			err = judges.Watched(m.Primary.Name, p.Name, m.Primary.IstioNamespace(), remoteIDs(m), cs)
		}
		if err != nil {
			out = append(out, fail(m.Primary.Name, "%v", err))
			continue
		}
		out = append(out, pass(m.Primary.Name, "istiod %s: %s synced", p.Name, strings.Join(remoteIDs(m), ", ")))
	}
	return out
}

// istiodMetrics: what istiod's own metrics say of the mesh agrees with
// what it does, as the guide's advice to monitor the control plane would
// read them. Every replica is read once (judgeIstiodMetrics).
func istiodMetrics(ctx context.Context, m scope) []Result {
	_, version, err := mesh.FindIstiod(ctx, m.Primary, m.Revision)
	if err != nil {
		return []Result{fail(m.Primary.Name, "%v", err)}
	}
	pods, err := mesh.IstiodPods(ctx, m.Primary, m.Revision)
	if err != nil || len(pods) == 0 {
		return []Result{fail(m.Primary.Name, "no running istiod (%s): %v", mesh.IstiodSelector(m.Revision), err)}
	}
	var out []Result
	for _, p := range pods {
		raw, err := mesh.IstiodMetrics(ctx, m.Primary, p.Name)
		if err != nil {
			out = append(out, fail(m.Primary.Name, "%v", err))
			continue
		}
		r, err := istiodmetrics.Parse(p.Name, time.Now(), raw)
		if err != nil {
			out = append(out, fail(m.Primary.Name, "%v", err))
			continue
		}
		cz, err := mesh.RemoteClustersOf(ctx, m.Primary, p.Name)
		if err != nil {
			out = append(out, fail(m.Primary.Name, "%v", err))
			continue
		}
		out = append(out, judgeIstiodMetrics(m.Primary.Name, r, cz, remoteIDs(m), version))
	}
	return out
}

// judgeIstiodMetrics judges one replica's reading: its sync gauge must
// agree with its clusterz, every remote synced (istiodmetrics.Sync: a
// failure otherwise; what the gauge cannot say, istio/istio#60082's stuck
// timeout among it, a warning). Rejected configuration and remote sync
// timeouts since istiod started are warnings, with their counts: they
// may be old, and the resilience suite judges them over a run.
func judgeIstiodMetrics(cluster string, r istiodmetrics.Reading, cz []judges.RemoteCluster, remotes []string, version string) Result {
	note, err := istiodmetrics.Sync(r, cz, remotes, version)
	if err != nil {
		return fail(cluster, "%v", err)
	}
	var warns []string
	if note != "" {
		warns = append(warns, note)
	}
	if n := r.Counters[istiodmetrics.XDSRejects]; n > 0 {
		warns = append(warns, fmt.Sprintf("%s is %g: proxies rejected its configuration since it started", istiodmetrics.XDSRejects, n))
	}
	if n := r.Counters[istiodmetrics.RemoteSyncTimeouts]; n > 0 {
		warns = append(warns, fmt.Sprintf("%s is %g: a remote took longer than PILOT_REMOTE_CLUSTER_TIMEOUT to sync since it started", istiodmetrics.RemoteSyncTimeouts, n))
	}
	if len(warns) > 0 {
		return warn(cluster, "istiod %s: %s", r.Pod, strings.Join(warns, "; "))
	}
	return pass(cluster, "istiod %s: %s synced in its metrics and its clusterz, no reject, no sync timeout", r.Pod, strings.Join(remotes, ", "))
}

// discoveryAddress: istiod is exposed by a load balancer with an external
// address (an IP or a host name), and each remote's istiod Service
// (remotePilotAddress) points at it. Rejects a remote installed with a
// wrong remotePilotAddress and an istiod no remote can reach.
func discoveryAddress(ctx context.Context, m scope) []Result {
	addr, svc, err := mesh.ExposedAddress(ctx, m.Primary, m.Revision)
	if err != nil {
		return []Result{fail(m.Primary.Name, "%v: remotes cannot reach istiod", err)}
	}
	out := []Result{pass(m.Primary.Name, "istiod exposed at %s (Service %s)", addr, svc)}
	for _, r := range m.Others {
		addrs, err := mesh.RemotePilotAddresses(ctx, r, m.Revision)
		switch {
		case err != nil:
			out = append(out, fail(r.Name, "%v", err))
		case len(addrs) == 0:
			out = append(out, fail(r.Name, "the remote's istiod Service has no endpoints: the remote install's remotePilotAddress is missing"))
		case len(addrs) != 1 || addrs[0] != addr:
			out = append(out, fail(r.Name, "the remote's istiod Service points at %v, istiod is at %s: the remote install's remotePilotAddress is wrong", addrs, addr))
		default:
			out = append(out, pass(r.Name, "remotePilotAddress %s", addrs[0]))
		}
	}
	return out
}

// versions: the remote install is the primary's version. Warns on a skew:
// Istio supports one minor version between control and data plane during
// an upgrade, not as a steady state.
func versions(ctx context.Context, m scope) []Result {
	_, primaryVersion, err := mesh.FindIstiod(ctx, m.Primary, m.Revision)
	if err != nil {
		return []Result{fail(m.Primary.Name, "%v", err)}
	}
	out := []Result{pass(m.Primary.Name, "istiod %s", primaryVersion)}
	for _, r := range m.Others {
		if m.Peers {
			// A peer primary's version is its own istiod's.
			switch _, v, err := mesh.FindIstiod(ctx, r, m.Revision); {
			case err != nil:
				out = append(out, fail(r.Name, "%v", err))
			case v != primaryVersion:
				out = append(out, warn(r.Name, "istiod %s, %s's istiod %s: a skew meant for an upgrade, not a steady state", v, m.Primary.Name, primaryVersion))
			default:
				out = append(out, pass(r.Name, "istiod %s", v))
			}
			continue
		}
		mwcs, err := mesh.InjectionWebhooks(ctx, r.Client, m.Revision)
		if err != nil || len(mwcs) == 0 {
			out = append(out, fail(r.Name, "no remote install of revision %s found (%v)", revOrDefault(m.Revision), err))
			continue
		}
		v := mwcs[0].Labels["operator.istio.io/version"]
		switch {
		case v == "":
			out = append(out, warn(r.Name, "the remote install carries no operator.istio.io/version label: version unknown"))
		case v != primaryVersion:
			out = append(out, warn(r.Name, "remote install %s, istiod %s: a skew meant for an upgrade, not a steady state", v, primaryVersion))
		default:
			out = append(out, pass(r.Name, "remote install %s", v))
		}
	}
	return out
}

// nodeLocality: every node has a region label, one region per cluster, and
// no two clusters share a region and zone. Rejects a cluster labelled with
// another's locality (locality failover then has nowhere else to go).
func nodeLocality(ctx context.Context, m scope) []Result {
	var out []Result
	where := map[string]string{}
	for _, cl := range m.all() {
		// Node-label locality is judged where nodes carry it; where none
		// do, the run's app pods carry theirs (clusters.PlanLocality).
		if cl.PodLocality {
			out = append(out, pass(cl.Name, "localities come from the run's app pods (%s=%s.%s), not the nodes (none, or not a region per cluster)", clusters.LocalityLabel, cl.Region, cl.Zone))
			continue
		}
		var nodes corev1.NodeList
		if err := cl.Client.Resources().List(ctx, &nodes); err != nil {
			out = append(out, fail(cl.Name, "list nodes: %v", err))
			continue
		}
		region, zone, err := clusters.NodeLocality(nodes.Items)
		if err != nil {
			out = append(out, warn(cl.Name, "%v", err))
			continue
		}
		loc := region + "/" + zone
		if other, dup := where[loc]; dup {
			out = append(out, fail(cl.Name, "same %s and %s as %s (%s): locality failover cannot tell the clusters apart", topology.RegionLabel, topology.ZoneLabel, other, loc))
			continue
		}
		where[loc] = cl.Name
		out = append(out, pass(cl.Name, "%s", loc))
	}
	return out
}

func (m scope) all() []*clusters.Cluster { return append([]*clusters.Cluster{m.Primary}, m.Others...) }

func remoteIDs(m scope) []string {
	var out []string
	for _, r := range m.Others {
		out = append(out, r.ClusterID)
	}
	return out
}

func revOrDefault(rev string) string {
	if rev == "" {
		return "default"
	}
	return rev
}
