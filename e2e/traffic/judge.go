package traffic

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Phase is what happened to the requests started in one phase.
type Phase struct {
	Name string
	// Start and End are offsets from the load's start.
	Start, End time.Duration
	Requests   int
	Failed     int
	// Errors counts the failures by their message.
	Errors map[string]int
	// SteadyRequests and SteadyFailed count, per stream and in all, the
	// requests started in the steady span (after the phase's action
	// finished), which every method must serve.
	SteadyRequests map[string]int
	SteadyFailed   int
	// LongestGap is the longest time, in any one stream, with no answer
	// arriving, among the gaps that overlap the phase (a gap across a
	// phase mark counts whole, in both phases); GapStream is that stream.
	LongestGap time.Duration
	GapStream  string
	// P50 and P99 are the answered requests' latencies; SteadyP99 is the
	// p99 of those started in the steady span.
	P50, P99, SteadyP99 time.Duration
	// Streams counts requests per stream; Served answered requests per
	// cluster that served them (proven by address).
	Streams map[string]int
	Served  map[string]int
	// StreamServed counts answered requests per stream and serving
	// cluster: whether each caller's traffic crossed, not only the sum.
	StreamServed map[string]map[string]int
	// Misplaced lists answers that came from the wrong place: from no
	// cluster's pod CIDR, from another cluster than the backend named,
	// or, for a stream aimed at one cluster, from another.
	Misplaced map[string]int
	// CallerVersions and ServerVersions count, over the phase's steady
	// span (after its action finished), the answered requests by the
	// frontend's and the backend's proxy version, per cluster
	// ("cluster1 1.27.0").
	CallerVersions, ServerVersions map[string]int
	SteadyFrom                     time.Duration
}

