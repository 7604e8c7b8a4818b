package istiodmetrics

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/meshconform/meshconform/e2e/checks"
)

// exposition is istiod 1.29's /metrics as it reads for a primary with one
// remote, cut to the families judged (the convergence buckets are Istio's).
func exposition(state string, timeouts, rejects, cds, syncz int, conv [9]int) string {
	var b strings.Builder
	b.WriteString("# HELP istiod_remote_cluster_sync_status Current synchronization state of remote clusters managed by istiod.\n# TYPE istiod_remote_cluster_sync_status gauge\n")
	for _, s := range []string{"closed", "synced", "syncing", "timeout"} {
		v := 0
		if s == state {
			v = 1
		}
		fmt.Fprintf(&b, "istiod_remote_cluster_sync_status{cluster=\"west-1\",cluster_type=\"remote\",status=%q} %d\n", s, v)
	}
	if timeouts > 0 {
		fmt.Fprintf(&b, "# TYPE remote_cluster_sync_timeouts_total counter\nremote_cluster_sync_timeouts_total %d\n", timeouts)
	}
	if rejects > 0 {
		fmt.Fprintf(&b, "# TYPE pilot_total_xds_rejects counter\npilot_total_xds_rejects{type=\"type.googleapis.com/envoy.config.listener.v3.Listener\"} %d\n", rejects)
	}
	fmt.Fprintf(&b, "# TYPE pilot_xds_pushes counter\npilot_xds_pushes{type=\"cds\"} %d\npilot_xds_pushes{type=\"eds\"} 80\npilot_xds_pushes{type=\"istio.io/debug/syncz\"} %d\n", cds, syncz)
	b.WriteString("# TYPE pilot_proxy_convergence_time histogram\n")
	for i, le := range []string{"0.1", "0.5", "1", "3", "5", "10", "20", "30", "+Inf"} {
		fmt.Fprintf(&b, "pilot_proxy_convergence_time_bucket{le=%q} %d\n", le, conv[i])
	}
	fmt.Fprintf(&b, "pilot_proxy_convergence_time_sum 2.2\npilot_proxy_convergence_time_count %d\n", conv[8])
	return b.String()
}

