package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	kindexec "sigs.k8s.io/kind/pkg/exec"

	"github.com/meshconform/meshconform/e2e/images"
)

// The pair's mesh, installed by hand as a vendor's operator would from
// Istio's "Install Primary-Remote" guide, with istioctl and nothing of
// meshconform's installer: Istio cluster IDs unlike the clusters' names, a
// trust domain of its own, Istio in a namespace of its own (not
// istio-system), a revision with a tag on top, two istiod replicas, and
// istiod exposed by a load balancer that hands out a host name.

const (
	trustDomain = "acme.example"
	meshNetwork = "acme-net"
	revisionTag = "prod"
	// istioNamespace is where the pair's Istio lives, on both clusters.
	istioNamespace = "acme-mesh"
	// discoveryService is the primary's load balancer for istiod: a name
	// meshconform does not know.
	discoveryService = "acme-discovery"
)

func revision(version string) string {
	parts := strings.SplitN(version, ".", 3)
	return "acme-" + strings.Join(parts[:min(2, len(parts))], "-")
}

// discoveryHost is the host name the load balancer hands out: the
// primary's node on the pair's network, as Docker's DNS names it (every
// node and pod of the pair resolves it; nothing outside does).
func discoveryHost(primary site) string { return primary.name + "-control-plane." + pairNetwork }

func primaryOperator(s site, version string) string {
	return fmt.Sprintf(`apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  namespace: %s
  revision: %s
  profile: minimal
  hub: docker.io/istio
  tag: %s
  meshConfig:
    trustDomain: %s
  components:
    pilot:
      k8s:
        replicaCount: 2
        resources:
          requests:
            cpu: 100m
            memory: 256Mi
  values:
    pilot:
      autoscaleEnabled: false
    global:
      # The nodes hold Istio's images (pair-up put them there): the
      # injected agent is not pulled again.
      imagePullPolicy: IfNotPresent
      meshID: acme-mesh
      istioNamespace: %s
      multiCluster:
        clusterName: %s
      network: %s
      externalIstiod: true
`, istioNamespace, revision(version), version, trustDomain, istioNamespace, s.clusterID, meshNetwork)
}

func remoteOperator(s site, version, pilotHost string) string {
	return fmt.Sprintf(`apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  namespace: %s
  revision: %s
  profile: remote
  hub: docker.io/istio
  tag: %s
  values:
    istiodRemote:
      injectionPath: /inject/cluster/%s/net/%s
    global:
      imagePullPolicy: IfNotPresent
      istioNamespace: %s
      remotePilotAddress: %s
`, istioNamespace, revision(version), version, s.clusterID, meshNetwork, istioNamespace, pilotHost)
}

