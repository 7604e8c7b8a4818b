package page

import (
	"bytes"
	"html"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/meshconform/meshconform/e2e/report"
)

// testdata/artifacts is a real run's artifacts (the main e2e suite, 22
// spec reports, 48 phases), trimmed: spec events and captured output
// dropped, junit.xml a stub — the page links to it, never reads it.
const sample = "testdata/artifacts"

func loadSample(t *testing.T) Input {
	t.Helper()
	in, err := Load(sample)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func render(t *testing.T, in Input) string {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, in); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// copySample copies the sample artifacts to a temporary directory, where
// a test may add dumps and write the page.
func copySample(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(sample)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadSample(t *testing.T) {
	in := loadSample(t)
	if len(in.Suites) != 1 || len(in.Suites[0].SpecReports) != 22 {
		t.Fatalf("want 1 suite of 22 spec reports, got %d suites", len(in.Suites))
	}
	if len(in.Phases) != 48 || in.CPU == nil || len(in.CPU.Samples) == 0 {
		t.Errorf("want 48 phases and a CPU record, got %d phases, CPU %v", len(in.Phases), in.CPU != nil)
	}
	if in.Figures["kubernetes_version"] != "v1.33.13" {
		t.Errorf("kubernetes_version = %v", in.Figures["kubernetes_version"])
	}
	if in.Verdict.Title != "" {
		t.Errorf("Load set a verdict: %+v", in.Verdict)
	}
}

var verdictRE = regexp.MustCompile(`(?s)<header id="verdict" class="verdict (pass|fail)">\s*<h1>(.*?)</h1>(.*?)</header>`)

// specRE matches the page's spec rows: state and inner HTML, in order. A
// row ends with its duration cell: a phases entry nests rows of its own.
var specRE = regexp.MustCompile(`(?s)<tr class="spec (pass|fail|skip)" data-state="([a-z]+)">(.*?)<td class="dur">[^<]*</td>\s*</tr>`)

func TestVerdictDerivedFromSpecs(t *testing.T) {
	out := render(t, loadSample(t))
	m := verdictRE.FindStringSubmatch(out)
	if m == nil || m[1] != "pass" || m[2] != "passed" || !strings.Contains(m[3], "all 22 specs passed") {
		t.Fatalf("verdict: %q", m)
	}
	for _, want := range []string{"2026-11-22 17:13:08 UTC", "3m53s", "kubernetes_version", "v1.33.13", "image_source"} {
		if !strings.Contains(out, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestCallerVerdict(t *testing.T) {
	in := loadSample(t)
	in.Verdict = Verdict{Title: "certified: primary-remote", Certified: true, Lines: []string{"Istio 1.29 <on> kind"}}
	m := verdictRE.FindStringSubmatch(render(t, in))
	if m == nil || m[1] != "pass" || m[2] != "certified: primary-remote" || !strings.Contains(m[3], "Istio 1.29 &lt;on&gt; kind") {
		t.Fatalf("verdict: %q", m)
	}
	// A caller's verdict stands even over passed specs.
	in.Verdict = Verdict{Title: "not certified", Lines: []string{"upgrade budget exceeded"}}
	if m := verdictRE.FindStringSubmatch(render(t, in)); m == nil || m[1] != "fail" || m[2] != "not certified" {
		t.Fatalf("verdict: %q", m)
	}
}

func TestEverySpecWithItsState(t *testing.T) {
	in := loadSample(t)
	rows := specRE.FindAllStringSubmatch(render(t, in), -1)
	specs := in.Suites[0].SpecReports
	if len(rows) != len(specs) {
		t.Fatalf("%d spec rows, want %d", len(rows), len(specs))
	}
	for i, s := range specs {
		row := rows[i][3]
		if rows[i][2] != s.State.String() {
			t.Errorf("row %d: state %s, want %s", i, rows[i][2], s.State)
		}
		for _, text := range append(append([]string{s.LeafNodeText}, s.ContainerHierarchyTexts...), s.Labels()...) {
			if !strings.Contains(row, html.EscapeString(text)) {
				t.Errorf("row %d lacks %q", i, text)
			}
		}
		for _, e := range s.ReportEntries {
			if !strings.Contains(row, "<dt>"+html.EscapeString(e.Name)+"</dt>") {
				t.Errorf("row %d lacks report entry %q", i, e.Name)
			}
		}
	}
	// The entries carry the specs' measurements.
	if !strings.Contains(rows[15][3], "8.4s from applying the last workload; 12 proxies") {
		t.Errorf("reach-all-clusters row lacks its time to SYNCED: %s", rows[15][3])
	}
	if !strings.Contains(rows[21][3], "[AfterSuite]") {
		t.Errorf("the suite node is not named: %s", rows[21][3])
	}
}

// hostile is a run whose every text tries to inject markup.
func hostile(t *testing.T) Input {
	in := loadSample(t)
	specs := in.Suites[0].SpecReports
	specs[0].State = types.SpecStateFailed
	specs[0].Failure = types.Failure{Message: `Expected <script>alert("x")</script> & more`,
		Location: types.CodeLocation{FileName: "/work/main/suites/internal/specs/platform.go", LineNumber: 84}}
	specs[1].State = types.SpecStateSkipped
	specs[1].Failure = types.Failure{Message: "needs <two> clusters"}
	specs[2].State = types.SpecStatePending
	specs[3].State = types.SpecStatePanicked
	specs[3].Failure = types.Failure{Message: "boom", ForwardedPanic: "<img src=x onerror=alert(1)>"}
	specs[4].ReportEntries = append(specs[4].ReportEntries, types.ReportEntry{Name: "<b>entry</b>",
		Value: types.ReportEntryValue{Representation: `</dd><script>x()</script>`}})
	specs[5].LeafNodeText = `<iframe src="https://example.com">`
	in.Suites[0].SuiteSucceeded = false
	in.Figures["evil"] = `<style>body{display:none}</style>`
	in.Phases = append(in.Phases, report.Phase{Name: `<svg onload=alert(1)>`, Start: in.Phases[0].Start, Seconds: 1})
	return in
}

func TestFailuresEscapedAndShown(t *testing.T) {
	in := hostile(t)
	out := render(t, in)
	for _, bad := range []string{"<script", "<img", "<iframe", "<b>", "<style>body", "<svg onload"} {
		if strings.Contains(out, bad) {
			t.Errorf("unescaped %q in the page", bad)
		}
	}
	m := verdictRE.FindStringSubmatch(out)
	if m == nil || m[1] != "fail" || m[2] != "failed" || !strings.Contains(m[3], "2 of 22 specs failed") {
		t.Fatalf("verdict: %q", m)
	}
	rows := specRE.FindAllStringSubmatch(out, -1)
	for i, want := range []struct{ class, state, text string }{
		{"fail", "failed", `Expected &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more`},
		{"skip", "skipped", "skipped: needs &lt;two&gt; clusters"},
		{"skip", "pending", ""},
		{"fail", "panicked", "panic: &lt;img src=x onerror=alert(1)&gt;"},
		{"pass", "passed", "&lt;/dd&gt;&lt;script&gt;x()&lt;/script&gt;"},
		{"pass", "passed", `&lt;iframe src=&#34;https://example.com&#34;&gt;`},
	} {
		if rows[i][1] != want.class || rows[i][2] != want.state || !strings.Contains(rows[i][3], want.text) {
			t.Errorf("row %d: class %s state %s, want %s %s with %q:\n%s", i, rows[i][1], rows[i][2], want.class, want.state, want.text, rows[i][3])
		}
	}
	if !strings.Contains(rows[0][3], "at /work/main/suites/internal/specs/platform.go:84") {
		t.Errorf("failure location missing: %s", rows[0][3])
	}
	if !strings.Contains(out, "&lt;style&gt;body{display:none}&lt;/style&gt;") {
		t.Error("the figure is not shown escaped")
	}
	if !strings.Contains(out, "&lt;svg onload=alert(1)&gt;") {
		t.Error("the phase name is not shown escaped in the time line")
	}
}

// TestSelfContained: nothing in the page may fetch anything — no script,
// stylesheet, image, frame or CSS url — and every link stays beside it.
func TestSelfContained(t *testing.T) {
	in := hostile(t)
	in.Links = []Link{{"phases", "phases.json"}, {"dump", "dump/cluster1/"}}
	out := render(t, in)
	for _, re := range []string{`(?i)<script`, `(?i)<link`, `(?i)<img`, `(?i)<iframe`, `(?i)\ssrc="`, `(?i)url\(`, `(?i)@import`} {
		if loc := regexp.MustCompile(re).FindStringIndex(out); loc != nil {
			t.Errorf("%s found: %q", re, out[max(0, loc[0]-40):min(len(out), loc[1]+40)])
		}
	}
	// No attribute names a place elsewhere but the SVG namespace, a name
	// and no fetch.
	for _, m := range regexp.MustCompile(`([\w-]+)="[^"]*://`).FindAllStringSubmatch(out, -1) {
		if m[1] != "xmlns" {
			t.Errorf("attribute with an address: %q", m[0])
		}
	}
	for _, m := range regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(out, -1) {
		if u, err := url.Parse(html.UnescapeString(m[1])); err != nil || u.IsAbs() || u.Host != "" || strings.HasPrefix(u.Path, "/") {
			t.Errorf("href %q is not relative", m[1])
		}
	}
	if m := regexp.MustCompile(`(?s)<figure id="timeline">\s*(.{0,5})`).FindStringSubmatch(out); m == nil || m[1] != "<svg " {
		t.Errorf("the time line is not inline SVG: %q", m)
	}
}

func hrefs(t *testing.T, page string) []string {
	t.Helper()
	var out []string
	for _, m := range regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		p, err := url.PathUnescape(html.UnescapeString(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestLinksOnlyToWhatExists(t *testing.T) {
	dir := copySample(t)
	in, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	path, err := WriteFile(dir, in)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"phases.json", "e2e/junit.xml", "e2e/ginkgo.json", "upgrade-canary/timeline.svg"}
	if got := hrefs(t, string(raw)); !slices.Equal(got, want) {
		t.Errorf("links %q, want %q", got, want)
	}

	// Dumps and logs of a failed run, and a name that is no plain URL path.
	for _, d := range []string{"dump/cluster1", "dump/mesh", "logs/cluster1", "up #2"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "up #2", "timeline.svg"), []byte("<svg/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dump", "not-a-folder.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if in, err = Load(dir); err != nil {
		t.Fatal(err)
	}
	// A caller's links to nothing, or off the machine, are dropped.
	in.Links = append(in.Links, Link{"gone", "gone.txt"}, Link{"web", "https://example.com/x"})
	if path, err = WriteFile(dir, in); err != nil {
		t.Fatal(err)
	}
	if raw, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	want = []string{"phases.json", "e2e/junit.xml", "e2e/ginkgo.json", "up #2/timeline.svg", "upgrade-canary/timeline.svg", "dump/cluster1/", "dump/mesh/", "logs/"}
	got := hrefs(t, string(raw))
	if !slices.Equal(got, want) {
		t.Errorf("links %q, want %q", got, want)
	}
	for _, h := range got {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(h))); err != nil {
			t.Errorf("link to nothing: %v", err)
		}
	}
	if !strings.Contains(string(raw), `href="up%20%232/timeline.svg"`) {
		t.Error("a name with # is not escaped in its href")
	}
}

func TestLoadEmptyAndBroken(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Load of a missing directory: no error")
	}
	// A run that stopped before any suite: a page that says so.
	empty := t.TempDir()
	in, err := Load(empty)
	if err != nil {
		t.Fatal(err)
	}
	out := render(t, in)
	if m := verdictRE.FindStringSubmatch(out); m == nil || m[1] != "fail" || !strings.Contains(m[3], "no spec ran") {
		t.Errorf("verdict of an empty run: %q", m)
	}
	if !strings.Contains(out, "no phases") {
		t.Error("an empty time line is not said to be empty")
	}

	broken := copySample(t)
	if err := os.WriteFile(filepath.Join(broken, "e2e", "ginkgo.json"), []byte("[{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(broken); err == nil || !strings.Contains(err.Error(), filepath.Join("e2e", "ginkgo.json")) {
		t.Errorf("Load of a broken report: %v", err)
	}
}

// structRE matches what fmt's %+v prints for a struct, a slice of structs
// or a pointer to one, and mapRE what it prints for a map: no reader's text.
var (
	structRE = regexp.MustCompile(`\{[A-Z]\w*:|\[\{|&\{`)
	mapRE    = regexp.MustCompile(`map\[`)
)

// phaseRowRE matches a row of a phases table: name, offset, duration, result.
var phaseRowRE = regexp.MustCompile(`<tr class="phase( fail)?"><td>([^<]*)</td><td class="num">\+([^<]*)</td><td class="num">([^<]*)</td><td>([^<]*)</td></tr>`)

// TestPhasesEntryIsATable: the suite's "phases" entry, read from a report
// (where Ginkgo's Representation is the Go value "[{Name:preflight
// Start:…}]") or made in this process, is a table of the phases in start
// order — offset from the first start, duration — and no entry shows a Go
// value.
func TestPhasesEntryIsATable(t *testing.T) {
	in := loadSample(t)
	specs := in.Suites[0].SpecReports
	last := &specs[len(specs)-1]
	var fromReport *types.ReportEntry
	for i, e := range last.ReportEntries {
		if e.Name == "phases" {
			fromReport = &last.ReportEntries[i]
		}
	}
	if fromReport == nil || !strings.HasPrefix(fromReport.Value.Representation, "[{Name:preflight Start:") {
		t.Fatalf("the sample's AfterSuite has no phases entry printed as a Go value: %+v", fromReport)
	}
	out := render(t, in)
	rows := specRE.FindAllStringSubmatch(out, -1)
	row := rows[len(rows)-1][3]
	if !strings.Contains(row, `<table class="phases">`) || !strings.Contains(row, "48 phases from 2026-11-22 17:13:09 UTC, 3m53s in all") {
		t.Fatalf("the AfterSuite row has no phases table:\n%.3000s", row)
	}
	got := phaseRowRE.FindAllStringSubmatch(row, -1)
	if len(got) != 48 {
		t.Fatalf("%d phase rows, want 48", len(got))
	}
	for i, want := range [][]string{
		{"preflight", "0s", "341ms", "ok"},
		{"docker network meshconform", "341ms", "305ms", "ok"},
		{"local registry", "647ms", "2.3s", "ok"},
		{"image docker.io/meshconform/meshapp:1e52549d2e54", "2.9s", "148ms", "ok (cached)"},
	} {
		if i == 3 {
			i = 4 // after "images"
		}
		if !slices.Equal(got[i][2:], want) {
			t.Errorf("phase row %d: %q, want %q", i, got[i][2:], want)
		}
	}
	// The page's own words only: no struct dumped in any entry, figure or
	// fact. (The sample's "split from" entries carry a map in their text,
	// written by the spec before report.Counts: text is shown as written.)
	if m := structRE.FindString(out); m != "" {
		i := strings.Index(out, m)
		t.Errorf("a Go value on the page: %q", out[max(0, i-80):min(len(out), i+80)])
	}

	// Entries made in this process carry their raw value only.
	start := time.Date(2026, 11, 22, 17, 0, 0, 0, time.UTC)
	last.ReportEntries = []types.ReportEntry{
		{Name: "phases", Value: types.WrapEntryValue([]report.Phase{
			{Name: "later", Start: start.Add(90 * time.Second), Seconds: 61.4, OK: false, Error: "boom <here>"},
			{Name: "first", Start: start, Seconds: 0.01234, OK: true},
		})},
		{Name: "counts", Value: types.WrapEntryValue(map[string]int{"v2": 704, "v1": 296})},
		{Name: "pair", Value: types.WrapEntryValue(struct{ Name string }{"x"})},
		{Name: "took", Value: types.WrapEntryValue(1500 * time.Millisecond)},
		{Name: "count", Value: types.WrapEntryValue(12)},
	}
	out = render(t, in)
	rows = specRE.FindAllStringSubmatch(out, -1)
	row = rows[len(rows)-1][3]
	got = phaseRowRE.FindAllStringSubmatch(row, -1)
	if len(got) != 2 || !slices.Equal(got[0][1:], []string{"", "first", "0s", "12ms", "ok"}) ||
		!slices.Equal(got[1][1:], []string{" fail", "later", "1m30s", "1m1s", "failed: boom &lt;here&gt;"}) {
		t.Errorf("in-process phases: %q", got)
	}
	if !strings.Contains(row, "2 phases from 2026-11-22 17:00:00 UTC, 2m31s in all") {
		t.Errorf("in-process phases summary missing:\n%s", row)
	}
	for _, want := range []string{
		`<dt>counts</dt><dd>{&#34;v1&#34;:296,&#34;v2&#34;:704}</dd>`,
		`<dt>pair</dt><dd>{&#34;Name&#34;:&#34;x&#34;}</dd>`,
		`<dt>took</dt><dd>1.5s</dd>`,
		`<dt>count</dt><dd>12</dd>`,
	} {
		if !strings.Contains(row, want) {
			t.Errorf("row lacks %s:\n%s", want, row)
		}
	}
	if m := structRE.FindString(row) + mapRE.FindString(row); m != "" {
		t.Errorf("a Go value on the page: %q", m)
	}
}

func TestDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		17975490 * time.Nanosecond:   "18ms",
		9304624908 * time.Nanosecond: "9.3s",
		89622850736:                  "1m30s",
		233106618652:                 "3m53s",
	} {
		if got := dur(d); got != want {
			t.Errorf("dur(%v) = %s, want %s", d, got, want)
		}
	}
}
