// Package propagation times how long a change takes to reach every
// caller of the mesh: from the moment it was made (a routing rule applied
// on the primary, a new endpoint Ready in a remote) until each cluster's
// frontend acts on it, read from the callers' own answers, never from
// istiod's claim that it pushed.
package propagation

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/meshconform/meshconform/e2e/checks"
)

// Caller is one frontend: its cluster and its URL.
type Caller struct {
	Cluster, Base string
}

// CallFunc asks a frontend for n calls with headers (frontend.Call).
type CallFunc func(ctx context.Context, base string, n int, headers ...string) (checks.Calls, error)

// Watch is one trial's observation of every caller.
type Watch struct {
	Call CallFunc
	// Calls per poll, and Settle consecutive polls whose every call Acted
	// says the caller acts on the change (a single lucky answer of a
	// round robin is not the change).
	Calls, Settle int
	// Every is the pause between a caller's polls.
	Every time.Duration
	// Headers go with every call.
	Headers []string
	// Acted says whether one call's answer shows the change.
	Acted func(checks.Result) bool
}

// Times polls every caller side by side, from since (when the change was
// made) until each has acted on it, or timeout. A caller's time is from
// since to the answer of the first poll of its settled run: what the
// caller saw, bounded from above by the poll's own latency. A caller that
// never settles is an error naming it and what it last saw.
func (w Watch) Times(ctx context.Context, callers []Caller, since time.Time, timeout time.Duration) (map[string]time.Duration, error) {
	if len(callers) == 0 || w.Calls <= 0 || w.Settle <= 0 || w.Acted == nil || w.Call == nil {
		return nil, fmt.Errorf("a watch needs callers, calls, a settle count and a test of the answers")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var mu sync.Mutex
	out := map[string]time.Duration{}
	var errs []string
	var wg sync.WaitGroup
	for _, c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := w.one(ctx, c, since)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Sprintf("caller in %s: %v", c.Cluster, err))
				return
			}
			out[c.Cluster] = d
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		sort.Strings(errs)
		return out, fmt.Errorf("not every caller acted on the change within %s: %s", timeout, strings.Join(errs, "; "))
	}
	return out, nil
}

func (w Watch) one(ctx context.Context, c Caller, since time.Time) (time.Duration, error) {
	run := 0
	var first time.Time
	last := "no answer yet"
	for {
		calls, err := w.Call(ctx, c.Base, w.Calls, w.Headers...)
		at := time.Now()
		acted := err == nil && len(calls.Results) == w.Calls
		switch {
		case err != nil && ctx.Err() == nil:
			last = err.Error()
		case err == nil && len(calls.Results) != w.Calls:
			last = fmt.Sprintf("%d answers for %d calls", len(calls.Results), w.Calls)
		}
		for _, r := range calls.Results {
			if !w.Acted(r) {
				acted = false
				last = describe(r)
				break
			}
		}
		switch {
		case acted && run == 0:
			run, first = 1, at
		case acted:
			run++
		default:
			run = 0
		}
		if run >= w.Settle {
			return first.Sub(since), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("last saw %s", last)
		case <-time.After(w.Every):
		}
	}
}

func describe(r checks.Result) string {
	if r.Error != "" {
		return "a failed call: " + r.Error
	}
	return fmt.Sprintf("an answer from %s (%s, %s)", r.Pod, r.Cluster, r.Version)
}

// Spread is a figure over repeated trials.
type Spread struct {
	Trials   int       `json:"trials"`
	P50      float64   `json:"p50_seconds"`
	P99      float64   `json:"p99_seconds"`
	Max      float64   `json:"max_seconds"`
	Min      float64   `json:"min_seconds"`
	PerTrial []float64 `json:"per_trial_seconds"`
}

// SpreadOf is the nearest-rank p50 and p99 (with few trials, p99 is the
// slowest), min and max of ds. No trial is an error: no figure.
func SpreadOf(ds []time.Duration) (Spread, error) {
	if len(ds) == 0 {
		return Spread{}, fmt.Errorf("no trial: no figure")
	}
	s := Spread{Trials: len(ds)}
	for _, d := range ds {
		s.PerTrial = append(s.PerTrial, d.Seconds())
	}
	sorted := append([]float64(nil), s.PerTrial...)
	sort.Float64s(sorted)
	rank := func(q float64) float64 {
		i := int(q*float64(len(sorted))+0.999999) - 1
		return sorted[min(max(i, 0), len(sorted)-1)]
	}
	s.P50, s.P99, s.Min, s.Max = rank(0.5), rank(0.99), sorted[0], sorted[len(sorted)-1]
	return s, nil
}

// Slowest is the longest of a trial's callers' times: when the change
// had reached every caller.
func Slowest(times map[string]time.Duration) time.Duration {
	var m time.Duration
	for _, d := range times {
		m = max(m, d)
	}
	return m
}
