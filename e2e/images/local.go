package images

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/meshconform/meshconform/e2e/internal/debian"
	"github.com/meshconform/meshconform/e2e/internal/docker"
	"github.com/meshconform/meshconform/e2e/internal/gobuild"
	"github.com/meshconform/meshconform/e2e/internal/oci"
	"github.com/meshconform/meshconform/e2e/internal/rootfs"
	"github.com/meshconform/meshconform/e2e/report"
)

const (
	kindNodeRepo      = "meshconform/node"
	registryImageRepo = "meshconform/registry"
)

// Local builds every image on this machine and serves it from a local
// registry. Images are cached by the digest of their build plan: the
// registry keeps each image under a tag made of that digest as well as its
// usual tag.
type Local struct {
	Release  KubeRelease
	CacheDir string
	// RegistryPort is the registry's port on 127.0.0.1.
	RegistryPort int
	Run          *report.Run
	// BuildLog receives the output of go, debootstrap and gcc.
	BuildLog io.Writer

	mu    sync.Mutex
	memos map[string]*lazy
	goBld *gobuild.Builder
	// unpackDeb unpacks a Debian package (debian.Unpack when nil; tests
	// give trees laid out as packages are).
	unpackDeb func(ctx context.Context, pkg debian.Package, debDir, dir string) error
}

// NewLocal returns the local source for release, caching under cacheDir.
func NewLocal(release KubeRelease, cacheDir string, port int, run *report.Run, buildLog io.Writer) *Local {
	return &Local{Release: release, CacheDir: cacheDir, RegistryPort: port, Run: run, BuildLog: buildLog,
		goBld: &gobuild.Builder{CacheDir: cacheDir, Log: buildLog}}
}

// Name implements Source.
func (l *Local) Name() string { return SourceLocal }

// Check implements Source: everything a build needs, before anything runs.
func (l *Local) Check(ctx context.Context) error {
	if err := docker.Ping(ctx); err != nil {
		return err
	}
	for _, tool := range []string{"go", "gcc", "debootstrap", "tar", "chroot", "apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("local image source needs %s on PATH (make setup installs what is missing)", tool)
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("local image source needs root (debootstrap builds the node's root filesystem)")
	}
	// A registry of ours holding the port is fine: it is reused or
	// replaced. A container of its name that is not ours is found here,
	// before the network or anything else exists.
	ours, err := OurRegistry(ctx)
	if err != nil {
		return err
	}
	if !ours {
		return PortFree(l.RegistryPort)
	}
	return nil
}

// StartRegistry builds the registry's image (once) and runs it on network.
// It runs once per Local and network; later calls return the first result.
func (l *Local) StartRegistry(ctx context.Context, network string) error {
	_, err := l.memo(ctx, "registry on "+network, func(ctx context.Context) (any, error) { return nil, l.startRegistry(ctx, network) })
	return err
}

func (l *Local) startRegistry(ctx context.Context, network string) error {
	return l.Run.Time("local registry", func() error {
		regImage, err := l.registryImage(ctx)
		if err != nil {
			return err
		}
		return startRegistry(ctx, regImage, network, filepath.Join(l.CacheDir, "registry"), l.RegistryPort)
	})
}

// Prepare implements Source.
func (l *Local) Prepare(ctx context.Context, network string) (ClusterImages, error) {
	if err := l.StartRegistry(ctx, network); err != nil {
		return ClusterImages{}, err
	}
	reg := l.registry()

	kube, err := l.kubeBuild(ctx)
	if err != nil {
		return ClusterImages{}, err
	}
	var node string
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		node, err = l.nodeImage(gctx, kube)
		return err
	})
	for _, r := range l.clusterRecipes(kube) {
		g.Go(func() error { return l.ensure(gctx, reg, r) })
	}
	if err := g.Wait(); err != nil {
		return ClusterImages{}, err
	}
	l.Run.Figure("image_cache_bytes", CacheSize(l.CacheDir))
	return ClusterImages{Node: node, ContainerdConfigPatches: []string{MirrorPatch(RegistryEndpoint())}}, nil
}

func (l *Local) registry() oci.Registry {
	return oci.Registry{Host: fmt.Sprintf("127.0.0.1:%d", l.RegistryPort)}
}

// recipe is one image for the registry: its usual name and its plan.
type recipe struct {
	ref  string
	plan plan
}

func newRecipe(ref string, cfg oci.Config, files ...planFile) recipe {
	return recipe{ref: ref, plan: newPlan(ref, cfg, files...)}
}

// key is the plan's digest: the cache tag of the image.
func (r recipe) key() string { return r.plan.key() }

// repoTag strips the registry host: the mirror serves registry.k8s.io/x:t
// as x:t.
func (r recipe) repoTag() (repo, tag string) {
	ref := r.ref
	if i := strings.Index(ref, "/"); i > 0 && strings.ContainsAny(ref[:i], ".:") {
		ref = ref[i+1:]
	}
	i := strings.LastIndex(ref, ":")
	return ref[:i], ref[i+1:]
}

