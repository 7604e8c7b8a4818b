// Package page writes a run's report as one self-contained HTML page —
// verdict, every spec with its figures, the phase time line, links to the
// dumps — to be opened offline and handed to certifiers: inline CSS and SVG,
// no script, nothing fetched.
package page

import (
	"bytes"
	"cmp"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/meshconform/meshconform/e2e/report"
)

// Verdict is the run's conclusion, filled by the caller. When Title is
// empty, Write derives "passed" or "failed" from the specs alone.
type Verdict struct {
	Title     string
	Certified bool
	Lines     []string
}

// Link is a relative link from the page to a file or folder beside it.
type Link struct {
	Label string
	Href  string
}

// Input is everything the page shows.
type Input struct {
	Verdict Verdict
	Suites  []types.Report // one per Ginkgo report (suite)
	Phases  []report.Phase
	Figures map[string]any
	CPU     *report.CPU // the CPU strip above the phases, when sampled
	Links   []Link      // relative to the page
}

// FileName is the page's name in the artifacts directory.
const FileName = "report.html"

//go:embed page.html.tmpl
var pageTemplate string

var tmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	// long says a value is folded in <details>: a doctor's table or a
	// teardown audit runs to lines.
	"long": func(s string) bool { return len(s) > 160 || strings.Contains(s, "\n") },
	"short": func(s string) string {
		s, _, _ = strings.Cut(s, "\n")
		if r := []rune(s); len(r) > 100 {
			s = string(r[:100])
		}
		return s + " …"
	},
}).Parse(pageTemplate))

// Write renders the page. Every text from the input is escaped by
// html/template; only the time line SVG, drawn by report.WriteGanttCPU
// (which escapes the phase names itself), is inlined as is.
func Write(w io.Writer, in Input) error {
	v, err := build(in)
	if err != nil {
		return err
	}
	if err := tmpl.Execute(w, v); err != nil {
		return fmt.Errorf("render report page: %w", err)
	}
	return nil
}

// WriteFile writes the page to <artifactsDir>/report.html and returns its
// path. Links whose target is not in artifactsDir are dropped: a certifier
// must not follow a link to nothing.
func WriteFile(artifactsDir string, in Input) (string, error) {
	kept := in.Links[:0:0]
	for _, l := range in.Links {
		rel, err := url.PathUnescape(l.Href)
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(artifactsDir, filepath.FromSlash(rel))); err == nil {
			kept = append(kept, l)
		}
	}
	in.Links = kept
	// Rendered whole before writing, so a failed render leaves no half page.
	var buf bytes.Buffer
	if err := Write(&buf, in); err != nil {
		return "", err
	}
	path := filepath.Join(artifactsDir, FileName)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("write report page: %w", err)
	}
	return path, nil
}

// view is the input digested for the template.
type view struct {
	Verdict         Verdict
	VerdictClass    string
	Start, Duration string
	Facts           []pair // versions and image source, shown under the verdict
	Counts          []pair // specs per state
	Suites          []suiteView
	Timeline        template.HTML
	Figures         []pair
	Links           []Link
	SpecCount       int
}

type pair struct{ Key, Value string }

type suiteView struct {
	Name, Path, Start, Duration string
	Succeeded                   bool
	Reasons                     []string // why Ginkgo failed the suite beyond its specs
	Specs                       []specView
}

type specView struct {
	Context, Text, State, Class string
	Duration                    string
	Labels                      []string
	Failure, Location, Output   string
	Skip                        string
	Entries                     []entryView
}

// entryView is a report entry as shown: its value as text, or, for the
// run's phases, a table.
type entryView struct {
	Key, Value string
	Phases     *phaseTable
}

// phaseTable is a list of phases as rows: each start as an offset from the
// first, durations rounded as dur rounds them.
type phaseTable struct {
	Start string // the first phase's start, clock time
	Total string // from the first start to the last end
	Rows  []phaseRow
}

type phaseRow struct {
	Name, Offset, Duration, Result string
	Failed                         bool
}

