package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/harness"
)

// upDir holds what `up` keeps for later runs (harness.UpDir).
func upDir() string { return harness.UpDir() }

// newHarness is a harness whose report goes to its own directory under
// the artifacts, so a command never overwrites a run's report.
func newHarness(cfg harness.Config, name string) (*harness.Harness, error) {
	cfg.ArtifactsDir = filepath.Join(cfg.ArtifactsDir, name)
	return openHarness(cfg, os.Stdout)
}

// openHarness is the harness of cfg's topology: a command reads it once.
func openHarness(cfg harness.Config, out io.Writer) (*harness.Harness, error) {
	topo, err := cfg.LoadTopology()
	if err != nil {
		return nil, err
	}
	return harness.New(cfg, topo, out)
}

func newUp() *cobra.Command {
	istio, topologyName := true, ""
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create the topology's clusters, install Istio by their roles, and keep them for `meshconform test`",
		Long: `Create the clusters of kindconfigs/ from images built here, install Istio
by the clusters' roles as the guides do, and keep everything up. It prints the
command that runs the conformance specs against the kept mesh in seconds:

  meshconform test --kubeconfig … --contexts cluster1=kind-cluster1,… --mesh existing

The kubeconfigs go to ` + "`~/.local/state/meshconform/up`" + `; ` + "`meshconform down`" + ` removes it all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := newSettings()
			s.flag("MESHCONFORM_TOPOLOGY", topologyName)
			cfg, err := s.config()
			if err != nil {
				return err
			}
			if cfg.BringYourOwn() {
				return fmt.Errorf("up creates clusters; MESHCONFORM_KUBECONFIG names clusters you brought: unset it")
			}
			// Refused before its report is written where the kept mesh's is.
			if err := harness.NoKeptMesh(); err != nil {
				return err
			}
			cfg.ArtifactsDir, cfg.KeepClusters = upDir(), true
			return up(cmd.Context(), cfg, istio)
		},
	}
	cmd.Flags().BoolVar(&istio, "istio", true, "install Istio; --istio=false keeps bare clusters, for `meshconform test --mesh install`")
	cmd.Flags().StringVar(&topologyName, "topology", "", "topology of kindconfigs/: primary-remote (default), primary-remotes, multi-primary (MESHCONFORM_TOPOLOGY)")
	return cmd
}

func up(ctx context.Context, cfg harness.Config, istio bool) (err error) {
	h, err := openHarness(cfg, os.Stdout)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// Half a mesh is no use to a later test run: remove it all.
			h.Config.KeepClusters = false
		}
		if err != nil && ctx.Err() == nil {
			h.ExportLogs(context.WithoutCancel(ctx))
		}
		_ = h.Teardown(context.WithoutCancel(ctx))
		_ = h.Close()
	}()
	cls, err := h.SetUpPlatform(ctx)
	if err != nil {
		return err
	}
	mode, what := harness.MeshInstall, "bare clusters up"
	if istio {
		m, err := h.PrepareIstio(ctx)
		if err != nil {
			return err
		}
		if err := m.Install(ctx, cls...); err != nil {
			return err
		}
		mode, what = harness.MeshExisting, "clusters up, Istio "+m.Version+" installed"
	}
	var paths, contexts []string
	for _, cl := range cls {
		paths = append(paths, cl.Kubeconfig)
		contexts = append(contexts, cl.Name+"="+clusters.Context(cl.Name))
	}
	kc, cx := strings.Join(paths, string(os.PathListSeparator)), strings.Join(contexts, ",")
	env := fmt.Sprintf("MESHCONFORM_KUBECONFIG=%s\nMESHCONFORM_CONTEXTS=%s\nMESHCONFORM_MESH=%s\nMESHCONFORM_TOPOLOGY=%s\n", kc, cx, mode, h.Topology.Name)
	if err := os.WriteFile(filepath.Join(cfg.ArtifactsDir, harness.KeptMeshFile), []byte(env), 0o600); err != nil {
		return err
	}
	fmt.Printf("\n%s and kept. Run the specs against them:\n\n"+
		"  meshconform test --kubeconfig %s --contexts %s --mesh %s\n\n"+
		"or, with go test: env $(cat %s) go test ./suites/e2e\n"+
		"Remove everything with: meshconform down\n", what, kc, cx, mode, filepath.Join(cfg.ArtifactsDir, harness.KeptMeshFile))
	return nil
}

// removeBudget bounds down and clean, which an interrupt does not stop:
// half a removal (clusters gone, registry and network left) helps no one.
const removeBudget = 8 * time.Minute

// removeClusters deletes the topology's clusters (only ours), the registry
// and the network, then what `up` kept. It finishes what it began: a
// Ctrl-C does not cancel it, its budget does.
func removeClusters(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), removeBudget)
	defer cancel()
	cfg, err := config()
	if err != nil {
		return err
	}
	if cfg.BringYourOwn() {
		return fmt.Errorf("MESHCONFORM_KUBECONFIG names clusters you brought; meshconform deletes only clusters it created: unset it")
	}
	cfg.KeepClusters = false
	h, err := newHarness(cfg, name)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.RemoveOurs(ctx); err != nil {
		return err
	}
	if err := os.RemoveAll(upDir()); err != nil {
		return err
	}
	// Its parent too, when nothing else of meshconform's is in it.
	_ = os.Remove(filepath.Dir(upDir()))
	return nil
}
