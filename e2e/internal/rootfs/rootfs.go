// Package rootfs makes Debian root filesystems with debootstrap, from the
// Debian archive this machine's apt already uses, and packs them as tar files
// cached by their inputs.
package rootfs

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/meshconform/meshconform/e2e/internal/fsutil"
)

// Spec says what goes into a root filesystem: the debootstrap of Debian
// packages, then Edits, all of it data, so Key covers the whole plan.
type Spec struct {
	// Name labels the cache entry, e.g. "node".
	Name    string
	Suite   string // e.g. bookworm
	Variant string // e.g. minbase
	Include []string
	// Edits change the unpacked tree before it is packed.
	Edits Edits `json:",omitempty"`
}

// cleanGlobs are removed from every tree before packing: what a package
// manager leaves behind has no use in an image, and device nodes are the
// container runtime's to make.
var cleanGlobs = []string{"var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", "var/log/*.log", "dev/*"}

func debootstrapArgs(s Spec, tree string) []string {
	args := []string{"--variant=" + s.Variant}
	if len(s.Include) > 0 {
		args = append(args, "--include="+strings.Join(s.Include, ","))
	}
	return append(args, s.Suite, tree)
}

func tarArgs(tree, out string) []string {
	return []string{"--numeric-owner", "--xattrs", "-C", tree, "-cf", out, "."}
}

// Key is the digest of the spec's complete plan: the spec, its edits with
// the digest of every file they copy, and the commands that debootstrap,
// clean and pack the tree (the same functions Build runs them from).
func (s Spec) Key() string {
	h := sha256.New()
	enc, _ := json.Marshal(struct {
		Spec               Spec
		Copied             map[string]string
		Debootstrap, Clean []string
		Tar                []string
	}{s, s.Edits.sourceDigests(), debootstrapArgs(s, "$TREE"), cleanGlobs, tarArgs("$TREE", "$OUT")})
	h.Write(enc)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Build returns the path of the packed tree for spec, making it if no
// earlier build with the same key left one.
func Build(ctx context.Context, cacheDir string, s Spec, log io.Writer) (tarPath string, cached bool, err error) {
	dir := filepath.Join(cacheDir, "rootfs")
	tarPath = filepath.Join(dir, fmt.Sprintf("%s-%s.tar", s.Name, s.Key()))
	if _, err := os.Stat(tarPath); err == nil {
		return tarPath, true, nil
	}
	if os.Geteuid() != 0 {
		return "", false, fmt.Errorf("rootfs %s: debootstrap needs root", s.Name)
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", false, fmt.Errorf("rootfs %s: debootstrap not found (make setup installs it)", s.Name)
	}
	tree := filepath.Join(dir, s.Name+"-"+s.Key()+fsutil.Owned(".tree"))
	// RemoveTree, never RemoveAll: a tree with a mount in it leads to the
	// host's files.
	_ = fsutil.RemoveTree(tree)
	defer fsutil.RemoveTree(tree)
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return "", false, err
	}
	args := debootstrapArgs(s, tree)
	if m := HostMirror(); m != "" {
		args = append(args, m)
	}
	if err := run(ctx, log, privateMounts("debootstrap", args...)...); err != nil {
		return "", false, fmt.Errorf("rootfs %s: %w", s.Name, err)
	}
	if err := s.Edits.Apply(ctx, tree, log); err != nil {
		return "", false, fmt.Errorf("rootfs %s: edit: %w", s.Name, err)
	}
	for _, g := range cleanGlobs {
		matches, _ := filepath.Glob(filepath.Join(tree, g))
		for _, m := range matches {
			_ = os.RemoveAll(m)
		}
	}
	tmp := fsutil.TempName(tarPath)
	defer os.Remove(tmp)
	if err := run(ctx, log, append([]string{"tar"}, tarArgs(tree, tmp)...)...); err != nil {
		return "", false, fmt.Errorf("rootfs %s: pack: %w", s.Name, err)
	}
	return tarPath, false, os.Rename(tmp, tarPath)
}

// HostMirror is the Debian archive this machine's apt uses, so debootstrap
// fetches from the same place apt-get does; "" lets debootstrap choose.
func HostMirror() string {
	if m := mirrorFromDeb822("/etc/apt/sources.list.d/debian.sources"); m != "" {
		return m
	}
	return mirrorFromList("/etc/apt/sources.list")
}

func mirrorFromDeb822(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	return parseDeb822Mirror(f)
}

// parseDeb822Mirror returns the first URI of a stanza for the main archive
// (not the security archive).
func parseDeb822Mirror(r io.Reader) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "URIs:"); ok {
			for _, u := range strings.Fields(v) {
				if !strings.Contains(u, "security") {
					return u
				}
			}
		}
	}
	return ""
}

func mirrorFromList(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	return parseListMirror(f)
}

func parseListMirror(r io.Reader) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[0] == "deb" && !strings.Contains(fields[1], "security") {
			return fields[1]
		}
	}
	return ""
}

// privateMounts is the command line that runs name in a mount namespace
// of its own, private to it: the /proc and /sys debootstrap mounts in the
// tree (and unmounts only in its EXIT trap, which SIGKILL skips) vanish
// with the namespace however the build ends, and are never seen by the
// host, whose sweep could otherwise not remove the tree. util-linux's
// unshare is on every Debian system; the build needs root already.
func privateMounts(name string, args ...string) []string {
	return append([]string{"unshare", "--mount", "--propagation", "private", name}, args...)
}

// Chroot runs a command inside tree (for offline steps such as
// `systemctl enable`, which only writes symlinks).
func Chroot(ctx context.Context, tree string, log io.Writer, args ...string) error {
	return run(ctx, log, append([]string{"chroot", tree}, args...)...)
}

func run(ctx context.Context, log io.Writer, argv ...string) error {
	name, args := argv[0], argv[1:]
	cmd := exec.CommandContext(ctx, name, args...)
	var out strings.Builder
	w := io.Writer(&out)
	if log != nil {
		w = io.MultiWriter(&out, log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		s := out.String()
		if len(s) > 2000 {
			s = s[len(s)-2000:]
		}
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, s)
	}
	return nil
}
