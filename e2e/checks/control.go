package checks

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
)

// RemoteCluster is one entry of an istiod replica's debug/clusterz: a
// cluster it watches, the secret it watches it through, and how far it got.
type RemoteCluster struct {
	ID         string `json:"id"`
	SecretName string `json:"secretName"`
	SyncStatus string `json:"syncStatus"`
}

// RemoteSecretName is the name of the remote secret istioctl
// create-remote-secret --name id makes for a cluster (in the istio
// namespace): istiod lists it, as namespace/name, beside each cluster it
// watches.
func RemoteSecretName(id string) string { return "istio-remote-secret-" + id }

// Watched rejects an istiod replica (pod, of primary) that does not watch
// each of the clusters want (Istio cluster IDs) through that cluster's
// remote secret, synced: a remote secret missing or pointing where istiod
// cannot reach, rights missing, or a replica of an HA istiod lagging the
// others. Every cluster found wrong is named. Nothing wanted is an error:
// a multicluster mesh always has another cluster to watch.
func Watched(primary, pod, istioNamespace string, want []string, cs []RemoteCluster) error {
	if len(want) == 0 {
		return fmt.Errorf("istiod %s on %s: no other cluster to judge", pod, primary)
	}
	listed := map[string]RemoteCluster{}
	for _, c := range cs {
		listed[c.ID] = c
	}
	var bad []string
	for _, id := range want {
		c, ok := listed[id]
		secret := istioNamespace + "/" + RemoteSecretName(id)
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("does not list cluster %s in debug/clusterz", id))
		case c.SecretName != secret:
			bad = append(bad, fmt.Sprintf("lists %s through %q, want the remote secret %s", id, c.SecretName, secret))
		case c.SyncStatus != "synced":
			bad = append(bad, fmt.Sprintf("lists cluster %s as %q, want synced%s", id, c.SyncStatus, syncHint(c.SyncStatus, secret)))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("istiod %s on %s %s (it lists %v)", pod, primary, strings.Join(bad, "; "), cs)
	}
	return nil
}

// syncHint names what istiod's sync status of a cluster says went wrong.
func syncHint(status, secret string) string {
	switch status {
	case "timeout":
		return ": istiod could not list that cluster's API server (the server of " + secret + ") within PILOT_REMOTE_CLUSTER_TIMEOUT: is it reachable from istiod's pods, and does the secret's token still work?"
	case "syncing":
		return ": istiod is still listing that cluster's API server"
	}
	return ""
}

// InjectionPath is the injection path istiod's remote webhook calls for a
// cluster (its Istio cluster ID) on a network: what a remote install's
// webhooks must carry so that istiod injects the remote's own identity.
func InjectionPath(clusterID, network string) string {
	return "/inject/cluster/" + clusterID + "/net/" + network
}

// InjectionWebhooks rejects a remote whose injection webhooks (of the
// revision) are missing, lack a caBundle (the API server cannot call
// istiod) or inject through another path than wantPath (another cluster's
// or network's identity). It returns how many webhooks it judged.
func InjectionWebhooks(cluster, wantPath string, mwcs []admissionv1.MutatingWebhookConfiguration) (int, error) {
	n := 0
	for _, mwc := range mwcs {
		for _, wh := range mwc.Webhooks {
			n++
			if len(wh.ClientConfig.CABundle) == 0 {
				return n, fmt.Errorf("%s: webhook %s/%s has no caBundle: the API server cannot call istiod", cluster, mwc.Name, wh.Name)
			}
			path := ""
			if wh.ClientConfig.Service != nil && wh.ClientConfig.Service.Path != nil {
				path = *wh.ClientConfig.Service.Path
			} else if wh.ClientConfig.URL != nil {
				if u, err := url.Parse(*wh.ClientConfig.URL); err == nil {
					path = u.Path
				}
			}
			if path != wantPath {
				return n, fmt.Errorf("%s: webhook %s/%s injects through %q, want %q", cluster, mwc.Name, wh.Name, path, wantPath)
			}
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("%s: no injection webhook: the remote install is missing", cluster)
	}
	return n, nil
}

// IstiodReplicas rejects a primary whose istiod (pods: its running istiod
// pods of the revision, with the version each one's image carries) does
// not run exactly replicas Ready pods, each at version: a replica missing
// or not Ready (an HA control plane that is not), or one left at another
// version (an upgrade half done). Zero replicas wanted is an error.
func IstiodReplicas(primary string, pods []corev1.Pod, imageVersion func(string) string, replicas int, version string) error {
	if replicas <= 0 {
		return fmt.Errorf("%s: %d istiod replicas wanted: nothing to judge", primary, replicas)
	}
	var bad []string
	ready := 0
	for _, p := range pods {
		if PodReady(p) {
			ready++
		} else {
			bad = append(bad, fmt.Sprintf("istiod pod %s is not Ready", p.Name))
		}
		if len(p.Spec.Containers) == 0 {
			bad = append(bad, fmt.Sprintf("istiod pod %s has no container", p.Name))
		} else if v := imageVersion(p.Spec.Containers[0].Image); v != version {
			bad = append(bad, fmt.Sprintf("istiod pod %s runs %s (%q), want %s", p.Name, p.Spec.Containers[0].Image, v, version))
		}
	}
	if ready != replicas || len(pods) != replicas {
		bad = append([]string{fmt.Sprintf("%d istiod pods running, %d Ready, want %d", len(pods), ready, replicas)}, bad...)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s: %s", primary, strings.Join(bad, "; "))
	}
	return nil
}

// ControlPlaneClusters rejects a remote whose istio-system annotation
// topology.istio.io/controlPlaneClusters (value, present) does not name
// its primary's istiod by the Istio cluster ID istiod knows itself by
// (primaryID; "*" names every istiod): that istiod then never manages the
// remote (no istio-ca-root-cert in its namespaces). A topology name that
// is not the ID is the broken mesh too.
func ControlPlaneClusters(value string, present bool, primaryID string) error {
	switch {
	case !present:
		return fmt.Errorf("no %s annotation", ControlPlaneClustersAnnotation)
	case value != "*" && !slices.ContainsFunc(strings.Split(value, ","), func(v string) bool { return strings.TrimSpace(v) == primaryID }):
		return fmt.Errorf("%s=%q does not name Istio cluster %s", ControlPlaneClustersAnnotation, value, primaryID)
	}
	return nil
}

// ControlPlaneClustersAnnotation is the remote istio-system's annotation
// naming the istiods that manage it.
const ControlPlaneClustersAnnotation = "topology.istio.io/controlPlaneClusters"
