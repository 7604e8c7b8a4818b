// Command meshconform holds the operations a person runs outside the suites.
//
//	meshconform clean   remove what a killed run left: the topology's clusters
//	                    (only ours), the local registry container, the network.
//	                    The image cache stays.
//	meshconform bench [warm|cold|report]
//	                    measure a run: wall time per make command, the
//	                    machine's CPU use, the critical path, the longest
//	                    phases and the run's figures (time to SYNCED,
//	                    failover time, failed requests), written as
//	                    artifacts/bench/<istio>-<time>/bench.json and
//	                    bench.md, to compare versions.
//	                      warm    (default) run `make e2e` once, caches as
//	                              they are.
//	                      cold    run `make test` and `make e2e` with empty
//	                              GOMODCACHE, GOCACHE and MESHCONFORM_CACHE
//	                              (made under ~/.cache, ~15 GB, removed
//	                              afterwards), then `make e2e` again warm.
//	                      report  run nothing: record the last run's
//	                              artifacts/phases.json.
//	meshconform leftovers
//	                    list what of meshconform exists on this machine; exit 1
//	                    if anything does.
//	meshconform prebuild [VERSION...]
//	                    run the Go builds of Istio versions (default: the
//	                    upgrade suite's MESHCONFORM_UPGRADE_FROM and _TO)
//	                    into the image cache, niced and without Docker, so
//	                    a later run finds them built (CI runs it beside the
//	                    seeded-fault suite).
//	meshconform cache size
//	                    the image cache's size, per top-level directory.
//	meshconform cache prune [-dry-run] [-no-docker]
//	                    remove from the image cache what no current recipe
//	                    uses (old builds, root filesystems, registry images);
//	                    runs also prune by themselves past
//	                    MESHCONFORM_CACHE_LIMIT (default 8GiB).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/meshconform/meshconform/e2e/harness"
)

func main() {
	args := os.Args[1:]
	if len(args) < 1 || (args[0] != "cache" && args[0] != "prebuild" && (len(args) > 2 || (len(args) == 2 && args[0] != "bench"))) {
		fmt.Fprintln(os.Stderr, "usage: meshconform clean|leftovers|bench [warm|cold|report]|prebuild [VERSION...]|cache size|cache prune [-dry-run] [-no-docker]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, args[0], args[1:]...); err != nil {
		fmt.Fprintln(os.Stderr, "meshconform:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, args ...string) error {
	cfg, err := harness.ConfigFromEnv()
	if err != nil {
		return err
	}
	if cmd == "cache" {
		return cacheCommand(ctx, cfg, args)
	}
	if cmd == "prebuild" {
		return prebuild(ctx, cfg, args)
	}
	if cmd == "bench" {
		mode := "warm"
		if len(args) > 0 {
			mode = args[0]
		}
		return bench(ctx, cfg, mode)
	}
	// Its own report directory: a cleanup must not overwrite a run's report.
	cfg.ArtifactsDir = filepath.Join(cfg.ArtifactsDir, "meshconform-"+cmd)
	h, err := harness.New(cfg, os.Stdout)
	if err != nil {
		return err
	}
	defer h.Close()
	switch cmd {
	case "clean":
		h.Config.KeepClusters = false
		return h.Teardown(ctx, false)
	case "leftovers":
		var names []string
		for _, c := range h.Topology.Clusters {
			names = append(names, c.Name)
		}
		left, err := h.Leftovers(ctx, names...)
		if err != nil {
			return err
		}
		for _, l := range left {
			fmt.Println(l)
		}
		if len(left) > 0 {
			return fmt.Errorf("%d leftovers", len(left))
		}
		fmt.Println("nothing left")
		return nil
	}
	return fmt.Errorf("unknown command %q (want clean, leftovers or bench)", cmd)
}
