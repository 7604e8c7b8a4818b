// Package report records how long each phase of a run took, prints each
// phase as it starts and ends, and writes the run's figures as JSON for CI
// and for benchmarks to compare.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Phase is one timed step of a run.
type Phase struct {
	Name    string    `json:"name"`
	Start   time.Time `json:"start"`
	Seconds float64   `json:"seconds"`
	OK      bool      `json:"ok"`
	Note    string    `json:"note,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// Run collects the phases and figures of one run. Safe for concurrent use:
// independent phases (two clusters, several image builds) run side by side.
type Run struct {
	mu      sync.Mutex
	out     io.Writer
	phases  []Phase
	figures map[string]any
	now     func() time.Time

	cpuMu sync.Mutex  // apart from mu: StartCPU prints, which takes mu
	cpu   *CPUSampler // nil until StartCPU
}

// NewRun prints phase lines to out.
func NewRun(out io.Writer) *Run {
	return &Run{out: out, figures: map[string]any{}, now: time.Now}
}

// Time runs fn as the phase name, printing a start line and an ok/fail line
// with its duration, in the style of kind's status lines.
func (r *Run) Time(name string, fn func() error) error {
	_, err := r.TimeNote(name, func() (string, error) { return "", fn() })
	return err
}

// TimeNote is Time for a phase that reports a short note (e.g. "cached").
func (r *Run) TimeNote(name string, fn func() (string, error)) (string, error) {
	start := r.now()
	r.printf(" • %s ...\n", name)
	note, err := fn()
	p := Phase{Name: name, Start: start, Seconds: r.now().Sub(start).Seconds(), OK: err == nil, Note: note}
	if err != nil {
		p.Error = err.Error()
	}
	r.mu.Lock()
	r.phases = append(r.phases, p)
	r.mu.Unlock()
	suffix := ""
	if note != "" {
		suffix = ", " + note
	}
	if err != nil {
		r.printf(" ✗ %s (%.1fs%s): %v\n", name, p.Seconds, suffix, err)
	} else {
		r.printf(" ✓ %s (%.1fs%s)\n", name, p.Seconds, suffix)
	}
	return note, err
}

// Figure records a measured value (sizes, counts) for the report.
func (r *Run) Figure(name string, v any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.figures[name] = v
}

// Figures returns a copy of the recorded figures.
func (r *Run) Figures() map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]any, len(r.figures))
	for k, v := range r.figures {
		out[k] = v
	}
	return out
}

// Phases returns the recorded phases in start order.
func (r *Run) Phases() Phases {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append(Phases(nil), r.phases...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

func (r *Run) printf(format string, args ...any) {
	if r.out == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.out, format, args...)
}

// StartCPU samples the machine's CPU use every interval (<= 0 means
// DefaultCPUInterval) until stop or StopCPU, for the report's CPU record and
// the cpu_* figures. Where /proc/stat cannot be read (not Linux) it prints
// why and records nothing: a missing CPU strip must not fail a run. A second
// call returns the first sampler's stop (a stopped sampler stays stopped).
func (r *Run) StartCPU(interval time.Duration) (stop func()) {
	r.cpuMu.Lock()
	defer r.cpuMu.Unlock()
	if r.cpu == nil {
		s, err := StartCPUSampler(interval)
		if err != nil {
			r.printf(" ! no CPU record: %v\n", err)
			return func() {}
		}
		r.cpu = s
	}
	s := r.cpu
	return func() { s.Stop() }
}

// StopCPU stops the sampler started by StartCPU and returns its record;
// nil when none was started. Safe to call more than once.
func (r *Run) StopCPU() *CPU {
	if s := r.sampler(); s != nil {
		return s.Stop()
	}
	return nil
}

// CPU returns the CPU record so far (nil without StartCPU); sampling goes on.
func (r *Run) CPU() *CPU {
	if s := r.sampler(); s != nil {
		return s.Snapshot()
	}
	return nil
}

func (r *Run) sampler() *CPUSampler {
	r.cpuMu.Lock()
	defer r.cpuMu.Unlock()
	return r.cpu
}

// Document is what WriteJSON writes.
type Document struct {
	Phases  []Phase        `json:"phases"`
	Figures map[string]any `json:"figures"`
	// CPU is the machine's CPU use during the run, when it was sampled.
	CPU *CPU `json:"cpu,omitempty"`
}

// WriteJSON writes the phases, figures and CPU record (so far) to path,
// creating its directory.
func (r *Run) WriteJSON(path string) error {
	r.mu.Lock()
	figs := make(map[string]any, len(r.figures))
	for k, v := range r.figures {
		figs[k] = v
	}
	r.mu.Unlock()
	doc := Document{Phases: r.Phases(), Figures: figs, CPU: r.CPU()}
	if doc.CPU != nil {
		for k, v := range doc.CPU.Summary.Figures() {
			figs[k] = v
		}
	}
	raw, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode run report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("run report directory: %w", err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return fmt.Errorf("write run report: %w", err)
	}
	return nil
}

// Phases are a run's phases in order of start. As a report entry, Ginkgo
// prints them with String (one line each) and stores them as JSON, which
// the report page shows as a table.
type Phases []Phase

// String is one line per phase: its offset from the first, its duration,
// its name and how it ended.
func (ps Phases) String() string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('\n')
		}
		status := "ok"
		if !p.OK {
			status = "failed: " + p.Error
		}
		if p.Note != "" {
			status += " (" + p.Note + ")"
		}
		fmt.Fprintf(&b, "+%6.1fs %6.1fs  %s  %s", p.Start.Sub(ps[0].Start).Seconds(), p.Seconds, p.Name, status)
	}
	return b.String()
}
