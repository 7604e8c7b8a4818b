// Command meshconform holds the operations a person runs outside the suites.
//
//	meshconform clean   remove what a killed run left: the topology's clusters
//	                    (only ours), the local registry container, the network.
//	                    The image cache stays.
//	meshconform bench   write the last run's timings and figures (time to
//	                    SYNCED, failover time, failed requests) as a benchmark
//	                    record under artifacts/bench/, to compare versions.
//	meshconform leftovers
//	                    list what of meshconform exists on this machine; exit 1
//	                    if anything does.
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
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: meshconform clean|leftovers|bench")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "meshconform:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string) error {
	cfg, err := harness.ConfigFromEnv()
	if err != nil {
		return err
	}
	if cmd == "bench" {
		return bench(cfg.ArtifactsDir, cfg.IstioVersion)
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
