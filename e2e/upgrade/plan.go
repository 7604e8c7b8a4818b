// Package upgrade holds what an Istio upgrade run decides without a
// cluster: which upgrades Istio supports, the phases of each method, the
// version every cluster should run in each phase, the traffic's budgets,
// and the routes that aim a stream at one cluster.
package upgrade

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/meshconform/meshconform/e2e/traffic"
)

// Method is how the control plane is upgraded.
type Method string

const (
	// Canary installs the new version as a revision beside the old one and
	// moves workloads by a revision tag (Istio's recommended way).
	Canary Method = "canary"
	// InPlace installs the new version over the old one.
	InPlace Method = "in-place"
)

// Plan is one run's upgrades: from one Istio version to another, by each
// of Methods, in order.
type Plan struct {
	From    string   `json:"from"`
	To      string   `json:"to"`
	Methods []Method `json:"methods"`
}

// Defaults: both versions build here (../shared/PLATFORM.md).
const (
	DefaultFrom    = "1.26.0"
	DefaultTo      = "1.27.0"
	DefaultMethods = "canary,in-place"
)

// ParsePlan reads MESHCONFORM_UPGRADE_FROM, _TO and _METHODS' values and
// rejects, with Istio's reason, an upgrade Istio does not support.
func ParsePlan(from, to, methods string) (Plan, error) {
	p := Plan{From: strings.TrimPrefix(from, "v"), To: strings.TrimPrefix(to, "v")}
	for _, m := range strings.Split(methods, ",") {
		m = strings.TrimSpace(m)
		switch Method(m) {
		case Canary, InPlace:
			p.Methods = append(p.Methods, Method(m))
		default:
			return p, fmt.Errorf("MESHCONFORM_UPGRADE_METHODS: unknown method %q (want %q, %q or both, comma-separated)", m, Canary, InPlace)
		}
	}
	for _, m := range p.Methods {
		if err := p.Supported(m); err != nil {
			return p, err
		}
	}
	return p, nil
}

// Supported says why Istio does not support upgrading p.From to p.To by m,
// or nil. Istio's upgrade guides: an in-place upgrade goes one minor
// version at a time; a canary (revision-based) upgrade may jump two minor
// versions (1.x to 1.x+2); neither is a downgrade.
func (p Plan) Supported(m Method) error {
	f, err := minorOf(p.From)
	if err != nil {
		return fmt.Errorf("MESHCONFORM_UPGRADE_FROM: %w", err)
	}
	t, err := minorOf(p.To)
	if err != nil {
		return fmt.Errorf("MESHCONFORM_UPGRADE_TO: %w", err)
	}
	jump := t - f
	switch {
	case compareVersions(p.To, p.From) <= 0:
		return fmt.Errorf("upgrade from %s to %s: the target must be newer than the source", p.From, p.To)
	case m == InPlace && jump > 1:
		return fmt.Errorf("%s upgrade from %s to %s is not supported by Istio: in-place upgrades go one minor version at a time (upgrade to each intermediate minor release, or use the canary method, which may jump two)", m, p.From, p.To)
	case m == Canary && jump > 2:
		return fmt.Errorf("%s upgrade from %s to %s is not supported by Istio: revision-based upgrades may jump at most two minor versions", m, p.From, p.To)
	}
	return nil
}

// Has reports whether the plan runs method m.
func (p Plan) Has(m Method) bool {
	for _, x := range p.Methods {
		if x == m {
			return true
		}
	}
	return false
}

// minorOf is the minor number of "1.N.P".
func minorOf(v string) (int, error) {
	parts := strings.Split(v, ".")
	if len(parts) != 3 || parts[0] != "1" {
		return 0, fmt.Errorf("%q is not an Istio version 1.N.P", v)
	}
	for _, s := range parts {
		if _, err := strconv.Atoi(s); err != nil {
			return 0, fmt.Errorf("%q is not an Istio version 1.N.P", v)
		}
	}
	n, _ := strconv.Atoi(parts[1])
	return n, nil
}

