package platform

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/workloads"
	"github.com/meshconform/meshconform/suites/internal/labels"
)

// The platform suite brings up one cluster of the topology (the primary)
// from the configured image source and checks what every later suite relies
// on: a Ready node, a healthy kube-system, DNS, Services, and a teardown that
// leaves nothing behind.
var _ = Describe("Platform: one kind cluster", Ordered, Label(labels.Platform), func() {
	const ns = "platform-check"
	var (
		h      *harness.Harness
		cl     *clusters.Cluster
		failed bool
	)

	BeforeAll(func(ctx SpecContext) {
		cfg, err := harness.ConfigFromEnv()
		Expect(err).NotTo(HaveOccurred())
		h, err = harness.New(cfg, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			Expect(h.Teardown(ctx, failed)).To(Succeed())
			Expect(h.Close()).To(Succeed())
			AddReportEntry("phases", h.Run.Phases())
		}, NodeTimeout(5*time.Minute))

		By("checking the machine before creating anything")
		Expect(h.Preflight(ctx)).To(Succeed())
		By(fmt.Sprintf("preparing %s images for Kubernetes %s", cfg.Source, h.Release.Version))
		Expect(h.PrepareImages(ctx)).To(Succeed())
		By("creating the primary cluster " + h.Topology.Primary().Name)
		created, err := h.CreateClusters(ctx, h.Topology.Primary().Name)
		Expect(err).NotTo(HaveOccurred())
		cl = created[0]
	}, NodeTimeout(50*time.Minute))

	AfterEach(func() {
		if CurrentSpecReport().Failed() {
			failed = true
		}
	})

	It("has every node Ready, running the Kubernetes version asked for", func(ctx SpecContext) {
		var nodes corev1.NodeList
		Expect(cl.Client.Resources().List(ctx, &nodes)).To(Succeed())
		Expect(nodes.Items).NotTo(BeEmpty())
		for _, n := range nodes.Items {
			Expect(n.Status.Conditions).To(ContainElement(And(
				HaveField("Type", corev1.NodeReady), HaveField("Status", corev1.ConditionTrue))), "node %s", n.Name)
			Expect(n.Status.NodeInfo.KubeletVersion).To(Equal(h.Release.Version), "kubelet of node %s", n.Name)
			Expect(n.Labels).To(HaveKeyWithValue("topology.kubernetes.io/region", cl.Region), "node %s", n.Name)
		}
	}, NodeTimeout(time.Minute))

	It("runs every kube-system pod", func(ctx SpecContext) {
		var pods corev1.PodList
		Expect(cl.Client.Resources("kube-system").List(ctx, &pods)).To(Succeed())
		names := map[string]bool{}
		for _, p := range pods.Items {
			Expect(p.Status.Phase).To(Equal(corev1.PodRunning), "pod %s", p.Name)
			names[strings.SplitN(p.Name, "-", 2)[0]] = true
		}
		// The control plane, kube-proxy and CoreDNS are all there.
		for _, want := range []string{"etcd", "kube", "coredns"} {
			Expect(names).To(HaveKey(want))
		}
	}, NodeTimeout(time.Minute))

	Context("with a server and a client pod", Label(labels.Networking), func() {
		BeforeAll(func(ctx SpecContext) {
			probe, err := h.App(ctx, "probe")
			Expect(err).NotTo(HaveOccurred())
			Expect(workloads.CreateNamespace(ctx, cl.Client, ns, nil)).To(Succeed())
			Expect(workloads.Apply(ctx, cl.Client, filepath.Join(h.Config.RepoRoot, "fixtures", "platform"), "*.yaml", ns,
				workloads.Images{"meshconform/probe": probe})).To(Succeed())
			Eventually(func(g Gomega) {
				var pods corev1.PodList
				g.Expect(cl.Client.Resources(ns).List(ctx, &pods)).To(Succeed())
				g.Expect(pods.Items).To(HaveLen(2))
				for _, p := range pods.Items {
					g.Expect(p.Status.PodIP).NotTo(BeEmpty(), "pod %s has no IP", p.Name)
					g.Expect(p.Status.ContainerStatuses).To(HaveEach(HaveField("Ready", true)), "pod %s", p.Name)
				}
			}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Succeed())
		}, NodeTimeout(5*time.Minute))

		It("gives pods addresses from the node's pod CIDR", func(ctx SpecContext) {
			var pods corev1.PodList
			Expect(cl.Client.Resources(ns).List(ctx, &pods)).To(Succeed())
			for _, p := range pods.Items {
				ip, err := netip.ParseAddr(p.Status.PodIP)
				Expect(err).NotTo(HaveOccurred())
				Expect(cl.PodSubnet.Contains(ip)).To(BeTrue(), "pod %s IP %s outside %s", p.Name, ip, cl.PodSubnet)
			}
		}, NodeTimeout(time.Minute))

		It("resolves kubernetes.default through CoreDNS", func(ctx SpecContext) {
			var svc corev1.Service
			Expect(cl.Client.Resources().Get(ctx, "kubernetes", "default", &svc)).To(Succeed())
			Eventually(func() (string, error) {
				return workloads.Exec(ctx, cl.Client, ns, "client", "client", "probe", "dns", "kubernetes.default")
			}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(2 * time.Second).
				Should(ContainSubstring(svc.Spec.ClusterIP))
		}, NodeTimeout(2*time.Minute))

		It("answers HTTP through a ClusterIP Service from another pod", func(ctx SpecContext) {
			var pods corev1.PodList
			Expect(cl.Client.Resources(ns).List(ctx, &pods)).To(Succeed())
			var server string
			for _, p := range pods.Items {
				if p.Labels["app"] == "echo" {
					server = p.Name
				}
			}
			Expect(server).NotTo(BeEmpty())
			Eventually(func() (string, error) {
				return workloads.Exec(ctx, cl.Client, ns, "client", "client", "probe", "get", "http://echo."+ns+".svc.cluster.local/")
			}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(2 * time.Second).
				Should(HavePrefix("pod=" + server + " "))
		}, NodeTimeout(2*time.Minute))
	})

	It("deletes the cluster and leaves nothing of it behind", Label(labels.Teardown), func(ctx SpecContext) {
		if h.Config.KeepClusters {
			Skip("MESHCONFORM_KEEP_CLUSTERS=1: the cluster is kept for debugging")
		}
		Expect(h.Teardown(ctx, false)).To(Succeed())
		left, err := h.Leftovers(ctx, cl.Name)
		Expect(err).NotTo(HaveOccurred())
		Expect(left).To(BeEmpty(), "left behind after teardown")
	}, NodeTimeout(5*time.Minute))
})
