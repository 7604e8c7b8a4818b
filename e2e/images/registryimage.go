// The local registry's own image, from Debian's docker-registry package.

package images

import (
	"context"
	"fmt"

	"github.com/meshconform/meshconform/e2e/internal/debian"
	"github.com/meshconform/meshconform/e2e/internal/docker"
	"github.com/meshconform/meshconform/e2e/internal/oci"
)

// registryPackages are what the registry's image is made of: Debian's
// docker-registry (distribution 2.8.2, prebuilt, so no registry build delays
// every other image) and the glibc it is linked against.
var registryPackages = []string{"docker-registry", "libc6"}

// multiarch is where Debian installs x86_64 libraries: under /lib on
// bookworm, under /usr/lib on later releases (merged /usr).
var multiarch = []string{"lib/x86_64-linux-gnu/", "usr/lib/x86_64-linux-gnu/"}

func inMultiarch(name string) []string {
	var paths []string
	for _, d := range multiarch {
		paths = append(paths, d+name)
	}
	return paths
}

// registryPlan is the registry's image: the binary at the path Debian's
// package installs it to (the package also ships an init script of the same
// name), the two glibc files it needs (ldd: libc.so.6 and the loader, at
// the path the binary names as its interpreter) and the configuration.
func registryPlan(registry, libc debian.Package) plan {
	return newPlan(registryImageRepo, oci.Config{
		Entrypoint: []string{"/usr/bin/docker-registry"}, Cmd: []string{"serve", "/etc/distribution/config.yml"},
		Labels: map[string]string{OwnerLabel: "true"},
	},
		dataFile("/etc/distribution/config.yml", 0o644, []byte(registryConfig)),
		debFile("/usr/bin/docker-registry", 0o755, registry, "usr/bin/docker-registry"),
		debFile("/lib/x86_64-linux-gnu/libc.so.6", 0o755, libc, inMultiarch("libc.so.6")...),
		debFile("/lib64/ld-linux-x86-64.so.2", 0o755, libc, inMultiarch("ld-linux-x86-64.so.2")...),
	)
}

// registryImagePlan reads the package versions apt would fetch and plans
// the registry's image from them.
func registryImagePlan(ctx context.Context) (plan, error) {
	pkgs, err := debian.Candidates(ctx, registryPackages...)
	if err != nil {
		return plan{}, fmt.Errorf("registry image: %w", err)
	}
	return registryPlan(pkgs[0], pkgs[1]), nil
}

// registryImage assembles the registry's own image and loads it into
// Docker, which runs it; an image just loaded is started once, so an image
// that cannot run is named here and not by a bare exit status later.
// RegistryImage is registryImage for a registry of a test's own (a
// user's registry stood in for, with its own configuration mounted over
// /etc/distribution/config.yml).
func (l *Local) RegistryImage(ctx context.Context) (string, error) { return l.registryImage(ctx) }

func (l *Local) registryImage(ctx context.Context) (string, error) {
	p, err := registryImagePlan(ctx)
	if err != nil {
		return "", err
	}
	tag := registryImageRepo + ":" + p.key()
	if _, err := docker.Run(ctx, "image", "inspect", tag); err == nil {
		return tag, nil
	}
	img, err := l.assemble(ctx, p)
	if err != nil {
		return "", err
	}
	if err := oci.DockerLoad(ctx, img, tag); err != nil {
		return "", err
	}
	if err := startsInDocker(ctx, tag, "--version"); err != nil {
		_, _ = docker.Run(ctx, "image", "rm", tag)
		return "", err
	}
	return tag, nil
}
