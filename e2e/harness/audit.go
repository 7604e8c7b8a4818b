package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/internal/docker"
	"github.com/meshconform/meshconform/e2e/internal/fsutil"
)

// Inventory is what exists on the machine that a run could leave behind,
// each entry named so a leftover can be reported by name.
type Inventory struct {
	Containers  []string `json:"containers"`
	Networks    []string `json:"networks"`
	Contexts    []string `json:"kubeconfig_contexts"`
	Kubeconfigs []string `json:"kubeconfig_files"`
	TempFiles   []string `json:"temp_files"`
}

// Count is the number of entries.
func (i Inventory) Count() int {
	return len(i.Containers) + len(i.Networks) + len(i.Contexts) + len(i.Kubeconfigs) + len(i.TempFiles)
}

// InventoryBefore is the machine's inventory taken before the run created
// anything, and whether it was taken (not on clusters the user brought,
// whose audit is their own snapshot, nor when the run stopped earlier).
func (h *Harness) InventoryBefore() (Inventory, bool) {
	if h.before == nil {
		return Inventory{}, false
	}
	return *h.before, true
}

// Snapshot lists every container and network, the contexts of the user's
// default kubeconfig and of the run's kubeconfig files, and meshconform's
// temporary files (unfinished builds in the cache, temp dirs).
func (h *Harness) Snapshot(ctx context.Context) (Inventory, error) {
	var inv Inventory
	var err error
	if inv.Containers, err = docker.Lines(ctx, "ps", "-a", "--format", "{{.Names}}"); err != nil {
		return inv, err
	}
	if inv.Networks, err = docker.Lines(ctx, "network", "ls", "--format", "{{.Name}}"); err != nil {
		return inv, err
	}
	for _, c := range contexts(defaultKubeconfig()) {
		inv.Contexts = append(inv.Contexts, c+" in "+defaultKubeconfig())
	}
	files, _ := filepath.Glob(filepath.Join(h.Clusters.KubeconfigDir, "*"))
	for _, f := range files {
		inv.Kubeconfigs = append(inv.Kubeconfigs, f)
		for _, c := range contexts(f) {
			inv.Contexts = append(inv.Contexts, c+" in "+f)
		}
	}
	m, _ := filepath.Glob(filepath.Join(os.TempDir(), "meshconform*"))
	inv.TempFiles = append(inv.TempFiles, m...)
	// Builds in the cache are this run's only when they carry its process
	// ID: another process's build beside it (CI's prebuild) is not the run's
	// leftover, and a name without an owner is an earlier version's.
	for _, pattern := range []string{"*.tmp", "*.tree"} {
		m, _ := filepath.Glob(filepath.Join(h.Config.CacheDir, "*", pattern))
		for _, f := range m {
			if fsutil.OwnTemp(f) {
				inv.TempFiles = append(inv.TempFiles, f)
			}
		}
	}
	for _, l := range [][]string{inv.Containers, inv.Networks, inv.Contexts, inv.Kubeconfigs, inv.TempFiles} {
		sort.Strings(l)
	}
	return inv, nil
}

// NewSince names what exists in i and did not in before.
func (i Inventory) NewSince(before Inventory) []string {
	var out []string
	diff := func(kind string, now, was []string) {
		for _, x := range now {
			if !slices.Contains(was, x) {
				out = append(out, kind+" "+x)
			}
		}
	}
	diff("container", i.Containers, before.Containers)
	diff("docker network", i.Networks, before.Networks)
	diff("kubeconfig context", i.Contexts, before.Contexts)
	diff("kubeconfig file", i.Kubeconfigs, before.Kubeconfigs)
	diff("temp file", i.TempFiles, before.TempFiles)
	return out
}

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
			if slices.Contains(contexts(path), clusters.Context(n)) {
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

func contexts(path string) []string {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for name := range cfg.Contexts {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// String renders counts, for reports: "3 containers, 2 networks, …".
func (i Inventory) String() string {
	return strings.Join([]string{
		fmt.Sprintf("%d containers", len(i.Containers)), fmt.Sprintf("%d networks", len(i.Networks)),
		fmt.Sprintf("%d kubeconfig contexts", len(i.Contexts)), fmt.Sprintf("%d kubeconfig files", len(i.Kubeconfigs)),
		fmt.Sprintf("%d temp files", len(i.TempFiles)),
	}, ", ")
}
