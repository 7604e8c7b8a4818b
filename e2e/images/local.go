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
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/meshconform/meshconform/e2e/internal/debian"
	"github.com/meshconform/meshconform/e2e/internal/docker"
	"github.com/meshconform/meshconform/e2e/internal/fsutil"
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

// kubeBuild is kubeModule complete: Kubernetes replaces its staging modules
// with directories of its own tree; built as a dependency, each is pinned
// to its published v0.x.y, read from the module's go.mod (downloaded once).
// The replaces are part of the build's key, and so of every plan of an
// image made of its binaries: they are worked out before anything is planned.
func (l *Local) kubeBuild(ctx context.Context) (gobuild.Module, error) {
	v, err := l.memo(ctx, "kubernetes replaces "+l.Release.Version, func(ctx context.Context) (any, error) {
		m := l.kubeModule()
		repl, err := gobuild.ModuleReplaces(ctx, m.Path, m.Version, "./staging/", l.Release.stagingVersion())
		if err != nil {
			return nil, fmt.Errorf("replaces of Kubernetes %s: %w", m.Version, err)
		}
		m.Replace = repl
		return m, nil
	})
	if err != nil {
		return gobuild.Module{}, err
	}
	return v.(gobuild.Module), nil
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

// goFiles returns the plan file of one binary of m's build (through the
// memoized goBuild, so a build shared by several images runs once).
func (l *Local) goFiles(m gobuild.Module) func(dest, bin string) planFile {
	return func(dest, bin string) planFile {
		return goFile(dest, m.Key(), bin, func(ctx context.Context) (gobuild.Result, error) { return l.goBuild(ctx, m) })
	}
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

// pauseCompile is how pause.c is compiled: statically, as Kubernetes' own
// build/pause Makefile does, from the Kubernetes module of the release.
type pauseCompile struct {
	GCC, Module, Source string
	Flags               []string
}

func (l *Local) pauseCompile() pauseCompile {
	return pauseCompile{
		GCC: gccVersion(), Module: "k8s.io/kubernetes@" + l.Release.Version, Source: "build/pause/linux/pause.c",
		Flags: []string{"-Os", "-Wall", "-Werror", "-static", fmt.Sprintf("-DVERSION=v%s-meshconform", l.Release.PauseTag)},
	}
}

func (c pauseCompile) key() string {
	enc, _ := json.Marshal(c)
	sum := sha256.Sum256(enc)
	return hex.EncodeToString(sum[:])[:12]
}

// pauseDir is where the pause binary of a compile is kept in the cache.
func (l *Local) pauseDir(c pauseCompile) string {
	return filepath.Join(l.CacheDir, "bin", "pause-"+l.Release.PauseTag+"-"+l.Release.Version+"-"+c.key())
}

func (l *Local) pauseRecipe() recipe {
	c := l.pauseCompile()
	file := planFile{File: oci.File{Path: "/pause", Mode: 0o755}, From: "gcc " + c.key(),
		fetch: func(ctx context.Context, _ *assembly) (string, error) { return l.pauseBinary(ctx, c) }}
	return newRecipe("registry.k8s.io/pause:"+l.Release.PauseTag,
		oci.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"}, file)
}

// pauseBinary compiles pause.c as c says, once per cache.
func (l *Local) pauseBinary(ctx context.Context, c pauseCompile) (string, error) {
	v, err := l.do(ctx, "gcc pause "+l.Release.PauseTag, func(ctx context.Context) (any, bool, error) {
		out := filepath.Join(l.pauseDir(c), "pause")
		if _, err := os.Stat(out); err == nil {
			return out, true, nil
		}
		dl, err := exec.CommandContext(ctx, "go", "mod", "download", "-json", c.Module).Output()
		if err != nil {
			return nil, false, fmt.Errorf("download %s: %w", c.Module, err)
		}
		var info struct{ Dir string }
		if err := json.Unmarshal(dl, &info); err != nil {
			return nil, false, err
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return nil, false, err
		}
		tmp := fsutil.TempName(out)
		defer os.Remove(tmp)
		args := append(append([]string{}, c.Flags...), "-o", tmp, filepath.Join(info.Dir, c.Source))
		if b, err := exec.CommandContext(ctx, "gcc", args...).CombinedOutput(); err != nil {
			return nil, false, fmt.Errorf("gcc pause.c: %w: %s", err, b)
		}
		return out, false, os.Rename(tmp, out)
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
