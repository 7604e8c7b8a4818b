package verify

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/mesh"
)

// DefaultRemoteClusterTimeout is Istio's PILOT_REMOTE_CLUSTER_TIMEOUT when
// istiod's environment does not set it: how long a starting istiod waits
// for a remote's initial sync before it goes Ready without it.
const DefaultRemoteClusterTimeout = 30 * time.Second

// RemoteClusterTimeout is the primary's istiod's
// PILOT_REMOTE_CLUSTER_TIMEOUT (Istio's default when unset).
func (m *Mesh) RemoteClusterTimeout(ctx context.Context) (time.Duration, error) {
	v, err := m.istiodEnv(ctx, "PILOT_REMOTE_CLUSTER_TIMEOUT")
	if err != nil || v == "" {
		return DefaultRemoteClusterTimeout, err
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("istiod's PILOT_REMOTE_CLUSTER_TIMEOUT %q: %w", v, err)
	}
	return d, nil
}

// RemoteAPIServer is the host and port of remote's API server as istiod
// on primary reaches it: the server of the remote secret attaching it.
func RemoteAPIServer(ctx context.Context, primary, remote *clusters.Cluster) (host string, port int, err error) {
	secrets, err := mesh.RemoteSecrets(ctx, primary)
	if err != nil {
		return "", 0, err
	}
	for _, s := range secrets {
		if s.Cluster != remote.ClusterID || s.Err != nil {
			continue
		}
		return splitServer(s.Server)
	}
	return "", 0, fmt.Errorf("%s holds no readable remote secret for cluster %s", primary.Name, remote.ClusterID)
}

// splitServer is a kubeconfig server URL's host and port (443 when the
// URL names none).
func splitServer(server string) (string, int, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "", 0, fmt.Errorf("API server %q is no URL", server)
	}
	host, p := u.Hostname(), u.Port()
	if p == "" {
		return host, 443, nil
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("API server %q: bad port", server)
	}
	return host, port, nil
}
