package bundle

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

func verdictOf(t *testing.T, rs []types.Report) Verdict {
	t.Helper()
	return computeVerdict(map[string][]byte{"e2e/ginkgo.json": reportJSON(t, rs), "environment.json": []byte(sampleEnvironment)})
}

func capability(t *testing.T, v Verdict, name string) Capability {
	t.Helper()
	for _, p := range v.Profiles {
		for _, c := range p.Capabilities {
			if c.Name == name {
				return c
			}
		}
	}
	t.Fatalf("no capability %s", name)
	return Capability{}
}

func wantReason(t *testing.T, v Verdict, reason string) {
	t.Helper()
	if v.Certified() {
		t.Fatalf("certified; want not, for %q", reason)
	}
	if !slices.Contains(v.Profiles[0].Reasons, reason) {
		t.Errorf("reasons\n%q\nlack\n%q", v.Profiles[0].Reasons, reason)
	}
}

// The sample e2e run has a passed spec for every core label and its
// AfterSuite (the teardown audit) for teardown: it qualifies.
func TestVerdictSampleRunCertified(t *testing.T) {
	v := verdictOf(t, sampleReports(t))
	if !v.Certified() || len(v.Profiles[0].Reasons) != 0 {
		t.Fatalf("not certified:\n%s", v)
	}
	for name, passed := range map[string]int{
		"install": 6, "cross-cluster": 1, "proxy-status": 1, "traffic-rules": 1,
		"mtls": 1, "locality-failover": 1, "teardown": 1, "reach-all-clusters": 1,
	} {
		if c := capability(t, v, name); c.Passed != passed || c.Status != StatusPassed {
			t.Errorf("%s: %d passed, status %s; want %d passed", name, c.Passed, c.Status, passed)
		}
	}
	if got := capability(t, v, "teardown").Specs; len(got) != 1 || got[0].Name != "[AfterSuite]" {
		t.Errorf("teardown specs %v, want the AfterSuite", got)
	}
	for _, name := range []string{"upgrade", "canary-upgrade", "in-place-upgrade", "seeded-faults"} {
		if c := capability(t, v, name); c.Status != StatusNotRun {
			t.Errorf("%s: status %s, want not run", name, c.Status)
		}
	}
	// 21 specs and the AfterSuite: totals count suite nodes too.
	want := Totals{Specs: 22, Passed: 22, RunTimeSeconds: 233.107}
	if v.Totals != want {
		t.Errorf("totals %+v, want %+v", v.Totals, want)
	}
	if len(v.Suites) != 1 || v.Suites[0].Name != "e2e" || v.Suites[0].Description != "meshconform e2e" {
		t.Errorf("suites %+v", v.Suites)
	}
}

// Broken input: one core spec (mtls) skipped.
func TestVerdictCoreSpecSkipped(t *testing.T) {
	rs := sampleReports(t)
	s := specWith(t, rs, "mtls")
	s.State, s.Failure = types.SpecStateSkipped, types.Failure{Message: "STRICT mTLS needs two regions\nmore detail"}
	v := verdictOf(t, rs)
	wantReason(t, v, "mtls: 1 skipped: "+s.FullText()+" (STRICT mTLS needs two regions …)")
	if c := capability(t, v, "mtls"); c.Skipped != 1 || c.Status != StatusSkipped {
		t.Errorf("mtls %+v", c)
	}
}

// Broken input: one core spec pending, one timed out.
func TestVerdictCoreSpecPendingOrFailed(t *testing.T) {
	rs := sampleReports(t)
	specWith(t, rs, "proxy-status").State = types.SpecStatePending
	s := specWith(t, rs, "traffic-rules")
	s.State, s.Failure = types.SpecStateTimedout, types.Failure{Message: "A node timeout occurred"}
	v := verdictOf(t, rs)
	wantReason(t, v, "proxy-status: 1 pending: "+specWith(t, rs, "proxy-status").FullText())
	wantReason(t, v, "traffic-rules: 1 failed: "+s.FullText()+" (timedout: A node timeout occurred)")
}

