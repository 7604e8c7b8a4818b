package specs

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/verify"
	"github.com/meshconform/meshconform/e2e/workloads"
	"github.com/meshconform/meshconform/fixtures/platform"
	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/labels"
)

// platformNS is where the platform specs run their server and client.
const platformNS = "platform-check"

// Platform declares the platform specs: what every later suite relies on —
// Ready nodes, a healthy kube-system, DNS, Services, LoadBalancer addresses
// from each cluster's own pool, and a flat network between the clusters.
// Call it inside an Ordered container after env.Setup.
func Platform() {
	p := &platformChecks{}
	Context("Platform: kind clusters on one Docker network", Ordered, Label(labels.Platform), func() {
		BeforeAll(p.deploy, NodeTimeout(5*time.Minute))
		p.nodes()
		Context("inside each cluster", Label(labels.Networking), p.insideEachCluster)
		Context("LoadBalancer Services", Label(labels.LoadBalancer), p.loadBalancers)
		p.flatNetwork()
		AfterAll(p.cleanUp, NodeTimeout(3*time.Minute))
	})
}

// platformChecks are the platform specs' shared state: the clusters, once
// BeforeAll has them, and the helpers that look into them.
type platformChecks struct {
	all []*clusters.Cluster
}

// deploy puts a server (ClusterIP and LoadBalancer Services) and a client
// pod in every cluster.
func (p *platformChecks) deploy(ctx SpecContext) {
	const ns = platformNS
	run := env.Get()
	if run.H.Config.BringYourOwn() {
		Skip("clusters brought by MESHCONFORM_KUBECONFIG: the platform specs describe the kind clusters meshconform creates (versions, MetalLB pools, its flat network)")
	}
	p.all = run.Clusters
	By("deploying a server (ClusterIP and LoadBalancer Services) and a client pod in every cluster")
	probe, err := run.H.App(ctx, "probe")
	Expect(err).NotTo(HaveOccurred())
	for _, cl := range p.all {
		Expect(workloads.CreateNamespace(ctx, cl.Client, run.H.RunLabels(), ns, nil)).To(Succeed())
		Expect(workloads.ApplyFS(ctx, cl.Client, platform.Manifests, platform.HTTPFile, ns,
			workloads.Overrides{Images: workloads.Images{"meshconform/probe": probe}, PullSecret: run.H.PullSecret()})).To(Succeed())
	}
	for _, cl := range p.all {
		Eventually(func(g Gomega) {
			var pods corev1.PodList
			g.Expect(cl.Client.Resources(ns).List(ctx, &pods)).To(Succeed())
			g.Expect(pods.Items).To(HaveLen(2))
			for _, pod := range pods.Items {
				g.Expect(pod.Status.ContainerStatuses).To(HaveEach(HaveField("Ready", true)), "pod %s/%s", cl.Name, pod.Name)
			}
		}).WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(time.Second).Should(Succeed(), "workloads in %s", cl.Name)
	}
}

func (p *platformChecks) nodes() {
	It("has every node Ready at the Kubernetes version asked for, labelled with its cluster's locality", func(ctx SpecContext) {
		for _, cl := range p.all {
			var nodes corev1.NodeList
			Expect(cl.Client.Resources().List(ctx, &nodes)).To(Succeed())
			Expect(nodes.Items).NotTo(BeEmpty(), "cluster %s", cl.Name)
			for _, n := range nodes.Items {
				Expect(n.Status.Conditions).To(ContainElement(And(
					HaveField("Type", corev1.NodeReady), HaveField("Status", corev1.ConditionTrue))), "node %s", n.Name)
				Expect(n.Status.NodeInfo.KubeletVersion).To(Equal(env.Get().H.Release.Version), "kubelet of node %s", n.Name)
			}
		}
		Expect(verify.NodeLocality(ctx, p.all)).To(Succeed())
	}, NodeTimeout(time.Minute))

	// A CrashLoopBackOff pod keeps phase Running: Ready and no restarts
	// is what healthy means.
	It("runs every kube-system and metallb-system pod Ready, with no container restarted", func(ctx SpecContext) {
		Expect(verify.SystemPodsHealthy(ctx, p.all, "kube-system", "metallb-system")).To(Succeed())
	}, NodeTimeout(time.Minute))
}

