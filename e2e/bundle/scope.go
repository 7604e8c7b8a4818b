package bundle

import (
	"encoding/json"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// ProductFile is the platform's own description a vendor adds to a bundle
// (meshconform bundle --product), as Kubernetes conformance submissions
// carry a PRODUCT.yaml: the verdict names what it certifies.
const ProductFile = "PRODUCT.yaml"

// environmentFile is the run's fingerprint (harness.EnvironmentFile).
const environmentFile = "environment.json"

// Product is PRODUCT.yaml.
type Product struct {
	Vendor  string `json:"vendor"`
	Name    string `json:"name"`
	Version string `json:"version"`
	// Type is what the platform is: distribution, hosted, installer.
	Type        string `json:"type"`
	Description string `json:"description"`
	WebsiteURL  string `json:"website_url"`
	// DocumentationURL is where users learn to run Istio multicluster on
	// the platform.
	DocumentationURL    string `json:"documentation_url"`
	ContactEmailAddress string `json:"contact_email_address"`
	// CNI is the pod network the clusters ran (Calico, Cilium, AWS VPC CNI…).
	CNI string `json:"cni"`
}

// ReadProduct reads and checks a PRODUCT.yaml: every field given, the
// type one of distribution, hosted or installer, the URLs absolute https
// and the address an email address. It returns the file's bytes, which the
// bundle carries as they are.
func ReadProduct(file string) (Product, []byte, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return Product{}, nil, fmt.Errorf("product file: %w", err)
	}
	p, err := parseProduct(raw)
	if err != nil {
		return p, nil, fmt.Errorf("product file %s: %w", file, err)
	}
	return p, raw, nil
}

func parseProduct(raw []byte) (Product, error) {
	var p Product
	if err := yaml.UnmarshalStrict(raw, &p); err != nil {
		return p, err
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"vendor", p.Vendor}, {"name", p.Name}, {"version", p.Version}, {"type", p.Type},
		{"description", p.Description}, {"website_url", p.WebsiteURL}, {"documentation_url", p.DocumentationURL},
		{"contact_email_address", p.ContactEmailAddress}, {"cni", p.CNI}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return p, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	switch p.Type {
	case "distribution", "hosted", "installer":
	default:
		return p, fmt.Errorf("type %q: want distribution, hosted or installer", p.Type)
	}
	for _, u := range []struct{ name, v string }{{"website_url", p.WebsiteURL}, {"documentation_url", p.DocumentationURL}} {
		if pu, err := url.Parse(u.v); err != nil || pu.Scheme != "https" || pu.Host == "" {
			return p, fmt.Errorf("%s %q: want an https URL", u.name, u.v)
		}
	}
	if a, err := mail.ParseAddress(p.ContactEmailAddress); err != nil || a.Address != p.ContactEmailAddress {
		return p, fmt.Errorf("contact_email_address %q: want an email address", p.ContactEmailAddress)
	}
	return p, nil
}

// Scope is what a verdict covers: the platform as its vendor names it
// (PRODUCT.yaml, when bundled) and what the run judged (environment.json):
// above all the data plane, since proxyless gRPC judged here says nothing
// of Envoy sidecars.
type Scope struct {
	Product *Product `json:"product,omitempty"`
	// Runs are the fingerprints found, one per environment.json.
	Runs []RunScope `json:"runs"`
	// Problems are what kept the scope from being read (no fingerprint, a
	// product file that does not parse); each is also a reason the core
	// profile is not certified.
	Problems []string `json:"problems,omitempty"`
}

// RunScope is one run's fingerprint, as a verdict states it.
type RunScope struct {
	Fingerprint     string   `json:"fingerprint"` // path in the bundle
	DataPlane       string   `json:"dataPlane"`
	ImageSource     string   `json:"imageSource"`
	MeshMode        string   `json:"meshMode"`
	BroughtClusters bool     `json:"broughtClusters"`
	IstioVersion    string   `json:"istioVersion"`
	PodSecurity     string   `json:"podSecurity,omitempty"`
	Clusters        []string `json:"clusters"`
}

