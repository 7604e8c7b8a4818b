package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/images"
)

const cacheUsage = `usage: meshconform cache size|prune [-dry-run] [-no-docker]
  size    print the image cache's size, per top-level directory
  prune   remove what no current recipe uses (stale Go builds, root
          filesystems, registry tags and the blobs only they reach);
          refuses while the local registry's container exists
          -dry-run    print what would be removed, remove nothing
          -no-docker  Docker is not running here: take it that no
                      registry runs either`

// cacheCommand runs `meshconform cache ...` on cfg's image cache.
func cacheCommand(ctx context.Context, cfg harness.Config, args []string) error {
	return runCache(ctx, cfg, args, os.Stdout)
}

func runCache(ctx context.Context, cfg harness.Config, args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("cache: no subcommand\n%s", cacheUsage)
	}
	switch args[0] {
	case "size":
		if len(args) > 1 {
			return fmt.Errorf("cache size takes no arguments\n%s", cacheUsage)
		}
		return cacheSize(out, cfg.CacheDir)
	case "prune":
		fs := flag.NewFlagSet("cache prune", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		dry := fs.Bool("dry-run", false, "")
		noDocker := fs.Bool("no-docker", false, "")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
			return fmt.Errorf("cache prune: bad arguments %q\n%s", args[1:], cacheUsage)
		}
		return cachePrune(ctx, out, cfg, images.PruneOptions{RepoRoot: cfg.RepoRoot, DryRun: *dry, NoDocker: *noDocker, Log: out})
	}
	return fmt.Errorf("cache: unknown subcommand %q\n%s", args[0], cacheUsage)
}

func cacheSize(out io.Writer, dir string) error {
	usage, err := images.CacheUsage(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "image cache %s: %s\n", dir, images.FormatBytes(images.CacheSize(dir)))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, e := range usage {
		fmt.Fprintf(tw, "  %s\t%s\t  %s\n", e.Path, images.FormatBytes(e.Bytes), e.Why)
	}
	return tw.Flush()
}

func cachePrune(ctx context.Context, out io.Writer, cfg harness.Config, o images.PruneOptions) error {
	fmt.Fprintf(out, "pruning image cache %s\n", cfg.CacheDir)
	lock, err := images.LockCacheExclusive(cfg.CacheDir)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	res, err := images.Prune(ctx, cfg.CacheDir, o)
	if res.Before == 0 && err != nil {
		return err // refused before looking: nothing to report
	}
	for _, n := range res.Notes {
		fmt.Fprintf(out, "   note: %s\n", n)
	}
	verb := "removed"
	if res.DryRun {
		verb = "would remove"
	}
	var files int64
	for _, e := range res.Removed {
		files += e.Bytes
	}
	fmt.Fprintf(out, "%s %d cache entries (%s) and from the registry %s (%s)\n",
		verb, len(res.Removed), images.FormatBytes(files), res.Registry, images.FormatBytes(res.Registry.Bytes))
	fmt.Fprintf(out, "kept %d entries in use", res.Kept)
	if len(res.Unknown) > 0 {
		fmt.Fprintf(out, "; left alone %d entries not named as meshconform names them (listed above)", len(res.Unknown))
	}
	fmt.Fprintf(out, "\nimage cache: %s before, %s after\n", images.FormatBytes(res.Before), images.FormatBytes(res.After))
	return err
}
