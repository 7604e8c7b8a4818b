package bundle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/onsi/ginkgo/v2/types"
)

// CoreCapabilities are the Ginkgo labels a run must prove, every one, to be
// certified. They are the label constants of suites/internal/labels, spelled
// out here because that package is internal to suites/; its profile_test.go
// checks that every name below is one of its constants.
var CoreCapabilities = []string{
	"install",
	"cross-cluster",
	"proxy-status",
	"traffic-rules",
	"mtls",
	"locality-failover",
	"teardown",
}

// ExtendedCapabilities are reported capability by capability but never
// required: a platform may certify without running them.
var ExtendedCapabilities = []string{
	"reach-all-clusters",
	"restricted-pod-security",
	"upgrade",
	"canary-upgrade",
	"in-place-upgrade",
	"seeded-faults",
	"ha-control-plane",
	"primary-loss",
}

// Profile names.
const (
	ProfileCore     = "core"
	ProfileExtended = "extended"
)

// Capability statuses, worst first: a capability is failed if any of its
// specs failed, skipped if any was skipped or pending, passed if some ran
// and all of them passed, and not run if no spec carries its label.
const (
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
	StatusPassed  = "passed"
	StatusNotRun  = "not run"
)

// teardownLabel is the capability every suite's AfterSuite proves: it is
// the teardown audit, which carries no label of its own.
const teardownLabel = "teardown"

// Verdict is what the Ginkgo reports of a run prove, profile by profile.
// It is a pure function of the bundled */ginkgo.json files, which is what
// lets Verify recompute it and refuse a verdict.json edited on its own.
// Every list is sorted (or in the fixed order of the capability lists) so
// that the same reports always encode to the same bytes.
type Verdict struct {
	// Scope is what the verdict covers (the platform, the data plane).
	Scope    Scope     `json:"scope"`
	Profiles []Profile `json:"profiles"`
	Suites   []Suite   `json:"suites,omitempty"`
	Totals   Totals    `json:"totals"`
}

// Profile is one set of capabilities and what the run showed of each.
type Profile struct {
	Name string `json:"name"`
	// Certified is set for the core profile only; the extended profile is
	// reported, never certified, and leaves it out.
	Certified    *bool        `json:"certified,omitempty"`
	Capabilities []Capability `json:"capabilities"`
	// Reasons say why the core profile is not certified, one per problem.
	Reasons []string `json:"reasons,omitempty"`
}

// Capability is one Ginkgo label and the specs that carry it.
type Capability struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Passed  int    `json:"passed"`
	Failed  int    `json:"failed"`  // failed, panicked, interrupted, aborted or timed out
	Skipped int    `json:"skipped"` // skipped or pending
	Specs   []Spec `json:"specs,omitempty"`
}

// Spec is one entry of a Ginkgo report, as the verdict names it.
type Spec struct {
	Suite string `json:"suite"` // directory of its ginkgo.json in the bundle
	Name  string `json:"name"`  // full text, or "[AfterSuite]" for suite nodes
	State string `json:"state"` // Ginkgo's state name: passed, skipped, failed…
	// Message is the first line of the failure or skip message.
	Message string `json:"message,omitempty"`
}

// Suite is one Ginkgo report found in the bundle.
type Suite struct {
	Name           string  `json:"name"`   // directory of its ginkgo.json, e.g. "e2e"
	Report         string  `json:"report"` // path of the ginkgo.json in the bundle
	Description    string  `json:"description"`
	Succeeded      bool    `json:"succeeded"`
	Specs          int     `json:"specs"`
	RunTimeSeconds float64 `json:"runTimeSeconds"` // Ginkgo's own run time
}

// Totals count every entry of every report: specs and suite-level nodes
// such as the AfterSuite alike.
type Totals struct {
	Specs          int     `json:"specs"`
	Passed         int     `json:"passed"`
	Failed         int     `json:"failed"`
	Skipped        int     `json:"skipped"`
	Pending        int     `json:"pending"`
	RunTimeSeconds float64 `json:"runTimeSeconds"` // sum of the suites' run times
}

