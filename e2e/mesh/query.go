package mesh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// IstiodSelector selects the istiod pods of a revision ("" = default).
func IstiodSelector(revision string) string {
	if revision == "" {
		revision = "default"
	}
	return "app=istiod,istio.io/rev=" + revision
}

// IstiodPods lists the running istiod pods of the revision.
func IstiodPods(ctx context.Context, cl *clusters.Cluster, revision string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := cl.Client.Resources(cl.IstioNamespace()).List(ctx, &pods, resources.WithLabelSelector(IstiodSelector(revision))); err != nil {
		return nil, fmt.Errorf("list istiod pods: %w", err)
	}
	var running []corev1.Pod
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			running = append(running, p)
		}
	}
	sort.Slice(running, func(i, j int) bool { return running[i].Name < running[j].Name })
	return running, nil
}

// IstiodDebug asks an istiod pod for one of its debug endpoints
// (debug/clusterz, debug/syncz, debug/configz…) with `pilot-discovery
// request`, which calls istiod's own 15014 port from inside the pod, where
// debug endpoints need no authentication.
func IstiodDebug(ctx context.Context, cl *clusters.Cluster, revision, path string) ([]byte, error) {
	pods, err := IstiodPods(ctx, cl, revision)
	if err != nil {
		return nil, err
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("no running istiod pod (%s)", IstiodSelector(revision))
	}
	return istiodPodDebug(ctx, cl, pods[0].Name, path)
}

// istiodPodDebug is IstiodDebug of one named istiod pod.
func istiodPodDebug(ctx context.Context, cl *clusters.Cluster, pod, path string) ([]byte, error) {
	out, err := workloads.Exec(ctx, cl.Client, cl.IstioNamespace(), pod, "discovery", "pilot-discovery", "request", "GET", path)
	if err != nil {
		return nil, fmt.Errorf("istiod %s: %s: %w", pod, path, err)
	}
	return []byte(strings.TrimSpace(out)), nil
}

// IstiodMetrics is one istiod pod's Prometheus metrics (its /metrics on
// the monitoring port), asked from inside the pod as the debug
// endpoints are.
func IstiodMetrics(ctx context.Context, cl *clusters.Cluster, pod string) ([]byte, error) {
	return istiodPodDebug(ctx, cl, pod, "/metrics")
}

// InjectionWebhooks lists a cluster's mutating webhook configurations of
// the revision ("" = default): a remote install's injection webhooks.
func InjectionWebhooks(ctx context.Context, c klient.Client, revision string) ([]admissionv1.MutatingWebhookConfiguration, error) {
	if revision == "" {
		revision = "default"
	}
	var list admissionv1.MutatingWebhookConfigurationList
	if err := c.Resources().List(ctx, &list, resources.WithLabelSelector("istio.io/rev="+revision)); err != nil {
		return nil, fmt.Errorf("list the injection webhooks of revision %s: %w", revision, err)
	}
	return list.Items, nil
}

// RemoteClustersOf is one istiod pod's list of clusters and their sync
// status: each replica of an HA istiod keeps its own.
func RemoteClustersOf(ctx context.Context, cl *clusters.Cluster, pod string) ([]checks.RemoteCluster, error) {
	raw, err := istiodPodDebug(ctx, cl, pod, "/debug/clusterz")
	if err != nil {
		return nil, err
	}
	cs, err := ParseClusterz(raw)
	if err != nil {
		return nil, fmt.Errorf("istiod %s: %w", pod, err)
	}
	return cs, nil
}

// ProxyStatus runs `istioctl proxy-status` against the primary's istiod
// (in its istio namespace). perType
// asks for one column per xDS type (`-v 1`, Istio 1.27 and later; 1.26
// always prints them and has no such flag).
func (i Istioctl) ProxyStatus(ctx context.Context, primary *clusters.Cluster, revision string, perType bool) ([]checks.ProxyStatus, string, error) {
	args := []string{"proxy-status", "--istioNamespace", primary.IstioNamespace()}
	if perType {
		args = append(args, "-v", "1")
	}
	if revision != "" {
		args = append(args, "--revision", revision)
	}
	out, err := i.Run(ctx, primary.Kubeconfig, args...)
	if err != nil {
		// istioctl 1.27+ exits 1 when istiod has no proxy connected ("no
		// proxies found (checked N istiods)"): an answer, not a failure —
		// a canary revision before any workload moved to it.
		if strings.Contains(err.Error(), "no proxies found (checked") {
			return nil, out, nil
		}
		return nil, out, err
	}
	rows, err := ParseProxyStatus(out)
	return rows, out, err
}

// FindIstiod finds the istiod of a mesh installed by someone else: the one
// revision running (or the one asked for) and its version, from the
// discovery container's image tag.
func FindIstiod(ctx context.Context, cl *clusters.Cluster, revision string) (rev, version string, err error) {
	var pods corev1.PodList
	if err := cl.Client.Resources(cl.IstioNamespace()).List(ctx, &pods, resources.WithLabelSelector("app=istiod")); err != nil {
		return "", "", fmt.Errorf("list istiod pods: %w", err)
	}
	revs := map[string]string{}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		r := p.Labels["istio.io/rev"]
		if r == "default" {
			r = ""
		}
		for _, ctr := range p.Spec.Containers {
			if ctr.Name == "discovery" {
				revs[r] = ImageVersion(ctr.Image)
				if revs[r] == "" {
					return "", "", fmt.Errorf("istiod %s runs image %s, whose tag names no version", p.Name, ctr.Image)
				}
			}
		}
	}
	var names []string
	for r := range revs {
		names = append(names, r)
	}
	sort.Strings(names)
	switch {
	case len(revs) == 0:
		return "", "", fmt.Errorf("no running istiod in %s: MESHCONFORM_MESH=existing needs the mesh installed (or the clusters file names another istioNamespace)", cl.IstioNamespace())
	case revision != "":
		v, ok := revs[revision]
		if !ok {
			return "", "", fmt.Errorf("no running istiod of revision %q (running: %q)", revision, names)
		}
		return revision, v, nil
	case len(revs) > 1:
		return "", "", fmt.Errorf("istiods of several revisions run (%q): name the one to test with MESHCONFORM_ISTIO_REVISION", names)
	}
	return names[0], revs[names[0]], nil
}

