package specs

import (
	"context"
	"fmt"
	"regexp"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/mesh/cacerts"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/e2e/verify"
	"github.com/meshconform/meshconform/e2e/workloads"
	"github.com/meshconform/meshconform/fixtures/conformance"
	"github.com/meshconform/meshconform/suites/internal/env"
)

// The catalogue of seeded faults: what each breaks, where users hit it,
// the check meant to catch it and the cause its error must name, and how
// it is seeded and repaired. The Ginkgo tree that runs them is Faults
// (faults.go); faults of newer classes are in faults_judges.go and
// faults_rbac.go.

// seededFault is a misconfiguration users have hit, seeded into a healthy
// mesh to prove that the conformance check meant to catch it does.
type seededFault struct {
	// topology is the kind of mesh the fault is seeded in ("" for
	// primary-remote; "multi-primary").
	topology string
	name     string
	// ref is where users hit it.
	ref string
	// spec is the conformance spec whose check catches it.
	spec string
	// doctor is the doctor check that must name the fault, read-only; ""
	// for a fault of intent in the apps' own rules (a weight, which subset
	// is which, PERMISSIVE where STRICT was meant), which only the specs'
	// traffic can tell.
	doctor string
	// rules are the Istio config fixtures the check needs on the primary.
	rules []string
	check func(context.Context, *faultEnv) error
	// cause is what the check's error must say: the symptom and its cause.
	cause func(*faultEnv) *regexp.Regexp
	seed  func(context.Context, *faultEnv) error
	// repair restores the healthy mesh.
	repair func(context.Context, *faultEnv) error
	// unless says why the fault cannot be seeded in this run ("" = it
	// can); the spec then skips with that reason.
	unless func(harness.Config) string
}

