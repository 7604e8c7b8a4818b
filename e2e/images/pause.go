// The pause image: pause.c compiled with gcc, statically, as Kubernetes'
// build/pause does.

package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/meshconform/meshconform/e2e/internal/fsutil"
	"github.com/meshconform/meshconform/e2e/internal/oci"
)

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
