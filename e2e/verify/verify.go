// Package verify holds the mesh's checks as values: plain functions that
// look at real clusters (API servers, istiod, traffic through the sample
// apps), judge what they see with package checks, and return an error that
// names what was wrong and, where it can tell, why. The conformance specs
// are compositions of them; the seeded-fault suite runs the very same
// functions against a mesh it broke on purpose, to prove they fail.
//
// Every check states the broken mesh it rejects and how often a correct
// mesh fails it; the figures behind those statements (window sizes,
// significance, budgets) are constants here, and their arithmetic is in
// this package's unit tests.
package verify

import (
	"fmt"
	"sync"
	"time"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/traffic"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// The sample apps' namespaces and identities.
const (
	// AppNamespace is the guide's namespace for the sample apps, injection on.
	AppNamespace = "production"
	// OutsideNamespace holds a client outside the mesh (no injection).
	OutsideNamespace = "outside"
	// BackendHost is the backend Service every rule is written for.
	BackendHost = "backend." + AppNamespace + ".svc.cluster.local"
)

// The figures the traffic verdicts rest on.
const (
	// SplitCalls and SplitAlpha: the weighted split is judged over this
	// many calls per caller by an exact two-sided binomial test; a correct
	// mesh fails it with probability SplitAlpha.
	SplitCalls = 1000
	SplitAlpha = 0.001
	// LocalWindow: "stays local" means every one of this many consecutive
	// calls is answered in the caller's cluster. It catches a mesh that
	// leaks 1 % of calls across regions with probability 1-0.99^1000 =
	// 99.996 %; a correct mesh (locality priorities) sends none away.
	LocalWindow = 1000
	// CrossClusterCalls: calls from the primary's frontend that must all
	// be answered by the remote's backend.
	CrossClusterCalls = 100
	// ReachCalls: calls that must reach every cluster. gRPC picks among
	// equally weighted localities at random, so a correct mesh with two
	// clusters misses one in 40 calls with probability 2·0.5^40 ≈ 2e-12.
	ReachCalls = 40
	// PodMiss: the odds that a correct mesh leaves one backend pod
	// unanswered in the window that must reach each; the window is sized
	// from the pods' count (checks.CallsToReachEach: 171 calls for 8 pods).
	PodMiss = 1e-9
	// HeaderCalls: calls with a version header that must all reach that
	// subset.
	HeaderCalls = 100
	// SettleCalls: the small batch polled while configuration reaches
	// the proxies, before a measured batch is judged.
	SettleCalls = 20
)

// Budgets for traffic moving between localities. Scaling a cluster's
// backends to zero is graceful (the server drains, the client moves to the
// next priority), so no call may fail; measured on this platform: 0 failed
// calls and 0.3 s in every run so far. Failback is timed from the scale-up,
// so it includes the new pods' start (about 10 s here) and the EDS push;
// the other locality serves meanwhile, so no call may fail either.
var (
	FailoverBudget = traffic.Budget{MaxTime: 15 * time.Second, MaxFailed: 0}
	FailbackBudget = traffic.Budget{MaxTime: 90 * time.Second, MaxFailed: 0}
)

// Mesh is what the checks look at: the mesh's model (its clusters with
// their roles and Istio cluster IDs, its revision), the control plane
// installed, and the sample apps with what their fixtures declare.
type Mesh struct {
	mesh.Model
	// Primary is the (first) primary cluster: the checks' home, where the
	// frontend that calls across runs.
	Primary *clusters.Cluster
	// Away is the cluster Primary's calls cross to: the first remote, or
	// in a multi-primary mesh the second primary.
	Away  *clusters.Cluster
	Istio *harness.Istio
	// RunLabels are the run's labels, stamped on every namespace a check
	// creates (harness.Harness.RunLabels).
	RunLabels workloads.RunLabels
	// Frontends maps a cluster to its frontend's base URL, for clusters
	// where the frontend runs.
	Frontends map[string]string
	// Apps is what the sample apps' fixtures declare, which the checks
	// judge against (never what the pods turned out to be).
	Apps AppIntent
	// Settle is how long a check waits for configuration to reach the
	// proxies before judging; zero means DefaultSettle.
	Settle time.Duration
	// RootCertWait is how long a new namespace of the remote may wait for
	// istio-ca-root-cert; zero means DefaultRootCertWait.
	RootCertWait time.Duration

	mu        sync.Mutex
	placement *checks.Placement
}

// AppIntent is what the sample apps' manifests declare: the service
// accounts each end runs under, from which their SPIFFE identities follow.
type AppIntent struct {
	BackendAccount, FrontendAccount string
}

// identities are the SPIFFE IDs the backend and the frontend must carry,
// from the fixtures' intent; an unset intent is an error, not a pass.
func (m *Mesh) identities() (backend, frontend string, err error) {
	if m.Apps.BackendAccount == "" || m.Apps.FrontendAccount == "" {
		return "", "", fmt.Errorf("the sample apps' service accounts are not known: no identity to expect")
	}
	if m.TrustDomain == "" {
		return "", "", fmt.Errorf("the mesh's trust domain is not known: no identity to expect")
	}
	return checks.SpiffeID(m.TrustDomain, AppNamespace, m.Apps.BackendAccount), checks.SpiffeID(m.TrustDomain, AppNamespace, m.Apps.FrontendAccount), nil
}

// Waiting is a view of m whose checks wait settle for configuration to
// reach the proxies and rootCert for istio-ca-root-cert (zero: the
// defaults): the same mesh and apps, judged the same way, for a caller
// that polls the checks itself and wants a failure told sooner. m itself
// keeps its waits, so the specs that share its apps are not changed.
func (m *Mesh) Waiting(settle, rootCert time.Duration) *Mesh {
	return &Mesh{
		Model: m.Model, Primary: m.Primary, Away: m.Away, Istio: m.Istio,
		RunLabels: m.RunLabels, Frontends: m.Frontends, Apps: m.Apps,
		Settle: settle, RootCertWait: rootCert,
	}
}

// DefaultSettle is how long configuration may take to reach every proxy.
const DefaultSettle = 2 * time.Minute

func (m *Mesh) settle() time.Duration {
	if m.Settle > 0 {
		return m.Settle
	}
	return DefaultSettle
}

// withDiagnosis appends what diagnose finds to a failed check's error.
func withDiagnosis(err error, diagnose func() string) error {
	if err == nil {
		return nil
	}
	if d := diagnose(); d != "" {
		return fmt.Errorf("%w\n  diagnosis: %s", err, d)
	}
	return err
}
