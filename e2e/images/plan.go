package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/meshconform/meshconform/e2e/internal/debian"
	"github.com/meshconform/meshconform/e2e/internal/fsutil"
	"github.com/meshconform/meshconform/e2e/internal/gobuild"
	"github.com/meshconform/meshconform/e2e/internal/oci"
)

// plan is an image's complete build plan, made before anything is built:
// the root filesystem it starts from, every file with where it comes from
// and where it goes, and the image's configuration. The image is assembled
// from the plan and nothing else, and the plan's digest is its cache key: a
// change in what an image is made of, or in the code that decides it (another
// source file, path, mode, flag, entrypoint, env or base), is a change of
// the plan and so of the key. No version is bumped by hand.
type plan struct {
	Ref string
	// Base is the key of the root filesystem the first layer is made of.
	Base   string `json:",omitempty"`
	Files  []planFile
	Config oci.Config
	// Assembler fingerprints the code that turns files into layers and
	// configs (oci.Fingerprint), the one part of assembly not in the plan.
	Assembler string

	base func(ctx context.Context) (string, error)
}

// planFile is one file of the image. File carries its destination, mode
// and, for data, links and directories, the whole content; From names a
// file built or fetched elsewhere completely: the Go module's key and the
// binary, the Debian package's version and digest and the paths taken from
// it, the host file's digest, the C compiler and its flags.
type planFile struct {
	oci.File
	From  string `json:",omitempty"`
	fetch func(ctx context.Context, a *assembly) (string, error)
}

func (p plan) key() string {
	enc, err := json.Marshal(p)
	if err != nil {
		// Every field is a string, slice or map of strings: unreachable.
		panic(fmt.Sprintf("plan of %s: %v", p.Ref, err))
	}
	sum := sha256.Sum256(enc)
	return hex.EncodeToString(sum[:])[:16]
}

// uses reports whether a file of p is a binary of the Go build keyed key.
func (p plan) uses(key string) bool {
	for _, f := range p.Files {
		if strings.HasPrefix(f.From, "go "+key+" ") {
			return true
		}
	}
	return false
}

func newPlan(ref string, cfg oci.Config, files ...planFile) plan {
	return plan{Ref: ref, Files: files, Config: cfg, Assembler: oci.Fingerprint()}
}

// dataFile is a file whose content the plan holds.
func dataFile(dest string, mode int64, data []byte) planFile {
	return planFile{File: oci.File{Path: dest, Mode: mode, Data: data}}
}

// goFile is binary bin of the Go build whose key is key, built by build.
func goFile(dest, key, bin string, build func(ctx context.Context) (gobuild.Result, error)) planFile {
	return planFile{File: oci.File{Path: dest, Mode: 0o755}, From: "go " + key + " " + bin,
		fetch: func(ctx context.Context, _ *assembly) (string, error) {
			r, err := build(ctx)
			if err != nil {
				return "", err
			}
			return r.Binary(bin), nil
		}}
}

// hostFile is a file of this machine (CA certificates), named by its digest.
// The content is read once, when planned, and the image gets that content:
// a file changed since cannot slip in under the planned digest.
func hostFile(dest, src string) planFile {
	raw, err := os.ReadFile(src)
	sum := sha256.Sum256(raw)
	f := planFile{File: oci.File{Path: dest}, From: "host " + src + " sha256:" + hex.EncodeToString(sum[:])}
	if err != nil {
		f.From = "host " + src + " unreadable"
		f.fetch = func(context.Context, *assembly) (string, error) { return "", fmt.Errorf("host file %s: %w", src, err) }
		return f
	}
	f.fetch = func(_ context.Context, a *assembly) (string, error) {
		copied := filepath.Join(a.dir, "host", filepath.FromSlash(dest))
		if err := os.MkdirAll(filepath.Dir(copied), 0o755); err != nil {
			return "", err
		}
		return copied, os.WriteFile(copied, raw, 0o644)
	}
	return f
}

