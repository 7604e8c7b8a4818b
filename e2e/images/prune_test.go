package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/meshconform/meshconform/e2e/internal/gobuild"
	"github.com/meshconform/meshconform/e2e/internal/oci"
	"github.com/meshconform/meshconform/e2e/internal/rootfs"
)

// buildID must be the directory gobuild.Builder.Build uses: with a
// .complete marker there, Build answers from the cache without running
// anything (ctx is cancelled, so a build it did start fails at once).
func TestBuildIDMatchesGobuild(t *testing.T) {
	cache := t.TempDir()
	m := metallbModule()
	dir := filepath.Join(cache, "bin", buildID(m))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := (&gobuild.Builder{CacheDir: cache}).Build(ctx, m)
	if err != nil || !r.Cached || r.Dir != dir {
		t.Errorf("Build = %+v, %v; want the cached build in %s", r, err, dir)
	}
}

// kubeProxyRootfsSpec must be the spec the kube-proxy recipe is made from.
func TestKubeProxySpecMatchesRecipe(t *testing.T) {
	l := &Local{Release: kubeReleases[DefaultKubernetesVersion]}
	for _, r := range l.clusterRecipes(l.kubeModule()) {
		if strings.HasPrefix(r.ref, "registry.k8s.io/kube-proxy:") {
			if r.plan.Base != kubeProxyRootfsSpec().Key() {
				t.Errorf("kube-proxy plan's base %s is not kubeProxyRootfsSpec's key %s", r.plan.Base, kubeProxyRootfsSpec().Key())
			}
			return
		}
	}
	t.Fatal("no kube-proxy recipe")
}

var stubProbes = keyProbes{
	kubeReplaces: func(context.Context, KubeRelease) (map[string]string, error) {
		return map[string]string{"k8s.io/api": "v0.33.13"}, nil
	},
	nodeSpec: func(context.Context) (rootfs.Spec, error) { return rootfs.Spec{Name: "node", Suite: "bookworm"}, nil },
}

func TestCurrentUse(t *testing.T) {
	u, err := currentUse(context.Background(), "../..", stubProbes)
	if err != nil {
		t.Fatal(err)
	}
	r := kubeReleases[DefaultKubernetesVersion]
	l := &Local{Release: r}
	kube := l.kubeModule()
	kube.Replace = map[string]string{"k8s.io/api": "v0.33.13"}
	ir := istioReleases[DefaultIstioVersion]
	want := []string{
		"bin/" + buildID(kube), "src/" + buildID(kube),
		"bin/" + buildID(l.etcdModule()), "src/" + buildID(l.corednsModule()),
		"bin/" + buildID(metallbModule()), "bin/pause-" + r.PauseTag + "-" + r.Version + "-" + l.pauseCompile().key(),
		"bin/" + buildID(istioStandard(ir)), "src/" + buildID(istioAgent(ir)),
		"rootfs/" + rootfsName(kubeProxyRootfsSpec()), "rootfs/node-" + (rootfs.Spec{Name: "node", Suite: "bookworm"}).Key() + ".tar",
	}
	for _, app := range []string{"meshapp", "probe"} {
		key, err := appKey("../..", app)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, "bin/app-"+app+"-"+key)
	}
	for _, w := range want {
		if !u.uses(w) {
			t.Errorf("current use lacks %s", w)
		}
	}
	if u.uses("bin/" + buildID(l.kubeModule())) {
		t.Errorf("the Kubernetes build without its replaces counts as current")
	}
	// Every name current recipes give is one planFiles recognises.
	for e := range u.entries {
		top, name, _ := strings.Cut(e, "/")
		ok := goBuildName.MatchString(name) || (top == "bin" && (appName.MatchString(name) || pauseName.MatchString(name))) ||
			(top == "rootfs" && rootfsFileName.MatchString(name))
		if !ok {
			t.Errorf("current entry %s is not named as planFiles expects", e)
		}
	}
	pilot := istioRecipes(nil, ir)[0]
	if !u.cacheTags["istio/pilot:mc-"+pilot.key()] {
		t.Errorf("cache tags lack istio/pilot:mc-%s: %v", pilot.key(), sortedKeys(u.cacheTags))
	}
	if got := u.usualTags["pause:"+r.PauseTag]; len(got) != 1 || !strings.HasPrefix(got[0], "pause:mc-") {
		t.Errorf("usual tag pause:%s stands for %v, want one cache tag", r.PauseTag, got)
	}

	// A key that cannot be computed keeps everything it could name.
	failing := stubProbes
	failing.kubeReplaces = func(context.Context, KubeRelease) (map[string]string, error) { return nil, errors.New("offline") }
	failing.nodeSpec = func(context.Context) (rootfs.Spec, error) { return rootfs.Spec{}, errors.New("no kind module") }
	u, err = currentUse(context.Background(), "../..", failing)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"bin/kubernetes-" + r.Version + "-0123456789abcdef", "src/kubernetes-" + r.Version + "-0123456789abcdef", "rootfs/node-0123456789abcdef.tar"} {
		if !u.uses(p) {
			t.Errorf("with its key unknown, %s is not kept", p)
		}
	}
	if !u.repos["kube-apiserver"] || !u.repos["kube-proxy"] || u.repos["etcd"] {
		t.Errorf("with the Kubernetes build's key unknown, its images' repositories kept: %v; want kube-* only", u.repos)
	}
	if len(u.notes) != 3+4*len(KubeVersions()) {
		t.Errorf("notes = %q, want one per unknown key and directory", u.notes)
	}
	if _, err := currentUse(context.Background(), t.TempDir(), stubProbes); err == nil {
		t.Errorf("currentUse outside the repository found sample apps")
	}
}

