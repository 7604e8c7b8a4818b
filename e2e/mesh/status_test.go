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

func TestParseClusterz(t *testing.T) {
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
}

// Layout of Istio 1.27 to 1.29 with -v 1, as the harness asks for it
// (istioctl/pkg/writer/pilot/status.go printAllVerbose: the types sorted by
// type URL, ISTIOD and VERSION last). The backend is a proxyless gRPC
// server (grpc-agent): it subscribes to LDS only and reports its agent's
// version, as sidecars do. The injection check's pod is listed connected
// but not yet served.
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
