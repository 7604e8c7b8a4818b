package traffic

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var testStreams = []Stream{
	{Name: "c1→any", From: "c1", Base: "http://a"},
	{Name: "c1→c2", From: "c1", Base: "http://a", Only: "c2"},
}

// healthy makes 10 s of answers, 5/s per stream, 10 ms each, served by c2
// on version v (callers on v too).
func healthy(v string) []Sample {
	var out []Sample
	for i := 0; i < 50; i++ {
		for _, st := range testStreams {
			out = append(out, Sample{Stream: st.Name, At: t0.Add(time.Duration(i) * 200 * time.Millisecond), Latency: 10 * time.Millisecond,
				ServedBy: "c2", Claimed: "c2", CallerProxy: v, ServerProxy: v})
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
	if len(ps) != 1 || ps[0].Requests != 100 {
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
		"backend claims a cluster the network disproves": func(s []Sample) []Sample {
			s[0].Claimed = "c1"
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
}

func TestInPlaceBudgetMeasuresFailures(t *testing.T) {
	s := healthy("1.27.0")
	s[10].Err = "rpc error"
	p := record(s).Phases()[0]
	inPlace := canary
	inPlace.MaxFailed, inPlace.MaxGap = -1, 0
	if err := inPlace.Judge(p, p, testStreams); err != nil {
		t.Errorf("in-place budget judged failures: %v", err)
	}
	if p.Failed != 1 || p.Errors["rpc error"] != 1 {
		t.Errorf("failure not counted: %+v", p)
	}
}

func TestPhasesSplitAtMarks(t *testing.T) {
	r := record(healthy("1.27.0"), Mark{Name: "a", At: t0}, Mark{Name: "b", At: t0.Add(4 * time.Second)})
	ps := r.Phases()
	if len(ps) != 2 || ps[0].Requests != 40 || ps[1].Requests != 60 {
		t.Fatalf("split: %d phases, %d + %d requests", len(ps), ps[0].Requests, ps[1].Requests)
	}
}

func TestLongestGap(t *testing.T) {
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	if g := longestGap(nil, t0, at(5)); g != 5*time.Second {
		t.Errorf("no answers: %s", g)
	}
	if g := longestGap([]time.Time{at(1), at(1.5), at(4)}, t0, at(5)); g != 2500*time.Millisecond {
		t.Errorf("gap %s, want 2.5s", g)
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
	if err := (Config{Rate: 5, MaxDuration: time.Minute, MaxRequests: 10}).Validate(testStreams); err == nil {
		t.Error("no pod CIDRs accepted")
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
	if len(secs) != 10 || secs[0].Requests != 10 {
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
