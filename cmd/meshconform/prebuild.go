package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/report"
)

// prebuild runs the Go builds of Istio versions (default: the upgrade
// suite's two) into the image cache, niced, without Docker: a later run
// finds them cached. It holds the cache as a run does, so a prune waits.
func prebuild(ctx context.Context, cfg harness.Config, versions []string) error {
	if len(versions) == 0 {
		versions = []string{cfg.Upgrade.From, cfg.Upgrade.To}
	}
	var rels []images.IstioRelease
	for _, v := range versions {
		r, err := images.LookupIstioRelease(v)
		if err != nil {
			return err
		}
		rels = append(rels, r)
	}
	lock, err := images.LockCacheShared(cfg.CacheDir)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	kube, err := images.LookupKubeRelease(cfg.KubernetesVersion)
	if err != nil {
		return err
	}
	run := report.NewRun(os.Stdout)
	l := images.NewLocal(kube, cfg.CacheDir, cfg.RegistryPort, run, os.Stderr)
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range rels {
		g.Go(func() error { return l.BuildIstioBinaries(gctx, r) })
	}
	err = g.Wait()
	fmt.Printf("prebuild of Istio %v: %s, %v\n", versions, time.Since(start).Round(time.Second), run.Figures())
	return err
}
