package bundle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleProduct = `vendor: Acme
name: Acme Kubernetes Engine
version: "1.33"
type: hosted
description: Acme's managed Kubernetes.
website_url: https://acme.example/ake
documentation_url: https://acme.example/ake/istio-multicluster
contact_email_address: conformance@acme.example
cni: Acme VPC CNI
`

func TestReadProduct(t *testing.T) {
	p := filepath.Join(t.TempDir(), ProductFile)
	if err := os.WriteFile(p, []byte(sampleProduct), 0o644); err != nil {
		t.Fatal(err)
	}
	got, raw, err := ReadProduct(p)
	if err != nil || got.Vendor != "Acme" || got.CNI != "Acme VPC CNI" || string(raw) != sampleProduct {
		t.Fatalf("%+v %v", got, err)
	}
	for name, tc := range map[string]struct {
		edit func(string) string
		want string
	}{
		"a field missing":   {func(s string) string { return strings.Replace(s, "cni: Acme VPC CNI\n", "", 1) }, "missing cni"},
		"an unknown field":  {func(s string) string { return s + "logo: x\n" }, "unknown field"},
		"a type of its own": {func(s string) string { return strings.Replace(s, "type: hosted", "type: cloud", 1) }, `type "cloud"`},
		"plain http": {func(s string) string {
			return strings.Replace(s, "https://acme.example/ake\n", "http://acme.example/ake\n", 1)
		}, "website_url"},
		"not an address": {func(s string) string { return strings.Replace(s, "conformance@acme.example", "conformance team", 1) }, "contact_email_address"},
	} {
		if _, err := parseProduct([]byte(tc.edit(sampleProduct))); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}

// The verdict says what it covers: the data plane above all, since a run
// of the local source judged proxyless gRPC and no Envoy sidecar.
func TestScope(t *testing.T) {
	s := computeScope(map[string][]byte{"environment.json": []byte(sampleEnvironment), ProductFile: []byte(sampleProduct)})
	if len(s.Problems) != 0 || s.Product == nil || len(s.Runs) != 1 {
		t.Fatalf("%+v", s)
	}
	r := s.Runs[0]
	if r.DataPlane != DataPlaneProxyless || r.IstioVersion != "1.27.0" || r.PodSecurity != "restricted" || len(r.Clusters) != 2 ||
		r.Clusters[0] != "cluster1 (primary, Kubernetes v1.33.13, locality from nodes)" {
		t.Errorf("%+v", r)
	}
	text := s.String()
	for _, want := range []string{"platform: Acme Acme Kubernetes Engine 1.33 (hosted; CNI Acme VPC CNI)", "Envoy sidecars not judged", "Istio 1.27.0"} {
		if !strings.Contains(text, want) {
			t.Errorf("scope text lacks %q:\n%s", want, text)
		}
	}
	up := computeScope(map[string][]byte{"upgrade/environment.json": []byte(strings.Replace(sampleEnvironment, `"local"`, `"upstream"`, 1))})
	if up.Runs[0].DataPlane != DataPlaneSidecars || up.Product != nil {
		t.Errorf("upstream: %+v", up)
	}
	// What cannot be read keeps the core profile from certifying.
	for name, in := range map[string]map[string][]byte{
		"no fingerprint":        {},
		"a broken fingerprint":  {"environment.json": []byte("{")},
		"a broken product file": {"environment.json": []byte(sampleEnvironment), ProductFile: []byte("vendor: [")},
	} {
		v := computeVerdict(withSample(t, in))
		if v.Certified() || len(v.Scope.Problems) == 0 {
			t.Errorf("%s: certified, or no problem: %+v", name, v.Scope)
		}
	}
}

func withSample(t *testing.T, in map[string][]byte) map[string][]byte {
	in["e2e/ginkgo.json"] = reportJSON(t, sampleReports(t))
	return in
}

// A bundle written with a product file carries it, its verdict names the
// platform, and verify recomputes the same.
func TestBundleCarriesTheProduct(t *testing.T) {
	path, v, err := Write(Options{ArtifactsDir: artifacts(t, sampleReports(t)), OutDir: t.TempDir(), Command: "make byo", Now: testNow, Product: []byte(sampleProduct)})
	if err != nil {
		t.Fatal(err)
	}
	if v.Scope.Product == nil || v.Scope.Product.Name != "Acme Kubernetes Engine" || !v.Certified() {
		t.Fatalf("%+v", v.Scope)
	}
	res, err := Verify(path)
	if err != nil || res.Verdict.Scope.Product == nil || res.Verdict.Scope.Product.Vendor != "Acme" {
		t.Fatalf("%+v %v", res.Verdict.Scope, err)
	}
}
