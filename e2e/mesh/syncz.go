package mesh

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/meshconform/meshconform/e2e/clusters"
	"golang.org/x/sync/errgroup"

	"github.com/meshconform/meshconform/e2e/checks"
)

// ProxyStatusFromIstiod is proxy-status read from istiod itself, without
// istioctl: each running istiod pod of the revision's debug/syncz, the
// endpoint istioctl's own proxy-status reads. It serves a mesh of any
// Istio version meshconform cannot build an istioctl for.
func ProxyStatusFromIstiod(ctx context.Context, primary *clusters.Cluster, revision string) ([]checks.ProxyStatus, error) {
	pods, err := IstiodPods(ctx, primary, revision)
	if err != nil {
		return nil, err
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("no running istiod pod (%s)", IstiodSelector(revision))
	}
	rows := make([][]checks.ProxyStatus, len(pods))
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range pods {
		g.Go(func() error {
			raw, err := istiodPodDebug(gctx, primary, p.Name, "/debug/syncz")
			if err != nil {
				return err
			}
			rows[i], err = parseSyncz(p.Name, raw)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(rows...), nil
}

// syncStatus is one proxy of istiod's debug/syncz (pilot/pkg/xds/debug.go
// SyncStatus, 1.26 to 1.29).
type syncStatus struct {
	ClusterID    string `json:"cluster_id"`
	ProxyID      string `json:"proxy"`
	IstioVersion string `json:"istio_version"`
	ProxyVersion string `json:"proxy_version"`
	ClusterSent  string `json:"cluster_sent"`
	ClusterAcked string `json:"cluster_acked"`
	ListenerSent string `json:"listener_sent"`
	// ListenerAcked and the rest: the nonce sent and acknowledged per type.
	ListenerAcked        string `json:"listener_acked"`
	RouteSent            string `json:"route_sent"`
	RouteAcked           string `json:"route_acked"`
	EndpointSent         string `json:"endpoint_sent"`
	EndpointAcked        string `json:"endpoint_acked"`
	ExtensionConfigSent  string `json:"extensionconfig_sent"`
	ExtensionConfigAcked string `json:"extensionconfig_acked"`
	// Resources are the types the proxy watches, by type URL.
	Resources map[string]json.RawMessage `json:"resources"`
}

// xDS type URLs, by the names proxy-status gives them.
var xdsTypes = []struct{ name, url string }{
	{"CDS", "type.googleapis.com/envoy.config.cluster.v3.Cluster"},
	{"LDS", "type.googleapis.com/envoy.config.listener.v3.Listener"},
	{"EDS", "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"},
	{"RDS", "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"},
	{"ECDS", "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"},
}

// parseSyncz turns istiod pod's debug/syncz into proxy-status rows, each
// type's status as istioctl words it: NOT SENT (never sent), SYNCED (the
// last nonce sent acknowledged), STALE (not), IGNORED (a type the proxy
// does not watch, where syncz lists what it watches).
func parseSyncz(pod string, raw []byte) ([]checks.ProxyStatus, error) {
	var ss []syncStatus
	if err := json.Unmarshal(raw, &ss); err != nil {
		return nil, fmt.Errorf("istiod %s: debug/syncz is not a list of proxies: %w", pod, err)
	}
	out := make([]checks.ProxyStatus, 0, len(ss))
	for _, s := range ss {
		name, ns, _ := strings.Cut(s.ProxyID, ".")
		row := checks.ProxyStatus{Pod: name, Namespace: ns, Cluster: s.ClusterID, Istiod: pod, Version: s.IstioVersion, Types: map[string]string{}}
		if row.Version == "" {
			row.Version = s.ProxyVersion
		}
		nonces := map[string][2]string{
			"CDS": {s.ClusterSent, s.ClusterAcked}, "LDS": {s.ListenerSent, s.ListenerAcked}, "EDS": {s.EndpointSent, s.EndpointAcked},
			"RDS": {s.RouteSent, s.RouteAcked}, "ECDS": {s.ExtensionConfigSent, s.ExtensionConfigAcked},
		}
		for _, t := range xdsTypes {
			if _, watched := s.Resources[t.url]; s.Resources != nil && !watched {
				row.Types[t.name] = "IGNORED"
				continue
			}
			row.Types[t.name] = xdsStatus(nonces[t.name][0], nonces[t.name][1])
			if s.Resources != nil {
				row.Subscribed = append(row.Subscribed, t.name)
			}
		}
		out = append(out, row)
	}
	return out, nil
}

// xdsStatus is istioctl's word for a type's nonces.
func xdsStatus(sent, acked string) string {
	switch {
	case sent == "":
		return "NOT SENT"
	case sent == acked:
		return "SYNCED"
	}
	return "STALE"
}
