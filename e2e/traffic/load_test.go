package traffic

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/fixtures/apps/meshapp/api"
)

// The load stops by itself at its request bound, and places each answer by
// its peer address.
func TestLoadStopsAtItsBound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Response{Frontend: api.Identity{Pod: "fe", ProxyVersion: "1.27.0"},
			Results: []api.Result{{Identity: api.Identity{Cluster: "c2", Pod: "be", ProxyVersion: "1.27.0"}, PeerAddr: "10.2.0.5:7070"}}})
	}))
	defer srv.Close()
	pl := checks.NewPlacement(map[string]netip.Prefix{"c1": netip.MustParsePrefix("10.1.0.0/16"), "c2": netip.MustParsePrefix("10.2.0.0/16")})
	cfg := Config{Rate: 100, MaxDuration: time.Minute, MaxRequests: 20, Placement: pl}
	l, err := Start(context.Background(), cfg, []Stream{{Name: "s", From: "c1", Base: srv.URL}}, "before")
	if err != nil {
		t.Fatal(err)
	}
	// The placement is shared: pods added to it while the load places its
	// answers (as verify's checks do, under their own lock) race with
	// nothing the load reads (go test -race).
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; l.Running() && time.Now().Before(deadline); i++ {
		pl.Add(checks.Pod{Cluster: "c2", Name: "be", IP: netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})})
		time.Sleep(20 * time.Millisecond)
	}
	if l.Running() {
		t.Fatal("load did not stop at its request bound")
	}
	rec := l.Stop()
	if len(rec.Samples) != 20 {
		t.Fatalf("%d samples, want 20", len(rec.Samples))
	}
	for _, s := range rec.Samples {
		if !s.OK() || s.ServedBy != "c2" || s.CallerProxy != "1.27.0" {
			t.Fatalf("sample %+v", s)
		}
	}
}

// A frontend that cannot be reached makes failed requests, not none.
func TestLoadCountsUnreachableFrontend(t *testing.T) {
	cfg := Config{Rate: 50, MaxDuration: 5 * time.Second, MaxRequests: 5,
		Placement: checks.NewPlacement(map[string]netip.Prefix{"c1": netip.MustParsePrefix("10.1.0.0/16")})}
	l, err := Start(context.Background(), cfg, []Stream{{Name: "s", From: "c1", Base: "http://127.0.0.1:1"}}, "before")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	rec := l.Stop()
	p := rec.Phases()[0]
	if p.Requests != 5 || p.Failed != 5 {
		t.Errorf("%d requests, %d failed; want 5 and 5", p.Requests, p.Failed)
	}
}

// On clusters without pod ranges an answer from a pod not yet listed is
// not placed when it comes; once the pod is listed, the record places it
// (a failback's new backends).
func TestLoadPlacesLateListedPods(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Response{Frontend: api.Identity{Pod: "fe"},
			Results: []api.Result{{Identity: api.Identity{Cluster: "eks", Pod: "be-new"}, PeerAddr: "172.31.9.9:7070"}}})
	}))
	defer srv.Close()
	pl := checks.NewPlacement(map[string]netip.Prefix{"eks": {}})
	l, err := Start(context.Background(), Config{Rate: 100, MaxDuration: time.Minute, MaxRequests: 5, Placement: pl}, []Stream{{Name: "s", From: "eks", Base: srv.URL}}, "failback")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); l.Running() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if s := l.Snapshot().Samples[0]; s.ServedBy != "" || s.Peer != netip.MustParseAddr("172.31.9.9") {
		t.Fatalf("placed before its pod was listed: %+v", s)
	}
	pl.Add(checks.Pod{Cluster: "eks", Name: "be-new", IP: netip.MustParseAddr("172.31.9.9")})
	for _, s := range l.Stop().Samples {
		if s.ServedBy != "eks" {
			t.Fatalf("not placed once listed: %+v", s)
		}
	}
}
