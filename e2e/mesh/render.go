// Package mesh installs Istio on the run's clusters by their roles (a
// primary with its remotes, several remotes, or several primaries) the way
// Istio's multicluster install guides do, step by step, with the istioctl
// of the chosen Istio version; it reads istiod's view of the mesh and holds
// the one model of a mesh (Model) the rest of meshconform reads.
package mesh

import (
	"bytes"
	"fmt"
	"text/template"

	"github.com/meshconform/meshconform/fixtures/istio"
)

// Fixture templates in fixtures/istio.
const (
	PrimaryTemplate      = "primary.yaml.tmpl"
	RemoteTemplate       = "remote.yaml.tmpl"
	IstiodLBTemplate     = "istiod-lb.yaml.tmpl"
	EastWestTemplate     = "eastwest.yaml.tmpl"
	ExposeIstiodTemplate = "expose-istiod.yaml.tmpl"
)

// Values fill the fixture templates.
type Values struct {
	Hub, Tag string
	// Profile of the primary: "minimal" for the local source (no Envoy, so
	// no gateways), "default" for upstream, as the guide installs it.
	Profile            string
	MeshID             string
	Cluster            string
	Network            string
	Revision           string
	RemotePilotAddress string
	// Replicas is istiod's replica count on a primary (at least 1).
	Replicas int
	// ExternalIstiod: the primary serves remote clusters.
	ExternalIstiod bool
	// ImagePullSecret names the Secret Istio's pods (and the proxies it
	// injects) pull Hub's images with; "" for none.
	ImagePullSecret string
}

// IstiodService is the istiod Service's name: "istiod", or "istiod-<rev>".
func (v Values) IstiodService() string {
	if v.Revision != "" {
		return "istiod-" + v.Revision
	}
	return "istiod"
}

// Render fills fixtures/istio/<name>, as embedded, with v.
func Render(name string, v Values) ([]byte, error) {
	raw, err := istio.Templates.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read fixture: %w", err)
	}
	t, err := template.New(name).Option("missingkey=error").Parse(string(raw))
	if err != nil {
		return nil, fmt.Errorf("parse fixture %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("render fixture %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// bytesSplitDocs splits a multi-document YAML stream at "---" lines.
func bytesSplitDocs(raw []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	for _, line := range bytes.SplitAfter(raw, []byte("\n")) {
		if bytes.Equal(bytes.TrimSpace(line), []byte("---")) {
			docs = append(docs, cur)
			cur = nil
			continue
		}
		cur = append(cur, line...)
	}
	return append(docs, cur)
}
