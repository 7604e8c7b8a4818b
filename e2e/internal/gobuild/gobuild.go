// Package gobuild builds programs from Go modules at exact versions, the way
// this machine can get any upstream program: through the Go module proxy.
//
// Each build gets a small generated module that requires the upstream module
// (plus any replaces it needs) and builds its main packages. Results are kept
// in a directory named by a digest of everything that determines them, so a
// second build with the same inputs does nothing.
package gobuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/modfile"

	"github.com/meshconform/meshconform/e2e/internal/fsutil"
)

// Module says what to build.
type Module struct {
	// Name is a short label for directories and logs, e.g. "kubernetes".
	Name string `json:",omitempty"`
	// Path and Version of the module whose programs are built.
	Path    string
	Version string
	// Require pins further modules (path → version), for dependencies the
	// upstream module's own pins cannot be fetched at.
	Require map[string]string `json:",omitempty"`
	// Replace maps a module path to the version it is replaced with.
	Replace map[string]string `json:",omitempty"`
	// Packages are the main packages to build; each binary is named after
	// the last element of its package path unless Rename says otherwise.
	Packages []string
	Rename   map[string]string `json:",omitempty"`
	LDFlags  []string          `json:",omitempty"`
	Tags     []string          `json:",omitempty"`
	// NoSumDB lists module path patterns the checksum database cannot vouch
	// for (GONOSUMDB); they are still pinned in the generated go.sum.
	NoSumDB []string `json:",omitempty"`
	// SeedSum starts the generated go.sum from the upstream module's own
	// go.sum (and takes its go directive), so every dependency it pins is
	// verified against what upstream recorded, including those the
	// checksum database cannot answer for.
	SeedSum bool `json:",omitempty"`
	// Sums are go.sum lines pinned by the recipe: for modules listed in
	// NoSumDB they are what the download is verified against.
	Sums []string `json:",omitempty"`
	// SeedProbe is a package of the module with few dependencies, listed to
	// fetch the module before its go.sum is known (default: Packages[0]).
	// Listing a package whose imports reach a module the checksum database
	// cannot vouch for would fail before the seeded go.sum could help.
	SeedProbe string `json:",omitempty"`
	// Files are source files of the generated module itself (path relative
	// to it → content), for a main package of our own that composes the
	// upstream module's packages, as CoreDNS is meant to be built with a
	// chosen plugin list. LocalPackage names such a package for Packages.
	Files map[string]string `json:",omitempty"`
	// Nice lowers the build's CPU priority (nice(1) increment), so builds
	// needed later yield the cores to those needed first. It does not change
	// the output and is not part of Key.
	Nice int `json:"-"`
}

// modulePath is the generated module's own path.
func (m Module) modulePath() string { return "meshconform.build/" + m.Name }

// LocalPackage is the import path of a package of the generated module
// (a directory of Files).
func (m Module) LocalPackage(dir string) string { return path.Join(m.modulePath(), dir) }

// Builder runs builds and keeps their results under CacheDir.
type Builder struct {
	CacheDir string
	// Log receives the go command's output; nil discards it.
	Log io.Writer
}

// Result is where the binaries of one build are.
type Result struct {
	Dir string
	// Cached is true when nothing had to be compiled.
	Cached bool
	// CPU is the user+system CPU time the go command and the compilers it
	// ran used (zero when cached): what a cold build costs, whatever else
	// shared the cores meanwhile.
	CPU time.Duration
}

// Binary returns the path of the named binary.
func (r Result) Binary(name string) string { return filepath.Join(r.Dir, name) }

