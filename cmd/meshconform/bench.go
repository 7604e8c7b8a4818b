package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/report"
)

// Record is one `meshconform bench`: the runs it made (or, for "report",
// read) and what each cost, written as bench.json and bench.md under
// artifacts/bench/<istio>-<time>/.
type Record struct {
	Date         string `json:"date"`
	Mode         string `json:"mode"` // warm, cold or report
	IstioVersion string `json:"istio_version"`
	// ColdCaches is where the cold run's empty caches were, and how big
	// they grew.
	ColdCaches *ColdCaches  `json:"cold_caches,omitempty"`
	Runs       []*RunRecord `json:"runs"`
}

// ColdCaches describes the caches a cold bench started empty (and removed).
type ColdCaches struct {
	Dir string `json:"dir"`
	// Bytes is each cache's size after the last run, by its variable
	// (GOMODCACHE, GOCACHE, MESHCONFORM_CACHE).
	Bytes map[string]int64 `json:"bytes"`
}

// RunRecord is one run: the make commands it took, their cost, and what
// its phases.json says.
type RunRecord struct {
	Name      string `json:"name"` // cold, warm or report
	Artifacts string `json:"artifacts"`
	// WallSeconds is the commands' wall time (for "report": the phases'
	// span).
	WallSeconds float64   `json:"wall_seconds"`
	Commands    []Command `json:"commands,omitempty"`
	// CPU is the machine's CPU use over the commands (for "report": over
	// the run, when its phases.json has a CPU record).
	CPU                 *report.CPUSummary `json:"cpu,omitempty"`
	CriticalPath        []Step             `json:"critical_path"`
	CriticalPathSeconds float64            `json:"critical_path_seconds"`
	TopPhases           []Step             `json:"top_phases"`
	// CachedPhases counts phases that took their result from a cache: near
	// 0 in a cold run, most image phases in a warm one.
	CachedPhases      int                `json:"cached_phases"`
	PhaseCount        int                `json:"phase_count"`
	KubernetesVersion any                `json:"kubernetes_version"`
	ImageSource       any                `json:"image_source"`
	Phases            map[string]float64 `json:"phase_seconds"`
	Figures           map[string]any     `json:"figures"`
	// Error says why the run's phases.json is missing or unreadable.
	Error string `json:"error,omitempty"`
}

// Command is one make command of a run.
type Command struct {
	Command     string             `json:"command"`
	WallSeconds float64            `json:"wall_seconds"`
	OK          bool               `json:"ok"`
	Error       string             `json:"error,omitempty"`
	CPU         *report.CPUSummary `json:"cpu,omitempty"`
}

// Step is a phase in a list: its start in seconds after the run's first
// phase began, and its length.
type Step struct {
	Name    string  `json:"name"`
	At      float64 `json:"at"`
	Seconds float64 `json:"seconds"`
	OK      bool    `json:"ok"`
	Note    string  `json:"note,omitempty"`
}

// topPhases is how many of the longest phases a record lists.
const topPhases = 10

// bench runs the bench subcommand: warm (default), cold or report.
// Records go under records (default: the artifacts directory's bench/),
// which make keeps apart from the runs it prunes.
func bench(ctx context.Context, cfg harness.Config, mode, records string) error {
	now := time.Now().UTC()
	stamp := fmt.Sprintf("%s-%s", cfg.IstioVersion, now.Format("20060102T150405Z"))
	rec := &Record{Date: now.Format(time.RFC3339), Mode: mode, IstioVersion: cfg.IstioVersion}
	if records == "" {
		records = filepath.Join(cfg.ArtifactsDir, "bench")
	}
	dir := filepath.Join(records, stamp)
	var err error
	switch mode {
	case "report":
		err = benchReport(latestRun(cfg.ArtifactsDir), rec)
	case "warm", "cold":
		b := newBencher(cfg, dir)
		if mode == "cold" {
			err = b.cold(ctx, rec)
		} else {
			err = b.warm(ctx, rec)
		}
	default:
		return fmt.Errorf("unknown bench mode %q (want warm, cold or report)", mode)
	}
	if len(rec.Runs) == 0 {
		return err
	}
	// A failed run still leaves its record: what it cost up to the failure.
	if werr := writeRecord(dir, rec); werr != nil {
		return fmt.Errorf("write bench record: %w", werr)
	}
	return err
}

