package mesh

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/klient/decoder"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/mesh/cacerts"
	"github.com/meshconform/meshconform/e2e/poll"
	"github.com/meshconform/meshconform/e2e/report"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// Namespace is where an install puts Istio in every cluster. A mesh
// installed by someone else may live elsewhere: read a cluster's from
// its IstioNamespace.
const Namespace = topology.DefaultIstioNamespace

// Annotations and labels the guide puts on the remote's istio-system.
const (
	ControlPlaneClustersAnnotation = checks.ControlPlaneClustersAnnotation
	NetworkLabel                   = "topology.istio.io/network"
)

// Exposure says how istiod is reached from the remote cluster.
type Exposure string

const (
	// ExposeLoadBalancer: a LoadBalancer Service on 15012/15017 (local
	// source: no Envoy for a gateway).
	ExposeLoadBalancer Exposure = "loadbalancer"
	// ExposeEastWest: the east-west gateway and expose-istiod, as the guide.
	ExposeEastWest Exposure = "eastwest"
)

// Installer installs one multicluster mesh, each cluster by its role.
type Installer struct {
	Istioctl Istioctl
	// ManifestsDir receives every manifest the installer renders and
	// applies (not secrets), for the run's artifacts.
	ManifestsDir string
	// Values are the mesh-wide values (hub, tag, profile, meshID, network,
	// revision); the cluster fields are filled per step.
	Values   Values
	Exposure Exposure
	Run      *report.Run
	// PullSecret, when Values name one, is put into Istio's namespace on
	// every cluster before the install (the credentials of the user's
	// registry, whence Hub's images come).
	PullSecret *workloads.PullSecret
}

// Step names, as the guide's headings.
const (
	StepTrust   = "configure trust (cacerts)"
	StepPrimary = "configure the primary"
	StepExpose  = "expose istiod to the remote"
	StepRemote  = "configure the remote"
	StepSecret  = "attach the remote (remote secret)"
)

// StepError says which step failed on which cluster.
type StepError struct {
	Step, Cluster string
	Err           error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("install step %q on cluster %s: %v", e.Step, e.Cluster, e.Err)
}
func (e *StepError) Unwrap() error { return e.Err }

func (in *Installer) step(name, cluster string, fn func() error) error {
	err := in.Run.Time("istio "+in.Values.Tag+": "+name+" ("+cluster+")", fn)
	if err != nil {
		return &StepError{Step: name, Cluster: cluster, Err: err}
	}
	return nil
}

// Install runs the guides' steps in order on the clusters cls, by the role
// the topology gives each: "Install Primary-Remote" for every primary and
// the remotes it serves, "Install Multi-Primary" between primaries. Every
// primary gets the remote secret of every other cluster (its remotes', and
// the other primaries', whose endpoints it must see too). It returns, per
// primary that serves remotes, the address they reach its istiod at.
// Independent steps (one per cluster or pair) run side by side.
func (in *Installer) Install(ctx context.Context, cls ...*clusters.Cluster) (map[string]string, error) {
	if err := os.MkdirAll(in.ManifestsDir, 0o755); err != nil {
		return nil, err
	}
	primaries, remotes := clusters.ByRole(cls)
	if len(primaries) == 0 {
		return nil, fmt.Errorf("install: no primary cluster among %d", len(cls))
	}
	if err := in.step(StepTrust, strings.Join(clusters.Names(cls), ","), func() error {
		return in.configureTrust(ctx, cls)
	}); err != nil {
		return nil, err
	}
	discovery := map[string]string{}
	var mu sync.Mutex
	err := eachOf(ctx, primaries, func(ctx context.Context, p *clusters.Cluster) error {
		if err := in.step(StepPrimary, p.Name, func() error {
			return in.istioctlInstall(ctx, p, PrimaryTemplate, in.primaryValues(p, cls), "primary")
		}); err != nil {
			return err
		}
		if !servesRemotes(p, cls) {
			return nil
		}
		return in.step(StepExpose+" ("+string(in.Exposure)+")", p.Name, func() error {
			addr, err := in.exposeIstiod(ctx, p)
			mu.Lock()
			discovery[p.Name] = addr
			mu.Unlock()
			in.Run.Figure("istio_discovery_address_"+p.Name, addr)
			return err
		})
	})
	if err != nil {
		return discovery, err
	}
	if err := eachOf(ctx, remotes, func(ctx context.Context, r *clusters.Cluster) error {
		return in.step(StepRemote, r.Name, func() error {
			return in.ConfigureRemote(ctx, r, discovery[r.ControlPlane])
		})
	}); err != nil {
		return discovery, err
	}
	return discovery, eachOf(ctx, secretPairs(cls), func(ctx context.Context, pc [2]*clusters.Cluster) error {
		return in.step(StepSecret, pc[1].Name+" → "+pc[0].Name, func() error {
			return in.AttachRemote(ctx, pc[0], pc[1])
		})
	})
}

