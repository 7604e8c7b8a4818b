package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/meshconform/meshconform/e2e/internal/oci"
)

// AppsDir is where the sample apps' main packages live, relative to the
// repository root.
const AppsDir = "fixtures/apps"

// SampleApps names the apps of fixtures/apps: its directories holding Go
// files, sorted.
func SampleApps(repoRoot string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(repoRoot, AppsDir, "*", "*.go"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no sample apps in %s: is %s the repository root?", filepath.Join(repoRoot, AppsDir), repoRoot)
	}
	seen := map[string]bool{}
	for _, f := range files {
		seen[filepath.Base(filepath.Dir(f))] = true
	}
	return sortedKeys(seen), nil
}

// App returns the image of the sample app in fixtures/apps/<name>, built from
// this repository's source and served by the local registry as
// docker.io/meshconform/<name>:<digest of its build>.
func (l *Local) App(ctx context.Context, repoRoot, name string) (string, error) {
	rc, err := l.appRecipe(repoRoot, name)
	if err != nil {
		return "", err
	}
	// Once per Local: a background prebuild and the spec that needs the
	// image share one build.
	_, err = l.memo(ctx, "app "+rc.ref, func(ctx context.Context) (any, error) { return nil, l.ensure(ctx, l.registry(), rc) })
	return rc.ref, err
}

// appRecipe is the image of a sample app: its binary, run as a user
// without rights. With a nil l only ref and key are meaningful.
func (l *Local) appRecipe(repoRoot, name string) (recipe, error) {
	key, err := appKey(repoRoot, name)
	if err != nil {
		return recipe{}, err
	}
	bin := planFile{File: oci.File{Path: "/usr/local/bin/" + name, Mode: 0o755}, From: "app " + name + " " + key,
		fetch: func(ctx context.Context, _ *assembly) (string, error) { return l.buildApp(ctx, repoRoot, name, key) }}
	return newRecipe("docker.io/"+appRepoTag(name, key),
		oci.Config{Entrypoint: []string{"/usr/local/bin/" + name}, User: "65532:65532"}, bin), nil
}

// appBuild is the go command that builds app name into out, and what it
// sets of the environment: a static linux binary.
func appBuild(name, out string) (args, env []string) {
	return []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./" + AppsDir + "/" + name},
		[]string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOAMD64=v1", "GOEXPERIMENT=", "GOFLAGS="}
}

// appDir is where the binary of an app's build is kept in the cache.
func (l *Local) appDir(name, key string) string {
	return filepath.Join(l.CacheDir, "bin", "app-"+name+"-"+key)
}

func (l *Local) buildApp(ctx context.Context, repoRoot, name, key string) (string, error) {
	out := filepath.Join(l.appDir(name, key), name)
	args, env := appBuild(name, out)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build app %s: %w: %s", name, err, b)
	}
	return out, nil
}

// appKey digests what the app's binary is made of: the Go files of its
// directory and every directory below it (its own packages, such as
// meshapp/api; apps import nothing else of this repository), the module's
// go.mod and go.sum, the go command's arguments and environment, and the Go
// toolchain.
func appKey(repoRoot, name string) (string, error) {
	var files []string
	err := filepath.WalkDir(filepath.Join(repoRoot, AppsDir, name), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("app %s: no Go files in %s (%v)", name, filepath.Join(AppsDir, name), err)
	}
	files = append(files, filepath.Join(repoRoot, "go.mod"), filepath.Join(repoRoot, "go.sum"))
	sort.Strings(files)
	h := sha256.New()
	args, env := appBuild(name, "$OUT")
	fmt.Fprintf(h, "%s\x00%q\x00%q\x00", runtime.Version(), args, env)
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(repoRoot, f)
		fmt.Fprintf(h, "%s\x00", rel)
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}