// benchReport turns an existing run's phases.json (artifacts/phases.json)
// into the record, running nothing.
func benchReport(artifacts string, rec *Record) error {
	doc, err := readPhases(artifacts)
	if err != nil {
		return fmt.Errorf("%w (run make e2e first)", err)
	}
	run := &RunRecord{Name: "report", Artifacts: artifacts}
	run.fromPhases(doc)
	rec.Runs = append(rec.Runs, run)
	return nil
}

func readPhases(artifacts string) (report.Document, error) {
	var doc report.Document
	path := filepath.Join(artifacts, "phases.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return doc, fmt.Errorf("read the run's report: %w", err)
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return doc, fmt.Errorf("parse the run's report %s: %w", path, err)
	}
	return doc, nil
}

// fromPhases fills what the run's phases.json tells: versions, phase
// times, critical path, longest phases and figures. Phase times and
// figures are picked as the bench record always did: successful phases
// summed by name, without the per-image phases (their names carry tags,
// which do not compare between versions), and figures without the
// audit_* inventories.
func (r *RunRecord) fromPhases(doc report.Document) {
	r.KubernetesVersion, r.ImageSource = doc.Figures["kubernetes_version"], doc.Figures["image_source"]
	r.Phases, r.Figures = map[string]float64{}, map[string]any{}
	for _, p := range doc.Phases {
		if p.OK && !strings.HasPrefix(p.Name, "image ") {
			r.Phases[p.Name] = round1(r.Phases[p.Name] + p.Seconds)
		}
		if p.Note == "cached" || strings.HasPrefix(p.Note, "cached,") {
			r.CachedPhases++
		}
	}
	r.PhaseCount = len(doc.Phases)
	for k, v := range doc.Figures {
		if !strings.HasPrefix(k, "audit_") {
			r.Figures[k] = v
		}
	}
	if len(doc.Phases) == 0 {
		return
	}
	origin, end := doc.Phases[0].Start, doc.Phases[0].Start
	for _, p := range doc.Phases {
		if p.Start.Before(origin) {
			origin = p.Start
		}
		if e := p.Start.Add(time.Duration(p.Seconds * float64(time.Second))); e.After(end) {
			end = e
		}
	}
	step := func(p report.Phase) Step {
		return Step{Name: p.Name, At: round1(p.Start.Sub(origin).Seconds()), Seconds: p.Seconds, OK: p.OK, Note: p.Note}
	}
	r.CriticalPath, r.CriticalPathSeconds = []Step{}, 0
	for _, p := range report.CriticalPath(doc.Phases) {
		r.CriticalPath = append(r.CriticalPath, step(p))
		r.CriticalPathSeconds += p.Seconds
	}
	r.CriticalPathSeconds = round1(r.CriticalPathSeconds)
	byLength := slices.Clone(doc.Phases)
	slices.SortStableFunc(byLength, func(a, b report.Phase) int {
		if a.Seconds != b.Seconds {
			return cmpDesc(a.Seconds, b.Seconds)
		}
		return a.Start.Compare(b.Start)
	})
	r.TopPhases = []Step{}
	for _, p := range byLength[:min(topPhases, len(byLength))] {
		r.TopPhases = append(r.TopPhases, step(p))
	}
	if len(r.Commands) == 0 {
		r.WallSeconds = round1(end.Sub(origin).Seconds())
		if doc.CPU != nil {
			s := doc.CPU.Summary
			r.CPU = &s
		}
	}
}

func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// writeRecord writes bench.json and bench.md into dir and prints the table.
func writeRecord(dir string, rec *Record) error {
	raw, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	md := renderMarkdown(rec)
	if err := os.WriteFile(filepath.Join(dir, "bench.json"), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Println(md)
	fmt.Println("written to", filepath.Join(dir, "bench.json"), "and bench.md")
	return nil
}
