package doctor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/topology"
)

// remoteSecret is what the doctor reads of one remote secret: never the
// credential itself, only where it points and whose it is.
type remoteSecret struct {
	name, cluster, server, user string
}

// remoteSecretsRead is the primary's remote secrets, read once per Run
// for the checks that need them.
type remoteSecretsRead struct {
	once    sync.Once
	secrets map[string]remoteSecret
	err     error
}

// readRemoteSecrets parses the primary's remote secrets (once per Run).
func readRemoteSecrets(ctx context.Context, m Mesh) (map[string]remoteSecret, error) {
	if m.secrets == nil {
		return listRemoteSecrets(ctx, m)
	}
	m.secrets.once.Do(func() { m.secrets.secrets, m.secrets.err = listRemoteSecrets(ctx, m) })
	return m.secrets.secrets, m.secrets.err
}

func listRemoteSecrets(ctx context.Context, m Mesh) (map[string]remoteSecret, error) {
	var list corev1.SecretList
	if err := m.Primary.Client.Resources(mesh.Namespace).List(ctx, &list, resources.WithLabelSelector("istio/multiCluster=true")); err != nil {
		return nil, fmt.Errorf("list remote secrets: %w", err)
	}
	out := map[string]remoteSecret{}
	for _, s := range list.Items {
		for cluster, raw := range s.Data {
			server, user, err := parseRemoteKubeconfig(raw)
			if err != nil {
				return nil, fmt.Errorf("remote secret %s: %w", s.Name, err)
			}
			out[cluster] = remoteSecret{name: s.Name, cluster: cluster, server: server, user: user}
		}
	}
	return out, nil
}

// parseRemoteKubeconfig returns a remote secret's API server and the
// account its token belongs to (the JWT's subject, read without verifying:
// only the API server can verify it, and the RBAC check asks it).
func parseRemoteKubeconfig(raw []byte) (server, user string, err error) {
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return "", "", fmt.Errorf("unreadable kubeconfig: %w", err)
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return "", "", fmt.Errorf("kubeconfig has no current context")
	}
	if c, ok := cfg.Clusters[ctx.Cluster]; ok {
		server = c.Server
	}
	if a, ok := cfg.AuthInfos[ctx.AuthInfo]; ok && a.Token != "" {
		user = tokenSubject(a.Token)
	}
	return server, user, nil
}

// tokenSubject is a JWT's "sub" claim, or "".
func tokenSubject(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Sub
}

// serviceAccountGroups are the groups the API server puts a service
// account's token in: a role bound to any of them counts.
func serviceAccountGroups(user string) []string {
	groups := []string{"system:serviceaccounts", "system:authenticated"}
	if parts := strings.Split(user, ":"); len(parts) == 4 && parts[0] == "system" && parts[1] == "serviceaccount" {
		groups = append(groups, "system:serviceaccounts:"+parts[2])
	}
	return groups
}

// remoteSecrets: each remote has a remote secret on the primary whose
// server is not loopback. Rejects a remote never attached, a deleted
// secret, and a secret pointing at 127.0.0.1.
func remoteSecrets(ctx context.Context, m Mesh) []Result {
	secrets, err := readRemoteSecrets(ctx, m)
	if err != nil {
		return []Result{fail(m.Primary.Name, "%v", err)}
	}
	var out []Result
	for _, r := range m.Remotes {
		s, ok := secrets[r.Name]
		switch {
		case !ok:
			out = append(out, fail(r.Name, "no remote secret for cluster %s on %s (label istio/multiCluster=true in %s): the remote was never attached, or its secret was deleted", r.Name, m.Primary.Name, mesh.Namespace))
		case mesh.LoopbackServer(s.server):
			out = append(out, fail(r.Name, "remote secret %s points at %s, a loopback address: istiod would dial itself, not %s's API server", s.name, s.server, r.Name))
		default:
			out = append(out, pass(r.Name, "remote secret %s → %s", s.name, s.server))
		}
	}
	return out
}