func build(in Input) (view, error) {
	v := view{Verdict: in.Verdict, Links: in.Links}
	counts := map[string]int{}
	var failed []string
	allOK := len(in.Suites) > 0
	for _, r := range in.Suites {
		s := suiteView{Name: r.SuiteDescription, Path: r.SuitePath, Succeeded: r.SuiteSucceeded,
			Start: clock(r.StartTime), Duration: dur(r.RunTime), Reasons: r.SpecialSuiteFailureReasons}
		allOK = allOK && r.SuiteSucceeded
		for _, sr := range r.SpecReports {
			sv := spec(sr)
			counts[sv.State]++
			if sr.Failed() {
				allOK = false
				failed = append(failed, sv.State+": "+sv.Context+sv.Text)
			}
			s.Specs = append(s.Specs, sv)
		}
		v.SpecCount += len(s.Specs)
		v.Suites = append(v.Suites, s)
	}
	if v.Verdict.Title == "" {
		v.Verdict = derived(allOK, len(in.Suites), v.SpecCount, failed)
	}
	v.VerdictClass = "fail"
	if v.Verdict.Certified {
		v.VerdictClass = "pass"
	}
	for _, st := range []string{"passed", "failed", "panicked", "timedout", "interrupted", "aborted", "skipped", "pending"} {
		if counts[st] > 0 {
			v.Counts = append(v.Counts, pair{st, strconv.Itoa(counts[st])})
		}
	}
	if start, end := span(in); !start.IsZero() {
		v.Start, v.Duration = clock(start), dur(end.Sub(start))
	}
	keys := make([]string, 0, len(in.Figures))
	for k := range in.Figures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := pair{k, figure(in.Figures[k])}
		v.Figures = append(v.Figures, p)
		if strings.HasSuffix(k, "_version") {
			v.Facts = append(v.Facts, p)
		}
	}
	if src, ok := in.Figures["image_source"]; ok {
		v.Facts = append(v.Facts, pair{"image_source", figure(src)})
	}
	svg, err := timeline(in)
	if err != nil {
		return view{}, err
	}
	v.Timeline = svg
	return v, nil
}

// derived is the verdict when the caller gave none: the specs' outcome only,
// and no run at all is no pass.
func derived(ok bool, suites, specs int, failed []string) Verdict {
	switch {
	case suites == 0:
		return Verdict{Title: "failed", Lines: []string{"no Ginkgo report: no spec ran"}}
	case ok:
		return Verdict{Title: "passed", Certified: true, Lines: []string{fmt.Sprintf("all %d specs passed", specs)}}
	case len(failed) == 0: // Ginkgo failed a suite for something else
		return Verdict{Title: "failed", Lines: []string{"a suite failed; see its reasons below"}}
	}
	return Verdict{Title: "failed", Lines: append([]string{fmt.Sprintf("%d of %d specs failed:", len(failed), specs)}, failed...)}
}

func spec(r types.SpecReport) specView {
	s := specView{Text: r.LeafNodeText, State: r.State.String(), Duration: dur(r.RunTime), Labels: r.Labels()}
	if len(r.ContainerHierarchyTexts) > 0 {
		// The containers, shown dimmer than the leaf: joined, they read as
		// the spec's full text.
		s.Context = strings.Join(r.ContainerHierarchyTexts, " › ") + " › "
	}
	if r.LeafNodeType.Is(types.NodeTypesForSuiteLevelNodes) {
		s.Text = strings.TrimSpace("[" + r.LeafNodeType.String() + "] " + r.LeafNodeText)
	}
	switch {
	case r.Failed():
		s.Class = "fail"
		s.Failure = r.Failure.Message
		if r.Failure.ForwardedPanic != "" {
			s.Failure += "\npanic: " + r.Failure.ForwardedPanic
		}
		if loc := r.Failure.Location; loc.FileName != "" {
			s.Location = fmt.Sprintf("%s:%d", loc.FileName, loc.LineNumber)
		}
		s.Output = r.CombinedOutput()
	case r.State == types.SpecStatePassed:
		s.Class = "pass"
	default: // skipped, pending: Skip's message is the reason
		s.Class = "skip"
		s.Skip = r.Failure.Message
	}
	for _, e := range r.ReportEntries {
		s.Entries = append(s.Entries, entry(e))
	}
	return s
}

