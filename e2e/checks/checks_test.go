package checks

import (
	"math"
	"strings"
	"testing"

	"github.com/meshconform/meshconform/fixtures/apps/meshapp/api"
)

func results(spec map[string]int, mk func(k string) Result) []Result {
	var rs []Result
	for _, k := range sortedKeys(spec) {
		for i := 0; i < spec[k]; i++ {
			rs = append(rs, mk(k))
		}
	}
	return rs
}

func byVersion(spec map[string]int) Response {
	return Response{Results: results(spec, func(v string) Result { return Result{Identity: api.Identity{Version: v, Cluster: "cluster2"}} })}
}

func TestZForMatchesTables(t *testing.T) {
	for alpha, want := range map[float64]float64{0.05: 1.95996, 0.001: 3.29053} {
		if got := zFor(alpha); math.Abs(got-want) > 1e-4 {
			t.Errorf("z(%g) = %g, want %g", alpha, got, want)
		}
	}
}

func TestSplitAcceptsChanceAndRejectsBias(t *testing.T) {
	w := map[string]float64{"v1": 0.8, "v2": 0.2}
	// 500 calls at 80/20: sd of the v2 count is sqrt(500*0.16)=8.94; at
	// α=0.001 the interval is 100 ± 29.4.
	if err := Split(w, 0.001)(byVersion(map[string]int{"v1": 385, "v2": 115})); err != nil {
		t.Errorf("115/500 rejected: %v", err)
	}
	if err := Split(w, 0.001)(byVersion(map[string]int{"v1": 360, "v2": 140})); err == nil {
		t.Error("140/500 accepted")
	} else if !strings.Contains(err.Error(), "v2: 140 of 500 (expected 100 ± 29.4") {
		t.Errorf("message: %v", err)
	}
	if err := Split(w, 0.001)(byVersion(map[string]int{"v1": 400, "v2": 90, "v3": 10})); err == nil || !strings.Contains(err.Error(), `unexpected version "v3"`) {
		t.Errorf("v3 not flagged: %v", err)
	}
	if got := SplitTolerance(500, 0.2, 0.001); math.Abs(got-29.43) > 0.01 {
		t.Errorf("tolerance %g", got)
	}
}

func TestClusterChecksShowCounts(t *testing.T) {
	r := Response{Results: results(map[string]int{"cluster1": 10}, func(c string) Result { return Result{Identity: api.Identity{Cluster: c}} })}
	err := ReachedClusters("cluster1", "cluster2")(r)
	if err == nil || err.Error() != "did not reach all of [cluster1 cluster2], got map[cluster1:10]" {
		t.Errorf("got %v", err)
	}
	if err := OnlyClusters("cluster1")(r); err != nil {
		t.Error(err)
	}
	if err := OnlyClusters("cluster2")(r); err == nil {
		t.Error("cluster1 answers accepted as cluster2's")
	}
}

func TestNoFailuresAndIdentities(t *testing.T) {
	r := Response{Results: []Result{{Identity: api.Identity{Cluster: "c"}, PeerIdentity: "spiffe://cluster.local/ns/production/sa/default", CallerIdentity: "spiffe://cluster.local/ns/production/sa/default"}, {Error: "rpc error: code = Unavailable"}}}
	if err := NoFailures()(r); err == nil || !strings.Contains(err.Error(), "1 of 2 calls failed") {
		t.Errorf("got %v", err)
	}
	if err := PeerIdentities("cluster.local")(Response{Results: r.Results[:1]}); err != nil {
		t.Error(err)
	}
	if err := PeerIdentities("cluster.local")(r); err == nil {
		t.Error("a call without identities passed")
	}
	if err := And(NoFailures(), OnlyVersion("v1"))(r); err == nil || !strings.Contains(err.Error(), "calls failed") || !strings.Contains(err.Error(), "version v1") {
		t.Errorf("And lost an error: %v", err)
	}
}
