package mesh

import (
	"reflect"
	"strings"
	"testing"
)

// Layout of Istio 1.27 and 1.29 (istioctl/pkg/writer/pilot/status.go).
const proxyStatus129 = `NAME                                  CLUSTER      ISTIOD                      VERSION     SUBSCRIBED TYPES
backend-6d9f7c9b5-x2x9l.production    cluster2     istiod-7b9c8d6f4d-abcde     1.29.2      1 (LDS)
frontend-5c7d8b9f6-q8w7e.production   cluster1     istiod-7b9c8d6f4d-abcde     1.29.2      4 (CDS,LDS,EDS,RDS)
`

// Layout of Istio 1.26 (one column per type).
const proxyStatus126 = `NAME                                  CLUSTER      CDS                LDS                EDS                RDS                ECDS        ISTIOD                      VERSION
backend-6d9f7c9b5-x2x9l.production    cluster2     IGNORED            SYNCED (2m1s)      IGNORED            IGNORED            IGNORED     istiod-7b9c8d6f4d-abcde     1.26.0
frontend-5c7d8b9f6-q8w7e.production   cluster1     SYNCED (40s)       SYNCED (40s)       NOT SENT           SYNCED (40s)       IGNORED     istiod-7b9c8d6f4d-abcde     1.26.0
`

func TestParseProxyStatus129(t *testing.T) {
	rows, err := ParseProxyStatus(proxyStatus129)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("rows = %+v", rows)
	}
	b := rows[0]
	if b.Pod != "backend-6d9f7c9b5-x2x9l" || b.Namespace != "production" || b.Cluster != "cluster2" || b.Version != "1.29.2" || b.Istiod != "istiod-7b9c8d6f4d-abcde" {
		t.Errorf("backend = %+v", b)
	}
	if !reflect.DeepEqual(b.Subscribed, []string{"LDS"}) || !reflect.DeepEqual(rows[1].Subscribed, []string{"CDS", "LDS", "EDS", "RDS"}) {
		t.Errorf("subscribed = %v, %v", b.Subscribed, rows[1].Subscribed)
	}
}

func TestParseProxyStatus126(t *testing.T) {
	rows, err := ParseProxyStatus(proxyStatus126)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"CDS": "SYNCED", "LDS": "SYNCED", "EDS": "NOT SENT", "RDS": "SYNCED", "ECDS": "IGNORED"}
	if !reflect.DeepEqual(rows[1].Types, want) || rows[1].Cluster != "cluster1" || rows[1].Version != "1.26.0" {
		t.Errorf("frontend = %+v", rows[1])
	}
	if rows[0].Types["LDS"] != "SYNCED" || rows[0].Types["CDS"] != "IGNORED" {
		t.Errorf("backend = %+v", rows[0])
	}
}

func TestParseProxyStatusEmptyAndBad(t *testing.T) {
	if rows, err := ParseProxyStatus("NAME  CLUSTER  ISTIOD  VERSION  SUBSCRIBED TYPES\n"); err != nil || len(rows) != 0 {
		t.Errorf("empty table: %v %v", rows, err)
	}
	if _, err := ParseProxyStatus("Error: no proxies found (checked 1 istiods)\n"); err == nil {
		t.Error("an error message parsed as a table")
	}
}

