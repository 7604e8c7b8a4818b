package topology

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// broughtFile is a brought-clusters file as written: clusters a user
// brings, under any names, each with the kubeconfig context that reaches
// it and its role. What Istio calls a cluster (its cluster ID) is given
// here, or read from the installed mesh (MESHCONFORM_MESH=existing), or
// is the name.
type broughtFile struct {
	// IstiodReplicas is how many istiod replicas each primary runs (the
	// HA check's expectation; default 1).
	IstiodReplicas int `json:"istiodReplicas"`
	Clusters       []struct {
		Name         string `json:"name"`
		Context      string `json:"context"`
		Primary      bool   `json:"primary"`
		ControlPlane string `json:"controlPlane"`
		ClusterID    string `json:"clusterID"`
		MeshNetwork  string `json:"meshNetwork"`
		// IstioNamespace is where the mesh's Istio lives on this cluster
		// (default istio-system).
		IstioNamespace string `json:"istioNamespace"`
	} `json:"clusters"`
}

// Brought is a topology of clusters the user brings, read from a file
// (MESHCONFORM_CLUSTERS), and which kubeconfig context reaches each.
type Brought struct {
	*Topology
	// Contexts maps each cluster's name to its context.
	Contexts map[string]string
}

// LoadBrought reads and checks a brought-clusters file: every cluster
// named (a DNS label) with a context of its own, at least one primary,
// each remote's controlPlane a primary of the file. Nothing of kind or
// Docker applies: the clusters exist already.
func LoadBrought(path string) (*Brought, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clusters file: %w", err)
	}
	var f broughtFile
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		return nil, fmt.Errorf("clusters file %s: %w", path, err)
	}
	t := &Topology{Name: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), IstiodReplicas: f.IstiodReplicas}
	if t.IstiodReplicas == 0 {
		t.IstiodReplicas = 1
	}
	b := &Brought{Topology: t, Contexts: map[string]string{}}
	contexts, ids := map[string]string{}, map[string]string{}
	for i, fc := range f.Clusters {
		if msgs := validation.IsDNS1123Label(fc.Name); len(msgs) > 0 {
			return nil, fmt.Errorf("clusters file %s: cluster %d: name %q: %s", path, i+1, fc.Name, strings.Join(msgs, "; "))
		}
		if fc.Context == "" {
			return nil, fmt.Errorf("clusters file %s: cluster %s names no context", path, fc.Name)
		}
		if other, dup := contexts[fc.Context]; dup {
			return nil, fmt.Errorf("clusters file %s: clusters %s and %s both name context %q: each needs its own cluster", path, other, fc.Name, fc.Context)
		}
		contexts[fc.Context] = fc.Name
		c := Cluster{Name: fc.Name, ClusterID: fc.ClusterID, ClusterIDGiven: fc.ClusterID != "", Primary: fc.Primary, ControlPlane: fc.ControlPlane, MeshNetwork: fc.MeshNetwork}
		if c.ClusterID == "" {
			c.ClusterID = c.Name
		}
		if fc.IstioNamespace != "" {
			if msgs := validation.IsDNS1123Label(fc.IstioNamespace); len(msgs) > 0 {
				return nil, fmt.Errorf("clusters file %s: cluster %s: istioNamespace %q: %s", path, fc.Name, fc.IstioNamespace, strings.Join(msgs, "; "))
			}
			c.istioNamespace = fc.IstioNamespace
		}
		// The ID names the remote secret and the injection path.
		if msgs := validation.IsDNS1123Label(c.ClusterID); len(msgs) > 0 {
			return nil, fmt.Errorf("clusters file %s: cluster %s: clusterID %q: %s", path, c.Name, c.ClusterID, strings.Join(msgs, "; "))
		}
		if other, dup := ids[c.ClusterID]; dup {
			return nil, fmt.Errorf("clusters file %s: clusters %s and %s both have Istio cluster ID %q (a cluster without clusterID has its name)", path, other, c.Name, c.ClusterID)
		}
		ids[c.ClusterID] = c.Name
		t.Clusters = append(t.Clusters, c)
		b.Contexts[fc.Name] = fc.Context
	}
	t.defaultControlPlanes()
	if err := t.validateRoles(); err != nil {
		return nil, fmt.Errorf("clusters file %s: %w", path, err)
	}
	return b, nil
}
