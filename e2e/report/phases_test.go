package report

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTimeRecordsAndPrints(t *testing.T) {
	var out strings.Builder
	r := NewRun(&out)
	clock := time.Unix(100, 0)
	r.now = func() time.Time { clock = clock.Add(1500 * time.Millisecond); return clock }

	if err := r.Time("build images", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := r.Time("create cluster1", func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("error not passed through: %v", err)
	}
	r.Figure("image_cache_bytes", 42)

	printed := out.String()
	for _, want := range []string{" • build images ...", " ✓ build images (1.5s)", " ✗ create cluster1 (1.5s): boom"} {
		if !strings.Contains(printed, want) {
			t.Errorf("output lacks %q:\n%s", want, printed)
		}
	}
	path := filepath.Join(t.TempDir(), "sub", "phases.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	var doc Document
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Phases) != 2 || !doc.Phases[0].OK || doc.Phases[1].OK || doc.Phases[1].Error != "boom" {
		t.Errorf("phases = %+v", doc.Phases)
	}
	if doc.Figures["image_cache_bytes"] != float64(42) {
		t.Errorf("figures = %v", doc.Figures)
	}
}

// The phases as a report entry read as lines, never as a Go value.
func TestPhasesString(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)
	ps := Phases{{Name: "preflight", Start: t0, Seconds: 0.1, OK: true}, {Name: "images", Start: t0.Add(2 * time.Second), Seconds: 3, OK: false, Error: "boom", Note: "cached"}}
	want := "+   0.0s    0.1s  preflight  ok\n+   2.0s    3.0s  images  failed: boom (cached)"
	if got := ps.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