// faults are the seeded faults, in the order they run. A restarted istiod
// writes istio-ca-root-cert into the remote's new namespaces only 30–45 s
// after the restart, its old pod gone or not (measured): the faults
// judged by that check, and the injection check, run after the traffic
// faults, so that this wait after the remote secret faults' restarts
// passes beside those instead of in a check's.
var faults = []seededFault{
	{
		name: "remote secret whose server address is 127.0.0.1",
		ref:  "istio/istio#31081", spec: "install: the remote is a synced cluster of istiod",
		doctor: "remote-secret",
		check:  func(ctx context.Context, e *faultEnv) error { return e.vm.RemoteSynced(ctx) },
		// istiod either keeps the cluster, never synced, or drops it.
		cause: re(`(want synced|does not list cluster \S+ in debug/clusterz)[\s\S]*server https://127\.0\.0\.1:\d+ — a loopback address`),
		seed: func(ctx context.Context, e *faultEnv) error {
			return pointRemoteSecretAt(ctx, e, "https://127.0.0.1:6443")
		},
		repair: reattachRemote,
	},
	{
		name: "remote secret deleted",
		ref:  "Install Primary-Remote: Attach cluster2 as a remote", spec: "install: the remote is a synced cluster of istiod",
		doctor: "remote-secret",
		check:  func(ctx context.Context, e *faultEnv) error { return e.vm.RemoteSynced(ctx) },
		// istiod drops the cluster, or (istio/istio#58047) hangs stopping
		// it and lists it "closed".
		cause: re(`(does not list cluster \S+ in debug/clusterz|want synced)[\s\S]*no remote secret`),
		// The install attached the secret, by istioctl's create-remote-secret:
		// not ours to delete but by a fault seeder.
		seed: func(ctx context.Context, e *faultEnv) error {
			s := &corev1.Secret{}
			s.Name, s.Namespace = checks.RemoteSecretName(e.vm.Away.ClusterID), e.vm.Primary.IstioNamespace()
			return workloads.DeleteForeign(ctx, e.vm.Primary.Client, s)
		},
		repair: reattachRemote,
	},
	{
		name: "VirtualService without the weights (plain balancing over pods)",
		ref:  "Traffic Management: weighted routing", spec: "traffic-rules",
		rules: []string{conformance.TrafficRulesFile},
		check: trafficRulesFromPrimary,
		cause: re(`split does not follow the weights[\s\S]*default route is no weighted split of subsets`),
		seed: func(ctx context.Context, e *faultEnv) error {
			return replaceFixture(ctx, e, conformance.TrafficRulesFile, "VirtualService", func(u *unstructured.Unstructured) error {
				http, _, _ := unstructured.NestedSlice(u.Object, "spec", "http")
				if len(http) == 0 {
					return fmt.Errorf("the VirtualService has no http routes")
				}
				// The last route is the default one (no match).
				http[len(http)-1] = map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": verify.BackendHost}}}}
				return unstructured.SetNestedSlice(u.Object, http, "spec", "http")
			})
		},
		repair: func(ctx context.Context, e *faultEnv) error {
			return replaceFixture(ctx, e, conformance.TrafficRulesFile, "VirtualService", nil)
		},
	},
	{
		name: "DestinationRule subsets swapped (v1 selects version: v2)",
		ref:  "Traffic Management: subsets", spec: "traffic-rules",
		rules: []string{conformance.TrafficRulesFile},
		check: trafficRulesFromPrimary,
		cause: re(`want every answer from version v1[\s\S]*subset v1 selects version=v2`),
		seed: func(ctx context.Context, e *faultEnv) error {
			return replaceFixture(ctx, e, conformance.TrafficRulesFile, "DestinationRule", func(u *unstructured.Unstructured) error {
				subsets, _, _ := unstructured.NestedSlice(u.Object, "spec", "subsets")
				if len(subsets) != 2 {
					return fmt.Errorf("want two subsets to swap, the DestinationRule has %d", len(subsets))
				}
				a, aok := subsets[0].(map[string]any)
				b, bok := subsets[1].(map[string]any)
				if !aok || !bok {
					return fmt.Errorf("unreadable subsets %v", subsets)
				}
				a["labels"], b["labels"] = b["labels"], a["labels"]
				return unstructured.SetNestedSlice(u.Object, subsets, "spec", "subsets")
			})
		},
		repair: func(ctx context.Context, e *faultEnv) error {
			return replaceFixture(ctx, e, conformance.TrafficRulesFile, "DestinationRule", nil)
		},
	},
	{
		name: "DestinationRule without outlierDetection (locality priorities off)",
		ref:  "Locality failover: outlierDetection is required", spec: "locality-failover",
		rules: []string{conformance.FailoverFile},
		check: func(ctx context.Context, e *faultEnv) error { return e.vm.StaysLocalEverywhere(ctx) },
		cause: re(`want every answer from \[[^\]]+\], got \d+ from [\s\S]*has no outlierDetection, so locality priorities are off`),
		seed: func(ctx context.Context, e *faultEnv) error {
			return replaceFixture(ctx, e, conformance.FailoverFile, "DestinationRule", func(u *unstructured.Unstructured) error {
				unstructured.RemoveNestedField(u.Object, "spec", "trafficPolicy", "outlierDetection")
				return nil
			})
		},
		repair: func(ctx context.Context, e *faultEnv) error {
			return replaceFixture(ctx, e, conformance.FailoverFile, "DestinationRule", nil)
		},
	},
	{
		name: "PeerAuthentication PERMISSIVE where STRICT is asserted",
		ref:  "Security: mutual TLS migration", spec: "mtls",
		rules: []string{conformance.MTLSFile},
		check: func(ctx context.Context, e *faultEnv) error { return e.vm.MTLSStrict(ctx) },
		cause: re(`was answered \(by pod \S+\): mTLS is not enforced[\s\S]*mTLS mode PERMISSIVE, not STRICT`),
		seed: func(ctx context.Context, e *faultEnv) error {
			return replaceFixture(ctx, e, conformance.MTLSFile, "PeerAuthentication", func(u *unstructured.Unstructured) error {
				return unstructured.SetNestedField(u.Object, "PERMISSIVE", "spec", "mtls", "mode")
			})
		},
		repair: func(ctx context.Context, e *faultEnv) error {
			return replaceFixture(ctx, e, conformance.MTLSFile, "PeerAuthentication", nil)
		},
	},
	{
		name: "remote istio-system without the topology.istio.io/controlPlaneClusters annotation",
		ref:  "istio/istio#47552; Install Primary-Remote: Configure cluster2 as a remote", spec: "install: istio-ca-root-cert in a new remote namespace",
		doctor: "control-plane-clusters",
		check:  func(ctx context.Context, e *faultEnv) error { return e.vm.RootCertDistributed(ctx) },
		cause:  re(`got no istio-ca-root-cert[\s\S]*has no topology\.istio\.io/controlPlaneClusters annotation`),
		// istiod reads the annotation when it adds the remote, so the
		// fault is the state after a restart (as after a fresh install).
		seed: func(ctx context.Context, e *faultEnv) error {
			if err := annotateRemoteIstioSystem(ctx, e, ""); err != nil {
				return err
			}
			return renewIstiod(ctx, e)
		},
		repair: func(ctx context.Context, e *faultEnv) error {
			if err := annotateRemoteIstioSystem(ctx, e, e.vm.Primary.Name); err != nil {
				return err
			}
			return renewIstiod(ctx, e)
		},
	},
	{
		name: "primary without EXTERNAL_ISTIOD",
		ref:  "Install Primary-Remote: values.global.externalIstiod", spec: "install: istio-ca-root-cert in a new remote namespace",
		doctor: "external-istiod",
		check:  func(ctx context.Context, e *faultEnv) error { return e.vm.RootCertDistributed(ctx) },
		cause:  re(`got no istio-ca-root-cert[\s\S]*EXTERNAL_ISTIOD="false"`),
		seed:   func(ctx context.Context, e *faultEnv) error { return setIstiodEnv(ctx, e, "EXTERNAL_ISTIOD", "false") },
		repair: func(ctx context.Context, e *faultEnv) error {
			return setIstiodEnv(ctx, e, "EXTERNAL_ISTIOD", "true")
		},
	},
	{
		name: "remote installed with a wrong remotePilotAddress",
		ref:  "Install Primary-Remote: DISCOVERY_ADDRESS", spec: "install: an injected remote pod connects to istiod",
		doctor: "discovery-address",
		check: func(ctx context.Context, e *faultEnv) error {
			_, err := e.vm.RemoteInjection(ctx, faultInjectionWait)
			return err
		},
		cause: re(`(create an injected pod|not Ready|not in proxy-status)[\s\S]*remotePilotAddress is wrong`),
		// An address of the run's own Docker network that nothing holds:
		// the last of the primary's MetalLB pool.
		seed: func(ctx context.Context, e *faultEnv) error {
			return e.m.Installer.ConfigureRemote(ctx, e.vm.Away, e.vm.Primary.LoadBalancerPool.Last.String())
		},
		repair: func(ctx context.Context, e *faultEnv) error {
			return e.m.Installer.ConfigureRemote(ctx, e.vm.Away, e.m.Discovery)
		},
	},
	{
		// Region and zone both: with the zone left alone, cluster2's
		// endpoints would be "same region, other zone" to cluster1's
		// callers, still a lower priority than their own zone, and traffic
		// would stay local — the fault would break nothing.
		name: "cluster2's nodes labelled with cluster1's region and zone",
		ref:  "Locality Load Balancing: localities come from node labels", spec: "locality-failover",
		doctor: "node-locality",
		rules:  []string{conformance.FailoverFile},
		check:  func(ctx context.Context, e *faultEnv) error { return e.vm.StaysLocalEverywhere(ctx) },
		cause: func(e *faultEnv) *regexp.Regexp {
			p, r := e.vm.Primary, e.vm.Away
			return regexp.MustCompile(`got \d+ from ` + regexp.QuoteMeta(r.Name) + `[\s\S]*` +
				regexp.QuoteMeta(fmt.Sprintf("labelled %s/%s but %s is %s/%s", p.Region, p.Zone, r.Name, r.Region, r.Zone)))
		},
		// istiod reads a pod's locality from its node when it builds the
		// endpoint, so the backends are restarted to pick the labels up.
		seed: func(ctx context.Context, e *faultEnv) error {
			return relabelRemoteNodes(ctx, e, e.vm.Primary.Region, e.vm.Primary.Zone)
		},
		repair: func(ctx context.Context, e *faultEnv) error {
			return relabelRemoteNodes(ctx, e, e.vm.Away.Region, e.vm.Away.Zone)
		},
	},
	oneCallerLocality,
	silentBackend,
	podSecurityOff,
	backendsAsFrontend,
	remoteSecretOverPrivileged,
	foreignRules,
}