func TestParseClusterzAndSyncz(t *testing.T) {
	cs, err := ParseClusterz([]byte(`[{"id":"cluster2","secretName":"istio-system/istio-remote-secret-cluster2","syncStatus":"synced"},{"id":"cluster1","secretName":"","syncStatus":"synced"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if cs[0].ID != "cluster1" || cs[1].SyncStatus != "synced" || cs[1].SecretName != "istio-system/istio-remote-secret-cluster2" {
		t.Errorf("clusterz = %+v", cs)
	}
	if _, err := ParseClusterz([]byte("404 page not found")); err == nil {
		t.Error("non-JSON accepted")
	}
	ss, err := ParseSyncz([]byte(`[{"cluster_id":"cluster2","proxy":"backend-1.production","proxy_type":"sidecar","istio_version":"1.29.2","resources":{"type.googleapis.com/envoy.config.listener.v3.Listener":{"sent":"a","acked":"a"},"type.googleapis.com/envoy.config.cluster.v3.Cluster":{"sent":"b","acked":""}}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if got := ss[0].Unsynced(); !reflect.DeepEqual(got, []string{"CDS"}) {
		t.Errorf("unsynced = %v", got)
	}
}

func TestCheckSynced(t *testing.T) {
	rows, _ := ParseProxyStatus(proxyStatus126)
	want := map[string]string{"backend-6d9f7c9b5-x2x9l": "cluster2"}
	if err := CheckSynced(rows, want); err != nil {
		t.Errorf("synced backend rejected: %v", err)
	}
	want["frontend-5c7d8b9f6-q8w7e"] = "cluster1"
	if err := CheckSynced(rows, want); err == nil || err.Error() != "pod frontend-5c7d8b9f6-q8w7e: EDS is NOT SENT" {
		t.Errorf("got %v", err)
	}
	if err := CheckSynced(rows, map[string]string{"backend-6d9f7c9b5-x2x9l": "cluster1"}); err == nil {
		t.Error("wrong cluster accepted")
	}
	if err := CheckSynced(rows, map[string]string{"missing": "cluster1"}); err == nil {
		t.Error("missing pod accepted")
	}
}

func TestCheckProxies(t *testing.T) {
	rows := func(vs ...string) []ProxyStatus {
		var out []ProxyStatus
		for i := 0; i+2 < len(vs); i += 3 {
			out = append(out, ProxyStatus{Pod: vs[i], Namespace: "production", Cluster: vs[i+1], Version: vs[i+2], Types: map[string]string{"CDS": "SYNCED", "LDS": "SYNCED"}})
		}
		return out
	}
	want := map[string]ProxyWant{"a": {"cluster1", "1.27.0"}, "b": {"cluster2", "1.27.0"}}
	if err := CheckProxies(rows("a", "cluster1", "1.27.0", "b", "cluster2", "1.27.0"), want, "production"); err != nil {
		t.Errorf("correct mixed window rejected: %v", err)
	}
	for name, c := range map[string]struct {
		rows []ProxyStatus
		want map[string]ProxyWant
	}{
		"a pod still on the old revision (missing here)": {rows("a", "cluster1", "1.27.0"), want},
		"a pod at the wrong version":                     {rows("a", "cluster1", "1.27.0", "b", "cluster2", "1.26.0"), want},
		"a pod in the wrong cluster":                     {rows("a", "cluster1", "1.27.0", "b", "cluster1", "1.27.0"), want},
		"a pod that should not have moved yet":           {rows("a", "cluster1", "1.27.0", "b", "cluster2", "1.27.0", "c", "cluster2", "1.27.0"), want},
		"nothing wanted":                                 {rows("a", "cluster1", "1.27.0"), nil},
	} {
		if err := CheckProxies(c.rows, c.want, "production"); err == nil {
			t.Errorf("%s: passed", name)
		}
	}
	stale := rows("a", "cluster1", "1.27.0", "b", "cluster2", "1.27.0")
	stale[1].Types["EDS"] = "STALE"
	if err := CheckProxies(stale, want, "production"); err == nil {
		t.Error("a STALE proxy passed")
	}
}

func TestImageVersion(t *testing.T) {
	for image, want := range map[string]string{
		"docker.io/istio/pilot:1.29.2":                    "1.29.2",
		"docker.io/istio/pilot:1.29.2-distroless":         "1.29.2",
		"localhost:5000/istio/pilot:1.27.0@sha256:abcdef": "1.27.0",
		"localhost:5000/istio/pilot":                      "",
	} {
		if got := ImageVersion(image); got != want {
			t.Errorf("ImageVersion(%q) = %q, want %q", image, got, want)
		}
	}
}

func TestCheckSpread(t *testing.T) {
	want := map[string]string{"a": "cluster1", "b": "cluster2", "c": "cluster3"}
	rows := []ProxyStatus{{Pod: "a", Istiod: "istiod-1"}, {Pod: "b", Istiod: "istiod-1"}, {Pod: "c", Istiod: "istiod-2"}, {Pod: "other", Istiod: "istiod-3"}}
	by, err := CheckSpread(rows, want)
	if err != nil || by["istiod-1"] != 2 || by["istiod-2"] != 1 || by["istiod-3"] != 0 {
		t.Fatalf("spread over two replicas: %v, %v", by, err)
	}
	// The broken HA mesh: every proxy on one replica (a pod outside want
	// on another does not count).
	one := []ProxyStatus{{Pod: "a", Istiod: "istiod-1"}, {Pod: "b", Istiod: "istiod-1"}, {Pod: "c", Istiod: "istiod-1"}, {Pod: "other", Istiod: "istiod-2"}}
	if _, err := CheckSpread(one, want); err == nil || !strings.Contains(err.Error(), "one istiod replica") {
		t.Errorf("all on one replica: %v", err)
	}
	if _, err := CheckSpread(nil, want); err == nil || !strings.Contains(err.Error(), "nothing to judge") {
		t.Errorf("no rows: %v", err)
	}
}

func TestCheckOff(t *testing.T) {
	want := map[string]string{"a": "cluster1", "b": "cluster2"}
	rows := []ProxyStatus{{Pod: "a", Istiod: "istiod-1"}, {Pod: "b", Istiod: "istiod-2"}}
	if err := CheckOff(rows, want, "istiod-3"); err != nil {
		t.Errorf("none on the deleted replica: %v", err)
	}
	if err := CheckOff(rows, want, "istiod-2"); err == nil || !strings.Contains(err.Error(), "1 proxies still listed on deleted istiod istiod-2: [b]") {
		t.Errorf("b still on the deleted replica: %v", err)
	}
}

func TestRootFingerprint(t *testing.T) {
	if got := RootFingerprint([]byte("no certificate")); got != "" {
		t.Errorf("no PEM: %q", got)
	}
	a := RootFingerprint([]byte("-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n"))
	b := RootFingerprint([]byte("-----BEGIN CERTIFICATE-----\nAAED\n-----END CERTIFICATE-----\n"))
	if !strings.HasPrefix(a, "sha256:") || len(a) != len("sha256:")+12 || a == b {
		t.Errorf("fingerprints %q and %q", a, b)
	}
}
