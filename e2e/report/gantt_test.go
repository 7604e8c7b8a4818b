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
	if err := WriteGantt(&buf, phases); err != nil {
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
