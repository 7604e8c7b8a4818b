package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/report"
)

// The sample apps for a registry of the user's: what clusters a user
// brings pull (test --image-registry), listed, saved for a machine
// without a way to the registry, and pushed; with --istio-version, the
// local source's Istio images of those releases too, for a run that
// installs Istio on them (--mesh install).

const istioVersionUsage = "also Istio's images of this release, as the local source builds them (repeatable; \"upgrade\": the upgrade suite's two, MESHCONFORM_UPGRADE_FROM and _TO): for test --mesh install on your clusters"

// istioReleases looks up each --istio-version ("upgrade" is the upgrade
// suite's versions), before anything is built.
func istioReleases(versions []string) ([]images.IstioRelease, error) {
	var out []images.IstioRelease
	for i := 0; i < len(versions); i++ {
		v := versions[i]
		if v == "upgrade" {
			cfg, err := config()
			if err != nil {
				return nil, err
			}
			versions = append(versions, cfg.Upgrade.From, cfg.Upgrade.To)
			continue
		}
		rel, err := images.LookupIstioRelease(strings.TrimPrefix(v, "v"))
		if err != nil {
			return nil, fmt.Errorf("--istio-version: %w", err)
		}
		if !slices.ContainsFunc(out, func(r images.IstioRelease) bool { return r.Version == rel.Version }) {
			out = append(out, rel)
		}
	}
	return out, nil
}

func newImagesList() *cobra.Command {
	var registry string
	var istio []string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "The sample apps' images a run on your clusters pulls, each tagged by what it is built from",
		Long: `list prints the image of each sample app this checkout builds, one per line:
docker.io/meshconform/<app>:<digest of its source>, or with --image-registry
the name a run given that registry pulls. With --istio-version V, also the
istiod and proxyless agent images of Istio V that a run installing Istio on
your clusters (--mesh install) pulls from that registry:
meshconform/istio/{pilot,proxyv2}:V-mc<digest of what they are built from>.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			prefix := "docker.io"
			if registry != "" {
				var err error
				if prefix, err = images.ParseRegistryPrefix(registry); err != nil {
					return err
				}
			}
			root, err := harness.RepoRoot()
			if err != nil {
				return err
			}
			rels, err := istioReleases(istio)
			if err != nil {
				return err
			}
			tags, err := images.AppRepoTags(root)
			if err != nil {
				return err
			}
			reg := images.UserRegistry{Prefix: prefix}
			for _, app := range sortedApps(tags) {
				fmt.Fprintln(cmd.OutOrStdout(), reg.Ref(tags[app]))
			}
			for _, rel := range rels {
				pilot, proxy := images.IstioUserRepoTags(rel)
				fmt.Fprintln(cmd.OutOrStdout(), reg.Ref(pilot))
				fmt.Fprintln(cmd.OutOrStdout(), reg.Ref(proxy))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&registry, "image-registry", "", "print the names in this registry (host[:port][/path])")
	cmd.Flags().StringSliceVar(&istio, "istio-version", nil, istioVersionUsage)
	return cmd
}

func newImagesSave() *cobra.Command {
	var istio []string
	cmd := &cobra.Command{
		Use:   "save FILE",
		Short: "Build the sample apps' images into one tarball, for `images push --from` on a machine that reaches your registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			imgs, err := buildImages(cmd, istio)
			if err != nil {
				return err
			}
			if err := images.SaveImages(args[0], imgs); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "saved %d images to %s\n", len(imgs), args[0])
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&istio, "istio-version", nil, istioVersionUsage)
	return cmd
}

func newImagesPush() *cobra.Command {
	var from, pullSecret, ca string
	var istio []string
	cmd := &cobra.Command{
		Use:   "push REGISTRY",
		Short: "Push the sample apps' images to your registry (host[:port][/path]), built here or read from `images save`'s tarball",
		Long: `push writes each sample app's image to REGISTRY/meshconform/<app>:<digest of
its source>, the name a run given --image-registry REGISTRY pulls. The images
are built from this checkout (Go and Debian's packages; no Docker), or read
with --from from a tarball ` + "`images save`" + ` wrote (give --istio-version to
save, not here). With --istio-version V, Istio V's images too (see list).
Credentials come from --image-pull-secret (a docker config JSON), else none.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix, err := images.ParseRegistryPrefix(args[0])
			if err != nil {
				return err
			}
			reg := images.UserRegistry{Prefix: prefix, CAFile: ca}
			if pullSecret != "" {
				b, err := os.ReadFile(pullSecret)
				if err != nil {
					return err
				}
				if reg.Auth, err = images.ParseDockerConfig(b); err != nil {
					return fmt.Errorf("%s: %w", pullSecret, err)
				}
			}
			var imgs map[string]v1.Image
			switch {
			case from != "" && len(istio) > 0:
				return fmt.Errorf("--istio-version with --from: the tarball holds what `images save` put in it; give --istio-version to save")
			case from != "":
				imgs, err = images.LoadImages(from)
			default:
				imgs, err = buildImages(cmd, istio)
			}
			if err != nil {
				return err
			}
			if err := reg.Push(cmd.Context(), imgs); err != nil {
				return err
			}
			for _, rt := range sortedApps(imgs) {
				fmt.Fprintln(cmd.OutOrStdout(), "pushed", reg.Ref(rt))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "", "push the images of this tarball (written by `images save`) instead of building them")
	fl.StringVar(&pullSecret, "image-pull-secret", "", "a docker config JSON with the registry's credentials")
	fl.StringVar(&ca, "image-registry-ca", "", "PEM file of the CA of the registry's certificate, when the system does not trust it")
	fl.StringSliceVar(&istio, "istio-version", nil, istioVersionUsage)
	return cmd
}

// buildImages assembles the sample apps' images from this checkout, and
// Istio's of each release of istioVersions, into the image cache's build
// directories (no registry, no Docker).
func buildImages(cmd *cobra.Command, istioVersions []string) (map[string]v1.Image, error) {
	rels, err := istioReleases(istioVersions)
	if err != nil {
		return nil, err
	}
	cfg, err := config()
	if err != nil {
		return nil, err
	}
	kube, err := images.LookupKubeRelease(cfg.KubernetesVersion)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
		return nil, err
	}
	lock, err := images.LockCacheShared(cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	local := images.NewLocal(kube, cfg.CacheDir, cfg.RegistryPort, report.NewRun(io.Discard), io.Discard)
	imgs, err := local.AppImages(cmd.Context(), cfg.RepoRoot)
	if err != nil {
		return nil, err
	}
	for _, rel := range rels {
		istio, err := local.IstioUserImages(cmd.Context(), rel)
		if err != nil {
			return nil, err
		}
		maps.Copy(imgs, istio)
	}
	return imgs, nil
}

func sortedApps[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