// ensure makes the registry serve r: from the cache tag when an image of
// the same plan was built before, else by assembling it now.
func (l *Local) ensure(ctx context.Context, reg oci.Registry, r recipe) error {
	repo, tag := r.repoTag()
	cacheTag := repo + ":mc-" + r.key()
	_, err := l.Run.TimeNote("image "+r.ref, func() (string, error) {
		cached, err := reg.Digest(ctx, cacheTag)
		if err != nil {
			return "", err
		}
		if cached != "" {
			current, err := reg.Digest(ctx, repo+":"+tag)
			if err != nil {
				return "", err
			}
			if current != cached {
				return "cached, retagged", reg.Tag(ctx, cacheTag, repo+":"+tag)
			}
			return "cached", nil
		}
		img, err := l.assemble(ctx, r.plan)
		if err != nil {
			return "", err
		}
		return "built", reg.Push(ctx, img, cacheTag, repo+":"+tag)
	})
	if err != nil {
		return fmt.Errorf("image %s: %w", r.ref, err)
	}
	return nil
}

// onRootfs puts p on the root filesystem spec describes.
func (l *Local) onRootfs(p plan, spec rootfs.Spec) plan {
	p.Base = spec.Key()
	p.base = func(ctx context.Context) (string, error) { return l.rootfs(ctx, spec) }
	return p
}

// caCertificates are this machine's CA certificates, for programs that
// call out over TLS.
func caCertificates() planFile {
	return hostFile("/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt")
}

// clusterRecipes are the images the nodes pull; kube is the Kubernetes
// build, replaces included (kubeBuild).
func (l *Local) clusterRecipes(kube gobuild.Module) []recipe {
	r := l.Release
	kubeFiles := l.goFiles(kube)
	kubeFile := func(c string) planFile { return kubeFiles("/usr/local/bin/"+c, c) }
	var recipes []recipe
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		recipes = append(recipes, newRecipe("registry.k8s.io/"+c+":"+r.Version,
			oci.Config{Entrypoint: []string{"/usr/local/bin/" + c}}, kubeFile(c)))
	}
	proxy := newRecipe("registry.k8s.io/kube-proxy:"+r.Version,
		oci.Config{Entrypoint: []string{"/usr/local/bin/kube-proxy"}}, kubeFile("kube-proxy"))
	proxy.plan = l.onRootfs(proxy.plan, kubeProxyRootfsSpec())
	recipes = append(recipes, proxy)
	etcd := l.goFiles(l.etcdModule())
	recipes = append(recipes, newRecipe("registry.k8s.io/etcd:"+r.EtcdTag,
		oci.Config{Entrypoint: []string{"/usr/local/bin/etcd"}}, etcd("/usr/local/bin/etcd", "etcd")))
	coredns := l.goFiles(l.corednsModule())
	recipes = append(recipes, newRecipe("registry.k8s.io/coredns/coredns:"+r.CoreDNSTag,
		oci.Config{Entrypoint: []string{"/coredns"}}, coredns("/coredns", "coredns"), caCertificates()))
	mlb := l.goFiles(metallbModule())
	for _, c := range []string{"controller", "speaker"} {
		// As MetalLB's own images: the binary at the root, run as is.
		recipes = append(recipes, newRecipe("quay.io/metallb/"+c+":"+MetalLBVersion,
			oci.Config{Entrypoint: []string{"/" + c}}, mlb("/"+c, c)))
	}
	return append(recipes, l.pauseRecipe())
}

// nodePlan is the kind node image: the node's root filesystem, then
// Kubernetes' node programs, its version and the containerd config.
func (l *Local) nodePlan(spec rootfs.Spec, kube gobuild.Module) plan {
	kubeFile := l.goFiles(kube)
	files := []planFile{
		dataFile("/kind/version", 0o644, []byte(l.Release.Version+"\n")),
		dataFile("/etc/containerd/config.toml", 0o644, []byte(nodeContainerdConfig("registry.k8s.io/pause:"+l.Release.PauseTag))),
	}
	for _, b := range []string{"kubelet", "kubeadm", "kubectl"} {
		files = append(files, kubeFile("/usr/bin/"+b, b))
	}
	p := newPlan(kindNodeRepo+":"+l.Release.Version, oci.Config{
		Entrypoint: []string{"/usr/local/bin/entrypoint", "/sbin/init"},
		Env:        []string{"container=docker"},
		StopSignal: "SIGRTMIN+3",
		Labels:     map[string]string{OwnerLabel: "true"},
	}, files...)
	return l.onRootfs(p, spec)
}

// nodeImage builds the kind node image and loads it into Docker (kind starts
// node containers from the Docker image store).
func (l *Local) nodeImage(ctx context.Context, kube gobuild.Module) (string, error) {
	spec, err := nodeRootfsSpec(ctx)
	if err != nil {
		return "", err
	}
	p := l.nodePlan(spec, kube)
	tag := fmt.Sprintf("%s:%s-%s", kindNodeRepo, l.Release.Version, p.key()[:12])
	_, err = l.Run.TimeNote("image "+tag, func() (string, error) {
		if _, err := docker.Run(ctx, "image", "inspect", tag); err == nil {
			return "cached", nil
		}
		img, err := l.assemble(ctx, p)
		if err != nil {
			return "", err
		}
		return "built", oci.DockerLoad(ctx, img, tag)
	})
	return tag, err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
