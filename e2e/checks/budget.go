package checks

import (
	"fmt"
	"time"
)

// Transition is what a bounded polling loop saw while traffic moved (a
// failover or failback): how long until the new steady state was first
// seen, and the calls asked for and failed on the way. Calls the frontend
// could not make at all (the frontend unreachable or erroring) count as
// asked and failed.
type Transition struct {
	Reached       bool
	Elapsed       time.Duration
	Asked, Failed int
	// Last is the last batch's answers by cluster, for the error message.
	Last map[string]int
	// Strays are answers from elsewhere than the new steady state's
	// cluster in the window after it was first seen: reported, not
	// judged (a draining pod may still answer), while failed calls in
	// that window count in Failed.
	Strays int
}

// Budget is what a transition may cost.
type Budget struct {
	MaxTime   time.Duration
	MaxFailed int
}

// Within rejects a transition that never reached its steady state, took
// longer than the budget, or failed more calls than it allows. It also
// refuses a transition measured over no calls.
func (b Budget) Within(what string, t Transition) error {
	switch {
	case t.Asked == 0:
		return fmt.Errorf("%s: no calls were made while it happened", what)
	case !t.Reached:
		return fmt.Errorf("%s: not reached within %s (last answers by cluster %v; %d of %d calls failed)", what, t.Elapsed.Round(time.Millisecond), t.Last, t.Failed, t.Asked)
	case t.Elapsed > b.MaxTime:
		return fmt.Errorf("%s took %s, budget %s", what, t.Elapsed.Round(time.Millisecond), b.MaxTime)
	case t.Failed > b.MaxFailed:
		return fmt.Errorf("%s: %d of %d calls failed, budget %d", what, t.Failed, t.Asked, b.MaxFailed)
	}
	return nil
}