// entry is a report entry as shown. A list of phases (env's "phases"
// entry) is a table; any other structure is compact JSON, never the Go
// value Ginkgo's Representation prints for it (%+v: "[{Name:preflight
// Start:…}]"); text and a Stringer's text are shown as they are.
func entry(e types.ReportEntry) entryView {
	v := entryView{Key: e.Name}
	// AsJSON is there when the entry was read from a report; an entry made
	// in this process has only its raw value.
	raw := []byte(e.Value.AsJSON)
	rep := e.Value.Representation
	if len(raw) == 0 {
		val := e.Value.GetRawValue()
		if s, ok := val.(fmt.Stringer); ok {
			v.Value = s.String()
			return v
		}
		if b, err := json.Marshal(val); err == nil {
			raw = b
		} else {
			v.Value = e.StringRepresentation()
			return v
		}
	}
	if phases, ok := asPhases(raw); ok {
		v.Phases = table(phases)
		v.Value = fmt.Sprintf("%d phases", len(phases))
		return v
	}
	var decoded any
	if err := json.Unmarshal(raw, &decoded); err != nil {
		v.Value = rep
		return v
	}
	switch x := decoded.(type) {
	case nil:
		v.Value = rep
	case string:
		// A string's Representation is itself, unless it came from a
		// Stringer.
		v.Value = cmp.Or(rep, x)
	case map[string]any, []any:
		if rep == "" || goValue(rep) {
			v.Value = figure(x)
		} else {
			v.Value = rep // a Stringer's text
		}
	default: // numbers, booleans: their Representation is no Go dump
		v.Value = cmp.Or(rep, figure(x))
	}
	return v
}

// goValue says a text is what fmt's %v or %+v prints for a struct, slice,
// map or pointer.
func goValue(s string) bool {
	for _, p := range []string{"{", "[", "map[", "&{", "&["} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// asPhases decodes a JSON list of phases, as report.Phase marshals them:
// every object with exactly Phase's fields, a name and a start.
func asPhases(raw []byte) ([]report.Phase, bool) {
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var phases []report.Phase
	if err := dec.Decode(&phases); err != nil || len(phases) == 0 {
		return nil, false
	}
	for _, p := range phases {
		if p.Name == "" || p.Start.IsZero() {
			return nil, false
		}
	}
	return phases, true
}

// table lays phases out in start order, each with its offset from the
// first start and its duration.
func table(phases []report.Phase) *phaseTable {
	phases = slices.Clone(phases)
	slices.SortStableFunc(phases, func(a, b report.Phase) int { return a.Start.Compare(b.Start) })
	first, end := phases[0].Start, phases[0].Start
	t := &phaseTable{Start: clock(first)}
	for _, p := range phases {
		d := seconds(p.Seconds)
		if e := p.Start.Add(d); e.After(end) {
			end = e
		}
		row := phaseRow{Name: p.Name, Offset: dur(p.Start.Sub(first)), Duration: dur(d), Result: "ok", Failed: !p.OK}
		if !p.OK {
			row.Result = "failed"
			if p.Error != "" {
				row.Result += ": " + p.Error
			}
		}
		if p.Note != "" {
			row.Result += " (" + p.Note + ")"
		}
		t.Rows = append(t.Rows, row)
	}
	t.Total = dur(end.Sub(first))
	return t
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// span is the run's time: from the first suite or phase start to the last end.
func span(in Input) (start, end time.Time) {
	add := func(s, e time.Time) {
		if s.IsZero() {
			return
		}
		if start.IsZero() || s.Before(start) {
			start = s
		}
		if e.After(end) {
			end = e
		}
	}
	for _, r := range in.Suites {
		add(r.StartTime, r.EndTime)
	}
	for _, p := range in.Phases {
		add(p.Start, p.Start.Add(seconds(p.Seconds)))
	}
	return start, end
}

var xmlProlog = regexp.MustCompile(`^\s*<\?xml[^>]*\?>\s*`)

// timeline is the phases' Gantt chart as inline SVG.
func timeline(in Input) (template.HTML, error) {
	var b strings.Builder
	if err := report.WriteGanttCPU(&b, in.Phases, in.CPU); err != nil {
		return "", fmt.Errorf("draw phase time line: %w", err)
	}
	// Safe: WriteGanttCPU escapes every phase name it draws.
	return template.HTML(xmlProlog.ReplaceAllString(b.String(), "")), nil
}

// figure formats a figure decoded from JSON: whole numbers without an
// exponent (byte counts), structures as compact JSON.
func figure(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(raw)
}

func clock(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// dur rounds a duration to what a reader compares: ms below a second,
// tenths below a minute, whole seconds above.
func dur(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}
