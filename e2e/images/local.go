package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"go/format"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
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
	// recipeVersion is bumped when how images are assembled changes, so no
	// image assembled the old way is taken from the cache.
	recipeVersion = "1"
)

// Local builds every image on this machine and serves it from a local
// registry. Images are cached by a digest of their inputs: the registry keeps
// each image under a tag made of that digest as well as its usual tag.
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
	// A registry of ours holding the port is fine: it is reused or replaced.
	if ok, _ := docker.Exists(ctx, "container", RegistryContainer); !ok {
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

	var node string
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		node, err = l.nodeImage(gctx)
		return err
	})
	for _, r := range l.clusterRecipes() {
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

// recipe is one image for the registry: its usual name, the inputs that
// determine it, and how to build it.
type recipe struct {
	ref    string
	inputs []string
	build  func(ctx context.Context) (v1.Image, error)
}

func (r recipe) key() string {
	h := sha256.New()
	json.NewEncoder(h).Encode(append([]string{recipeVersion, r.ref}, r.inputs...))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

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

// ensure makes the registry serve r: from the cache tag when an image with
// the same inputs was built before, else by building it now.
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
		img, err := r.build(ctx)
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

// lazy runs an expensive shared step (a Go build, a debootstrap) at most
// once, however many images need it.
type lazy struct {
	done chan struct{}
	val  any
	err  error
}

// memo runs fn at most once per Local for key, in a goroutine of its own;
// every caller, concurrent or later, gets its result. A build started in the
// background and the phase that needs it later so share one build. Each
// caller waits only as long as its own ctx allows. fn runs with the context
// of the caller that started it; a result that is a context error (that
// caller gave up) is not kept, so the next caller starts afresh.
func (l *Local) memo(ctx context.Context, key string, fn func(ctx context.Context) (any, error)) (any, error) {
	for {
		l.mu.Lock()
		if l.memos == nil {
			l.memos = map[string]*lazy{}
		}
		lz, ok := l.memos[key]
		if !ok {
			lz = &lazy{done: make(chan struct{})}
			l.memos[key] = lz
			go func() {
				lz.val, lz.err = fn(ctx)
				if isContextErr(lz.err) {
					l.mu.Lock()
					delete(l.memos, key)
					l.mu.Unlock()
				}
				close(lz.done)
			}()
		}
		l.mu.Unlock()
		select {
		case <-lz.done:
			// The caller that started it gave up, not this one: start again.
			if isContextErr(lz.err) && ctx.Err() == nil {
				continue
			}
			return lz.val, lz.err
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s: %w", key, ctx.Err())
		}
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// do runs fn as the timed phase name once per Local; fn says whether its
// result came from the cache, which the phase line reports.
func (l *Local) do(ctx context.Context, name string, fn func(ctx context.Context) (val any, cached bool, err error)) (any, error) {
	return l.memo(ctx, name, func(ctx context.Context) (any, error) {
		var val any
		_, err := l.Run.TimeNote(name, func() (string, error) {
			var cached bool
			var err error
			val, cached, err = fn(ctx)
			if cached {
				return "cached", err
			}
			return "built", err
		})
		return val, err
	})
}

// build runs one Go build and records its CPU cost as a figure
// (build_cpu_seconds/<name>), the number that says what a cold machine pays.
func (l *Local) build(ctx context.Context, m gobuild.Module) (gobuild.Result, error) {
	r, err := l.goBld.Build(ctx, m)
	if err == nil && !r.Cached {
		l.Run.Figure("build_cpu_seconds/"+m.Name, math.Round(r.CPU.Seconds()))
	}
	return r, err
}

func (l *Local) goBuild(ctx context.Context, m gobuild.Module) (gobuild.Result, error) {
	v, err := l.do(ctx, "go build "+m.Name+" "+m.Version, func(ctx context.Context) (any, bool, error) {
		r, err := l.build(ctx, m)
		return r, r.Cached, err
	})
	if err != nil {
		return gobuild.Result{}, err
	}
	return v.(gobuild.Result), nil
}

func (l *Local) rootfs(ctx context.Context, spec rootfs.Spec) (string, error) {
	v, err := l.do(ctx, "root filesystem "+spec.Name, func(ctx context.Context) (any, bool, error) {
		return rootfs.Build(ctx, l.CacheDir, spec, l.BuildLog)
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// kubeModule is Kubernetes' server programs at the release, version-stamped
// as the release scripts stamp them (kubeadm parses the version it reports).
func (l *Local) kubeModule() gobuild.Module {
	v := l.Release.Version
	var ld []string
	for _, p := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		ld = append(ld, "-X "+p+".gitVersion="+v, "-X "+p+".gitMajor=1", "-X "+p+".gitMinor="+l.Release.minor(),
			"-X "+p+".gitTreeState=clean", "-X "+p+".buildDate=1970-01-01T00:00:00Z")
	}
	var pkgs []string
	for _, c := range []string{"kubelet", "kubeadm", "kubectl", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"} {
		pkgs = append(pkgs, "k8s.io/kubernetes/cmd/"+c)
	}
	return gobuild.Module{
		Name: "kubernetes", Path: "k8s.io/kubernetes", Version: v, Packages: pkgs,
		LDFlags: append([]string{"-s", "-w"}, ld...), Tags: []string{"selinux", "notest"},
	}
}

func (l *Local) kubeBinaries(ctx context.Context) (gobuild.Result, error) {
	m := l.kubeModule()
	v, err := l.do(ctx, "go build "+m.Name+" "+m.Version, func(ctx context.Context) (any, bool, error) {
		// Kubernetes replaces its staging modules with directories of its own
		// tree; built as a dependency, each is pinned to its published v0.x.y.
		repl, err := gobuild.ModuleReplaces(ctx, m.Path, m.Version, "./staging/", l.Release.stagingVersion())
		if err != nil {
			return nil, false, err
		}
		m.Replace = repl
		r, err := l.build(ctx, m)
		return r, r.Cached, err
	})
	if err != nil {
		return gobuild.Result{}, err
	}
	return v.(gobuild.Result), nil
}

func (l *Local) etcdModule() gobuild.Module {
	return gobuild.Module{
		Name: "etcd", Path: "go.etcd.io/etcd/server/v3", Version: l.Release.EtcdModule,
		Packages: []string{"go.etcd.io/etcd/server/v3"}, Rename: map[string]string{"go.etcd.io/etcd/server/v3": "etcd"},
		LDFlags: []string{"-s", "-w"},
	}
}

// corednsPlugins are the plugins kubeadm's Corefile uses (kind deploys it
// unchanged: cmd/kubeadm/app/phases/addons/dns/manifests.go, CoreDNSConfigMap),
// plus log for debugging by hand. Each is the package that registers the
// directive of that name.
var corednsPlugins = map[string]string{
	"errors": "errors", "health": "health", "ready": "ready", "kubernetes": "kubernetes",
	"prometheus": "metrics", "forward": "forward", "cache": "cache", "loop": "loop",
	"reload": "reload", "loadbalance": "loadbalance", "log": "log",
}

// corednsMain is CoreDNS' own main (coredns.go) with only corednsPlugins
// plugged in, as CoreDNS is designed to be built (plugin.cfg): the
// directive list keeps upstream's order, which sets the plugin chain.
// A Corefile naming any other plugin fails to load with "unknown directive".
func corednsMain() string {
	var b strings.Builder
	b.WriteString("// Code generated by meshconform: CoreDNS with kubeadm's plugins only.\n\npackage main\n\nimport (\n")
	b.WriteString("\t\"github.com/coredns/coredns/core/dnsserver\"\n\t\"github.com/coredns/coredns/coremain\"\n\n")
	pkgs := map[string]bool{}
	for _, pkg := range corednsPlugins {
		pkgs[pkg] = true
	}
	for _, pkg := range sortedKeys(pkgs) {
		fmt.Fprintf(&b, "\t_ \"github.com/coredns/coredns/plugin/%s\"\n", pkg)
	}
	b.WriteString(")\n\nfunc init() {\n\tkeep := map[string]bool{")
	for _, d := range sortedKeys(corednsPlugins) {
		fmt.Fprintf(&b, "%q: true, ", d)
	}
	b.WriteString("}\n\tvar directives []string\n\tfor _, d := range dnsserver.Directives {\n\t\tif keep[d] {\n\t\t\tdirectives = append(directives, d)\n\t\t}\n\t}\n")
	b.WriteString("\tdnsserver.Directives = directives\n}\n\nfunc main() { coremain.Run() }\n")
	src, err := format.Source([]byte(b.String()))
	if err != nil {
		return b.String() // TestCorednsMain fails on it; go build would too.
	}
	return string(src)
}

func (l *Local) corednsModule() gobuild.Module {
	m := gobuild.Module{
		Name: "coredns", Path: "github.com/coredns/coredns", Version: l.Release.CoreDNSTag,
		Files: map[string]string{"cmd/coredns/main.go": corednsMain()}, LDFlags: []string{"-s", "-w"},
	}
	m.Packages = []string{m.LocalPackage("cmd/coredns")}
	return m
}

// MetalLBVersion is the MetalLB release whose controller and speaker are
// built (it matches e2e/metallb.Version; images cannot import that package
// without a cycle).
const MetalLBVersion = "v0.15.2"

func metallbModule() gobuild.Module {
	return gobuild.Module{
		Name: "metallb", Path: "go.universe.tf/metallb", Version: MetalLBVersion,
		Packages: []string{"go.universe.tf/metallb/controller", "go.universe.tf/metallb/speaker"},
		LDFlags:  []string{"-s", "-w", "-X go.universe.tf/metallb/internal/version.gitBranch=" + MetalLBVersion},
	}
}

// binaryImage is an image of one or more static programs in
// /usr/local/bin, like the distroless images Kubernetes publishes.
func binaryImage(cfg oci.Config, files ...oci.File) (v1.Image, error) {
	layer, err := oci.FilesLayer(files)
	if err != nil {
		return nil, err
	}
	return oci.NewImage(cfg, layer)
}

func (l *Local) clusterRecipes() []recipe {
	r := l.Release
	kube := l.kubeModule()
	var recipes []recipe
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		recipes = append(recipes, recipe{
			ref: "registry.k8s.io/" + c + ":" + r.Version, inputs: []string{kube.Key()},
			build: func(ctx context.Context) (v1.Image, error) {
				bins, err := l.kubeBinaries(ctx)
				if err != nil {
					return nil, err
				}
				return binaryImage(oci.Config{Entrypoint: []string{"/usr/local/bin/" + c}},
					oci.File{Path: "/usr/local/bin/" + c, Mode: 0o755, Src: bins.Binary(c)})
			},
		})
	}
	proxySpec := kubeProxyRootfsSpec()
	recipes = append(recipes, recipe{
		ref: "registry.k8s.io/kube-proxy:" + r.Version, inputs: []string{kube.Key(), proxySpec.Key()},
		build: func(ctx context.Context) (v1.Image, error) {
			// The Debian tree and the binaries are independent: make both at once.
			var bins gobuild.Result
			var base string
			g, gctx := errgroup.WithContext(ctx)
			g.Go(func() (err error) { bins, err = l.kubeBinaries(gctx); return err })
			g.Go(func() (err error) { base, err = l.rootfs(gctx, proxySpec); return err })
			if err := g.Wait(); err != nil {
				return nil, err
			}
			baseLayer, err := oci.LayerFromTar(base)
			if err != nil {
				return nil, err
			}
			bin, err := oci.FilesLayer([]oci.File{{Path: "/usr/local/bin/kube-proxy", Mode: 0o755, Src: bins.Binary("kube-proxy")}})
			if err != nil {
				return nil, err
			}
			return oci.NewImage(oci.Config{Entrypoint: []string{"/usr/local/bin/kube-proxy"}}, baseLayer, bin)
		},
	})
	etcd := l.etcdModule()
	recipes = append(recipes, recipe{
		ref: "registry.k8s.io/etcd:" + r.EtcdTag, inputs: []string{etcd.Key()},
		build: func(ctx context.Context) (v1.Image, error) {
			bins, err := l.goBuild(ctx, etcd)
			if err != nil {
				return nil, err
			}
			return binaryImage(oci.Config{Entrypoint: []string{"/usr/local/bin/etcd"}},
				oci.File{Path: "/usr/local/bin/etcd", Mode: 0o755, Src: bins.Binary("etcd")})
		},
	})
	coredns := l.corednsModule()
	recipes = append(recipes, recipe{
		ref: "registry.k8s.io/coredns/coredns:" + r.CoreDNSTag, inputs: []string{coredns.Key()},
		build: func(ctx context.Context) (v1.Image, error) {
			bins, err := l.goBuild(ctx, coredns)
			if err != nil {
				return nil, err
			}
			return binaryImage(oci.Config{Entrypoint: []string{"/coredns"}},
				oci.File{Path: "/coredns", Mode: 0o755, Src: bins.Binary("coredns")},
				oci.File{Path: "/etc/ssl/certs/ca-certificates.crt", Src: "/etc/ssl/certs/ca-certificates.crt"})
		},
	})
	mlb := metallbModule()
	for _, c := range []string{"controller", "speaker"} {
		recipes = append(recipes, recipe{
			ref: "quay.io/metallb/" + c + ":" + MetalLBVersion, inputs: []string{mlb.Key()},
			build: func(ctx context.Context) (v1.Image, error) {
				bins, err := l.goBuild(ctx, mlb)
				if err != nil {
					return nil, err
				}
				// As MetalLB's own images: the binary at the root, run as is.
				return binaryImage(oci.Config{Entrypoint: []string{"/" + c}},
					oci.File{Path: "/" + c, Mode: 0o755, Src: bins.Binary(c)})
			},
		})
	}
	recipes = append(recipes, recipe{
		ref: "registry.k8s.io/pause:" + r.PauseTag, inputs: []string{r.Version, r.PauseTag, gccVersion()},
		build: func(ctx context.Context) (v1.Image, error) {
			pause, err := l.pauseBinary(ctx)
			if err != nil {
				return nil, err
			}
			return binaryImage(oci.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"},
				oci.File{Path: "/pause", Mode: 0o755, Src: pause})
		},
	})
	return recipes
}

// pauseBinary compiles pause.c from the Kubernetes module, statically, as
// Kubernetes' own build/pause Makefile does.
func (l *Local) pauseBinary(ctx context.Context) (string, error) {
	v, err := l.do(ctx, "gcc pause "+l.Release.PauseTag, func(ctx context.Context) (any, bool, error) {
		out := filepath.Join(l.CacheDir, "bin", "pause-"+l.Release.PauseTag+"-"+l.Release.Version, "pause")
		if _, err := os.Stat(out); err == nil {
			return out, true, nil
		}
		dl, err := exec.CommandContext(ctx, "go", "mod", "download", "-json", "k8s.io/kubernetes@"+l.Release.Version).Output()
		if err != nil {
			return nil, false, fmt.Errorf("download k8s.io/kubernetes@%s: %w", l.Release.Version, err)
		}
		var info struct{ Dir string }
		if err := json.Unmarshal(dl, &info); err != nil {
			return nil, false, err
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return nil, false, err
		}
		cmd := exec.CommandContext(ctx, "gcc", "-Os", "-Wall", "-Werror", "-static",
			fmt.Sprintf("-DVERSION=v%s-meshconform", l.Release.PauseTag),
			"-o", out+".tmp", filepath.Join(info.Dir, "build/pause/linux/pause.c"))
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, false, fmt.Errorf("gcc pause.c: %w: %s", err, b)
		}
		return out, false, os.Rename(out+".tmp", out)
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

func gccVersion() string {
	out, _ := exec.Command("gcc", "-dumpfullversion").Output()
	return strings.TrimSpace(string(out))
}

// registryPackages are what the registry's image is made of: Debian's
// docker-registry (distribution 2.8.2, prebuilt, so no registry build delays
// every other image) and the glibc it is linked against.
var registryPackages = []string{"docker-registry", "libc6"}

// registryImage assembles the registry's own image from Debian's packages
// and loads it into Docker, which runs it.
func (l *Local) registryImage(ctx context.Context) (string, error) {
	pkgs, err := debian.Candidates(ctx, registryPackages...)
	if err != nil {
		return "", fmt.Errorf("registry image: %w", err)
	}
	parts := []string{recipeVersion, registryConfig}
	for _, p := range pkgs {
		parts = append(parts, p.Key())
	}
	tag := registryImageRepo + ":debian-" + shortHash(parts...)
	if _, err := docker.Run(ctx, "image", "inspect", tag); err == nil {
		return tag, nil
	}
	debs := filepath.Join(l.CacheDir, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return "", err
	}
	tree, err := os.MkdirTemp(debs, "registry-*.tree")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tree)
	for _, p := range pkgs {
		if err := debian.Unpack(ctx, p, debs, tree); err != nil {
			return "", fmt.Errorf("registry image: %w", err)
		}
	}
	// The binary and the two glibc files it needs (ldd: libc.so.6 and the
	// loader), at the paths the packages install them to: /lib/x86_64-linux-gnu
	// on bookworm, /usr/lib/x86_64-linux-gnu on later releases.
	files := []oci.File{{Path: "/etc/distribution/config.yml", Data: []byte(registryConfig)}}
	for _, name := range []string{"docker-registry", "libc.so.6", "ld-linux-x86-64.so.2"} {
		rel, err := findFile(tree, name)
		if err != nil {
			return "", fmt.Errorf("registry image: %w", err)
		}
		files = append(files, oci.File{Path: "/" + rel, Mode: 0o755, Src: filepath.Join(tree, rel)})
		if name == "ld-linux-x86-64.so.2" {
			// The path the binary names as its interpreter.
			files = append(files, oci.File{Path: "/lib64/ld-linux-x86-64.so.2", Link: "/" + rel})
		}
	}
	img, err := binaryImage(oci.Config{
		Entrypoint: []string{"/usr/bin/docker-registry"}, Cmd: []string{"serve", "/etc/distribution/config.yml"},
		Labels: map[string]string{OwnerLabel: "true"},
	}, files...)
	if err != nil {
		return "", err
	}
	return tag, oci.DockerLoad(ctx, img, tag)
}

// findFile returns the path, relative to tree, of the regular file named
// name (the first in lexical order), or an error naming what is missing.
func findFile(tree, name string) (string, error) {
	var found string
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return err
		}
		if d.Type().IsRegular() && d.Name() == name {
			found, err = filepath.Rel(tree, p)
			return err
		}
		return nil
	})
	if err == nil && found == "" {
		err = fmt.Errorf("no %s in the unpacked packages %v", name, registryPackages)
	}
	return found, err
}

// nodeImage builds the kind node image and loads it into Docker (kind starts
// node containers from the Docker image store).
func (l *Local) nodeImage(ctx context.Context) (string, error) {
	spec, err := nodeRootfsSpec(ctx, l.BuildLog)
	if err != nil {
		return "", err
	}
	kube := l.kubeModule()
	pause := "registry.k8s.io/pause:" + l.Release.PauseTag
	config := nodeContainerdConfig(pause)
	tag := fmt.Sprintf("%s:%s-%s", kindNodeRepo, l.Release.Version, shortHash(recipeVersion, spec.Key(), kube.Key(), config))
	_, err = l.Run.TimeNote("image "+tag, func() (string, error) {
		if _, err := docker.Run(ctx, "image", "inspect", tag); err == nil {
			return "cached", nil
		}
		base, err := l.rootfs(ctx, spec)
		if err != nil {
			return "", err
		}
		bins, err := l.kubeBinaries(ctx)
		if err != nil {
			return "", err
		}
		baseLayer, err := oci.LayerFromTar(base)
		if err != nil {
			return "", err
		}
		files := []oci.File{
			{Path: "/kind/version", Data: []byte(l.Release.Version + "\n")},
			{Path: "/etc/containerd/config.toml", Data: []byte(config)},
		}
		for _, b := range []string{"kubelet", "kubeadm", "kubectl"} {
			files = append(files, oci.File{Path: "/usr/bin/" + b, Mode: 0o755, Src: bins.Binary(b)})
		}
		k8sLayer, err := oci.FilesLayer(files)
		if err != nil {
			return "", err
		}
		img, err := oci.NewImage(oci.Config{
			Entrypoint: []string{"/usr/local/bin/entrypoint", "/sbin/init"},
			Env:        []string{"container=docker"},
			StopSignal: "SIGRTMIN+3",
			Labels:     map[string]string{OwnerLabel: "true"},
		}, baseLayer, k8sLayer)
		if err != nil {
			return "", err
		}
		return "built", oci.DockerLoad(ctx, img, tag)
	})
	return tag, err
}

func shortHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
