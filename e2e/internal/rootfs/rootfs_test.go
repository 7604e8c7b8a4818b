package rootfs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshconform/meshconform/e2e/internal/fsutil"
)

func TestParseDeb822MirrorSkipsSecurity(t *testing.T) {
	src := "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
	if got := parseDeb822Mirror(strings.NewReader(src)); got != "http://mirror.example/debian" {
		t.Errorf("got %q", got)
	}
}

func TestParseListMirror(t *testing.T) {
	src := "# comment\ndeb http://mirror.example/debian-security bookworm-security main\ndeb http://mirror.example/debian bookworm main\n"
	if got := parseListMirror(strings.NewReader(src)); got != "http://mirror.example/debian" {
		t.Errorf("got %q", got)
	}
}

// The key covers the whole plan: packages, every kind of edit, and the
// content of each file copied in (not only its name).
func TestKeyCoversThePlan(t *testing.T) {
	src := filepath.Join(t.TempDir(), "entrypoint")
	if err := os.WriteFile(src, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	base := func() Spec {
		return Spec{Name: "node", Suite: "bookworm", Variant: "minbase", Include: []string{"systemd"}, Edits: Edits{
			Copy:   map[string]CopiedFile{"usr/local/bin/entrypoint": {Src: src, Mode: 0o755}},
			Remove: []string{"lib/systemd/system/multi-user.target.wants/*"},
			Link:   map[string]string{"usr/local/bin/containerd": "/usr/bin/containerd"},
			Chroot: [][]string{{"systemctl", "enable", "kubelet.service"}},
		}}
	}
	key := base().Key()
	if base().Key() != key {
		t.Fatal("the key of one spec is not stable")
	}
	changes := map[string]func(*Spec){
		"a package": func(s *Spec) { s.Include = append(s.Include, "iptables") },
		"the suite": func(s *Spec) { s.Suite = "trixie" },
		"a copied file's mode": func(s *Spec) {
			s.Edits.Copy = map[string]CopiedFile{"usr/local/bin/entrypoint": {Src: src, Mode: 0o644}}
		},
		"a copied file's target": func(s *Spec) { s.Edits.Copy = map[string]CopiedFile{"usr/bin/entrypoint": {Src: src, Mode: 0o755}} },
		"a removed glob":         func(s *Spec) { s.Edits.Remove = nil },
		"a link's target":        func(s *Spec) { s.Edits.Link = map[string]string{"usr/local/bin/containerd": "/usr/local/containerd"} },
		"a chroot step":          func(s *Spec) { s.Edits.Chroot = [][]string{{"systemctl", "enable", "containerd.service"}} },
		"a written file":         func(s *Spec) { s.Edits.Write = map[string]WrittenFile{"etc/machine-id": {Mode: 0o444}} },
	}
	for what, change := range changes {
		s := base()
		change(&s)
		if s.Key() == key {
			t.Errorf("changing %s keeps the key", what)
		}
	}
	if err := os.WriteFile(src, []byte("#!/bin/bash\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if base().Key() == key {
		t.Error("changing a copied file's content keeps the key")
	}
}

// Apply makes each kind of edit (chroot steps aside: they need root).
func TestEditsApply(t *testing.T) {
	tree, src := t.TempDir(), filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, []byte("kind"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"usr/lib/cni/ptp", "usr/lib/cni/host-local", "etc/systemd/system/x.wants/y", "etc/journald.conf"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(tree, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, f), []byte("a\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := Edits{
		Copy:     map[string]CopiedFile{"kind/bin/x": {Src: src, Mode: 0o755}},
		Remove:   []string{"etc/systemd/system/*.wants/*"},
		Append:   map[string]string{"etc/journald.conf": "ReadKMsg=no\n"},
		Link:     map[string]string{"usr/local/bin/containerd": "/usr/bin/containerd"},
		LinkEach: map[string]string{"opt/cni/bin": "usr/lib/cni"},
		Dirs:     []string{"etc/cni/net.d"},
		Chmod:    map[string]os.FileMode{"kind/bin": 0o700},
		Write:    map[string]WrittenFile{"etc/machine-id": {Mode: 0o444}},
	}
	if err := e.Apply(context.Background(), tree, nil); err != nil {
		t.Fatal(err)
	}
	at := func(p string) string { return filepath.Join(tree, p) }
	if fi, err := os.Stat(at("kind/bin/x")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("copied file: %v %v", fi, err)
	}
	if _, err := os.Stat(at("etc/systemd/system/x.wants/y")); !os.IsNotExist(err) {
		t.Errorf("removed glob still there: %v", err)
	}
	if b, _ := os.ReadFile(at("etc/journald.conf")); string(b) != "a\nReadKMsg=no\n" {
		t.Errorf("appended: %q", b)
	}
	for link, want := range map[string]string{"usr/local/bin/containerd": "/usr/bin/containerd", "opt/cni/bin/ptp": "/usr/lib/cni/ptp", "opt/cni/bin/host-local": "/usr/lib/cni/host-local"} {
		if got, err := os.Readlink(at(link)); err != nil || got != want {
			t.Errorf("link %s → %q (%v), want %s", link, got, err, want)
		}
	}
	if fi, err := os.Stat(at("etc/cni/net.d")); err != nil || !fi.IsDir() {
		t.Errorf("dir: %v", err)
	}
	if fi, _ := os.Stat(at("kind/bin")); fi.Mode().Perm() != 0o700 {
		t.Errorf("chmod: %v", fi.Mode())
	}
	if fi, err := os.Stat(at("etc/machine-id")); err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o444 {
		t.Errorf("written file: %v %v", fi, err)
	}
}

// A build killed with SIGKILL (no EXIT trap runs) leaves no mount on the
// host: debootstrap's /proc and /sys mounts in the tree live in the
// build's private mount namespace. The broken build this rejects is the
// one that ran debootstrap directly: its mounts outlived it, and the tree
// could never be removed.
func TestPrivateMountsDieWithTheBuild(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mount namespaces need root, as debootstrap does (make test runs as root here and in CI)")
	}
	tree := t.TempDir()
	target := filepath.Join(tree, "proc")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(tree, "ready")
	argv := privateMounts("sh", "-c", "mount -t proc proc "+target+" && touch "+ready+" && sleep 60")
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the build's mount never happened")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	left, err := fsutil.MountsUnder(f, tree)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("a killed build left mounts on the host: %v", left)
	}
	if _, err := os.Stat(filepath.Join(target, "self")); err == nil {
		t.Fatal("the host sees the build's /proc in the tree")
	}
}
