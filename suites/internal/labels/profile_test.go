package labels

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"sort"
	"testing"

	"github.com/meshconform/meshconform/e2e/bundle"
)

// declared lists every label constant of this package. The bundle's
// certification profiles name capabilities by these labels but cannot
// import this internal package, so this test is where the two meet.
var declared = map[string]string{
	"Platform":             Platform,
	"Networking":           Networking,
	"LoadBalancer":         LoadBalancer,
	"FlatNetwork":          FlatNetwork,
	"Teardown":             Teardown,
	"Install":              Install,
	"Conformance":          Conformance,
	"CrossCluster":         CrossCluster,
	"ReachAll":             ReachAll,
	"ProxyStatus":          ProxyStatus,
	"TrafficRules":         TrafficRules,
	"MTLS":                 MTLS,
	"Failover":             Failover,
	"PodSecurity":          PodSecurity,
	"HAControlPlane":       HAControlPlane,
	"PrimaryLoss":          PrimaryLoss,
	"Faults":               Faults,
	"Upgrade":              Upgrade,
	"CanaryUpgrade":        CanaryUpgrade,
	"InPlaceUpgrade":       InPlaceUpgrade,
	"Resilience":           Resilience,
	"IstiodDown":           IstiodDown,
	"RemoteCutOff":         RemoteCutOff,
	"RemoteAPIUnreachable": RemoteAPIUnreachable,
	"RemoteSecret":         RemoteSecret,
	"PodChurn":             PodChurn,
	"Propagation":          Propagation,
	"IstiodMetrics":        IstiodMetrics,
}

// Every capability of a certification profile is a label the suites put
// on specs; a renamed label would otherwise leave a capability no spec
// carries and no run could certify.
func TestProfilesUseDeclaredLabels(t *testing.T) {
	values := map[string]bool{}
	for _, v := range declared {
		values[v] = true
	}
	for profile, capabilities := range map[string][]string{
		"core": bundle.CoreCapabilities, "extended": bundle.ExtendedCapabilities,
	} {
		if len(capabilities) == 0 {
			t.Errorf("profile %s has no capability", profile)
		}
		for _, c := range capabilities {
			if !values[c] {
				t.Errorf("profile %s names %q, which is no label constant of package labels", profile, c)
			}
			if slices.Contains(bundle.CoreCapabilities, c) && slices.Contains(bundle.ExtendedCapabilities, c) {
				t.Errorf("%q is in both profiles", c)
			}
		}
	}
}

// declared above is the whole of labels.go: a constant added there must be
// added here, so the check above stays the one source of truth.
func TestDeclaredListsEveryConstant(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "labels.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var inFile []string
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					inFile = append(inFile, n.Name)
				}
			}
		}
	}
	var listed []string
	for name := range declared {
		listed = append(listed, name)
	}
	sort.Strings(inFile)
	sort.Strings(listed)
	if !slices.Equal(inFile, listed) {
		t.Errorf("labels.go declares\n%q\nthe test lists\n%q", inFile, listed)
	}
}
