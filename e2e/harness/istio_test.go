package harness

import (
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/topology"
	"github.com/meshconform/meshconform/e2e/upgrade"
)

// The upgrade suite on the upstream source (a user's staging clusters that
// reach a registry) installs Istio's own images of each version: the
// primary's IstioOperator for the old and the new version names hub
// docker.io/istio, the version's tag and, in a canary, the revision named
// for it, with the guide's default profile and istiod behind the east-west
// gateway. A render that kept one version's tag for both, lost the
// revision or fell back to the local source's proxyless profile would
// upgrade nothing the user runs. This machine pulls no image: the suite
// itself runs here on the local source (make byo, mode upgrade).
func TestUpgradeRendersEachVersionsOfficialImages(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Load(filepath.Join(root, "kindconfigs"), topology.DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := upgrade.ParsePlan(upgrade.DefaultFrom, upgrade.DefaultTo, "canary")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		source, profile string
		exposure        mesh.Exposure
	}{{images.SourceUpstream, "default", mesh.ExposeEastWest}, {images.SourceLocal, "minimal", mesh.ExposeLoadBalancer}} {
		for _, version := range []string{plan.From, plan.To} {
			v, exposure := installValues(c.source, topo, version, mesh.RevisionName(version))
			if exposure != c.exposure {
				t.Errorf("%s %s: istiod exposed by %s, want %s", c.source, version, exposure, c.exposure)
			}
			v.Cluster = topo.Primary().Name
			raw, err := mesh.Render(mesh.PrimaryTemplate, v)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Spec struct{ Hub, Tag, Revision, Profile string }
			}
			if err := yaml.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			want := struct{ Hub, Tag, Revision, Profile string }{"docker.io/istio", version, mesh.RevisionName(version), c.profile}
			if doc.Spec != want {
				t.Errorf("%s source, Istio %s: primary renders %+v, want %+v", c.source, version, doc.Spec, want)
			}
		}
	}
	if pilot, proxy, _ := images.IstioImages(plan.From); pilot != "docker.io/istio/pilot:"+plan.From || proxy != "docker.io/istio/proxyv2:"+plan.From {
		t.Errorf("official images of %s: %s, %s", plan.From, pilot, proxy)
	}
}
