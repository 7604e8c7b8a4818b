package checks

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/meshconform/meshconform/fixtures/apps/meshapp/api"
)

// batch makes a complete batch: spec maps a key to how many answers mk
// builds from it.
func batch(spec map[string]int, mk func(k string, i int) Result) Calls {
	var rs []Result
	for _, k := range sortedKeys(spec) {
		for i := 0; i < spec[k]; i++ {
			rs = append(rs, mk(k, i))
		}
	}
	return Calls{Asked: len(rs), Response: Response{Results: rs}}
}

func byVersion(spec map[string]int) Calls {
	return batch(spec, func(v string, _ int) Result { return Result{Identity: api.Identity{Version: v, Cluster: "cluster2"}} })
}

func byCluster(spec map[string]int) Calls {
	return batch(spec, func(c string, _ int) Result { return Result{Identity: api.Identity{Cluster: c}} })
}

func wantErr(t *testing.T, err error, substrings ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want an error containing %q", substrings)
	}
	for _, s := range substrings {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

// Every judge refuses a verdict on zero answers and on fewer answers than
// calls asked for: the broken mesh (or frontend) that drops calls.
func TestEveryCheckerRejectsMissingAnswers(t *testing.T) {
	pl := NewPlacement(map[string]netip.Prefix{"cluster2": netip.MustParsePrefix("10.20.0.0/16")})
	checkers := map[string]Checker{
		"NoFailures":      NoFailures(),
		"ReachedClusters": ReachedClusters("cluster2"),
		"OnlyClusters":    OnlyClusters("cluster2"),
		"OnlyVersion":     OnlyVersion("v1"),
		"Split":           Split(map[string]float64{"v1": 1}, 0.001),
		"PeerIdentities":  PeerIdentities("a", "b"),
		"ServedFrom":      ServedFrom(pl),
		"And()":           And(),
	}
	one := Result{Identity: api.Identity{Cluster: "cluster2", Version: "v1", Pod: "p"}, PeerIdentity: "a", CallerIdentity: "b", PeerAddr: "10.20.0.5:7070"}
	pl.Add(Pod{Cluster: "cluster2", Name: "p", IP: netip.MustParseAddr("10.20.0.5")})
	for name, c := range checkers {
		t.Run(name, func(t *testing.T) {
			wantErr(t, c(Calls{}), "no calls were asked for")
			wantErr(t, c(Calls{Asked: 10}), "asked for 10 calls, got 0 answers")
			wantErr(t, c(Calls{Asked: 2, Response: Response{Results: []Result{one}}}), "asked for 2 calls, got 1 answers")
			if err := c(Calls{Asked: 1, Response: Response{Results: []Result{one}}}); err != nil {
				t.Errorf("a complete, correct batch rejected: %v", err)
			}
		})
	}
}

func TestClusterChecksShowCounts(t *testing.T) {
	r := byCluster(map[string]int{"cluster1": 10})
	wantErr(t, ReachedClusters("cluster1", "cluster2")(r), "no answer from cluster cluster2", "map[cluster1:10]")
	if err := OnlyClusters("cluster1")(r); err != nil {
		t.Error(err)
	}
	// A locality leak of one call in 1000 is named with its count.
	leak := byCluster(map[string]int{"cluster1": 999, "cluster2": 1})
	wantErr(t, OnlyClusters("cluster1")(leak), "1 from cluster2", "of 1000 calls")
}

func TestFailedCallsAreNeverCountedAsAnswers(t *testing.T) {
	r := byCluster(map[string]int{"cluster1": 5})
	r.Results = append(r.Results, Result{Error: "rpc error: code = Unavailable"})
	r.Asked++
	wantErr(t, NoFailures()(r), "1 of 6 calls failed")
	// The failed call has no cluster: it is not an answer from "".
	if err := OnlyClusters("cluster1")(r); err != nil {
		t.Errorf("failed call counted as a stray cluster: %v", err)
	}
	// All calls failed: no judge of answers passes on none.
	all := Calls{Asked: 2, Response: Response{Results: []Result{{Error: "x"}, {Error: "x"}}}}
	wantErr(t, ReachedClusters("cluster1")(all), "no answer from cluster cluster1")
	for name, c := range map[string]Checker{
		"OnlyClusters":   OnlyClusters("cluster1"),
		"OnlyVersion":    OnlyVersion("v2"),
		"PeerIdentities": PeerIdentities("a", "b"),
		"Split":          Split(map[string]float64{"v1": 1}, 0.001),
		"ServedFrom":     ServedFrom(NewPlacement(nil)),
	} {
		if err := c(all); err == nil || !strings.Contains(err.Error(), "none of 2 calls was answered") {
			t.Errorf("%s on all-failed calls: %v", name, err)
		}
	}
	wantErr(t, ReachedClusters()(r), "no cluster to reach")
	// A route that mixes versions where one is asked for.
	wantErr(t, OnlyVersion("v2")(byVersion(map[string]int{"v1": 3, "v2": 97})), "want every answer from version v2, got map[v1:3 v2:97]")
}

func TestPeerIdentitiesAreExact(t *testing.T) {
	backend := SpiffeID("cluster.local", "production", "backend")
	frontend := SpiffeID("cluster.local", "production", "frontend")
	ok := Result{PeerIdentity: backend, CallerIdentity: frontend}
	mk := func(rs ...Result) Calls { return Calls{Asked: len(rs), Response: Response{Results: rs}} }
	if err := PeerIdentities(backend, frontend)(mk(ok, ok)); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]Result{
		"plaintext (no identities)":         {},
		"ends swapped":                      {PeerIdentity: frontend, CallerIdentity: backend},
		"another service account, same TD":  {PeerIdentity: SpiffeID("cluster.local", "production", "default"), CallerIdentity: frontend},
		"another namespace":                 {PeerIdentity: SpiffeID("cluster.local", "other", "backend"), CallerIdentity: frontend},
		"another trust domain":              {PeerIdentity: SpiffeID("evil.local", "production", "backend"), CallerIdentity: frontend},
		"caller seen without a certificate": {PeerIdentity: backend},
	} {
		t.Run(name, func(t *testing.T) {
			wantErr(t, PeerIdentities(backend, frontend)(mk(ok, bad)), "want backend "+backend)
		})
	}
}