func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x - y
		}
	}
	return len(pa) - len(pb)
}

// The load's figures: every stream at Rate, each phase given at least
// Dwell of steady traffic after its action finished.
const (
	Rate  = 5.0
	Dwell = 10 * time.Second
	// MaxLoad bounds one method's load in time (the canary's takes about
	// 5 minutes here, in place about 2.5).
	MaxLoad = 30 * time.Minute
)

// MaxRequests bounds one method's load in requests.
func MaxRequests(streams int) int { return int(Rate*MaxLoad.Seconds()) * streams }

// Budgets. Canary and rollback phases may fail no request: a restart under
// a drained, revision-tagged canary moves every call to a live pod. A call
// the mesh leaves hanging fails at the frontend's 2 s deadline, so the
// gap bounds what failures cannot see: the load path (the load, the
// frontends' LoadBalancer, the frontends) stalling. MaxGap is 5 s, 25
// requests in a row of one stream at Rate: pods starting on a 2-core
// machine stall every stream at once, without a failed request, by up to
// 1.74 s measured on a quiet machine (a 2 s budget failed a CI run). Once a
// phase's action is done, its p99 may exceed the "before" phase's by 500 ms
// at most, whatever the method; during the action it is measured only:
// pods starting on a 2-core machine stalled every stream at once by up to
// 1.5 s in one CI run (p99 1.05 s) without a failed request, while the
// steady spans stayed under 400 ms in every run. In-place upgrades restart
// the one istiod every proxy is connected to; Istio does not promise them
// hitless, so their failures and gaps during the action are measured and
// reported, not judged; after it, they fail nothing either.
var (
	CanaryBudget  = traffic.Budget{MaxFailed: 0, MaxGap: 5 * time.Second, MaxP99Over: 500 * time.Millisecond, MinPerStream: 20}
	InPlaceBudget = traffic.Budget{MaxFailed: -1, MaxP99Over: 500 * time.Millisecond, MinPerStream: 20}
)

// Phases of the time line, named as the guides' steps. A phase starts when
// its action starts and ends when the next one starts.
const (
	Before           = "before"
	CanaryInstalled  = "canary revision installed"
	PrimaryMoved     = "tag moved, primary's workloads restarted"
	PrimaryRestarted = "primary's workloads restarted"
	RemoteMoved      = "remote's workloads restarted"
	RolledBack       = "rollback: tag moved back, workloads restarted"
	RolledForward    = "roll forward: tag moved again, workloads restarted"
	OldRemoved       = "old revision removed"
	ControlPlaneUp   = "control plane upgraded in place"
)

// Phases lists a method's phases in order.
func Phases(m Method) []string {
	if m == InPlace {
		return []string{Before, ControlPlaneUp, PrimaryRestarted, RemoteMoved}
	}
	return []string{Before, CanaryInstalled, PrimaryMoved, RemoteMoved, RolledBack, RolledForward, OldRemoved}
}

// Expect is the proxy version the workloads of the primary and of the
// remote run once phase's action is done; an unknown phase is an error,
// never a guess.
func (p Plan) Expect(phase string) (primary, remote string, err error) {
	switch phase {
	case Before, CanaryInstalled, ControlPlaneUp, RolledBack:
		return p.From, p.From, nil
	case PrimaryMoved, PrimaryRestarted:
		return p.To, p.From, nil
	case RemoteMoved, RolledForward, OldRemoved:
		return p.To, p.To, nil
	}
	return "", "", fmt.Errorf("unknown upgrade phase %q", phase)
}

// Budget is what phase of method m may cost. The "before" phase is the
// mesh before anything changed: it fails nothing, whatever the method.
func Budget(m Method, phase string) traffic.Budget {
	if m == InPlace && phase != Before {
		return InPlaceBudget
	}
	return CanaryBudget
}
