// Package debian fetches prebuilt programs from Debian's archive, the one
// package source this machine reaches besides the Go module proxy: a
// well-kept binary is cheaper and more trustworthy than a build of our own.
//
// Packages are downloaded with apt-get (the host's own sources and keys, so
// each .deb is verified against the archive's signed index) and unpacked
// with dpkg-deb, never installed: nothing on the host changes.
package debian

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Package is one binary package at the version apt would install.
type Package struct {
	Name, Version, Arch string
	// SHA256 is the archive index's digest of the .deb.
	SHA256 string
}

// Key identifies the package's content for caches.
func (p Package) Key() string { return p.Name + "=" + p.Version + "@" + p.SHA256 }

// Arch is the architecture of the packages fetched (images are amd64).
const Arch = "amd64"

// Candidates returns the version apt would install of each named package,
// for Arch (a host with other architectures enabled lists those too). It
// reads the local package lists only (no network).
func Candidates(ctx context.Context, names ...string) ([]Package, error) {
	args := []string{"show", "--no-all-versions"}
	for _, n := range names {
		args = append(args, n+":"+Arch)
	}
	out, err := exec.CommandContext(ctx, "apt-cache", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("apt-cache show %s: %w %s (the package lists may be missing: make setup runs apt-get update)",
			strings.Join(names, " "), err, stderr(err))
	}
	pkgs, err := ParseShow(strings.NewReader(string(out)))
	if err != nil {
		return nil, err
	}
	byName := map[string]Package{}
	for _, p := range pkgs {
		if p.Arch == Arch || p.Arch == "all" {
			byName[p.Name] = p
		}
	}
	var res []Package
	for _, n := range names {
		p, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("apt-cache knows no package %s", n)
		}
		res = append(res, p)
	}
	return res, nil
}

// ParseShow parses `apt-cache show` output: stanzas of "Field: value"
// lines separated by blank lines.
func ParseShow(r io.Reader) ([]Package, error) {
	var pkgs []Package
	var cur Package
	flush := func() {
		if cur.Name != "" {
			pkgs = append(pkgs, cur)
		}
		cur = Package{}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(line, " ") {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			cur.Name = v
		case "Version":
			cur.Version = v
		case "Architecture":
			cur.Arch = v
		case "SHA256":
			cur.SHA256 = v
		}
	}
	flush()
	for _, p := range pkgs {
		if p.Version == "" || p.SHA256 == "" {
			return nil, fmt.Errorf("apt-cache show: package %s without Version or SHA256", p.Name)
		}
	}
	return pkgs, sc.Err()
}

// Unpack downloads p (kept in debDir, so a later run downloads nothing)
// and unpacks its files into dir.
func Unpack(ctx context.Context, p Package, debDir, dir string) error {
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return err
	}
	deb := filepath.Join(debDir, fmt.Sprintf("%s_%s_%s.deb", p.Name, strings.ReplaceAll(p.Version, ":", "%3a"), p.Arch))
	// A .deb kept from an earlier run is used only if it is the one the
	// archive's index names (the key of what is built from it says so).
	if sum, err := fileSHA256(deb); err == nil && sum != p.SHA256 {
		_ = os.Remove(deb)
	}
	if _, err := os.Stat(deb); err != nil {
		// apt-get verifies the download against the signed index; as root
		// it would otherwise warn that its sandbox user cannot write here.
		spec := p.Name + "=" + p.Version
		if p.Arch != "all" {
			spec = p.Name + ":" + p.Arch + "=" + p.Version
		}
		cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", spec)
		cmd.Dir = debDir
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get download %s=%s: %w: %s", p.Name, p.Version, err, b)
		}
		if _, err := os.Stat(deb); err != nil {
			return fmt.Errorf("apt-get download %s=%s did not write %s", p.Name, p.Version, deb)
		}
	}
	if sum, err := fileSHA256(deb); err != nil || sum != p.SHA256 {
		return fmt.Errorf("%s: SHA-256 %s, the archive's index says %s (%v)", filepath.Base(deb), sum, p.SHA256, err)
	}
	if b, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %w: %s", filepath.Base(deb), err, b)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func stderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}
