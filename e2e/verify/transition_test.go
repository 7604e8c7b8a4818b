package verify

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/fixtures/apps/meshapp/api"
)

// transitionMesh is a mesh of cluster1 and cluster2 whose cluster1
// frontend answers its first local requests from cluster1, then every one
// from cluster2 (a failover).
func transitionMesh(t *testing.T, local int) *Mesh {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cl, peer := "cluster2", "10.2.0.5:7070"
		if n.Add(1) <= int64(local) {
			cl, peer = "cluster1", "10.1.0.5:7070"
		}
		_ = json.NewEncoder(w).Encode(api.Response{Results: []api.Result{{Identity: api.Identity{Cluster: cl, Pod: "be"}, PeerAddr: peer}}})
	}))
	t.Cleanup(srv.Close)
	cl := func(name, cidr string) *clusters.Cluster {
		return &clusters.Cluster{Cluster: topology.Cluster{Name: name, PodSubnet: netip.MustParsePrefix(cidr)}}
	}
	return &Mesh{Model: mesh.Model{Clusters: []*clusters.Cluster{cl("cluster1", "10.1.0.0/16"), cl("cluster2", "10.2.0.0/16")}},
		Frontends: map[string]string{"cluster1": srv.URL}}
}

// The transition ends once the new steady state is seen and the window
// after it recorded, and counts everything up to there.
func TestTransitionRecordsTheWindow(t *testing.T) {
	t.Parallel()
	tr := transitionMesh(t, 10).Transition(context.Background(), "cluster1", "cluster2", 20*time.Second)
	// The fake frontend switches by arrival, the record orders by start:
	// on a loaded machine two requests may arrive out of their start order,
	// which moves the switch a request or two later (never earlier).
	want := 10 + 5 + AfterWindow
	if !tr.Reached || tr.Window != AfterWindow || tr.Asked < want || tr.Asked > want+2 || tr.Failed != 0 || tr.Strays != 0 {
		t.Errorf("got %+v: want reached, the window of %d whole, %d asked (or up to 2 more), none failed", tr, AfterWindow, want)
	}
	if tr.Elapsed > 5*time.Second {
		t.Errorf("elapsed %s for 15 requests at %d/s", tr.Elapsed, transitionRate)
	}
}

// Never reached: it gives up at its timeout, every request asked.
func TestTransitionGivesUpAtItsTimeout(t *testing.T) {
	t.Parallel()
	start := time.Now()
	tr := transitionMesh(t, 1<<30).Transition(context.Background(), "cluster1", "cluster2", time.Second)
	if tr.Reached || tr.Asked < 10 || tr.Elapsed < time.Second || time.Since(start) > 5*time.Second {
		t.Errorf("got %+v after %s: want not reached, about a second of requests", tr, time.Since(start))
	}
	if err := FailoverBudget.Within("failover", tr); err == nil {
		t.Error("a transition never reached passed")
	}
}

// No frontend in the caller's cluster: no request, which no budget passes.
func TestTransitionWithoutFrontend(t *testing.T) {
	tr := transitionMesh(t, 0).Transition(context.Background(), "cluster2", "cluster2", time.Second)
	if err := FailoverBudget.Within("failover", tr); err == nil {
		t.Errorf("a transition without requests passed: %+v", tr)
	}
}
