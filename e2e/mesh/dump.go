package mesh

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/meshconform/meshconform/e2e/clusters"
)

// DumpMesh writes the control plane's view of the mesh to dir: proxy-status
// as istioctl prints it, istiod's debug endpoints clusterz, syncz and
// configz, and istiod's goroutines (its pprof, grouped by stack): what
// tells where an istiod that stopped answering or pushing is stuck (seen:
// its syncz hung with a remote's API server unreachable). Rendered
// manifests are already in the installer's ManifestsDir.
// With meshWide false (clusters the user brought) istiod's configz and
// registryz, which hold every namespace's configuration and services, are
// left out: only what the run itself made is the run's to copy.
func DumpMesh(ctx context.Context, dir string, istioctl Istioctl, revision string, primary *clusters.Cluster, meshWide bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	// Without an istioctl (a mesh of any version, not installed by
	// meshconform) istiod-syncz.json below is proxy-status's source.
	if istioctl.Path != "" {
		_, out, err := istioctl.ProxyStatus(ctx, primary, revision, false)
		if err != nil {
			out += "\n" + err.Error()
		}
		errs = append(errs, os.WriteFile(filepath.Join(dir, "proxy-status.txt"), []byte(out), 0o644))
	}
	endpoints := []string{"clusterz", "syncz"}
	if meshWide {
		endpoints = append(endpoints, "configz", "registryz")
	}
	for _, ep := range endpoints {
		raw, err := IstiodDebug(ctx, primary, revision, "/debug/"+ep)
		if err != nil {
			raw = []byte(err.Error())
			errs = append(errs, err)
		}
		errs = append(errs, os.WriteFile(filepath.Join(dir, "istiod-"+ep+".json"), raw, 0o644))
	}
	// Stacks only: no arguments' values, nothing of the mesh's secrets.
	raw, err := IstiodDebug(ctx, primary, revision, "/debug/pprof/goroutine?debug=1")
	if err != nil {
		raw = []byte(err.Error())
		errs = append(errs, err)
	}
	errs = append(errs, os.WriteFile(filepath.Join(dir, "istiod-goroutines.txt"), raw, 0o644))
	return errors.Join(errs...)
}