// Key is the digest of the build's complete plan: the module (fields left
// empty are left out, so a new optional field does not change the key of
// builds that do not use it), the generated go.mod and tools file, the go
// command's arguments and environment, and the Go toolchain. They are the
// very values Build uses, so a change in how a build is made changes the key.
func (m Module) Key() string {
	h := sha256.New()
	enc, _ := json.Marshal(struct {
		M           Module
		GoMod, Tool string
		Args, Env   []string
		Go, OS, Ar  string
	}{m, RenderGoMod(m), toolsFile(m), buildArgs(m, "$OUT"), buildEnv(m), runtime.Version(), runtime.GOOS, runtime.GOARCH})
	h.Write(enc)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Build builds m's packages, or returns the binaries an earlier identical
// build left.
func (b *Builder) Build(ctx context.Context, m Module) (Result, error) {
	id := fmt.Sprintf("%s-%s-%s", m.Name, m.Version, m.Key())
	out := filepath.Join(b.CacheDir, "bin", id)
	done := filepath.Join(out, ".complete")
	if _, err := os.Stat(done); err == nil {
		return Result{Dir: out, Cached: true}, nil
	}
	src := filepath.Join(b.CacheDir, "src", id)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return Result{}, err
	}
	if err := b.writeModule(src, m); err != nil {
		return Result{}, fmt.Errorf("build %s %s: %w", m.Name, m.Version, err)
	}
	if m.SeedSum {
		if err := b.seedSum(ctx, src, m); err != nil {
			return Result{}, fmt.Errorf("build %s %s: seed go.sum: %w", m.Name, m.Version, err)
		}
	}
	// The build writes under a name of this process's and is renamed into
	// place when complete; a cancelled or failed build removes it.
	tmp := fsutil.TempName(out)
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(tmp)
	cpu, err := b.goCmd(ctx, src, m, buildArgs(m, tmp)...)
	if err != nil {
		return Result{}, fmt.Errorf("build %s %s: %w", m.Name, m.Version, err)
	}
	for pkg, name := range m.Rename {
		if err := os.Rename(filepath.Join(tmp, BinaryName(pkg)), filepath.Join(tmp, name)); err != nil {
			return Result{}, fmt.Errorf("build %s: rename %s: %w", m.Name, pkg, err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return Result{}, err
	}
	// Another process may have finished the same build meanwhile: its
	// result is as good as ours, and may be in use.
	if _, err := os.Stat(done); err == nil {
		return Result{Dir: out, Cached: true}, nil
	}
	_ = os.RemoveAll(out)
	if err := os.Rename(tmp, out); err != nil {
		if _, serr := os.Stat(done); serr == nil {
			return Result{Dir: out, Cached: true}, nil
		}
		return Result{}, err
	}
	return Result{Dir: out, CPU: cpu}, nil
}

// buildArgs are the go command's arguments for a build into dir.
func buildArgs(m Module, dir string) []string {
	args := []string{"build", "-trimpath", "-o", dir + "/"}
	if len(m.Tags) > 0 {
		args = append(args, "-tags", strings.Join(m.Tags, ","))
	}
	if len(m.LDFlags) > 0 {
		args = append(args, "-ldflags", strings.Join(m.LDFlags, " "))
	}
	return append(args, m.Packages...)
}

// BinaryName is the file name `go build -o dir/` gives a main package: its
// last path element, or the one before a major-version suffix (".../v3").
func BinaryName(pkg string) string {
	base := path.Base(pkg)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" {
		return path.Base(path.Dir(pkg))
	}
	return base
}

// RenderGoMod returns the generated go.mod for m.
func RenderGoMod(m Module) string {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "module %s\n\ngo 1.24\n\nrequire %s %s\n", m.modulePath(), m.Path, m.Version)
	for _, p := range sortedKeys(m.Require) {
		fmt.Fprintf(&buf, "require %s %s\n", p, m.Require[p])
	}
	for _, p := range sortedKeys(m.Replace) {
		fmt.Fprintf(&buf, "replace %s => %s %s\n", p, p, m.Replace[p])
	}
	return buf.String()
}

func (b *Builder) writeModule(dir string, m Module) error {
	gomod := filepath.Join(dir, "go.mod")
	// Keep a go.mod (and go.sum) that an earlier, interrupted build already
	// resolved: it holds the same inputs, and resolving again costs minutes.
	if _, err := os.Stat(gomod); err == nil {
		return nil
	}
	if err := os.WriteFile(gomod, []byte(RenderGoMod(m)), 0o644); err != nil {
		return err
	}
	if len(m.Sums) > 0 {
		if err := os.WriteFile(filepath.Join(dir, "go.sum"), MergeSums(nil, []byte(strings.Join(m.Sums, "\n"))), 0o644); err != nil {
			return err
		}
	}
	for rel, content := range m.Files {
		f := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "tools.go"), []byte(toolsFile(m)), 0o644)
}

// toolsFile imports the upstream main packages so module resolution sees
// them (our own packages resolve as part of the module).
func toolsFile(m Module) string {
	var tools bytes.Buffer
	tools.WriteString("//go:build tools\n\npackage tools\n\nimport (\n")
	for _, p := range m.Packages {
		if !strings.HasPrefix(p, m.modulePath()+"/") {
			fmt.Fprintf(&tools, "\t_ %q\n", p)
		}
	}
	tools.WriteString(")\n")
	return tools.String()
}

