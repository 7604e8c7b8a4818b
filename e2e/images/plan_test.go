package images

import (
	"context"
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/meshconform/meshconform/e2e/internal/debian"
	"github.com/meshconform/meshconform/e2e/internal/gobuild"
	"github.com/meshconform/meshconform/e2e/internal/oci"
	"github.com/meshconform/meshconform/e2e/internal/rootfs"
)

var (
	registryDeb = debian.Package{Name: "docker-registry", Version: "2.8.2+ds1-1+b3", Arch: "amd64", SHA256: "aa"}
	libcDeb     = debian.Package{Name: "libc6", Version: "2.36-9+deb12u13", Arch: "amd64", SHA256: "bb"}
)

// The files of the registry's image are taken by their path in the package,
// never by name: Debian's docker-registry also ships an init script of the
// same name (etc/init.d/docker-registry), which a walk in lexical order
// reaches first, and glibc sits under /lib on bookworm, /usr/lib later.
func TestPickFileTakesThePathNotTheName(t *testing.T) {
	bookworm := tree(t, map[string]string{
		"etc/init.d/docker-registry": "#!/bin/sh\n", "usr/bin/docker-registry": "ELF",
		"lib/x86_64-linux-gnu/libc.so.6": "libc", "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "ld",
	})
	later := tree(t, map[string]string{
		"usr/lib/x86_64-linux-gnu/libc.so.6": "libc", "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "ld",
	})
	symlink(t, later, "usr/lib64/ld-linux-x86-64.so.2", "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
	for _, c := range []struct {
		tree  string
		paths []string
		want  string
	}{
		{bookworm, []string{"usr/bin/docker-registry"}, "usr/bin/docker-registry"},
		{bookworm, inMultiarch("libc.so.6"), "lib/x86_64-linux-gnu/libc.so.6"},
		{bookworm, inMultiarch("ld-linux-x86-64.so.2"), "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
		{later, inMultiarch("libc.so.6"), "usr/lib/x86_64-linux-gnu/libc.so.6"},
		{later, inMultiarch("ld-linux-x86-64.so.2"), "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
	} {
		got, err := pickFile(c.tree, c.paths)
		if err != nil || got != c.want {
			t.Errorf("pickFile(%v) = %q, %v; want %s", c.paths, got, err, c.want)
		}
	}
	// The package as the broken recipe saw it: only the init script.
	scriptOnly := tree(t, map[string]string{"etc/init.d/docker-registry": "#!/bin/sh\n"})
	if _, err := pickFile(scriptOnly, []string{"usr/bin/docker-registry"}); err == nil || !strings.Contains(err.Error(), "usr/bin/docker-registry") {
		t.Errorf("a package without the binary: %v, want an error naming usr/bin/docker-registry", err)
	}
	// A symbolic link is not the file: the loader must be copied, not a
	// link that points nowhere in the image.
	if _, err := pickFile(later, []string{"usr/lib64/ld-linux-x86-64.so.2"}); err == nil {
		t.Error("pickFile took a symbolic link for a file")
	}
}

// The registry's image assembled from packages laid out as bookworm's and a
// later release's: it can start (its entrypoint, loader and libc are where
// the binary looks). From the package of the broken recipe (the init script
// only), assembly fails naming the file and the package.
func TestRegistryImageFromUnpackedPackages(t *testing.T) {
	sh, interp, libs := hostDynamicELF(t)
	for _, layout := range []string{"lib/x86_64-linux-gnu/", "usr/lib/x86_64-linux-gnu/"} {
		libcFiles := map[string]string{}
		for name, src := range libs {
			libcFiles[layout+name] = src
		}
		libcFiles[layout+"ld-linux-x86-64.so.2"] = interp
		trees := map[string]string{
			"docker-registry": copyTree(t, map[string]string{"usr/bin/docker-registry": sh, "etc/init.d/docker-registry": ""}),
			"libc6":           copyTree(t, libcFiles),
		}
		if _, err := assembleFrom(t, trees, registryPlan(registryDeb, libcDeb)); err != nil {
			t.Errorf("layout %s: %v", layout, err)
		}
	}
	broken := map[string]string{
		"docker-registry": copyTree(t, map[string]string{"etc/init.d/docker-registry": ""}),
		"libc6":           copyTree(t, map[string]string{"lib/x86_64-linux-gnu/libc.so.6": sh, "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": interp}),
	}
	_, err := assembleFrom(t, broken, registryPlan(registryDeb, libcDeb))
	if err == nil || !strings.Contains(err.Error(), "/usr/bin/docker-registry") || !strings.Contains(err.Error(), "docker-registry=2.8.2") {
		t.Errorf("the broken package: %v, want an error naming /usr/bin/docker-registry and the package", err)
	}
	// The image the broken recipe made (the script at its own path, nothing
	// at the entrypoint) is refused by the start check, naming the file.
	img, err := oci.NewImage(registryPlan(registryDeb, libcDeb).Config, mustLayer(t, oci.File{Path: "/etc/init.d/docker-registry", Mode: 0o755, Data: []byte("#!/bin/sh\n")}))
	if err != nil {
		t.Fatal(err)
	}
	if err := oci.CheckStarts(img); err == nil || !strings.Contains(err.Error(), "/usr/bin/docker-registry") {
		t.Errorf("the broken recipe's image: %v, want an error naming /usr/bin/docker-registry", err)
	}
}

// A plan that takes another file, puts it elsewhere, or changes a mode, the
// entrypoint, the env, a package, a Go flag or the base, has another key.
func TestPlanKeyCoversThePlan(t *testing.T) {
	base := registryPlan(registryDeb, libcDeb)
	key := base.key()
	if registryPlan(registryDeb, libcDeb).key() != key {
		t.Fatal("the key of one plan is not stable")
	}
	if base.Assembler == "" || strings.HasPrefix(base.Assembler, "unassembled") {
		t.Fatalf("assembler fingerprint %q", base.Assembler)
	}
	mod := metallbModule()
	flagged := mod
	flagged.LDFlags = append(append([]string{}, mod.LDFlags...), "-X main.extra=1")
	tagged := mod
	tagged.Tags = []string{"netgo"}
	nosum := mod
	nosum.NoSumDB = []string{"go.universe.tf"}
	build := func(context.Context) (gobuild.Result, error) { return gobuild.Result{}, nil }
	otherLibc := libcDeb
	otherLibc.Version = "2.41-12"
	changes := map[string]func(p *plan){
		// The bug this exists for: the init script taken for the binary.
		"the file taken from the package": func(p *plan) {
			p.Files[1] = debFile("/usr/bin/docker-registry", 0o755, registryDeb, "etc/init.d/docker-registry")
		},
		"the destination":        func(p *plan) { p.Files[1].Path = "/usr/local/bin/docker-registry" },
		"a mode":                 func(p *plan) { p.Files[1].Mode = 0o644 },
		"a package version":      func(p *plan) { *p = registryPlan(registryDeb, otherLibc) },
		"the entrypoint":         func(p *plan) { p.Config.Entrypoint = []string{"/usr/bin/registry"} },
		"the command":            func(p *plan) { p.Config.Cmd = []string{"serve"} },
		"the env":                func(p *plan) { p.Config.Env = []string{"REGISTRY_LOG_LEVEL=debug"} },
		"the user":               func(p *plan) { p.Config.User = "1000" },
		"the configuration data": func(p *plan) { p.Files[0].Data = []byte("version: 0.1\n") },
		"the base":               func(p *plan) { p.Base = kubeProxyRootfsSpec().Key() },
		"a Go file's ldflags":    func(p *plan) { p.Files = append(p.Files, goFile("/x", flagged.Key(), "speaker", build)) },
		"a Go file's tags":       func(p *plan) { p.Files = append(p.Files, goFile("/x", tagged.Key(), "speaker", build)) },
		"a Go file's env":        func(p *plan) { p.Files = append(p.Files, goFile("/x", nosum.Key(), "speaker", build)) },
		"the assembler":          func(p *plan) { p.Assembler = "sha256:other" },
	}
	withGo := registryPlan(registryDeb, libcDeb)
	withGo.Files = append(withGo.Files, goFile("/x", mod.Key(), "speaker", build))
	seen := map[string]string{key: "the plan", withGo.key(): "the plan with a Go file"}
	for what, change := range changes {
		p := registryPlan(registryDeb, libcDeb)
		change(&p)
		k := p.key()
		if other, dup := seen[k]; dup {
			t.Errorf("changing %s gives the key of %s", what, other)
		}
		seen[k] = what
	}
}

// Every recipe of every release plans every file with its source, so its
// key is known before anything is built; a file without one could only be
// data, a link or a directory.
func TestRecipesPlanEveryFile(t *testing.T) {
	var recipes []recipe
	for _, v := range KubeVersions() {
		l := &Local{Release: kubeReleases[v]}
		recipes = append(recipes, l.clusterRecipes(l.kubeModule())...)
	}
	for _, v := range IstioVersions() {
		recipes = append(recipes, istioRecipes(nil, istioReleases[v])...)
	}
	for _, app := range []string{"meshapp", "probe"} {
		rc, err := (&Local{}).appRecipe("../..", app)
		if err != nil {
			t.Fatal(err)
		}
		recipes = append(recipes, rc)
	}
	keys := map[string]string{}
	for _, r := range recipes {
		if len(r.plan.Files) == 0 || len(r.plan.Config.Entrypoint) == 0 {
			t.Errorf("%s: a plan without files or entrypoint", r.ref)
		}
		for _, f := range r.plan.Files {
			if f.fetch == nil && f.From == "" && f.Data == nil && f.Link == "" && !f.Dir {
				t.Errorf("%s: file %s has no source", r.ref, f.Path)
			}
			if (f.fetch == nil) != (f.From == "") {
				t.Errorf("%s: file %s: a source must be named in the plan (%q) exactly when it is fetched", r.ref, f.Path, f.From)
			}
		}
		if other, dup := keys[r.key()]; dup {
			t.Errorf("%s and %s share a key", r.ref, other)
		}
		keys[r.key()] = r.ref
	}
}

// The node image's key follows its root filesystem (kind's base files
// included) and the release.
func TestNodePlanKey(t *testing.T) {
	l := &Local{Release: kubeReleases[DefaultKubernetesVersion]}
	spec := rootfs.Spec{Name: "node", Suite: "bookworm", Include: nodePackages, Edits: nodeEdits(map[string]string{})}
	kube := l.kubeModule()
	key := l.nodePlan(spec, kube).key()
	spec2 := spec
	spec2.Edits.Chroot = append(spec2.Edits.Chroot, []string{"true"})
	if l.nodePlan(spec2, kube).key() == key {
		t.Error("a change in the node's root filesystem edits keeps the node image's key")
	}
	// The staging modules' replaces, worked out from the module's go.mod,
	// change the binaries: they are in the key.
	replaced := kube
	replaced.Replace = map[string]string{"k8s.io/api": "v0.33.13"}
	if l.nodePlan(spec, replaced).key() == key {
		t.Error("the Kubernetes build's replaces are not in the node image's key")
	}
	for _, v := range KubeVersions() {
		o := &Local{Release: kubeReleases[v]}
		if v != DefaultKubernetesVersion && o.nodePlan(spec, o.kubeModule()).key() == key {
			t.Errorf("release %s has the node image key of %s", v, DefaultKubernetesVersion)
		}
	}
}

// An app's key follows its sources and how it is built.
func TestAppKeyFollowsSources(t *testing.T) {
	root := t.TempDir()
	for f, c := range map[string]string{"go.mod": "module x\n", "go.sum": "", AppsDir + "/a/main.go": "package main\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k1, err := appKey(root, "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, AppsDir, "a/main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if k2, _ := appKey(root, "a"); k2 == k1 {
		t.Error("a changed source keeps the app's key")
	}
}

// assembleFrom assembles p with Debian packages unpacked from trees
// (package name → a directory laid out as the package).
func assembleFrom(t *testing.T, trees map[string]string, p plan) (any, error) {
	t.Helper()
	l := &Local{CacheDir: t.TempDir(), unpackDeb: func(_ context.Context, pkg debian.Package, _, dir string) error {
		return os.CopyFS(dir, os.DirFS(trees[pkg.Name]))
	}}
	return l.assemble(context.Background(), p)
}

// hostDynamicELF is this machine's /bin/sh (resolved), its interpreter and
// its libraries (name → path): a real dynamically linked program, as
// Debian's docker-registry is.
func hostDynamicELF(t *testing.T) (prog, interp string, libs map[string]string) {
	t.Helper()
	prog, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skipf("no /bin/sh: %v", err)
	}
	f, err := elf.Open(prog)
	if err != nil {
		t.Skipf("/bin/sh is not ELF: %v", err)
	}
	defer f.Close()
	for _, ph := range f.Progs {
		if ph.Type == elf.PT_INTERP {
			b := make([]byte, ph.Filesz)
			if _, err := ph.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	needed, _ := f.ImportedLibraries()
	if interp != "/lib64/ld-linux-x86-64.so.2" || len(needed) == 0 {
		t.Skipf("/bin/sh is not linked as Debian's amd64 programs are (interpreter %q, libraries %v)", interp, needed)
	}
	libs = map[string]string{}
	for _, n := range needed {
		for _, d := range multiarch {
			if p, err := filepath.EvalSymlinks("/" + d + n); err == nil {
				libs[n] = p
				break
			}
		}
		if libs[n] == "" {
			t.Skipf("library %s of /bin/sh not found on this machine", n)
		}
	}
	interp, err = filepath.EvalSymlinks(interp)
	if err != nil {
		t.Skip(err)
	}
	return prog, interp, libs
}

// tree writes files (path → content) under a new directory.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		writeAt(t, dir, p, []byte(c), 0o755)
	}
	return dir
}

// copyTree writes files (path → source on this machine; "" for a small
// script) under a new directory.
func copyTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, src := range files {
		data := []byte("#!/bin/sh\n")
		if src != "" {
			var err error
			if data, err = os.ReadFile(src); err != nil {
				t.Fatal(err)
			}
		}
		writeAt(t, dir, p, data, 0o755)
	}
	return dir
}

func writeAt(t *testing.T, dir, p string, data []byte, mode os.FileMode) {
	t.Helper()
	f := filepath.Join(dir, p)
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, data, mode); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, dir, link, target string) {
	t.Helper()
	f := filepath.Join(dir, link)
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, f); err != nil {
		t.Fatal(err)
	}
}

func mustLayer(t *testing.T, files ...oci.File) v1.Layer {
	t.Helper()
	l, err := oci.FilesLayer(files)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