// multiPrimaryFaults are seeded in a multi-primary mesh (vm.Primary is the
// first primary, vm.Away the second).
var multiPrimaryFaults = []seededFault{
	{
		topology: "multi-primary",
		name:     "a primary's cacerts from a different root CA",
		ref:      "Plug in CA Certificates: every cluster's intermediate from one root", spec: "mtls",
		doctor: "root-cert",
		rules:  []string{conformance.MTLSFile},
		check:  func(ctx context.Context, e *faultEnv) error { return e.vm.MTLSStrict(ctx) },
		// The handshakes to the other primary's backends fail (a root the
		// caller does not trust), and gRPC keeps only the endpoints whose
		// handshake succeeds: each caller's calls stay local and none
		// fails, so what the check sees is the other cluster's backend
		// pods answering none of a caller's calls, and its diagnosis names
		// the two roots.
		cause: re(`answered none of \d+ calls[\s\S]*2 different roots`),
		seed: func(ctx context.Context, e *faultEnv) error {
			var err error
			if e.savedCacerts, err = readCacerts(ctx, e.vm.Away); err != nil {
				return err
			}
			root, err := cacerts.NewRoot()
			if err != nil {
				return err
			}
			bundle, err := root.Intermediate(e.vm.Away.Name)
			if err != nil {
				return err
			}
			return reissueCerts(ctx, e, bundle.Secret(e.vm.Away.IstioNamespace()))
		},
		repair: func(ctx context.Context, e *faultEnv) error {
			if e.savedCacerts == nil {
				return fmt.Errorf("no saved cacerts of %s to restore", e.vm.Away.Name)
			}
			return reissueCerts(ctx, e, e.savedCacerts)
		},
	},
	{
		topology: "multi-primary",
		name:     "remote secret missing in one direction",
		ref:      "Install Multi-Primary: Enable Endpoint Discovery (a secret in each primary)", spec: "install: every other cluster synced",
		doctor: "remote-secret",
		check:  func(ctx context.Context, e *faultEnv) error { return e.vm.RemoteSynced(ctx) },
		cause: func(e *faultEnv) *regexp.Regexp {
			return regexp.MustCompile(`istiod \S+ on ` + regexp.QuoteMeta(e.vm.Primary.Name) + ` (does not list cluster ` + regexp.QuoteMeta(e.vm.Away.Name) + ` in debug/clusterz|lists cluster ` + regexp.QuoteMeta(e.vm.Away.Name) + ` as "\w+", want synced)[\s\S]*no remote secret`)
		},
		// istiod 1.29.2 does not always drop a cluster whose secret goes
		// (istio/istio#58047): restarted, it starts without it, as a
		// primary installed without the secret would.
		seed: func(ctx context.Context, e *faultEnv) error {
			s := &corev1.Secret{}
			s.Name, s.Namespace = checks.RemoteSecretName(e.vm.Away.ClusterID), e.vm.Primary.IstioNamespace()
			if err := workloads.DeleteForeign(ctx, e.vm.Primary.Client, s); err != nil {
				return err
			}
			return renewIstiod(ctx, e)
		},
		repair: reattachRemote,
	},
}