// Broken input: no spec at all for a core capability (the failover spec
// filtered out of the run entirely).
func TestVerdictCapabilityWithoutSpecs(t *testing.T) {
	rs := sampleReports(t)
	rs[0].SpecReports = slices.DeleteFunc(rs[0].SpecReports, func(s types.SpecReport) bool {
		return slices.Contains(s.Labels(), "locality-failover")
	})
	v := verdictOf(t, rs)
	wantReason(t, v, "locality-failover: no spec ran")
	if c := capability(t, v, "locality-failover"); c.Status != StatusNotRun {
		t.Errorf("status %s", c.Status)
	}
}

// Broken input: a failed spec outside the core profile (platform).
func TestVerdictFailedNonCoreSpec(t *testing.T) {
	rs := sampleReports(t)
	s := specWith(t, rs, "platform")
	s.State, s.Failure = types.SpecStateFailed, types.Failure{Message: "node cluster2-worker NotReady"}
	v := verdictOf(t, rs)
	wantReason(t, v, "1 failed outside the core profile: "+s.FullText()+" (failed: node cluster2-worker NotReady)")
	for _, c := range v.Profiles[0].Capabilities {
		if c.Status != StatusPassed {
			t.Errorf("%s: %s; every core capability passed", c.Name, c.Status)
		}
	}
}

// Broken input: the teardown audit (AfterSuite) failed.
func TestVerdictAfterSuiteFailed(t *testing.T) {
	rs := sampleReports(t)
	s := specWith(t, rs, "teardown")
	s.State, s.Failure = types.SpecStateFailed, types.Failure{Message: "namespace istio-system remains"}
	wantReason(t, verdictOf(t, rs), "teardown: 1 failed: [AfterSuite] (failed: namespace istio-system remains)")
}

// Broken input: no report at all; and an empty report. Zero results
// certify nothing.
func TestVerdictNoResults(t *testing.T) {
	v := computeVerdict(nil)
	wantReason(t, v, "no Ginkgo JSON report (<suite>/ginkgo.json) in the bundle")
	wantReason(t, v, "install: no spec ran")
	wantReason(t, computeVerdict(map[string][]byte{"e2e/ginkgo.json": []byte("[]")}), "mtls: no spec ran")
}

// Broken input: a suite interrupted after its specs passed, which Ginkgo
// records as a suite failure with no failed spec.
func TestVerdictSuiteDidNotSucceed(t *testing.T) {
	rs := sampleReports(t)
	rs[0].SuiteSucceeded, rs[0].SpecialSuiteFailureReasons = false, []string{"Interrupted by User"}
	wantReason(t, verdictOf(t, rs), "suite e2e did not succeed: Interrupted by User")
}

// Broken input: `ginkgo --dry-run` reports every spec passed and runs
// none; its report must never certify.
func TestVerdictDryRun(t *testing.T) {
	rs := sampleReports(t)
	if !verdictOf(t, rs).Certified() {
		t.Fatal("the sample run is not certified to begin with")
	}
	rs[0].SuiteConfig.DryRun = true
	v := verdictOf(t, rs)
	wantReason(t, v, "suite e2e was a dry run: nothing ran")
	if v.Certified() {
		t.Fatal("a dry run certified")
	}
}

