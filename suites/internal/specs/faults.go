package specs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshconform/meshconform/e2e/doctor"
	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/poll"
	"github.com/meshconform/meshconform/e2e/verify"
	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/labels"
)

// faultEnv is what seeding and checking need at run time.
type faultEnv struct {
	apps *sampleApps
	// vm is the apps' mesh with short waits (faultSettle,
	// faultRootCertWait): a seeded fault shows in seconds, and every wait
	// is polled again anyway.
	vm *verify.Mesh
	m  *harness.Istio
	// savedCacerts is the healthy cacerts a fault replaced, for its repair.
	savedCacerts *corev1.Secret
}

// Timing of one fault. A check on a seeded fault fails only once its
// wait is over, twice (detect confirms), so the waits set how long a
// fault takes to catch. The checks' own waits are sized for a correct
// mesh on any platform; here they are short, yet far above what the
// awaited step takes (configuration reaches every proxy in under 0.3 s
// at p99, istio-ca-root-cert arrives in about a second, an injected pod
// is on istiod in about 4 s): a healthy check that needs longer is
// polled again (faultRecover), and a fault is caught only when a check
// after the confirmation still fails naming it.
const (
	faultSettle        = 5 * time.Second
	faultRootCertWait  = 10 * time.Second
	faultInjectionWait = 15 * time.Second
	faultDetect        = 3 * time.Minute
	faultConfirm       = 2 * time.Second
	faultRecover       = 4 * time.Minute
	rolloutWait        = 3 * time.Minute
)

// faultOutcome is one fault's line in the report.
type faultOutcome struct {
	Fault    string `json:"fault"`
	Ref      string `json:"ref"`
	CaughtBy string `json:"caught_by"`
	Caught   bool   `json:"caught"`
	// Doctor is the doctor check that named it ("" = not the doctor's).
	Doctor string `json:"doctor,omitempty"`
	Error  string `json:"error"`
}

// Faults declares the seeded-fault self-test: on a healthy mesh with the
// sample apps in both clusters, each fault is seeded in turn; the check
// of the conformance spec meant to catch it must pass before, fail with an
// error naming the cause while the fault is in place, and pass again once
// it is repaired. It is the suite's positive control: proof, on the user's
// own platform, that the checks can fail. Call inside an Ordered container
// after env.Setup; shared is the apps the suite's contexts share (nil:
// the context's own).
func Faults(shared *SharedApps) {
	if refusesBrought("the seeded-fault suite breaks the mesh on purpose (remote secrets, istiod's settings, node labels)") {
		return
	}
	env.WillInstallMesh(Label(labels.Faults))
	e := &faultEnv{}
	var outcomes []faultOutcome
	// The faults of the run's topology, decided while the tree is built.
	seeded := faults
	if topo, err := env.Topology(); err == nil && topo.Kind() == "multi-primary" && len(topo.Clusters) == 2 {
		seeded = multiPrimaryFaults
	} else if refusesTopology("seeded-fault") {
		return
	}

	Context("Seeded faults: every check catches the broken mesh it is meant for", Ordered, Label(labels.Faults), func() {
		BeforeAll(func(ctx SpecContext) { e.deploy(ctx, shared) }, NodeTimeout(40*time.Minute))

		AfterAll(func(ctx SpecContext) { e.finish(ctx, shared, len(seeded), outcomes) }, NodeTimeout(5*time.Minute))

		for _, f := range seeded {
			It(fmt.Sprintf("catches: %s (by %s)", f.name, f.spec), func(ctx SpecContext) {
				if f.unless != nil {
					if why := f.unless(env.Get().H.Config); why != "" {
						Skip(why)
					}
				}
				e.prove(ctx, f, func(o faultOutcome) { outcomes = append(outcomes, o) })
			}, NodeTimeout(25*time.Minute))
		}
	})
}

// doctorSays checks the doctor's verdict on check id: with want Pass every
// result must pass, with want Fail at least one must fail (a check gives
// one result per cluster, and a fault breaks one cluster).
func doctorSays(ctx context.Context, e *faultEnv, id string, want doctor.Status) error {
	rep := doctor.Examine(ctx, e.vm.Model)
	res := rep.Find(id)
	if len(res) == 0 {
		return fmt.Errorf("doctor ran no check %s", id)
	}
	var seen []string
	for _, r := range res {
		if want == doctor.Fail && r.Status == doctor.Fail {
			return nil
		}
		if want == doctor.Pass && r.Status != doctor.Pass {
			return fmt.Errorf("doctor check %s on %s: %s (%s), want pass", id, r.Cluster, r.Status, r.Reason)
		}
		seen = append(seen, fmt.Sprintf("%s on %s: %s", r.Status, r.Cluster, r.Reason))
	}
	if want == doctor.Fail {
		return fmt.Errorf("doctor check %s does not fail: %s", id, strings.Join(seen, "; "))
	}
	return nil
}