func (p *platformChecks) insideEachCluster() {
	const ns = platformNS
	It("gives pods addresses from their node's pod CIDR", func(ctx SpecContext) {
		for _, cl := range p.all {
			for _, app := range []string{"echo", "client"} {
				for _, pod := range p.podsOf(ctx, cl, app) {
					ip, err := netip.ParseAddr(pod.Status.PodIP)
					Expect(err).NotTo(HaveOccurred(), "pod %s/%s", cl.Name, pod.Name)
					Expect(cl.PodSubnet.Contains(ip)).To(BeTrue(), "pod %s/%s IP %s outside %s", cl.Name, pod.Name, ip, cl.PodSubnet)
				}
			}
		}
	}, NodeTimeout(time.Minute))

	It("resolves kubernetes.default through CoreDNS", func(ctx SpecContext) {
		for _, cl := range p.all {
			var svc corev1.Service
			Expect(cl.Client.Resources().Get(ctx, "kubernetes", "default", &svc)).To(Succeed())
			Eventually(p.fromClient(ctx, cl, "dns", "kubernetes.default")).WithContext(ctx).
				WithTimeout(time.Minute).WithPolling(2*time.Second).
				Should(ContainSubstring(svc.Spec.ClusterIP), "in cluster %s", cl.Name)
		}
	}, NodeTimeout(3*time.Minute))

	It("answers HTTP through a ClusterIP Service from another pod", func(ctx SpecContext) {
		for _, cl := range p.all {
			server := p.podsOf(ctx, cl, "echo")[0].Name
			Eventually(p.fromClient(ctx, cl, "get", "http://echo."+ns+".svc.cluster.local/")).WithContext(ctx).
				WithTimeout(time.Minute).WithPolling(2*time.Second).
				Should(HavePrefix("pod="+server+" "), "in cluster %s", cl.Name)
		}
	}, NodeTimeout(3*time.Minute))
}