// readCacerts reads cl's cacerts Secret (the CA's key: it stays in memory,
// never in a log or the report).
func readCacerts(ctx context.Context, cl *clusters.Cluster) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	if err := cl.Client.Resources(cl.IstioNamespace()).Get(ctx, cacerts.SecretName, cl.IstioNamespace(), s); err != nil {
		return nil, fmt.Errorf("read %s of %s: %w", cacerts.SecretName, cl.Name, err)
	}
	s.ObjectMeta = metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: s.Labels}
	return s, nil
}

// reissueCerts replaces the second primary's cacerts, restarts its istiod
// (which reads them at start), then its sample apps, whose workload
// certificates then come from the new CA.
func reissueCerts(ctx context.Context, e *faultEnv, secret *corev1.Secret) error {
	cl := e.vm.Away
	if err := workloads.Replace(ctx, cl.Client, secret.DeepCopy()); err != nil {
		return fmt.Errorf("replace %s of %s: %w", cacerts.SecretName, cl.Name, err)
	}
	if err := workloads.RestartDeployment(ctx, cl.Client, cl.IstioNamespace(), istiodDeployment(e), rolloutWait); err != nil {
		return err
	}
	var deps appsv1.DeploymentList
	if err := cl.Client.Resources(verify.AppNamespace).List(ctx, &deps); err != nil {
		return err
	}
	for _, d := range deps.Items {
		if err := workloads.RestartDeployment(ctx, cl.Client, verify.AppNamespace, d.Name, rolloutWait); err != nil {
			return err
		}
	}
	return nil
}

