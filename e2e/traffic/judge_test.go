package traffic

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshconform/meshconform/e2e/checks"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var testStreams = []Stream{
	{Name: "c1→any", From: "c1", Base: "http://a"},
	{Name: "c1→c2", From: "c1", Base: "http://a", Only: "c2"},
	{Name: "c2→any", From: "c2", Base: "http://b"},
	{Name: "c2→c1", From: "c2", Base: "http://b", Only: "c1"},
}

// healthy makes 10 s of answers, 5/s per stream, 10 ms each, on version v
// (callers and servers): a stream aimed at a cluster is served there, the
// others by c1 and c2 in turn.
func healthy(v string) []Sample {
	var out []Sample
	for i := 0; i < 50; i++ {
		for _, st := range testStreams {
			by := st.Only
			if by == "" {
				by = []string{"c1", "c2"}[i%2]
			}
			out = append(out, Sample{Stream: st.Name, At: t0.Add(time.Duration(i) * 200 * time.Millisecond), Latency: 10 * time.Millisecond,
				ServedBy: by, Claimed: by, CallerProxy: v, ServerProxy: v})
		}
	}
	return out
}

func record(s []Sample, marks ...Mark) Record {
	if len(marks) == 0 {
		marks = []Mark{{Name: "before", At: t0}}
	}
	return Record{Streams: testStreams, Samples: s, Marks: marks, Start: t0, End: t0.Add(10 * time.Second), Rate: 5}
}

var canary = Budget{MaxFailed: 0, MaxGap: 2 * time.Second, MaxP99Over: 500 * time.Millisecond, MinPerStream: 20}

func TestJudgeCorrectMeshPasses(t *testing.T) {
	ps := record(healthy("1.27.0")).Phases()
	if len(ps) != 1 || ps[0].Requests != 200 {
		t.Fatalf("phases %+v", ps)
	}
	if err := canary.Judge(ps[0], ps[0], testStreams); err != nil {
		t.Errorf("healthy phase rejected: %v", err)
	}
	if err := ps[0].Versions(map[string]string{"c1": "1.27.0", "c2": "1.27.0"}); err != nil {
		t.Errorf("versions rejected: %v", err)
	}
	if ps[0].LongestGap > 300*time.Millisecond {
		t.Errorf("gap %s at 5/s", ps[0].LongestGap)
	}
}

// Each broken mesh the budget must reject.
func TestJudgeRejects(t *testing.T) {
	cases := map[string]func([]Sample) []Sample{
		"one failed request (a restart that drops a call)": func(s []Sample) []Sample {
			s[10].Err = "rpc error: code = Unavailable"
			return s
		},
		"a 3 s outage of one stream (no answer, requests hanging)": func(s []Sample) []Sample {
			var out []Sample
			for _, x := range s {
				if x.Stream == "c1→c2" && x.At.After(t0.Add(4*time.Second)) && x.At.Before(t0.Add(7*time.Second)) {
					continue
				}
				out = append(out, x)
			}
			return out
		},
		"cross-cluster stream answered in its own cluster (routing broken)": func(s []Sample) []Sample {
			s[1].ServedBy, s[1].Claimed = "c1", "c1"
			return s
		},
		"a cross-cluster stream failing after the action, local ones fine (in-place budget too)": func(s []Sample) []Sample {
			for i := range s {
				if s[i].Stream == "c2→c1" && s[i].At.After(t0.Add(8*time.Second)) {
					s[i].Err = "no healthy upstream"
				}
			}
			return s
		},
		"backend claims a cluster the network disproves": func(s []Sample) []Sample {
			s[0].Claimed = "c2"
			return s
		},
		"answer from outside every pod CIDR": func(s []Sample) []Sample {
			s[0].ServedBy = ""
			return s
		},
		"latency regression (p99 +1 s)": func(s []Sample) []Sample {
			for i := 0; i < 5; i++ {
				s[i*7].Latency = 1100 * time.Millisecond
			}
			return s
		},
		"a stalled load (too few requests)": func(s []Sample) []Sample { return s[:20] },
		"no requests at all":                func([]Sample) []Sample { return nil },
	}
	base := record(healthy("1.27.0")).Phases()[0]
	for name, breakIt := range cases {
		p := record(breakIt(healthy("1.27.0"))).Phases()[0]
		if err := canary.Judge(p, base, testStreams); err == nil {
			t.Errorf("%s: passed", name)
		}
	}
}