func (p *platformChecks) loadBalancers() {
	const ns = platformNS
	It("get an address from their own cluster's MetalLB pool", func(ctx SpecContext) {
		for _, cl := range p.all {
			var ip netip.Addr
			Eventually(func(g Gomega) {
				var svc corev1.Service
				g.Expect(cl.Client.Resources(ns).Get(ctx, "echo-lb", ns, &svc)).To(Succeed())
				g.Expect(svc.Status.LoadBalancer.Ingress).NotTo(BeEmpty())
				ip = netip.MustParseAddr(svc.Status.LoadBalancer.Ingress[0].IP)
			}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed(), "echo-lb in %s", cl.Name)
			Expect(cl.LoadBalancerPool.Contains(ip)).To(BeTrue(), "echo-lb in %s got %s, outside its pool %s", cl.Name, ip, cl.LoadBalancerPool)
			for _, o := range p.others(cl) {
				Expect(o.LoadBalancerPool.Contains(ip)).To(BeFalse(), "echo-lb in %s got %s, inside %s's pool", cl.Name, ip, o.Name)
			}
		}
	}, NodeTimeout(2*time.Minute))

	It("answer from this machine", func(ctx SpecContext) {
		client := &http.Client{Timeout: 5 * time.Second}
		for _, cl := range p.all {
			url := "http://" + p.lbAddress(ctx, cl).String() + "/"
			server := p.podsOf(ctx, cl, "echo")[0].Name
			Eventually(func() (string, error) {
				resp, err := client.Get(url)
				if err != nil {
					return "", err
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				return string(body), err
			}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(2*time.Second).
				Should(HavePrefix("pod="+server+" "), "GET %s (cluster %s)", url, cl.Name)
		}
	}, NodeTimeout(3*time.Minute))

	It("answer from a pod in the other cluster", Label(labels.FlatNetwork), func(ctx SpecContext) {
		for _, cl := range p.all {
			url := "http://" + p.lbAddress(ctx, cl).String() + "/"
			server := p.podsOf(ctx, cl, "echo")[0].Name
			for _, o := range p.others(cl) {
				Eventually(p.fromClient(ctx, o, "get", url)).WithContext(ctx).
					WithTimeout(time.Minute).WithPolling(2*time.Second).
					Should(HavePrefix("pod="+server+" "), "GET %s from %s", url, o.Name)
			}
		}
	}, NodeTimeout(3*time.Minute))
}

func (p *platformChecks) flatNetwork() {
	It("routes pod to pod across clusters, both ways, without address translation", Label(labels.FlatNetwork), func(ctx SpecContext) {
		for _, cl := range p.all {
			server := p.podsOf(ctx, cl, "echo")[0]
			for _, o := range p.others(cl) {
				caller := p.podsOf(ctx, o, "client")[0]
				url := "http://" + server.Status.PodIP + ":8080/"
				By(fmt.Sprintf("%s/%s → %s/%s at %s", o.Name, caller.Name, cl.Name, server.Name, server.Status.PodIP))
				// The server reports the caller's address as it saw it: the
				// caller's own pod IP, so nothing masqueraded on the way.
				Eventually(p.fromClient(ctx, o, "get", url)).WithContext(ctx).
					WithTimeout(time.Minute).WithPolling(2 * time.Second).
					Should(And(HavePrefix("pod="+server.Name+" "), ContainSubstring("remote="+caller.Status.PodIP+":")))
			}
		}
	}, NodeTimeout(3*time.Minute))
}

func (p *platformChecks) cleanUp(ctx SpecContext) {
	var nss []workloads.Namespace
	for _, cl := range p.all {
		nss = append(nss, workloads.Namespace{Client: cl.Client, Name: platformNS})
	}
	Expect(workloads.DeleteNamespaces(ctx, nss...)).To(Succeed())
}

// others are the clusters that are not cl: with three clusters, each pair
// is checked both ways.
func (p *platformChecks) others(cl *clusters.Cluster) []*clusters.Cluster {
	out := othersThan(p.all, cl)
	Expect(out).NotTo(BeEmpty(), "the topology has one cluster only")
	return out
}

func (p *platformChecks) podsOf(ctx SpecContext, cl *clusters.Cluster, app string) []corev1.Pod {
	var pods corev1.PodList
	Expect(cl.Client.Resources(platformNS).List(ctx, &pods)).To(Succeed())
	var out []corev1.Pod
	for _, pod := range pods.Items {
		if pod.Labels["app"] == app {
			out = append(out, pod)
		}
	}
	Expect(out).NotTo(BeEmpty(), "no %s pod in %s", app, cl.Name)
	return out
}

// fromClient runs the probe in cl's client pod.
func (p *platformChecks) fromClient(ctx SpecContext, cl *clusters.Cluster, args ...string) func() (string, error) {
	return func() (string, error) {
		return workloads.Exec(ctx, cl.Client, platformNS, "client", "client", append([]string{"probe"}, args...)...)
	}
}

func (p *platformChecks) lbAddress(ctx SpecContext, cl *clusters.Cluster) netip.Addr {
	var svc corev1.Service
	Expect(cl.Client.Resources(platformNS).Get(ctx, "echo-lb", platformNS, &svc)).To(Succeed())
	Expect(svc.Status.LoadBalancer.Ingress).NotTo(BeEmpty(), "echo-lb in %s has no address", cl.Name)
	ip, err := netip.ParseAddr(svc.Status.LoadBalancer.Ingress[0].IP)
	Expect(err).NotTo(HaveOccurred())
	return ip
}
