package images

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/meshconform/meshconform/e2e/internal/gobuild"
	"github.com/meshconform/meshconform/e2e/internal/oci"
)

// IstioRelease is an Istio release the local source can build: its tag, the
// module version the tag resolves to on the Go module proxy, and the pins
// that make the module's exact dependency set resolvable there.
type IstioRelease struct {
	Version string
	// Module is the pseudo-version of istio.io/istio at the release tag.
	Module string
	// Commit is the release commit, stamped into the binaries.
	Commit string
	// Require pins modules the proxy cannot serve at the release's own
	// pseudo-versions to tags at the very same commits.
	Require map[string]string
	// NoSumDB: modules the checksum database has no line for; Sums pins
	// their hashes instead (recorded when the release was added, after its
	// content was compared with the release tag's tree).
	NoSumDB []string
	Sums    []string
	// AgentTags are the release Makefile's AGENT_TAGS.
	AgentTags []string
}

// istioReleases are the releases whose exact dependency sets the module
// proxy can supply (see ../shared/PLATFORM.md).
// The proxy serves these pseudo-versions' .mod and .zip but not every
// .info, so tags do not resolve there: versions are written out.
var istioReleases = map[string]IstioRelease{
	"1.29.2": {
		Version: "1.29.2", Module: "v0.0.0-20260409200358-0c774325b938", Commit: "0c774325b938c4dbda4ea4ad4fb6156e80a12de8",
		Require:   map[string]string{"istio.io/api": "v1.29.2", "istio.io/client-go": "v1.29.2"},
		AgentTags: []string{"agent", "disable_pgv", "grpcnotrace", "retrynotrace"},
	},
	"1.27.0": {
		Version: "1.27.0", Module: "v0.0.0-20250808040725-7359d8be2504", Commit: "7359d8be2504f2b191f7d94156af08e6590d2d1c",
		NoSumDB: []string{"istio.io/istio"},
		Sums: []string{
			"istio.io/istio v0.0.0-20250808040725-7359d8be2504 h1:tblfA2CTj3NWnw5XBlP3Lr0NxmXiCJ1TulQ8PZrKHcA=",
			"istio.io/istio v0.0.0-20250808040725-7359d8be2504/go.mod h1:lCFDnjdmMaziwcb7xhi4cj5o3nWJF++tcYNCy2hOpFA=",
		},
		AgentTags: []string{"agent", "disable_pgv", "grpcnotrace", "retrynotrace"},
	},
	"1.26.0": {
		Version: "1.26.0", Module: "v0.0.0-20250506181944-c2e9871f340c", Commit: "c2e9871f340c0e0b114bcd1b73208284f1d17c9e",
		AgentTags: []string{"agent", "disable_pgv"},
	},
}

// DefaultIstioVersion is what a run installs unless told otherwise.
const DefaultIstioVersion = "1.29.2"

// LookupIstioRelease returns the release, or an error that lists those that
// can be built.
func LookupIstioRelease(version string) (IstioRelease, error) {
	r, ok := istioReleases[strings.TrimPrefix(version, "v")]
	if !ok {
		return IstioRelease{}, fmt.Errorf("unknown Istio version %q for the local image source: buildable versions are %s (the upstream source takes any released version)", version, strings.Join(IstioVersions(), ", "))
	}
	return r, nil
}

