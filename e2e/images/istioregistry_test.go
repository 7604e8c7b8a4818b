package images

import (
	"maps"
	"regexp"
	"strings"
	"testing"
)

// Istio's images in a user's registry share one tag per release, under
// meshconform's own repository (never Istio's official names), and the tag
// follows what either image is built from: a registry holding an older
// build of the agent or of istiod is found out by the preflight.
func TestIstioUserRepoTagsFollowTheBuild(t *testing.T) {
	rel, err := LookupIstioRelease("1.29.2")
	if err != nil {
		t.Fatal(err)
	}
	pilot, proxy := IstioUserRepoTags(rel)
	tagOf := func(rt string) string { return rt[strings.LastIndex(rt, ":")+1:] }
	if !strings.HasPrefix(pilot, "meshconform/istio/pilot:") || !strings.HasPrefix(proxy, "meshconform/istio/proxyv2:") {
		t.Errorf("repoTags %s, %s: not under meshconform/istio", pilot, proxy)
	}
	if tag := tagOf(pilot); tag != tagOf(proxy) || !regexp.MustCompile(`^1\.29\.2-mc[0-9a-f]{12}$`).MatchString(tag) {
		t.Errorf("tags %s, %s: want one tag, 1.29.2-mc<12 hex>", tagOf(pilot), tagOf(proxy))
	}
	if again, _ := IstioUserRepoTags(rel); again != pilot {
		t.Errorf("the tag is not stable: %s, then %s", pilot, again)
	}
	hub, tag := UserRegistry{Prefix: "registry.acme.example:5443/mirror"}.IstioHubTag(rel)
	if hub+"/pilot:"+tag != "registry.acme.example:5443/mirror/"+pilot {
		t.Errorf("hub %s and tag %s do not name %s", hub, tag, pilot)
	}

	agent := rel
	agent.AgentTags = append([]string{"extra"}, rel.AgentTags...)
	if p, _ := IstioUserRepoTags(agent); p == pilot {
		t.Error("another agent build kept the tag")
	}
	std := rel
	std.Require = maps.Clone(rel.Require)
	std.Require["istio.io/api"] = "v1.29.1"
	if p, _ := IstioUserRepoTags(std); p == pilot {
		t.Error("another istiod build kept the tag")
	}
	other, err := LookupIstioRelease("1.27.0")
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := IstioUserRepoTags(other); p == pilot || !strings.Contains(p, ":1.27.0-mc") {
		t.Errorf("Istio 1.27.0's pilot is %s", p)
	}
}
