package mesh

import (
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cluster ID, network and trust domain come from what the mesh tells
// its proxies, never from the topology's names.
func TestParseInjectorValuesAndTrustDomain(t *testing.T) {
	id, network, err := parseInjectorValues(`{"global":{"network":"net-east","multiCluster":{"clusterName":"east-1","enabled":true},"meshID":"m"}}`)
	if err != nil || id != "east-1" || network != "net-east" {
		t.Fatalf("%q %q %v", id, network, err)
	}
	for name, tc := range map[string]struct{ values, want string }{
		"single cluster install": {`{"global":{"multiCluster":{"clusterName":""}}}`, "name no cluster"},
		"values not JSON":        {`global: {}`, "not JSON"},
	} {
		if _, _, err := parseInjectorValues(tc.values); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	if td, err := parseTrustDomain("defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\ntrustDomain: acme.example\n"); err != nil || td != "acme.example" {
		t.Errorf("%q %v", td, err)
	}
	// No trustDomain in the mesh config is Istio's default.
	if td, err := parseTrustDomain("defaultConfig: {}\n"); err != nil || td != DefaultTrustDomain {
		t.Errorf("%q %v", td, err)
	}
	if _, err := parseTrustDomain("trustDomain: ["); err == nil {
		t.Error("a broken mesh config read")
	}
}

func webhooks(urls ...string) []admissionv1.MutatingWebhookConfiguration {
	mwc := admissionv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector"}}
	for i, u := range urls {
		mwc.Webhooks = append(mwc.Webhooks, admissionv1.MutatingWebhook{Name: string(rune('a'+i)) + ".sidecar-injector.istio.io", ClientConfig: admissionv1.WebhookClientConfig{URL: &u}})
	}
	return []admissionv1.MutatingWebhookConfiguration{mwc}
}

// A remote's identity is the one its webhooks have istiod inject; webhooks
// that disagree, or name none, are refused.
func TestWebhookIdentity(t *testing.T) {
	id, network, err := webhookIdentity(webhooks("https://istiod.elb.example:15017/inject/cluster/west-1/net/net-west", "https://istiod.elb.example:15017/inject/cluster/west-1/net/net-west"))
	if err != nil || id != "west-1" || network != "net-west" {
		t.Fatalf("%q %q %v", id, network, err)
	}
	if id, network, err := webhookIdentity(webhooks("https://a:15017/inject/cluster/west-1/net/")); err != nil || id != "west-1" || network != "" {
		t.Errorf("no network name: %q %q %v", id, network, err)
	}
	for name, tc := range map[string]struct {
		mwcs []admissionv1.MutatingWebhookConfiguration
		want string
	}{
		"two identities": {webhooks("https://a:15017/inject/cluster/west-1/net/n", "https://a:15017/inject/cluster/east-1/net/n"), "different clusters: east-1 on n, west-1 on n"},
		"plain /inject":  {webhooks("https://a:15017/inject"), "names no cluster"},
		"no webhook":     {nil, "no Istio of this revision"},
	} {
		if _, _, err := webhookIdentity(tc.mwcs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}
