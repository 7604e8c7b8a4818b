package propagation

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/fixtures/apps/meshapp/api"
)

// A scripted frontend: each poll answers with the next of its script
// (repeating the last), so the watch's reading of a settled run can be
// judged exactly.
type script struct {
	mu    sync.Mutex
	polls map[string][]string // base → the backend cluster of every answer, per poll ("!" fails)
	n     map[string]int
}

func (s *script) call(_ context.Context, base string, n int, _ ...string) (checks.Calls, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := s.polls[base]
	i := min(s.n[base], len(seq)-1)
	s.n[base]++
	if seq[i] == "!" {
		return checks.Calls{}, errors.New("frontend unreachable")
	}
	var c checks.Calls
	c.Asked = n
	for range n {
		c.Results = append(c.Results, checks.Result{Identity: api.Identity{Cluster: seq[i], Pod: "backend-" + seq[i]}})
	}
	return c, nil
}

func watch(s *script) Watch {
	return Watch{Call: s.call, Calls: 3, Settle: 3, Every: time.Millisecond, Acted: func(r checks.Result) bool { return r.Cluster == "west" }}
}

// Every caller must settle on the change, and one lucky poll in between
// is not settling: the time is that of the first poll of the final run.
func TestTimesWaitsForASettledRunOnEveryCaller(t *testing.T) {
	s := &script{n: map[string]int{}, polls: map[string][]string{
		"http://east": {"east", "west", "east", "west", "west", "west"},
		"http://west": {"!", "west"},
	}}
	since := time.Now()
	times, err := watch(s).Times(context.Background(), []Caller{{"east", "http://east"}, {"west", "http://west"}}, since, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(times) != 2 || times["east"] <= 0 || times["west"] <= 0 {
		t.Fatalf("times = %v", times)
	}
	// east settled on polls 4–6 (its lucky poll 2 did not count), west
	// on 2–4: east is the later.
	if s.n["http://east"] != 6 || s.n["http://west"] != 4 {
		t.Errorf("polls = %v", s.n)
	}
	if Slowest(times) != max(times["east"], times["west"]) {
		t.Errorf("Slowest = %v of %v", Slowest(times), times)
	}
}

// A caller that never acts fails the trial, naming what it last saw;
// nothing to watch is an error, not a zero time.
func TestTimesNamesTheCallerThatNeverActs(t *testing.T) {
	s := &script{n: map[string]int{}, polls: map[string][]string{"http://east": {"east"}, "http://west": {"west"}}}
	_, err := watch(s).Times(context.Background(), []Caller{{"east", "http://east"}, {"west", "http://west"}}, time.Now(), 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "caller in east: last saw an answer from backend-east") || strings.Contains(err.Error(), "caller in west") {
		t.Errorf("err = %v", err)
	}
	if _, err := (Watch{}).Times(context.Background(), nil, time.Now(), time.Second); err == nil {
		t.Error("an empty watch timed something")
	}
}

func TestSpreadOf(t *testing.T) {
	s, err := SpreadOf([]time.Duration{300 * time.Millisecond, 100 * time.Millisecond, 2 * time.Second, 200 * time.Millisecond, 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if s.Trials != 5 || s.P50 != 0.3 || s.P99 != 2 || s.Min != 0.1 || s.Max != 2 || len(s.PerTrial) != 5 || s.PerTrial[0] != 0.3 {
		t.Errorf("spread = %+v", s)
	}
	if _, err := SpreadOf(nil); err == nil {
		t.Error("a spread of no trial")
	}
}