// reattachRemote applies the remote secret istioctl makes, then restarts
// istiod. The restart is what users have to do today: istiod 1.29.2's
// secret controller hangs stopping the remote cluster when its secret
// changes or goes ("Stopping CRD watcher", then nothing; later secret
// events are never processed — seen here, and reported as
// istio/istio#58047), so a corrected secret alone is never picked up.
func reattachRemote(ctx context.Context, e *faultEnv) error {
	if err := e.m.Installer.AttachRemote(ctx, e.vm.Primary, e.vm.Away); err != nil {
		return err
	}
	return renewIstiod(ctx, e)
}

func re(s string) func(*faultEnv) *regexp.Regexp {
	r := regexp.MustCompile(s)
	return func(*faultEnv) *regexp.Regexp { return r }
}

func trafficRulesFromPrimary(ctx context.Context, e *faultEnv) error {
	w, err := conformance.SplitWeights()
	if err != nil {
		return err
	}
	_, err = e.vm.TrafficRules(ctx, e.vm.Primary.Name, w)
	return err
}

// replaceFixture replaces the object of kind in a conformance fixture on
// the primary with the fixture's own, changed by mutate (nil: as written).
func replaceFixture(ctx context.Context, e *faultEnv, file, kind string, mutate func(*unstructured.Unstructured) error) error {
	obj, err := conformance.Object(file, kind)
	if file == conformance.FailoverFile {
		obj, err = conformance.FailoverRule(e.vm.Primary.Region, e.vm.Away.Region)
	}
	if err != nil {
		return err
	}
	u := appObject(obj)
	if mutate != nil {
		if err := mutate(u); err != nil {
			return fmt.Errorf("%s %s in %s: %w", kind, u.GetName(), file, err)
		}
	}
	return workloads.ApplyObject(ctx, e.vm.Primary.Client, u)
}

// pointRemoteSecretAt rewrites the API server address of the remote
// secret's kubeconfig. The kubeconfig's credentials never leave this
// function.
func pointRemoteSecretAt(ctx context.Context, e *faultEnv, server string) error {
	var s corev1.Secret
	name := checks.RemoteSecretName(e.vm.Away.ClusterID)
	if err := e.vm.Primary.Client.Resources(e.vm.Primary.IstioNamespace()).Get(ctx, name, e.vm.Primary.IstioNamespace(), &s); err != nil {
		return err
	}
	for key, raw := range s.Data {
		cfg, err := clientcmd.Load(raw)
		if err != nil {
			return fmt.Errorf("remote secret %s: unreadable kubeconfig for %s", name, key)
		}
		for _, c := range cfg.Clusters {
			c.Server = server
		}
		if s.Data[key], err = clientcmd.Write(*cfg); err != nil {
			return fmt.Errorf("remote secret %s: write the kubeconfig for %s: %v", name, key, err)
		}
	}
	return workloads.Replace(ctx, e.vm.Primary.Client, &s)
}

// annotateRemoteIstioSystem sets (or, with "", removes) the remote
// istio-system's controlPlaneClusters annotation.
func annotateRemoteIstioSystem(ctx context.Context, e *faultEnv, value string) error {
	return workloads.UpdateForeign(ctx, e.vm.Away.Client, e.vm.Away.IstioNamespace(), "", func(ns *corev1.Namespace) {
		if value == "" {
			delete(ns.Annotations, mesh.ControlPlaneClustersAnnotation)
			return
		}
		if ns.Annotations == nil {
			ns.Annotations = map[string]string{}
		}
		ns.Annotations[mesh.ControlPlaneClustersAnnotation] = value
	})
}

