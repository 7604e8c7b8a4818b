package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/meshconform/meshconform/e2e/internal/docker"
	"github.com/meshconform/meshconform/e2e/internal/gobuild"
	"github.com/meshconform/meshconform/e2e/internal/oci"
	"github.com/meshconform/meshconform/e2e/report"
)

// FreshCheck builds the images whose build is cheap (the registry, pause,
// every sample app) from nothing, into a throwaway cache, and proves each
// can start: by reading its files (entrypoint, loader, libraries: no Docker
// needed), and, with start, by starting it once in Docker. It is a new
// user's first minutes, taken on every CI run: an image whose assembly is
// broken fails here, whatever the images a warm machine keeps. Every image
// is checked; the error names each one that fails and why. Nothing is kept:
// the cache and the images loaded into Docker are removed.
func FreshCheck(ctx context.Context, release KubeRelease, repoRoot string, start bool, out io.Writer) error {
	if start {
		if err := docker.Ping(ctx); err != nil {
			return err
		}
	}
	cache, err := os.MkdirTemp("", "meshconform-fresh-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)
	run := report.NewRun(out)
	l := &Local{Release: release, CacheDir: cache, Run: run, BuildLog: io.Discard,
		goBld: &gobuild.Builder{CacheDir: cache, Log: io.Discard}}

	type image struct {
		plan plan
		args []string // what it runs when started once: a program that stays up
	}
	reg, err := registryImagePlan(ctx)
	if err != nil {
		return err
	}
	imgs := []image{{plan: reg}, {plan: l.pauseRecipe().plan}}
	apps, err := SampleApps(repoRoot)
	if err != nil {
		return err
	}
	for _, name := range apps {
		rc, err := l.appRecipe(repoRoot, name)
		if err != nil {
			return err
		}
		imgs = append(imgs, image{plan: rc.plan, args: []string{"sleep"}})
	}
	var errs []error
	for _, im := range imgs {
		_, err := run.TimeNote("fresh image "+im.plan.Ref, func() (string, error) {
			img, err := l.assemble(ctx, im.plan)
			if err != nil {
				return "", err
			}
			if !start {
				return "its files let it start", nil
			}
			// A tag of its own: nothing of a run's images is replaced.
			tag := "meshconform/fresh-check-" + path.Base(strings.Split(im.plan.Ref, ":")[0]) + ":" + im.plan.key()
			if err := oci.DockerLoad(ctx, img, tag); err != nil {
				return "", err
			}
			defer docker.Run(context.WithoutCancel(ctx), "image", "rm", "-f", tag) //nolint:errcheck // best effort
			return "started once", startsInDocker(ctx, tag, im.args...)
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%d of %d fresh images cannot start:\n%w", len(errs), len(imgs), err)
	}
	how := "each started once in Docker"
	if !start {
		how = "each can start, by its files (entrypoint, loader, libraries); not started: no --start"
	}
	fmt.Fprintf(out, "fresh images: %d of %d built from nothing, %s\n", len(imgs), len(imgs), how)
	return nil
}
