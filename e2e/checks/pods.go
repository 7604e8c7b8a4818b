package checks

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// ReachedPods rejects a mesh in which a serving pod never answers: one
// that is Ready and SYNCED but not listening, or that the clients' load
// balancer left out (gRPC's round robin silently skips an endpoint it
// cannot connect to, so no call fails). Every pod of want must have
// answered at least one call of the batch; the error names the pods that
// answered none. The batch must be large enough that a correct mesh
// reaches every pod (CallsToReachEach).
func ReachedPods(want ...string) Checker {
	return func(c Calls) error {
		if err := someAnswered(c); err != nil {
			return err
		}
		if len(want) == 0 {
			return fmt.Errorf("no pod to reach: nothing to judge")
		}
		got := map[string]int{}
		for _, r := range answered(c.Results) {
			got[r.Pod]++
		}
		var silent []string
		for _, p := range want {
			if got[p] == 0 {
				silent = append(silent, p)
			}
		}
		if len(silent) > 0 {
			sort.Strings(silent)
			return fmt.Errorf("backend pods %s answered none of %d calls (%d pods answered: %v)", strings.Join(silent, ", "), c.Asked, len(got), got)
		}
		return nil
	}
}

// CallsToReachEach is how many calls make a correct mesh miss none of
// pods serving pods with probability at most miss. It assumes the worst
// a correct mesh does: each call going to a pod chosen independently and
// uniformly (gRPC weighs localities by their endpoint count, so every pod
// has the same share, and round robin within a locality only spreads
// calls more evenly than chance). By the union bound a pod is missed with
// probability at most pods·(1-1/pods)^n.
func CallsToReachEach(pods int, miss float64) int {
	if pods <= 1 {
		return 1
	}
	p := float64(pods)
	return int(math.Ceil(math.Log(miss/p) / math.Log(1-1/p)))
}

// MissProbability is the union bound CallsToReachEach keeps under miss:
// the chance that n uniformly spread calls leave one of pods unreached.
func MissProbability(pods, n int) float64 {
	if pods <= 1 {
		return 0
	}
	p := float64(pods)
	return math.Min(1, p*math.Pow(1-1/p, float64(n)))
}