func TestServedFromProvesTheClusterIndependently(t *testing.T) {
	pl := NewPlacement(map[string]netip.Prefix{
		"cluster1": netip.MustParsePrefix("10.10.0.0/16"),
		"cluster2": netip.MustParsePrefix("10.20.0.0/16"),
	})
	pl.Add(Pod{"cluster1", "backend-a", netip.MustParseAddr("10.10.0.7")},
		Pod{"cluster2", "backend-b", netip.MustParseAddr("10.20.0.9")})
	ans := func(cluster, pod, addr string) Calls {
		return Calls{Asked: 1, Response: Response{Results: []Result{{Identity: api.Identity{Cluster: cluster, Pod: pod}, PeerAddr: addr}}}}
	}
	if err := ServedFrom(pl)(ans("cluster2", "backend-b", "10.20.0.9:7070")); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		calls Calls
		want  string
	}{
		"a pod told the wrong cluster":        {ans("cluster2", "backend-a", "10.10.0.7:7070"), `claims cluster "cluster2" but runs in cluster1`},
		"an answer relayed from another pod":  {ans("cluster2", "backend-b", "10.10.0.7:7070"), "claims pod backend-b but came from 10.10.0.7"},
		"an address outside every pod CIDR":   {ans("cluster2", "backend-b", "172.30.0.3:7070"), "inside no cluster's pod CIDR"},
		"an address no API server lists":      {ans("cluster2", "backend-b", "10.20.0.99:7070"), "lists for no pod"},
		"no peer address (old app, no proof)": {ans("cluster2", "backend-b", ""), "has no peer address"},
	} {
		t.Run(name, func(t *testing.T) { wantErr(t, ServedFrom(pl)(c.calls), c.want) })
	}
}

