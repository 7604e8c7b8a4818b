package report

import "testing"

func TestCounts(t *testing.T) {
	for _, c := range []struct {
		in   map[string]int
		want string
	}{
		{nil, "none"},
		{map[string]int{"v2": 704, "v1": 296}, "v1 296, v2 704"},
		{map[string]int{"cluster2": 0, "cluster1 1.27.0": 15}, "cluster1 1.27.0 15, cluster2 0"},
	} {
		if got := Counts(c.in); got != c.want {
			t.Errorf("Counts(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}
