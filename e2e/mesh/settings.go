package mesh

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/meshconform/meshconform/e2e/clusters"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/yaml"
)

// DefaultTrustDomain is Istio's trust domain when the mesh config names
// none, and the one meshconform installs.
const DefaultTrustDomain = "cluster.local"

// Installed is what an installed mesh says of one of its clusters, read
// from the mesh rather than assumed from the topology: the Istio cluster
// ID and network its injected proxies are given, and the trust domain of
// its mesh config ("" where the cluster has none: a remote served by an
// external istiod).
type Installed struct {
	ClusterID, Network, TrustDomain string
}

// ReadInstalled reads c's cluster ID and network, for revision ("" =
// default), from the injector's values where istiod runs (a primary), else
// from the path of the remote's injection webhooks, through which istiod
// injects that cluster's identity (checks.InjectionPath); and the trust
// domain from its mesh config, if it has one.
func ReadInstalled(ctx context.Context, cl *clusters.Cluster, revision string) (Installed, error) {
	c, ns := cl.Client, cl.IstioNamespace()
	suffix := ""
	if revision != "" && revision != "default" {
		suffix = "-" + revision
	}
	var out Installed
	var inj corev1.ConfigMap
	err := c.Resources(ns).Get(ctx, "istio-sidecar-injector"+suffix, ns, &inj)
	switch {
	case err == nil:
		if out.ClusterID, out.Network, err = parseInjectorValues(inj.Data["values"]); err != nil {
			return out, fmt.Errorf("config map istio-sidecar-injector%s: %w", suffix, err)
		}
	case apierrors.IsNotFound(err):
		mwcs, err := InjectionWebhooks(ctx, c, revision)
		if err != nil {
			return out, err
		}
		if out.ClusterID, out.Network, err = webhookIdentity(mwcs); err != nil {
			return out, err
		}
	default:
		return out, fmt.Errorf("read the injector's values (config map istio-sidecar-injector%s): %w", suffix, err)
	}
	var mc corev1.ConfigMap
	switch err := c.Resources(ns).Get(ctx, "istio"+suffix, ns, &mc); {
	case apierrors.IsNotFound(err):
		return out, nil
	case err != nil:
		return out, fmt.Errorf("read the mesh config (config map istio%s): %w", suffix, err)
	}
	out.TrustDomain, err = parseTrustDomain(mc.Data["mesh"])
	if err != nil {
		return out, fmt.Errorf("config map istio%s: %w", suffix, err)
	}
	return out, nil
}

// webhookIdentity is the cluster ID and network of a remote's injection
// webhooks' paths (/inject/cluster/ID/net/NETWORK), which must agree.
func webhookIdentity(mwcs []admissionv1.MutatingWebhookConfiguration) (id, network string, err error) {
	seen := map[string]bool{}
	for _, mwc := range mwcs {
		for _, wh := range mwc.Webhooks {
			p := ""
			if wh.ClientConfig.URL != nil {
				if u, err := url.Parse(*wh.ClientConfig.URL); err == nil {
					p = u.Path
				}
			} else if wh.ClientConfig.Service != nil && wh.ClientConfig.Service.Path != nil {
				p = *wh.ClientConfig.Service.Path
			}
			// A mesh without a network name injects through .../net/.
			parts := strings.Split(strings.Trim(p, "/"), "/")
			if len(parts) == 4 {
				parts = append(parts, "")
			}
			if len(parts) != 5 || parts[0] != "inject" || parts[1] != "cluster" || parts[3] != "net" || parts[2] == "" {
				return "", "", fmt.Errorf("webhook %s/%s injects through %q, which names no cluster (want /inject/cluster/ID/net/NETWORK)", mwc.Name, wh.Name, p)
			}
			id, network = parts[2], parts[4]
			seen[id+" on "+network] = true
		}
	}
	switch {
	case len(seen) == 0:
		return "", "", fmt.Errorf("no istio-sidecar-injector config map and no injection webhook: no Istio of this revision here")
	case len(seen) > 1:
		return "", "", fmt.Errorf("the injection webhooks name different clusters: %s", strings.Join(slices.Sorted(maps.Keys(seen)), ", "))
	}
	return id, network, nil
}

// parseInjectorValues reads the cluster ID and network of the injector's
// values (JSON).
func parseInjectorValues(values string) (id, network string, err error) {
	var v struct {
		Global struct {
			Network      string `json:"network"`
			MultiCluster struct {
				ClusterName string `json:"clusterName"`
			} `json:"multiCluster"`
		} `json:"global"`
	}
	if err := json.Unmarshal([]byte(values), &v); err != nil {
		return "", "", fmt.Errorf("the injector's values are not JSON: %w", err)
	}
	if v.Global.MultiCluster.ClusterName == "" {
		return "", "", fmt.Errorf("the injector's values name no cluster (global.multiCluster.clusterName): not a multicluster install")
	}
	return v.Global.MultiCluster.ClusterName, v.Global.Network, nil
}

// parseTrustDomain reads the trust domain of a mesh config (YAML), Istio's
// default when it names none.
func parseTrustDomain(meshConfig string) (string, error) {
	var m struct {
		TrustDomain string `json:"trustDomain"`
	}
	if err := yaml.Unmarshal([]byte(meshConfig), &m); err != nil {
		return "", fmt.Errorf("the mesh config is not YAML: %w", err)
	}
	if m.TrustDomain == "" {
		return DefaultTrustDomain, nil
	}
	return m.TrustDomain, nil
}
