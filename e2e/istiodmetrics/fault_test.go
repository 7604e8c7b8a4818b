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

// A disagreement counts once it lasts ConfirmAfter; one gone before is a
// transient, said so; replicas are apart; a forgotten one starts afresh.
func TestConfirm(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 22, 19, 36, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	var c Confirm
	if got, cleared := c.Observe("a", at(0), "gauge syncing"); got != "" || cleared {
		t.Errorf("first disagreement confirmed: %q %v", got, cleared)
	}
	if got, _ := c.Observe("b", at(1), ""); got != "" {
		t.Errorf("another replica's reading confirmed a's: %q", got)
	}
	if got, _ := c.Observe("a", at(10), "gauge syncing"); got != "" {
		t.Errorf("confirmed 10 s on, within a 15 s gauge period: %q", got)
	}
	if got, cleared := c.Observe("a", at(19), ""); got != "" || !cleared {
		t.Errorf("a transient not cleared: %q %v", got, cleared)
	}
	c.Observe("a", at(30), "gauge timeout")
	c.Observe("a", at(40), "gauge timeout")
	if got, _ := c.Observe("a", at(50), "gauge timeout at 50"); got != "gauge timeout" {
		t.Errorf("a disagreement lasting 20 s: %q", got)
	}
	if got, _ := c.Observe("a", at(70), "gauge timeout at 70"); got != "gauge timeout at 50" {
		t.Errorf("a disagreement lasting on: %q", got)
	}
	c.Forget("a")
	if got, _ := c.Observe("a", at(95), "x"); got != "" {
		t.Errorf("confirmed across a forget: %q", got)
	}
	if p := c.Pending(); len(p) != 1 || p["a"] != "x" {
		t.Errorf("pending %v", p)
	}
}