func TestVersionsReject(t *testing.T) {
	s := healthy("1.27.0")
	s[3].CallerProxy = "1.26.0"
	p := record(s).Phases()[0]
	if err := p.Versions(map[string]string{"c1": "1.27.0", "c2": "1.27.0"}); err == nil || !strings.Contains(err.Error(), "1.26.0") {
		t.Errorf("a caller left on the old proxy passed: %v", err)
	}
	// Only the steady span counts: an old-version answer before it is fine.
	p = record(s, Mark{Name: "restart", At: t0, Steady: t0.Add(2 * time.Second)}).Phases()[0]
	if err := p.Versions(map[string]string{"c1": "1.27.0", "c2": "1.27.0"}); err != nil {
		t.Errorf("old version before the steady span rejected: %v", err)
	}
	if err := record(nil).Phases()[0].Versions(map[string]string{"c1": "x"}); err == nil {
		t.Error("no answers passed the version check")
	}
	// c1's backends never answered (every answer came from c2): their
	// version is unjudged, which must not pass.
	onlyC2 := healthy("1.27.0")
	for i := range onlyC2 {
		onlyC2[i].ServedBy = "c2"
	}
	if err := record(onlyC2).Phases()[0].Versions(map[string]string{"c1": "1.27.0", "c2": "1.27.0"}); err == nil || !strings.Contains(err.Error(), "backend in c1") {
		t.Errorf("a cluster without answers passed: %v", err)
	}
}

func TestInPlaceBudgetMeasuresFailures(t *testing.T) {
	s := healthy("1.27.0")
	s[10].Err = "rpc error"
	steady := Mark{Name: "upgrade", At: t0, Steady: t0.Add(4 * time.Second)}
	p := record(s, steady).Phases()[0]
	inPlace := canary
	inPlace.MaxFailed, inPlace.MaxGap = -1, 0
	if err := inPlace.Judge(p, p, testStreams); err != nil {
		t.Errorf("in-place budget judged failures during the action: %v", err)
	}
	if p.Failed != 1 || p.Errors["rpc error"] != 1 {
		t.Errorf("failure not counted: %+v", p)
	}
	// Once the action finished, a failure is a broken mesh whatever the
	// method (a new istiod that lost the remote's endpoints).
	s[100].Err = "rpc error"
	p = record(s, steady).Phases()[0]
	if err := inPlace.Judge(p, p, testStreams); err == nil {
		t.Error("a failure after the action passed the in-place budget")
	}
}

func TestPhasesSplitAtMarks(t *testing.T) {
	r := record(healthy("1.27.0"), Mark{Name: "a", At: t0}, Mark{Name: "b", At: t0.Add(4 * time.Second)})
	ps := r.Phases()
	if len(ps) != 2 || ps[0].Requests != 80 || ps[1].Requests != 120 {
		t.Fatalf("split: %d phases, %d + %d requests", len(ps), ps[0].Requests, ps[1].Requests)
	}
}

func TestGaps(t *testing.T) {
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	if g := gapsOf(nil, t0, at(5)); len(g) != 1 || g[0].to.Sub(g[0].from) != 5*time.Second {
		t.Errorf("no answers: %v", g)
	}
	g := gapsOf([]time.Time{at(4), at(1), at(1.5)}, t0, at(5))
	if len(g) != 4 || g[2].to.Sub(g[2].from) != 2500*time.Millisecond {
		t.Errorf("gaps %v, want 1, 0.5, 2.5, 1 s", g)
	}
}

// An outage of 1.5 s on each side of a phase mark is one 3 s gap, judged
// in both phases, not two gaps under the budget.
func TestGapAcrossAMark(t *testing.T) {
	var s []Sample
	for _, x := range healthy("1.27.0") {
		if x.Stream == "c1→c2" && x.At.After(t0.Add(3500*time.Millisecond)) && x.At.Before(t0.Add(6500*time.Millisecond)) {
			continue
		}
		s = append(s, x)
	}
	ps := record(s, Mark{Name: "a", At: t0}, Mark{Name: "b", At: t0.Add(5 * time.Second)}).Phases()
	for _, p := range ps {
		if p.LongestGap < 3*time.Second {
			t.Errorf("phase %s: gap %s, want the whole 3 s outage", p.Name, p.LongestGap)
		}
	}
}