// detect runs check until it fails with an error matching cause, or
// faultDetect passes, and returns the error text. A pass means the fault
// has not taken effect yet; an error naming another cause is remembered
// and retried. A match counts only when a run faultConfirm later matches
// too, so neither a transient state nor a statistical check's chance
// failure (α) passes for a caught fault.
func detect(ctx context.Context, check func() error, cause *regexp.Regexp) (text string, caught bool) {
	last := "the check kept passing"
	// check and the confirmation run on ctx, not on the wait's: a
	// confirmation begun before faultDetect ends is seen through.
	err := poll.Until(ctx, faultDetect, 2*time.Second, func(context.Context) error {
		err := check()
		if err == nil {
			return errors.New("the check passed")
		}
		if !cause.MatchString(err.Error()) {
			last = "failed without naming the cause /" + cause.String() + "/: " + err.Error()
			return errors.New(last)
		}
		// Still broken a moment later: not a blip of istiod
		// reconfiguring, not a statistical check's chance failure.
		if !pause(ctx, faultConfirm) {
			return ctx.Err()
		}
		if again := check(); again != nil && cause.MatchString(again.Error()) {
			text = again.Error()
			return nil
		}
		last = "failed naming the cause once, but not again: " + err.Error()
		return errors.New(last)
	})
	if err != nil {
		return last, false
	}
	return text, true
}

// pause waits d, or less if ctx ends first; it reports whether the full
// wait passed (false: the spec is over, stop).
func pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// deploy puts the sample apps in every cluster (a frontend and the
// backend in each, an outsider pod for plaintext calls) and judges them
// with shorter waits than the conformance specs do.
func (e *faultEnv) deploy(ctx SpecContext, shared *SharedApps) {
	e.apps = shared.take(ctx)
	e.m = e.apps.mesh.Istio
	e.vm = e.apps.mesh.Waiting(faultSettle, faultRootCertWait)
	for _, cl := range e.vm.Clusters {
		e.apps.outsider(ctx, cl)
	}
}

// finish records how many faults were seeded and caught, and releases the
// apps.
func (e *faultEnv) finish(ctx SpecContext, shared *SharedApps, defined int, outcomes []faultOutcome) {
	caught := 0
	for _, o := range outcomes {
		if o.Caught {
			caught++
		}
	}
	r := env.Get()
	r.H.Run.Figure("faults_defined", defined)
	r.H.Run.Figure("faults_seeded", len(outcomes))
	r.H.Run.Figure("faults_caught", caught)
	r.H.Run.Figure("faults", outcomes)
	AddReportEntry("seeded faults caught", fmt.Sprintf("%d caught of %d seeded (%d defined)", caught, len(outcomes), defined))
	shared.release(ctx, e.apps)
}

// prove seeds fault f into the healthy mesh and proves its check catches
// it, naming the cause (and the doctor's check, where it has one), then
// repairs it and sees the check pass again. The outcome is recorded even
// when the spec fails: Ginkgo's Fail unwinds through the deferred record.
func (e *faultEnv) prove(ctx SpecContext, f seededFault, record func(faultOutcome)) {
	outcome := faultOutcome{Fault: f.name, Ref: f.ref, CaughtBy: f.spec}
	defer func() { record(outcome) }()
	for _, file := range f.rules {
		e.apps.applyRules(ctx, file)
	}
	check := func() error { return f.check(ctx, e) }

	By("the check passes on the healthy mesh")
	Eventually(check).WithContext(ctx).WithTimeout(faultRecover).WithPolling(2 * time.Second).Should(Succeed())
	if f.doctor != "" {
		Expect(doctorSays(ctx, e, f.doctor, doctor.Pass)).To(Succeed(), "the doctor on the healthy mesh")
	}

	By("seeding the fault")
	repaired := false
	DeferCleanup(func(ctx SpecContext) {
		if !repaired {
			_ = f.repair(ctx, e)
		}
	}, NodeTimeout(2*rolloutWait+2*time.Minute))
	Expect(f.seed(ctx, e)).To(Succeed(), "seed %s", f.name)

	By("the check fails, naming the cause")
	text, caught := detect(ctx, check, f.cause(e))
	outcome.Caught, outcome.Error = caught, text
	if !caught {
		Fail(fmt.Sprintf("fault %q not caught by %s within %s: %s", f.name, f.spec, faultDetect, text))
	}
	AddReportEntry("caught by "+f.spec, text)
	if f.doctor != "" {
		By("the doctor names it: check " + f.doctor + " fails")
		Eventually(func() error { return doctorSays(ctx, e, f.doctor, doctor.Fail) }).WithContext(ctx).
			WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		outcome.Doctor = f.doctor
	}

	By("repairing: the check passes again")
	Expect(f.repair(ctx, e)).To(Succeed(), "repair %s", f.name)
	repaired = true
	Eventually(check).WithContext(ctx).WithTimeout(faultRecover).WithPolling(2*time.Second).Should(Succeed(), "the mesh healthy again after repairing %s", f.name)
}
