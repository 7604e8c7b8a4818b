// Package labels is the closed set of Ginkgo labels the suites use, one per
// capability, so `--label-filter` selects specs by what they prove.
package labels

const (
	// Platform: clusters and what they stand on.
	Platform = "platform"
	// Networking: pod network, Services and DNS inside a cluster.
	Networking = "networking"
	// LoadBalancer: MetalLB addresses for LoadBalancer Services.
	LoadBalancer = "loadbalancer"
	// FlatNetwork: pods and Services of one cluster reachable from the other.
	FlatNetwork = "flat-network"
	// Teardown: nothing of a run remains after it.
	Teardown = "teardown"
)

// Install: the multicluster install steps and their effects.
const Install = "install"

// Conformance capabilities: what users run meshconform for.
const (
	Conformance  = "conformance"
	CrossCluster = "cross-cluster"
	ReachAll     = "reach-all-clusters"
	ProxyStatus  = "proxy-status"
	TrafficRules = "traffic-rules"
	MTLS         = "mtls"
	Failover     = "locality-failover"
	// PodSecurity: the apps, as injected, pass restricted Pod Security,
	// which the clusters enforce on the run's namespaces.
	PodSecurity = "restricted-pod-security"
)

// Control-plane resilience: an HA istiod losing a replica, a multi-primary
// mesh losing one primary's istiod, under traffic.
const (
	HAControlPlane = "ha-control-plane"
	PrimaryLoss    = "primary-loss"
)

// Resilience: the mesh under control-plane and network faults, each
// under continuous traffic and judged against its budget, with istiod's
// own metrics read through the run and propagation times measured.
const (
	Resilience           = "resilience"
	IstiodDown           = "istiod-down"
	RemoteCutOff         = "remote-cut-off"
	RemoteAPIUnreachable = "remote-api-unreachable"
	RemoteSecret         = "remote-secret"
	PodChurn             = "pod-churn"
	Propagation          = "propagation"
	IstiodMetrics        = "istiod-metrics"
)

// Faults: the seeded-fault self-test, every check shown to catch the
// broken mesh it is meant for.
const Faults = "seeded-faults"

// Upgrade: an Istio upgrade of the mesh under continuous traffic, judged
// phase by phase; each method has its own label.
const (
	Upgrade        = "upgrade"
	CanaryUpgrade  = "canary-upgrade"
	InPlaceUpgrade = "in-place-upgrade"
)
