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
	"strings"

	"github.com/meshconform/meshconform/e2e/internal/rootfs"
)

// nodePackages are the Debian packages of a kind node: the list of kind's
// base image (images/base/Dockerfile) with Debian's containerd, runc and CNI
// plugins in place of the ones kind builds. Not included: nfs-common and
// open-iscsi (storage drivers no suite uses) and crictl, which Debian does not
// package (kind's log export then lacks images.log).
var nodePackages = []string{
	"systemd", "systemd-sysv", "dbus", "containerd", "runc", "containernetworking-plugins",
	"conntrack", "iptables", "nftables", "iproute2", "ethtool", "util-linux", "mount", "kmod",
	"libseccomp2", "pigz", "bash", "ca-certificates", "curl", "jq", "procps", "socat",
}

// kubeProxyPackages are what kube-proxy's iptables mode calls.
var kubeProxyPackages = []string{"iptables", "nftables", "conntrack", "ipset", "kmod"}

// nodeCustomization is bumped whenever customizeNode changes what it does.
const nodeCustomization = "node-v1"

// kindModuleDir finds kind's module in the module cache: its base image files
// (entrypoint, kubelet units, helper scripts) are what kind's create flow
// expects inside a node, so they are copied from the very kind version this
// harness links.
func kindModuleDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kind").Output()
	if err != nil {
		return "", fmt.Errorf("find the kind module (go list -m sigs.k8s.io/kind): %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("the kind module is not in the module cache: run go mod download")
	}
	return dir, nil
}

// kindBaseFiles is kind's images/base/files, minus what this node does not
// use (the fuse-overlayfs snapshotter, build-time helpers, kind's own
// containerd config, which nodeContainerdConfig replaces).
func kindBaseFiles(kindDir string) (map[string]string, error) {
	base := filepath.Join(kindDir, "images", "base", "files")
	files := map[string]string{}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		switch {
		case strings.Contains(rel, "fuse-overlayfs"), rel == "usr/local/bin/clean-install",
			rel == "etc/containerd/config.toml", strings.HasPrefix(rel, "LICENSES"):
			return nil
		}
		files[rel] = p
		return nil
	})
	return files, err
}

// digestFiles hashes file names and contents, for cache keys.
func digestFiles(files map[string]string) (string, error) {
	h := sha256.New()
	for _, rel := range sortedKeys(files) {
		raw, err := os.ReadFile(files[rel])
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(raw))
		h.Write(raw)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// nodeRootfsSpec is the Debian tree of a kind node, with kind's base files in
// place and systemd set up as kind's base image sets it up.
func nodeRootfsSpec(ctx context.Context, log io.Writer) (rootfs.Spec, error) {
	kindDir, err := kindModuleDir(ctx)
	if err != nil {
		return rootfs.Spec{}, err
	}
	files, err := kindBaseFiles(kindDir)
	if err != nil {
		return rootfs.Spec{}, fmt.Errorf("read kind base files: %w", err)
	}
	filesDigest, err := digestFiles(files)
	if err != nil {
		return rootfs.Spec{}, err
	}
	return rootfs.Spec{
		Name: "node", Suite: "bookworm", Variant: "minbase", Include: nodePackages,
		CustomizeKey: nodeCustomization + "-" + filesDigest,
		Customize: func(ctx context.Context, tree string) error {
			return customizeNode(ctx, tree, files, log)
		},
	}, nil
}

func customizeNode(ctx context.Context, tree string, files map[string]string, log io.Writer) error {
	for rel, src := range files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(rel, "kind/bin/") || strings.HasPrefix(rel, "usr/local/bin/") {
			mode = 0o755
		}
		if err := copyFile(src, filepath.Join(tree, rel), mode); err != nil {
			return err
		}
	}
	// The same systemd trimming as kind's base image: no units that expect a
	// real machine (udev, getty, tmpfiles setup), kmsg left alone.
	for _, g := range []string{
		"lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service",
		"lib/systemd/system/multi-user.target.wants/*", "etc/systemd/system/*.wants/*",
		"lib/systemd/system/local-fs.target.wants/*", "lib/systemd/system/sockets.target.wants/*udev*",
		"lib/systemd/system/sockets.target.wants/*initctl*", "lib/systemd/system/basic.target.wants/*",
	} {
		matches, _ := filepath.Glob(filepath.Join(tree, g))
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				return err
			}
		}
	}
	if err := appendFile(filepath.Join(tree, "etc/systemd/journald.conf"), "ReadKMsg=no\n"); err != nil {
		return err
	}
	// kind's containerd unit starts /usr/local/bin/containerd; Debian's is in
	// /usr/bin. CNI plugins: Debian's live in /usr/lib/cni, containerd and
	// every CNI config look in /opt/cni/bin.
	links := map[string]string{"usr/local/bin/containerd": "/usr/bin/containerd"}
	plugins, _ := filepath.Glob(filepath.Join(tree, "usr/lib/cni/*"))
	for _, p := range plugins {
		links["opt/cni/bin/"+filepath.Base(p)] = "/usr/lib/cni/" + filepath.Base(p)
	}
	for rel, target := range links {
		dst := filepath.Join(tree, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		_ = os.Remove(dst)
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	}
	for _, d := range []string{"etc/kubernetes/manifests", "etc/cni/net.d", "kind"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(tree, "kind/bin"), 0o755); err != nil {
		return err
	}
	// The runtime spec every pod container starts from, made as kind makes it.
	spec := `ctr oci spec | jq '.hooks.createContainer[.hooks.createContainer|length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json`
	steps := [][]string{
		{"sh", "-c", spec},
		{"systemctl", "enable", "kubelet.service", "containerd.service", "undo-mount-hacks.service"},
		{"systemctl", "mask", "systemd-binfmt.service"},
	}
	for _, s := range steps {
		if err := rootfs.Chroot(ctx, tree, log, s...); err != nil {
			return err
		}
	}
	// Each node must make its own machine ID (kind's entrypoint does).
	return os.WriteFile(filepath.Join(tree, "etc/machine-id"), nil, 0o444)
}

// nodeContainerdConfig is kind's containerd config for this node. It differs
// from kind's in one setting: restrict_oom_score_adj is on, because this
// host gives no container CAP_SYS_RESOURCE, and without it every pod sandbox
// fails when the kubelet asks for a negative oom_score_adj.
func nodeContainerdConfig(pauseImage string) string {
	return fmt.Sprintf(`version = 2

[plugins."io.containerd.grpc.v1.cri".containerd]
  discard_unpacked_layers = true
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  base_runtime_spec = "/etc/containerd/cri-base.json"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  tolerate_missing_hugepages_controller = true
  restrict_oom_score_adj = true
`, pauseImage)
}

func copyFile(src, dst string, mode os.FileMode) error {
	raw, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, raw, mode)
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