// cache builds a synthetic cache directory.
type cache struct {
	t   *testing.T
	dir string
}

func (c cache) file(rel, content string) {
	c.t.Helper()
	p := filepath.Join(c.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func (c cache) exists(rel string) bool {
	_, err := os.Lstat(filepath.Join(c.dir, filepath.FromSlash(rel)))
	return err == nil
}

// blob stores content in the registry storage and returns its digest.
func (c cache) blob(content string) string {
	sum := sha256.Sum256([]byte(content))
	h := hex.EncodeToString(sum[:])
	c.file("registry/docker/registry/v2/blobs/sha256/"+h[:2]+"/"+h+"/data", content)
	return "sha256:" + h
}

// image pushes a one-layer image into repo under tags.
func (c cache) image(repo, layer string, tags ...string) string {
	v2 := "registry/docker/registry/v2/repositories/" + repo
	cfg, l := c.blob("config of "+layer), c.blob(layer)
	for _, d := range []string{cfg, l} {
		c.file(v2+"/_layers/sha256/"+strings.TrimPrefix(d, "sha256:")+"/link", d)
	}
	m := c.blob(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":%q},"layers":[{"digest":%q}]}`, cfg, l))
	c.file(v2+"/_manifests/revisions/sha256/"+strings.TrimPrefix(m, "sha256:")+"/link", m)
	for _, tag := range tags {
		c.file(v2+"/_manifests/tags/"+tag+"/current/link", m)
	}
	return m
}

func TestPruneSyntheticCache(t *testing.T) {
	const cur, old = "0123456789abcdef", "fedcba9876543210"
	u := newCacheUse()
	for _, e := range []string{"bin/etcd-v3.5.24-" + cur, "src/etcd-v3.5.24-" + cur, "bin/app-probe-0123456789ab",
		"bin/pause-3.10-v1.33.13-0123456789ab", "rootfs/node-" + cur + ".tar"} {
		u.entries[e] = true
	}
	u.keepPrefix("bin/kubernetes-v1.33.13-", "test")
	currentPause := newRecipe("registry.k8s.io/pause:3.10", oci.Config{Entrypoint: []string{"/pause"}})
	u.recipe(currentPause)
	u.recipe(newRecipe("docker.io/istio/pilot:1.29.2", oci.Config{Entrypoint: []string{"/pilot"}}))

	c := cache{t, t.TempDir()}
	outside := t.TempDir()
	precious := filepath.Join(outside, "precious")
	if err := os.WriteFile(precious, []byte("not the cache's"), 0o644); err != nil {
		t.Fatal(err)
	}
	keep := []string{
		"bin/etcd-v3.5.24-" + cur + "/etcd", "bin/etcd-v3.5.24-" + cur + "/.complete",
		"src/etcd-v3.5.24-" + cur + "/go.mod", "bin/app-probe-0123456789ab/probe",
		"bin/pause-3.10-v1.33.13-0123456789ab/pause", "bin/kubernetes-v1.33.13-" + old + "/kubelet",
		"rootfs/node-" + cur + ".tar", "debs/libc6_2.36-9_amd64.deb",
		// Not ours to judge:
		"bin/etcd-v3.5.24-" + cur + ".1.tmp/etcd", // a build of a live process (PID 1 always is)
		"bin/README", "bin/mytool/x", "rootfs/node-" + old + ".img", "notes.txt", "go-build/00/x",
		"src/etcd-v3.5.24-" + old, // a file, where builds make directories
	}
	stale := []string{
		"bin/etcd-v3.5.23-" + old + "/etcd", "src/etcd-v3.5.23-" + old + "/go.mod",
		"bin/istio-1.25.0-v0.0.0-20250101000000-abcdefabcdef-" + old + "/pilot-discovery",
		"bin/distribution-v3.1.2-" + old + "/registry", "bin/app-probe-ba9876543210/probe",
		"bin/pause-3.9-v1.32.0/pause", "rootfs/node-" + old + ".tar", "rootfs/kube-proxy-" + old + ".tar",
		"rootfs/node-" + cur + ".tree/etc/hostname", "rootfs/node-" + cur + ".tar.tmp",
		"bin/etcd-v3.5.24-" + cur + ".tmp/etcd", "debs/registry-123.tree/usr/bin/docker-registry",
		"bin/pause-3.10-v1.33.13/pause", // named before the compile's flags were in the name

	}
	for _, f := range append(append([]string{}, keep...), stale...) {
		c.file(f, strings.Repeat("x", 100))
	}
	// Symbolic links named like a stale build and like a leftover, pointing
	// out of the cache: neither followed nor removed.
	if err := os.Symlink(outside, filepath.Join(c.dir, "bin", "etcd-v3.5.0-"+old)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(c.dir, "rootfs", "kube-proxy-"+old+".tar.tmp")); err != nil {
		t.Fatal(err)
	}

	pauseNow := c.image("pause", "pause now", "3.10", "mc-"+currentPause.key())
	c.image("pause", "pause before", "mc-"+old) // a stale cache tag
	c.image("istio/pilot", "pilot stale usual", "1.29.2")
	c.image("kube-apiserver", "old release", "v1.32.0", "mc-"+cur)

	// Dry first: reports everything, changes nothing.
	dry, err := prune(c.dir, u, PruneOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range stale {
		if !c.exists(f) {
			t.Fatalf("dry run removed %s", f)
		}
	}

	var log strings.Builder
	res, err := prune(c.dir, u, PruneOptions{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range keep {
		if !c.exists(f) {
			t.Errorf("removed %s, which is current or not ours", f)
		}
	}
	for _, f := range stale {
		if c.exists(f) {
			t.Errorf("kept stale %s", f)
		}
	}
	if !c.exists("bin/etcd-v3.5.0-"+old) || !c.exists("rootfs/kube-proxy-"+old+".tar.tmp") || !fileExists(precious) {
		t.Errorf("a symbolic link or what it points at was removed")
	}
	var removed []string
	for _, e := range res.Removed {
		removed = append(removed, e.Path)
	}
	if len(removed) != 13 || !reflect.DeepEqual(removed, pathsOf(dry.Removed)) {
		t.Errorf("removed %v (dry run said %v), want the 13 stale entries", removed, pathsOf(dry.Removed))
	}
	if got := pathsOf(res.Unknown); len(got) != 9 {
		t.Errorf("unknown = %v, want the 6 unrecognised entries, a live process's build and 2 symbolic links", got)
	}
	wantTags := []string{"istio/pilot:1.29.2", "kube-apiserver:mc-" + cur, "kube-apiserver:v1.32.0", "pause:mc-" + old}
	if !reflect.DeepEqual(res.Registry.RemovedTags, wantTags) || res.Registry.Repos != 2 || res.Registry.Blobs != 9 {
		t.Errorf("registry: %s, tags %v; want tags %v, 2 repositories and 9 blobs removed", res.Registry, res.Registry.RemovedTags, wantTags)
	}
	h := strings.TrimPrefix(pauseNow, "sha256:")
	if !c.exists("registry/docker/registry/v2/repositories/pause/_manifests/tags/3.10/current/link") ||
		!c.exists("registry/docker/registry/v2/blobs/sha256/"+h[:2]+"/"+h+"/data") {
		t.Errorf("the current pause image lost its usual tag or manifest")
	}
	if res.After >= res.Before || res.Before-res.After != res.RemovedBytes() {
		t.Errorf("size %d → %d, RemovedBytes %d", res.Before, res.After, res.RemovedBytes())
	}
	if !strings.Contains(log.String(), "left alone bin/README") || !strings.Contains(log.String(), "removed registry tag pause:mc-"+old) {
		t.Errorf("log lacks lines for unknown entries or removed tags:\n%s", log.String())
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func pathsOf(es []CacheEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Path)
	}
	return out
}

func TestPruneRefusesWhileRegistryMayRun(t *testing.T) {
	c := cache{t, t.TempDir()}
	c.file("bin/etcd-v3.5.23-fedcba9876543210/etcd", "xx")
	noDocker := errors.New("Cannot connect to the Docker daemon")
	for _, tc := range []struct {
		name     string
		exists   bool
		err      error
		noDocker bool
		want     string // "" = allowed
	}{
		{"running", true, nil, false, "exists"},
		{"running, NoDocker", true, nil, true, "exists"},
		{"no docker", false, noDocker, false, "cannot tell"},
		{"no docker, NoDocker", false, noDocker, true, ""},
		{"stopped", false, nil, false, ""},
	} {
		err := registryStopped(context.Background(), PruneOptions{NoDocker: tc.noDocker,
			RegistryRunning: func(context.Context) (bool, error) { return tc.exists, tc.err }})
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: registryStopped = %v, want %q", tc.name, err, tc.want)
		}
	}
	_, err := Prune(context.Background(), c.dir, PruneOptions{RepoRoot: "../..",
		RegistryRunning: func(context.Context) (bool, error) { return true, nil }})
	if err == nil || !c.exists("bin/etcd-v3.5.23-fedcba9876543210/etcd") {
		t.Errorf("Prune with the registry running = %v and removed files", err)
	}
	_, pruned, err := PruneIfOver(context.Background(), c.dir, 1, PruneOptions{RepoRoot: "../..",
		RegistryRunning: func(context.Context) (bool, error) { return true, nil }})
	if err == nil || !pruned {
		t.Errorf("PruneIfOver over its limit with the registry running = %v, %v; want an error", pruned, err)
	}
}

func TestPruneIfOverUnderLimit(t *testing.T) {
	c := cache{t, t.TempDir()}
	c.file("bin/etcd-v3.5.23-fedcba9876543210/etcd", strings.Repeat("x", 1000))
	for _, limit := range []int64{0, 1000, 1 << 30} {
		var log strings.Builder
		res, pruned, err := PruneIfOver(context.Background(), c.dir, limit, PruneOptions{RepoRoot: "../..", Log: &log,
			RegistryRunning: func(context.Context) (bool, error) { t.Fatal("asked about the registry"); return false, nil }})
		if err != nil || pruned || res.Before != 1000 || res.After != 1000 || !c.exists("bin/etcd-v3.5.23-fedcba9876543210/etcd") {
			t.Errorf("limit %d: %+v, %v, %v", limit, res, pruned, err)
		}
		if !strings.Contains(log.String(), "1000 B") {
			t.Errorf("limit %d: log does not report the size: %q", limit, log.String())
		}
	}
}

func TestParseCacheLimit(t *testing.T) {
	for in, want := range map[string]int64{
		"": DefaultCacheLimit, "0": 0, "8GiB": 8 << 30, "500MiB": 500 << 20, "500mib": 500 << 20,
		"1.5 GiB": 3 << 29, "2G": 2 << 30, "2GB": 2e9, "1024": 1024, "10B": 10, " 1TiB ": 1 << 40, "64k": 64 << 10,
	} {
		got, err := ParseCacheLimit(in)
		if err != nil || got != want {
			t.Errorf("ParseCacheLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1GiB", "GiB", "8 GiBs", "lots", "1e30TB", "NaN", "8 iB"} {
		if got, err := ParseCacheLimit(in); err == nil {
			t.Errorf("ParseCacheLimit(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 8 << 30: "8.0 GiB", 2_100_000_000: "2.0 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