// seedSum fetches the upstream module (listing a package of it downloads
// the module's zip, which works even where the proxy withholds a pseudo-
// version's .info), then merges its go.sum into ours and adopts its go
// directive.
func (b *Builder) seedSum(ctx context.Context, dir string, m Module) error {
	marker := filepath.Join(dir, ".seeded")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	var out bytes.Buffer
	probe := m.SeedProbe
	if probe == "" {
		probe = m.Packages[0]
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-f", "{{.Module.Dir}}", probe)
	cmd.Dir = dir
	cmd.Env = goEnv(m)
	cmd.Stdout = &out
	var errOut tailBuffer
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("fetch %s@%s: %w: %s", m.Path, m.Version, err, errOut.String())
	}
	modDir := strings.TrimSpace(out.String())
	upstreamSum, err := os.ReadFile(filepath.Join(modDir, "go.sum"))
	if err != nil {
		return err
	}
	ours, _ := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), MergeSums(ours, upstreamSum), 0o644); err != nil {
		return err
	}
	upstreamMod, err := os.ReadFile(filepath.Join(modDir, "go.mod"))
	if err != nil {
		return err
	}
	if f, err := modfile.ParseLax("go.mod", upstreamMod, nil); err == nil && f.Go != nil {
		edit := exec.CommandContext(ctx, "go", "mod", "edit", "-go="+f.Go.Version)
		edit.Dir = dir
		edit.Env = append(os.Environ(), "GOWORK=off")
		if b, err := edit.CombinedOutput(); err != nil {
			return fmt.Errorf("go mod edit -go=%s: %w: %s", f.Go.Version, err, b)
		}
	}
	return os.WriteFile(marker, nil, 0o644)
}

// MergeSums returns the union of two go.sum files' lines, sorted.
func MergeSums(a, b []byte) []byte {
	seen := map[string]bool{}
	var lines []string
	for _, l := range strings.Split(string(a)+"\n"+string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !seen[l] {
			seen[l] = true
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return []byte(strings.Join(lines, "\n") + "\n")
}

func (b *Builder) goCmd(ctx context.Context, dir string, m Module, args ...string) (time.Duration, error) {
	name, sub := "go", args[0]
	if m.Nice > 0 {
		name, args = "nice", append([]string{"-n", strconv.Itoa(m.Nice), "go"}, args...)
	}
	// go's work directory is ours, beside the build, and removed whatever
	// happens: go removes it only when it exits normally, and a cancelled
	// build interrupts it.
	work := fsutil.TempName(dir + "-work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return 0, err
	}
	defer os.RemoveAll(work)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 15 * time.Second
	cmd.Dir = dir
	cmd.Env = append(goEnv(m), "GOTMPDIR="+work)
	var tail tailBuffer
	w := io.Writer(&tail)
	if b.Log != nil {
		w = io.MultiWriter(&tail, b.Log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("go %s (in %s): %w\n%s", sub, dir, err, tail.String())
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// goEnv is the environment of every go command of a build: this machine's,
// with buildEnv over it.
func goEnv(m Module) []string { return append(os.Environ(), buildEnv(m)...) }

// buildEnv is what a build sets of the go command's environment: static
// linux binaries, the generated module alone, and the recipe's sumdb
// exceptions.
func buildEnv(m Module) []string {
	env := []string{"CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod", "GOOS=linux", "GOARCH=amd64", "GOAMD64=v1", "GOEXPERIMENT="}
	if len(m.NoSumDB) > 0 {
		env = append(env, "GONOSUMDB="+strings.Join(m.NoSumDB, ","))
	}
	return env
}

// ModuleReplaces reads the go.mod of path@version from the module cache and
// returns its replaces that point into the module's own tree ("./staging/...")
// mapped to version: how Kubernetes' staging modules are pinned when it is
// built as a dependency rather than from its own repository.
func ModuleReplaces(ctx context.Context, modPath, version, localPrefix, replaceVersion string) (map[string]string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", modPath+"@"+version)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	cmd.Dir = os.TempDir()
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("download %s@%s: %w %s", modPath, version, err, stderrOf(err))
	}
	var info struct{ GoMod, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, err
	}
	if info.Error != "" {
		return nil, fmt.Errorf("download %s@%s: %s", modPath, version, info.Error)
	}
	raw, err := os.ReadFile(info.GoMod)
	if err != nil {
		return nil, err
	}
	return localReplaces(raw, localPrefix, replaceVersion)
}

func localReplaces(gomod []byte, localPrefix, version string) (map[string]string, error) {
	f, err := modfile.Parse("go.mod", gomod, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range f.Replace {
		if strings.HasPrefix(r.New.Path, localPrefix) {
			out[r.Old.Path] = version
		}
	}
	return out, nil
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// tailBuffer keeps the last 4 KiB written, for error messages.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