func istiodDeployment(e *faultEnv) string {
	return mesh.Values{Revision: e.m.Revision}.IstiodService()
}

// restartIstiod restarts istiod of vm's primary and waits for the
// rollout, as users restart it: the old pod shuts down on its own (about
// 30 s), meanwhile refusing some calls to istiod's webhooks (a refused
// apply is tried again: workloads.ApplyFS and ApplyObject). The checks
// read istiod only from pods not being deleted.
func restartIstiod(ctx context.Context, vm *verify.Mesh) error {
	return workloads.RestartDeployment(ctx, vm.Primary.Client, vm.Primary.IstioNamespace(), mesh.Values{Revision: vm.Istio.Revision}.IstiodService(), rolloutWait)
}

// renewIstiod restarts istiod of the primary for a fault's seed or
// repair: past the rollout, the old pod's process is killed at once.
// Left to shut down (about 30 s), it goes on leading the remote, writing
// istio-ca-root-cert into the remote's new namespaces by the settings a
// seed just changed (measured: such a fault caught 55 s after the
// rollout, 22 s once the old pod was gone). A fault is the state with the
// new istiod alone, as after a fresh install.
func renewIstiod(ctx context.Context, e *faultEnv) error {
	if err := restartIstiod(ctx, e.vm); err != nil {
		return err
	}
	return stopOldIstiod(ctx, e)
}

// setIstiodEnv sets an environment variable of istiod's, waits for the
// rollout and kills the old pod's process (renewIstiod says why).
func setIstiodEnv(ctx context.Context, e *faultEnv, name, value string) error {
	if err := workloads.UpdateDeployment(ctx, e.vm.Primary.Client, e.vm.Primary.IstioNamespace(), istiodDeployment(e), rolloutWait, func(d *appsv1.Deployment) {
		workloads.SetContainerEnv(d, "discovery", name, value)
	}); err != nil {
		return err
	}
	return stopOldIstiod(ctx, e)
}

// stopOldIstiod kills, on their nodes, the running containers of the
// istiod pods a rollout left shutting down, and waits for the pods to be
// gone. Deleting them with a grace period of 0 would not do: it removes
// the pod from the API at once, but leaves its process to the kubelet's
// 30 s (measured: the fault still caught only 52 s after the rollout).
func stopOldIstiod(ctx context.Context, e *faultEnv) error {
	p := e.vm.Primary
	old, err := workloads.Terminating(ctx, p.Client, p.IstioNamespace(), mesh.IstiodSelector(e.m.Revision))
	if err != nil {
		return err
	}
	for _, pod := range old {
		var running []string
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.State.Running != nil {
				running = append(running, cs.ContainerID)
			}
		}
		if err := env.Get().H.Clusters.KillContainers(ctx, p.Name, pod.Spec.NodeName, running); err != nil {
			return fmt.Errorf("stop the old istiod pod %s: %w", pod.Name, err)
		}
	}
	return workloads.WaitNoneTerminating(ctx, p.Client, p.IstioNamespace(), rolloutWait)
}

// relabelRemoteNodes gives the remote's nodes a locality and restarts its
// backends, whose endpoints then carry it.
func relabelRemoteNodes(ctx context.Context, e *faultEnv, region, zone string) error {
	var nodes corev1.NodeList
	if err := e.vm.Away.Client.Resources().List(ctx, &nodes); err != nil {
		return err
	}
	for _, node := range nodes.Items {
		// The kubelet updates its node all the time: UpdateForeign retries
		// on conflicts.
		err := workloads.UpdateForeign(ctx, e.vm.Away.Client, node.Name, "", func(n *corev1.Node) {
			n.Labels[topology.RegionLabel], n.Labels[topology.ZoneLabel] = region, zone
		})
		if err != nil {
			return fmt.Errorf("label node %s: %w", node.Name, err)
		}
	}
	ds, err := conformance.BackendDeployments()
	if err != nil {
		return err
	}
	for name := range ds {
		if err := workloads.RestartDeployment(ctx, e.vm.Away.Client, verify.AppNamespace, name, rolloutWait); err != nil {
			return err
		}
	}
	return nil
}