// secretPairs are the remote secrets the mesh needs, as (primary, cluster
// whose secret it gets): every other cluster's, for every primary.
func secretPairs(cls []*clusters.Cluster) [][2]*clusters.Cluster {
	primaries, _ := clusters.ByRole(cls)
	var pairs [][2]*clusters.Cluster
	for _, p := range primaries {
		for _, c := range cls {
			if c != p {
				pairs = append(pairs, [2]*clusters.Cluster{p, c})
			}
		}
	}
	return pairs
}

func servesRemotes(p *clusters.Cluster, cls []*clusters.Cluster) bool {
	for _, c := range cls {
		if !c.Primary && c.ControlPlane == p.Name {
			return true
		}
	}
	return false
}

// eachOf runs fn on every item side by side and returns the first error.
func eachOf[T any](ctx context.Context, items []T, fn func(context.Context, T) error) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, it := range items {
		g.Go(func() error { return fn(gctx, it) })
	}
	return g.Wait()
}

// ConfigureRemote installs (or reinstalls) the remote profile on remote,
// pointed at istiod by the address discovery (remotePilotAddress: an IP,
// or a load balancer's host name, which Istio's remote chart turns into an
// ExternalName Service).
func (in *Installer) ConfigureRemote(ctx context.Context, remote *clusters.Cluster, discovery string) error {
	v := in.clusterValues(remote)
	v.RemotePilotAddress = discovery
	return in.istioctlInstall(ctx, remote, RemoteTemplate, v, "remote")
}

func (in *Installer) clusterValues(cl *clusters.Cluster) Values {
	v := in.Values
	v.Cluster = cl.ClusterID
	return v
}

// primaryValues are p's values as a primary of the mesh cls.
func (in *Installer) primaryValues(p *clusters.Cluster, cls []*clusters.Cluster) Values {
	v := in.clusterValues(p)
	v.ExternalIstiod = servesRemotes(p, cls)
	return v
}

// configureTrust makes one root CA and an intermediate per cluster, and
// creates istio-system with each cluster's `cacerts` secret before istiod
// starts, as "Plug in CA Certificates" does. A remote's namespace carries
// the annotation that makes its primary's istiod manage it.
func (in *Installer) configureTrust(ctx context.Context, cls []*clusters.Cluster) error {
	root, err := cacerts.NewRoot()
	if err != nil {
		return err
	}
	ids := map[string]string{}
	for _, cl := range cls {
		ids[cl.Name] = cl.ClusterID
	}
	for _, cl := range cls {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name:   Namespace,
			Labels: map[string]string{NetworkLabel: in.Values.Network},
		}}
		if !cl.Primary {
			// istiod knows itself by its Istio cluster ID.
			ns.Annotations = map[string]string{ControlPlaneClustersAnnotation: ids[cl.ControlPlane]}
		}
		if err := createOrUpdate(ctx, cl.Client, ns); err != nil {
			return fmt.Errorf("cluster %s: namespace %s: %w", cl.Name, Namespace, err)
		}
		bundle, err := root.Intermediate(cl.Name)
		if err != nil {
			return err
		}
		if err := createOrUpdate(ctx, cl.Client, bundle.Secret(Namespace)); err != nil {
			return fmt.Errorf("cluster %s: secret %s: %w", cl.Name, cacerts.SecretName, err)
		}
		if in.PullSecret != nil {
			if err := in.PullSecret.Ensure(ctx, cl.Client, Namespace); err != nil {
				return fmt.Errorf("cluster %s: %w", cl.Name, err)
			}
		}
	}
	return nil
}

func (in *Installer) istioctlInstall(ctx context.Context, cl *clusters.Cluster, tmpl string, v Values, role string) error {
	path, err := in.renderToFile(tmpl, v, fmt.Sprintf("%s-%s.yaml", cl.Name, role))
	if err != nil {
		return err
	}
	_, err = in.Istioctl.Run(ctx, cl.Kubeconfig, "install", "-y", "-f", path)
	return err
}