// istiodNeeds is what istiod reads from a remote cluster (the
// istio-reader cluster role of the remote profile).
var istiodNeeds = []struct{ group, resource string }{
	{"", "pods"}, {"", "services"}, {"", "namespaces"}, {"", "nodes"}, {"", "configmaps"},
	{"discovery.k8s.io", "endpointslices"},
}

// remoteSecretRBAC: the account of each remote secret may get, list and
// watch what istiod reads, asked of the remote's own API server. Rejects a
// secret made for an account without the reader role.
func remoteSecretRBAC(ctx context.Context, m Mesh) []Result {
	secrets, err := readRemoteSecrets(ctx, m)
	if err != nil {
		return []Result{fail(m.Primary.Name, "%v", err)}
	}
	var out []Result
	for _, r := range m.Remotes {
		s, ok := secrets[r.Name]
		if !ok {
			out = append(out, fail(r.Name, "no remote secret: nothing to check"))
			continue
		}
		if s.user == "" {
			out = append(out, warn(r.Name, "remote secret %s authenticates without a service account token: its rights cannot be checked", s.name))
			continue
		}
		cs, err := kubernetes.NewForConfig(r.Client.RESTConfig())
		if err != nil {
			return append(out, fail(r.Name, "client: %v", err))
		}
		var denied []string
		for _, need := range istiodNeeds {
			for _, verb := range []string{"get", "list", "watch"} {
				// A review is answered, never stored: asking changes nothing.
				sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
					User: s.user, Groups: serviceAccountGroups(s.user),
					ResourceAttributes: &authzv1.ResourceAttributes{Verb: verb, Group: need.group, Resource: need.resource}}}
				got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
				if err != nil {
					return append(out, fail(r.Name, "ask %s's API server about %s: %v", r.Name, s.user, err))
				}
				if !got.Status.Allowed {
					denied = append(denied, verb+" "+need.resource)
				}
			}
		}
		if len(denied) > 0 {
			out = append(out, fail(r.Name, "%s may not %s in %s: istiod cannot watch the remote", s.user, strings.Join(denied, ", "), r.Name))
		} else {
			out = append(out, pass(r.Name, "%s may get, list and watch %d kinds istiod reads", s.user, len(istiodNeeds)))
		}
	}
	return out
}