// Certified tells whether the core profile is certified.
func (v Verdict) Certified() bool {
	for _, p := range v.Profiles {
		if p.Name == ProfileCore {
			return p.Certified != nil && *p.Certified
		}
	}
	return false
}

// isReport tells whether a bundled file is a Ginkgo JSON report. The
// harness writes <suite>/ginkgo.json; nested runs (make faults, make
// upgrade) put theirs one level deeper, so any depth counts.
func isReport(rel string) bool { return path.Base(rel) == "ginkgo.json" }

// isVerdictInput tells whether the verdict reads a bundled file: a Ginkgo
// report, or a file of its scope.
func isVerdictInput(rel string) bool { return isReport(rel) || isScopeInput(rel) }

// computeVerdict computes the verdict from the Ginkgo JSON reports and
// the scope files of a bundle (isVerdictInput), keyed by their path in it.
// It never fails: a report that does not parse, or a scope that cannot be
// read, is a reason not to certify, so a bundle of a broken run can still
// be written and verified.
func computeVerdict(reports map[string][]byte) Verdict {
	t := &tally{caps: map[string]*Capability{}}
	for _, name := range slices.Concat(CoreCapabilities, ExtendedCapabilities) {
		t.caps[name] = &Capability{Name: name}
	}
	t.v.Scope = computeScope(reports)
	t.problems = append(t.problems, t.v.Scope.Problems...)
	files := make([]string, 0, len(reports))
	for f := range reports {
		if isReport(f) {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	for _, file := range files {
		var rs []types.Report
		if err := json.Unmarshal(reports[file], &rs); err != nil {
			t.problems = append(t.problems, fmt.Sprintf("%s: not a Ginkgo JSON report: %v", file, err))
			continue
		}
		for _, r := range rs {
			t.add(path.Dir(file), file, r)
		}
	}
	sort.SliceStable(t.v.Suites, func(i, j int) bool { return t.v.Suites[i].Name < t.v.Suites[j].Name })
	t.v.Profiles = []Profile{t.core(), t.extended()}
	return t.v
}

// tally is a verdict being computed: the specs of every report by the
// capabilities they prove, and what belongs to none.
type tally struct {
	v        Verdict
	caps     map[string]*Capability
	problems []string // reasons that belong to no capability
	outside  []Spec   // failed specs outside the core profile
}

// add counts one suite's report.
func (t *tally) add(suite, file string, r types.Report) {
	// A dry run reports every spec passed and ran none.
	if r.SuiteConfig.DryRun {
		t.problems = append(t.problems, fmt.Sprintf("suite %s was a dry run: nothing ran", suite))
	}
	anyFailed := false
	for _, sr := range r.SpecReports {
		s := Spec{Suite: suite, Name: specName(sr), State: sr.State.String()}
		if !sr.State.Is(types.SpecStatePassed) {
			s.Message = firstLine(sr.Failure.Message)
		}
		count(&t.v.Totals, sr.State)
		inCore := false
		for _, label := range capabilitiesOf(sr) {
			c, ok := t.caps[label]
			if !ok {
				continue
			}
			c.Specs = append(c.Specs, s)
			inCore = inCore || slices.Contains(CoreCapabilities, label)
		}
		if sr.Failed() {
			anyFailed = true
			if !inCore {
				t.outside = append(t.outside, s)
			}
		}
	}
	// A suite can fail with no failed spec: interrupted, focused
	// programmatically, --fail-on-pending. That is no certification.
	if !r.SuiteSucceeded && !anyFailed {
		why := strings.Join(r.SpecialSuiteFailureReasons, ", ")
		if why == "" {
			why = "no reason given"
		}
		t.problems = append(t.problems, fmt.Sprintf("suite %s did not succeed: %s", suite, why))
	}
	secs := seconds(r.RunTime.Seconds())
	t.v.Suites = append(t.v.Suites, Suite{
		Name: suite, Report: file, Description: r.SuiteDescription,
		Succeeded: r.SuiteSucceeded, Specs: len(r.SpecReports), RunTimeSeconds: secs,
	})
	t.v.Totals.RunTimeSeconds = seconds(t.v.Totals.RunTimeSeconds + secs)
}

// core is the core profile: certified only with every core capability
// proven, no failure outside it, and no problem with the reports.
func (t *tally) core() Profile {
	core := Profile{Name: ProfileCore}
	if len(t.v.Suites) == 0 {
		// Never certify on zero results.
		core.Reasons = append(core.Reasons, "no Ginkgo JSON report (<suite>/ginkgo.json) in the bundle")
	}
	for _, name := range CoreCapabilities {
		c := finish(t.caps[name])
		core.Capabilities = append(core.Capabilities, c)
		core.Reasons = append(core.Reasons, coreReasons(c)...)
	}
	if len(t.outside) > 0 {
		core.Reasons = append(core.Reasons, fmt.Sprintf("%d failed outside the core profile: %s", len(t.outside), list(t.outside, true)))
	}
	core.Reasons = append(core.Reasons, t.problems...)
	certified := len(core.Reasons) == 0
	core.Certified = &certified
	return core
}

// extended is the extended profile: each capability reported, none
// certifying.
func (t *tally) extended() Profile {
	ext := Profile{Name: ProfileExtended}
	for _, name := range ExtendedCapabilities {
		ext.Capabilities = append(ext.Capabilities, finish(t.caps[name]))
	}
	return ext
}

// capabilitiesOf lists the labels a spec proves: its containers' and its
// own, plus teardown for an AfterSuite (the teardown audit).
func capabilitiesOf(sr types.SpecReport) []string {
	labels := sr.Labels() // container and leaf labels, deduplicated
	if sr.LeafNodeType.Is(types.NodeTypeAfterSuite) && !slices.Contains(labels, teardownLabel) {
		labels = append(labels, teardownLabel)
	}
	return labels
}

// specName is the spec's full text; suite-level nodes have none, so they
// are named by their type as in Ginkgo's JUnit report ("[AfterSuite]").
func specName(sr types.SpecReport) string {
	text := sr.FullText()
	if sr.LeafNodeType.Is(types.NodeTypeIt) {
		return text
	}
	return strings.TrimSpace("[" + sr.LeafNodeType.String() + "] " + text)
}

func count(t *Totals, s types.SpecState) {
	t.Specs++
	switch {
	case s.Is(types.SpecStatePassed):
		t.Passed++
	case s.Is(types.SpecStateFailureStates):
		t.Failed++
	case s.Is(types.SpecStateSkipped):
		t.Skipped++
	case s.Is(types.SpecStatePending):
		t.Pending++
	}
}

// finish sorts a capability's specs and derives its counts and status.
func finish(c *Capability) Capability {
	sort.SliceStable(c.Specs, func(i, j int) bool {
		a, b := c.Specs[i], c.Specs[j]
		if a.Suite != b.Suite {
			return a.Suite < b.Suite
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.State < b.State
	})
	for _, s := range c.Specs {
		switch st := state(s); {
		case st.Is(types.SpecStatePassed):
			c.Passed++
		case st.Is(types.SpecStateFailureStates):
			c.Failed++
		case st.Is(types.SpecStateSkipped | types.SpecStatePending):
			c.Skipped++
		}
	}
	switch {
	case len(c.Specs) == 0:
		c.Status = StatusNotRun
	case c.Failed > 0:
		c.Status = StatusFailed
	case c.Passed == len(c.Specs):
		c.Status = StatusPassed
	default: // skipped, pending, or a state Ginkgo does not name
		c.Status = StatusSkipped
	}
	return *c
}

// coreReasons says what keeps one core capability from certification.
func coreReasons(c Capability) []string {
	if len(c.Specs) == 0 {
		return []string{c.Name + ": no spec ran"}
	}
	var out []string
	if c.Passed == 0 {
		out = append(out, c.Name+": no spec passed")
	}
	groups := []struct {
		what   string
		states types.SpecState
		state  bool // name the state: failures come in several kinds
	}{
		{"failed", types.SpecStateFailureStates, true},
		{"skipped", types.SpecStateSkipped, false},
		{"pending", types.SpecStatePending, false},
	}
	known := types.SpecStatePassed
	for _, g := range groups {
		known |= g.states
		var specs []Spec
		for _, s := range c.Specs {
			if state(s).Is(g.states) {
				specs = append(specs, s)
			}
		}
		if len(specs) > 0 {
			out = append(out, fmt.Sprintf("%s: %d %s: %s", c.Name, len(specs), g.what, list(specs, g.state)))
		}
	}
	var odd []Spec
	for _, s := range c.Specs {
		if !state(s).Is(known) {
			odd = append(odd, s)
		}
	}
	if len(odd) > 0 {
		out = append(out, fmt.Sprintf("%s: %d in an unknown state: %s", c.Name, len(odd), list(odd, true)))
	}
	return out
}

// state parses a Spec's state name back; Spec keeps the name so that the
// verdict JSON reads well.
func state(s Spec) types.SpecState {
	var st types.SpecState
	name, _ := json.Marshal(s.State)
	_ = st.UnmarshalJSON(name) // an unknown name stays SpecStateInvalid
	return st
}

// list formats specs for a reason: "text (message); text (message)".
func list(specs []Spec, withState bool) string {
	parts := make([]string, len(specs))
	for i, s := range specs {
		detail := s.Message
		if withState {
			detail = strings.TrimSuffix(s.State+": "+s.Message, ": ")
		}
		parts[i] = s.Name
		if detail != "" {
			parts[i] += " (" + detail + ")"
		}
	}
	return strings.Join(parts, "; ")
}

// firstLine keeps a reason readable: Gomega messages run to many lines.
func firstLine(msg string) string {
	msg = strings.TrimSpace(msg)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = strings.TrimSpace(msg[:i]) + " …"
	}
	const limit = 200
	if utf8.RuneCountInString(msg) > limit {
		msg = string([]rune(msg)[:limit]) + "…"
	}
	return msg
}

// seconds rounds to milliseconds so the JSON stays short and stable.
func seconds(s float64) float64 { return math.Round(s*1000) / 1000 }

// encode is the verdict.json form: indented, a final newline, no HTML
// escaping (spec texts hold < and >), byte-stable for the same verdict.
func (v Verdict) encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode verdict: %w", err)
	}
	return buf.Bytes(), nil
}