// ImageVersion is an image's tag without a variant suffix
// (docker.io/istio/pilot:1.29.2-distroless → 1.29.2).
func ImageVersion(image string) string {
	if i := strings.LastIndex(image, "@"); i >= 0 {
		image = image[:i]
	}
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return ""
	}
	tag := image[i+1:]
	for _, variant := range []string{"-distroless", "-debug"} {
		tag = strings.TrimSuffix(tag, variant)
	}
	return tag
}

// ExposedAddress is where istiod is exposed to remotes, and the Service
// exposing it: the load balancer address (IngressAddress: an IP or a host
// name) of the revision's istiod-remote Service (local source) or of the
// east-west gateway (the guide's way), else of any LoadBalancer Service of
// the istio namespace carrying istiod's xDS port (a mesh installed by
// hand names its Services as it likes).
func ExposedAddress(ctx context.Context, cl *clusters.Cluster, revision string) (addr, service string, err error) {
	ns := cl.IstioNamespace()
	var list corev1.ServiceList
	if err := cl.Client.Resources(ns).List(ctx, &list); err != nil {
		return "", "", fmt.Errorf("list Services in %s: %w", ns, err)
	}
	return exposure(ns, list.Items, revision)
}

// otherRevisionRemote matches the exposure Services meshconform makes for
// istiod revisions (istiod[-rev]-remote).
var otherRevisionRemote = regexp.MustCompile(`^istiod(-.+)?-remote$`)

// XDSPort is istiod's port for xDS and certificates, which remotes reach.
const XDSPort = 15012

// exposure picks the Service that exposes istiod among svcs (see
// ExposedAddress).
func exposure(ns string, svcs []corev1.Service, revision string) (addr, service string, err error) {
	known := []string{(Values{Revision: revision}).IstiodService() + "-remote", "istio-eastwestgateway"}
	rank := func(s corev1.Service) int {
		if i := slices.Index(known, s.Name); i >= 0 {
			return i
		}
		return len(known)
	}
	var candidates []corev1.Service
	for _, s := range svcs {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		// Another revision's istiod-<rev>-remote exposes another istiod.
		if rank(s) == len(known) && otherRevisionRemote.MatchString(s.Name) {
			continue
		}
		if rank(s) < len(known) || slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == XDSPort }) {
			candidates = append(candidates, s)
		}
	}
	slices.SortStableFunc(candidates, func(a, b corev1.Service) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	var pending []string
	for _, s := range candidates {
		if a, err := IngressAddress(s.Status.LoadBalancer.Ingress); err == nil {
			return a, s.Name, nil
		}
		// meshconform's own exposure still waiting is no reason to take
		// another Service for it.
		if rank(s) < len(known) {
			return "", "", fmt.Errorf("istiod's load balancer Service %s/%s has no address yet", ns, s.Name)
		}
		pending = append(pending, s.Name)
	}
	if len(pending) > 0 {
		return "", "", fmt.Errorf("istiod's load balancer Services in %s (%s) have no address yet", ns, strings.Join(pending, ", "))
	}
	return "", "", fmt.Errorf("istiod is exposed by no load balancer Service in %s (none named %s, none with port %d)", ns, strings.Join(known, " or "), XDSPort)
}

// RemotePilotAddresses are where a remote's istiod Service of the
// revision sends its pods (the remote install's remotePilotAddress): the
// ExternalName of the Service Istio's chart makes for a host name, or the
// addresses of its endpoints for an IP.
func RemotePilotAddresses(ctx context.Context, cl *clusters.Cluster, revision string) ([]string, error) {
	name, ns := Values{Revision: revision}.IstiodService(), cl.IstioNamespace()
	var svc corev1.Service
	if err := cl.Client.Resources(ns).Get(ctx, name, ns, &svc); err != nil {
		return nil, fmt.Errorf("read the %s Service: %w", name, err)
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return []string{svc.Spec.ExternalName}, nil
	}
	var eps discoveryv1.EndpointSliceList
	if err := cl.Client.Resources(ns).List(ctx, &eps, resources.WithLabelSelector(discoveryv1.LabelServiceName+"="+name)); err != nil {
		return nil, fmt.Errorf("list %s endpoints: %w", name, err)
	}
	var addrs []string
	for _, s := range eps.Items {
		for _, e := range s.Endpoints {
			addrs = append(addrs, e.Addresses...)
		}
	}
	sort.Strings(addrs)
	return addrs, nil
}

// LoopbackServer reports whether an API server address can only mean the
// istiod pod itself: a remote secret made from a kubeconfig for kubectl on
// a laptop (istio/istio#31081).
func LoopbackServer(server string) bool {
	u, err := url.Parse(server)
	if err != nil {
		return false
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// RootFingerprint is the SHA-256 of a PEM's first certificate, short
// ("sha256:…"), or "" when it holds none: how the doctor and the checks'
// diagnoses name a root CA.
func RootFingerprint(pemBytes []byte) string {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return ""
	}
	sum := sha256.Sum256(b.Bytes)
	return "sha256:" + hex.EncodeToString(sum[:6])
}
