package checks

import (
	"math"
	"testing"
)

// The band's stated α is the true one: a correct mesh fails the exact
// binomial test at most α of the time.
func TestBandHoldsAlpha(t *testing.T) {
	for _, c := range []struct {
		n     int
		p, al float64
	}{{1000, 0.7, 0.001}, {500, 0.2, 0.001}, {1000, 0.3, 0.01}, {100, 0.5, 0.05}} {
		b := Band(c.n, c.p, c.al)
		fail := 1 - AcceptProbability(c.n, c.p, b)
		if fail > c.al {
			t.Errorf("n=%d p=%g: band %s fails a correct mesh with probability %g > α=%g", c.n, c.p, b, fail, c.al)
		}
		// and it is not wastefully wide: widening by one on each side
		// would be needed only if the band were too narrow.
		narrower := Interval{b.Lo + 1, b.Hi - 1}
		if 1-AcceptProbability(c.n, c.p, narrower) <= c.al {
			t.Errorf("n=%d p=%g: band %s could be narrower", c.n, c.p, b)
		}
	}
}

// The old test (80/20 over 500 calls, band 100 ± 29.4) let a mesh that
// balances over 6 v1 and 2 v2 pods (25 % v2) pass about two times in
// three: that is why the weights changed.
func TestOldSplitLetThePodRatioPass(t *testing.T) {
	b := Band(500, 0.2, 0.001)
	if pass := AcceptProbability(500, 0.25, b); pass < 0.5 {
		t.Errorf("expected the old test to pass a pod-balancing mesh most of the time, got %g", pass)
	}
}

func TestSplitRejectsIgnoredWeights(t *testing.T) {
	w := map[string]float64{"v1": 0.3, "v2": 0.7}
	if err := Split(w, 0.001)(byVersion(map[string]int{"v1": 310, "v2": 690})); err != nil {
		t.Errorf("690/1000 rejected: %v", err)
	}
	wantErr(t, Split(w, 0.001)(byVersion(map[string]int{"v1": 750, "v2": 250})), "v2: 250 of 1000, want 652..747")
	wantErr(t, Split(w, 0.001)(byVersion(map[string]int{"v1": 300, "v2": 690, "v3": 10})), `unexpected version "v3"`)
}

func TestLeakWindow(t *testing.T) {
	// A window must catch a 1 % leak with probability ≥ 99.9 %.
	n := WindowFor(0.01, 0.001)
	if n != 688 {
		t.Errorf("window for a 1%% leak at miss 0.001 = %d, want 688", n)
	}
	if got := LeakCaught(n, 0.01); got < 0.999 {
		t.Errorf("LeakCaught(%d, 1%%) = %g", n, got)
	}
	if got := LeakCaught(1000, 0.01); math.Abs(got-(1-math.Pow(0.99, 1000))) > 1e-12 {
		t.Errorf("LeakCaught = %g", got)
	}
}

func TestBinomPMFSumsToOne(t *testing.T) {
	s := 0.0
	for k := 0; k <= 1000; k++ {
		s += binomPMF(1000, k, 0.7)
	}
	if math.Abs(s-1) > 1e-9 {
		t.Errorf("sum = %g", s)
	}
	if binomPMF(10, 0, 0) != 1 || binomPMF(10, 10, 1) != 1 || binomPMF(10, 3, 0) != 0 {
		t.Error("edge cases")
	}
}