// String is a short table for people: one row per capability, then each
// profile's outcome and, for core, why it is not certified.
func (v Verdict) String() string {
	var b strings.Builder
	b.WriteString(v.Scope.String())
	names := make([]string, len(v.Suites))
	for i, s := range v.Suites {
		names[i] = s.Name
	}
	t := v.Totals
	fmt.Fprintf(&b, "suites: %s; %d specs: %d passed, %d failed, %d skipped, %d pending; Ginkgo run time %.0fs\n",
		strings.Join(names, ", "), t.Specs, t.Passed, t.Failed, t.Skipped, t.Pending, t.RunTimeSeconds)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tCAPABILITY\tPASSED\tFAILED\tSKIPPED\tSTATUS")
	for _, p := range v.Profiles {
		for _, c := range p.Capabilities {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", p.Name, c.Name, c.Passed, c.Failed, c.Skipped, c.Status)
		}
	}
	tw.Flush()
	for _, p := range v.Profiles {
		switch {
		case p.Certified == nil:
			fmt.Fprintf(&b, "%s: reported, not required\n", p.Name)
		case *p.Certified:
			fmt.Fprintf(&b, "%s: CERTIFIED\n", p.Name)
		default:
			fmt.Fprintf(&b, "%s: NOT CERTIFIED\n", p.Name)
		}
		for _, r := range p.Reasons {
			fmt.Fprintf(&b, "  - %s\n", r)
		}
	}
	return b.String()
}

// Judge computes the verdict of an artifacts directory as a bundle of it
// would hold it (the same reports, the same exclusions), without writing
// one: the report page shows it.
func Judge(artifactsDir string) (Verdict, error) {
	root, err := filepath.EvalSymlinks(artifactsDir)
	if err != nil {
		return Verdict{}, err
	}
	entries, err := collect(root, true)
	if err != nil {
		return Verdict{}, err
	}
	reports := map[string][]byte{}
	for _, e := range entries {
		if !e.dir && isVerdictInput(e.rel) {
			raw, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(e.rel)))
			if err != nil {
				return Verdict{}, err
			}
			reports[e.rel] = raw
		}
	}
	return computeVerdict(reports), nil
}
