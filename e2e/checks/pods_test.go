package checks

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/meshconform/meshconform/fixtures/apps/meshapp/api"
)

func answers(pods ...string) Calls {
	c := Calls{Asked: len(pods)}
	for _, p := range pods {
		c.Results = append(c.Results, Result{Identity: api.Identity{Pod: p, Cluster: "cluster1"}})
	}
	return c
}

// The broken mesh: one pod Ready and SYNCED that never answers (the
// client's round robin skips it, no call fails). It is named.
func TestReachedPodsNamesTheSilentPod(t *testing.T) {
	want := []string{"backend-v1-a", "backend-v1-b", "backend-v2-a", "backend-silent"}
	c := answers("backend-v1-a", "backend-v1-b", "backend-v2-a", "backend-v1-a")
	err := ReachedPods(want...)(c)
	if err == nil || !strings.Contains(err.Error(), "backend-silent answered none of 4 calls") {
		t.Fatalf("a silent pod passed or was not named: %v", err)
	}
	if err := ReachedPods(want[:3]...)(c); err != nil {
		t.Errorf("every pod answered, yet: %v", err)
	}
	if err := ReachedPods()(c); err == nil {
		t.Error("passed with no pod to reach")
	}
	if err := ReachedPods("backend-v1-a")(Calls{Asked: 3}); err == nil {
		t.Error("passed on no answers")
	}
	failed := Calls{Asked: 2, Response: Response{Results: []Result{{Identity: api.Identity{Pod: "backend-v1-a"}}, {Identity: api.Identity{Pod: "backend-silent"}, Error: "unavailable"}}}}
	if err := ReachedPods("backend-v1-a", "backend-silent")(failed); err == nil {
		t.Error("a failed call counted as the pod answering")
	}
}

// The odds a correct mesh fails: the window is sized so that the union
// bound is under the target, and a simulation of uniform choice (the
// worst a correct mesh does) agrees with the bound.
func TestCallsToReachEachKeepsTheMissOdds(t *testing.T) {
	for _, pods := range []int{1, 4, 8, 12, 24} {
		n := CallsToReachEach(pods, 1e-9)
		if MissProbability(pods, n) > 1e-9 {
			t.Errorf("%d pods, %d calls: miss %.2g > 1e-9", pods, n, MissProbability(pods, n))
		}
		if n > 1 && MissProbability(pods, n-1) <= 1e-9 {
			t.Errorf("%d pods: %d calls is not the smallest window", pods, n)
		}
	}
	if n := CallsToReachEach(8, 1e-9); n != 171 {
		t.Errorf("8 pods (two clusters of 4): %d calls, want 171", n)
	}
	// At a looser target the bound is checked against chance itself.
	r := rand.New(rand.NewSource(1))
	pods, n := 8, CallsToReachEach(8, 0.05)
	missed := 0
	const trials = 20000
	for i := 0; i < trials; i++ {
		seen := map[int]bool{}
		for j := 0; j < n; j++ {
			seen[r.Intn(pods)] = true
		}
		if len(seen) < pods {
			missed++
		}
	}
	if rate := float64(missed) / trials; rate > 0.05 {
		t.Errorf("simulated miss rate %.4f over the 0.05 bound (n=%d)", rate, n)
	} else {
		t.Logf("8 pods, %d calls: simulated miss %.4f, bound %.4f", n, rate, MissProbability(pods, n))
	}
}
