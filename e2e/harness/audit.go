package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/internal/docker"
)

// Leftovers lists, by name, what of the named clusters and of the run still
// exists: node containers, containers and networks carrying meshconform's
// owner label, kubeconfig files, and kubeconfig contexts (in our files and in
// the user's default kubeconfig). Empty means a clean teardown.
func (h *Harness) Leftovers(ctx context.Context, names ...string) ([]string, error) {
	var left []string
	for _, n := range names {
		nodes, err := docker.Lines(ctx, "ps", "-a", "--filter", "label=io.x-k8s.kind.cluster="+n, "--format", "{{.Names}}")
		if err != nil {
			return nil, err
		}
		for _, c := range nodes {
			left = append(left, "container "+c+" (cluster "+n+")")
		}
		kc := h.Clusters.KubeconfigPath(n)
		if _, err := os.Stat(kc); err == nil {
			left = append(left, "kubeconfig file "+kc)
		}
		for _, path := range []string{kc, defaultKubeconfig()} {
			if hasContext(path, clusters.Context(n)) {
				left = append(left, fmt.Sprintf("kubeconfig context %s in %s", clusters.Context(n), path))
			}
		}
	}
	owned, err := docker.Lines(ctx, "ps", "-a", "--filter", "label="+images.OwnerLabel, "--format", "{{.Names}}")
	if err != nil {
		return nil, err
	}
	for _, c := range owned {
		left = append(left, "container "+c)
	}
	nets, err := docker.Lines(ctx, "network", "ls", "--filter", "label="+images.OwnerLabel, "--format", "{{.Name}}")
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		left = append(left, "docker network "+n)
	}
	sort.Strings(left)
	return left, nil
}

func defaultKubeconfig() string {
	if p := os.Getenv("KUBECONFIG"); p != "" {
		return filepath.SplitList(p)[0]
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".kube", "config")
}

func hasContext(path, context string) bool {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return false
	}
	_, ok := cfg.Contexts[context]
	return ok
}