func TestQuantile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if q := quantile(ds, 0.99); q != 99*time.Millisecond {
		t.Errorf("p99 %s", q)
	}
	if q := quantile(ds, 0.5); q != 50*time.Millisecond {
		t.Errorf("p50 %s", q)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{Rate: 5, MaxDuration: time.Minute, MaxRequests: 10}).Validate(testStreams); err == nil || !strings.Contains(err.Error(), "no placement") {
		t.Errorf("no placement: %v", err)
	}
	// Clusters without pod CIDRs are placed by their API servers' pods.
	if err := (Config{Rate: 5, MaxDuration: time.Minute, MaxRequests: 10, Placement: checks.NewPlacement(nil)}).Validate(testStreams); err != nil {
		t.Errorf("a placement without pod CIDRs: %v", err)
	}
	if err := (Config{Rate: 5}).Validate(testStreams); err == nil {
		t.Error("unbounded load accepted")
	}
}

func TestWriteSVG(t *testing.T) {
	s := healthy("1.27.0")
	s[30].Err = "boom"
	r := record(s, Mark{Name: "before", At: t0}, Mark{Name: "upgrade <&>", At: t0.Add(5 * time.Second)})
	path := t.TempDir() + "/t.svg"
	if err := r.WriteSVG(path, "test"); err != nil {
		t.Fatal(err)
	}
	secs := r.Seconds()
	if len(secs) != 10 || secs[0].Requests != 20 {
		t.Errorf("seconds %+v", secs)
	}
	failed := 0
	for _, x := range secs {
		failed += x.Failed
	}
	if failed != 1 {
		t.Errorf("failed %d", failed)
	}
}

// Latency during the action (pods starting on a 2-core machine) is
// reported, not judged; the same slowness after the action is.
func TestLatencyJudgedAfterTheAction(t *testing.T) {
	s := healthy("1.27.0")
	for i := 0; i < 40; i++ { // the first 2 s: 40 of 200 requests slow
		s[i].Latency = 1500 * time.Millisecond
	}
	base := record(healthy("1.27.0")).Phases()[0]
	during := record(s, Mark{Name: "restart", At: t0, Steady: t0.Add(3 * time.Second)}).Phases()[0]
	if err := canary.Judge(during, base, testStreams); err != nil {
		t.Errorf("slowness during the action judged: %v", err)
	}
	if during.P99 < time.Second {
		t.Errorf("the phase's p99 must still report it: %s", during.P99)
	}
	after := record(s, Mark{Name: "restart", At: t0}).Phases()[0]
	if err := canary.Judge(after, base, testStreams); err == nil {
		t.Error("the same slowness after the action passed")
	}
}

// Traffic that stays local in every cluster fills the phase's Served with
// every cluster while no stream crossed: Crossed judges per stream.
func TestCrossedJudgesEachStream(t *testing.T) {
	t0 := time.Now()
	streams := []Stream{{Name: "c1", From: "cluster1", Base: "x"}, {Name: "c2", From: "cluster2", Base: "y"}}
	sample := func(stream, by string, i int) Sample {
		return Sample{Stream: stream, At: t0.Add(time.Duration(i) * time.Millisecond), ServedBy: by, Claimed: by}
	}
	local := Record{Streams: streams, Start: t0, End: t0.Add(time.Second), Marks: []Mark{{Name: "p", At: t0}},
		Samples: []Sample{sample("c1", "cluster1", 1), sample("c1", "cluster1", 2), sample("c2", "cluster2", 3), sample("c2", "cluster2", 4)}}
	p := local.Phases()[0]
	if len(p.Served) != 2 {
		t.Fatalf("served %v: the sum sees both clusters", p.Served)
	}
	if err := p.Crossed(streams, []string{"cluster1", "cluster2"}); err == nil || !strings.Contains(err.Error(), "stream c1 got no answer from cluster2") {
		t.Errorf("local-only traffic: %v", err)
	}
	crossed := local
	crossed.Samples = append(crossed.Samples[:0:0], local.Samples...)
	crossed.Samples = append(crossed.Samples, sample("c1", "cluster2", 5), sample("c2", "cluster1", 6))
	if err := crossed.Phases()[0].Crossed(streams, []string{"cluster1", "cluster2"}); err != nil {
		t.Errorf("crossed traffic: %v", err)
	}
	if err := p.Crossed(nil, []string{"cluster1"}); err == nil {
		t.Error("no stream judged as crossed")
	}
}

