package checks

import (
	"fmt"
	"math"
	"strings"
)

// Split rejects a mesh that ignores a VirtualService's weights: the share
// of answers from each version must lie in the acceptance band around its
// weight (Band: an exact two-sided binomial test at significance alpha).
// With two versions the two bands are one event, so a correct mesh fails
// it with probability ≤ alpha; with k versions, ≤ k·alpha. Whether a given broken
// mesh — one balancing over pods, or evenly over subsets — is rejected
// depends on the weights and n; AcceptProbability computes it, and the
// suite's unit tests hold the fixture's weights to it.
func Split(weights map[string]float64, alpha float64) Checker {
	return func(c Calls) error {
		if err := someAnswered(c); err != nil {
			return err
		}
		// Failed calls are no one's answers (NoFailures judges them).
		n := len(answered(c.Results))
		got := Counts(answered(c.Results), ByVersion)
		var bad []string
		for _, v := range sortedKeys(weights) {
			b := Band(n, weights[v], alpha)
			if !b.Contains(got[v]) {
				bad = append(bad, fmt.Sprintf("%s: %d of %d, want %s (weight %g, α=%g)", v, got[v], n, b, weights[v], alpha))
			}
		}
		for _, v := range sortedKeys(got) {
			if _, ok := weights[v]; !ok {
				bad = append(bad, fmt.Sprintf("%d answers from unexpected version %q", got[v], v))
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("split does not follow the weights: %s", strings.Join(bad, "; "))
		}
		return nil
	}
}

// Interval is an acceptance band of counts, both ends included.
type Interval struct{ Lo, Hi int }

// Contains reports whether k lies in the band.
func (b Interval) Contains(k int) bool { return k >= b.Lo && k <= b.Hi }

func (b Interval) String() string { return fmt.Sprintf("%d..%d", b.Lo, b.Hi) }

// Band is the acceptance band for a count of n trials with success
// probability p at two-sided significance alpha: the largest symmetric
// interval of counts whose exact binomial tails each hold at most alpha/2.
// Exact, not the normal approximation, so the stated α is the true one.
func Band(n int, p, alpha float64) Interval {
	lo, tail := 0, 0.0
	for k := 0; k <= n; k++ {
		tail += binomPMF(n, k, p)
		if tail > alpha/2 {
			lo = k
			break
		}
	}
	hi, tail := n, 0.0
	for k := n; k >= 0; k-- {
		tail += binomPMF(n, k, p)
		if tail > alpha/2 {
			hi = k
			break
		}
	}
	return Interval{lo, hi}
}

// AcceptProbability is the chance that a count of n trials with success
// probability p falls in band: for the true p, 1 - (the chance a correct
// mesh fails); for a broken mesh's p, the chance it passes.
func AcceptProbability(n int, p float64, band Interval) float64 {
	s := 0.0
	for k := band.Lo; k <= band.Hi; k++ {
		s += binomPMF(n, k, p)
	}
	return math.Min(s, 1)
}

// LeakCaught is the chance that n calls, each leaking with probability q,
// show at least one leak: what a window of n calls that must all stay
// local catches of a mesh leaking a share q.
func LeakCaught(n int, q float64) float64 { return 1 - math.Pow(1-q, float64(n)) }

// WindowFor is the smallest window n that catches a leak of share q with
// probability at least 1-miss.
func WindowFor(q, miss float64) int {
	return int(math.Ceil(math.Log(miss) / math.Log(1-q)))
}

// binomPMF is P(X=k) for X ~ Binomial(n, p), computed in log space.
func binomPMF(n, k int, p float64) float64 {
	switch {
	case p <= 0:
		if k == 0 {
			return 1
		}
		return 0
	case p >= 1:
		if k == n {
			return 1
		}
		return 0
	}
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x) + 1); return v }
	return math.Exp(lg(n) - lg(k) - lg(n-k) + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
}