func reading(t *testing.T, at time.Time, text string) Reading {
	t.Helper()
	r, err := Parse("istiod-abc", at, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var t0 = time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)

func TestParseReadsWhatIsJudged(t *testing.T) {
	r := reading(t, t0, exposition("synced", 2, 1, 136, 40, [9]int{300, 360, 365, 365, 365, 365, 365, 365, 365}))
	if r.RemoteSync["west-1"] != "synced" || len(r.RemoteSync) != 1 {
		t.Errorf("RemoteSync = %v", r.RemoteSync)
	}
	// Debug requests are no push to a proxy.
	if r.Counters[XDSPushes] != 216 || r.Counters[RemoteSyncTimeouts] != 2 || r.Counters[XDSRejects] != 1 {
		t.Errorf("Counters = %v", r.Counters)
	}
	if r.Convergence == nil || r.Convergence.Count != 365 || len(r.Convergence.Bounds) != 9 || !math.IsInf(r.Convergence.Bounds[8], 1) {
		t.Errorf("Convergence = %+v", r.Convergence)
	}
	// As read through exec, trimmed of its last newline: the same reading.
	trimmed := reading(t, t0, strings.TrimSpace(exposition("synced", 2, 1, 136, 40, [9]int{300, 360, 365, 365, 365, 365, 365, 365, 365})))
	if trimmed.Convergence == nil || trimmed.Convergence.Count != 365 || trimmed.RemoteSync["west-1"] != "synced" {
		t.Errorf("a trimmed exposition read as %+v", trimmed)
	}
	// istiod 1.26 exports no sync gauge: nil, not "every remote synced".
	old := reading(t, t0, "# TYPE pilot_xds_pushes counter\npilot_xds_pushes{type=\"cds\"} 1\n")
	if old.RemoteSync != nil {
		t.Errorf("a missing gauge read as %v", old.RemoteSync)
	}
	if _, err := Parse("x", t0, []byte("not metrics {{{")); err == nil {
		t.Error("garbage parsed")
	}
}

// The sync judge: a correct mesh (every remote synced in clusterz, the
// gauge agreeing) passes; each way it can be out of sync fails, naming the
// remote. istio/istio#60082's stale timeout passes with a note only on the
// versions that have it; a gauge not exported leaves clusterz to judge.
func TestSync(t *testing.T) {
	ok := reading(t, t0, exposition("synced", 0, 0, 1, 0, [9]int{}))
	synced := []checks.RemoteCluster{{ID: "west-1", SyncStatus: "synced"}}
	if note, err := Sync(ok, synced, []string{"west-1"}, "1.30.0"); err != nil || note != "" {
		t.Errorf("a synced remote: %q, %v", note, err)
	}
	stale := reading(t, t0, exposition("timeout", 0, 0, 1, 0, [9]int{}))
	if note, err := Sync(stale, synced, []string{"west-1"}, "1.29.2"); err != nil || !strings.Contains(note, "istio/istio#60082") {
		t.Errorf("istio/istio#60082 on 1.29.2: %q, %v", note, err)
	}
	if note, err := Sync(Reading{Pod: "istiod-old"}, synced, []string{"west-1"}, "1.27.0"); err != nil || !strings.Contains(note, "judged by debug/clusterz alone") {
		t.Errorf("no gauge: %q, %v", note, err)
	}
	timedOut := []checks.RemoteCluster{{ID: "west-1", SyncStatus: "timeout"}}
	for name, c := range map[string]struct {
		r        Reading
		clusterz []checks.RemoteCluster
		remotes  []string
		version  string
		want     string
	}{
		"timed out, both say so":         {reading(t, t0, exposition("timeout", 1, 0, 1, 0, [9]int{})), timedOut, []string{"west-1"}, "1.29.2", `remote west-1 is "timeout" in debug/clusterz`},
		"stale timeout once fixed":       {stale, synced, []string{"west-1"}, "1.30.0", `says "timeout", debug/clusterz "synced"`},
		"gauge syncing, clusterz synced": {reading(t, t0, exposition("syncing", 0, 0, 1, 0, [9]int{})), synced, []string{"west-1"}, "1.29.2", `says "syncing", debug/clusterz "synced"`},
		"remote deleted":                 {reading(t, t0, exposition("none", 0, 0, 1, 0, [9]int{})), synced, []string{"west-1"}, "1.29.2", "no sync state"},
		"not in clusterz":                {ok, nil, []string{"west-1"}, "1.29.2", "not in debug/clusterz"},
		"no gauge, clusterz behind":      {Reading{Pod: "istiod-old"}, timedOut, []string{"west-1"}, "1.27.0", `is "timeout" in debug/clusterz`},
		"another remote missing":         {ok, synced, []string{"west-1", "south-1"}, "1.29.2", "remote south-1 is not in debug/clusterz"},
		"no remote to judge":             {ok, synced, nil, "1.29.2", "no remote to judge"},
	} {
		_, err := Sync(c.r, c.clusterz, c.remotes, c.version)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
}

// The window judge: pushes went out, nothing rejected, no sync timed out,
// convergence within budget passes; each breach fails; a restart between
// readings is no figure.
func TestWindowJudge(t *testing.T) {
	budget := Budget{ConvergenceP99: time.Second}
	before := reading(t, t0, exposition("synced", 0, 0, 100, 5, [9]int{300, 360, 365, 365, 365, 365, 365, 365, 365}))
	// 20 more pushes, all converged in ≤ 0.1 s but one in ≤ 0.5 s.
	after := reading(t, t0.Add(time.Minute), exposition("synced", 0, 0, 120, 50, [9]int{319, 380, 385, 385, 385, 385, 385, 385, 385}))
	w, err := Between(before, after)
	if err != nil {
		t.Fatal(err)
	}
	if w.Pushes != 20 || w.Converged != 20 || w.ConvergenceP99 != 0.5 || w.Rejects != 0 || w.SyncTimeouts != 0 {
		t.Errorf("window = %+v", w)
	}
	if err := budget.Judge(w); err != nil {
		t.Errorf("a healthy window: %v", err)
	}

	slow := reading(t, t0.Add(time.Minute), exposition("synced", 0, 0, 120, 5, [9]int{310, 360, 365, 366, 366, 385, 385, 385, 385}))
	rejected := reading(t, t0.Add(time.Minute), exposition("synced", 0, 3, 120, 5, [9]int{320, 380, 385, 385, 385, 385, 385, 385, 385}))
	timedOut := reading(t, t0.Add(time.Minute), exposition("synced", 1, 0, 120, 5, [9]int{320, 380, 385, 385, 385, 385, 385, 385, 385}))
	idle := reading(t, t0.Add(time.Minute), exposition("synced", 0, 0, 100, 90, [9]int{300, 360, 365, 365, 365, 365, 365, 365, 365}))
	for name, c := range map[string]struct {
		later Reading
		want  string
	}{
		"slow convergence": {slow, "p99 ≤ 10s over 20 pushes, budget 1s"},
		"rejects":          {rejected, "pilot_total_xds_rejects rose by 3"},
		"sync timeout":     {timedOut, "remote_cluster_sync_timeouts_total rose by 1"},
		// Debug reads alone are no push.
		"no push": {idle, "pushed nothing"},
	} {
		w, err := Between(before, c.later)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := budget.Judge(w); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
	// Pushes with no configuration change (proxies connecting) converge
	// nothing: the window passes, and the run as a whole must observe
	// convergence somewhere.
	quiet := reading(t, t0.Add(time.Minute), exposition("synced", 0, 0, 120, 5, [9]int{300, 360, 365, 365, 365, 365, 365, 365, 365}))
	if w, err := Between(before, quiet); err != nil || w.Converged != 0 || budget.Judge(w) != nil {
		t.Errorf("pushes without convergence: %+v %v %v", w, err, budget.Judge(w))
	}
	// A fault that expects timeouts says so.
	w, _ = Between(before, timedOut)
	if err := (Budget{SyncTimeouts: 1, ConvergenceP99: time.Second}).Judge(w); err != nil {
		t.Errorf("an expected timeout: %v", err)
	}
	restarted := reading(t, t0.Add(time.Minute), exposition("synced", 0, 0, 3, 0, [9]int{3, 3, 3, 3, 3, 3, 3, 3, 3}))
	if _, err := Between(before, restarted); err == nil || !strings.Contains(err.Error(), "restarted") {
		t.Errorf("a restart between readings: %v", err)
	}
	other := after
	other.Pod = "istiod-def"
	if _, err := Between(before, other); err == nil {
		t.Error("readings of two replicas compared")
	}
}

func TestQuantile(t *testing.T) {
	h := &Histogram{Bounds: []float64{0.1, 1, math.Inf(1)}, Counts: []uint64{98, 99, 100}, Count: 100}
	if q, _ := h.Quantile(0.99); q != 1 {
		t.Errorf("p99 = %v, want 1 (the 99th of 100 is in the ≤1 bucket)", q)
	}
	if q, _ := h.Quantile(0.5); q != 0.1 {
		t.Errorf("p50 = %v", q)
	}
	past := &Histogram{Bounds: []float64{0.1, math.Inf(1)}, Counts: []uint64{1, 10}, Count: 10}
	if q, _ := past.Quantile(0.99); !math.IsInf(q, 1) {
		t.Errorf("p99 past the last bucket = %v", q)
	}
	if _, err := (&Histogram{}).Quantile(0.99); err == nil {
		t.Error("a quantile of nothing")
	}
}

// The gauge missing is a failure on a version that exports it (past its
// first ticks), and #60082 excuses a stuck timeout only when istiod
// counted no sync timeout: a real one stays a failure.
func TestSyncHoldsVersionsToTheGauge(t *testing.T) {
	synced := []checks.RemoteCluster{{ID: "west-1", SyncStatus: "synced"}}
	old := Reading{Pod: "istiod-a", At: t0, Started: t0.Add(-time.Minute), Counters: map[string]float64{}}
	if _, err := Sync(old, synced, []string{"west-1"}, "1.29.2"); err == nil || !strings.Contains(err.Error(), "exports no istiod_remote_cluster_sync_status, though Istio 1.29.2 does") {
		t.Errorf("1.29.2 without the gauge: %v", err)
	}
	young := old
	young.Started = t0.Add(-5 * time.Second)
	if note, err := Sync(young, synced, []string{"west-1"}, "1.29.2"); err != nil || !strings.Contains(note, "not exported yet") {
		t.Errorf("a 5 s old istiod without the gauge: %q, %v", note, err)
	}
	counted := reading(t, t0, exposition("timeout", 1, 0, 1, 0, [9]int{}))
	if _, err := Sync(counted, synced, []string{"west-1"}, "1.29.2"); err == nil || !strings.Contains(err.Error(), `says "timeout", debug/clusterz "synced"`) {
		t.Errorf("a counted timeout excused as #60082: %v", err)
	}
	for v, want := range map[string]bool{"1.26.0": false, "1.28.3": false, "1.29.0": true, "1.30.1": true, "2.0.0": true, "master": true} {
		if GaugeExported(v) != want {
			t.Errorf("GaugeExported(%s) = %v", v, !want)
		}
	}
}

func lifeReading(at time.Duration, started time.Time, timeouts, rejects, pushes float64) Reading {
	return Reading{Pod: "istiod-a", At: t0.Add(at), Started: started,
		Counters:    map[string]float64{RemoteSyncTimeouts: timeouts, XDSRejects: rejects, XDSPushes: pushes},
		Convergence: &Histogram{Bounds: []float64{0.1, math.Inf(1)}, Counts: []uint64{uint64(pushes), uint64(pushes)}, Count: uint64(pushes)}}
}

// A replica's life: a restart between any two readings fails it, even when
// every counter grew past it by the last reading; a replica started
// during the run answers for what it counted before its first reading; a
// short life judges rejects and timeouts but not pushes.
func TestLife(t *testing.T) {
	budget := Budget{ConvergenceP99: time.Second}
	before := t0.Add(-time.Hour)
	steady := []Reading{lifeReading(0, before, 0, 0, 10), lifeReading(30*time.Second, before, 0, 0, 20), lifeReading(90*time.Second, before, 0, 0, 40)}
	w, err := Life(steady, t0.Add(-time.Minute))
	if err != nil || w.Pushes != 30 || w.Readings != 3 || w.StartedInRun {
		t.Fatalf("a steady life: %+v, %v", w, err)
	}
	if err := budget.Judge(w); err != nil {
		t.Errorf("a steady life judged: %v", err)
	}
	restarted := []Reading{lifeReading(0, before, 0, 0, 10), lifeReading(30*time.Second, t0.Add(20*time.Second), 0, 0, 2), lifeReading(90*time.Second, t0.Add(20*time.Second), 0, 0, 40)}
	if _, err := Life(restarted, t0.Add(-time.Minute)); err == nil || !strings.Contains(err.Error(), "restarted between") {
		t.Errorf("a restart hidden by later growth: %v", err)
	}
	// Started by the run, it timed out a remote's sync before its first
	// reading, while it was not Ready yet.
	born := t0.Add(-10 * time.Second)
	young := []Reading{lifeReading(0, born, 1, 0, 10), lifeReading(90*time.Second, born, 1, 0, 40)}
	w, err = Life(young, t0.Add(-time.Minute))
	if err != nil || !w.StartedInRun || w.SyncTimeouts != 1 {
		t.Fatalf("a replica the run started: %+v, %v", w, err)
	}
	if err := budget.Judge(w); err == nil || !strings.Contains(err.Error(), "remote_cluster_sync_timeouts_total rose by 1") {
		t.Errorf("its startup timeout: %v", err)
	}
	short := []Reading{lifeReading(0, before, 0, 0, 10), lifeReading(20*time.Second, before, 0, 2, 10)}
	w, _ = Life(short, t0.Add(-time.Minute))
	if err := budget.Judge(w); err == nil || !strings.Contains(err.Error(), "rejects rose by 2") || strings.Contains(err.Error(), "pushed nothing") {
		t.Errorf("a short life with rejects: %v", err)
	}
	if _, err := Life(nil, t0); err == nil {
		t.Error("no reading made a window")
	}
	one, err := Life(young[:1], t0.Add(-time.Minute))
	if err != nil || one.Readings != 1 || one.SyncTimeouts != 1 {
		t.Errorf("one reading of a replica the run started: %+v, %v", one, err)
	}
}

// During a fault, clusterz may list the remote in any state or not at
// all; the gauge must still say what clusterz says.
func TestSyncDuringFault(t *testing.T) {
	remotes := []string{"west-1"}
	timedOut := []checks.RemoteCluster{{ID: "west-1", SyncStatus: "timeout"}}
	if _, err := SyncDuringFault(reading(t, t0, exposition("timeout", 1, 0, 1, 0, [9]int{})), timedOut, remotes, "1.30.0"); err != nil {
		t.Errorf("timed out, both say so: %v", err)
	}
	if _, err := SyncDuringFault(reading(t, t0, exposition("none", 0, 0, 1, 0, [9]int{})), nil, remotes, "1.30.0"); err != nil {
		t.Errorf("the remote dropped, from both: %v", err)
	}
	if _, err := SyncDuringFault(reading(t, t0, exposition("synced", 1, 0, 1, 0, [9]int{})), timedOut, remotes, "1.30.0"); err == nil || !strings.Contains(err.Error(), `says "synced", debug/clusterz "timeout"`) {
		t.Errorf("the gauge synced, clusterz timeout: %v", err)
	}
}
