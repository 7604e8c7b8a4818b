package istiodmetrics

import (
	"testing"
	"time"
)

// A reading or a start inside a fault's span belongs to it, ends
// included, and one still going holds everything after its start; outside
// every span nothing is excused.
func TestFaultAt(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	fs := []Fault{
		{Name: "rotated", From: t0, To: t0.Add(time.Minute)},
		{Name: "unreachable", From: t0.Add(2 * time.Minute), Timeouts: 1},
	}
	for _, c := range []struct {
		at   time.Duration
		want string
	}{{-time.Second, ""}, {0, "rotated"}, {time.Minute, "rotated"}, {90 * time.Second, ""}, {2 * time.Minute, "unreachable"}, {time.Hour, "unreachable"}} {
		got := ""
		if f := FaultAt(fs, t0.Add(c.at)); f != nil {
			got = f.Name
		}
		if got != c.want {
			t.Errorf("at +%s: fault %q, want %q", c.at, got, c.want)
		}
	}
	if n := TimeoutsExpected(fs, t0.Add(3*time.Minute)); n != 1 {
		t.Errorf("a replica started while the remote was unreachable may count %g timeouts, want 1", n)
	}
	for _, started := range []time.Time{t0.Add(30 * time.Second), t0.Add(-time.Hour), {}} {
		if n := TimeoutsExpected(fs, started); n != 0 {
			t.Errorf("a replica started at %s may count %g timeouts, want 0", started, n)
		}
	}
}