// discoveryLB is istiod's load balancer: a class no controller here
// handles, so the address comes from hostnameLB alone; kube-proxy serves
// the node's address, where the host name points.
func discoveryLB(rev, nodeIP string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %s
  namespace: %s
spec:
  type: LoadBalancer
  loadBalancerClass: acme.example/dns
  externalIPs: [%s]
  selector:
    app: istiod
    istio.io/rev: %s
  ports:
  - name: tcp-istiod
    port: 15012
    targetPort: 15012
  - name: tcp-webhook
    port: 15017
    targetPort: 15017
  # A remote given a host name reaches istiod through an ExternalName
  # Service, and its API server calls the injection webhook at that name's
  # port 443 (the Service's port; ExternalName maps none): the load
  # balancer must serve it.
  - name: https-webhook
    port: 443
    targetPort: 15017
`, discoveryService, istioNamespace, nodeIP, rev)
}

// meshUp installs the mesh on the pair and writes DIR/clusters.yaml, the
// clusters file a vendor hands meshconform (no Istio IDs: they are read
// from the mesh).
func meshUp(ctx context.Context, dir string) error {
	e, err := newPairEnv(dir)
	if err != nil {
		return err
	}
	rel, err := images.LookupIstioRelease(e.cfg.IstioVersion)
	if err != nil {
		return err
	}
	istioctl, err := e.local.Istio(ctx, rel)
	if err != nil {
		return err
	}
	version, rev := rel.Version, revision(rel.Version)
	primary, remote := sites[0], sites[1]
	run := func(s site, args ...string) error {
		ctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, istioctl, append(args, "--kubeconfig", filepath.Join(dir, "kubeconfig"), "--context", s.context)...)
		// istioctl keeps a discovery cache under $HOME/.kube.
		cmd.Env = append(os.Environ(), "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("istioctl %s on %s: %w: %s", args[0], s.name, err, tail(string(out)))
		}
		return nil
	}
	write := func(name, content string) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, []byte(content), 0o644)
	}

	// The guide: the istio namespace on every cluster, the network named;
	// the remote's annotated with the primary that serves it.
	for _, s := range sites {
		if _, err := kubectl(ctx, dir, s, nil, "create", "namespace", istioNamespace); err != nil {
			return err
		}
		if _, err := kubectl(ctx, dir, s, nil, "label", "namespace", istioNamespace, "topology.istio.io/network="+meshNetwork); err != nil {
			return err
		}
	}
	if _, err := kubectl(ctx, dir, remote, nil, "annotate", "namespace", istioNamespace, "topology.istio.io/controlPlaneClusters="+primary.clusterID); err != nil {
		return err
	}

	p, err := write("east-istio.yaml", primaryOperator(primary, version))
	if err != nil {
		return err
	}
	if err := run(primary, "install", "-y", "-f", p); err != nil {
		return err
	}
	ip, err := e.nodeIP(primary)
	if err != nil {
		return err
	}
	if _, err := kubectl(ctx, dir, primary, strings.NewReader(discoveryLB(rev, ip)), "apply", "-f", "-"); err != nil {
		return err
	}
	host := discoveryHost(primary)
	if _, err := kubectl(ctx, dir, primary, nil, "-n", istioNamespace, "patch", "service", discoveryService, "--subresource=status", "--type=merge",
		"-p", fmt.Sprintf(`{"status":{"loadBalancer":{"ingress":[{"hostname":%q}]}}}`, host)); err != nil {
		return err
	}

	p, err = write("west-istio.yaml", remoteOperator(remote, version, host))
	if err != nil {
		return err
	}
	if err := run(remote, "install", "-y", "-f", p); err != nil {
		return err
	}
	// The remote's API server for the primary's istiod: a remote secret
	// made from the remote's kubeconfig (its server the node's address).
	cmd := exec.CommandContext(ctx, istioctl, "create-remote-secret", "--kubeconfig", filepath.Join(dir, "kubeconfig"), "--context", remote.context, "--name", remote.clusterID, "--istioNamespace", istioNamespace)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	secret, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("istioctl create-remote-secret for %s: %w", remote.name, err)
	}
	if _, err := kubectl(ctx, dir, primary, strings.NewReader(string(secret)), "apply", "-f", "-"); err != nil {
		// kubectl's error quotes no part of the secret.
		return err
	}
	for _, s := range sites {
		if err := run(s, "tag", "set", revisionTag, "--revision", rev, "--istioNamespace", istioNamespace, "-y"); err != nil {
			return err
		}
	}
	if _, err := kubectl(ctx, dir, primary, nil, "-n", istioNamespace, "rollout", "status", "deployment/istiod-"+rev, "--timeout=4m"); err != nil {
		return err
	}
	// The nodes keep Istio's images (the injected agent's included): the
	// registry that served them, meshconform's on this machine, goes once
	// the pair is up, so the run has none of its own to lean on.
	for _, s := range sites {
		n, err := e.node(s)
		if err != nil {
			return err
		}
		// ctr reads no CRI mirror: pulled from the registry by its own
		// name, then tagged as the pods name it.
		for _, repo := range []string{"istio/proxyv2:" + version, "istio/pilot:" + version} {
			from := images.RegistryHost + "/" + repo
			for _, args := range [][]string{{"pull", "--plain-http", from}, {"tag", "--force", from, "docker.io/" + repo}} {
				cmd := n.CommandContext(ctx, "ctr", append([]string{"-n", "k8s.io", "images"}, args...)...)
				if out, err := kindexec.CombinedOutputLines(cmd); err != nil {
					return fmt.Errorf("%s: ctr images %s: %w: %s", s.name, strings.Join(args, " "), err, strings.Join(out, "\n"))
				}
			}
		}
	}
	if err := images.RemoveRegistry(ctx); err != nil {
		return err
	}
	clusters := fmt.Sprintf(`# The pair as its vendor describes it: names and contexts of its own; the
# Istio cluster IDs (%s, %s) are left to be read from the mesh.
istiodReplicas: 2
clusters:
- {name: %s, context: %s, primary: true, istioNamespace: %s}
- {name: %s, context: %s, controlPlane: %s, istioNamespace: %s}
`, primary.clusterID, remote.clusterID, primary.context, primary.context, istioNamespace, remote.context, remote.context, primary.context, istioNamespace)
	_, err = write("clusters.yaml", clusters)
	fmt.Printf("mesh: Istio %s in %s, revision %s (tag %s) on %s (%s, primary, 2 istiod) and %s (%s, remote), trust domain %s, istiod at %s\n",
		version, istioNamespace, rev, revisionTag, primary.name, primary.clusterID, remote.name, remote.clusterID, trustDomain, host)
	return err
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// cutRemoteAPI drops, on the primary's node, what its pods send to the
// remote's API server (only that path: this machine still reaches it),
// and restarts istiod, which then starts without the remote.
func cutRemoteAPI(ctx context.Context, dir string) error {
	e, err := newPairEnv(dir)
	if err != nil {
		return err
	}
	primary, remote := sites[0], sites[1]
	pn, err := e.node(primary)
	if err != nil {
		return err
	}
	remoteIP, err := e.nodeIP(remote)
	if err != nil {
		return err
	}
	rule := []string{"-w", "-I", "FORWARD", "-s", primary.nodeRange.String(), "-d", remoteIP, "-p", "tcp", "--dport", "6443", "-j", "REJECT", "--reject-with", "tcp-reset"}
	if out, err := kindexec.CombinedOutputLines(pn.CommandContext(ctx, "iptables", rule...)); err != nil {
		return fmt.Errorf("%s: iptables: %w: %s", primary.name, err, strings.Join(out, "\n"))
	}
	rel, err := images.LookupIstioRelease(e.cfg.IstioVersion)
	if err != nil {
		return err
	}
	deploy := "deployment/istiod-" + revision(rel.Version)
	if _, err := kubectl(ctx, dir, primary, nil, "-n", istioNamespace, "rollout", "restart", deploy); err != nil {
		return err
	}
	_, err = kubectl(ctx, dir, primary, nil, "-n", istioNamespace, "rollout", "status", deploy, "--timeout=4m")
	fmt.Printf("cut: %s's pods no longer reach %s's API server (%s:6443); istiod restarted\n", primary.name, remote.name, remoteIP)
	return err
}