// Traffic that stays in the clusters named passes; one answer from
// another cluster, or a stream with no answer, fails.
func TestStayedIn(t *testing.T) {
	t0 := time.Now()
	streams := []Stream{{Name: "c1", From: "cluster1", Base: "x"}, {Name: "c2", From: "cluster2", Base: "y"}}
	sample := func(stream, by string, i int) Sample {
		return Sample{Stream: stream, At: t0.Add(time.Duration(i) * time.Millisecond), ServedBy: by, Claimed: by}
	}
	rec := Record{Streams: streams, Start: t0, End: t0.Add(time.Second), Marks: []Mark{{Name: "p", At: t0}},
		Samples: []Sample{sample("c1", "cluster1", 1), sample("c2", "cluster1", 2)}}
	if err := rec.Phases()[0].StayedIn(streams, []string{"cluster1"}); err != nil {
		t.Errorf("traffic kept in cluster1: %v", err)
	}
	leaked := rec
	leaked.Samples = append(rec.Samples[:0:0], rec.Samples...)
	leaked.Samples = append(leaked.Samples, sample("c2", "cluster2", 3))
	if err := leaked.Phases()[0].StayedIn(streams, []string{"cluster1"}); err == nil || !strings.Contains(err.Error(), "stream c2 got 1 answers from cluster2") {
		t.Errorf("an answer from cluster2: %v", err)
	}
	silent := rec
	silent.Samples = rec.Samples[:1]
	if err := silent.Phases()[0].StayedIn(streams, []string{"cluster1"}); err == nil || !strings.Contains(err.Error(), "stream c2 got no answer") {
		t.Errorf("a stream with no answer: %v", err)
	}
	if err := rec.Phases()[0].StayedIn(streams, nil); err == nil {
		t.Error("judged against no cluster")
	}
}

// A transition is judged against its budget, and never on no calls.
func TestBudgetWithin(t *testing.T) {
	b := Budget{MaxTime: 10e9, MaxFailed: 0}
	if err := b.Within("failover", Transition{Reached: true, Elapsed: 2e9, Asked: 40}); err != nil {
		t.Fatal(err)
	}
	wantErrContaining(t, b.Within("failover", Transition{Reached: true, Elapsed: 2e9, Asked: 40, Failed: 3}), "3 of 40 calls failed, budget 0")
	wantErrContaining(t, b.Within("failover", Transition{Reached: true, Elapsed: 11e9, Asked: 40}), "took 11s, budget 10s")
	wantErrContaining(t, b.Within("failover", Transition{Elapsed: 90e9, Asked: 400, Last: map[string]int{"cluster1": 5}}), "not reached within 1m30s")
	wantErrContaining(t, b.Within("failover", Transition{Reached: true}), "no calls were made")
	// A load that never started says why (no frontend address in that cluster).
	wantErrContaining(t, b.Within("failover", Transition{NotStarted: `stream "cluster2" has no name or no frontend address`}), "no calls were made while it happened: stream")
}

func wantErrContaining(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("want an error with %q, got %v", want, err)
	}
}

// transitionRecord makes one request of stream "s" every 50 ms, each 10 ms
// long, from the outcomes: "cN" answered by cN (placed and claimed), "x"
// failed, "cN/cM" placed in cN's pod CIDR but claiming cM. They are
// recorded out of order, as a load records them when they end.
func transitionRecord(outcomes ...string) Record {
	r := Record{Streams: []Stream{{Name: "s", From: "c1", Base: "http://a"}}, Start: t0, Rate: 20,
		Marks: []Mark{{Name: "transition", At: t0}}, End: t0.Add(time.Duration(len(outcomes))*50*time.Millisecond + time.Second)}
	for i, o := range outcomes {
		s := Sample{Stream: "s", At: t0.Add(time.Duration(i) * 50 * time.Millisecond), Latency: 10 * time.Millisecond}
		switch by, claimed, cut := strings.Cut(o, "/"); {
		case o == "x":
			s.Err = "no healthy upstream"
		case cut:
			s.ServedBy, s.Claimed = by, claimed
		default:
			s.ServedBy, s.Claimed = o, o
		}
		r.Samples = append([]Sample{s}, r.Samples...)
	}
	// Another stream's answers never count.
	r.Samples = append(r.Samples, Sample{Stream: "other", At: t0, ServedBy: "c2", Claimed: "c2"})
	return r
}

func repeat(o string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = o
	}
	return out
}

