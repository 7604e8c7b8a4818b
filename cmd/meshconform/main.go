// Command meshconform runs the conformance suite for Istio multicluster
// meshes, on clusters it creates or on clusters a user brings, and holds
// the operations a person runs outside the suites. `meshconform --help`
// lists the commands; README.md explains them.
//
// Settings come from MESHCONFORM_* environment variables (README,
// "Settings"), which flags of the same meaning override; they are read
// once into a harness.Config and never written back to the environment.
// `meshconform test` hands its suite that Config as one file
// (MESHCONFORM_SETTINGS); `go test ./suites/...` and `ginkgo` read the
// variables themselves.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/images"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "meshconform:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "meshconform",
		Short: "End-to-end conformance for Istio multicluster meshes (primary-remote, several remotes, multi-primary)",
		Long: `meshconform creates kind clusters, installs Istio multicluster and judges
the mesh with real traffic — or points the same specs at clusters you bring.

  meshconform up                     create the clusters, install Istio, keep them
  meshconform test [flags]           run a suite (on kept or brought clusters with --kubeconfig)
  meshconform doctor [flags]         read-only checks of an installed multicluster mesh
  meshconform bundle                 pack a run's artifacts into a verifiable results bundle
  meshconform verify BUNDLE          check a bundle's integrity and print its verdict
  meshconform rbac                   the roles a run on an existing mesh needs
  meshconform down                   delete what up created`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newUp(), newTest(), newDoctor(), newBundle(), newVerify(), newReport(), newFailures(),
		newClean(), newLeftovers(), newBench(), newPrebuild(), newCache(), newImages(), newRBAC())
	return root
}

// config reads the MESHCONFORM_* settings of the environment, for
// commands with no flag of a setting.
func config() (harness.Config, error) { return newSettings().config() }

// settings are a command's MESHCONFORM_* settings: its flags, then the
// environment, then what `meshconform up` kept (useKeptClusters); the first
// non-empty value wins. config reads them into one harness.Config, with
// one validation for all; nothing is written to the environment.
type settings struct {
	flags, kept map[string]string
}

func newSettings() *settings {
	return &settings{flags: map[string]string{}, kept: map[string]string{}}
}

// flag applies a flag as the setting it stands for, when given.
func (s *settings) flag(key, value string) {
	if value != "" {
		s.flags[key] = value
	}
}

// get is a setting's value, "" when unset.
func (s *settings) get(key string) string {
	if v := s.flags[key]; v != "" {
		return v
	}
	if v := os.Getenv(key); v != "" {
		return v
	}
	return s.kept[key]
}

func (s *settings) config() (harness.Config, error) { return harness.ConfigFrom(s.get) }

func newClean() *cobra.Command {
	return &cobra.Command{
		Use:     "clean",
		Aliases: []string{"down"},
		Short:   "Remove what up or a killed run left: the topology's clusters (only ours), the local registry, the network, the kept clusters' kubeconfigs (not the image cache)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return removeClusters(cmd.Context(), "meshconform-clean")
		},
	}
}

func newLeftovers() *cobra.Command {
	return &cobra.Command{
		Use:   "leftovers",
		Short: "List what of meshconform exists on this machine; exit 1 if anything does",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config()
			if err != nil {
				return err
			}
			h, err := newHarness(cfg, "meshconform-leftovers")
			if err != nil {
				return err
			}
			defer h.Close()
			names, err := h.ClusterNames()
			if err != nil {
				return err
			}
			left, err := h.Leftovers(cmd.Context(), names...)
			if err != nil {
				return err
			}
			for _, l := range left {
				fmt.Println(l)
			}
			// A kept mesh is what up's env file says; a failed up leaves
			// only its report there.
			if _, err := os.Stat(filepath.Join(upDir(), harness.KeptMeshFile)); err == nil {
				left = append(left, "kept clusters' state "+upDir())
				fmt.Println("kept clusters' state", upDir(), "(meshconform down removes it)")
			}
			if len(left) > 0 {
				return fmt.Errorf("%d leftovers", len(left))
			}
			fmt.Println("nothing left")
			return nil
		},
	}
}

func newBench() *cobra.Command {
	var records string
	cmd := &cobra.Command{
		Use:   "bench [warm|cold|report]",
		Short: "Measure a run: wall time per make command, CPU use, critical path, longest phases, figures",
		Long: `Measure a run and write artifacts/bench/<istio>-<time>/bench.json and bench.md.
  warm    (default) run make e2e once, caches as they are
  cold    make test and make e2e with empty GOMODCACHE, GOCACHE and
          MESHCONFORM_CACHE (made under ~/.cache, ~15 GB, removed after),
          then make e2e again warm
  report  run nothing: record the last run's artifacts/phases.json`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{"warm", "cold", "report"},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config()
			if err != nil {
				return err
			}
			mode := "warm"
			if len(args) > 0 {
				mode = args[0]
			}
			return bench(cmd.Context(), cfg, mode, records)
		},
	}
	cmd.Flags().StringVar(&records, "records", "", "where bench records go (default: the artifacts directory's bench/)")
	return cmd
}

func newPrebuild() *cobra.Command {
	return &cobra.Command{
		Use:   "prebuild [VERSION...]",
		Short: "Run the Go builds of Istio versions (default: the upgrade suite's) into the image cache, niced, without Docker",
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config()
			if err != nil {
				return err
			}
			return prebuild(cmd.Context(), cfg, args)
		},
	}
}

func newImages() *cobra.Command {
	group := &cobra.Command{Use: "images", Short: "The images of the local source, and the sample apps for a registry of yours"}
	var start bool
	fresh := &cobra.Command{
		Use:   "fresh-check",
		Short: "Build the cheap images (registry, pause, sample apps) from nothing into a throwaway cache and prove each can start",
		Long: `fresh-check builds the local source's cheap images as a new machine would,
with no cache, and proves each can start: from its files (entrypoint, loader,
libraries), and with --start by starting it once in Docker. Nothing is kept.
make test runs it without Docker, CI with --start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config()
			if err != nil {
				return err
			}
			kube, err := images.LookupKubeRelease(cfg.KubernetesVersion)
			if err != nil {
				return err
			}
			root, err := harness.RepoRoot()
			if err != nil {
				return err
			}
			return images.FreshCheck(cmd.Context(), kube, root, start, os.Stdout)
		},
	}
	fresh.Flags().BoolVar(&start, "start", false, "also start each image once in Docker")
	group.AddCommand(fresh, newImagesList(), newImagesSave(), newImagesPush())
	return group
}

func newCache() *cobra.Command {
	return &cobra.Command{
		Use:                "cache size|prune [-dry-run] [-no-docker]",
		Short:              "The image cache: its size per directory, or prune what no current recipe uses",
		Long:               cacheUsage,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config()
			if err != nil {
				return err
			}
			return cacheCommand(cmd.Context(), cfg, args)
		},
	}
}
