package page

import (
	"fmt"
	"strings"
)

// FailureLines bounds one failure's message in a digest: enough for a
// Gomega mismatch or a budget's reasons, short enough that every failure
// of a run fits the tail a CI log keeps.
const FailureLines = 30

// Failures is the digest of a run's failed specs, as text a terminal or a
// CI log shows last: for each, its suite, its full text, where it failed
// and its message (at most FailureLines lines), so a log that keeps only
// its tail still says why the run failed, not only which spec did. A suite
// failed for something else than a spec (Ginkgo's reasons) is listed too.
func Failures(suites []Input) []string {
	var out []string
	for _, in := range suites {
		for _, r := range in.Suites {
			for _, sr := range r.SpecReports {
				if !sr.Failed() {
					continue
				}
				s := spec(sr)
				b := &strings.Builder{}
				fmt.Fprintf(b, "[%s] %s: %s%s", s.State, r.SuiteDescription, s.Context, s.Text)
				if s.Location != "" {
					fmt.Fprintf(b, "\n  at %s", s.Location)
				}
				for _, line := range clip(s.Failure, FailureLines) {
					fmt.Fprintf(b, "\n  %s", line)
				}
				out = append(out, b.String())
			}
			if !r.SuiteSucceeded {
				for _, reason := range r.SpecialSuiteFailureReasons {
					out = append(out, fmt.Sprintf("[suite] %s: %s", r.SuiteDescription, reason))
				}
			}
		}
	}
	return out
}

// clip is text's lines, at most n of them, the cut said.
func clip(text string, n int) []string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) <= n {
		return lines
	}
	return append(lines[:n:n], fmt.Sprintf("… %d more lines (the report page has them all)", len(lines)-n))
}