// IstioVersions lists the buildable Istio versions.
func IstioVersions() []string {
	var vs []string
	for v := range istioReleases {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	return vs
}

// istioStandardTags are STANDARD_TAGS of Istio's Makefile.core.mk (the same
// in every buildable release).
var istioStandardTags = []string{"vtprotobuf", "disable_pgv"}

// istioLDFlags stamp the release as Istio's release build does, so every
// binary and proxy-status report the real version.
func istioLDFlags(r IstioRelease) []string {
	v := "istio.io/istio/pkg/version."
	return []string{"-s", "-w",
		"-X " + v + "buildVersion=" + r.Version, "-X " + v + "buildGitRevision=" + r.Commit,
		"-X " + v + "buildStatus=Clean", "-X " + v + "buildTag=" + r.Version,
		"-X " + v + "buildHub=docker.io/istio", "-X " + v + "buildOS=linux", "-X " + v + "buildArch=amd64"}
}

// istioRecipes are the release's images. Their plans' files are built
// through l; with a nil l only refs and keys are meaningful (what cache
// prune needs).
func istioRecipes(l *Local, r IstioRelease) []recipe {
	std, agent := l.goFiles(istioStandard(r)), l.goFiles(istioAgent(r))
	pilot, proxy, echo := IstioImages(r.Version)
	return []recipe{
		// As Istio's pilot image: the binary as entrypoint, run as 1337.
		newRecipe(pilot, oci.Config{Entrypoint: []string{"/usr/local/bin/pilot-discovery"}, User: "1337:1337"},
			std("/usr/local/bin/pilot-discovery", "pilot-discovery"), caCertificates()),
		// The agent without Envoy: the grpc-agent injection template gives
		// only args, and its postStart hook runs `pilot-agent wait`.
		newRecipe(proxy, oci.Config{Entrypoint: []string{"/usr/local/bin/pilot-agent"}, WorkingDir: "/"},
			agent("/usr/local/bin/pilot-agent", "pilot-agent"), caCertificates(),
			planFile{File: oci.File{Path: "/etc/istio/proxy", Dir: true, Mode: 0o777}},
			planFile{File: oci.File{Path: "/var/lib/istio/data", Dir: true, Mode: 0o777}}),
		newRecipe(echo, oci.Config{Entrypoint: []string{"/usr/local/bin/server"}, User: "1338:1338"},
			std("/usr/local/bin/server", "server"), std("/usr/local/bin/client", "client"), caCertificates()),
	}
}

// istioNice is the CPU priority of Istio builds: they start with the cluster
// images but are needed only after the clusters are up, so they take the
// cores the cluster images leave, and all of them once those are done.
const istioNice = 10

func istioModule(r IstioRelease, name string, tags []string, pkgs ...string) gobuild.Module {
	return gobuild.Module{
		Name: name, Path: "istio.io/istio", Version: r.Module, Require: r.Require, NoSumDB: r.NoSumDB, Sums: r.Sums,
		Packages: pkgs, Tags: tags, LDFlags: istioLDFlags(r), SeedSum: true, SeedProbe: "istio.io/istio/pkg/version",
		Nice: istioNice,
	}
}

// istioStandard builds istiod, istioctl and Istio's echo test app; the agent
// has its own tag set and is built apart.
func istioStandard(r IstioRelease) gobuild.Module {
	return istioModule(r, "istio-"+r.Version, istioStandardTags,
		"istio.io/istio/pilot/cmd/pilot-discovery", "istio.io/istio/istioctl/cmd/istioctl",
		"istio.io/istio/pkg/test/echo/cmd/server", "istio.io/istio/pkg/test/echo/cmd/client")
}

func istioAgent(r IstioRelease) gobuild.Module {
	return istioModule(r, "istio-agent-"+r.Version, r.AgentTags, "istio.io/istio/pilot/cmd/pilot-agent")
}

// IstioImages are the image references an Istio install with the default hub
// pulls, plus the echo app this harness runs as a proxyless workload.
func IstioImages(version string) (pilot, proxy, echo string) {
	return "docker.io/istio/pilot:" + version, "docker.io/istio/proxyv2:" + version, "docker.io/meshconform/istio-echo:" + version
}

// Istio builds the release's images into the local registry and returns the
// path of its istioctl. It builds once per Local: a call while an earlier
// one (a background prebuild) runs waits for it and shares its result, so
// ctx should live as long as the run.
func (l *Local) Istio(ctx context.Context, r IstioRelease) (istioctl string, err error) {
	v, err := l.memo(ctx, "istio "+r.Version, func(ctx context.Context) (any, error) { return l.istio(ctx, r) })
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

func (l *Local) istio(ctx context.Context, r IstioRelease) (istioctl string, err error) {
	reg := l.registry()
	std := istioStandard(r)
	recipes := istioRecipes(l, r)
	g, gctx := errgroup.WithContext(ctx)
	for _, rc := range recipes {
		g.Go(func() error { return l.ensure(gctx, reg, rc) })
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	// istioctl runs on this machine; the build is cached, so this is a
	// lookup when the images were cached too.
	bins, err := l.goBuild(ctx, std)
	if err != nil {
		return "", err
	}
	return bins.Binary("istioctl"), nil
}

// BuildIstioctl builds the release's istioctl (with the other programs of
// its main module, which share the build) into cacheDir's Go build cache,
// with no registry or Docker, and returns its path: the upstream source's
// istioctl for a version the user gave none of.
func BuildIstioctl(ctx context.Context, cacheDir string, log io.Writer, r IstioRelease) (string, error) {
	res, err := (&gobuild.Builder{CacheDir: cacheDir, Log: log}).Build(ctx, istioStandard(r))
	if err != nil {
		return "", fmt.Errorf("build istioctl %s: %w", r.Version, err)
	}
	return res.Binary("istioctl"), nil
}

// BuildIstioBinaries runs the release's Go builds (istiod, istioctl, the
// echo app, the agent) into the cache, with no registry or Docker: a head
// start, on otherwise idle cores, for a later run's images (CI starts the
// upgrade suite's versions while the seeded-fault suite runs).
func (l *Local) BuildIstioBinaries(ctx context.Context, r IstioRelease) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, m := range []gobuild.Module{istioAgent(r), istioStandard(r)} {
		g.Go(func() error {
			_, err := l.build(gctx, m)
			return err
		})
	}
	return g.Wait()
}