// ClusterOf places an address by the pod CIDRs alone: a pod no API server
// lists is still placed, an IPv4-mapped address as its IPv4 one.
func TestClusterOf(t *testing.T) {
	pl := NewPlacement(map[string]netip.Prefix{"cluster1": netip.MustParsePrefix("10.10.0.0/16")})
	for addr, want := range map[string]string{"10.10.3.4": "cluster1", "::ffff:10.10.3.4": "cluster1", "172.30.0.3": ""} {
		if got, ok := pl.ClusterOf(netip.MustParseAddr(addr)); got != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", addr, got, ok, want)
		}
	}
}

func TestPlaintextRefusedByMTLS(t *testing.T) {
	id := SpiffeID("cluster.local", "production", "backend")
	strict := PlaintextOutcome{Addr: "10.20.0.9:7070", TCPConnected: true, Code: "Unavailable", Error: "connection closed before server preface received", TLSServerIdentity: id, TLSError: "remote error: tls: certificate required"}
	if err := PlaintextRefusedByMTLS(strict, id); err != nil {
		t.Fatal(err)
	}
	tls12 := strict
	tls12.TLSError = "remote error: tls: bad certificate"
	if err := PlaintextRefusedByMTLS(tls12, id); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		o    PlaintextOutcome
		want string
	}{
		"PERMISSIVE: plaintext answered":   {PlaintextOutcome{Addr: "a", TCPConnected: true, Answered: true, AnsweredBy: "backend-b"}, "was answered (by pod backend-b)"},
		"stale pod IP: nothing listens":    {PlaintextOutcome{Addr: "a", Code: "Unavailable", Error: "connection refused"}, "nothing accepted a TCP connection"},
		"an app error, not a handshake":    {PlaintextOutcome{Addr: "a", TCPConnected: true, Code: "Unimplemented"}, "failed with Unimplemented"},
		"no TLS there at all":              {PlaintextOutcome{Addr: "a", TCPConnected: true, Code: "Unavailable", TLSError: "first record does not look like a TLS handshake"}, `showed identity ""`},
		"TLS with another workload's cert": {PlaintextOutcome{Addr: "a", TCPConnected: true, Code: "Unavailable", TLSServerIdentity: SpiffeID("cluster.local", "production", "frontend")}, "sa/frontend"},
	} {
		t.Run(name, func(t *testing.T) { wantErr(t, PlaintextRefusedByMTLS(c.o, id), c.want) })
	}
}

func ExampleSplit() {
	err := Split(map[string]float64{"v1": 0.3, "v2": 0.7}, 0.001)(byVersion(map[string]int{"v1": 750, "v2": 250}))
	fmt.Println(err)
	// Output: split does not follow the weights: v1: 750 of 1000, want 253..348 (weight 0.3, α=0.001); v2: 250 of 1000, want 652..747 (weight 0.7, α=0.001)
}