// debFile is the first of paths (relative to the package's root) that
// package pkg holds as a regular file: glibc's files move between Debian
// releases (lib/x86_64-linux-gnu on bookworm, usr/lib/x86_64-linux-gnu
// later), and the package version in the key says which one exists.
func debFile(dest string, mode int64, pkg debian.Package, paths ...string) planFile {
	return planFile{File: oci.File{Path: dest, Mode: mode}, From: "deb " + pkg.Key() + " " + strings.Join(paths, "|"),
		fetch: func(ctx context.Context, a *assembly) (string, error) {
			tree, err := a.unpack(ctx, pkg)
			if err != nil {
				return "", err
			}
			rel, err := pickFile(tree, paths)
			if err != nil {
				return "", fmt.Errorf("package %s=%s: %w", pkg.Name, pkg.Version, err)
			}
			return filepath.Join(tree, rel), nil
		}}
}

// pickFile returns the first of paths that is a regular file under tree.
// Paths are exact: a file of the same name elsewhere (Debian's
// etc/init.d/docker-registry beside usr/bin/docker-registry) is never taken.
func pickFile(tree string, paths []string) (string, error) {
	for _, p := range paths {
		if fi, err := os.Lstat(filepath.Join(tree, filepath.FromSlash(p))); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no regular file at %s", strings.Join(paths, " or "))
}

// assembly is the scratch space of one image's assembly: Debian packages
// are unpacked there once each and removed with it.
type assembly struct {
	debs, dir string
	unpackDeb func(ctx context.Context, pkg debian.Package, debDir, dir string) error
	mu        sync.Mutex
	trees     map[string]*unpacked
}

type unpacked struct {
	once sync.Once
	dir  string
	err  error
}

func (a *assembly) unpack(ctx context.Context, pkg debian.Package) (string, error) {
	a.mu.Lock()
	u, ok := a.trees[pkg.Key()]
	if !ok {
		u = &unpacked{dir: filepath.Join(a.dir, pkg.Name)}
		a.trees[pkg.Key()] = u
	}
	a.mu.Unlock()
	u.once.Do(func() { u.err = a.unpackDeb(ctx, pkg, a.debs, u.dir) })
	return u.dir, u.err
}

// assemble builds the image p describes: the base and every file's source
// at once, then the layers, then the proof that the image can start.
func (l *Local) assemble(ctx context.Context, p plan) (v1.Image, error) {
	debs := filepath.Join(l.CacheDir, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp(debs, "assemble-*"+fsutil.Owned(".tree"))
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	a := &assembly{debs: debs, dir: scratch, unpackDeb: debian.Unpack, trees: map[string]*unpacked{}}
	if l.unpackDeb != nil {
		a.unpackDeb = l.unpackDeb
	}

	files := make([]oci.File, len(p.Files))
	var baseTar string
	g, gctx := errgroup.WithContext(ctx)
	if p.base != nil {
		g.Go(func() (err error) { baseTar, err = p.base(gctx); return err })
	}
	for i, f := range p.Files {
		files[i] = f.File
		if f.fetch == nil {
			continue
		}
		g.Go(func() error {
			src, err := f.fetch(gctx, a)
			if err != nil {
				return fmt.Errorf("%s (%s): %w", f.Path, f.From, err)
			}
			files[i].Src = src
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("image %s: %w", p.Ref, err)
	}
	var layers []v1.Layer
	if baseTar != "" {
		base, err := oci.LayerFromTar(baseTar)
		if err != nil {
			return nil, fmt.Errorf("image %s: base: %w", p.Ref, err)
		}
		layers = append(layers, base)
	}
	top, err := oci.FilesLayer(files)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", p.Ref, err)
	}
	img, err := oci.NewImage(p.Config, append(layers, top)...)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", p.Ref, err)
	}
	if err := oci.CheckStarts(img); err != nil {
		return nil, fmt.Errorf("image %s cannot start: %w", p.Ref, err)
	}
	return img, nil
}