// rootCerts: every cluster's workloads trust one root (istio-ca-root-cert)
// and every cluster's cacerts, where present, chains to that same root.
// Rejects a cluster plugged with another root, where cross-cluster mTLS
// fails.
func rootCerts(ctx context.Context, m Mesh) []Result {
	trusted := map[string]string{}
	var out []Result
	for _, cl := range m.all() {
		var cm corev1.ConfigMap
		if err := cl.Client.Resources(mesh.Namespace).Get(ctx, "istio-ca-root-cert", mesh.Namespace, &cm); err != nil {
			out = append(out, fail(cl.Name, "no istio-ca-root-cert in %s: istiod has not reached this cluster (%v)", mesh.Namespace, err))
			continue
		}
		// What workloads trust, as each cluster's istiod (or, for a remote,
		// the primary's) distributes it. cacerts is not read: a Secret
		// holding the CA's key is none of a read-only check's business.
		fp := fingerprint([]byte(cm.Data["root-cert.pem"]))
		if fp == "" {
			out = append(out, fail(cl.Name, "istio-ca-root-cert in %s holds no PEM certificate", mesh.Namespace))
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
// caBundle and the path that names the remote and its network. Rejects a
// remote install without istiod's CA or with another cluster's path.
func remoteWebhooks(ctx context.Context, m Mesh) []Result {
	var out []Result
	for _, r := range m.Remotes {
		var list admissionv1.MutatingWebhookConfigurationList
		if err := r.Client.Resources().List(ctx, &list, resources.WithLabelSelector("istio.io/rev="+revOrDefault(m.Revision))); err != nil {
			out = append(out, fail(r.Name, "list injection webhooks: %v", err))
			continue
		}
		out = append(out, judgeWebhooks(r.Name, "/inject/cluster/"+r.Name+"/net/"+r.MeshNetwork, list.Items))
	}
	return out
}

func judgeWebhooks(cluster, wantPath string, mwcs []admissionv1.MutatingWebhookConfiguration) Result {
	n := 0
	for _, mwc := range mwcs {
		for _, wh := range mwc.Webhooks {
			n++
			if len(wh.ClientConfig.CABundle) == 0 {
				return fail(cluster, "webhook %s/%s has no caBundle: the API server cannot call istiod", mwc.Name, wh.Name)
			}
			path := ""
			if wh.ClientConfig.Service != nil && wh.ClientConfig.Service.Path != nil {
				path = *wh.ClientConfig.Service.Path
			} else if wh.ClientConfig.URL != nil {
				if u, err := url.Parse(*wh.ClientConfig.URL); err == nil {
					path = u.Path
				}
			}
			if path != wantPath {
				return fail(cluster, "webhook %s/%s injects through %q, want %q", mwc.Name, wh.Name, path, wantPath)
			}
		}
	}
	if n == 0 {
		return fail(cluster, "no injection webhook: the remote install is missing")
	}
	return pass(cluster, "%d injection webhooks with a caBundle and path %s", n, wantPath)
}

// controlPlaneClusters: each remote's istio-system names the primary in
// topology.istio.io/controlPlaneClusters. Rejects a remote whose namespace
// lacks it (istiod then does not manage it: no root cert, no injection CA).
func controlPlaneClusters(ctx context.Context, m Mesh) []Result {
	var out []Result
	for _, r := range m.Remotes {
		var ns corev1.Namespace
		if err := r.Client.Resources().Get(ctx, mesh.Namespace, "", &ns); err != nil {
			out = append(out, fail(r.Name, "cannot read %s: %v", mesh.Namespace, err))
			continue
		}
		v, ok := ns.Annotations[mesh.ControlPlaneClustersAnnotation]
		switch {
		case !ok:
			out = append(out, fail(r.Name, "%s has no %s annotation: istiod on %s will not manage this cluster", mesh.Namespace, mesh.ControlPlaneClustersAnnotation, m.Primary.Name))
		case v != "*" && !contains(strings.Split(v, ","), m.Primary.Name):
			out = append(out, fail(r.Name, "%s=%q does not name the primary %s", mesh.ControlPlaneClustersAnnotation, v, m.Primary.Name))
		default:
			out = append(out, pass(r.Name, "%s=%s", mesh.ControlPlaneClustersAnnotation, v))
		}
	}
	return out
}

// externalIstiod: the primary's istiod runs with EXTERNAL_ISTIOD=true.
// Rejects a primary installed without it (remotes get no CA bundle).
func externalIstiod(ctx context.Context, m Mesh) []Result {
	var d appsv1.Deployment
	name := mesh.Values{Revision: m.Revision}.IstiodService()
	if err := m.Primary.Client.Resources(mesh.Namespace).Get(ctx, name, mesh.Namespace, &d); err != nil {
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

// clusterz: every istiod replica lists every remote synced. Rejects a
// replica that cannot reach a remote's API server (a secret's address
// istiod cannot dial, rights missing) and an unattached remote.
func clusterz(ctx context.Context, m Mesh) []Result {
	pods, err := mesh.IstiodPods(ctx, m.Primary.Client, m.Revision)
	if err != nil || len(pods) == 0 {
		return []Result{fail(m.Primary.Name, "no running istiod (%s): %v", mesh.IstiodSelector(m.Revision), err)}
	}
	var out []Result
	for _, p := range pods {
		cs, err := mesh.RemoteClustersOf(ctx, m.Primary.Client, p.Name)
		if err != nil {
			out = append(out, fail(m.Primary.Name, "%v", err))
			continue
		}
		out = append(out, judgeClusterz(m.Primary.Name, p.Name, remoteNames(m), cs))
	}
	return out
}

func judgeClusterz(primary, pod string, remotes []string, cs []mesh.RemoteCluster) Result {
	status := map[string]string{}
	for _, c := range cs {
		status[c.ID] = c.SyncStatus
	}
	var bad []string
	for _, r := range remotes {
		switch s, ok := status[r]; {
		case !ok:
			bad = append(bad, r+" not listed")
		case s != "synced":
			bad = append(bad, r+" "+s)
		}
	}
	if len(bad) > 0 {
		return fail(primary, "istiod %s: %s", pod, strings.Join(bad, ", "))
	}
	return pass(primary, "istiod %s: %s synced", pod, strings.Join(remotes, ", "))
}

// discoveryAddress: istiod is exposed by a load balancer with an external
// address, and each remote's istiod Service (remotePilotAddress) points at
// it. Rejects a remote installed with a wrong remotePilotAddress and an
// istiod no remote can reach.
func discoveryAddress(ctx context.Context, m Mesh) []Result {
	addr, err := mesh.ExposedAddress(ctx, m.Primary.Client, m.Revision)
	if err != nil {
		return []Result{fail(m.Primary.Name, "%v: remotes cannot reach istiod", err)}
	}
	out := []Result{pass(m.Primary.Name, "istiod exposed at %s", addr)}
	svc := mesh.Values{Revision: m.Revision}.IstiodService()
	for _, r := range m.Remotes {
		var slices discoveryv1.EndpointSliceList
		if err := r.Client.Resources(mesh.Namespace).List(ctx, &slices, resources.WithLabelSelector(discoveryv1.LabelServiceName+"="+svc)); err != nil {
			out = append(out, fail(r.Name, "list %s endpoints: %v", svc, err))
			continue
		}
		var addrs []string
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				addrs = append(addrs, e.Addresses...)
			}
		}
		sort.Strings(addrs)
		switch {
		case len(addrs) == 0:
			out = append(out, fail(r.Name, "the remote's %s Service has no endpoints: the remote install's remotePilotAddress is missing", svc))
		case len(addrs) != 1 || addrs[0] != addr.String():
			out = append(out, fail(r.Name, "the remote's %s Service points at %v, istiod is at %s: the remote install's remotePilotAddress is wrong", svc, addrs, addr))
		default:
			out = append(out, pass(r.Name, "remotePilotAddress %s", addrs[0]))
		}
	}
	return out
}

// versions: the remote install is the primary's version. Warns on a skew:
// Istio supports one minor version between control and data plane during
// an upgrade, not as a steady state.
func versions(ctx context.Context, m Mesh) []Result {
	_, primaryVersion, err := mesh.FindIstiod(ctx, m.Primary.Client, m.Revision)
	if err != nil {
		return []Result{fail(m.Primary.Name, "%v", err)}
	}
	out := []Result{pass(m.Primary.Name, "istiod %s", primaryVersion)}
	for _, r := range m.Remotes {
		if m.Peers {
			// A peer primary's version is its own istiod's.
			switch _, v, err := mesh.FindIstiod(ctx, r.Client, m.Revision); {
			case err != nil:
				out = append(out, fail(r.Name, "%v", err))
			case v != primaryVersion:
				out = append(out, warn(r.Name, "istiod %s, %s's istiod %s: a skew meant for an upgrade, not a steady state", v, m.Primary.Name, primaryVersion))
			default:
				out = append(out, pass(r.Name, "istiod %s", v))
			}
			continue
		}
		var list admissionv1.MutatingWebhookConfigurationList
		if err := r.Client.Resources().List(ctx, &list, resources.WithLabelSelector("istio.io/rev="+revOrDefault(m.Revision))); err != nil || len(list.Items) == 0 {
			out = append(out, fail(r.Name, "no remote install of revision %s found (%v)", revOrDefault(m.Revision), err))
			continue
		}
		v := list.Items[0].Labels["operator.istio.io/version"]
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
func nodeLocality(ctx context.Context, m Mesh) []Result {
	var out []Result
	where := map[string]string{}
	for _, cl := range m.all() {
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

func (m Mesh) all() []*clusters.Cluster { return append([]*clusters.Cluster{m.Primary}, m.Remotes...) }

func remoteNames(m Mesh) []string {
	var out []string
	for _, r := range m.Remotes {
		out = append(out, r.Name)
	}
	return out
}

func revOrDefault(rev string) string {
	if rev == "" {
		return "default"
	}
	return rev
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if strings.TrimSpace(v) == s {
			return true
		}
	}
	return false
}