// Reached after failures and answers from elsewhere: timed to the end of
// the fifth consecutive answer in c2, every request up to the end of the
// window asked, the failures before it counted.
func TestTransitionReachedAfterFailures(t *testing.T) {
	outcomes := append([]string{"c1", "x", "x", "c2", "c2", "c1", "c2", "x"}, repeat("c2", settle+10)...)
	tr := transitionRecord(outcomes...).TransitionTo("s", "c2", 10)
	// The run is requests 8 to 12: the last starts at 600 ms, ends at 610.
	want := Transition{Reached: true, Elapsed: 610 * time.Millisecond, Asked: 8 + settle + 10, Failed: 3, Errors: map[string]int{"no healthy upstream": 3}, Window: 10, Last: map[string]int{"c2": settle}}
	if !reflect.DeepEqual(tr, want) {
		t.Errorf("got %+v, want %+v", tr, want)
	}
	if err := (Budget{MaxTime: time.Second, MaxFailed: 3}).Within("failover", tr); err != nil {
		t.Errorf("within budget: %v", err)
	}
	// Over budget, the failures say what they were.
	wantErrContaining(t, Budget{MaxTime: time.Second}.Within("failover", tr), `3 of 23 calls failed, budget 0: "no healthy upstream" ×3`)
	// The window still running: fewer of its requests seen, the rest not
	// asked yet.
	tr = transitionRecord(outcomes[:len(outcomes)-4]...).TransitionTo("s", "c2", 10)
	if !tr.Reached || tr.Window != 6 || tr.Asked != 8+settle+6 {
		t.Errorf("window under way: %+v", tr)
	}
}

func TestTransitionNeverReached(t *testing.T) {
	r := transitionRecord("c1", "c2", "c2", "c2", "c2", "x", "c2", "c2", "c1", "c1/c2", "x")
	tr := r.TransitionTo("s", "c2", 100)
	// Four in a row are not enough; the last five by the cluster claimed
	// (c1's CIDR claiming c2 counts as c2 there).
	want := Transition{Elapsed: r.End.Sub(r.Start), Asked: 11, Failed: 2, Errors: map[string]int{"no healthy upstream": 2}, Last: map[string]int{"c2": 3, "c1": 1, lastFailed: 1}}
	if !reflect.DeepEqual(tr, want) {
		t.Errorf("got %+v, want %+v", tr, want)
	}
	wantErrContaining(t, Budget{MaxTime: time.Minute}.Within("failover", tr), "not reached within 1.55s")
}

// Failures in the window count against the budget; answers from elsewhere
// are strays, reported but not judged; requests after the window are not
// counted at all.
func TestTransitionWindowCounts(t *testing.T) {
	window := []string{"c2", "x", "c1", "c2", "c3/c2", "x", "c2", "c2"}
	outcomes := append(append(repeat("c2", settle), window...), "x", "c1")
	tr := transitionRecord(outcomes...).TransitionTo("s", "c2", len(window))
	if !tr.Reached || tr.Failed != 2 || tr.Strays != 2 || tr.Window != len(window) || tr.Asked != settle+len(window) {
		t.Errorf("got %+v: want reached, 2 failed, 2 strays, the window of %d whole, %d asked", tr, len(window), settle+len(window))
	}
	wantErrContaining(t, Budget{MaxTime: time.Minute, MaxFailed: 0}.Within("failover", tr), "2 of 13 calls failed")
}

// An answer from want's pod CIDR whose backend names another cluster is
// not proven: it breaks the run like an answer from elsewhere.
func TestTransitionNeedsTheClaimToo(t *testing.T) {
	tr := transitionRecord("c2", "c2", "c2", "c2", "c2/c1", "c2").TransitionTo("s", "c2", 0)
	if tr.Reached {
		t.Errorf("reached on an answer claiming another cluster: %+v", tr)
	}
	tr = transitionRecord("c2", "c2", "c2", "c2", "c1/c2", "c2").TransitionTo("s", "c2", 0)
	if tr.Reached {
		t.Errorf("reached on an answer from another cluster's CIDR: %+v", tr)
	}
}

// No request is no transition: Within refuses it.
func TestTransitionOfNothing(t *testing.T) {
	r := transitionRecord()
	tr := r.TransitionTo("s", "c2", 100)
	if tr.Reached || tr.Asked != 0 {
		t.Errorf("empty record: %+v", tr)
	}
	wantErrContaining(t, Budget{MaxTime: time.Minute}.Within("failover", tr), "no calls were made")
	if tr := transitionRecord("c2", "c2", "c2", "c2", "c2").TransitionTo("nobody", "c2", 0); tr.Asked != 0 {
		t.Errorf("a stream without requests: %+v", tr)
	}
}
