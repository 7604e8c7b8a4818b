package report

import (
	"slices"
	"time"
)

// pathTolerance is how far a phase may end after the next one starts and
// still count as before it: goroutines start a phase a few milliseconds
// after the one they waited for ended, and a phase's end is rounded.
const pathTolerance = 500 * time.Millisecond

// CriticalPath returns, in time order, the chain of phases the run waited
// on: making one of them faster is what can make the run shorter, while a
// phase beside the path has slack.
//
// The rule, since phases carry no dependencies, only times:
//
//  1. Start from the phase that ends last. From each phase on the path, step
//     back to the one it waited for: among the phases that started earlier
//     and ended by its start (within pathTolerance), the one that ended
//     latest. Stop when there is none.
//  2. Among phases ending at the same time as the latest (within
//     pathTolerance, and not themselves before it), take the longest: it
//     explains the most time. Of two phases with identical spans take the
//     inner one (see within).
//  3. A chosen phase that contains others (by time: "images" holds "go
//     build kubernetes" and "image pause") is replaced by the path through
//     its contents, found by the same rule, when that path explains it:
//     it starts at the container's start, ends at its end and has no gap
//     longer than pathTolerance. Otherwise the container stays on the path,
//     since its own work, outside any inner phase, is what took the time.
//     So two parallel builds inside "images" give the longer build, not
//     "images" and not the shorter build.
func CriticalPath(phases []Phase) []Phase {
	idx := newPathGraph(phases).walk(allIndexes(len(phases)))
	out := make([]Phase, len(idx))
	for i, j := range idx {
		out[i] = phases[j]
	}
	return out
}

// criticalSet is CriticalPath as indexes of phases, for marking them.
func criticalSet(phases []Phase) map[int]bool {
	set := map[int]bool{}
	for _, i := range newPathGraph(phases).walk(allIndexes(len(phases))) {
		set[i] = true
	}
	return set
}

func allIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

type pathGraph struct {
	ph  []Phase
	end []time.Time
}

func newPathGraph(phases []Phase) *pathGraph {
	g := &pathGraph{ph: phases, end: make([]time.Time, len(phases))}
	for i, p := range phases {
		g.end[i] = phaseEnd(p)
	}
	return g
}

func phaseEnd(p Phase) time.Time {
	return p.Start.Add(time.Duration(p.Seconds * float64(time.Second)))
}

// spans reports whether b's time lies within a's.
func (g *pathGraph) spans(a, b int) bool {
	return !g.ph[b].Start.Before(g.ph[a].Start) && !g.end[b].After(g.end[a])
}

// within reports whether b is inside a. Of two phases with the same span,
// the later listed is inside, so "within" never holds both ways. Spans are
// equal only in lists written by hand, which name a group before its
// items: a Run's clock starts a group before its first item and ends it
// after its last.
func (g *pathGraph) within(b, a int) bool {
	if a == b || !g.spans(a, b) {
		return false
	}
	return !g.spans(b, a) || b > a
}

// pick chooses among candidates by rule 2; -1 when there are none. The
// phases "ending at the same time" as the latest-ending one leave out
// those that came before it (a 0.4 s step ending as the next one starts is
// its predecessor, not its rival).
func (g *pathGraph) pick(cands []int) int {
	if len(cands) == 0 {
		return -1
	}
	last := cands[0]
	for _, i := range cands {
		if g.end[i].After(g.end[last]) {
			last = i
		}
	}
	best := last
	for _, i := range cands {
		if g.end[i].Before(g.end[last].Add(-pathTolerance)) || g.before(i, last) {
			continue
		}
		if g.better(i, best) {
			best = i
		}
	}
	return best
}

// before reports whether phase i ran before phase j: it started earlier
// and ended by j's start (within the tolerance).
func (g *pathGraph) before(i, j int) bool {
	return g.ph[i].Start.Before(g.ph[j].Start) && !g.end[i].After(g.ph[j].Start.Add(pathTolerance))
}

func (g *pathGraph) better(i, j int) bool {
	if g.ph[i].Seconds != g.ph[j].Seconds {
		return g.ph[i].Seconds > g.ph[j].Seconds
	}
	if g.within(i, j) != g.within(j, i) {
		return g.within(i, j)
	}
	return i < j
}

// walk applies rule 1 among the phases in set, returning the path in time
// order with each step expanded by rule 3.
func (g *pathGraph) walk(set []int) []int {
	var rev [][]int
	for cur := g.pick(set); cur >= 0; {
		rev = append(rev, g.expand(cur))
		var cands []int
		for _, i := range set {
			if g.before(i, cur) && !g.within(cur, i) {
				cands = append(cands, i)
			}
		}
		cur = g.pick(cands)
	}
	slices.Reverse(rev)
	return slices.Concat(rev...)
}

// expand applies rule 3 to phase c. The inner phases form a strictly
// smaller set, so the recursion ends.
func (g *pathGraph) expand(c int) []int {
	var inner []int
	for i := range g.ph {
		if g.within(i, c) {
			inner = append(inner, i)
		}
	}
	if len(inner) == 0 {
		return []int{c}
	}
	path := g.walk(inner)
	if !g.explains(c, path) {
		return []int{c}
	}
	return path
}

// explains reports whether path covers c's span with no gap over the
// tolerance.
func (g *pathGraph) explains(c int, path []int) bool {
	if len(path) == 0 {
		return false
	}
	first, last := path[0], path[len(path)-1]
	if g.ph[first].Start.Sub(g.ph[c].Start) > pathTolerance || g.end[c].Sub(g.end[last]) > pathTolerance {
		return false
	}
	for k := 1; k < len(path); k++ {
		if g.ph[path[k]].Start.Sub(g.end[path[k-1]]) > pathTolerance {
			return false
		}
	}
	return true
}