// Data planes a verdict can cover.
const (
	DataPlaneProxyless = "proxyless gRPC (Istio's agent, no Envoy): Envoy sidecars not judged"
	DataPlaneSidecars  = "Envoy sidecars"
)

// isScopeInput tells whether a bundled file goes into the scope.
func isScopeInput(rel string) bool {
	return rel == ProductFile || path.Base(rel) == environmentFile
}

// computeScope reads the scope from the bundle's fingerprints and product
// file (inputs: path in the bundle → bytes). It never fails: what cannot
// be read is a Problem.
func computeScope(inputs map[string][]byte) Scope {
	var s Scope
	if raw, ok := inputs[ProductFile]; ok {
		if p, err := parseProduct(raw); err != nil {
			s.Problems = append(s.Problems, fmt.Sprintf("%s: %v", ProductFile, err))
		} else {
			s.Product = &p
		}
	}
	var files []string
	for f := range inputs {
		if path.Base(f) == environmentFile {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	for _, f := range files {
		var env struct {
			ImageSource string `json:"imageSource"`
			Brought     bool   `json:"broughtClusters"`
			MeshMode    string `json:"meshMode"`
			PodSecurity string `json:"podSecurity"`
			Istio       struct {
				Version string `json:"version"`
			} `json:"istio"`
			Clusters []struct {
				Name          string `json:"name"`
				Primary       bool   `json:"primary"`
				ServerVersion string `json:"serverVersion"`
				LocalityFrom  string `json:"localityFrom"`
			} `json:"clusters"`
		}
		if err := json.Unmarshal(inputs[f], &env); err != nil {
			s.Problems = append(s.Problems, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		r := RunScope{Fingerprint: f, DataPlane: DataPlaneSidecars, ImageSource: env.ImageSource, MeshMode: env.MeshMode,
			BroughtClusters: env.Brought, IstioVersion: env.Istio.Version, PodSecurity: env.PodSecurity}
		if env.ImageSource == "local" {
			r.DataPlane = DataPlaneProxyless
		}
		for _, c := range env.Clusters {
			role := "remote"
			if c.Primary {
				role = "primary"
			}
			desc := fmt.Sprintf("%s (%s, Kubernetes %s", c.Name, role, c.ServerVersion)
			if c.LocalityFrom != "" {
				desc += ", locality from " + c.LocalityFrom
			}
			r.Clusters = append(r.Clusters, desc+")")
		}
		s.Runs = append(s.Runs, r)
	}
	if len(s.Runs) == 0 {
		s.Problems = append(s.Problems, "no "+environmentFile+": what was judged is not recorded")
	}
	return s
}

// String says in a few lines what the verdict covers.
func (s Scope) String() string {
	var b strings.Builder
	if p := s.Product; p != nil {
		fmt.Fprintf(&b, "platform: %s %s %s (%s; CNI %s)\n", p.Vendor, p.Name, p.Version, p.Type, p.CNI)
	} else {
		fmt.Fprintf(&b, "platform: not named (no %s in the bundle)\n", ProductFile)
	}
	for _, r := range s.Runs {
		fmt.Fprintf(&b, "judged (%s): data plane %s; Istio %s, mesh %s on %s clusters; image source %s",
			r.Fingerprint, r.DataPlane, r.IstioVersion, r.MeshMode, map[bool]string{true: "brought", false: "meshconform's kind"}[r.BroughtClusters], r.ImageSource)
		if r.PodSecurity != "" {
			fmt.Fprintf(&b, "; apps under %s Pod Security", r.PodSecurity)
		}
		fmt.Fprintf(&b, "\n  clusters: %s\n", strings.Join(r.Clusters, "; "))
	}
	for _, p := range s.Problems {
		fmt.Fprintf(&b, "scope: %s\n", p)
	}
	return b.String()
}
