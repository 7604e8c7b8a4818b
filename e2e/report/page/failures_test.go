package page

import (
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

func TestFailuresSayWhy(t *testing.T) {
	long := strings.Repeat("line\n", FailureLines+5)
	in := Input{Suites: []types.Report{{
		SuiteDescription: "meshconform upgrade",
		SpecReports: []types.SpecReport{
			{LeafNodeText: "passes", State: types.SpecStatePassed},
			{LeafNodeText: "rolls forward", ContainerHierarchyTexts: []string{"Canary"}, State: types.SpecStateFailed,
				Failure: types.Failure{Message: "phase \"roll forward\": 3 of 900 requests failed", Location: types.CodeLocation{FileName: "upgrade.go", LineNumber: 86}}},
			{LeafNodeText: "long", State: types.SpecStateFailed, Failure: types.Failure{Message: long}},
			{LeafNodeText: "skipped", State: types.SpecStateSkipped, Failure: types.Failure{Message: "not in this mode"}},
		},
	}, {SuiteDescription: "meshconform e2e", SuiteSucceeded: false, SpecialSuiteFailureReasons: []string{"Interrupted by User"}}}}
	got := Failures([]Input{in})
	if len(got) != 3 {
		t.Fatalf("got %d failures, want 2 failed specs and 1 suite reason:\n%s", len(got), strings.Join(got, "\n"))
	}
	if !strings.Contains(got[0], "Canary › rolls forward") || !strings.Contains(got[0], "at upgrade.go:86") || !strings.Contains(got[0], "3 of 900 requests failed") {
		t.Errorf("first failure lacks its text, place or message:\n%s", got[0])
	}
	if n := strings.Count(got[1], "\n"); n != FailureLines+1 || !strings.Contains(got[1], "5 more lines") {
		t.Errorf("a long message is not clipped to %d lines with the cut said (%d lines):\n%s", FailureLines, n, got[1])
	}
	if !strings.Contains(got[2], "Interrupted by User") {
		t.Errorf("the suite's own reason is missing: %s", got[2])
	}
	if Failures([]Input{{Suites: []types.Report{{SuiteSucceeded: true, SpecReports: []types.SpecReport{{State: types.SpecStatePassed}}}}}}) != nil {
		t.Error("a passing run has failures")
	}
}
