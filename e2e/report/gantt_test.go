package report

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

func TestWriteGanttDrawsEveryPhase(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	phases := []Phase{
		{Name: "images", Start: t0, Seconds: 100, OK: true},
		{Name: "create cluster <cluster1>", Start: t0.Add(100 * time.Second), Seconds: 20, OK: true, Note: "cached"},
		{Name: "install", Start: t0.Add(120 * time.Second), Seconds: 5, OK: false},
	}
	var buf bytes.Buffer
	if err := WriteGanttCPU(&buf, phases, nil); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if err := xml.Unmarshal(buf.Bytes(), new(struct{})); err != nil {
		t.Fatalf("not well-formed SVG: %v", err)
	}
	if n := strings.Count(out, "<rect "); n != 3 {
		t.Errorf("%d bars, want 3", n)
	}
	for _, want := range []string{"125s wall", "&lt;cluster1&gt;", `fill="#d04a4a"`, `fill="#aaa"`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
}

func TestNiceStep(t *testing.T) {
	for raw, want := range map[float64]float64{3: 5, 12: 20, 45: 50, 0.7: 1, 180: 200} {
		if got := niceStep(raw); got != want {
			t.Errorf("niceStep(%g) = %g, want %g", raw, got, want)
		}
	}
}

func TestWriteGanttCPUStripAndCriticalPath(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	phases := []Phase{
		{Name: "images", Start: t0, Seconds: 100, OK: true},
		{Name: "go build A", Start: t0, Seconds: 100, OK: true},
		{Name: "go build B", Start: t0, Seconds: 50, OK: true},
		{Name: "create cluster", Start: t0.Add(100 * time.Second), Seconds: 40, OK: true},
	}
	// The sampler started 10 s before the first phase: the axis widens.
	cpu := &CPU{Summary: CPUSummary{Start: t0.Add(-10 * time.Second), Cores: 2, BusyAvg: 0.5, BusySeconds: 150, UserSeconds: 120, SystemSeconds: 30}}
	for i := 1; i <= 150; i++ {
		cpu.Samples = append(cpu.Samples, CPUSample{At: float64(i), Seconds: 1, Busy: float64(i%3) / 2, IOWait: 0.1})
	}
	var buf bytes.Buffer
	if err := WriteGanttCPU(&buf, phases, cpu); err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(buf.Bytes(), new(struct{})); err != nil {
		t.Fatalf("not well-formed SVG: %v\n%s", err, buf.String())
	}
	out := buf.String()
	for _, want := range []string{
		`<g class="cpu">`, "CPU, 2 cores: 50% busy on average", "150 CPU-s (user 120, system 30)",
		"<title>busy</title>", "<title>iowait</title>", "150s wall", "critical path 140s",
		"★ go build A</text>", "★ create cluster</text>", ">images</text>", ">go build B</text>",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
	if n := strings.Count(out, `stroke="#111"`); n != 2 {
		t.Errorf("%d outlined bars, want 2 (the critical path)", n)
	}
	// The strip's path starts at the axis' origin (the first sample's start)
	// and 150 samples fit in 380 steps: no merging, 2 points each.
	if !strings.Contains(out, `<path d="M420.0 90.0 L420.0`) {
		t.Errorf("busy area does not start at the axis origin:\n%s", out)
	}
	// Without samples the chart is the old one.
	buf.Reset()
	if err := WriteGanttCPU(&buf, phases, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), `class="cpu"`) {
		t.Error("a CPU strip without samples")
	}
}
