package mesh

import (
	"testing"

	"sigs.k8s.io/yaml"
)

func renderYAML(t *testing.T, name string, v Values) map[string]any {
	t.Helper()
	raw, err := Render(name, v)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s does not render to YAML: %v\n%s", name, err, raw)
	}
	return doc
}

func dig(doc map[string]any, path ...string) any {
	var cur any = doc
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

var base = Values{Hub: "docker.io/istio", Tag: "1.29.2", Profile: "minimal", MeshID: "mesh1", Cluster: "cluster1", Network: "network1", Replicas: 1, ExternalIstiod: true}

func TestPrimaryRendersTheGuidesValues(t *testing.T) {
	doc := renderYAML(t, PrimaryTemplate, base)
	checks := map[string]any{
		"meshID": dig(doc, "spec", "values", "global", "meshID"), "clusterName": dig(doc, "spec", "values", "global", "multiCluster", "clusterName"),
		"network": dig(doc, "spec", "values", "global", "network"), "externalIstiod": dig(doc, "spec", "values", "global", "externalIstiod"),
		"profile": dig(doc, "spec", "profile"), "tag": dig(doc, "spec", "tag"),
	}
	want := map[string]any{"meshID": "mesh1", "clusterName": "cluster1", "network": "network1", "externalIstiod": true, "profile": "minimal", "tag": "1.29.2"}
	for k, w := range want {
		if checks[k] != w {
			t.Errorf("%s = %v, want %v", k, checks[k], w)
		}
	}
	if dig(doc, "spec", "revision") != nil {
		t.Error("revision set without one asked for")
	}
	rev := base
	rev.Revision = "canary"
	if got := dig(renderYAML(t, PrimaryTemplate, rev), "spec", "revision"); got != "canary" {
		t.Errorf("revision = %v", got)
	}
}

// An HA primary runs its replicas with the autoscaler off (it would own the
// count otherwise); one replica leaves the profile's defaults alone. A
// primary without remotes (multi-primary) is not an external istiod.
func TestPrimaryRendersReplicasAndRole(t *testing.T) {
	doc := renderYAML(t, PrimaryTemplate, base)
	if dig(doc, "spec", "components") != nil || dig(doc, "spec", "values", "pilot") != nil {
		t.Errorf("one replica changed the profile's pilot settings: %v", doc["spec"])
	}
	ha := base
	ha.Replicas = 3
	doc = renderYAML(t, PrimaryTemplate, ha)
	if got := dig(doc, "spec", "components", "pilot", "k8s", "replicaCount"); got != float64(3) {
		t.Errorf("replicaCount = %v", got)
	}
	if got := dig(doc, "spec", "components", "pilot", "k8s", "resources", "requests", "cpu"); got != "100m" {
		t.Errorf("HA replicas request %v CPU each: three of the profile's 500m do not fit a 2-CPU node", got)
	}
	if got := dig(doc, "spec", "values", "pilot", "autoscaleEnabled"); got != false {
		t.Errorf("autoscaleEnabled = %v", got)
	}
	if dig(doc, "spec", "values", "global", "meshID") != "mesh1" {
		t.Error("HA values lost the global ones")
	}
	mp := base
	mp.ExternalIstiod = false
	if got := dig(renderYAML(t, PrimaryTemplate, mp), "spec", "values", "global", "externalIstiod"); got != nil {
		t.Errorf("externalIstiod = %v on a primary without remotes", got)
	}
}

func TestRemoteRendersInjectionPathAndPilotAddress(t *testing.T) {
	v := base
	v.Cluster, v.RemotePilotAddress = "cluster2", "172.30.255.200"
	doc := renderYAML(t, RemoteTemplate, v)
	if got := dig(doc, "spec", "values", "istiodRemote", "injectionPath"); got != "/inject/cluster/cluster2/net/network1" {
		t.Errorf("injectionPath = %v", got)
	}
	if got := dig(doc, "spec", "values", "global", "remotePilotAddress"); got != "172.30.255.200" {
		t.Errorf("remotePilotAddress = %v", got)
	}
	if dig(doc, "spec", "profile") != "remote" {
		t.Error("not the remote profile")
	}
}

func TestIstiodLoadBalancerSelectsTheRevision(t *testing.T) {
	doc := renderYAML(t, IstiodLBTemplate, base)
	if dig(doc, "metadata", "name") != "istiod-remote" || dig(doc, "spec", "selector", "istio.io/rev") != "default" || dig(doc, "spec", "type") != "LoadBalancer" {
		t.Errorf("default revision service = %v", doc)
	}
	ports := dig(doc, "spec", "ports").([]any)
	if len(ports) != 2 || ports[0].(map[string]any)["port"] != float64(15012) || ports[1].(map[string]any)["port"] != float64(15017) {
		t.Errorf("ports = %v", ports)
	}
	rev := base
	rev.Revision = "canary"
	doc = renderYAML(t, IstiodLBTemplate, rev)
	if dig(doc, "metadata", "name") != "istiod-canary-remote" || dig(doc, "spec", "selector", "istio.io/rev") != "canary" {
		t.Errorf("revision service = %v", doc)
	}
}

func TestUpstreamExposureRendersAsTheGuide(t *testing.T) {
	v := base
	v.Profile = "default"
	ew := renderYAML(t, EastWestTemplate, v)
	gw := dig(ew, "spec", "components", "ingressGateways").([]any)[0].(map[string]any)
	if gw["name"] != "istio-eastwestgateway" || dig(gw, "label", "topology.istio.io/network") != "network1" {
		t.Errorf("east-west gateway = %v", gw)
	}
	// expose-istiod is two documents: check the VirtualService routes.
	raw, err := Render(ExposeIstiodTemplate, v)
	if err != nil {
		t.Fatal(err)
	}
	docs := splitYAML(t, raw)
	if len(docs) != 2 || dig(docs[0], "kind") != "Gateway" || dig(docs[1], "metadata", "name") != "istiod-vs" {
		t.Fatalf("expose-istiod = %v", docs)
	}
	routes := dig(docs[1], "spec", "tls").([]any)
	dest := dig(routes[1].(map[string]any)["route"].([]any)[0].(map[string]any), "destination")
	if dig(dest.(map[string]any), "host") != "istiod.istio-system.svc.cluster.local" || dig(dest.(map[string]any), "port", "number") != float64(443) {
		t.Errorf("webhook route = %v", dest)
	}
	v.Revision = "canary"
	docs = splitYAML(t, mustRender(t, ExposeIstiodTemplate, v))
	sni := dig(docs[1], "spec", "tls").([]any)[0].(map[string]any)["match"].([]any)[0].(map[string]any)["sniHosts"].([]any)
	if dig(docs[1], "metadata", "name") != "istiod-vs-canary" || sni[0] != "istiod-canary.istio-system.svc" {
		t.Errorf("revision VirtualService = %v", docs[1])
	}
}

func mustRender(t *testing.T, name string, v Values) []byte {
	raw, err := Render(name, v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func splitYAML(t *testing.T, raw []byte) []map[string]any {
	var out []map[string]any
	for _, part := range bytesSplitDocs(raw) {
		var doc map[string]any
		if err := yaml.Unmarshal(part, &doc); err != nil {
			t.Fatal(err)
		}
		if doc != nil {
			out = append(out, doc)
		}
	}
	return out
}

// Images from a user's registry: both the primary's and the remote's
// install name the pull secret (istiod's pods and the injected agents pull
// with it); without one, neither names any.
func TestInstallsNameThePullSecret(t *testing.T) {
	for _, tmpl := range []string{PrimaryTemplate, RemoteTemplate} {
		if got := dig(renderYAML(t, tmpl, base), "spec", "values", "global", "imagePullSecrets"); got != nil {
			t.Errorf("%s: imagePullSecrets = %v without a pull secret", tmpl, got)
		}
		v := base
		v.Hub, v.Tag, v.ImagePullSecret = "registry.acme.example:5443/meshconform/istio", "1.29.2-mc0123456789ab", "meshconform-image-pull"
		doc := renderYAML(t, tmpl, v)
		secrets, _ := dig(doc, "spec", "values", "global", "imagePullSecrets").([]any)
		if len(secrets) != 1 || secrets[0] != "meshconform-image-pull" {
			t.Errorf("%s: imagePullSecrets = %v", tmpl, secrets)
		}
		if dig(doc, "spec", "hub") != v.Hub || dig(doc, "spec", "tag") != v.Tag {
			t.Errorf("%s: hub/tag = %v:%v", tmpl, dig(doc, "spec", "hub"), dig(doc, "spec", "tag"))
		}
	}
}
