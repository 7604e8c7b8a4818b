package report

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// ph is a phase from start to start+secs, in seconds after t0.
func ph(name string, start, secs float64) Phase {
	return Phase{Name: name, Start: t0.Add(seconds(start)), Seconds: secs, OK: true}
}

func names(phases []Phase) string {
	var n []string
	for _, p := range phases {
		n = append(n, p.Name)
	}
	return strings.Join(n, " → ")
}

func TestCriticalPath(t *testing.T) {
	for _, tc := range []struct {
		name   string
		phases []Phase
		want   string
		// listed: the answer depends on the order (identical spans, where
		// the later listed phase is the inner one).
		listed bool
	}{
		{"empty", nil, "", false},
		{"one", []Phase{ph("a", 0, 1)}, "a", false},
		{
			// The brief's example: the longer of two parallel builds inside
			// "images", not "images" itself and not the shorter build.
			"parallel builds in a group",
			[]Phase{ph("images", 0, 100), ph("go build A", 0, 100), ph("go build B", 0, 50), ph("create cluster", 100, 40), ph("ready", 140, 10)},
			"go build A → create cluster → ready", true,
		},
		{
			// As a Run records them: the group starts first and ends last by
			// milliseconds, and the next phase starts 0.3 s before the
			// build's rounded end.
			"real clocks",
			[]Phase{ph("images", 0, 100.004), ph("go build B", 0.002, 50), ph("go build A", 0.001, 100.002), ph("create cluster", 99.7, 40.3), ph("ready", 140.01, 10)},
			"go build A → create cluster → ready", false,
		},
		{
			// Sequential steps inside a group, all inside a suite-wide phase.
			"nested sequence",
			[]Phase{ph("suite", 0, 150), ph("images", 0, 100), ph("pull base", 0, 20), ph("go build A", 20, 80), ph("image pause", 5, 3), ph("create cluster", 100, 40), ph("ready", 140, 10)},
			"pull base → go build A → create cluster → ready", false,
		},
		{
			// 10 s inside "images" belong to no inner phase: the group stays.
			"group with a gap",
			[]Phase{ph("images", 0, 100), ph("pull base", 0, 20), ph("go build A", 30, 70), ph("create cluster", 100, 40)},
			"images → create cluster", false,
		},
		{
			// C lies within A's time but is not what A was made of.
			"parallel phase inside another's span",
			[]Phase{ph("images", 0, 100), ph("go build A", 0, 100), ph("image C", 60, 40), ph("create cluster", 100, 40)},
			"go build A → create cluster", true,
		},
		{
			// A phase ending 2 s after "create" started ran beside it.
			"overlap beyond the tolerance",
			[]Phase{ph("a", 0, 10), ph("b", 5, 7), ph("create", 10, 30)},
			"a → create", false,
		},
		{
			// Steps shorter than the tolerance are predecessors, not rivals
			// "ending at the same time" as the next one.
			"short steps in a row",
			[]Phase{ph("a", 0, 10), ph("b", 10, 1), ph("c", 11, 0.4), ph("d", 11.4, 0.3)},
			"a → b → c → d", false,
		},
		{
			// A failed phase takes time like any other.
			"failure on the path",
			[]Phase{ph("a", 0, 10), {Name: "b", Start: t0.Add(10 * time.Second), Seconds: 20}, ph("c", 30, 1), ph("d", 0, 25)},
			"a → b → c", false,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(CriticalPath(tc.phases)); got != tc.want {
				t.Errorf("path %q, want %q", got, tc.want)
			}
			if tc.listed {
				return
			}
			// The order phases are listed in does not matter.
			rev := slices.Clone(tc.phases)
			slices.Reverse(rev)
			if got := names(CriticalPath(rev)); got != tc.want {
				t.Errorf("reversed input: path %q, want %q", got, tc.want)
			}
		})
	}
}
