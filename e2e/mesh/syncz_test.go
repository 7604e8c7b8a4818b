package mesh

import (
	"strings"
	"testing"

	"github.com/meshconform/meshconform/e2e/checks"
)

// syncz as istiod 1.29 answers it for a proxyless gRPC pod (LDS, RDS,
// CDS, EDS watched, all acknowledged) and one behind on EDS.
const sampleSyncz = `[
 {"cluster_id":"west-1","proxy":"backend-v1-abc.production","proxy_type":"sidecar","istio_version":"1.29.2",
  "cluster_sent":"n1","cluster_acked":"n1","listener_sent":"n2","listener_acked":"n2","route_sent":"n3","route_acked":"n3","endpoint_sent":"n4","endpoint_acked":"n4",
  "resources":{"type.googleapis.com/envoy.config.cluster.v3.Cluster":{"sent":"n1","acked":"n1"},"type.googleapis.com/envoy.config.listener.v3.Listener":{},"type.googleapis.com/envoy.config.route.v3.RouteConfiguration":{},"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment":{}}},
 {"cluster_id":"east-1","proxy":"frontend-xyz.production","istio_version":"1.29.2",
  "cluster_sent":"n1","cluster_acked":"n1","listener_sent":"n2","listener_acked":"n2","route_sent":"n3","route_acked":"n3","endpoint_sent":"n9","endpoint_acked":"n4",
  "resources":{"type.googleapis.com/envoy.config.cluster.v3.Cluster":{},"type.googleapis.com/envoy.config.listener.v3.Listener":{},"type.googleapis.com/envoy.config.route.v3.RouteConfiguration":{},"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment":{}}}
]`

func TestParseSyncz(t *testing.T) {
	rows, err := parseSyncz("istiod-7d9-x", []byte(sampleSyncz))
	if err != nil || len(rows) != 2 {
		t.Fatalf("%+v %v", rows, err)
	}
	b := rows[0]
	if b.Pod != "backend-v1-abc" || b.Namespace != "production" || b.Cluster != "west-1" || b.Istiod != "istiod-7d9-x" || b.Version != "1.29.2" ||
		b.Types["CDS"] != "SYNCED" || b.Types["EDS"] != "SYNCED" || b.Types["ECDS"] != "IGNORED" || strings.Join(b.Subscribed, ",") != "CDS,LDS,EDS,RDS" {
		t.Errorf("backend row %+v", b)
	}
	// The same judge as istioctl's rows: the synced pod passes, the one
	// behind on EDS is refused.
	want := func(pod, cluster string) map[string]checks.Expect {
		return map[string]checks.Expect{pod: {Cluster: cluster, Istiods: []string{"istiod-7d9-x"}, Version: "1.29.2"}}
	}
	if err := checks.Synced(rows, want("backend-v1-abc", "west-1")); err != nil {
		t.Errorf("synced backend refused: %v", err)
	}
	if err := checks.Synced(rows, want("frontend-xyz", "east-1")); err == nil || !strings.Contains(err.Error(), "EDS is STALE") {
		t.Errorf("stale frontend: %v", err)
	}
	// A proxy never sent a type it watches is NOT SENT, never SYNCED.
	never := strings.Replace(sampleSyncz, `"route_sent":"n3","route_acked":"n3","endpoint_sent":"n4"`, `"route_sent":"","route_acked":"","endpoint_sent":"n4"`, 1)
	rows, _ = parseSyncz("istiod-7d9-x", []byte(never))
	if rows[0].Types["RDS"] != "NOT SENT" {
		t.Errorf("RDS = %s", rows[0].Types["RDS"])
	}
	if _, err := parseSyncz("istiod-7d9-x", []byte("no proxies")); err == nil {
		t.Error("not JSON accepted")
	}
}
