package checks_test

import (
	"strings"
	"testing"

	. "github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/mesh"
)

// Layout of Istio 1.26 (one column per type).
const proxyStatus126 = `NAME                                  CLUSTER      CDS                LDS                EDS                RDS                ECDS        ISTIOD                      VERSION
backend-6d9f7c9b5-x2x9l.production    cluster2     IGNORED            SYNCED (2m1s)      IGNORED            IGNORED            IGNORED     istiod-7b9c8d6f4d-abcde     1.26.0
frontend-5c7d8b9f6-q8w7e.production   cluster1     SYNCED (40s)       SYNCED (40s)       NOT SENT           SYNCED (40s)       IGNORED     istiod-7b9c8d6f4d-abcde     1.26.0
`

const proxyStatus129Verbose = `NAME                                    CLUSTER      CDS               ECDS        EDS               LDS               RDS               ISTIOD                      VERSION
backend-6d9f7c9b5-x2x9l.production      cluster2     IGNORED           IGNORED     IGNORED           SYNCED (2m1s)     IGNORED           istiod-7b9c8d6f4d-abcde     1.29.2
echo-7f8d9c6b5-k2j4h.verify-injection   cluster2     IGNORED           IGNORED     IGNORED           STALE (3s)        IGNORED           istiod-7b9c8d6f4d-fghij     1.29.2
frontend-5c7d8b9f6-q8w7e.production     cluster1     SYNCED (40s)      IGNORED     SYNCED (40s)      SYNCED (40s)      SYNCED (40s)      istiod-7b9c8d6f4d-fghij     1.29.2
`

// The running istiod pods of the primary cluster1 (two replicas) and of
// another primary, and the version everything runs.
var (
	primaryIstiods = []string{"istiod-7b9c8d6f4d-abcde", "istiod-7b9c8d6f4d-fghij"}
	otherIstiods   = []string{"istiod-7b9c8d6f4d-vwxyz"}
)

const (
	backendPod  = "backend-6d9f7c9b5-x2x9l"
	frontendPod = "frontend-5c7d8b9f6-q8w7e"
	echoPod     = "echo-7f8d9c6b5-k2j4h"
)

// Synced passes a correct mesh: every proxy listed in its cluster, on
// a replica of its primary's revision, at the mesh's version, SYNCED. It
// fails a correct mesh only while a proxy reconnects (an istiod replica
// restarted or deleted: listed on a pod no longer running, or not yet
// SYNCED on the new one), which lasts about a second plus a push and
// which every caller polls through; nothing else in a settled mesh changes
// the columns it reads.
func TestSyncedCorrect(t *testing.T) {
	rows, err := mesh.ParseProxyStatus(proxyStatus129Verbose)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Expect{
		backendPod:  {Cluster: "cluster2", Istiods: primaryIstiods, Version: "1.29.2"},
		frontendPod: {Cluster: "cluster1", Istiods: primaryIstiods, Version: "1.29.2"},
	}
	if err := Synced(rows, want); err != nil {
		t.Errorf("correct mesh rejected: %v", err)
	}
	rows126, _ := mesh.ParseProxyStatus(proxyStatus126)
	if err := Synced(rows126, map[string]Expect{backendPod: {Cluster: "cluster2", Istiods: primaryIstiods[:1], Version: "1.26.0"}}); err != nil {
		t.Errorf("correct 1.26 mesh rejected: %v", err)
	}
}