// Clusters whose nodes carry no pod CIDRs (VPC CNIs) are told apart by
// their API servers: an address exactly one of them lists as that pod's.
// The broken meshes: a backend lying about its cluster or pod, an answer
// from an address nobody lists, and an address two clusters list (which a
// correct mesh never shows, as pod addresses are unique in a flat network).
func TestServedFromWithoutPodCIDRs(t *testing.T) {
	pl := NewPlacement(map[string]netip.Prefix{"east-1": {}, "west-1": {}})
	pl.Add(Pod{"east-1", "backend-a", netip.MustParseAddr("192.168.10.7")},
		Pod{"west-1", "backend-b", netip.MustParseAddr("192.168.77.9")},
		Pod{"east-1", "backend-c", netip.MustParseAddr("192.168.5.5")},
		Pod{"west-1", "backend-d", netip.MustParseAddr("192.168.5.5")})
	ans := func(cluster, pod, addr string) Calls {
		return Calls{Asked: 1, Response: Response{Results: []Result{{Identity: api.Identity{Cluster: cluster, Pod: pod}, PeerAddr: addr}}}}
	}
	if err := ServedFrom(pl)(ans("west-1", "backend-b", "[::ffff:192.168.77.9]:7070")); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		calls Calls
		want  string
	}{
		"a pod told the wrong cluster":      {ans("west-1", "backend-a", "192.168.10.7:7070"), `claims cluster "west-1" but runs in east-1`},
		"an answer relayed from another":    {ans("west-1", "backend-b", "192.168.10.7:7070"), "claims pod backend-b but came from 192.168.10.7, which is east-1's pod backend-a"},
		"an address no API server lists":    {ans("west-1", "backend-b", "192.168.99.1:7070"), "inside no cluster's pod CIDR and listed by no cluster's API server"},
		"an address two clusters both list": {ans("west-1", "backend-d", "192.168.5.5:7070"), "east-1 and west-1 all list: no proof"},
	} {
		t.Run(name, func(t *testing.T) { wantErr(t, ServedFrom(pl)(c.calls), c.want) })
	}
}

// One cluster with a range, one without: the range decides inside it, the
// listing outside it, and a ranged cluster's pod outside its own range is
// not placed by listing (host-network pods are not the backends).
func TestClusterOfMixedRanges(t *testing.T) {
	pl := NewPlacement(map[string]netip.Prefix{"cluster1": netip.MustParsePrefix("10.10.0.0/16"), "eks": {}})
	pl.Add(Pod{"eks", "b", netip.MustParseAddr("172.31.4.4")}, Pod{"cluster1", "h", netip.MustParseAddr("172.18.0.3")},
		Pod{"eks", "x", netip.MustParseAddr("172.18.0.7")}, Pod{"cluster1", "y", netip.MustParseAddr("172.18.0.7")})
	for addr, want := range map[string]string{"10.10.0.9": "cluster1", "172.31.4.4": "eks", "172.18.0.3": "", "172.31.9.9": "", "172.18.0.7": ""} {
		if got, ok := pl.ClusterOf(netip.MustParseAddr(addr)); got != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", addr, got, ok, want)
		}
	}
}

// Overlapping pod ranges are refused with both clusters named, never
// placed at random; disjoint ones pass.
func TestPodRangesOverlap(t *testing.T) {
	ok := map[string]netip.Prefix{"a": netip.MustParsePrefix("10.10.0.0/16"), "b": netip.MustParsePrefix("10.20.0.0/16")}
	if err := PodRangesOverlap(ok); err != nil {
		t.Fatal(err)
	}
	bad := map[string]netip.Prefix{"a": netip.MustParsePrefix("10.244.0.0/16"), "b": netip.MustParsePrefix("10.244.1.0/24"), "c": netip.MustParsePrefix("10.30.0.0/16")}
	wantErr(t, PodRangesOverlap(bad), "a (10.244.0.0/16) and b (10.244.1.0/24)")
	// A placement given them anyway places nothing by range.
	if cl, ok := NewPlacement(bad).ClusterOf(netip.MustParseAddr("10.244.1.5")); ok {
		t.Errorf("overlapping ranges placed 10.244.1.5 in %s", cl)
	}
}

// A load places answers while a check adds pods (go test -race).
func TestPlacementConcurrentUse(t *testing.T) {
	pl := NewPlacement(map[string]netip.Prefix{"x": {}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			pl.Add(Pod{"x", fmt.Sprint("p", i), netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i)})})
		}
	}()
	for i := range 200 {
		pl.ClusterOf(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
	}
	<-done
	if cl, ok := pl.ClusterOf(netip.MustParseAddr("10.0.0.199")); !ok || cl != "x" {
		t.Errorf("10.0.0.199: %q %v", cl, ok)
	}
}