// Phases splits the record at its marks and summarizes each phase. A
// request belongs to the phase it started in.
func (r Record) Phases() []Phase {
	from := map[string]Stream{}
	for _, s := range r.Streams {
		from[s.Name] = s
	}
	gaps := r.gaps()
	var out []Phase
	for i, m := range r.Marks {
		end := r.End
		if i+1 < len(r.Marks) {
			end = r.Marks[i+1].At
		}
		p := Phase{Name: m.Name, Start: m.At.Sub(r.Start), End: end.Sub(r.Start), Errors: map[string]int{},
			Streams: map[string]int{}, Served: map[string]int{}, StreamServed: map[string]map[string]int{}, Misplaced: map[string]int{},
			CallerVersions: map[string]int{}, ServerVersions: map[string]int{}, SteadyRequests: map[string]int{}}
		steady := m.Steady
		if steady.IsZero() {
			steady = m.At
		}
		p.SteadyFrom = steady.Sub(r.Start)
		var lat, steadyLat []time.Duration
		for _, s := range r.Samples {
			if s.At.Before(m.At) || !s.At.Before(end) {
				continue
			}
			p.Requests++
			p.Streams[s.Stream]++
			inSteady := !s.At.Before(steady)
			if inSteady {
				p.SteadyRequests[s.Stream]++
			}
			if !s.OK() {
				p.Failed++
				p.Errors[s.Err]++
				if inSteady {
					p.SteadyFailed++
				}
				continue
			}
			lat = append(lat, s.Latency)
			if inSteady {
				steadyLat = append(steadyLat, s.Latency)
			}
			p.Served[s.ServedBy]++
			if p.StreamServed[s.Stream] == nil {
				p.StreamServed[s.Stream] = map[string]int{}
			}
			p.StreamServed[s.Stream][s.ServedBy]++
			st := from[s.Stream]
			switch {
			case s.ServedBy == "":
				p.Misplaced["answered from an address placed in no cluster (outside every pod range, and not listed by exactly one cluster's API server)"]++
			case s.Claimed != s.ServedBy:
				p.Misplaced[fmt.Sprintf("backend said %s, answer came from %s", s.Claimed, s.ServedBy)]++
			case st.Only != "" && s.ServedBy != st.Only:
				p.Misplaced[fmt.Sprintf("stream %s answered from %s", s.Stream, s.ServedBy)]++
			}
			if inSteady {
				p.CallerVersions[st.From+" "+orUnknown(s.CallerProxy)]++
				p.ServerVersions[s.ServedBy+" "+orUnknown(s.ServerProxy)]++
			}
		}
		p.P50, p.P99, p.SteadyP99 = quantile(lat, 0.50), quantile(lat, 0.99), quantile(steadyLat, 0.99)
		for _, st := range r.Streams {
			for _, g := range gaps[st.Name] {
				if g.from.Before(end) && g.to.After(m.At) && g.to.Sub(g.from) > p.LongestGap {
					p.LongestGap, p.GapStream = g.to.Sub(g.from), st.Name
				}
			}
		}
		out = append(out, p)
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

type span struct{ from, to time.Time }

// gaps are, per stream, the spans of the whole load between consecutive
// answers' arrivals (from the load's start to the first, from the last to
// its end), whatever phase each request started in.
func (r Record) gaps() map[string][]span {
	arrivals := map[string][]time.Time{}
	for _, s := range r.Samples {
		if s.OK() {
			arrivals[s.Stream] = append(arrivals[s.Stream], s.At.Add(s.Latency))
		}
	}
	out := map[string][]span{}
	for _, st := range r.Streams {
		out[st.Name] = gapsOf(arrivals[st.Name], r.Start, r.End)
	}
	return out
}

// gapsOf splits [from, to] at each arrival: a stream never answered is one
// gap as long as the load.
func gapsOf(arrivals []time.Time, from, to time.Time) []span {
	sort.Slice(arrivals, func(i, j int) bool { return arrivals[i].Before(arrivals[j]) })
	var out []span
	prev := from
	for _, a := range arrivals {
		if a.After(to) {
			a = to
		}
		if a.After(prev) {
			out = append(out, span{prev, a})
			prev = a
		}
	}
	return append(out, span{prev, to})
}

// quantile is the q-quantile (nearest rank) of ds; 0 for none.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s))*q+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Budget is what a disruption may cost: a phase of a load (Judge) or a
// transition between steady states (Within). One type, so every budget
// of the suite reads the same way.
type Budget struct {
	// MaxFailed bounds the failed requests. Below zero, failures are
	// measured and reported but not judged (an in-place upgrade, which
	// Istio does not promise is hitless).
	MaxFailed int
	// MaxTime bounds how long a transition may take to reach its new
	// steady state.
	MaxTime time.Duration
	// MaxGap bounds LongestGap.
	MaxGap time.Duration
	// MaxP99Over bounds how far the p99 latency of the phase's steady span
	// may exceed the baseline phase's. The span of the action itself is
	// measured, not judged: pods starting on a small machine stall every
	// stream at once, whatever the mesh does.
	MaxP99Over time.Duration
	// MinPerStream: fewer requests than this in any stream, in the phase
	// or in its steady span, is no verdict.
	MinPerStream int
}

// Transition is what was seen while traffic moved between steady states
// (a failover or failback, a control plane coming back): how long until
// the new steady state was first seen, and the calls asked for and failed
// on the way. Calls that could not be made at all (the frontend
// unreachable or erroring) count as asked and failed. Record.TransitionTo
// reads one from a load's record.
type Transition struct {
	Reached       bool
	Elapsed       time.Duration
	Asked, Failed int
	// Errors counts the failed calls by their message: what the failures
	// were, for the error that judges them.
	Errors map[string]int
	// Last is the last few requests' answers by the cluster the backend
	// named (failed requests under "(failed)"), for the error message.
	Last map[string]int
	// Strays are answers from elsewhere than the new steady state's
	// cluster in the window after it was first seen: reported, not
	// judged (a draining pod may still answer), while failed calls in
	// that window count in Failed.
	Strays int
	// Window is how many requests of that window were seen: fewer than
	// asked for while the window is still running, or when the record
	// ended first.
	Window int
	// NotStarted is why no load ran ("" when one did).
	NotStarted string
}

// settle is how many consecutive requests of a stream, every one answered
// in the wanted cluster, make a transition's new steady state seen (the
// size of the batches transitions were once polled in).
const settle = 5

// lastFailed is the key of failed requests in Transition.Last: no cluster
// can be named so.
const lastFailed = "(failed)"

// TransitionTo reads the transition of one stream's traffic to cluster
// want from the record, its requests taken in the order they started:
//   - it is reached when settle consecutive requests are all answered
//     with ServedBy and Claimed both want (the network's proof and the
//     backend's word), and Elapsed runs from the record's start to the
//     last answer of that run;
//   - the window is the after requests that follow: failed ones count in
//     Failed, answers with ServedBy other than want in Strays, and Window
//     says how many of them the record holds;
//   - Asked and Failed count every request from the first through the end
//     of the window, or every request when never reached (Elapsed is then
//     the whole record);
//   - Last counts the last settle of those requests by Claimed cluster.
//
// A record without requests of stream gives Asked 0, which Budget.Within
// refuses.
func (r Record) TransitionTo(stream, want string, after int) Transition {
	var ss []Sample
	for _, s := range r.Samples {
		if s.Stream == stream {
			ss = append(ss, s)
		}
	}
	sort.SliceStable(ss, func(i, j int) bool { return ss[i].At.Before(ss[j].At) })
	t := Transition{Elapsed: r.End.Sub(r.Start)}
	seen := len(ss)
	run := 0
	for i, s := range ss {
		if !s.OK() || s.ServedBy != want || s.Claimed != want {
			run = 0
			continue
		}
		if run++; run < settle {
			continue
		}
		t.Reached = true
		var answered time.Time
		for _, x := range ss[i+1-settle : i+1] {
			if end := x.At.Add(x.Latency); end.After(answered) {
				answered = end
			}
		}
		t.Elapsed = answered.Sub(r.Start)
		seen = min(len(ss), i+1+max(after, 0))
		t.Window = seen - (i + 1)
		for _, x := range ss[i+1 : seen] {
			if x.OK() && x.ServedBy != want {
				t.Strays++
			}
		}
		break
	}
	t.Asked = seen
	t.Last, t.Errors = map[string]int{}, map[string]int{}
	for i, s := range ss[:seen] {
		switch {
		case !s.OK():
			t.Failed++
			t.Errors[s.Err]++
			if i >= seen-settle {
				t.Last[lastFailed]++
			}
		case i >= seen-settle:
			t.Last[s.Claimed]++
		}
	}
	return t
}

// Within rejects a transition that never reached its steady state, took
// longer than MaxTime, or failed more calls than MaxFailed allows. It also
// refuses a transition measured over no calls.
func (b Budget) Within(what string, t Transition) error {
	switch {
	case t.NotStarted != "":
		return fmt.Errorf("%s: no calls were made while it happened: %s", what, t.NotStarted)
	case t.Asked == 0:
		return fmt.Errorf("%s: no calls were made while it happened", what)
	case !t.Reached:
		return fmt.Errorf("%s: not reached within %s (last answers by cluster %v; %d of %d calls failed%s)", what, t.Elapsed.Round(time.Millisecond), t.Last, t.Failed, t.Asked, failedWith(t.Errors))
	case t.Elapsed > b.MaxTime:
		return fmt.Errorf("%s took %s, budget %s", what, t.Elapsed.Round(time.Millisecond), b.MaxTime)
	case b.MaxFailed >= 0 && t.Failed > b.MaxFailed:
		return fmt.Errorf("%s: %d of %d calls failed, budget %d%s", what, t.Failed, t.Asked, b.MaxFailed, failedWith(t.Errors))
	}
	return nil
}

// failedWith names the commonest failures, or nothing when none failed.
func failedWith(errs map[string]int) string {
	if len(errs) == 0 {
		return ""
	}
	return ": " + topErrors(errs)
}

// SteadyFailures is what every method may fail once a phase's action has
// finished and the mesh has settled: nothing.
const SteadyFailures = 0

// Judge rejects a phase that broke its budget against baseline (the
// "before" phase), or that cannot be judged: too few requests in a stream
// (a stalled load or a phase too short must not pass on nothing), or any
// misplaced answer (traffic reaching a cluster it should not, or answers
// whose origin the network does not confirm).
func (b Budget) Judge(p Phase, baseline Phase, streams []Stream) error {
	var errs []error
	for _, s := range streams {
		if n := p.Streams[s.Name]; n < b.MinPerStream {
			errs = append(errs, fmt.Errorf("stream %s: %d requests, want at least %d to judge", s.Name, n, b.MinPerStream))
		} else if n := p.SteadyRequests[s.Name]; n < b.MinPerStream {
			errs = append(errs, fmt.Errorf("stream %s: %d requests after the action finished, want at least %d to judge", s.Name, n, b.MinPerStream))
		}
	}
	if p.SteadyFailed > SteadyFailures {
		errs = append(errs, fmt.Errorf("%d requests failed after the action had finished and the mesh had settled: %s", p.SteadyFailed, topErrors(p.Errors)))
	}
	if b.MaxFailed >= 0 && p.Failed > b.MaxFailed {
		errs = append(errs, fmt.Errorf("%d of %d requests failed (budget %d): %s", p.Failed, p.Requests, b.MaxFailed, topErrors(p.Errors)))
	}
	if b.MaxGap > 0 && p.LongestGap > b.MaxGap {
		errs = append(errs, fmt.Errorf("stream %s went %s without an answer (budget %s)", p.GapStream, p.LongestGap.Round(time.Millisecond), b.MaxGap))
	}
	if b.MaxP99Over > 0 && p.SteadyP99 > baseline.P99+b.MaxP99Over {
		errs = append(errs, fmt.Errorf("p99 latency %s after the action finished, baseline %s: more than %s above it", p.SteadyP99.Round(time.Millisecond), baseline.P99.Round(time.Millisecond), b.MaxP99Over))
	}
	if len(p.Misplaced) > 0 {
		errs = append(errs, fmt.Errorf("answers from the wrong place: %s", topErrors(p.Misplaced)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("phase %q: %w", p.Name, err)
	}
	return nil
}

// Crossed rejects a phase in which a stream's answers did not come from
// every one of clusters: traffic that stayed in its caller's cluster (a
// split trust, endpoints of another cluster dropped) while no request
// failed. A stream with no answer is rejected too.
func (p Phase) Crossed(streams []Stream, clusters []string) error {
	if len(clusters) == 0 || len(streams) == 0 {
		return fmt.Errorf("phase %q: no stream or no cluster: nothing to judge", p.Name)
	}
	for _, s := range streams {
		got := p.StreamServed[s.Name]
		for _, c := range clusters {
			if got[c] == 0 {
				return fmt.Errorf("phase %q: stream %s got no answer from %s (answers by cluster %v): its traffic did not cross", p.Name, s.Name, c, got)
			}
		}
	}
	return nil
}

// StayedIn rejects a phase in which a stream's answer came from a cluster
// not among clusters: the calls of a mesh that dropped a cluster must stay
// with the others. A stream with no answer is rejected too: it proves
// nothing.
func (p Phase) StayedIn(streams []Stream, clusters []string) error {
	if len(clusters) == 0 || len(streams) == 0 {
		return fmt.Errorf("phase %q: no stream or no cluster: nothing to judge", p.Name)
	}
	in := map[string]bool{}
	for _, c := range clusters {
		in[c] = true
	}
	for _, s := range streams {
		got := p.StreamServed[s.Name]
		n := 0
		for c, k := range got {
			if !in[c] {
				return fmt.Errorf("phase %q: stream %s got %d answers from %s, which should be out of the mesh (answers by cluster %v)", p.Name, s.Name, k, c, got)
			}
			n += k
		}
		if n == 0 {
			return fmt.Errorf("phase %q: stream %s got no answer", p.Name, s.Name)
		}
	}
	return nil
}

// Versions rejects a phase in which, once its action finished (the steady
// span), an answered request went through a proxy of another version than
// the one its cluster should run: want maps a cluster to its version, for
// callers (frontends) and servers (backends) alike. It fails when a
// cluster of want has no answer in the steady span as caller or as server:
// its versions would go unjudged.
func (p Phase) Versions(want map[string]string) error {
	if len(want) == 0 {
		return fmt.Errorf("phase %q: no cluster's version to judge", p.Name)
	}
	var bad []string
	for cl := range want {
		for role, counts := range map[string]map[string]int{"frontend": p.CallerVersions, "backend": p.ServerVersions} {
			seen := false
			for k := range counts {
				if strings.HasPrefix(k, cl+" ") {
					seen = true
				}
			}
			if !seen {
				bad = append(bad, fmt.Sprintf("no answer through a %s in %s after the action finished", role, cl))
			}
		}
	}
	for _, set := range []struct {
		role   string
		counts map[string]int
	}{{"frontend", p.CallerVersions}, {"backend", p.ServerVersions}} {
		for k, n := range set.counts {
			cl, v, _ := strings.Cut(k, " ")
			if w, ok := want[cl]; !ok || v != w {
				bad = append(bad, fmt.Sprintf("%d answers through a %s in %s on proxy %s (want %s)", n, set.role, cl, v, want[cl]))
			}
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		return fmt.Errorf("phase %q: %s", p.Name, strings.Join(bad, "; "))
	}
	return nil
}

func topErrors(m map[string]int) string {
	type kv struct {
		k string
		n int
	}
	var s []kv
	for k, n := range m {
		s = append(s, kv{k, n})
	}
	sort.Slice(s, func(i, j int) bool { return s[i].n > s[j].n || (s[i].n == s[j].n && s[i].k < s[j].k) })
	var parts []string
	for i, e := range s {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more kinds", len(s)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("%q ×%d", e.k, e.n))
	}
	return strings.Join(parts, ", ")
}