// Each broken mesh fails, its error naming the pod, what it is on and what
// was expected.
func TestSyncedRejects(t *testing.T) {
	good := func() []ProxyStatus {
		rows, err := mesh.ParseProxyStatus(proxyStatus129Verbose)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	backend := func(istiods []string, version string) map[string]Expect {
		return map[string]Expect{backendPod: {Cluster: "cluster2", Istiods: istiods, Version: version}}
	}
	with := func(mod func(r *ProxyStatus)) []ProxyStatus {
		rows := good()
		for i := range rows {
			if rows[i].Pod == backendPod {
				mod(&rows[i])
			}
		}
		return rows
	}
	for name, c := range map[string]struct {
		rows []ProxyStatus
		want map[string]Expect
		says string
	}{
		// Multi-primary: the proxy should be on its own primary's istiod.
		"a proxy on the other primary's istiod": {good(), backend(otherIstiods, "1.29.2"),
			`pod backend-6d9f7c9b5-x2x9l (cluster2) is connected to istiod "istiod-7b9c8d6f4d-abcde", want one of [istiod-7b9c8d6f4d-vwxyz]`},
		// Canary: the revision's pods are expected, the proxy stayed on
		// the old revision's istiod (and version).
		"a proxy on the old revision's istiod": {with(func(r *ProxyStatus) { r.Istiod, r.Version = "istiod-1-28-1-5f6d7c8b9-pqrst", "1.28.1" }), backend([]string{"istiod-1-29-2-6c7d8e9f0-stuvw"}, "1.29.2"),
			`is connected to istiod "istiod-1-28-1-5f6d7c8b9-pqrst", want one of [istiod-1-29-2-6c7d8e9f0-stuvw]`},
		"a proxy on a deleted replica (unknown istiod)": {with(func(r *ProxyStatus) { r.Istiod = "istiod-7b9c8d6f4d-gone0" }), backend(primaryIstiods, "1.29.2"),
			`is connected to istiod "istiod-7b9c8d6f4d-gone0", want one of [istiod-7b9c8d6f4d-abcde istiod-7b9c8d6f4d-fghij]`},
		"a proxy at another version": {with(func(r *ProxyStatus) { r.Version = "1.28.1" }), backend(primaryIstiods, "1.29.2"),
			`pod backend-6d9f7c9b5-x2x9l (cluster2) runs proxy version "1.28.1", want 1.29.2`},
		"a proxy reporting no version": {with(func(r *ProxyStatus) { r.Version = "" }), backend(primaryIstiods, "1.29.2"),
			`runs proxy version "", want 1.29.2`},
		"the injection check's pod listed but STALE": {good(), map[string]Expect{echoPod: {Cluster: "cluster2", Istiods: primaryIstiods, Version: "1.29.2"}},
			`pod echo-7f8d9c6b5-k2j4h: LDS is STALE`},
		"the injection check's pod listed but NOT SENT": {with(func(r *ProxyStatus) { r.Types["LDS"] = "NOT SENT" }), backend(primaryIstiods, "1.29.2"),
			`pod backend-6d9f7c9b5-x2x9l: LDS is NOT SENT`},
		"a proxy with no type subscribed": {with(func(r *ProxyStatus) { r.Types = map[string]string{"LDS": "IGNORED"} }), backend(primaryIstiods, "1.29.2"),
			`no type SYNCED`},
		"a proxy in the wrong cluster": {good(), map[string]Expect{backendPod: {Cluster: "cluster1", Istiods: primaryIstiods, Version: "1.29.2"}},
			`listed in cluster "cluster2", runs in cluster1`},
		"a proxy not listed": {good(), map[string]Expect{"missing": {Cluster: "cluster1", Istiods: primaryIstiods, Version: "1.29.2"}},
			`pod missing (cluster1) not in proxy-status (3 rows)`},
		"nothing wanted":              {good(), nil, "nothing to judge"},
		"no istiod to judge against":  {good(), backend(nil, "1.29.2"), "no istiod pod should serve it"},
		"no version to judge against": {good(), backend(primaryIstiods, ""), "no expected version"},
	} {
		err := Synced(c.rows, c.want)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: got %v, want an error saying %q", name, err, c.says)
		}
	}
	// Several failures: the first pod in name order is reported, the same
	// every run.
	rows126, _ := mesh.ParseProxyStatus(proxyStatus126)
	want := map[string]Expect{
		backendPod:  {Cluster: "cluster2", Istiods: primaryIstiods, Version: "1.29.2"},
		frontendPod: {Cluster: "cluster1", Istiods: primaryIstiods, Version: "1.26.0"},
	}
	if err := Synced(rows126, want); err == nil || err.Error() != `pod backend-6d9f7c9b5-x2x9l (cluster2) runs proxy version "1.26.0", want 1.29.2` {
		t.Errorf("got %v", err)
	}
	want[backendPod] = Expect{Cluster: "cluster2", Istiods: primaryIstiods, Version: "1.26.0"}
	if err := Synced(rows126, want); err == nil || err.Error() != "pod frontend-5c7d8b9f6-q8w7e: EDS is NOT SENT" {
		t.Errorf("got %v", err)
	}
}

func TestSpread(t *testing.T) {
	want := map[string]string{"a": "cluster1", "b": "cluster2", "c": "cluster3"}
	rows := []ProxyStatus{{Pod: "a", Istiod: "istiod-1"}, {Pod: "b", Istiod: "istiod-1"}, {Pod: "c", Istiod: "istiod-2"}, {Pod: "other", Istiod: "istiod-3"}}
	by, err := Spread(rows, want)
	if err != nil || by["istiod-1"] != 2 || by["istiod-2"] != 1 || by["istiod-3"] != 0 {
		t.Fatalf("spread over two replicas: %v, %v", by, err)
	}
	// The broken HA mesh: every proxy on one replica (a pod outside want
	// on another does not count).
	one := []ProxyStatus{{Pod: "a", Istiod: "istiod-1"}, {Pod: "b", Istiod: "istiod-1"}, {Pod: "c", Istiod: "istiod-1"}, {Pod: "other", Istiod: "istiod-2"}}
	if _, err := Spread(one, want); err == nil || !strings.Contains(err.Error(), "one istiod replica") {
		t.Errorf("all on one replica: %v", err)
	}
	if _, err := Spread(nil, want); err == nil || !strings.Contains(err.Error(), "nothing to judge") {
		t.Errorf("no rows: %v", err)
	}
}

func TestOffReplica(t *testing.T) {
	want := map[string]string{"a": "cluster1", "b": "cluster2"}
	rows := []ProxyStatus{{Pod: "a", Istiod: "istiod-1"}, {Pod: "b", Istiod: "istiod-2"}}
	if err := OffReplica(rows, want, "istiod-3"); err != nil {
		t.Errorf("none on the deleted replica: %v", err)
	}
	if err := OffReplica(rows, want, "istiod-2"); err == nil || !strings.Contains(err.Error(), "1 proxies still listed on deleted istiod istiod-2: [b]") {
		t.Errorf("b still on the deleted replica: %v", err)
	}
}
