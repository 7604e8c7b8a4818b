// Package oci assembles OCI images from files and root filesystems built on
// this machine, and moves them to a registry or into Docker. It needs no
// Docker daemon to build: images are made in-process with go-containerregistry.
package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// epoch is the fixed modification time of every file this package writes, so
// the same inputs give the same layer digest.
var epoch = time.Unix(0, 0).UTC()

// File is one file of a layer: its content comes from Data, or from the file
// at Src on this machine. A Link makes a symlink instead, Dir an empty
// directory (with Mode, default 0755).
type File struct {
	Path string
	Mode int64
	Data []byte
	Src  string
	Link string
	Dir  bool
}

// FilesLayer makes a layer of files (and their parent directories). The
// layer is held in memory: nothing is left on disk once it is pushed.
func FilesLayer(files []File) (v1.Layer, error) {
	var buf bytes.Buffer
	if err := writeFilesTar(&buf, files); err != nil {
		return nil, fmt.Errorf("write layer: %w", err)
	}
	raw := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithCompressionLevel(gzip.BestSpeed), tarball.WithCompressedCaching)
}

// LayerFromTar makes a layer of an uncompressed tar file. Compression is
// fast rather than small: images only travel over the local machine.
func LayerFromTar(tarPath string) (v1.Layer, error) {
	return tarball.LayerFromFile(tarPath, tarball.WithCompressionLevel(gzip.BestSpeed), tarball.WithCompressedCaching)
}

func writeFilesTar(w io.Writer, files []File) error {
	tw := tar.NewWriter(w)
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	dirs := map[string]bool{}
	for _, file := range sorted {
		p := strings.TrimPrefix(path.Clean(file.Path), "/")
		for _, d := range parents(p) {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch}); err != nil {
				return err
			}
		}
		if file.Dir {
			mode := file.Mode
			if mode == 0 {
				mode = 0o755
			}
			dirs[p] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: mode, ModTime: epoch}); err != nil {
				return err
			}
			continue
		}
		if file.Link != "" {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: p, Linkname: file.Link, Mode: 0o777, ModTime: epoch}); err != nil {
				return err
			}
			continue
		}
		data := file.Data
		var err error
		if file.Src != "" {
			if data, err = os.ReadFile(file.Src); err != nil {
				return err
			}
		}
		mode := file.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// parents lists the directories above p, outermost first: "a/b/c" → a, a/b.
func parents(p string) []string {
	var out []string
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}

// Config is the part of an image's configuration the recipes set.
type Config struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
	StopSignal string
	Labels     map[string]string
}

// DefaultPath is the PATH every image gets unless its recipe says otherwise.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// NewImage stacks layers on an empty linux/amd64 image with cfg.
func NewImage(cfg Config, layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, fmt.Errorf("append layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{Time: epoch}
	env := cfg.Env
	if !hasPath(env) {
		env = append([]string{DefaultPath}, env...)
	}
	cf.Config = v1.Config{
		Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, Env: env, User: cfg.User,
		WorkingDir: cfg.WorkingDir, StopSignal: cfg.StopSignal, Labels: cfg.Labels,
	}
	return mutate.ConfigFile(img, cf)
}

func hasPath(env []string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return true
		}
	}
	return false
}

// Registry is a plain-HTTP registry reachable from this machine (a local one
// the harness runs).
type Registry struct {
	// Host is host:port as seen from this machine, e.g. 127.0.0.1:5001.
	Host string
}

func (r Registry) ref(repoTag string) (name.Reference, error) {
	return name.ParseReference(r.Host+"/"+repoTag, name.Insecure)
}

// Digest returns the digest repoTag points at, or "" if it does not exist.
func (r Registry) Digest(ctx context.Context, repoTag string) (string, error) {
	ref, err := r.ref(repoTag)
	if err != nil {
		return "", err
	}
	desc, err := remote.Head(ref, remote.WithContext(ctx))
	if err != nil {
		if isNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("look up %s: %w", ref, err)
	}
	return desc.Digest.String(), nil
}

func isNotFound(err error) bool {
	s := err.Error()
	return strings.Contains(s, "404") || strings.Contains(s, "MANIFEST_UNKNOWN") || strings.Contains(s, "NAME_UNKNOWN")
}

// Push writes img under every one of repoTags.
func (r Registry) Push(ctx context.Context, img v1.Image, repoTags ...string) error {
	for _, rt := range repoTags {
		ref, err := r.ref(rt)
		if err != nil {
			return err
		}
		if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
	}
	return nil
}

// Tag points repoTag at the image already stored under fromRepoTag (same
// repository), without moving any layer.
func (r Registry) Tag(ctx context.Context, fromRepoTag, repoTag string) error {
	from, err := r.ref(fromRepoTag)
	if err != nil {
		return err
	}
	desc, err := remote.Get(from, remote.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("get %s: %w", from, err)
	}
	to, err := name.NewTag(r.Host+"/"+repoTag, name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Tag(to, desc, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("tag %s: %w", to, err)
	}
	return nil
}

// DockerLoad streams img into the local Docker daemon as tag (`docker load`).
func DockerLoad(ctx context.Context, img v1.Image, tag string) error {
	t, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarball.Write(t, img, pw)) }()
	cmd := exec.CommandContext(ctx, "docker", "load")
	cmd.Stdin = pr
	out, err := cmd.CombinedOutput()
	pr.CloseWithError(io.EOF)
	if err != nil {
		return fmt.Errorf("docker load %s: %w: %s", tag, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Fingerprint is the digest of a small image assembled by this package
// from fixed files and a fixed config. Plans of images include it, so a
// change in how this package writes layers or configs (ordering, modes,
// times, defaults) changes every image's cache key, as any other change in
// how images are made does.
func Fingerprint() string {
	layer, err := FilesLayer([]File{
		{Path: "/usr/local/bin/p", Mode: 0o755, Data: []byte("p")},
		{Path: "/etc/c", Data: []byte("c")},
		{Path: "/lib64/l", Link: "/lib/l"},
		{Path: "/var/d", Dir: true, Mode: 0o777},
	})
	if err != nil {
		return "unassembled: " + err.Error()
	}
	img, err := NewImage(Config{Entrypoint: []string{"/usr/local/bin/p"}, Cmd: []string{"c"}, Env: []string{"E=e"},
		User: "1:1", WorkingDir: "/", StopSignal: "SIGTERM", Labels: map[string]string{"l": "v"}}, layer)
	if err != nil {
		return "unassembled: " + err.Error()
	}
	// The config names the layers by their uncompressed digests: gzip's
	// output, which may change with Go, does not move every key.
	d, err := img.ConfigName()
	if err != nil {
		return "unassembled: " + err.Error()
	}
	return d.String()
}