// Extended capabilities are reported, never required: a skipped canary
// upgrade leaves core certified; a failed seeded fault does not (no spec
// at all may fail).
func TestVerdictExtended(t *testing.T) {
	upgrade := types.Report{SuiteDescription: "meshconform upgrade", SuiteSucceeded: true, SpecReports: types.SpecReports{
		{LeafNodeType: types.NodeTypeIt, ContainerHierarchyTexts: []string{"Canary upgrade"}, LeafNodeText: "keeps traffic",
			ContainerHierarchyLabels: [][]string{{"upgrade", "canary-upgrade"}}, State: types.SpecStateSkipped},
		{LeafNodeType: types.NodeTypeIt, ContainerHierarchyTexts: []string{"In-place upgrade"}, LeafNodeText: "keeps traffic",
			ContainerHierarchyLabels: [][]string{{"upgrade", "in-place-upgrade"}}, State: types.SpecStatePassed},
		{LeafNodeType: types.NodeTypeAfterSuite, State: types.SpecStatePassed},
	}}
	reports := map[string][]byte{
		"e2e/ginkgo.json":             reportJSON(t, sampleReports(t)),
		"upgrade/upgrade/ginkgo.json": reportJSON(t, []types.Report{upgrade}),
		"environment.json":            []byte(sampleEnvironment),
	}
	v := computeVerdict(reports)
	if !v.Certified() {
		t.Fatalf("not certified:\n%s", v)
	}
	if v.Profiles[1].Certified != nil {
		t.Error("the extended profile carries a certification")
	}
	for name, status := range map[string]string{
		"upgrade": StatusSkipped, "canary-upgrade": StatusSkipped, "in-place-upgrade": StatusPassed,
		"seeded-faults": StatusNotRun, "teardown": StatusPassed,
	} {
		if c := capability(t, v, name); c.Status != status {
			t.Errorf("%s: %s, want %s", name, c.Status, status)
		}
	}
	if c := capability(t, v, "teardown"); c.Passed != 2 {
		t.Errorf("teardown: %d passed, want both suites' AfterSuite", c.Passed)
	}
	if got := []string{v.Suites[0].Name, v.Suites[1].Name}; !slices.Equal(got, []string{"e2e", "upgrade/upgrade"}) {
		t.Errorf("suites %q", got)
	}

	faults := types.Report{SuiteSucceeded: false, SpecReports: types.SpecReports{
		{LeafNodeType: types.NodeTypeIt, LeafNodeText: "catches a missing remote secret",
			ContainerHierarchyLabels: [][]string{{"seeded-faults"}}, State: types.SpecStateFailed},
	}}
	reports["faults/faults/ginkgo.json"] = reportJSON(t, []types.Report{faults})
	v = computeVerdict(reports)
	wantReason(t, v, "1 failed outside the core profile: catches a missing remote secret (failed)")
	if c := capability(t, v, "seeded-faults"); c.Status != StatusFailed || c.Failed != 1 {
		t.Errorf("seeded-faults %+v", c)
	}
}

// The verdict JSON is stable: decoded and encoded again it is the same
// struct and the same bytes, which is what Verify's comparison rests on.
func TestVerdictJSONStable(t *testing.T) {
	rs := sampleReports(t)
	specWith(t, rs, "mtls").State = types.SpecStateSkipped
	v := verdictOf(t, rs)
	a, err := v.encode()
	if err != nil {
		t.Fatal(err)
	}
	var back Verdict
	if err := json.Unmarshal(a, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, v) {
		t.Errorf("decoded verdict differs:\n%+v\n%+v", back, v)
	}
	b, _ := back.encode()
	c, _ := verdictOf(t, rs).encode()
	if string(a) != string(b) || string(a) != string(c) {
		t.Error("the same verdict encodes to different bytes")
	}
}

func TestVerdictString(t *testing.T) {
	s := verdictOf(t, sampleReports(t)).String()
	for _, want := range []string{"PROFILE", "core      install", "core: CERTIFIED", "extended: reported, not required", "suites: e2e; 22 specs"} {
		if !strings.Contains(s, want) {
			t.Errorf("String lacks %q:\n%s", want, s)
		}
	}
	rs := sampleReports(t)
	rs[0].SpecReports = slices.DeleteFunc(rs[0].SpecReports, func(s types.SpecReport) bool {
		return slices.Contains(s.Labels(), "mtls")
	})
	s = verdictOf(t, rs).String()
	for _, want := range []string{"core: NOT CERTIFIED", "  - mtls: no spec ran"} {
		if !strings.Contains(s, want) {
			t.Errorf("String lacks %q:\n%s", want, s)
		}
	}
}