func (in *Installer) renderToFile(tmpl string, v Values, name string) (string, error) {
	raw, err := Render(tmpl, v)
	if err != nil {
		return "", err
	}
	path := filepath.Join(in.ManifestsDir, name)
	return path, os.WriteFile(path, raw, 0o644)
}

// exposeIstiod makes istiod reachable from the remote and returns the
// address it is reached at (the guide's DISCOVERY_ADDRESS).
func (in *Installer) exposeIstiod(ctx context.Context, primary *clusters.Cluster) (string, error) {
	v := in.clusterValues(primary)
	var svcName string
	switch in.Exposure {
	case ExposeLoadBalancer:
		path, err := in.renderToFile(IstiodLBTemplate, v, primary.Name+"-istiod-lb.yaml")
		if err != nil {
			return "", err
		}
		if err := applyFile(ctx, primary.Client, path); err != nil {
			return "", err
		}
		svcName = v.IstiodService() + "-remote"
	case ExposeEastWest:
		if err := in.istioctlInstall(ctx, primary, EastWestTemplate, v, "eastwest"); err != nil {
			return "", err
		}
		path, err := in.renderToFile(ExposeIstiodTemplate, v, primary.Name+"-expose-istiod.yaml")
		if err != nil {
			return "", err
		}
		if err := applyFile(ctx, primary.Client, path); err != nil {
			return "", err
		}
		svcName = "istio-eastwestgateway"
	default:
		return "", fmt.Errorf("unknown exposure %q", in.Exposure)
	}
	return LoadBalancerAddress(ctx, primary.Client, Namespace, svcName, 2*time.Minute)
}

// LoadBalancerAddress waits for the Service's load balancer address
// (IngressAddress).
func LoadBalancerAddress(ctx context.Context, c klient.Client, ns, name string, timeout time.Duration) (string, error) {
	var addr string
	err := poll.Until(ctx, timeout, time.Second, func(ctx context.Context) error {
		var svc corev1.Service
		if err := c.Resources(ns).Get(ctx, name, ns, &svc); err != nil {
			return err
		}
		var err error
		addr, err = IngressAddress(svc.Status.LoadBalancer.Ingress)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("service %s/%s got no load balancer address: %w", ns, name, err)
	}
	return addr, nil
}

// IngressAddress is a load balancer's address: its first IP, else its
// first host name (AWS's load balancers hand out names, never IPs).
func IngressAddress(ings []corev1.LoadBalancerIngress) (string, error) {
	for _, ing := range ings {
		if a, err := netip.ParseAddr(ing.IP); err == nil {
			return a.String(), nil
		}
	}
	for _, ing := range ings {
		if ing.Hostname != "" {
			return ing.Hostname, nil
		}
	}
	return "", fmt.Errorf("no IP or host name among the load balancer's ingress points %v", ings)
}

// AttachRemote runs `istioctl create-remote-secret` on the remote and
// applies its output to the primary. The secret holds a token: it goes from
// istioctl's stdout straight to the API, never to a file or a log.
func (in *Installer) AttachRemote(ctx context.Context, primary, remote *clusters.Cluster) error {
	out, err := in.Istioctl.Run(ctx, remote.Kubeconfig, "create-remote-secret", "--name", remote.ClusterID, "-i", Namespace)
	if err != nil {
		return err
	}
	n := 0
	err = decoder.DecodeEach(ctx, strings.NewReader(out), func(ctx context.Context, obj k8sObject) error {
		n++
		return createOrUpdate(ctx, primary.Client, obj)
	})
	if err != nil {
		return fmt.Errorf("apply the remote secret of %s to %s: %w", remote.Name, primary.Name, err)
	}
	if n == 0 {
		return fmt.Errorf("istioctl create-remote-secret printed no object")
	}
	return nil
}

func applyFile(ctx context.Context, c klient.Client, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return decoder.DecodeEach(ctx, bytes.NewReader(raw), func(ctx context.Context, obj k8sObject) error {
		return createOrUpdate(ctx, c, obj)
	})
}

// createOrUpdate creates obj, or replaces the existing object's content.
func createOrUpdate(ctx context.Context, c klient.Client, obj k8sObject) error {
	err := c.Resources().Create(ctx, obj)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	existing := obj.DeepCopyObject().(k8sObject)
	if err := c.Resources().Get(ctx, obj.GetName(), obj.GetNamespace(), existing); err != nil {
		return err
	}
	obj.SetResourceVersion(existing.GetResourceVersion())
	return c.Resources().Update(ctx, obj)
}
